"""Blocked NumPy kernels: one read of both inputs, float64 sums, O(block) extra memory.

The hand-written ``np.mean((a - b) ** 2)`` makes two full-size temporaries
and three passes over memory. Here the residual of one block (a cache-sized
slice) goes into a reused buffer, is reduced at once (``np.dot`` for squares),
and the block sums add up in a Python float (float64); :mod:`numpy_blocks
<mseplug._backends.numpy_blocks>` walks the blocks, over threads for large inputs.

A :class:`BlockKernel` says how one loss sums a block. The built-in losses
name theirs in their ``native`` table (:data:`SQUARED`, :data:`ABSOLUTE`,
:data:`HUBER`); any other loss gets :func:`generic_kernel`, its elementwise
function applied block by block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from mseplug._backends import numpy_blocks as blocks
from mseplug._backends import numpy_small as small
from mseplug._loss import Loss

#: Elements of the single-block path (a float64 temporary) and of a block of rows.
BLOCK = 1 << 13
#: Elements per dot product, by itemsize: below OpenBLAS's threading threshold (about 10^4
#: float64), as its threads cost more than the dot inside mseplug's workers. (threadpoolctl
#: holds BLAS to one thread only from the thread that controls OpenBLAS.)
DOT = {2: 1 << 15, 4: 1 << 15, 8: 10_000}

#: A loss's parameter values, in its declaration order.
Params = tuple[Any, ...]


class BlockKernel(NamedTuple):
    """How the NumPy backend sums one loss over a block of residuals.

    ``block_sum(d, spare, params)`` returns ``Σ e(d)`` as a float (``d`` may be
    overwritten; ``spare`` is a buffer of ``d``'s size); ``block_losses(d,
    params)`` returns ``e(d)`` (in place where it can). ``float64`` makes the
    residual float64 whatever the input dtype.
    """

    block_sum: Callable[[np.ndarray, np.ndarray, Params], float]
    block_losses: Callable[[np.ndarray, Params], np.ndarray]
    float64: bool = False
    spare: bool = False  # whether block_sum needs the spare buffer
    scalar: small.Scalar | None = None  # e(r) of one Python float, for a few elements
    #: Elements per block, or 0 for the largest L2 allows (``numpy_blocks.BLOCKS``). A formula
    #: of many NumPy operations makes as many temporaries: small blocks keep them in cache.
    block: int = 0


def _dot(x: np.ndarray, y: np.ndarray) -> float:
    """``x · y`` as dot products of at most ``DOT`` elements (see :data:`DOT`)."""
    step = DOT[x.dtype.itemsize]
    n = x.shape[0]
    if n <= step:
        return float(np.dot(x, y))
    rows = n // step
    if rows < 4 or _VECDOT is None:  # a few dots cost less than one np.vecdot (or NumPy 1.x)
        return sum(float(np.dot(x[i:i + step], y[i:i + step])) for i in range(0, n, step))
    head = float(np.add.reduce(_VECDOT(x[: rows * step].reshape(rows, step),  # every row at once
                                       y[: rows * step].reshape(rows, step)), dtype=np.float64))
    return head + float(np.dot(x[rows * step:], y[rows * step:])) if n % step else head


_VECDOT: Any = getattr(np, "vecdot", None)


def _squared_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return _dot(d, d)


def _squared_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.multiply(d, d, out=d)


def _absolute_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return float(np.add.reduce(np.abs(d, out=d)))


def _absolute_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.abs(d, out=d)


def _huber_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    # With a = |r|, m = min(a, delta): Σ m·(a - m/2) = m·a - (m·m)/2.
    np.abs(d, out=d)
    np.minimum(d, params[0], out=spare)  # params: (delta,)
    return _dot(spare, d) - 0.5 * _dot(spare, spare)


def _huber_losses(d: np.ndarray, params: Params) -> np.ndarray:
    np.abs(d, out=d)
    m = np.minimum(d, params[0])
    d -= 0.5 * m
    return np.multiply(m, d, out=d)


SQUARED = BlockKernel(_squared_sum, _squared_losses, scalar=small.squared)
ABSOLUTE = BlockKernel(_absolute_sum, _absolute_losses, scalar=small.absolute)
#: Huber's two dot products lose digits in float32 when the residuals are large: float64.
HUBER = BlockKernel(_huber_sum, _huber_losses, float64=True, spare=True, scalar=small.huber)

def _namespace() -> Any:
    """NumPy 2 is an Array API namespace itself (and the cheapest to call); 1.x needs the shim."""
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np
    import array_api_compat.numpy  # pragma: no cover - NumPy 1.x

    return array_api_compat.numpy  # pragma: no cover


#: The namespace the NumPy backend computes through.
NAMESPACE: Any = _namespace()

_generic: dict[Loss, BlockKernel] = {}
#: Elements per block of a loss's own elementwise definition: its temporaries (one per NumPy
#: operation of the formula) stay in L1/L2, where a 10^7-element log-cosh runs 3-5x faster
#: than over blocks of 10^5; the Python cost per block (a few us) is small beside it.
GENERIC_BLOCK = 1 << 13


def generic_kernel(loss: Loss) -> BlockKernel:
    """A kernel from the loss's own elementwise definition, block by block (cached)."""
    kernel = _generic.get(loss)
    if kernel is None:
        xp = NAMESPACE

        def block_losses(d: np.ndarray, params: Params) -> np.ndarray:
            return np.asarray(loss.evaluate_elementwise(xp, d, params))

        def block_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
            return float(np.add.reduce(block_losses(d, params), dtype=np.float64))

        kernel = _generic.setdefault(loss, BlockKernel(block_sum, block_losses, block=GENERIC_BLOCK))
    return kernel


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
    if n <= small.SMALL and kernel.scalar is not None and y_pred.dtype.kind == "f":
        return small.small_total(kernel.scalar, y_true, y_pred, params)
    if n <= BLOCK:
        return _single_block_total(kernel, y_true, y_pred, params)
    if kernel.float64:
        dtype = np.float64
    total = blocks.parallel_total(kernel, y_true, y_pred, dtype, params)
    if (
        math.isinf(total)
        and dtype != np.float64
        and np.isfinite(y_true).all()
        and np.isfinite(y_pred).all()
    ):
        return blocks.parallel_total(kernel, y_true, y_pred, np.float64, params)
    return total


