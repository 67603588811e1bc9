"""How the NumPy backend visits a long input: block by block, over a few threads, in float64.

The hand-written ``np.mean((a - b) ** 2)`` makes two full-size temporaries
and three passes over memory. Here each block's residual (a cache-sized
slice) goes into a reused buffer, is reduced at once by the loss's
:class:`~mseplug.backend.numpy.kernels.BlockKernel`, and the block sums add
up in a Python float (float64): one read of both inputs, O(block) memory.
:func:`residual` is the one place the NumPy backend forms ``y_pred - y_true``.

NumPy releases the GIL inside these calls, so threads add up blocks in
parallel. Threads take blocks one at a time, so a core that another process
slows down takes fewer of them (a fixed split would wait for its half), and
the block sums are added in block order: the same total from any number of
threads, bit for bit. The pool is fork-safe: a child process forked from a
parent that had one starts without it (the parent's threads do not exist in
the child) and makes its own on first use.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mseplug.backend.numpy.kernels import BlockKernel, Params, dot

#: Inputs with at most this many elements are summed in Python floats (see ``kernels``).
SMALL = 16
#: Elements of the single-block path (a float64 temporary) and of a block of rows.
BLOCK = 1 << 13
#: Inputs with at least this many elements are split over threads.
PARALLEL_MIN = 1 << 20
#: Elements per block, by the residual's itemsize: as large as L2 allows.
BLOCKS = {2: 1 << 18, 4: 1 << 18, 8: 1 << 17}


def residual(y_true: np.ndarray, y_pred: np.ndarray, out: np.ndarray | None, dtype: Any
             ) -> np.ndarray:
    """``y_pred - y_true`` in ``dtype`` (into ``out`` when given): the one place it is formed."""
    if out is None:
        return np.subtract(y_pred, y_true, dtype=dtype)
    return np.subtract(y_pred, y_true, out=out, dtype=dtype)


def block_losses(kernel: BlockKernel, t: np.ndarray, p: np.ndarray, out: np.ndarray | None,
                 dtype: Any, params: Params) -> np.ndarray:
    """The losses of one block: the kernel on the block's residual, or on the pair."""
    if kernel.pair is not None:
        return kernel.pair(t, p, dtype, params)
    return kernel.block_losses(residual(t, p, out, dtype), params)


def block_sum(kernel: BlockKernel, t: np.ndarray, p: np.ndarray, out: np.ndarray | None,
              spare: np.ndarray | None, dtype: Any, params: Params) -> float:
    """``Σ`` of one block's losses, as a float (its pieces' sums added in order)."""
    if kernel.piece:
        return in_order(piece_sums(kernel, t, p, out, dtype, params))
    if kernel.pair is not None:
        return float(np.add.reduce(kernel.pair(t, p, dtype, params), dtype=np.float64))
    d = residual(t, p, out, dtype)
    return kernel.block_sum(d, d if spare is None else spare, params)


def piece_sums(kernel: BlockKernel, t: np.ndarray, p: np.ndarray, out: np.ndarray | None,
               dtype: Any, params: Params) -> list[float]:
    """The sums of each ``kernel.piece`` elements of one block's losses, each NumPy's pairwise
    sum in float64, as a block of that size alone would have it."""
    losses = block_losses(kernel, t, p, out, dtype, params)
    piece = kernel.piece
    whole = losses.shape[0] // piece * piece
    sums = np.add.reduce(losses[:whole].reshape(-1, piece), axis=1, dtype=np.float64).tolist()
    if whole < losses.shape[0]:
        sums.append(float(np.add.reduce(losses[whole:], dtype=np.float64)))
    return sums


def in_order(values: list[float]) -> float:
    """``0 + v₀ + v₁ + ...`` from the left, as the block sums of a long input are added."""
    total = 0.0
    for value in values:
        total += value
    return total


