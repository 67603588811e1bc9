"""From sufficient statistics to a loss value: the engine's one final step, and weight scales.

The statistics of one call (or of a stream, in the Accumulator) are, per
output ``k``: ``S[k] = Σᵢ wᵢ·e(rᵢₖ)`` and ``W[k] = Σᵢ wᵢ`` over the samples
kept. Sample weights whose sum would leave the dtype's comfortable range are
divided by a power of two ``2**exponent`` before they are summed, so ``S``
and ``W`` may be in those *scaled* units: a mean (a ratio of two sums over
the same weights) is unchanged, and a sum is multiplied back by
:func:`times_power_of_two` (exact; ``inf`` where the true sum itself exceeds
the dtype). Statistics of parts scaled differently are brought to one
exponent before they are added (:func:`aligned`).

Everything below works on any Array API namespace ``xp``; output weights
arrive as an array of ``S``'s library, device and dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from mseplug._typing import Array, Namespace
from mseplug.loss.options import Options

Root = Callable[[Namespace, Array], Array]

#: The largest power-of-two step applied at once: 2**±100 is a normal number in float32 and
#: float64 alike (and never flushed to zero, as XLA flushes subnormals).
_STEP = 100


def times_power_of_two(x: Any, exponent: int) -> Any:
    """``x · 2**exponent``: exact unless the result itself over- or underflows.

    Works on Python floats and on arrays of any library (in their own dtype,
    which must hold ``2**±100``: float32 or wider). The factor is applied in
    steps of at most ``2**±100``, so no step's factor is subnormal or infinite
    (``0 · inf`` would be NaN where the answer is 0).

    Examples
    --------
    >>> times_power_of_two(3.0, -1100) == 3.0 * 2.0**-550 * 2.0**-550
    True
    >>> times_power_of_two(1.5, 1100)
    inf
    """
    if isinstance(x, float):
        try:
            return math.ldexp(x, exponent)
        except OverflowError:
            return math.copysign(math.inf, x)
    while exponent:
        step = max(-_STEP, min(_STEP, exponent))
        x = x * 2.0**step
        exponent -= step
    return x


def weight_exponent(total: float, largest: float) -> int:
    """The power of two that sample weights are divided by (0: none), from their sum and largest.

    Weights summing to within ``[2**-32, 2**32]`` are used as they are. Others
    are divided by a power of two near their sum (near their largest value
    when the sum overflows float64), so the scaled weights sum to about 1:
    no sum of weights or of weighted losses overflows, and no weight vanishes
    in a narrower dtype (float64 weights of ``1e-50`` with float32 data).

    Examples
    --------
    >>> weight_exponent(3.0, 1.0), weight_exponent(3e300, 1e300), weight_exponent(3e-50, 1e-50)
    (0, 999, -164)
    """
    if 2.0**-32 <= total <= 2.0**32 or not total > 0:
        return 0
    return math.frexp(total if math.isfinite(total) else largest)[1]


def aligned(exponents: list[int]) -> tuple[int, list[int]]:
    """The common exponent of parts scaled by ``2**exponents[i]``, and each part's shift to it.

    Statistics of a part times ``2**shift`` are in the common units (the shift
    is ≤ 0: a part whose weights are far smaller may underflow to 0, its true
    share of the total).

    Examples
    --------
    >>> aligned([0, 998, -164])
    (998, [-998, 0, -1162])
    """
    common = max(exponents) if exponents else 0
    return common, [exponent - common for exponent in exponents]


class ScaledStatistics(NamedTuple):
    """Sufficient statistics ``(S, W)`` in the units of weights divided by ``2**exponent``
    (``exponent`` an int, or a lazy one for Dask; 0 when the weights were used as given)."""

    total: Any
    weight: Any
    exponent: Any = 0
    #: Whether every input was finite (lazy for Dask, where statistics beyond float64 warn when
    #: computed; eager libraries check when their statistics are unscaled).
    finite: Any = True


def relative_output_weights(options: Options, output_weights: Any, *, scale_sums: bool = True
                            ) -> tuple[Any, int]:
    """Checked output weights for the engine, and the exponent a sum is to be multiplied back by.

    Float64 NumPy ones are divided by their largest for a mean (which they weigh alike), so
    that no narrower dtype, and no compiled division that flushes a subnormal reciprocal to
    zero (XLA), turns ``[1e308, 1e308]`` into NaN. For a sum (linear in them) they are divided
    by a power of two near their largest, ``2**exponent``, which the sum is multiplied back by
    with the sample weights' (so ``[1e307]`` times sums over weights of ``2**-1000`` is the
    finite number it is, not an intermediate overflow). ``scale_sums=False`` leaves a sum's
    weights as they are (a lazy value multiplies them in itself, warning if it overflows)."""
    if not isinstance(output_weights, np.ndarray):
        return output_weights, 0
    largest = float(output_weights.max())
    if options.reduction == "mean":
        return output_weights / largest, 0
    if not scale_sums:
        return output_weights, 0
    exponent = math.frexp(largest)[1]
    return np.ldexp(output_weights, -exponent), exponent


def _output_share(xp: Namespace, options: Options, output_weights: Array | None, like: Array
                  ) -> Array | float | None:
    """How much each output counts in the combined value (``None``: raw values).

    Uniform outputs share alike: a number, ``1/K`` for the mean (1 for the sum).
    Output weights are divided by their largest first, so their sum cannot
    overflow (``[1e308, 1e308]`` share as ``[1, 1]`` do).
    """
    mean = options.reduction == "mean"
    if output_weights is not None:
        if not mean:
            return output_weights
        # w / max(w) as two products with 1 / sqrt(max(w)): no reciprocal is subnormal, which
        # XLA (dividing as x · (1/y), and folding (x / a) / a into x / (a · a)) would flush to
        # zero for weights near 1e308.
        inverse = 1 / xp.sqrt(xp.max(output_weights))
        relative = (output_weights * inverse) * inverse
        return relative / xp.sum(relative)
    if options.raw:
        return None
    return 1 / like.shape[0] if mean else 1.0


def finalize(
    xp: Namespace, options: Options, total: Array, weight: Array,
    output_shape: tuple[int, ...], output_weights: Array | None, root: Root,
) -> Array:
    """The loss value from ``total`` (``S``, shape ``(K,)``) and ``weight`` (``W``).

    ``root(xp, x)`` is the backend's square root (with its gradient convention).
    Returns a 0-d array, or an array of ``output_shape`` for ``multioutput="raw_values"``.
    A sum (``reduction="sum"``) is in the statistics' units: see :func:`times_power_of_two`.
    """
    per_output = total / weight if options.reduction == "mean" else total
    if options.loss.root:
        per_output = root(xp, per_output)
    share = _output_share(xp, options, output_weights, per_output)
    if share is None:
        return xp.reshape(per_output, output_shape)
    return xp.sum(share * per_output)


def finalize_grand(xp: Namespace, options: Options, statistic: Array, output_shape: tuple[int, ...],
                   root: Root) -> Array:
    """The loss value from one grand statistic over every element (the outputs share one
    weight: see ``needs_columns``): its root for RMSE, in the outputs' shape for
    ``"raw_values"`` (then there is one output; a scalar already has the empty shape, so
    the fast paths, which pass it, skip the look at ``multioutput``)."""
    value = root(xp, statistic) if options.loss.root else statistic
    return xp.reshape(value, output_shape) if output_shape and options.raw else value


def root_gradient_factor(xp: Namespace, mean: Array) -> Array:
    """``d sqrt(m) / dm = 1 / (2 sqrt(m))``: 0 at a perfect fit (``m == 0``, never NaN), ``inf``
    for an overflowed mean (never the finite wrong ``1 / inf = 0``), NaN for a NaN or negative
    one."""
    root = xp.sqrt(mean)
    positive = root > 0
    factor = xp.where(positive, 1 / (2 * xp.where(positive, root, 1)), root * 0)
    return xp.where(xp.isinf(root), root, factor)


def gradient_scale(
    xp: Namespace, options: Options, total: Array, weight: Array, output_weights: Array | None
) -> Array:
    """Per-output factor ``c[k]`` with ``d loss / d y_pred[i, k] = wᵢ · e'(rᵢₖ) · c[k]``."""
    share = _output_share(xp, options, output_weights, total)
    if share is None:  # raw values of a single output: the value itself
        share = 1.0
    scale = xp.ones_like(total) * share if isinstance(share, float) else share
    if options.reduction == "mean":
        scale = scale / weight
        if options.loss.root:
            scale = scale * root_gradient_factor(xp, total / weight)
    return scale
