"""The NumPy backend's kernels of the Poisson, Gamma and Tweedie deviances.

The records (:mod:`mseplug.loss.builtin`) write each deviance for every
Array API namespace as a choice of arrays: the series that keeps the digits
where ``ŷ`` is close to ``y`` is evaluated on every element (13 operations for
``x - log1p(x)``'s, about 23 for Tweedie's) and chosen by ``where``. Here a
block computes the direct form on every element and the series only on the
elements that take it (a boolean mask's indices, gathered and scattered back),
in buffers each thread reuses from block to block
(:mod:`~mseplug.backend.numpy.pairs`): the losses a kernel returns are valid
until the thread's next call. Tweedie's at power 1.5 has one form that cancels
nowhere, ``8 sinh(L/4)²``, on every element: no series, no mask.

Each element goes through the record's operations in the record's order, so
its loss is the record's bit for bit; blocks the kernels do not take apart
(a NaN, an infinity, a value outside the domain, an overflow) are the
record's own function. The blocks are larger than
:data:`~mseplug.backend.numpy.kernels.GENERIC_BLOCK` (fewer Python calls
per element) but are summed in pieces of that size
(:attr:`~mseplug.backend.numpy.kernels.BlockKernel.piece`), so the total is
the one the record's function block by block gives, bit for bit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mseplug.backend.numpy.pairs import Params, block_kernel, buffer, record
from mseplug.loss import builtin

#: Coefficients of ``x - log1p(x)``'s series in ``u²``, highest first (the record's).
_SERIES = builtin._SERIES
_SERIES_BELOW = builtin._SERIES_BELOW
_TWEEDIE_BELOW = builtin._TWEEDIE_SERIES_BELOW
#: The share of a block's elements above which the series is taken on the whole block (see
#: :func:`_two_forms`): measured, about where a gather and a scatter cost as much.
_WHOLE_SERIES = 0.75


def _ratio_buffers(n: int, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every kernel's three: the ratio (or its log), a scratch row, and where the series is
    taken."""
    return buffer("x", n, dtype), buffer("scratch", n, dtype), buffer("small", n, np.bool_)


