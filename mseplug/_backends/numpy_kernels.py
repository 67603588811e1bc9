"""Blocked NumPy kernels: one read of both inputs, float64 sums, O(block) extra memory.

The hand-written ``np.mean((a - b) ** 2)`` makes two full-size temporaries
and three passes over memory. Here the residual of one block (a cache-sized
slice) goes into a reused buffer, is reduced at once (``np.dot`` for squares),
and the block sums add up in a Python float (float64). Large inputs are split
over a small thread pool: NumPy releases the GIL inside these calls.

A :class:`BlockKernel` says how one loss sums a block. The built-in losses
name theirs in their ``native`` table (:data:`SQUARED`, :data:`ABSOLUTE`,
:data:`HUBER`); any other loss gets :func:`generic_kernel`, its elementwise
function applied block by block.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

from mseplug._loss import Loss

#: Elements of the single-block path (a float64 temporary) and of a block of rows.
BLOCK = 1 << 13
#: Inputs with at least this many elements are split over threads.
PARALLEL_MIN = 1 << 21

Params = dict[str, Any]


class BlockKernel(NamedTuple):
    """How the NumPy backend sums one loss over a block of residuals.

    ``block_sum(d, spare, params)`` returns ``Σ e(d)`` as a float (``d`` may be
    overwritten; ``spare`` is a buffer of ``d``'s size); ``block_losses(d,
    params)`` returns ``e(d)`` (in place where it can). ``block`` maps the
    residual's itemsize to the elements per block; ``float64`` makes the
    residual float64 whatever the input dtype.
    """

    block_sum: Callable[[np.ndarray, np.ndarray, Params], float]
    block_losses: Callable[[np.ndarray, Params], np.ndarray]
    block: dict[int, int]
    float64: bool = False
    spare: bool = False  # whether block_sum needs the spare buffer


def _squared_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return float(np.dot(d, d))


def _squared_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.multiply(d, d, out=d)


def _absolute_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return float(np.add.reduce(np.abs(d, out=d)))


def _absolute_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.abs(d, out=d)


def _huber_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    # With a = |r|, m = min(a, delta): Σ m·(a - m/2) = m·a - (m·m)/2.
    np.abs(d, out=d)
    np.minimum(d, params["delta"], out=spare)
    return float(np.dot(spare, d)) - 0.5 * float(np.dot(spare, spare))


def _huber_losses(d: np.ndarray, params: Params) -> np.ndarray:
    np.abs(d, out=d)
    m = np.minimum(d, params["delta"])
    d -= 0.5 * m
    return np.multiply(m, d, out=d)


#: Block sizes by the residual's itemsize: large enough to amortise the Python loop, small
#: enough for L2, and below the size at which OpenBLAS starts threads for one dot product
#: (measured here: about 10^4 elements for float64; their start-up costs more than the dot).
DOT_BLOCK = {2: 1 << 15, 4: 1 << 15, 8: 1 << 13}
#: Kernels without BLAS need not keep their blocks small.
PLAIN_BLOCK = {2: 1 << 15, 4: 1 << 15, 8: 1 << 15}

SQUARED = BlockKernel(_squared_sum, _squared_losses, DOT_BLOCK)
ABSOLUTE = BlockKernel(_absolute_sum, _absolute_losses, PLAIN_BLOCK)
#: Huber's two dot products lose digits in float32 when the residuals are large: float64.
HUBER = BlockKernel(_huber_sum, _huber_losses, DOT_BLOCK, float64=True, spare=True)

_generic: dict[Loss, BlockKernel] = {}


def generic_kernel(loss: Loss) -> BlockKernel:
    """A kernel from the loss's own elementwise definition, block by block (cached)."""
    kernel = _generic.get(loss)
    if kernel is None:
        import array_api_compat.numpy as xp

        elementwise = loss.elementwise

        def block_losses(d: np.ndarray, params: Params) -> np.ndarray:
            return np.asarray(elementwise(xp, d, **params))

        def block_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
            return float(np.add.reduce(block_losses(d, params), dtype=np.float64))

        kernel = _generic.setdefault(loss, BlockKernel(block_sum, block_losses, PLAIN_BLOCK))
    return kernel


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