# -- a few elements: Python floats -----------------------------------------------------------
def pairwise_sum(values: list[float]) -> float:
    """``Σ values`` in NumPy's pairwise order for up to 128 values (its unrolled base case)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for value in values:
            total += value
        return total
    if n < 16:  # one unrolled block of eight, then the rest in order (no copy of the eight)
        total = ((values[0] + values[1]) + (values[2] + values[3])) + (
            (values[4] + values[5]) + (values[6] + values[7]))
        if n > 8:  # (no empty slice for eight)
            for value in values[8:]:
                total += value
        return total
    r = values[:8]
    whole = n - n % 8
    for start in range(8, whole, 8):
        for j in range(8):
            r[j] += values[start + j]
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for value in values[whole:]:
        total += value
    return total


# -- one long input ------------------------------------------------------------------------------
# The decorator form of errstate costs about half of the ``with`` form (0.6 us, not 1.2 us).
@np.errstate(over="ignore", invalid="ignore")  # inf or NaN: the backend warns at the caller's line
def _single_block_total(kernel: BlockKernel, y_true: Any, y_pred: Any, params: Params) -> float:
    """One block: a float64 temporary; NumPy's pairwise sum, as np.mean and sklearn."""
    return float(np.add.reduce(block_losses(kernel, y_true, y_pred, None, np.float64, params)))


def flat_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any, params: Params) -> float:
    """Σ over every element of the loss, in float64.

    ``y_true`` and ``y_pred`` are 1-D views of equal length; ``dtype`` is the
    dtype the losses of a large input are computed in (float32 or float64).
    When float32 losses overflow although the inputs are finite, the sum is
    redone in float64, so the total is right whenever float64 can hold it.
    """
    n = y_pred.shape[0]
    if n <= SMALL and kernel.scalar is not None and y_pred.dtype.kind == "f":
        # a few elements: Python floats, summed in NumPy's order (no array temporaries)
        return pairwise_sum(kernel.scalar(y_true.tolist(), y_pred.tolist(), params))
    if n <= BLOCK:
        return _single_block_total(kernel, y_true, y_pred, params)
    if kernel.float64:
        dtype = np.float64
    total = parallel_total(kernel, y_true, y_pred, dtype, params)
    if (
        math.isinf(total)
        and dtype != np.float64
        and np.isfinite(y_true).all()
        and np.isfinite(y_pred).all()
    ):
        return parallel_total(kernel, y_true, y_pred, np.float64, params)
    return total


# The backend's errstate (see NumpyBackend.run): a loss of the pair may divide by zero outside
# its domain, which this call learns only from the least values.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def least_and_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any, params: Params
                    ) -> tuple[float, float, float]:
    """:func:`flat_total`, and the least value of each input (NaN where one has a NaN), taken
    block by block as the kernel reads them: a domain checked without a pass of its own."""
    n = y_pred.shape[0]
    if n <= BLOCK or kernel.float64 or kernel.pair is None:
        return (_least(y_true), _least(y_pred), flat_total(kernel, y_true, y_pred, dtype, params))
    least: list[Any] = []
    total = parallel_total(kernel, y_true, y_pred, dtype, params, least)
    least_true = _least_of([pair[0] for pair in least])
    least_pred = _least_of([pair[1] for pair in least])
    if math.isinf(total) and dtype != np.float64 and math.isfinite(least_true) and \
            math.isfinite(least_pred) and np.isfinite(y_true).all() and np.isfinite(y_pred).all():
        total = parallel_total(kernel, y_true, y_pred, np.float64, params)  # as flat_total
    return least_true, least_pred, total


def _least(x: Any) -> float:
    return float(np.minimum.reduce(x)) if x.shape[0] else math.inf


def _least_of(values: list[float]) -> float:
    """The least of the blocks' least values; NaN if one is NaN (``min`` would depend on the
    order)."""
    if any(value != value for value in values):
        return math.nan
    return min(values, default=math.inf)


