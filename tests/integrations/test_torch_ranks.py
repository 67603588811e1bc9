"""The launcher of the torch.distributed tests: ranks that meet, crash or hang end clearly.

``distributed_torch_worker.launch`` spawns gloo ranks that meet through a
file (no TCP port is picked, so none can be taken in between by another test
or process) and waits with a deadline. A launch must never hang the test
session nor fail with a bare exit code: a crashed rank is named with its
signal and the end of its log (``faulthandler``'s stack of the crash), a hung
rank dumps its stacks, and nothing is left running. The functions below are
what the spawned ranks run (a fresh interpreter imports them by name).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import distributed_torch_worker as worker  # noqa: E402 (after the skips)


def sum_of_ranks(rank: int, world: int, out: str) -> dict[str, Any]:
    value = torch.tensor([rank + 1.0], dtype=torch.float64)
    dist.all_reduce(value)
    return {"sum": float(value[0]), "pid": os.getpid(), "world": dist.get_world_size(),
            "environment": {name: os.environ.get(name) for name in LEAKED},
            "threads": torch.get_num_threads()}


#: What a Dask LocalCluster leaves in the pytest process's environment, and torchrun's.
LEAKED = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
          "MALLOC_TRIM_THRESHOLD_": "65536", "__DASK_PARENT_PID": "1",
          "MASTER_ADDR": "10.9.9.9", "MASTER_PORT": "1", "RANK": "5", "WORLD_SIZE": "7"}


def abort_on_rank_1(rank: int, world: int, out: str) -> None:
    if rank == 1:
        os.abort()  # as a C++ std::terminate in gloo would end the process
    dist.barrier()


def sleep_on_rank_0(rank: int, world: int, out: str) -> None:
    if rank == 0:
        time.sleep(3600)
    dist.barrier()


def ignore_the_rank_deadline(rank: int, world: int, out: str) -> None:
    import faulthandler

    faulthandler.cancel_dump_traceback_later()  # only the launcher's deadline is left
    time.sleep(3600)


@pytest.mark.slow
def test_ranks_meet_through_a_file_and_again_in_the_same_process(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Two launches in a row: the second inherits nothing from the first, nor from the
    variables earlier tests left in the pytest process's environment."""
    first = worker.launch(tmp_path / "first", world=2, work=sum_of_ranks)
    with monkeypatch.context() as patched:
        for name, value in LEAKED.items():
            patched.setenv(name, value + "7")
        second = worker.launch(tmp_path / "second", world=2, work=sum_of_ranks)
        assert all(os.environ[name] == value + "7" for name, value in LEAKED.items())  # restored
    for found in (first, second):
        assert [rank["sum"] for rank in found] == [3.0, 3.0]
        assert [rank["world"] for rank in found] == [2, 2]
        assert [rank["threads"] for rank in found] == [1, 1]
    assert first[0]["environment"] == second[0]["environment"] == second[1]["environment"]
    assert second[0]["environment"]["MASTER_PORT"] is None
    assert second[0]["environment"]["OMP_NUM_THREADS"] == "1"
    pids = {rank["pid"] for rank in first + second}
    assert len(pids) == 4 and os.getpid() not in pids  # fresh processes each time
    assert not (tmp_path / "first" / "rendezvous").exists()  # no store is left behind
    assert "rank 1: done" in (tmp_path / "second" / "rank1.log").read_text()


def test_a_launch_needs_a_new_folder(tmp_path: Path) -> None:
    (tmp_path / "rendezvous").write_text("")
    with pytest.raises(worker.RanksFailed, match="new output folder"):
        worker.launch(tmp_path, world=2, work=sum_of_ranks)


@pytest.mark.slow
def test_a_rank_that_aborts_is_named_with_its_signal_and_stack(tmp_path: Path) -> None:
    with pytest.raises(worker.RanksFailed) as failed:
        worker.launch(tmp_path, world=2, work=abort_on_rank_1, rank_timeout=120)
    report = str(failed.value)
    assert "rank 1: killed by SIGABRT" in report
    assert "Fatal Python error: Aborted" in report  # faulthandler, in rank 1's log
    assert "abort_on_rank_1" in report  # the Python line it died on


@pytest.mark.slow
def test_a_hung_rank_dumps_its_stack_and_exits(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(worker.RanksFailed) as failed:
        worker.launch(tmp_path, world=2, work=sleep_on_rank_0, rank_timeout=30)
    assert time.monotonic() - started < 30 + worker.GRACE
    report = str(failed.value)
    assert "Timeout (0:00:30)!" in report  # faulthandler's dump of the hung rank
    assert "sleep_on_rank_0" in report


@pytest.mark.slow
def test_ranks_past_the_launch_deadline_are_killed(tmp_path: Path) -> None:
    with pytest.raises(worker.RanksFailed, match="did not finish within 30 s; killed") as failed:
        worker.launch(tmp_path, world=2, work=ignore_the_rank_deadline, rank_timeout=20, grace=10)
    for pid in (int(line.split()[3].rstrip(":")) for line in str(failed.value).splitlines()
                if line.startswith("rank ") and " pid " in line):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: nothing is left running
