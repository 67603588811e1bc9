"""What each of the two gloo ranks of test_torch_distributed.py runs, and how they are launched.

:func:`launch` starts the ranks in fresh interpreters (``spawn``, never
``fork``: nothing of the pytest process is inherited, not even the variables
earlier tests left in its environment, see :data:`RANK_ENVIRONMENT`), has them
meet through a file in the output folder (no TCP port is chosen, so none can
be taken by another test or process in between), and waits for them with a
deadline. Each rank writes everything it prints,
including C++ messages and the Python stack of a crash (``faulthandler``), to
``rank<N>.log``; a rank still running at its deadline dumps every thread's
stack there and exits. Any failure is one exception that names the rank, how
it ended (exit code or signal) and the end of its log.

Every rank writes what it measured to ``rank<N>.json`` in the output folder;
the tests read and judge it. Ranks hold uneven shards: rank 0 the first
1000 rows, rank 1 the last 337 (with larger errors).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROWS = {0: slice(0, 1000), 1: slice(1000, 1337)}
#: Seconds a collective (or the rendezvous) may wait for the other rank before it raises.
COLLECTIVE_TIMEOUT = 60
#: Seconds a rank may run before it dumps its threads' stacks and exits.
RANK_TIMEOUT = 300
#: Seconds the launcher waits beyond RANK_TIMEOUT (interpreter start-up) before it kills.
GRACE = 60
#: The ranks' environment, whatever earlier tests left in the pytest process's (a Dask
#: LocalCluster, for one, sets its workers' variables in ``os.environ`` and keeps them):
#: these are set (libraries read them as they load, before a rank's code runs) ...
RANK_ENVIRONMENT = {"GLOO_SOCKET_IFNAME": "lo",  # 127.0.0.1, whatever the host name resolves to
                    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
#: ... and these removed (the group is given explicitly; the rest is Dask's).
NOT_INHERITED = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
                 "LOCAL_WORLD_SIZE", "TORCHELASTIC_RUN_ID", "TORCH_DISTRIBUTED_DEBUG",
                 "GLOO_DEVICE_TRANSPORT", "MALLOC_TRIM_THRESHOLD_", "__DASK_PARENT_PID")


class RanksFailed(RuntimeError):
    """A rank raised, crashed, hung or wrote no result."""


def launch(out: str | Path, world: int = 2, work: Callable[..., Any] | None = None,
           rank_timeout: float = RANK_TIMEOUT, grace: float = GRACE) -> list[Any]:
    """Run ``work(rank, world, out)`` (default :func:`measure`) in ``world`` spawned processes
    joined in one gloo group; return what each wrote to ``rank<N>.json``.

    ``work`` must be importable by name in a fresh interpreter (a module-level function).
    Raises :class:`RanksFailed` with each rank's outcome and log when a rank fails, and
    kills every rank still running ``rank_timeout + grace`` seconds after the start.
    """
    import torch.multiprocessing as mp

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rendezvous = out / "rendezvous"  # a FileStore: new for each launch, removed after it
    if rendezvous.exists():
        raise RanksFailed(f"{rendezvous} exists: each launch needs a new output folder")
    init_method = f"file://{rendezvous}"
    with _environment(RANK_ENVIRONMENT, NOT_INHERITED):  # read by spawn as it starts the ranks
        context = mp.start_processes(
            _rank_main, args=(world, init_method, str(out), work or measure, rank_timeout),
            nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + rank_timeout + grace
    try:
        # After a rank fails, the others get a few seconds to log their side, then SIGTERM.
        while not context.join(timeout=min(1.0, max(0.0, deadline - time.monotonic())),
                               grace_period=10):
            if time.monotonic() >= deadline:
                raise RanksFailed(_report(
                    f"the ranks did not finish within {rank_timeout + grace:.0f} s; killed",
                    context.processes, out))
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as error:
        raise RanksFailed(_report(f"a rank failed: {str(error).strip()}",
                                  context.processes, out)) from None
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
            process.join()
        # torch's FileStore deletes its file when its last user is destroyed; a rank that exits
        # before its store object is collected (a busy machine) leaves it: no launch leaves one.
        rendezvous.unlink(missing_ok=True)
    missing = [rank for rank in range(world) if not Path(out, f"rank{rank}.json").exists()]
    if missing:
        raise RanksFailed(_report(f"ranks {missing} exited without writing a result",
                                  context.processes, out))
    return [json.loads(Path(out, f"rank{rank}.json").read_text()) for rank in range(world)]


@contextlib.contextmanager
def _environment(pinned: dict[str, str], removed: tuple[str, ...]) -> Iterator[None]:
    """``os.environ`` with ``pinned`` set and ``removed`` unset, restored on exit."""
    saved = {name: os.environ.get(name) for name in (*pinned, *removed)}
    try:
        for name in removed:
            os.environ.pop(name, None)
        os.environ.update(pinned)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _report(headline: str, processes: list[Any], out: Path, lines: int = 60) -> str:
    """The headline, then each rank's outcome and the end of its log."""
    parts = [headline, "(one launch: pytest repeats a fixture's error for every test using it)"]
    for rank, process in enumerate(processes):
        code = process.exitcode
        if code is None:
            outcome = "still running"
        elif code < 0:
            outcome = f"killed by signal {-code}"
            if -code in signal.valid_signals():
                outcome = f"killed by {signal.Signals(-code).name}"
        else:
            outcome = f"exit code {code}"
        log = Path(out, f"rank{rank}.log")
        text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
        parts.append(f"--- rank {rank}: {outcome}; {log}:")
        parts.extend(text or ["(empty)"])
    return "\n".join(parts)


