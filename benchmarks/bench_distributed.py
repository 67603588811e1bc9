"""Distributed speed: mseplug's global loss against what users write today, side by side.

Three parts, each the median of interleaved repeats (printed as ratios; a
ratio above 1 means mseplug is faster):

* ``ddp``: two gloo ranks on 127.0.0.1. One evaluation step = update with a
  small batch, then the global value. ``mseplug.torch.all_reduce`` against
  ``torch.distributed.all_gather_object`` of Accumulators (then merged) and
  against torchmetrics' ``MeanSquaredError.compute()`` (which syncs its states);
* ``dask``: a LocalCluster (2 worker processes) holding ``--n`` float32
  elements in memory. ``mseplug.mse``/``mae`` and the weighted MSE against the
  hand-written ``((a - b) ** 2).mean()``, ``abs(a - b).mean()`` and
  ``(w * (a - b) ** 2).sum() / w.sum()``;
* ``jax``: 4 forced host devices. ``shard_map`` + ``psum`` of
  ``sufficient_statistics`` then ``loss_from_statistics`` against the same
  computation written in ``jnp`` inside ``shard_map``, and against
  ``jnp.mean((a - b) ** 2)`` under ``jit`` on the sharded arrays.

These are measurements without goals: ``mseplug bench`` sets none for distributed runs.

Run: ``python benchmarks/bench_distributed.py [ddp|dask|jax|all] [--n 2e8] [--repeats 7]``.
Each part runs in its own process (JAX needs its device flags before it starts).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from mseplug.cli.timing import interleaved


def report(title: str, ours: str, medians: dict[str, float], goal: str = "") -> None:
    print(f"\n{title}")
    for name, seconds in medians.items():
        ratio = "" if name == ours else f"   ratio {medians[name] / medians[ours]:.2f}"
        print(f"  {name:<46} {seconds * 1e3:10.3f} ms{ratio}")
    if goal:
        print(f"  (ratio = other / mseplug; goal {goal})")


# -- torch.distributed ---------------------------------------------------------------------
def _ddp_rank(rank: int, port: int, repeats: int) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    import torch
    import torch.distributed as dist

    import mseplug
    import mseplug.torch

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    generator = torch.Generator().manual_seed(rank)
    batch = [torch.randn(256, dtype=torch.float64, generator=generator) for _ in range(2)]
    acc = mseplug.Accumulator("mse")

    def with_all_reduce() -> None:
        acc.update(*batch)
        mseplug.torch.all_reduce(acc).compute()

    def with_all_gather_object() -> None:
        acc.update(*batch)
        gathered: list[Any] = [None, None]
        dist.all_gather_object(gathered, acc)
        merged = gathered[0].empty_copy()
        for other in gathered:
            merged.merge(other)
        merged.compute()

    steps: dict[str, Callable[[], Any]] = {
        "mseplug.torch.all_reduce": with_all_reduce,
        "all_gather_object of Accumulators + merge": with_all_gather_object,
    }
    try:
        import torchmetrics

        metric = torchmetrics.MeanSquaredError()

        def with_torchmetrics() -> None:
            metric.update(*batch)
            metric.compute()

        steps["torchmetrics MeanSquaredError.compute()"] = with_torchmetrics
    except ImportError:
        print("(torchmetrics is not installed: its row is skipped)")

    def timed(fn: Callable[[], Any]) -> Callable[[], Any]:
        def step() -> None:
            for _ in range(20):  # 20 evaluation steps per sample
                fn()
        return step

    medians = interleaved({name: timed(fn) for name, fn in steps.items()}, repeats)
    if rank == 0:
        report("torch.distributed, 2 gloo ranks: one evaluation step (update 256 rows + global value)",
               "mseplug.torch.all_reduce", {k: v / 20 for k, v in medians.items()},
               "none; the sync cost")
    dist.destroy_process_group()


def bench_ddp(args: argparse.Namespace) -> None:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_rank, args=(port, args.repeats), nprocs=2)


# -- Dask ------------------------------------------------------------------------------------
def bench_dask(args: argparse.Namespace) -> None:
    import dask
    import dask.array as da
    import distributed

    import mseplug

    n = int(args.n)
    chunk = min(n, 10_000_000)
    # No work stealing: chunk i of a, b and w stays on one worker, as the columns of one
    # DataFrame partition do; otherwise moving 40 MB chunks dominates both sides.
    no_stealing = dask.config.set({"distributed.scheduler.work-stealing": False})
    cluster = distributed.LocalCluster(host="127.0.0.1", n_workers=2, threads_per_worker=1,
                                       processes=True, dashboard_address=None, silence_logs=50)
    with no_stealing, cluster, distributed.Client(cluster):
        rng = da.random.default_rng(0)
        a = rng.standard_normal(n, chunks=chunk, dtype=np.float32).persist()
        distributed.wait(a)
        b = a + rng.standard_normal(n, chunks=chunk, dtype=np.float32)  # made where a_i is
        w = 0 * a + rng.random(n, chunks=chunk, dtype=np.float32)
        b, w = dask.persist(b, w)
        distributed.wait([b, w])
        pairs = {
            "MSE": (lambda: mseplug.mse(a, b), lambda: ((a - b) ** 2).mean()),
            "MAE": (lambda: mseplug.mae(a, b), lambda: abs(a - b).mean()),
            "weighted MSE": (lambda: mseplug.mse(a, b, sample_weight=w),
                             lambda: (w * (a - b) ** 2).sum() / w.sum()),
            "weighted MAE": (lambda: mseplug.mae(a, b, sample_weight=w),
                             lambda: (w * abs(a - b)).sum() / w.sum()),
        }
        for case, (ours, hand) in pairs.items():
            medians = interleaved({f"mseplug ({case})": lambda f=ours: f().compute(),
                                   "hand-written dask expression": lambda f=hand: f().compute()},
                                  args.repeats)
            report(f"Dask, LocalCluster 2 workers, {n:.3g} float32, chunks of {chunk:.3g}: {case}",
                   f"mseplug ({case})", medians)


# -- JAX -------------------------------------------------------------------------------------
def bench_jax(args: argparse.Namespace) -> None:
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    import mseplug

    mesh = jax.make_mesh((4,), ("data",))
    n = int(min(args.n, 2e7))
    n -= n % 4
    spread = NamedSharding(mesh, P("data"))
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.device_put(jax.random.normal(key_a, (n,), jnp.float32), spread)
    b = jax.device_put(jax.random.normal(key_b, (n,), jnp.float32), spread)

    def ours_local(t: Any, p: Any) -> Any:
        S, W = jax.lax.psum(mseplug.sufficient_statistics("mse", t, p), "data")
        return mseplug.loss_from_statistics("mse", S, W)

    def hand_local(t: Any, p: Any) -> Any:
        total = jax.lax.psum(jnp.sum((p - t) ** 2), "data")
        return total / jax.lax.psum(t.shape[0], "data")

    def sharded(local: Callable[..., Any]) -> Callable[..., Any]:
        return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")),
                                     out_specs=P()))

    ours, hand = sharded(ours_local), sharded(hand_local)
    auto = jax.jit(lambda t, p: jnp.mean((p - t) ** 2))
    medians = interleaved({
        "shard_map + psum of mseplug statistics": lambda: ours(a, b).block_until_ready(),
        "shard_map + psum, hand-written jnp": lambda: hand(a, b).block_until_ready(),
        "jit(jnp.mean((p - t) ** 2)) on sharded arrays": lambda: auto(a, b).block_until_ready(),
    }, args.repeats * 5)
    report(f"JAX, 4 host devices, {n:.3g} float32, MSE", "shard_map + psum of mseplug statistics",
           medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", default="all", choices=["ddp", "dask", "jax", "all"])
    parser.add_argument("--n", type=float, default=2e8, help="elements for Dask (JAX: at most 2e7)")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if args.part == "all":
        for part in ("ddp", "jax", "dask"):
            subprocess.run([sys.executable, __file__, part, "--n", str(args.n),
                            "--repeats", str(args.repeats)], check=True)
        return
    if args.part == "jax":
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    {"ddp": bench_ddp, "dask": bench_dask, "jax": bench_jax}[args.part](args)


if __name__ == "__main__":
    main()
