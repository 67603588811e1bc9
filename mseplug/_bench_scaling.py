"""``mseplug bench --scaling``: time against n, from 10 to 10⁸, for every backend and its anchor.

One point per backend and size: mseplug's ``mse`` and the anchor on the same
float32 data (NumPy against ``np.mean((a - b) ** 2)``, torch against
``F.mse_loss``, JAX under ``jit`` against the jitted ``jnp`` expression, Dask
against ``da.mean``), median seconds per call measured side by side. The docs
draw them on log axes (``docs/make_figures.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np

import mseplug
from mseplug._bench_cases import Size, installed
from mseplug._timing import compare

Pair = tuple[Callable[[], Any], Callable[[], Any]]


def _numpy(a: np.ndarray, b: np.ndarray) -> tuple[str, Pair]:
    return "np.mean((a-b)**2)", (lambda: mseplug.mse(a, b), lambda: np.mean((a - b) ** 2))


def _torch(a: np.ndarray, b: np.ndarray) -> tuple[str, Pair]:
    import torch
    import torch.nn.functional as F

    t, p = torch.from_numpy(a), torch.from_numpy(b)
    return "F.mse_loss", (lambda: mseplug.mse(t, p), lambda: F.mse_loss(p, t))


def _jax(a: np.ndarray, b: np.ndarray) -> tuple[str, Pair]:
    import jax
    import jax.numpy as jnp

    t, p = jnp.asarray(a), jnp.asarray(b)
    ours = jax.jit(lambda t, p: mseplug.mse(t, p))
    theirs = jax.jit(lambda t, p: jnp.mean((t - p) ** 2))
    return "jit of the jnp expression", (lambda: ours(t, p).block_until_ready(),
                                         lambda: theirs(t, p).block_until_ready())


def _dask(a: np.ndarray, b: np.ndarray) -> tuple[str, Pair]:
    import dask.array as da

    chunks = max(a.shape[0] // 8, 1)
    t, p = da.from_array(a, chunks=chunks), da.from_array(b, chunks=chunks)
    return "da.mean((a-b)**2)", (lambda: mseplug.mse(t, p).compute(),
                                 lambda: da.mean((p - t) ** 2).compute())


#: Backend, module that must be installed, the pair maker, the largest exponent it is run to.
BACKENDS = (("numpy", "numpy", _numpy, 8), ("torch", "torch", _torch, 8),
            ("jax", "jax", _jax, 8), ("dask", "dask", _dask, 7))


def _sizes(largest: int) -> Iterator[int]:
    return (10**k for k in range(1, largest + 1))


def scaling_points(largest: int, size: Size, log: TextIO) -> list[dict[str, Any]]:
    """Points in the shared ``bench --json`` format, for n = 10 ... 10**largest."""
    rng = np.random.default_rng(5)
    points = []
    for n in _sizes(largest):
        a = rng.standard_normal(n).astype(np.float32)
        b = rng.standard_normal(n).astype(np.float32)
        for backend, module, make, top in BACKENDS:
            if n > 10**top or not installed(module):
                continue
            if log.isatty():
                print(f"\r  scaling {backend} n={n:.0e} ...   ", end="", file=log, flush=True)
            anchor, (ours, theirs) = make(a, b)
            seconds = compare(ours, theirs, repeat=max(3, size.repeat // 3), budget=size.budget)
            points.append({"backend": backend, "loss": "mse", "n": n, "dtype": "float32",
                           "mseplug_s": seconds[0], "anchor": anchor, "anchor_s": seconds[1]})
        del a, b
    if log.isatty():
        print("\r" + " " * 40 + "\r", end="", file=log, flush=True)
    return points


def scaling_table(points: list[dict[str, Any]]) -> str:
    """The points as a Markdown table: one row per n, mseplug / anchor per backend."""
    backends = list(dict.fromkeys(point["backend"] for point in points))
    lines = ["| n | " + " | ".join(f"{b} (mseplug / anchor)" for b in backends) + " |",
             "|---|" + "---|" * len(backends)]
    for n in sorted({point["n"] for point in points}):
        cells = []
        for backend in backends:
            found = [p for p in points if p["n"] == n and p["backend"] == backend]
            cells.append(f"{found[0]['mseplug_s']:.3g} / {found[0]['anchor_s']:.3g} s"
                         if found else "")
        lines.append(f"| {n:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
