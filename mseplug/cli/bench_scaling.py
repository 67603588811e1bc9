"""``mseplug bench --scaling``: time against n, from 10 to 10⁸, for every backend and its anchor.

One point per backend, dtype (float32, then float64) and size: mseplug's
``mse`` and the anchor on the same data (NumPy against ``np.mean((a - b) **
2)``, torch against ``F.mse_loss``, JAX under ``jit`` against the jitted
``jnp`` expression, Dask against ``da.mean``), median seconds per call
measured side by side, every timing warm. NumPy, torch and JAX go to 10⁸,
Dask to 10⁷. JAX's float64 points turn on ``jax_enable_x64`` (after every
float32 point). The docs draw them on log axes (``docs/make_figures.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TextIO

import numpy as np

import mseplug
from mseplug.cli.bench_cases import Size, installed
from mseplug.cli.timing import compare

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


def _wide_jax() -> None:
    """Let JAX keep float64 arrays (it truncates them to float32 otherwise)."""
    if installed("jax"):
        import jax

        jax.config.update("jax_enable_x64", True)


def scaling_points(largest: int, size: Size, log: TextIO,
                   dtypes: tuple[str, ...] = ("float32", "float64")) -> list[dict[str, Any]]:
    """Points in the shared ``bench --json`` format, for n = 10 ... 10**largest and each dtype."""
    rng = np.random.default_rng(5)
    points = []
    for dtype in dtypes:
        if dtype == "float64":
            _wide_jax()
        for n in _sizes(largest):
            a = rng.standard_normal(n).astype(dtype)
            b = rng.standard_normal(n).astype(dtype)
            for backend, module, make, top in BACKENDS:
                if n > 10**top or not installed(module):
                    continue
                if log.isatty():
                    print(f"\r  scaling {backend} {dtype} n={n:.0e} ...   ", end="", file=log,
                          flush=True)
                anchor, (ours, theirs) = make(a, b)
                seconds = compare(ours, theirs, repeat=max(3, size.repeat // 3),
                                  budget=size.budget)
                points.append({"backend": backend, "loss": "mse", "n": n, "dtype": dtype,
                               "mseplug_s": seconds[0], "anchor": anchor, "anchor_s": seconds[1]})
                del ours, theirs
            del a, b
    if log.isatty():
        print("\r" + " " * 40 + "\r", end="", file=log, flush=True)
    return points


def scaling_table(points: list[dict[str, Any]]) -> str:
    """The points as a Markdown table: one row per dtype and n, mseplug / anchor per backend."""
    backends = list(dict.fromkeys(point["backend"] for point in points))
    lines = ["| dtype | n | " + " | ".join(f"{b} (mseplug / anchor)" for b in backends) + " |",
             "|---|---|" + "---|" * len(backends)]
    for dtype, n in sorted({(point["dtype"], point["n"]) for point in points}):
        cells = []
        for backend in backends:
            found = [p for p in points
                     if p["n"] == n and p["backend"] == backend and p["dtype"] == dtype]
            cells.append(f"{found[0]['mseplug_s']:.3g} / {found[0]['anchor_s']:.3g} s"
                         if found else "")
        lines.append(f"| {dtype} | {n:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
