"""The cases ``mseplug bench`` times: each installed backend against its anchor.

Each function returns :class:`Row` records for one backend, timed side by
side with :func:`mseplug._timing.compare`. The goals are the performance
contract (docs/conventions.md): ``ratio = anchor time / mseplug time``, so a
goal ``>= 3`` means "at least 3 times faster" and ``>= 0.91`` means "within
1.1 times the anchor's time".
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, NamedTuple

import numpy as np

import mseplug
from mseplug._timing import compare, peak_bytes


class Size(NamedTuple):
    """Input sizes and timing effort of one run (``--quick`` or full)."""

    large: int  # NumPy, torch forward+backward, Dask
    jit: int  # JAX under jit
    repeat: int
    budget: float  # seconds per timing


@dataclass
class Row:
    """One line of the table, in the shared ``mseplug bench --json`` format."""

    backend: str
    case: str
    anchor: str
    mseplug_s: float
    anchor_s: float
    goal: str = ""
    goal_value: float | None = None
    mseplug_bytes: int | None = None  # peak extra memory of one call (tracemalloc; NumPy rows)
    anchor_bytes: int | None = None

    @property
    def ratio(self) -> float:
        return self.anchor_s / self.mseplug_s

    @property
    def met(self) -> bool | None:
        return None if self.goal_value is None else self.ratio >= self.goal_value

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


#: The size the goals of the large rows are set for.
GOAL_SIZE = 10**7


def count(n: int) -> str:
    """``10**7`` as ``'1e7'``."""
    return f"{n:.0e}".replace("e+0", "e").replace("e+", "e")


def _row(backend: str, case: str, anchor: str, times: tuple[float, float],
         goal: float | None = None, words: str = "") -> Row:
    text = "" if goal is None else f">= {goal:.3g}" + (f" ({words})" if words else "")
    return Row(backend, case, anchor, times[0], times[1], text, goal)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _numpy_mse(a: np.ndarray, b: np.ndarray) -> Any:
    return np.mean((a - b) ** 2)


def _numpy_mae(a: np.ndarray, b: np.ndarray) -> Any:
    return np.mean(np.abs(a - b))


def _timed(size: Size, ours: Any, theirs: Any, *args: Any) -> tuple[float, float]:
    """``compare`` of ``ours(*args)`` and ``theirs(*args)``."""
    return compare(partial(ours, *args), partial(theirs, *args), repeat=size.repeat,
                   budget=size.budget)


def _with_memory(row: Row, ours: Any, theirs: Any, *args: Any) -> Row:
    """``row`` with the peak extra memory of one call of each side (tracemalloc sees NumPy)."""
    row.mseplug_bytes, row.anchor_bytes = peak_bytes(partial(ours, *args)), peak_bytes(
        partial(theirs, *args))
    return row


def numpy_rows(size: Size) -> list[Row]:
    rng = np.random.default_rng(0)
    rows = []
    n = size.large
    for dtype in (np.float32, np.float64):
        a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
        case = f"n={count(n)} {np.dtype(dtype).name}"
        wide = dtype == np.float64
        # The goals are for 10^7 elements (out of cache); --quick's smaller inputs only report.
        def goal(value: float) -> float | None:
            return value if n >= GOAL_SIZE else None

        rows += [
            _with_memory(_row("numpy", f"mse {case}", "np.mean((a-b)**2)",
                              _timed(size, mseplug.mse, _numpy_mse, a, b), goal(3.5 if wide else 3.0)),
                         mseplug.mse, _numpy_mse, a, b),
            _row("numpy", f"mse {case}", "np.dot(a, b) (bandwidth)",
                 _timed(size, mseplug.mse, np.dot, a, b), goal(0.8 if wide else 0.9)),
            _with_memory(_row("numpy", f"mae {case}", "np.mean(np.abs(a-b))",
                              _timed(size, mseplug.mae, _numpy_mae, a, b), goal(3.0)),
                         mseplug.mae, _numpy_mae, a, b),
        ]
    small = rng.standard_normal(8), rng.standard_normal(8)
    rows.append(_row("numpy", "mse n=8 float64", "np.mean((a-b)**2)",
                     _timed(size, mseplug.mse, _numpy_mse, *small), 1.2))
    return rows


def sklearn_rows(size: Size) -> list[Row]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(8), rng.standard_normal(8)
    return [
        _row("sklearn", "mse n=8 float64", "sklearn mean_squared_error",
             _timed(size, mseplug.mse, mean_squared_error, a, b), 25.0),
        _row("sklearn", "mae n=8 float64", "sklearn mean_absolute_error",
             _timed(size, mseplug.mae, mean_absolute_error, a, b)),
    ]


def torch_rows(size: Size) -> list[Row]:
    import torch
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(0)
    rows = []
    for n in (8, 64, 1000):
        t, p = torch.randn(n, generator=generator), torch.randn(n, generator=generator)
        for ours, anchor, function in ((mseplug.mse, "F.mse_loss", F.mse_loss),
                                       (mseplug.mae, "F.l1_loss", F.l1_loss)):
            times = compare(partial(ours, t, p), partial(function, p, t), repeat=size.repeat,
                            budget=size.budget)  # torch's order: (input, target)
            goal, words = (1.0, "no slower") if n == 64 else (1 / 1.1, "within 1.1x")
            rows.append(_row("torch", f"{ours.loss.name} forward n={n} float32", anchor, times,
                             goal, words))
    t, p, w = (torch.rand(64, generator=generator) for _ in range(3))
    rows.append(_row("torch", "mse weighted forward n=64 float32", "(w*(p-t)**2).sum()/w.sum()",
                     compare(lambda: mseplug.mse(t, p, sample_weight=w),
                             lambda: (w * (p - t) ** 2).sum() / w.sum(), repeat=size.repeat,
                             budget=size.budget), 1 / 1.5, "at most 1.5x slower"))
    leaf = p.clone().requires_grad_(True)
    rows.append(_row("torch", "mseplug.grad mse n=64 float32", "autograd.grad of F.mse_loss",
                     compare(lambda: mseplug.grad("mse", t, p),
                             lambda: torch.autograd.grad(F.mse_loss(leaf, t), leaf),
                             repeat=size.repeat, budget=size.budget), 0.5, "at most 2x"))
    t = torch.randn(size.large, generator=generator)
    p = torch.randn(size.large, generator=generator).requires_grad_(True)

    def step(loss: Any) -> Any:
        def run() -> None:
            p.grad = None
            loss().backward()
        return run

    rows.append(_row("torch", f"mse forward+backward n={count(size.large)} float32", "F.mse_loss",
                     compare(step(lambda: mseplug.mse(t, p)), step(lambda: F.mse_loss(p, t)),
                             repeat=size.repeat, budget=size.budget),
                     1.3 if size.large >= GOAL_SIZE else None))
    return rows


def jax_rows(size: Size) -> list[Row]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.standard_normal(size.jit), dtype=jnp.float32)
    b = jnp.asarray(rng.standard_normal(size.jit), dtype=jnp.float32)
    rows = []
    for loss, hand in ((mseplug.mse, _jnp_mse), (mseplug.mae, _jnp_mae)):
        ours, theirs = jax.jit(loss), jax.jit(hand)
        rows.append(_row("jax", f"{loss.loss.name} jit n={count(size.jit)} float32",
                         "jit of the jnp expression",
                         _timed(size, _waited(ours), _waited(theirs), a, b), 0.97))
    return rows


def _jnp_mse(a: Any, b: Any) -> Any:
    import jax.numpy as jnp

    return jnp.mean((a - b) ** 2)


def _jnp_mae(a: Any, b: Any) -> Any:
    import jax.numpy as jnp

    return jnp.mean(jnp.abs(a - b))


def _waited(function: Any) -> Any:
    """``function`` that waits for its JAX result (dispatch is asynchronous)."""
    def call(*args: Any) -> Any:
        return function(*args).block_until_ready()
    return call


def dask_rows(size: Size) -> list[Row]:
    import dask.array as da

    chunks = max(size.large // 8, 1)
    a = da.random.default_rng(3).standard_normal(size.large, chunks=chunks).persist()
    b = da.random.default_rng(4).standard_normal(size.large, chunks=chunks).persist()
    def ours(a: Any, b: Any) -> Any:
        return mseplug.mse(a, b).compute()

    def theirs(a: Any, b: Any) -> Any:
        return da.mean((a - b) ** 2).compute()

    return [_row("dask", f"mse n={count(size.large)} float64, {size.large // chunks} chunks",
                 "da.mean((a-b)**2)", _timed(size, ours, theirs, a, b))]


#: Backend name, the module that must be installed, the function giving its rows.
CASES = (("numpy", "numpy", numpy_rows), ("sklearn", "sklearn", sklearn_rows),
         ("torch", "torch", torch_rows), ("jax", "jax", jax_rows), ("dask", "dask", dask_rows))
