"""What each of the two gloo ranks of test_torch_distributed.py runs (in its own process).

Every rank writes what it measured to ``rank<N>.json`` in the output folder;
the tests read and judge it. Ranks hold uneven shards: rank 0 the first
1000 rows, rank 1 the last 337 (with larger errors).
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROWS = {0: slice(0, 1000), 1: slice(1000, 1337)}


def run(rank: int, world: int, port: int, out: str) -> None:
    faulthandler.enable()  # a crash in C++ (an abort) shows the Python stack it happened under
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=90))
    try:
        results = {"global": _global_values(rank), "edge": _edge_cases(rank),
                   "ddp": _ddp_gradients(rank, torch)}
    finally:
        dist.destroy_process_group()
    Path(out, f"rank{rank}.json").write_text(json.dumps(results))


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
            case = cases.data(option)
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
