"""The one validation sequence every call goes through, whatever the backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from mseplug import _validation as v
from mseplug._options import Options
from mseplug._typing import Array

if TYPE_CHECKING:
    from mseplug._engine import Backend


class Checked(NamedTuple):
    """One call's inputs after conversion and checks, in the backend's library."""

    y_true: Array
    y_pred: Array
    sample_weight: Array | None
    output_weights: Array | None  # checked output weights (a float64 NumPy vector), or None
    shape: tuple[int, ...]  # the common shape, (n_samples, *outputs)


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
    weight = None
    if sample_weight is not None:
        weight = backend.convert(sample_weight, "sample_weight", like=pred)
        v.check_kind("sample_weight", backend.kind(xp, weight.dtype), weight.dtype)
        v.check_weight_shape(tuple(weight.shape), shape[0])
        if backend.readable(weight) and not empty:
            v.check_weight_values(*backend.weight_summary(xp, weight), positive_sum=not partial)
    output_weights = None
    if options.weighted_outputs:
        output_weights = backend.output_weights(xp, options.multioutput, shape[1:], pred)
    return Checked(true, pred, weight, output_weights, shape)
