"""A few elements in Python floats: NumPy's own summation order, a fraction of its call cost.

For a handful of elements a NumPy call costs far more than its arithmetic, and
keeping NumPy's floating-point warnings from leaking costs as much again.
Python floats are IEEE doubles, as NumPy's float64 residuals are, and raise
nothing on overflow or NaN; :func:`pairwise_sum` adds in the order NumPy's
``add.reduce`` does, so the results are bit for bit those of the NumPy path.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import sub
from typing import Any

#: Inputs with at most this many elements take Python floats.
SMALL = 16

#: ``[e(p - t) for t, p in ...]`` over lists of Python floats, in the block kernel's operations.
Scalar = Callable[[list[float], list[float], tuple[Any, ...]], list[float]]


def pairwise_sum(values: list[float]) -> float:
    """``Σ values`` in NumPy's pairwise order for up to 128 values (its unrolled base case)."""
    n = len(values)
    if n < 8:
        total = 0.0
        for value in values:
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


def small_total(scalar: Scalar, y_true: Any, y_pred: Any, params: tuple[Any, ...]) -> float:
    """``Σ e(y_pred - y_true)`` over 1-D float arrays of at most :data:`SMALL` elements."""
    return pairwise_sum(scalar(y_true.tolist(), y_pred.tolist(), params))


def squared(t: list[float], p: list[float], params: tuple[Any, ...]) -> list[float]:
    return [r * r for r in map(sub, p, t)]


def absolute(t: list[float], p: list[float], params: tuple[Any, ...]) -> list[float]:
    return list(map(abs, map(sub, p, t)))


def huber(t: list[float], p: list[float], params: tuple[Any, ...]) -> list[float]:
    delta = params[0]
    out = []
    for a in map(abs, map(sub, p, t)):
        m = min(a, delta)
        out.append(m * (a - 0.5 * m))
    return out
