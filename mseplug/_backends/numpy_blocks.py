"""The sum of a loss over a long 1-D input, block by block, in this thread and a small pool.

Each block's residual goes into a reused buffer and is reduced at once by
the loss's :class:`~mseplug._backends.numpy_kernels.BlockKernel`. NumPy
releases the GIL inside these calls, so threads add up blocks in parallel.
Threads take blocks one at a time, so a core that another process slows
down takes fewer of them (a fixed split would wait for its half), and the
block sums are added in block order: the same total from any number of
threads, bit for bit.

The pool is fork-safe: a child process forked from a parent that had one
starts without it (the parent's threads do not exist in the child) and makes
its own on first use.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mseplug._backends.numpy_kernels import BlockKernel, Params

#: Inputs with at least this many elements are split over threads.
PARALLEL_MIN = 1 << 20
#: Elements per block, by the residual's itemsize: as large as L2 allows.
BLOCKS = {2: 1 << 18, 4: 1 << 18, 8: 1 << 17}


def parallel_total(kernel: BlockKernel, y_true: Any, y_pred: Any, dtype: Any,
                   params: Params) -> float:
    """``Σ e(y_pred - y_true)`` in float64, the residual in ``dtype``: over the calling thread
    and the worker threads (this thread alone below :data:`PARALLEL_MIN` elements)."""
    n = y_pred.shape[0]
    block = kernel.block or BLOCKS[np.dtype(dtype).itemsize]
    if n <= block:
        return _one_block_sum(kernel, y_true, y_pred, dtype, params)
    workers = _threads() if n >= PARALLEL_MIN else 1
    sums = [0.0] * -(-n // block)
    job = (kernel, y_true, y_pred, n, dtype, params, block, itertools.count(), sums)
    futures = [_executor(workers).submit(_take_blocks, *job) for _ in range(workers - 1)]
    _take_blocks(*job)
    for future in futures:
        future.result()  # a worker that started late found no block left
    total = 0.0
    for value in sums:
        total += value
    return total


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


def _take_blocks(kernel: BlockKernel, a: Any, b: Any, n: int, dtype: Any, params: Params,
                 block: int, tickets: Iterator[int], sums: list[float]) -> None:
    """Sum blocks until none is left: each ``next(tickets)`` is the index of a block no other
    thread has (``itertools.count`` hands them out atomically)."""
    count = len(sums)
    buffer = np.empty(block, dtype)
    spare = np.empty(block, dtype) if kernel.spare else buffer
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is redone in float64
        for index in tickets:
            if index >= count:
                return
            start = index * block
            stop = min(start + block, n)
            d = buffer[: stop - start]
            np.subtract(b[start:stop], a[start:stop], out=d, dtype=dtype)
            sums[index] = kernel.block_sum(d, spare[: stop - start], params)


@np.errstate(over="ignore", invalid="ignore")  # an overflow is redone in float64
def _one_block_sum(kernel: BlockKernel, a: Any, b: Any, dtype: Any, params: Params) -> float:
    """An input of one block, the residual in a temporary: no tickets, no threads."""
    d = np.subtract(b, a, dtype=dtype)
    return kernel.block_sum(d, np.empty_like(d) if kernel.spare else d, params)