def parallel_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any,
                   params: Params, least: list[Any] | None = None) -> float:
    """``Σ e`` in float64, the losses in ``dtype``: over the calling thread and the worker
    threads (this thread alone below :data:`PARALLEL_MIN` elements). With ``least`` (an
    empty list), the least values of each block's two inputs go into it too."""
    n = y_pred.shape[0]
    block = kernel.block or BLOCKS[np.dtype(dtype).itemsize]
    if n <= block:
        if least is not None:
            least.append((_least(y_true), _least(y_pred)))
        return _one_block_sum(kernel, y_true, y_pred, dtype, params)
    workers = _threads() if n >= PARALLEL_MIN else 1
    sums: list[Any] = [0.0] * -(-n // block)
    if least is not None:
        least.extend([(math.inf, math.inf)] * len(sums))
    job = (kernel, y_true, y_pred, n, dtype, params, block, itertools.count(), sums, least)
    futures = [_executor(workers).submit(_take_blocks, *job) for _ in range(workers - 1)]
    _take_blocks(*job)
    for future in futures:
        future.result()  # a worker that started late found no block left
    if kernel.piece:  # each block's pieces, in order: the sums of blocks of kernel.piece
        return in_order([value for pieces in sums for value in pieces])
    return in_order(sums)


def _take_blocks(kernel: BlockKernel, a: Any, b: Any, n: int, dtype: Any, params: Params,
                 block: int, tickets: Iterator[int], sums: list[Any],
                 least: list[Any] | None = None) -> None:
    """Sum blocks until none is left: each ``next(tickets)`` is the index of a block no other
    thread has (``itertools.count`` hands them out atomically)."""
    count = len(sums)
    buffer = np.empty(block, dtype)
    spare = np.empty(block, dtype) if kernel.spare else buffer
    # A worker thread has its own errstate: the backend's (an overflow is redone in float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for index in tickets:
            if index >= count:
                return
            start = index * block
            stop = min(start + block, n)
            if least is not None:
                least[index] = (_least(a[start:stop]), _least(b[start:stop]))
            if kernel.piece:
                sums[index] = piece_sums(kernel, a[start:stop], b[start:stop],
                                         buffer[: stop - start], dtype, params)
                continue
            sums[index] = block_sum(kernel, a[start:stop], b[start:stop], buffer[: stop - start],
                                    spare[: stop - start], dtype, params)


@np.errstate(over="ignore", invalid="ignore")  # an overflow is redone in float64
def _one_block_sum(kernel: BlockKernel, a: Any, b: Any, dtype: Any, params: Params) -> float:
    """An input of one block, the residual in a temporary: no tickets, no threads."""
    spare = np.empty(a.shape[0], dtype) if kernel.spare else None
    return block_sum(kernel, a, b, None, spare, dtype, params)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _threads() -> int:
    """Worker threads for large inputs: ``MSEPLUG_NUM_THREADS``, else the cores (at most 4)."""
    setting = os.environ.get("MSEPLUG_NUM_THREADS")
    if setting:
        return max(1, int(setting))
    return min(os.cpu_count() or 1, 4)


def _executor(workers: int) -> ThreadPoolExecutor:
    """The shared worker pool, created once per process (its size is read on first use)."""
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            pool = _pool
            if pool is None:
                pool = _pool = ThreadPoolExecutor(max_workers=workers,
                                                  thread_name_prefix="mseplug")
    return pool


def _forget_pool_in_child() -> None:
    """After ``fork``, in the child: drop the parent's pool, whose threads were not copied
    (work submitted to it would wait forever), and its lock, which another thread of the
    parent may have held at the fork. The child makes a fresh pool on first use."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_pool_in_child)


# -- with weights, and per output ---------------------------------------------------------------
def weighted_flat_totals(
    kernel: BlockKernel, y_true: Any, y_pred: Any, weight: Any, dtype: Any, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """``([Σ wᵢ·eᵢ], [Σ wᵢ])`` for 1-D inputs: one read of each, O(block) memory.

    Blocks are computed in ``dtype`` (as :func:`flat_total`: float32 for float32
    inputs, float64 for short inputs) and their sums added in float64; a float32
    overflow is redone in float64.
    """
    n = y_pred.shape[0]
    dtype = np.dtype(np.float64 if kernel.float64 or n <= BLOCK else dtype)
    size = min(n, kernel.piece or kernel.block or BLOCKS[dtype.itemsize])  # (see BlockKernel)
    buffer = np.empty(size, dtype)
    cast = np.empty(size, dtype) if weight.dtype != dtype else None
    total = weight_sum = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n, size):
            stop = min(start + size, n)
            w = weight[start:stop]
            if cast is not None:
                w = cast[: stop - start]
                np.copyto(w, weight[start:stop], casting="unsafe")
            losses = block_losses(kernel, y_true[start:stop], y_pred[start:stop],
                                  buffer[: stop - start], dtype, params)
            total += dot(w, losses)
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
    whose target or prediction is NaN adds to neither sum. Losses are float64.
    """
    n, k = y_pred.shape
    rows = max(1, BLOCK // k)
    total = np.zeros(k, np.float64)
    kept = np.zeros(k, np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        t, p = y_true[start:stop], y_pred[start:stop]
        d = block_losses(kernel, t, p, None, np.float64, params)
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
