"""The one validation sequence every call goes through, whatever the backend."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from mseplug._typing import Array, Namespace
from mseplug.engine import validation as v
from mseplug.engine.finalize import relative_output_weights, times_power_of_two, weight_exponent
from mseplug.engine.protocol import Hooks
from mseplug.loss.options import Options
from mseplug.loss.record import Bound


class Checked(NamedTuple):
    """One call's inputs after conversion and checks, in the backend's library."""

    y_true: Array
    y_pred: Array
    sample_weight: Array | None
    output_weights: Array | None  # checked output weights (a float64 NumPy vector), or None
    shape: tuple[int, ...]  # the common shape, (n_samples, *outputs)
    #: sample_weight was divided by 2**weight_exponent (see mseplug.engine.finalize.weight_exponent)
    weight_exponent: int = 0
    #: output weights of a sum were divided by 2**output_exponent (relative_output_weights)
    output_exponent: int = 0


def unscaled(backend: Hooks, checked: Checked, options: Options | None, *values: Array
             ) -> tuple[Array, ...]:
    """Sums over scaled weights in the caller's weight units again.

    Sums (``reduction="sum"``, or statistics when ``options`` is ``None``) are
    multiplied back by ``2**weight_exponent`` (in the library's widest float,
    then in their own dtype again: ``inf`` where the true sum exceeds it); a
    mean is a ratio of two sums over the same weights, so it needs nothing.
    """
    exponent = checked.weight_exponent + (checked.output_exponent if options is not None else 0)
    if exponent == 0 or (options is not None and options.reduction != "sum"):
        return values
    results = []
    for value in values:
        xp = backend.namespace(value)
        wide = xp.astype(value, backend.widest_float(xp))
        with np.errstate(over="ignore"):  # inf where the sum exceeds the dtype (finish warns)
            results.append(xp.astype(times_power_of_two(wide, exponent), value.dtype))
    return tuple(results)


def _typed(x: Any) -> bool:
    """Whether ``x`` carries a dtype of its own (an array or a NumPy scalar), unlike a list,
    a tuple or a Python number, which take the dtype of the other input."""
    return hasattr(x, "dtype")


def check_inputs(backend: Hooks, options: Options, y_true: Any, y_pred: Any, sample_weight: Any,
                 *, partial: bool = False) -> Checked:
    """Convert and check one call's inputs: the one validation sequence of every backend.

    Shapes and dtypes are always checked; values (NaN under ``"raise"``,
    sample weights) only where the backend can read them without a sync it
    should not make (a tracer, a lazy Dask array).

    Dtypes: a list or Python number has no dtype of its own and takes the other
    input's float dtype (``y_pred``'s first); typed arrays keep theirs and
    promote to the wider later, whatever their libraries.

    ``partial``: the inputs are one part of the data (a shard, a batch of a
    stream), so they may be empty and their weights may sum to 0.
    """
    pred = backend.convert(y_pred, "y_pred")
    true = backend.convert(y_true, "y_true", like=pred)
    xp = backend.namespace(pred)
    true_kind, pred_kind = backend.kind(xp, true.dtype), backend.kind(xp, pred.dtype)
    v.check_kind("y_true", true_kind, true.dtype)
    v.check_kind("y_pred", pred_kind, pred.dtype)
    if true.dtype != pred.dtype and _typed(y_true) != _typed(y_pred):
        # The untyped one takes the typed one's float dtype (the default float for integers).
        if _typed(y_pred):
            true = xp.astype(true, pred.dtype if pred_kind == "f" else backend.default_float(xp))
        else:
            pred = xp.astype(pred, true.dtype if true_kind == "f" else backend.default_float(xp))
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape), allow_empty=partial)
    empty = shape[0] == 0
    if options.nan_policy == "raise" and not empty:
        for name, array in (("y_true", true), ("y_pred", pred)):
            if (backend.kind(xp, array.dtype) == "f" and backend.readable(array)
                    and backend.any_nan(xp, array)):
                raise v.nan_error(name)
    if options.loss.domain is not None and not empty:
        bounds = options.loss.bounds(options.params)
        for name, array in (("y_true", true), ("y_pred", pred)):
            if name in bounds and backend.readable(array):
                outside = backend.first_outside(xp, array, bounds[name])
                if outside is not None:
                    raise domain_error(options.loss.name, name, bounds[name],
                                       tuple(array.shape), *outside)
    weight, exponent, output_exponent = None, 0, 0
    if sample_weight is not None:
        weight = backend.convert(sample_weight, "sample_weight", like=pred)
        v.check_kind("sample_weight", backend.kind(xp, weight.dtype), weight.dtype)
        v.check_weight_shape(tuple(weight.shape), shape[0])
        if backend.checks_weights(weight) and not empty:
            total, minimum, finite = backend.weight_summary(xp, weight)
            v.check_weight_values(total, minimum, finite, positive_sum=not partial)
            if options.reduction != "none":
                # A sum that overflowed float64 is scaled by the largest weight instead.
                largest = total if math.isfinite(total) else float(xp.max(weight))
                exponent = weight_exponent(total, largest)
                if exponent:
                    weight = scaled_weights(backend, weight, exponent)
    output_weights = None
    if options.weighted_outputs:
        output_weights, output_exponent = relative_output_weights(
            options, backend.output_weights(xp, options.multioutput, shape[1:], pred),
            scale_sums=backend.readable(pred))
    return Checked(true, pred, weight, output_weights, shape, exponent, output_exponent)


def scaled_weights(backend: Hooks, weight: Array, exponent: int) -> Array:
    """``weight / 2**exponent``, computed in the widest float the weights' library has (so
    float64 weights of 1e-50 or 1e300 survive the later cast to a float32 accumulation)."""
    if isinstance(weight, np.ndarray):  # NumPy weights handed to another library (JAX) as they are
        return times_power_of_two(weight.astype(np.float64), -exponent)
    xp = backend.namespace(weight)
    return times_power_of_two(xp.astype(weight, backend.widest_float(xp)), -exponent)


def first_outside(xp: Namespace, array: Array, bound: Bound) -> tuple[int, float] | None:
    """The flat index and value of ``array``'s first element outside ``bound``, or ``None``
    (NaN is not outside: ``nan_policy`` decides about it)."""
    outside = array < bound.low if bound.inclusive else array <= bound.low
    if not bool(xp.any(outside)):
        return None
    index = int(xp.argmax(xp.astype(xp.reshape(outside, (-1,)), xp.int8)))
    return index, float(xp.reshape(array, (-1,))[index])


def domain_error(loss: str, name: str, bound: Bound, shape: tuple[int, ...], index: int,
                 value: float) -> ValueError:
    """The error of a value outside the loss's domain, naming the argument and the value (as
    scikit-learn's domain errors)."""
    return ValueError(f"{loss} is defined for {name} {bound.describe()}; "
                      f"{name}{_position(index, shape)} is {value:g}")


def _position(index: int, shape: tuple[int, ...]) -> str:
    """``[i]`` or ``[i, j, ...]`` of the ``index``-th element of an array of ``shape``."""
    if len(shape) <= 1:
        return f"[{index}]" if shape else ""
    coordinates = []
    for size in reversed(shape):
        coordinates.append(index % size)
        index //= size
    return "[" + ", ".join(str(i) for i in reversed(coordinates)) + "]"