def _rank_main(rank: int, world: int, init_method: str, out: str,
               work: Callable[..., Any], rank_timeout: float) -> None:
    """One rank: its output to ``rank<N>.log``, crash and hang reports, the gloo group,
    ``work``, its result, then an exit that skips the interpreter's teardown.

    Why the last step: once a model has been wrapped in ``DistributedDataParallel``,
    torch 2.13 keeps references to the default group that ``destroy_process_group`` does
    not drop, so the group's gloo threads outlive it. When the main thread reaches
    ``Py_FinalizeEx`` while one of those threads is still releasing the last collective's
    work, that release needs the GIL (the work's thread-local state holds a Python object),
    CPython ends the thread with ``pthread_exit`` during finalization, and its unwinding
    through a ``noexcept`` destructor is ``std::terminate``: "terminate called without an
    active exception", SIGABRT, after the rank printed "done" (about one launch in 60 here;
    the core's stacks show it). With its result written and its output flushed, the rank
    leaves with ``os._exit(0)``: nothing is left to do that the teardown could lose.
    """
    with open(Path(out, f"rank{rank}.log"), "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)  # C++ messages (terminate, gloo) and Python's prints alike
        os.dup2(log.fileno(), 2)
    faulthandler.enable(all_threads=True)  # an abort or segfault shows every thread's stack
    faulthandler.dump_traceback_later(rank_timeout, exit=True)  # a hang ends with the stacks
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # the ranks share the cores
    inherited = {name: os.environ.get(name) for name in (*RANK_ENVIRONMENT, *NOT_INHERITED)}
    print(f"rank {rank}/{world} pid {os.getpid()}: {init_method}; torch {torch.__version__}; "
          f"environment {inherited}", flush=True)
    try:
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world,
                                timeout=timedelta(seconds=COLLECTIVE_TIMEOUT))
        try:
            result = work(rank, world, out)
            dist.barrier()  # no rank tears its connections down while the other still reads
        finally:
            dist.destroy_process_group()
    except BaseException:
        traceback.print_exc()  # in the log too: the launcher shows every rank's side
        raise
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    faulthandler.cancel_dump_traceback_later()
    print(f"rank {rank}: done", flush=True)
    sys.stderr.flush()
    os._exit(0)  # not the interpreter's teardown: see the docstring


def measure(rank: int, world: int, out: str) -> dict[str, Any]:
    """What the tests judge: global values, edge cases and DDP gradients."""
    import torch

    return {"global": _global_values(rank), "edge": _edge_cases(rank),
            "ddp": _ddp_gradients(rank, torch)}


def _global_values(rank: int) -> dict[str, Any]:
    """all_reduce of per-rank Accumulators against the one-shot loss, every loss and option."""
    import distributed_cases as cases
    import torch

    import mseplug
    import mseplug.torch

    cases.register_cauchy()
    found = {}
    for loss in mseplug.losses():
        params = cases.params(loss)
        for option in cases.OPTIONS:
            if not cases.applies(loss, option):  # max_error: no weights, one output
                continue
            case = cases.data(option, loss=loss, outputs=cases.outputs(loss))
            rows = ROWS[rank]
            acc = mseplug.Accumulator(loss, multioutput=case["multioutput"],
                                      nan_policy=case["nan_policy"], **params)
            for half in np.array_split(np.arange(1337)[rows], 2):  # two batches per rank
                weight = case["sample_weight"]
                acc.update(torch.asarray(case["y_true"][half]), torch.asarray(case["y_pred"][half]),
                           sample_weight=None if weight is None else torch.asarray(weight[half]))
            local = acc.count
            reduced = mseplug.torch.all_reduce(acc)
            found[f"{loss}/{option}"] = {
                "error": cases.relative_error(reduced.compute(), cases.one_shot(loss, case, **params)),
                "count": reduced.count, "local_count_unchanged": acc.count == local,
            }
    return found