def weighted_flat_totals(
    kernel: BlockKernel, y_true: Any, y_pred: Any, weight: Any, dtype: Any, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """``([Σ wᵢ·e(rᵢ)], [Σ wᵢ])`` for 1-D inputs: one read of each, O(block) memory.

    Blocks are computed in ``dtype`` (as :func:`flat_total`: float32 for float32
    inputs, float64 for short inputs) and their sums added in float64; a float32
    overflow is redone in float64.
    """
    n = y_pred.shape[0]
    dtype = np.dtype(np.float64 if kernel.float64 or n <= BLOCK else dtype)
    size = min(n, kernel.block or blocks.BLOCKS[dtype.itemsize])
    residual = np.empty(size, dtype)
    cast = np.empty(size, dtype) if weight.dtype != dtype else None
    total = weight_sum = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, size):
            stop = min(start + size, n)
            d, w = residual[: stop - start], weight[start:stop]
            np.subtract(y_pred[start:stop], y_true[start:stop], out=d, dtype=dtype)
            if cast is not None:
                w = cast[: stop - start]
                np.copyto(w, weight[start:stop], casting="unsafe")
            total += _dot(w, kernel.block_losses(d, params))
            weight_sum += float(np.add.reduce(w))  # in w's dtype: exact enough for one block
    if math.isinf(total) and dtype != np.float64 and np.isfinite(y_true).all() and \
            np.isfinite(y_pred).all():
        return weighted_flat_totals(kernel, y_true, y_pred, weight, np.float64, params)
    return np.array([total]), np.array([weight_sum])


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
