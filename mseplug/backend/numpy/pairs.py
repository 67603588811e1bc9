"""What the NumPy backend's native kernels of a loss of the pair share.

A native kernel of a loss of the pair (the deviances in
:mod:`~mseplug.backend.numpy.deviances`, the relative errors in
:mod:`~mseplug.backend.numpy.relative`) takes one block of targets and
predictions and returns their losses. It is written for one flat, contiguous,
non-empty block in the work dtype (:func:`block_kernel` makes it one), and
works in buffers each thread reuses from block to block (:func:`buffer`: a
fresh array of a block's size costs more than the arithmetic on it), so the
losses it returns are valid until the thread's next call. What it does not take
apart is the record's own function (:func:`record`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from mseplug.backend.numpy.namespace import NAMESPACE

#: A loss's parameter values, in its declaration order.
Params = tuple[Any, ...]
#: ``kernel(y_true, y_pred, dtype, params)``: the losses of one block, in ``dtype``.
Kernel = Callable[[np.ndarray, np.ndarray, Any, Params], np.ndarray]

_local = threading.local()


def buffer(name: str, n: int, dtype: Any) -> np.ndarray:
    """This thread's buffer ``name`` of ``n`` elements of ``dtype``, reused from block to block:
    a fresh array of a block's size costs more than the arithmetic on it (new pages)."""
    found = getattr(_local, "buffers", None)
    if found is None:
        found = _local.buffers = {}
    key = (name, np.dtype(dtype).char)
    held = found.get(key)
    if held is None or held.shape[0] < n:
        held = found[key] = np.empty(max(n, 1 << 10), dtype)
    return held[:n]


def _inputs(t: np.ndarray, p: np.ndarray, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.dtype]:
    """The block in the work dtype, flat and contiguous (as the record's temporaries are: NumPy
    may pick another loop for strided arrays)."""
    dtype = np.dtype(dtype)
    return (np.ascontiguousarray(t, dtype=dtype).reshape(-1),
            np.ascontiguousarray(p, dtype=dtype).reshape(-1), dtype)


def block_kernel(kernel: Kernel) -> Kernel:
    """``kernel`` of blocks of any shape (rows of several outputs too), written for one flat,
    contiguous, non-empty block in the work dtype (:func:`_inputs`), with NumPy's warnings
    off (an overflow is inf, as the record's); the losses come back in the block's shape
    (they are elementwise)."""
    quiet = np.errstate(divide="ignore", over="ignore", invalid="ignore")(kernel)

    @functools.wraps(kernel)
    def shaped(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
        shape = None
        if not (t.ndim == 1 and p.ndim == 1):
            shape = np.broadcast_shapes(t.shape, p.shape)
            t, p = np.broadcast_to(t, shape), np.broadcast_to(p, shape)
        t, p, dtype = _inputs(t, p, dtype)
        losses = quiet(t, p, dtype, params) if t.shape[0] else np.empty(0, dtype)
        return losses if shape is None else losses.reshape(shape)

    return shaped


def record(function: Any, t: np.ndarray, p: np.ndarray, params: Params) -> np.ndarray:
    """The record's own function on a block a kernel does not take apart."""
    return np.asarray(function(NAMESPACE, t, p, *params))