def _horner(s: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    """``c₀`` then ``c + s·series`` for each later ``c``: the record's loop, in place.

    The record starts from ``c₀ + 0·s``, which is ``c₀`` bit for bit for a finite ``s`` (the
    elements that take the series), so its first step is ``c₁ + s·c₀``. A coefficient of 0
    (Tweedie's every other one at power 1.5, where ``a = -b``) is not added: ``0 + v`` is ``v``
    but for ``v = -0``, whose sign the next nonzero coefficient's step ``c + s·(±0) = c``
    forgets; so the record's series bit for bit, with the last coefficient always added and
    leading zeros skipped (``c + s·(±0)`` is ``c``).
    """
    series = buffer("series", s.shape[0], s.dtype)
    first = next((i for i, c in enumerate(coefficients) if c), len(coefficients) - 1)
    rest = coefficients[first + 1:]
    if not rest:  # the last coefficient alone (c + s·(±0) = c, +0 for c = 0)
        series.fill(coefficients[-1])
        return series
    np.multiply(s, coefficients[first], out=series)
    last = len(rest) - 1
    for i, coefficient in enumerate(rest):
        if i:
            series *= s
        if coefficient or i == last:
            series += coefficient
    return series


def _finite_magnitude(x: np.ndarray, magnitude: np.ndarray) -> bool:
    """``|x|`` into ``magnitude``, and whether every element is finite (the largest ``|x|``
    is finite, not NaN): one pass besides the ``|x|`` the kernels' series masks need."""
    np.abs(x, out=magnitude)
    return bool(np.maximum.reduce(magnitude) < math.inf)


def _x_minus_log1p(x: np.ndarray, out: np.ndarray, scratch: np.ndarray, small: np.ndarray
                   ) -> np.ndarray:
    """``builtin.x_minus_log1p`` of ``x`` into ``out``: its series in ``u = x / (2 + x)``
    where ``|x| <`` :data:`_SERIES_BELOW` (:func:`_x_minus_log1p_series`), ``x - log1p(x)``
    elsewhere (NaN or inf where ``x`` is NaN, infinite or at most -1: the record's is then
    another form). ``scratch`` holds ``|x|`` and may be overwritten, or be ``out``."""
    np.less(scratch, _SERIES_BELOW, out=small)
    return _two_forms(small, x, _direct_x_minus_log1p, _x_minus_log1p_series, out, scratch)


def _finite_g(x: np.ndarray, scratch: np.ndarray, small: np.ndarray) -> np.ndarray | None:
    """``builtin.x_minus_log1p`` of a block's ratios into ``scratch``, or ``None`` where the
    record takes another form somewhere: every such ratio (NaN, ``±inf``, at most -1) makes
    its ``g`` NaN or inf, so one check after ``g`` is the only one (Poisson's and Gamma's)."""
    np.abs(x, out=scratch)
    g = _x_minus_log1p(x, scratch, scratch, small)  # (|x| is read once, for the mask)
    return g if np.maximum.reduce(g) < math.inf else None  # (NaN is not below inf)


def _direct_x_minus_log1p(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.log1p(x, out=out)
    return np.subtract(x, out, out=out)


def _x_minus_log1p_series(s: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The record's ``u (s - w S(w))``, ``u = s / (2 + s)``, ``w = u u``, ``S`` the Horner of
    :data:`_SERIES` in ``w``, in the record's operations (``out`` of ``s``'s size)."""
    n = s.shape[0]
    u = np.add(s, 2, out=buffer("u", n, s.dtype))
    np.divide(s, u, out=u)
    w = np.multiply(u, u, out=buffer("w", n, s.dtype))
    series = _horner(w, _SERIES)
    series *= w
    np.subtract(s, series, out=out)
    out *= u
    return out


def _two_forms(small: np.ndarray, x: np.ndarray,
               direct: Callable[[np.ndarray, np.ndarray], np.ndarray],
               series: Callable[[np.ndarray, np.ndarray], np.ndarray],
               out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``out = series(x)`` where ``small``, ``direct(x)`` elsewhere (each ``form(x, out)``
    writes the form of ``x`` into ``out``, of ``x``'s size, and returns it).

    Each form is computed on the whole block when most elements take it, else on the
    elements that take it alone (gathered and scattered by index: boolean indexing costs
    several times more; ``take`` in mode ``"wrap"``, as the indices are in range: its default
    mode copies through a buffer, about 1.7 times the cost). The series of the whole block
    when more than :data:`_WHOLE_SERIES` of it takes the series (the other elements' values
    are replaced by their direct form; a gather and a scatter cost more than the series of a
    few more elements). ``scratch`` (of ``x``'s size) may be overwritten, or be ``out``.
    """
    n = x.shape[0]
    where = small.nonzero()[0]  # (flatnonzero's ravel costs more than it does here)
    count = where.shape[0]
    if count > _WHOLE_SERIES * n:
        series(x, out)
        _direct_where(np.logical_not(small, out=small), x, direct, out)
        return out
    if 2 * count <= n:
        direct(x, out)
    else:
        _direct_where(np.logical_not(small, out=small), x, direct, out)
    if count:
        s = x.take(where, out=buffer("s", count, x.dtype), mode="wrap")
        out[where] = series(s, buffer("square", count, x.dtype))
    return out


def _direct_where(far: np.ndarray, x: np.ndarray,
                  direct: Callable[[np.ndarray, np.ndarray], np.ndarray], out: np.ndarray
                  ) -> None:
    """``out = direct(x)`` where ``far`` (a mask), on those elements alone."""
    at = far.nonzero()[0]
    if at.shape[0]:
        part = x.take(at, out=buffer("part", at.shape[0], x.dtype), mode="wrap")
        out[at] = direct(part, buffer("direct", at.shape[0], x.dtype))


def _stand_in(t: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The record's ``where(mask, 1, y)``: ``t`` with 1 at the mask's elements (in a buffer),
    and their indices; ``t`` itself and ``None`` when the mask is empty."""
    at = np.flatnonzero(where)
    if not at.shape[0]:
        return t, None
    stand_in = buffer("stand_in", t.shape[0], t.dtype)
    np.copyto(stand_in, t)
    stand_in[at] = 1
    return stand_in, at


# -- Poisson ---------------------------------------------------------------------------------
@block_kernel
def poisson(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
    """``builtin.poisson_deviance`` of one block: ``2 y g((ŷ - y) / y)``, ``2 ŷ`` at ``y = 0``.

    The common block (every ``y > 0``, every ratio finite and above -1) is checked once, after
    ``g``: anything else makes some ``g`` NaN or inf (``x = ±inf`` or NaN where ``y`` is 0, NaN
    or inf; ``log1p`` of ``x <= -1``), and the block is taken again by :func:`_poisson_edges`.
    """
    x, scratch, small = _ratio_buffers(t.shape[0], dtype)
    np.subtract(p, t, out=x)
    x /= t
    out = _finite_g(x, scratch, small)
    if out is None:
        return _poisson_edges(t, p, dtype, params)
    out *= t
    out *= 2
    return out


def _poisson_edges(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
    """A block with a target of 0 (the record's stand-in 1 and ``2 ŷ``), and the record's own
    function where a ratio is not finite or not above -1 (NaN, inf, ``ŷ`` below ``y·2⁻⁵³``)."""
    n = t.shape[0]
    x, scratch, small = _ratio_buffers(n, dtype)
    y, zero = t, None
    if not np.minimum.reduce(t) > 0:  # a zero, a negative value or NaN: the record's stand-in
        t, zero = _stand_in(t, np.equal(t, 0, out=buffer("zero", n, np.bool_)))
    np.subtract(p, t, out=x)
    x /= t
    if not _finite_magnitude(x, scratch) or not np.minimum.reduce(x) > -1:
        return record(builtin.poisson_deviance, y, p, params)
    out = _x_minus_log1p(x, buffer("out", n, dtype), scratch, small)
    out *= t
    if zero is not None:
        out[zero] = p.take(zero)
    out *= 2
    return out


# -- Gamma -----------------------------------------------------------------------------------
@block_kernel
def gamma(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
    """``builtin.gamma_deviance`` of one block: ``2 g((y - ŷ) / ŷ)``; the record's own function
    where a ratio is NaN, infinite (``ŷ = inf`` is the record's other form, or an overflow) or
    at most -1 (``y <= 0``, outside the domain)."""
    x, scratch, small = _ratio_buffers(t.shape[0], dtype)
    np.subtract(t, p, out=x)
    x /= p
    out = _finite_g(x, scratch, small)
    if out is None:
        return record(builtin.gamma_deviance, t, p, params)
    out *= 2
    return out


# -- Tweedie ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _tweedie_series(power: float) -> tuple[float, ...]:
    """The record's coefficients ``(bᵏ⁻¹ - aᵏ⁻¹) / k!``, k = 12 down to 2 (its Horner order)."""
    return tuple(builtin._tweedie_coefficients(1 - power, 2 - power))


def _expm1_over(c: float, L: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``builtin._expm1_over`` of finite ``L`` away from 0: ``expm1(c L) / c``, ``L`` at ``c = 0``.

    The record adds ``zero·L`` (0 when ``c`` is not 0): ``+ ±0`` changes no nonzero number,
    and ``expm1(cL) / c`` is not 0 where ``L`` is not (``|c| >= 2⁻⁵³`` when it is not 0).
    At ``c = 0`` it is ``expm1(±0) / 1 + L``, which is ``L``.
    """
    if c == 0:
        np.copyto(out, L)
        return out
    np.multiply(L, c, out=out)
    np.expm1(out, out=out)
    out /= c
    return out


@block_kernel
def tweedie(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
    """``builtin.tweedie_deviance`` of one block (``params``: ``(power,)``)."""
    n = t.shape[0]
    power = params[0]
    if power == 0:  # the record's normal case: (ŷ - y)·(ŷ - y)
        out = np.subtract(p, t)
        return np.multiply(out, out, out=out)
    if type(power) not in (float, int) or not np.minimum.reduce(p) > 0:
        return record(builtin.tweedie_deviance, t, p, params)  # ŷ <= 0, NaN; a NumPy power
    a, b = 1 - power, 2 - power
    y, edge = t, None
    lowest = np.minimum.reduce(t)
    if not lowest > 0:
        # y <= 0 has the record's edge form below power 2 (y >= 0 from 1); else NaN: the record
        if not ((lowest >= 0 and power < 2) or (lowest == lowest and power < 1)):
            return record(builtin.tweedie_deviance, t, p, params)
        t, edge = _stand_in(t, np.less_equal(t, 0, out=buffer("edge", n, np.bool_)))
    L, scratch, small = _ratio_buffers(n, dtype)
    np.subtract(p, t, out=L)
    L /= t
    np.log1p(L, out=L)
    if not _finite_magnitude(L, scratch):  # ŷ = inf (the record's limit), NaN, overflow
        return record(builtin.tweedie_deviance, y, p, params)
    if power == 1.5:  # the record's h = 8 sinh(L/4)², on every element
        h = np.multiply(L, 0.25, out=buffer("h", n, dtype))
        np.sinh(h, out=h)
        h *= h
        h *= 8
    else:
        h = _tweedie_h(L, a, b, power, scratch, small)
    out = buffer("out", n, dtype)
    np.copyto(out, t)
    out **= b  # ndarray's power (sqrt at b = 0.5...), as the record's t ** b
    out *= 2
    out *= h
    if edge is not None:
        # 2 (ŷᵇ / b - linear), linear = 0 at y = 0, else y ŷᵃ / a (a and b 1 where they are 0)
        ys, ps = y.take(edge), p.take(edge)
        linear = np.where(ys == 0, dtype.type(0), ys * ps ** a / (a + (a == 0) * 1.0))
        out[edge] = 2 * (ps ** b / (b + (b == 0) * 1.0) - linear)
    return out


def _tweedie_h(L: np.ndarray, a: float, b: float, power: float, scratch: np.ndarray,
               small: np.ndarray) -> np.ndarray:
    """The record's ``h(L)`` of finite ``L`` (``buffer("h")``): its series where
    ``|L| (|a| + |b|) < 0.2``, ``expm1(bL)/b - expm1(aL)/a`` elsewhere. ``scratch`` holds
    ``|L|`` (:func:`_finite_magnitude`) and may be overwritten."""
    n, dtype = L.shape[0], L.dtype
    scale = abs(a) + abs(b)
    if scale != 1:  # (1 for every power in [1, 2]: x·1 is x)
        scratch *= scale
    np.less(scratch, _TWEEDIE_BELOW, out=small)

    def direct(L: np.ndarray, out: np.ndarray) -> np.ndarray:  # (its own buffer for a part)
        spare = scratch if out.shape[0] == n else buffer("spare", out.shape[0], dtype)
        _expm1_over(b, L, out)
        out -= _expm1_over(a, L, spare)
        return out

    coefficients = _tweedie_series(power)

    def series(s: np.ndarray, out: np.ndarray) -> np.ndarray:  # the record's (s·s)·series(s)
        np.multiply(s, s, out=out)
        out *= _horner(s, coefficients)
        return out

    return _two_forms(small, L, direct, series, buffer("h", n, dtype), scratch)
