"""Blocked NumPy kernels: one read of both inputs, float64 sums, O(block) extra memory.

The hand-written ``np.mean((a - b) ** 2)`` makes two full-size temporaries
and three passes over memory. Here the residual of one block (a cache-sized
slice) goes into a reused buffer, is reduced at once (``np.dot`` for squares),
and the block sums add up in a Python float (float64). Large inputs are split
over a small thread pool: NumPy releases the GIL inside these calls.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

#: Elements of the single-block path (a float64 temporary) and of a block of rows.
BLOCK = 1 << 13
#: Elements per block of the blocked loop, by the residual's itemsize: large enough to amortise
#: the Python loop, small enough for L2, and below the size at which OpenBLAS starts threads for
#: one dot product (measured here: about 10^4 elements for float64; their start-up costs more
#: than the dot itself).
BLOCK_BY_ITEMSIZE = {4: 1 << 15, 8: 1 << 13}
#: MAE sums without BLAS, so its blocks need not stay small.
MAE_BLOCK = 1 << 15
#: Inputs with at least this many elements are split over threads.
PARALLEL_MIN = 1 << 21

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> int:
    """Worker threads for large inputs: ``MSEPLUG_NUM_THREADS``, else the cores (at most 4)."""
    setting = os.environ.get("MSEPLUG_NUM_THREADS")
    if setting:
        return max(1, int(setting))
    return min(os.cpu_count() or 1, 4)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared worker pool, created once (its size is read on first use)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mseplug")
    return _pool


def _block_sum(name: str, d: Any, spare: Any, delta: float) -> float:
    """Σ e(d) for one block of residuals ``d`` (overwritten); ``spare`` is a same-size buffer."""
    if name in ("mse", "rmse"):
        return float(np.dot(d, d))
    np.abs(d, out=d)
    if name == "mae":
        return float(np.add.reduce(d))
    # Huber with a = |r|, m = min(a, delta): Σ m·(a - m/2) = m·a - (m·m)/2.
    np.minimum(d, delta, out=spare)
    return float(np.dot(spare, d)) - 0.5 * float(np.dot(spare, spare))


def _range_total(name: str, a: Any, b: Any, lo: int, hi: int, dtype: Any, delta: float) -> float:
    block = MAE_BLOCK if name == "mae" else BLOCK_BY_ITEMSIZE[np.dtype(dtype).itemsize]
    size = min(block, hi - lo)
    buffer = np.empty(size, dtype)
    spare = np.empty(size, dtype) if name == "huber" else buffer
    total = 0.0
    with np.errstate(over="ignore"):  # an overflow here is redone in float64 (flat_total)
        for start in range(lo, hi, block):
            stop = min(start + block, hi)
            d = buffer[: stop - start]
            np.subtract(b[start:stop], a[start:stop], out=d, dtype=dtype)
            total += _block_sum(name, d, spare[: stop - start], delta)
    return total


def flat_total(name: str, y_true: Any, y_pred: Any, dtype: Any, delta: float) -> float:
    """Σ over every element of ``loss(y_pred - y_true)``, in float64.

    ``y_true`` and ``y_pred`` are 1-D views of equal length; ``dtype`` is the
    dtype the residual of a large input is computed in (float32 or float64).
    When float32 squares overflow although the inputs are finite, the sum is
    redone in float64, so the total is right whenever float64 can hold it.
    """
    n = y_pred.shape[0]
    if n <= BLOCK:  # one block: a float64 temporary is cheaper than the buffer bookkeeping
        d = np.subtract(y_pred, y_true, dtype=np.float64)
        if name in ("mse", "rmse"):
            # NumPy's pairwise sum, as np.mean and scikit-learn: identical small results.
            return float(np.add.reduce(np.multiply(d, d, out=d)))
        return _block_sum(name, d, np.empty_like(d) if name == "huber" else d, delta)
    total = _parallel_total(name, y_true, y_pred, dtype, delta)
    if (
        math.isinf(total)
        and dtype != np.float64
        and np.isfinite(y_true).all()
        and np.isfinite(y_pred).all()
    ):
        return _parallel_total(name, y_true, y_pred, np.float64, delta)
    return total


def _parallel_total(name: str, y_true: Any, y_pred: Any, dtype: Any, delta: float) -> float:
    n = y_pred.shape[0]
    workers = _threads() if n >= PARALLEL_MIN else 1
    if workers < 2:
        return _range_total(name, y_true, y_pred, 0, n, dtype, delta)
    edges = [n * i // workers for i in range(workers + 1)]
    futures = [
        _executor(workers).submit(_range_total, name, y_true, y_pred, lo, hi, dtype, delta)
        for lo, hi in zip(edges[1:-1], edges[2:])
    ]
    total = _range_total(name, y_true, y_pred, edges[0], edges[1], dtype, delta)
    return total + sum(future.result() for future in futures)


def _block_losses(name: str, d: Any, delta: float) -> Any:
    """Elementwise losses of a block of residuals, in place where possible."""
    if name in ("mse", "rmse"):
        return np.multiply(d, d, out=d)
    np.abs(d, out=d)
    if name == "mae":
        return d
    m = np.minimum(d, delta)
    d -= 0.5 * m
    return np.multiply(m, d, out=d)


def column_totals(
    name: str, y_true: Any, y_pred: Any, weight: Any, omit: bool, dtype: Any, delta: float
) -> tuple[Any, Any]:
    """Per-output ``(S, W)`` in float64 for ``(n, K)`` inputs, blocked over rows.

    ``weight`` is a float64 ``(n,)`` vector or ``None``; with ``omit`` an
    element whose target or prediction is NaN adds to neither sum.
    """
    n, k = y_pred.shape
    rows = max(1, BLOCK // k)
    total = np.zeros(k, np.float64)
    kept = np.zeros(k, np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        t, p = y_true[start:stop], y_pred[start:stop]
        d = _block_losses(name, np.subtract(p, t, dtype=dtype), delta)
        w = None if weight is None else weight[start:stop]
        if omit:
            drop = np.isnan(t) | np.isnan(p)
            d[drop] = 0
            keep = ~drop
            kept += keep.sum(axis=0) if w is None else w @ keep
        total += d.sum(axis=0, dtype=np.float64) if w is None else w @ d.astype(np.float64)
    if not omit:
        kept[:] = n if weight is None else float(weight.sum())
    return total, kept
