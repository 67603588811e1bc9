"""The NumPy backend: blocked float64-accumulating kernels behind the common engine.

Its hooks: NumPy arrays stay in their own float dtype (the kernels cast block
by block, so no full-size copy is made), sums go through the loss's
:class:`~mseplug.backend.numpy.kernels.BlockKernel`, and the commonest call
(two 1-D float arrays of one dtype, default options) skips straight to it.
``ml_dtypes.bfloat16`` arrays (what ``np.asarray`` gives for a JAX or torch
bfloat16 array) are floats. NumPy's own floating-point warnings stay inside:
a value that overflowed from finite inputs is ``inf`` with a
:class:`~mseplug.LossOverflowWarning` at the caller's line, and an output that
``nan_policy="omit"`` emptied is NaN with an :class:`~mseplug.EmptyOutputWarning`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from mseplug._typing import Array, DType, Namespace
from mseplug.backend.numpy import kernels, walk
from mseplug.backend.numpy import median as _median
from mseplug.backend.numpy import statistics as _statistics
from mseplug.engine import moments
from mseplug.engine import overflow as _overflow
from mseplug.engine.backend import Backend, plain_options
from mseplug.engine.checks import Checked
from mseplug.engine.columns import Columns
from mseplug.engine.finalize import finalize_grand
from mseplug.engine.kernels import loss_statistics, loss_value_and_grad
from mseplug.loss.options import Options
from mseplug.loss.record import Bound, Loss

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}
_LARGEST_FLOAT64 = _LARGEST[_FLOAT64]
#: The dtype the losses of a long input are computed in, by the inputs' float dtype.
_WORK = {_FLOAT64: _FLOAT64, _FLOAT32: _FLOAT32, np.dtype(np.float16): _FLOAT32}


def _largest(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype (ml_dtypes' too, such as bfloat16)."""
    largest = _LARGEST.get(dtype)
    if largest is None:
        try:
            largest = float(np.finfo(dtype).max)
        except (TypeError, ValueError):
            import ml_dtypes

            largest = float(ml_dtypes.finfo(dtype).max)
        _LARGEST[dtype] = largest
    return largest


def _work_dtype(dtype: np.dtype) -> np.dtype | None:
    """:data:`_WORK` for other float dtypes (ml_dtypes' bfloat16: float32), else ``None``."""
    if dtype.kind != "f":
        return None
    return _FLOAT32 if dtype.itemsize < 4 else dtype


def _in_dtype(value: Any, dtype: np.dtype) -> np.ndarray:
    """A float64 value in the result dtype; beyond the dtype's range it is inf (see finish)."""
    if dtype.itemsize >= 8:  # float64 holds every float64 value
        return np.asarray(value, dtype=dtype)
    largest = _largest(dtype)
    if isinstance(value, float):
        beyond = largest < abs(value) < math.inf
    else:
        beyond = bool(np.any((np.abs(value) > largest) & np.isfinite(value)))
    if beyond:
        with np.errstate(over="ignore"):
            return np.asarray(value, dtype=dtype)
    return np.asarray(value, dtype=dtype)


def _warn_if_overflowed(value: np.ndarray, *inputs: np.ndarray) -> None:
    """A LossOverflowWarning when an ``inf`` value came from finite inputs."""
    infinite = math.isinf(value.item()) if value.ndim == 0 else bool(np.isinf(value).any())
    if infinite and not any(np.isinf(x).any() for x in inputs):
        _overflow.warn(value.dtype.name)


# NumPy's floating-point warnings are off inside mseplug's kernels: an overflow is inf, which
# ``finish`` reports at the caller's line. (errstate as a decorator costs half the ``with`` form.)
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def _quietly(kernel: Any, backend: Backend, options: Options, *arrays: Any) -> Any:
    return kernel(backend, options, *arrays)


@np.errstate(over="ignore")  # a sum beyond float64 is inf: the engine rescales the weights
def _weight_summary(weight: np.ndarray) -> tuple[float, float, bool]:
    w = weight.astype(np.float64, copy=False)
    return float(w.sum()), float(w.min()), bool(np.isfinite(w).all())


def _warn_if_emptied(y_true: Any, y_pred: Any, weight: Any) -> None:
    """An EmptyOutputWarning naming the outputs ``nan_policy="omit"`` left without weight."""
    n = y_pred.shape[0] if y_pred.ndim else 1
    keep = ~(np.isnan(y_true) | np.isnan(y_pred)).reshape(n, -1)
    kept = keep.sum(axis=0) if weight is None else np.asarray(weight, np.float64).reshape(-1) @ keep
    empty = np.flatnonzero(kept == 0).tolist()
    if empty:
        _overflow.warn_empty(empty, keep.shape[1])


