"""The Accumulator's torch state: on the batch's device, no value read per update, exact.

``mseplug.streaming.torch_state`` keeps ``S``, ``W`` (and the weight
exponent) as float64 tensors on the batch's device and defers value checks
to the next read. These tests hold it to the host path's numbers and errors.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

import mseplug
from mseplug.engine.overflow import LossOverflowWarning

torch = pytest.importorskip("torch")
accumulate = pytest.importorskip("mseplug.streaming.torch_state")

LEAN_LOSSES = (("mse", {}), ("mae", {}), ("huber", {"delta": 0.7}), ("pinball", {"alpha": 0.3}),
               ("log_cosh", {}))


def batches(seed: int, dtype: torch.dtype = torch.float32, n: int = 64, count: int = 5):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, generator=generator, dtype=dtype),
             torch.randn(n, generator=generator, dtype=dtype),
             torch.rand(n, generator=generator, dtype=dtype)) for _ in range(count)]


# -- where the state lives -------------------------------------------------------------------
def test_a_torch_update_keeps_the_state_in_float64_tensors_on_the_batch_device() -> None:
    acc = mseplug.Accumulator("mse")
    t, p, w = batches(0)[0]
    acc.update(t, p)
    assert isinstance(acc.total, torch.Tensor) and acc.total.dtype is torch.float64
    assert isinstance(acc.weight, torch.Tensor) and acc.weight.dtype is torch.float64
    assert acc.total.device == p.device and acc.total.shape == (1,)
    assert acc.exponent == 0 and isinstance(acc.exponent, int)  # known on the host: unweighted
    assert acc.count == 64 and isinstance(acc.count, int)
    acc.update(t, p, sample_weight=w)
    assert isinstance(acc.exponent, torch.Tensor) and acc.exponent.dtype is torch.int64
    assert acc.count == 128 and acc.weight.dtype is torch.float64


def test_updates_on_the_meta_device_read_no_value_and_compute_says_why() -> None:
    """Any read of a meta tensor's value fails, so updates that succeed read none."""
    meta = torch.device("meta")
    for loss, params, nan_policy in (("mse", {}, "raise"), ("huber", {"delta": 2.0}, "propagate"),
                                     ("msle", {}, "raise"), ("mse", {}, "omit")):
        acc = mseplug.Accumulator(loss, nan_policy=nan_policy, **params)
        for _ in range(3):
            t, p = torch.empty(64, device=meta), torch.empty(64, device=meta)
            acc.update(t, p)
            acc.update(t, p, sample_weight=torch.empty(64, device=meta))
        assert acc.count == 384 and acc.total.is_meta
        with pytest.raises(ValueError, match="meta device"):
            acc.compute()
        with pytest.raises(ValueError, match="meta device"):
            acc.state_dict()
        other = mseplug.Accumulator(loss, nan_policy=nan_policy, **params)
        other.update(torch.empty(8, device=meta), torch.empty(8, device=meta))
        assert acc.merge(other).count == 392  # a merge of torch states reads nothing either


