"""torch.distributed for real: two gloo processes on 127.0.0.1 (spawned, never forked).

The ranks run tests/distributed_torch_worker.py once per session and write
what they measured; each test below judges one part of it. Rank 0 holds 1000
rows and rank 1 the other 337, whose errors are larger. The ranks meet through
a file (no port to pick, so none to collide), and a rank that fails or hangs
ends the launch with one error showing how each rank ended and its log (see
``distributed_torch_worker.launch``); the launcher itself is tested in
test_processes_torch_ranks.py.
"""

from __future__ import annotations

from typing import Any

import distributed_cases as cases
import pytest

import mseplug

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

ALL_LOSSES = (*mseplug.losses(), cases.CAUCHY)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    import distributed_torch_worker

    return distributed_torch_worker.launch(tmp_path_factory.mktemp("ranks"), world=2)


@pytest.mark.slow
@pytest.mark.parametrize("option", cases.OPTIONS)
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_all_reduce_equals_the_single_process_loss(ranks, loss, option) -> None:
    if loss in mseplug.losses() and not cases.applies(loss, option):
        pytest.skip(f"{loss} does not take the inputs of {option!r} in parts (a property of "
                    "its record)")
    for rank in ranks:
        found = rank["global"][f"{loss}/{option}"]
        assert found["error"] < 1e-12, found
        assert found["count"] == 1337 and found["local_count_unchanged"]


@pytest.mark.slow
def test_a_rank_without_data_takes_part(ranks) -> None:
    for rank in ranks:
        edge = rank["edge"]
        assert edge["empty_rank_error"] < 1e-12 and edge["empty_rank_shape"] == [3]
        assert edge["zero_weight_error"] < 1e-12
        assert edge["nobody_count"] == 0
        assert edge["mixed_shape_error"] < 1e-12


@pytest.mark.slow
def test_different_accumulators_raise_on_every_rank(ranks) -> None:
    """The same ValueError on every rank, naming what differs (huber's delta, the shapes)."""
    for case, named in (("options_differ", "delta"), ("shapes_differ", "different shapes")):
        messages = [rank["edge"][case] for rank in ranks]
        assert messages[0] == messages[1], messages
        assert messages[0].startswith("mseplug.torch.all_reduce: the ranks' accumulators"), messages
        assert named in messages[0], messages


@pytest.mark.slow
def test_ddp_training_gradients_equal_torch(ranks) -> None:
    """Step by step, every gradient entry within float64 rounding (1e-15) of torch's own loss."""
    for rank in ranks:
        assert set(rank["ddp"]) == {"MSELoss", "HuberLoss"}
        assert all(largest <= 1e-15 for largest in rank["ddp"].values()), rank["ddp"]


def test_all_reduce_needs_an_initialised_group_and_an_accumulator() -> None:
    import mseplug.torch

    with pytest.raises(TypeError, match="Accumulator"):
        mseplug.torch.all_reduce("mse")  # type: ignore[arg-type]
    if not dist.is_initialized():
        with pytest.raises(RuntimeError, match="init_process_group"):
            mseplug.torch.all_reduce(mseplug.Accumulator("mse"))