class NumpyBackend(Backend):
    """NumPy arrays and scalars, plus anything NumPy can convert (lists, pandas, ...)."""

    name = "numpy"
    library = "numpy"

    def __init__(self) -> None:
        super().__init__()
        self._kernels: dict[Loss, kernels.BlockKernel] = {}

    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        return (np.ndarray, np.generic)

    def namespace(self, x: Any) -> Any:
        return kernels.NAMESPACE

    def from_foreign(self, x: np.ndarray, like: Any) -> Any:
        return x

    def convert(self, x: Any, name: str, like: Any = None) -> Any:
        if type(x) is np.ndarray:
            return x
        if isinstance(x, np.ndarray):  # np.matrix, masked arrays...: plain arrays, as scikit-learn
            x = np.asarray(x)  # (a matrix's * is a matrix product, not elementwise)
        return super().convert(x, name, like)

    def kind(self, xp: Namespace, dtype: DType) -> str:
        kind = dtype.kind
        return "f" if kind == "V" and "float" in dtype.name else kind

    def accumulation_dtype(self, xp: Namespace, dtype: DType) -> DType:
        return _FLOAT32 if dtype.itemsize < 4 else dtype  # finfo does not know bfloat16

    def default_float(self, xp: Namespace) -> DType:
        return np.dtype(np.float64)

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        if true_dtype == pred_dtype and pred_dtype.kind == "f":
            return pred_dtype
        return super().result_dtype(xp, true_dtype, pred_dtype)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        """The root of a mean: a Python float's with ``math`` (as exact as ``np.sqrt``, and no
        warning machinery); NaN for a negative mean, as on every backend."""
        if isinstance(x, float):
            return math.sqrt(x) if x >= 0 else math.nan
        with np.errstate(invalid="ignore"):
            return np.sqrt(x)

    def cast_result(self, xp: Namespace, value: Array, dtype: DType) -> Array:
        return _in_dtype(value, dtype)

    def as_columns(self, xp: Namespace, x: Array, shape: tuple[int, ...], dtype: DType) -> Array:
        # Float inputs keep their dtype: the kernels cast each block, so no full-size copy.
        if x.dtype.kind != "f" or x.dtype.itemsize < 4:
            x = x.astype(dtype)
        return x.reshape(shape)

    def any_nan(self, xp: Namespace, x: Array) -> bool:
        # A sum is one fast pass; only when it is NaN is the elementwise check needed.
        return bool(np.isnan(np.add.reduce(x, axis=None)) and np.isnan(x).any())

    def first_outside(self, xp: Namespace, array: Array, bound: Bound) -> tuple[int, float] | None:
        """One pass, the array's least value, where it is inside the bound (the commonest
        case, and a third of the comparison and its ``any``); else the general search (NaN is
        not outside: a NaN least value searches too)."""
        if array.dtype.kind in "fiu" and array.size:
            least = np.minimum.reduce(array, axis=None)
            if least > bound.low or (bound.inclusive and least == bound.low):
                return None
        return super().first_outside(xp, array, bound)

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        return _weight_summary(weight)

    # -- kernels -------------------------------------------------------------------------
    def kernel(self, loss: Loss) -> kernels.BlockKernel:
        """The loss's native block kernel, else one made from its elementwise function."""
        kernel = self._kernels.get(loss)
        if kernel is None:
            kernel = self._kernels[loss] = kernels.kernel_for(loss)
        return kernel

    def run(self, kernel: Any, options: Options, *arrays: Any) -> Any:
        """Run a kernel with NumPy's floating-point warnings off: an overflow is inf (and
        :meth:`finish` warns at the caller's line); an emptied output under ``"omit"`` warns here."""
        result = _quietly(kernel, self, options, *arrays)
        if options.nan_policy == "omit" and options.reduction == "mean" and kernel is not loss_statistics:
            value = result[0] if kernel is loss_value_and_grad else result
            if np.isnan(value).any():  # only then: find the outputs left without weight
                _warn_if_emptied(*arrays[:3])
        return result

    def finish(self, value: Array, checked: Checked) -> Array:
        """A LossOverflowWarning where a value (or an element of ``reduction="none"``) is inf
        although every input is finite."""
        _warn_if_overflowed(value, checked.y_true, checked.y_pred)
        return value

    def column_totals(self, options: Options, c: Columns, params: tuple[Any, ...]
                      ) -> tuple[Array, Array]:
        kernel = self.kernel(options.loss)
        n, k = c.y_pred.shape
        if k == 1 and n and options.nan_policy != "omit":  # one output: the flat kernels
            t, p = c.y_true.reshape(-1), c.y_pred.reshape(-1)
            if c.weight is not None:
                return walk.weighted_flat_totals(kernel, t, p, c.weight, c.work, params)
            total = walk.flat_total(kernel, t, p, c.work, params)
            return np.array([total]), np.array([float(n)])
        return walk.column_totals(
            kernel, c.y_true, c.y_pred, c.weight, options.nan_policy == "omit", params,
        )

    def part_statistics(self, options: Options, c: Columns, keep: Array | None
                        ) -> dict[str, Array]:
        """Blocked, one read of the inputs, threaded for large ones (see
        :mod:`mseplug.backend.numpy.statistics`); empty inputs and quantiles take the generic
        definition, a median of unit weights by selection
        (:func:`~mseplug.backend.numpy.median.quantile_of`)."""
        spec = moments.spec_of(options)
        if _statistics.supported(spec, c):
            return _statistics.part_statistics(spec, c, keep)
        return moments.part_statistics(c.xp, options, c, keep, quantile_of=_median.quantile_of)

    def grand_value(self, options: Options, c: Columns, params: tuple[Any, ...]
                    ) -> tuple[Any, Any]:
        n, k = c.y_pred.shape
        if c.weight is None:  # a Python float: the blocked float64 sum of every element
            total = walk.flat_total(self.kernel(options.loss), c.y_true.reshape(-1),
                                       c.y_pred.reshape(-1), c.work, params)
            return _grand(options, total, n * k)
        sums, weights = self.column_totals(options, c, params)  # Σₖ (w @ e)ₖ, blocked float64
        return _grand(options, float(sums.sum()), float(weights[0]) * k)

    def fast_value(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The common call: two 1-D float arrays of one shape and dtype, no weights, NaN
        propagated, a plain mean or sum: :meth:`grand_value`'s sum, then the engine's final step.

        Whether the options allow it is worked out once per options object
        (:meth:`~mseplug.engine.backend.Backend.fast_plan`); a call pays only for looking at
        its two arrays.
        """
        if (sample_weight is not None or type(y_pred) is not np.ndarray
                or type(y_true) is not np.ndarray):
            return None
        dtype = y_pred.dtype
        n = y_pred.size
        if not (y_true.dtype is dtype and y_pred.ndim == 1 and y_true.ndim == 1
                and y_true.size == n and n):
            return None
        work = _WORK.get(dtype) or _work_dtype(dtype)
        if work is None:
            return None
        plan = self.fast_plan(options)
        if plan is None:
            return None
        kernel, bounds = plan
        if bounds is None:
            total = walk.flat_total(kernel, y_true, y_pred, work, options.params)
        else:  # the domain from the least values the walk takes as it goes
            least_true, least_pred, total = walk.least_and_total(kernel, y_true, y_pred, work,
                                                                 options.params)
            if not (_inside(least_true, bounds.get("y_true"))
                    and _inside(least_pred, bounds.get("y_pred"))):
                return None  # outside (the engine says where) or NaN (the engine's to take)
        statistic = total / n if options.reduction == "mean" else total  # (_grand's, inline)
        value = finalize_grand(kernels.NAMESPACE, options, statistic, (), self.sqrt)
        if abs(value) <= (_LARGEST_FLOAT64 if dtype is _FLOAT64 else _largest(dtype)):
            # the common case: it fits the dtype (a scalar's 0-d array, cheaper than np.asarray)
            return dtype.type(value).__array__()
        value = _in_dtype(value, dtype)  # inf or NaN: from finite inputs?
        _warn_if_overflowed(value, y_true, y_pred)
        return value

    def plan_fast_path(self, options: Options) -> _Plan | None:
        """The kernel :meth:`fast_value` runs with ``options`` and the domain it checks, or
        ``None`` when they need the general engine: :func:`~mseplug.engine.backend.plain_options`,
        or those but for a domain, which the fast path checks from the least values of the
        blocks it reads (no pass of its own; any value outside it, or a NaN, is the engine's)."""
        if not plain_options(options, checks_domain=True):
            return None
        loss = options.loss
        return _Plan(self.kernel(loss), None if loss.domain is None else loss.bounds(options.params))


class _Plan(NamedTuple):
    """What :meth:`NumpyBackend.fast_value` runs: the kernel, and the domain to check."""

    kernel: kernels.BlockKernel
    bounds: Mapping[str, Bound] | None


def _inside(least: float, bound: Bound | None) -> bool:
    """Whether an input whose least value is ``least`` is inside ``bound`` (NaN is not)."""
    return bound is None or least > bound.low or (bound.inclusive and least == bound.low)


def _grand(options: Options, total: float, denominator: float) -> tuple[float, float]:
    """The grand statistic from a float64 total over every element (see ``Backend.grand_value``)."""
    if options.reduction == "mean":
        return total / denominator, denominator
    return total, 1