def test_only_the_reads_touch_the_host(monkeypatch) -> None:
    """``Tensor.tolist``/``item``/``cpu``/``numpy`` are the ways to the host: none per update."""
    reads = []
    for name in ("tolist", "item", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    acc = mseplug.Accumulator("msle", nan_policy="raise")
    for t, p, w in batches(1):
        acc.update(t.abs(), p.abs())
        acc.update(t.abs(), p.abs(), sample_weight=w)
    assert reads == []
    acc.compute()
    assert reads  # the one read


# -- exactness ---------------------------------------------------------------------------------
def test_fifteen_thousand_float32_updates_stay_within_1e7_of_float64() -> None:
    generator = torch.Generator().manual_seed(7)
    t, p = torch.randn(64, generator=generator), torch.randn(64, generator=generator)
    updates = 15_001
    acc = mseplug.Accumulator("mse")
    for _ in range(updates):
        acc.update(t, p)
    a, b = t.numpy().astype(np.float64), p.numpy().astype(np.float64)
    exact = math.fsum(((b - a) ** 2).tolist()) / a.size  # the same batch every time: its mean
    ours = abs(float(acc.compute()) - exact) / exact
    assert ours < 1e-7
    try:
        from torchmetrics import MeanSquaredError
    except ImportError:
        return
    metric = MeanSquaredError()
    for _ in range(updates):
        metric.update(p, t)
    theirs = abs(float(metric.compute()) - exact) / exact
    assert ours < theirs / 100, (ours, theirs)


def _host_reference(loss: str, params: dict, data, weighted: bool) -> mseplug.Accumulator:
    """Today's host path: the engine's torch statistics (weights scaled on the host) read to
    NumPy and added there, batch by batch."""
    from mseplug.api.backends import backend_named

    acc = mseplug.Accumulator(loss, **params)
    for t, p, w in data:
        acc._update_on_host(backend_named("torch"), t, p, w if weighted else None)
    assert isinstance(acc.total, np.ndarray)
    return acc


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(("loss", "params"), LEAN_LOSSES)
def test_the_lean_path_gives_the_engine_state_bit_for_bit(monkeypatch, loss, params, weighted,
                                                          dtype) -> None:
    data = batches(3, dtype, n=257, count=4)
    lean, engine = mseplug.Accumulator(loss, **params), mseplug.Accumulator(loss, **params)
    taken = []
    original = accumulate.engine_update
    monkeypatch.setattr(accumulate, "engine_update",
                        lambda *args: taken.append(1) or original(*args))
    for t, p, w in data:
        lean.update(t, p, sample_weight=w if weighted else None)
    assert taken == []  # every batch took the lean path
    for t, p, w in data:
        accumulate.engine_update(engine, t, p, w if weighted else None)
    assert torch.equal(lean.total, engine.total) and torch.equal(lean.weight, engine.weight)
    assert int(lean.exponent) == int(engine.exponent) == 0 and lean.count == engine.count
    host = _host_reference(loss, params, data, weighted)
    assert np.array_equal(lean.total.numpy(), host.total)
    assert np.array_equal(lean.weight.numpy(), host.weight)


@pytest.mark.parametrize("scale", [1e300, 1e-300, 3e38])
def test_huge_and_tiny_weights_are_scaled_on_the_device_as_on_the_host(scale) -> None:
    """Weights of 1e300 / 1e-300 (float64) scaled by powers of two: the state equals the host
    path's (weights scaled on the host), bit for bit, and the mean the one call's."""
    data = batches(4, torch.float64, count=3)
    device = mseplug.Accumulator("huber", delta=0.5)
    scaled = []
    for i, (t, p, w) in enumerate(data):
        factor = scale if i != 1 else 1.0  # one batch in the plain range: exponents aligned
        scaled.append((t, p, w * factor))
        device.update(t, p, sample_weight=w * factor)
    assert isinstance(device.exponent, torch.Tensor)
    host = _host_reference("huber", {"delta": 0.5}, scaled, True)
    assert device.state_dict() == host.state_dict()
    alone = mseplug.Accumulator("huber", delta=0.5)  # every batch scaled: the exponent stays
    for t, p, w in scaled[::2]:
        alone.update(t, p, sample_weight=w)
    assert alone.state_dict() == _host_reference("huber", {"delta": 0.5}, scaled[::2],
                                                 True).state_dict()
    assert alone.state_dict()["weight_exponent"] != 0
    t, p, w = (torch.cat(parts) for parts in zip(*data))
    w = torch.cat([data[0][2] * scale, data[1][2], data[2][2] * scale])
    assert float(device.compute()) == pytest.approx(
        float(mseplug.huber(t.numpy(), p.numpy(), sample_weight=w.numpy(), delta=0.5)), rel=1e-14)


# -- errors, deferred to the read -----------------------------------------------------------------
def _eager_message(loss: str, params: dict, nan_policy: str, t, p, w) -> str:
    acc = mseplug.Accumulator(loss, nan_policy=nan_policy, **params)
    with pytest.raises(ValueError) as error:
        acc.update(t.numpy(), p.numpy(), sample_weight=None if w is None else w.numpy())
    return str(error.value)


CASES = {
    "nan y_pred": ("mse", {}, "raise", [0.0, 1.0], [float("nan"), 1.0], None),
    "nan y_true": ("huber", {}, "raise", [[float("nan")], [1.0]], [[0.0], [1.0]], None),
    "domain y_true": ("msle", {}, "propagate", [-2.0, 1.0], [0.0, 1.0], None),
    "negative weight": ("mse", {}, "propagate", [0.0, 1.0], [0.0, 2.0], [1.0, -0.5]),
    "nan weight": ("mae", {}, "propagate", [0.0, 1.0], [0.0, 2.0], [1.0, float("nan")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_value_errors_are_raised_at_the_next_read_as_the_eager_check_raises_them(case) -> None:
    loss, params, nan_policy, t, p, w = CASES[case]
    t, p = torch.tensor(t), torch.tensor(p)
    w = None if w is None else torch.tensor(w)
    eager = _eager_message(loss, params, nan_policy, t, p, w)
    acc = mseplug.Accumulator(loss, nan_policy=nan_policy, **params)
    good = torch.ones_like(t)
    acc.update(good, good)
    acc.update(t, p, sample_weight=w)  # no error yet: nothing was read
    acc.update(good, good)
    for read in (acc.compute, acc.state_dict, acc.compute):  # every read, until reset
        with pytest.raises(ValueError) as error:
            read()
        assert str(error.value).startswith(eager), (str(error.value), eager)
    merged = mseplug.Accumulator(loss, nan_policy=nan_policy, **params)
    merged.update(good, good)
    with pytest.raises(ValueError, match="reset"):
        merged.merge(acc).compute()  # the failed check travels with the statistics
    acc.reset()
    acc.update(good, good * 2)
    assert float(acc.compute()) >= 0


def test_shape_and_dtype_errors_stay_eager() -> None:
    acc = mseplug.Accumulator("mse")
    acc.update(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="outputs"):
        acc.update(torch.zeros(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError):
        acc.update(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError):
        acc.update(torch.zeros(3, dtype=torch.complex64), torch.zeros(3, dtype=torch.complex64))
    assert acc.count == 3 and float(acc.compute()) == 0.0


def test_an_overflow_from_finite_inputs_warns_at_the_read_and_inf_inputs_do_not() -> None:
    acc = mseplug.Accumulator("mse")
    big = torch.tensor([1e200], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc.update(-big, big)  # (2e200)² overflows float64: no read, no warning yet
    with pytest.warns(LossOverflowWarning):
        assert float(acc.compute()) == math.inf
    quiet = mseplug.Accumulator("mse")
    quiet.update(torch.tensor([0.0]), torch.tensor([math.inf]))
    quiet.update(torch.tensor([0.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(quiet.compute()) == math.inf


# -- merge, state, all_reduce -----------------------------------------------------------------------
def test_merges_stay_on_the_device_and_equal_one_accumulator() -> None:
    data = batches(5, count=6)
    whole, first, second = (mseplug.Accumulator("pinball", alpha=0.2) for _ in range(3))
    for i, (t, p, w) in enumerate(data):
        whole.update(t, p, sample_weight=w)
        (first if i < 3 else second).update(t, p, sample_weight=w)
    first.merge(second)
    assert isinstance(first.total, torch.Tensor)
    assert first.state_dict() == whole.state_dict()


def test_a_restored_state_adopts_the_device_exactly() -> None:
    data = batches(6, count=4)
    whole, part = mseplug.Accumulator("mse"), mseplug.Accumulator("mse")
    for t, p, w in data:
        whole.update(t, p, sample_weight=w)
    for t, p, w in data[:2]:
        part.update(t, p, sample_weight=w)
    restored = mseplug.Accumulator.from_state_dict(json.loads(json.dumps(part.state_dict())))
    assert isinstance(restored.total, np.ndarray)
    for t, p, w in data[2:]:
        restored.update(t, p, sample_weight=w)
    assert isinstance(restored.total, torch.Tensor)
    assert restored.state_dict() == whole.state_dict()
    # A host state merged into a torch one (and a torch one into a host one) alike.
    host = mseplug.Accumulator.from_state_dict(part.state_dict())
    rest = mseplug.Accumulator("mse")
    for t, p, w in data[2:]:
        rest.update(t, p, sample_weight=w)
    assert host.merge(rest).state_dict() == whole.state_dict()
    assert isinstance(host.total, torch.Tensor)


def test_numpy_batches_join_a_torch_state_on_its_device() -> None:
    data = batches(8, torch.float64, count=2)
    mixed, whole = mseplug.Accumulator("mse"), mseplug.Accumulator("mse")
    mixed.update(data[0][0], data[0][1])
    mixed.update(data[1][0].numpy(), data[1][1].numpy())
    for t, p, _ in data:
        whole.update(t, p)
    assert isinstance(mixed.total, torch.Tensor)
    assert mixed.state_dict() == whole.state_dict()


@pytest.fixture
def one_rank(tmp_path):
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed, not yet initialised")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_all_reduce_of_a_device_state_reads_it_once_and_raises_deferred_errors(one_rank) -> None:
    import mseplug.torch

    acc = mseplug.Accumulator("mse")
    for t, p, w in batches(9, count=3):
        acc.update(t, p, sample_weight=w)
    reduced = mseplug.torch.all_reduce(acc)
    assert reduced.state_dict() == acc.state_dict()
    acc.update(torch.zeros(2), torch.zeros(2), sample_weight=torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="negative"):
        mseplug.torch.all_reduce(acc)
