"""What the NumPy backend sums per block: one :class:`BlockKernel` per loss.

A block kernel turns one block of a loss's inputs (a cache-sized slice) into
its losses, or straight into their sum (``np.dot`` for squares: one read of
the residual). The built-in losses of the residual have native kernels here,
the deviances (:mod:`~mseplug.backend.numpy.deviances`) and the relative errors
(:mod:`~mseplug.backend.numpy.relative`) too (:data:`NATIVE`,
keyed by their elementwise function, so a record rebuilt in a Dask worker finds
its kernel too); every other loss gets :func:`generic_kernel`, its own
definition applied block by block. :mod:`~mseplug.backend.numpy.walk`
visits the blocks.

For a handful of elements a NumPy call costs far more than its arithmetic, so
the native kernels also have a ``scalar`` form over Python floats (IEEE
doubles, as NumPy's float64 residuals are), summed in NumPy's own pairwise
order: bit for bit the NumPy path, at a fraction of its cost.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import sub
from typing import Any, NamedTuple

import numpy as np

from mseplug.backend.numpy import deviances, relative
from mseplug.backend.numpy.namespace import NAMESPACE
from mseplug.backend.numpy.pairs import buffer
from mseplug.loss import builtin
from mseplug.loss.record import Loss

#: A loss's parameter values, in its declaration order.
Params = tuple[Any, ...]
#: ``[e(p - t) for t, p in ...]`` over lists of Python floats, in the block kernel's operations.
Scalar = Callable[[list[float], list[float], Params], list[float]]

#: Elements per dot product, by itemsize: below OpenBLAS's threading threshold (about 10^4
#: float64), as its threads cost more than the dot inside mseplug's workers. (threadpoolctl
#: holds BLAS to one thread only from the thread that controls OpenBLAS.)
DOT = {2: 1 << 15, 4: 1 << 15, 8: 10_000}
#: Elements per block of a loss's own elementwise definition: its temporaries (one per NumPy
#: operation of the formula) stay in L1/L2, where a 10^7-element log-cosh runs 3-5x faster
#: than over blocks of 10^5; the Python cost per block (a few us) is small beside it.
GENERIC_BLOCK = 1 << 13


class BlockKernel(NamedTuple):
    """How the NumPy backend sums one loss over a block.

    For a loss of the residual, ``block_sum(d, spare, params)`` returns ``Σ e(d)``
    as a float (``d`` may be overwritten; ``spare`` is a buffer of ``d``'s size)
    and ``block_losses(d, params)`` returns ``e(d)`` (in place where it can),
    ``d`` the residual block the walk formed. For a loss of the pair,
    ``pair(t, p, dtype, params)`` returns the losses of two blocks instead (a native pair
    kernel's losses may be a buffer of its own, valid until the thread's next call: the walk
    reduces them at once).
    ``float64`` makes the work dtype float64 whatever the input dtype.
    """

    block_sum: Callable[[np.ndarray, np.ndarray, Params], float]
    block_losses: Callable[[np.ndarray, Params], np.ndarray]
    float64: bool = False
    spare: bool = False  # whether block_sum needs the spare buffer
    scalar: Scalar | None = None  # e(r) of Python floats, for a few elements
    #: Elements per block, or 0 for the largest L2 allows (``walk.BLOCKS``).
    block: int = 0
    pair: Callable[[np.ndarray, np.ndarray, Any, Params], np.ndarray] | None = None
    #: The blocks' losses are summed in pieces of this many elements (0: whole), the pieces'
    #: sums added in order: the total of blocks of ``piece`` elements, bit for bit (the walk
    #: then takes ``block_losses`` or ``pair``, not ``block_sum``).
    piece: int = 0


def dot(x: np.ndarray, y: np.ndarray) -> float:
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


# -- the native kernels ---------------------------------------------------------------------
def _squared_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return dot(d, d)


def _squared_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.multiply(d, d, out=d)


def _squared_scalar(t: list[float], p: list[float], params: Params) -> list[float]:
    return [r * r for r in map(sub, p, t)]


def _absolute_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    return float(np.add.reduce(np.abs(d, out=d)))


def _absolute_losses(d: np.ndarray, params: Params) -> np.ndarray:
    return np.abs(d, out=d)


def _absolute_scalar(t: list[float], p: list[float], params: Params) -> list[float]:
    return list(map(abs, map(sub, p, t)))


def _huber_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    # With a = |r|, m = min(a, delta): Σ m·(a - m/2) = m·a - (m·m)/2.
    np.abs(d, out=d)
    np.minimum(d, params[0], out=spare)  # params: (delta,)
    return dot(spare, d) - 0.5 * dot(spare, spare)


def _huber_losses(d: np.ndarray, params: Params) -> np.ndarray:
    np.abs(d, out=d)
    m = np.minimum(d, params[0])
    d -= 0.5 * m
    return np.multiply(m, d, out=d)


def _huber_scalar(t: list[float], p: list[float], params: Params) -> list[float]:
    delta = params[0]
    out = []
    for a in map(abs, map(sub, p, t)):
        m = min(a, delta)
        out.append(m * (a - 0.5 * m))
    return out


def _pinball_losses(d: np.ndarray, params: Params) -> np.ndarray:
    # The record's max(-α·r, (1 - α)·r), its operations in a buffer and in place. A NumPy α is
    # not a weak scalar (float32 residuals would become float64): the record's own function.
    alpha = params[0]
    if type(alpha) is not float:
        return np.asarray(builtin.pinball(NAMESPACE, d, alpha))
    under = np.multiply(d, -alpha, out=buffer("pinball", d.size, d.dtype).reshape(d.shape))
    d *= 1 - alpha
    return np.maximum(under, d, out=d)


def _summed(block_losses: Callable[[np.ndarray, Params], np.ndarray]
            ) -> Callable[[np.ndarray, np.ndarray, Params], float]:
    """The ``block_sum`` of a kernel that forms its losses: their pairwise sum in float64."""
    def block_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
        return float(np.add.reduce(block_losses(d, params), dtype=np.float64))

    return block_sum


SQUARED = BlockKernel(_squared_sum, _squared_losses, scalar=_squared_scalar)
ABSOLUTE = BlockKernel(_absolute_sum, _absolute_losses, scalar=_absolute_scalar)
#: Huber's two dot products lose digits in float32 when the residuals are large: float64.
HUBER = BlockKernel(_huber_sum, _huber_losses, float64=True, spare=True, scalar=_huber_scalar)


def _no_residual_sum(d: np.ndarray, spare: np.ndarray, params: Params) -> float:
    raise AssertionError("a loss of the pair is summed through BlockKernel.pair")


def _no_residual_losses(d: np.ndarray, params: Params) -> np.ndarray:
    raise AssertionError("a loss of the pair is summed through BlockKernel.pair")


#: Elements per block of the pair kernels: :data:`GENERIC_BLOCK`'s pieces, sixteen at once.
#: Measured on two threads at 10^7 float64 elements: blocks of 2^17 take about 0.8 of the
#: time of blocks of 2^16 and 0.4 of 2^14 (each block costs a few dozen NumPy calls, and two
#: threads calling NumPy wait for each other's GIL), while blocks of 2^18 are slower again
#: (the temporaries leave the cache).
PIECED_BLOCK = 16 * GENERIC_BLOCK


def _pair_kernel(pair: Callable[[np.ndarray, np.ndarray, Any, Params], np.ndarray]
                 ) -> BlockKernel:
    """A native kernel of a loss of the pair, summed as :func:`generic_kernel`'s blocks are."""
    return BlockKernel(_no_residual_sum, _no_residual_losses, block=PIECED_BLOCK, pair=pair,
                       piece=GENERIC_BLOCK)


#: The pinball loss's three operations in place, in large blocks summed as
#: :func:`generic_kernel`'s (its record's function block by block, bit for bit).
PINBALL = BlockKernel(_summed(_pinball_losses), _pinball_losses, block=PIECED_BLOCK, piece=GENERIC_BLOCK)


#: The NumPy backend's native kernels, by the elementwise function of the loss they compute
#: (its function of the residual, or of the pair for the deviances and relative errors).
NATIVE: dict[Callable[..., Any], BlockKernel] = {
    builtin.squared_error: SQUARED,
    builtin.absolute_error: ABSOLUTE,
    builtin.huber: HUBER,
    builtin.pinball: PINBALL,
    builtin.poisson_deviance: _pair_kernel(deviances.poisson),
    builtin.gamma_deviance: _pair_kernel(deviances.gamma),
    builtin.tweedie_deviance: _pair_kernel(deviances.tweedie),
    builtin.squared_log_error: _pair_kernel(relative.squared_log_error),
    builtin.absolute_percentage_error: _pair_kernel(relative.absolute_percentage_error),
}


def generic_kernel(loss: Loss) -> BlockKernel:
    """A kernel from the loss's own elementwise definition, block by block."""
    xp = NAMESPACE
    if not loss.residual:
        def pair(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
            return np.asarray(loss.pointwise(xp, t.astype(dtype, copy=False),
                                             p.astype(dtype, copy=False), params))

        return BlockKernel(_no_residual_sum, _no_residual_losses, block=GENERIC_BLOCK, pair=pair)

    def block_losses(d: np.ndarray, params: Params) -> np.ndarray:
        return np.asarray(loss.of_residual(xp, d, params))

    return BlockKernel(_summed(block_losses), block_losses, block=GENERIC_BLOCK)


def kernel_for(loss: Loss) -> BlockKernel:
    """The loss's native kernel when it has one, else :func:`generic_kernel`."""
    native = NATIVE.get(loss.elementwise) if loss.elementwise else None
    if native is not None and (native.pair is None) == bool(loss.residual):
        return native
    return generic_kernel(loss)