def _range_total(kernel: BlockKernel, a: Any, b: Any, lo: int, hi: int, dtype: Any,
                 params: Params) -> float:
    block = kernel.block[np.dtype(dtype).itemsize]
    size = min(block, hi - lo)
    buffer = np.empty(size, dtype)
    spare = np.empty(size, dtype) if kernel.spare else buffer
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is redone in float64 (flat_total)
        for start in range(lo, hi, block):
            stop = min(start + block, hi)
            d = buffer[: stop - start]
            np.subtract(b[start:stop], a[start:stop], out=d, dtype=dtype)
            total += kernel.block_sum(d, spare[: stop - start], params)
    return total


# The decorator form of errstate costs about half of the ``with`` form (0.6 us, not 1.2 us).
@np.errstate(over="ignore", invalid="ignore")  # inf or NaN: the backend warns at the caller's line
def _single_block_total(kernel: BlockKernel, y_true: Any, y_pred: Any, params: Params) -> float:
    """One block: a float64 temporary; NumPy's pairwise sum, as np.mean and sklearn."""
    d = np.subtract(y_pred, y_true, dtype=np.float64)
    return float(np.add.reduce(kernel.block_losses(d, params)))


def flat_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any, params: Params) -> float:
    """Σ over every element of ``loss(y_pred - y_true)``, in float64.

    ``y_true`` and ``y_pred`` are 1-D views of equal length; ``dtype`` is the
    dtype the residual of a large input is computed in (float32 or float64).
    When float32 losses overflow although the inputs are finite, the sum is
    redone in float64, so the total is right whenever float64 can hold it.
    """
    n = y_pred.shape[0]
    if n <= BLOCK:
        return _single_block_total(kernel, y_true, y_pred, params)
    if kernel.float64:
        dtype = np.float64
    total = _parallel_total(kernel, y_true, y_pred, dtype, params)
    if (
        math.isinf(total)
        and dtype != np.float64
        and np.isfinite(y_true).all()
        and np.isfinite(y_pred).all()
    ):
        return _parallel_total(kernel, y_true, y_pred, np.float64, params)
    return total


def _parallel_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any,
                    params: Params) -> float:
    n = y_pred.shape[0]
    workers = _threads() if n >= PARALLEL_MIN else 1
    if workers < 2:
        return _range_total(kernel, y_true, y_pred, 0, n, dtype, params)
    edges = [n * i // workers for i in range(workers + 1)]
    futures = [
        _executor(workers).submit(_range_total, kernel, y_true, y_pred, lo, hi, dtype, params)
        for lo, hi in zip(edges[1:-1], edges[2:])
    ]
    total = _range_total(kernel, y_true, y_pred, edges[0], edges[1], dtype, params)
    return total + sum(future.result() for future in futures)


def column_totals(
    kernel: BlockKernel, y_true: Any, y_pred: Any, weight: Any, omit: bool, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """Per-output ``(S, W)`` in float64 for ``(n, K)`` inputs, blocked over rows.

    ``weight`` is an ``(n,)`` vector or ``None``; with ``omit`` an element
    whose target or prediction is NaN adds to neither sum. Residuals are float64.
    """
    n, k = y_pred.shape
    rows = max(1, BLOCK // k)
    total = np.zeros(k, np.float64)
    kept = np.zeros(k, np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            t, p = y_true[start:stop], y_pred[start:stop]
            d = kernel.block_losses(np.subtract(p, t, dtype=np.float64), params)
            w = None if weight is None else weight[start:stop].astype(np.float64, copy=False)
            if omit:
                drop = np.isnan(t) | np.isnan(p)
                d[drop] = 0
                keep = ~drop
                kept += keep.sum(axis=0) if w is None else w @ keep
            total += d.sum(axis=0) if w is None else w @ d
    if not omit:
        kept[:] = n if weight is None else float(weight.sum(dtype=np.float64))
    return total, kept