def _edge_cases(rank: int) -> dict[str, Any]:
    import distributed_cases as cases
    import torch

    import mseplug
    import mseplug.torch

    case = cases.data("weighted")
    t, p, w = (torch.asarray(case[key]) for key in ("y_true", "y_pred", "sample_weight"))
    found: dict[str, Any] = {}
    # Rank 1 saw no data at all: it learns the output shape from rank 0.
    acc = mseplug.Accumulator("rmse", multioutput="raw_values")
    if rank == 0:
        acc.update(t, p, sample_weight=w)
    reduced = mseplug.torch.all_reduce(acc)
    expected = mseplug.rmse(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
                            multioutput="raw_values")
    found["empty_rank_error"] = cases.relative_error(reduced.compute(), expected)
    found["empty_rank_shape"] = list(reduced.compute().shape)
    # Rank 1's only batch is empty and rank 0's weights are all 0: still one global value.
    acc = mseplug.Accumulator("mae")
    if rank == 0:
        acc.update(t[:500], p[:500], sample_weight=torch.zeros(500, dtype=torch.float64))
        acc.update(t[500:], p[500:], sample_weight=w[500:])
    else:
        acc.update(t[:0], p[:0])
    expected = mseplug.mae(case["y_true"][500:], case["y_pred"][500:],
                           sample_weight=case["sample_weight"][500:])
    found["zero_weight_error"] = cases.relative_error(
        mseplug.torch.all_reduce(acc).compute(), expected)
    # No rank saw data: an empty accumulator everywhere.
    found["nobody_count"] = mseplug.torch.all_reduce(mseplug.Accumulator("mse")).count
    # (n,) on one rank and (n, 1) on the other mix, as in one call.
    acc = mseplug.Accumulator("mse")
    if rank == 0:
        acc.update(t[:, 0], p[:, 0])
    else:
        acc.update(t[:, :1], p[:, :1])
    found["mixed_shape_error"] = cases.relative_error(
        mseplug.torch.all_reduce(acc).compute(),
        mseplug.mse(case["y_true"][:, 0], case["y_pred"][:, 0]))
    # Different options or output shapes: the same ValueError on every rank, nobody waits.
    for name, acc in (("options_differ", mseplug.Accumulator("huber", delta=1.0 + rank)),
                      ("shapes_differ", mseplug.Accumulator("mse"))):
        if name == "shapes_differ":
            acc.update(t[:, : 2 + rank], p[:, : 2 + rank])
        try:
            mseplug.torch.all_reduce(acc)
            found[name] = "no error"
        except ValueError as error:
            found[name] = str(error)
    return found


def _ddp_gradients(rank: int, torch: Any) -> dict[str, Any]:
    """DDP training with mseplug's MSELoss/HuberLoss gives torch's gradients, step by step."""
    from torch.nn.parallel import DistributedDataParallel

    import mseplug.torch

    found = {}
    for ours, theirs in ((mseplug.torch.MSELoss(), torch.nn.MSELoss()),
                         (mseplug.torch.HuberLoss(delta=0.5), torch.nn.HuberLoss(delta=0.5))):
        torch.manual_seed(0)
        models = [torch.nn.Linear(5, 2).double() for _ in range(2)]
        models[1].load_state_dict(models[0].state_dict())
        wrapped = [DistributedDataParallel(m) for m in models]
        optimisers = [torch.optim.SGD(m.parameters(), lr=0.1) for m in wrapped]
        generator = torch.Generator().manual_seed(100 + rank)
        largest = 0.0
        for _ in range(3):
            x = torch.randn(40 + 17 * rank, 5, dtype=torch.float64, generator=generator)
            y = torch.randn(40 + 17 * rank, 2, dtype=torch.float64, generator=generator)
            for model, optimiser, loss_fn in zip(wrapped, optimisers, (ours, theirs)):
                optimiser.zero_grad()
                loss_fn(model(x), y).backward()
            for a, b in zip(models[0].parameters(), models[1].parameters()):
                largest = max(largest, float((a.grad - b.grad).abs().max()))
            for optimiser in optimisers:
                optimiser.step()
        found[type(ours).__name__] = largest
    return found
