"""The one validation sequence every call goes through, whatever the backend."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from mseplug import _validation as v
from mseplug._options import Options
from mseplug._typing import Array, DType, Namespace

if TYPE_CHECKING:
    from mseplug._engine import Backend

#: Sample weights whose sum lies outside [2**-32, 2**32] are rescaled (see rescaled_weights).
WEIGHT_SUM_RANGE = (2.0**-32, 2.0**32)


class Checked(NamedTuple):
    """One call's inputs after conversion and checks, in the backend's library."""

    y_true: Array
    y_pred: Array
    sample_weight: Array | None
    output_weights: Array | None  # checked output weights (a float64 NumPy vector), or None
    shape: tuple[int, ...]  # the common shape, (n_samples, *outputs)
    weight_scale: float = 1.0  # sample_weight was divided by this power of two (rescaled_weights)

    def unscaled(self, options: Options | None, *values: Array) -> tuple[Array, ...]:
        """Sums over rescaled weights in the caller's weight units again.

        Sums (``reduction="sum"``, or statistics when ``options`` is ``None``) are
        multiplied back; a mean is a ratio of two sums over the same weights, so
        it needs nothing.
        """
        if self.weight_scale == 1.0 or (options is not None and options.reduction != "sum"):
            return values
        with np.errstate(over="ignore"):  # a sum beyond the dtype's range is inf (finish warns)
            return tuple(value * self.weight_scale for value in values)


def check_inputs(backend: Backend, options: Options, y_true: Any, y_pred: Any, sample_weight: Any,
                 *, partial: bool = False) -> Checked:
    """Convert and check one call's inputs: the one validation sequence of every backend.

    Shapes and dtypes are always checked; values (NaN under ``"raise"``,
    sample weights) only where the backend can read them without a sync it
    should not make (a tracer, a lazy Dask array).

    ``partial``: the inputs are one part of the data (a shard, a batch of a
    stream), so they may be empty and their weights may sum to 0.
    """
    pred = backend.convert(y_pred, "y_pred")
    true = backend.convert(y_true, "y_true", like=pred)
    xp = backend.namespace(pred)
    v.check_kind("y_true", backend.kind(xp, true.dtype), true.dtype)
    v.check_kind("y_pred", backend.kind(xp, pred.dtype), pred.dtype)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape), allow_empty=partial)
    empty = shape[0] == 0
    if options.nan_policy == "raise" and not empty:
        for name, array in (("y_true", true), ("y_pred", pred)):
            if (backend.kind(xp, array.dtype) == "f" and backend.readable(array)
                    and backend.any_nan(xp, array)):
                raise v.nan_error(name)
    weight, scale = None, 1.0
    if sample_weight is not None:
        weight = backend.convert(sample_weight, "sample_weight", like=pred)
        v.check_kind("sample_weight", backend.kind(xp, weight.dtype), weight.dtype)
        v.check_weight_shape(tuple(weight.shape), shape[0])
        if backend.checks_weights(weight) and not empty:
            total, minimum, finite = backend.weight_summary(xp, weight)
            v.check_weight_values(total, minimum, finite, positive_sum=not partial)
            low, high = WEIGHT_SUM_RANGE
            if not low <= total <= high and total > 0 and options.reduction != "none":
                dtype = backend.accumulation_dtype(xp, backend.result_dtype(xp, true.dtype,
                                                                            pred.dtype))
                weight, scale = rescaled_weights(xp, weight, total, dtype)
    output_weights = None
    if options.weighted_outputs:
        output_weights = backend.output_weights(xp, options.multioutput, shape[1:], pred)
    return Checked(true, pred, weight, output_weights, shape, scale)


def rescaled_weights(xp: Namespace, weight: Array, total: float, dtype: DType
                     ) -> tuple[Array, float]:
    """``weight / s`` in ``dtype`` and ``s``: a power of two near their sum (their largest
    value when the sum overflowed), so ``Σw`` and ``Σw·e`` cannot overflow to a wrong 0.

    A power of two divides exactly: a mean over the rescaled weights is the
    same number, and a sum times ``s`` too (:meth:`Checked.unscaled`). ``1/s``
    stays a normal number, which XLA would otherwise flush to 0.
    """
    size = total if math.isfinite(total) else float(xp.max(weight))
    limit = math.frexp(float(xp.finfo(dtype).max))[1] - 2
    exponent = max(-limit, min(limit, math.frexp(size)[1]))
    return xp.astype(weight, dtype) * 2.0**-exponent, 2.0**exponent
