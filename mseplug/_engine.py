"""``Backend``: the one engine, written once over any Array API namespace, and its hooks.

Data flows one way. :meth:`Backend.check` converts and checks one call's
inputs (shapes, dtypes, NaN under ``"raise"``, weights); a pure kernel
(:func:`loss_value`, :func:`loss_statistics`, :func:`loss_value_and_grad`)
turns them into ``(n, K)`` columns, sufficient statistics ``(S, W)`` and,
through :func:`mseplug._reduce.finalize`, the value. A backend runs the pure
kernels with :meth:`Backend.run` (JAX compiles them) and overrides only its
hooks: how to recognise and convert its arrays, its namespace, native
kernels, and value checks that cost no extra device sync. A plugin can
override nothing but :meth:`Backend.array_types`.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mseplug import _reduce
from mseplug import _validation as v
from mseplug._loss import Loss
from mseplug._options import Options
from mseplug._typing import Array, DType, Namespace


class Checked(NamedTuple):
    """One call's inputs after conversion and checks, in the backend's library."""

    y_true: Array
    y_pred: Array
    sample_weight: Array | None
    output_weights: Array | None  # checked output weights (a float64 NumPy vector), or None
    shape: tuple[int, ...]  # the common shape, (n_samples, *outputs)
    weight_scale: float = 1.0  # sample_weight was divided by this power of two (rescaled_weights)

    def unscaled(self, options: Options, *values: Array) -> tuple[Array, ...]:
        """Sums (``reduction="sum"``) over rescaled weights in the caller's weights again.

        A mean is a ratio of two sums over the same weights, so it needs nothing.
        """
        if self.weight_scale == 1.0 or options.reduction != "sum":
            return values
        with np.errstate(over="ignore"):  # a sum beyond the dtype's range is inf (finish warns)
            return tuple(value * self.weight_scale for value in values)


class Columns(NamedTuple):
    """Inputs inside a kernel: ``(n, K)`` arrays in the accumulation dtype."""

    xp: Namespace
    y_true: Array
    y_pred: Array
    weight: Array | None  # (n,)
    shape: tuple[int, ...]  # the common shape
    pred_shape: tuple[int, ...]  # y_pred's own shape: the shape of "none" results and gradients
    dtype: DType  # promoted input dtype: the dtype of results

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape[1:]


Statistics = tuple[Array, Array]

#: Sample weights whose sum lies outside [2**-32, 2**32] are rescaled (see rescaled_weights).
WEIGHT_SUM_RANGE = (2.0**-32, 2.0**32)


class Backend:
    """Base class of every backend, built-in or plugin.

    Subclasses set :attr:`name` and :attr:`library` and implement
    :meth:`array_types`; everything else has a generic definition through
    :meth:`namespace` (``array_api_compat.array_namespace`` by default).
    """

    name: ClassVar[str] = "generic"
    #: Top-level module whose presence makes this backend usable; "" for always.
    library: ClassVar[str] = ""

    def __init__(self) -> None:
        self._owned: dict[type, bool] = {}
        self._kinds: dict[Any, str] = {}

    def __repr__(self) -> str:
        return f"<mseplug backend {self.name!r}>"

    # -- detection -------------------------------------------------------------
    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        """Array classes this backend owns, looked up in ``sys.modules`` (never imported)."""
        return ()

    @classmethod
    def owns(cls, x: object) -> bool:
        """Whether ``x`` is one of this backend's arrays (the registry caches it per type)."""
        types = cls.array_types()
        return bool(types) and isinstance(x, types)

    @classmethod
    def is_installed(cls) -> bool:
        return not cls.library or importlib.util.find_spec(cls.library) is not None

    def _is_own(self, x: object) -> bool:
        kind = type(x)
        owned = self._owned.get(kind)
        if owned is None:
            owned = self._owned[kind] = self.owns(x)
        return owned

    # -- conversion --------------------------------------------------------------
    def namespace(self, x: Array) -> Namespace:
        """The Array API namespace that computes on ``x``."""
        import array_api_compat

        return array_api_compat.array_namespace(x)

    def same_library(self, x: Array, like: Array) -> bool:
        """Whether two arrays this backend owns can meet in one computation."""
        return True

    def to_numpy(self, x: Array) -> np.ndarray:
        """``x`` (one of this backend's arrays) as a NumPy array, for another backend to take."""
        return np.asarray(x)

    def from_foreign(self, x: np.ndarray, like: Array | None) -> Array:
        """A NumPy array as one of this backend's arrays, on ``like``'s device."""
        xp = self.namespace(like if like is not None else x)
        if like is None:
            return xp.asarray(x)
        import array_api_compat

        return xp.asarray(x, device=array_api_compat.device(like))

    def convert(self, x: Any, name: str, like: Array | None = None) -> Array:
        """``x`` as one of this backend's arrays (on ``like``'s device when given).

        Lists, scalars and NumPy arrays are converted through NumPy. Arrays of
        other backends arrive here already as NumPy (the registry converts them).
        """
        v.check_input_present(name, x)
        if self._is_own(x):
            if like is None or self.same_library(x, like):
                return x
            x = self.to_numpy(x)
        try:
            array = x if isinstance(x, np.ndarray) else np.asarray(x)
        except Exception as error:
            raise TypeError(
                f"{name} is a {type(x).__name__} that cannot be converted to {self.name} "
                f"arrays ({error}); convert it yourself first"
            ) from None
        kind = array.dtype.kind
        if kind == "V" and "float" in array.dtype.name:  # ml_dtypes' bfloat16 from torch or JAX
            kind = "f"
        elif kind == "O":
            v.check_not_iterator(name, x)
        v.check_kind(name, kind, array.dtype)
        return self.from_foreign(array, like)

    def asarray_like(self, xp: Namespace, values: Any, like: Array) -> Array:
        """``values`` (NumPy or this library's) as an array of ``like``'s dtype and device."""
        import array_api_compat

        return xp.asarray(values, dtype=like.dtype, device=array_api_compat.device(like))

    # -- dtypes ------------------------------------------------------------------
    def kind(self, xp: Namespace, dtype: DType) -> str:
        """NumPy-style kind letter of ``dtype``: 'f', 'i', 'u', 'b', 'c' or 'O' (cached)."""
        key = (type(dtype), dtype)  # libraries' dtypes may hash alike but must not compare
        try:
            return self._kinds[key]
        except (KeyError, TypeError):
            pass
        found = "O"
        for kind, group in (("b", "bool"), ("i", "signed integer"), ("u", "unsigned integer"),
                            ("f", "real floating"), ("c", "complex floating")):
            if xp.isdtype(dtype, group):
                found = kind
                break
        try:
            self._kinds[key] = found
        except TypeError:
            pass
        return found

    def default_float(self, xp: Namespace) -> DType:
        """The dtype integer and bool inputs become."""
        try:
            return xp.__array_namespace_info__().default_dtypes()["real floating"]
        except AttributeError:
            return xp.float64

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        """Floats promote to the wider; integers and bools become the default float."""
        true_float = self.kind(xp, true_dtype) == "f"
        pred_float = self.kind(xp, pred_dtype) == "f"
        if true_float and pred_float:
            return pred_dtype if true_dtype == pred_dtype else xp.result_type(true_dtype, pred_dtype)
        if pred_float:
            return pred_dtype
        if true_float:
            return true_dtype
        return self.default_float(xp)

    def accumulation_dtype(self, xp: Namespace, dtype: DType) -> DType:
        """At least float32: half precision accumulates in float32."""
        return xp.float32 if xp.finfo(dtype).bits < 32 else dtype

    def sum_dtype(self, xp: Namespace, dtype: DType) -> DType:
        """The dtype sums over samples are taken in: float64 where the library has it."""
        return getattr(xp, "float64", dtype)

    def cast_result(self, xp: Namespace, value: Array, dtype: DType) -> Array:
        """A value computed in a wider dtype as the result dtype."""
        return xp.astype(value, dtype)

    def as_columns(self, xp: Namespace, x: Array, shape: tuple[int, ...], dtype: DType) -> Array:
        """``x`` reshaped to ``shape`` in the dtype ``dtype`` (the accumulation dtype)."""
        if x.dtype != dtype:
            x = xp.astype(x, dtype)
        return xp.reshape(x, shape)

    # -- value checks (hooks: a backend reads values without extra device syncs) ----
    def readable(self, x: Array) -> bool:
        """Whether ``x``'s values can be read now (not a tracer, not data-less)."""
        return True

    def any_nan(self, xp: Namespace, x: Array) -> bool:
        return bool(xp.any(xp.isnan(x)))

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        """``(Σw, min w, all finite)`` of the sample weights."""
        return float(xp.sum(weight)), float(xp.min(weight)), bool(xp.all(xp.isfinite(weight)))

    def output_weights(self, xp: Namespace, weights: Any, output_shape: tuple[int, ...]) -> Any:
        """The checked ``multioutput`` weights: a flat array of this library (on its device,
        values checked where readable), else a float64 NumPy vector."""
        if not self._is_own(weights) or self.namespace(weights) is not xp:  # NumPy's, for Dask data
            return v.check_output_weights(weights, output_shape)
        v.check_output_weights_shape(tuple(weights.shape), output_shape)
        if self.readable(weights):
            finite = bool(xp.all(xp.isfinite(weights)))
            if not (finite and bool(xp.all(weights >= 0)) and bool(xp.sum(weights) > 0)):
                raise v.output_weights_error(f"an array with minimum {float(xp.min(weights))}")
        return xp.reshape(weights, (-1,))

    # -- kernel hooks --------------------------------------------------------------
    def elementwise(self, xp: Namespace, loss: Loss, r: Array, params: tuple[Any, ...]) -> Array:
        """The loss of each residual; autodiff backends attach the loss's derivative rule."""
        return loss.evaluate_elementwise(xp, r, params)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        """The square root of a mean (RMSE); autodiff backends make its gradient 0 at 0."""
        return xp.sqrt(x)

    def column_totals(self, options: Options, c: Columns, params: tuple[Any, ...]) -> Statistics:
        """``(S, W)``, each of shape ``(K,)``, in :meth:`sum_dtype`."""
        xp = c.xp
        keep = kept(c, options)
        dtype = self.sum_dtype(xp, c.y_pred.dtype)
        total = xp.sum(weighted_losses(self, options, c, params, keep), axis=0, dtype=dtype)
        if keep is None:
            count = c.shape[0] if c.weight is None else xp.sum(c.weight, dtype=dtype)
            return total, xp.zeros_like(total) + count
        ones = xp.ones_like(c.y_pred) if c.weight is None else c.weight[:, None] + xp.zeros_like(c.y_pred)
        kept_weight = xp.where(keep, ones, xp.zeros_like(ones))
        return total, xp.sum(kept_weight, axis=0, dtype=dtype)

    def grand_total(self, options: Options, c: Columns, params: tuple[Any, ...]) -> Array:
        """``Σ w·e`` over every element (no NaN is omitted), for values that need no more."""
        xp = c.xp
        losses = weighted_losses(self, options, c, params, None)
        return xp.sum(losses, dtype=self.sum_dtype(xp, c.y_pred.dtype))

    def run(self, kernel: Callable[..., Any], options: Options, *arrays: Any) -> Any:
        """Run a pure kernel of this module (JAX compiles it; others call it)."""
        return kernel(self, options, *arrays)

    def shortcut(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """A native answer for the commonest calls, or ``None`` for the engine's path."""
        return None

    def finish(self, value: Array, checked: Checked) -> Array:
        """A hook on the final value (the built-ins warn here when a loss overflowed)."""
        return value

    # -- the engine ----------------------------------------------------------------
    def check(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Checked:
        """Convert and check one call's inputs; value checks only where values are readable."""
        pred = self.convert(y_pred, "y_pred")
        true = self.convert(y_true, "y_true", like=pred)
        xp = self.namespace(pred)
        v.check_kind("y_true", self.kind(xp, true.dtype), true.dtype)
        v.check_kind("y_pred", self.kind(xp, pred.dtype), pred.dtype)
        shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
        if options.nan_policy == "raise":
            for name, array in (("y_true", true), ("y_pred", pred)):
                if (self.kind(xp, array.dtype) == "f" and self.readable(array)
                        and self.any_nan(xp, array)):
                    raise v.nan_error(name)
        weight, scale = None, 1.0
        if sample_weight is not None:
            weight = self.convert(sample_weight, "sample_weight", like=pred)
            v.check_kind("sample_weight", self.kind(xp, weight.dtype), weight.dtype)
            v.check_weight_shape(tuple(weight.shape), shape[0])
            if self.readable(weight):
                total, minimum, finite = self.weight_summary(xp, weight)
                v.check_weight_values(total, minimum, finite)
                low, high = WEIGHT_SUM_RANGE
                if not low <= total <= high and options.reduction != "none":
                    dtype = self.accumulation_dtype(xp, self.result_dtype(xp, true.dtype, pred.dtype))
                    weight, scale = self.rescaled_weights(xp, weight, total, dtype)
        output_weights = None
        if options.weighted_outputs:
            output_weights = self.output_weights(xp, options.multioutput, shape[1:])
        return Checked(true, pred, weight, output_weights, shape, scale)

    def rescaled_weights(self, xp: Namespace, weight: Array, total: float, dtype: DType
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

    def evaluate(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Array:
        """The loss value (the weighted elementwise losses for ``reduction="none"``)."""
        value = self.shortcut(options, y_true, y_pred, sample_weight)
        if value is not None:
            return value
        c = self.check(options, y_true, y_pred, sample_weight)
        value = self.run(loss_value, options, c.y_true, c.y_pred, c.sample_weight,
                         c.output_weights, options.params)
        (value,) = c.unscaled(options, value)
        return self.finish(value, c)

    def statistics(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> tuple[Statistics, Checked]:
        """The sufficient statistics ``(S, W)`` of one call, and its checked inputs."""
        c = self.check(options, y_true, y_pred, sample_weight)
        total, weight = self.run(loss_statistics, options, c.y_true, c.y_pred, c.sample_weight,
                                 options.params)
        if c.weight_scale != 1.0:  # exact: the weights were divided by a power of two
            with np.errstate(over="ignore"):
                total, weight = total * c.weight_scale, weight * c.weight_scale
        return (total, weight), c

    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> tuple[Array, Array]:
        """The loss value and its analytic gradient with respect to ``y_pred``."""
        c = self.check(options, y_true, y_pred, sample_weight)
        if options.raw and c.shape[1:] != ():
            raise v.nonscalar_error(c.shape[1:])
        value, grad = self.run(loss_value_and_grad, options, c.y_true, c.y_pred, c.sample_weight,
                               c.output_weights, options.params)
        value, grad = c.unscaled(options, value, grad)
        return self.finish(value, c), grad


# -- pure kernels: functions of arrays, traceable (jit, vmap, torch.compile) -----------
def columns(backend: Backend, true: Array, pred: Array, weight: Array | None) -> Columns:
    """The inputs as ``(n, K)`` columns in the accumulation dtype."""
    xp = backend.namespace(pred)
    dtype = backend.result_dtype(xp, true.dtype, pred.dtype)
    acc = backend.accumulation_dtype(xp, dtype)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
    n, k = shape[0], math.prod(shape[1:])
    t = backend.as_columns(xp, true, (n, k), acc)
    p = backend.as_columns(xp, pred, (n, k), acc)
    w = None if weight is None else backend.as_columns(xp, weight, (n,), acc)
    return Columns(xp, t, p, w, shape, tuple(pred.shape), dtype)


def kept(c: Columns, options: Options) -> Array | None:
    """Boolean ``(n, K)`` mask of the elements ``nan_policy="omit"`` keeps, else ``None``."""
    if options.nan_policy != "omit":
        return None
    xp = c.xp
    return xp.logical_not(xp.logical_or(xp.isnan(c.y_true), xp.isnan(c.y_pred)))


def weighted_losses(backend: Backend, options: Options, c: Columns, params: tuple[Any, ...],
                    keep: Array | None) -> Array:
    """``w·e(r)`` of every element, ``(n, K)``; 0 (with a finite gradient) where omitted."""
    xp = c.xp
    residual = c.y_pred - c.y_true
    if keep is not None:  # a NaN never reaches the loss, so its gradient stays finite
        residual = xp.where(keep, residual, xp.zeros_like(residual))
    losses = backend.elementwise(xp, options.loss, residual, params)
    if keep is not None:
        losses = xp.where(keep, losses, xp.zeros_like(losses))
    if c.weight is not None:
        losses = losses * c.weight[:, None]
    return losses


def _needs_columns(options: Options, c: Columns) -> bool:
    """Whether the value needs per-output statistics (else the grand total is enough)."""
    k = c.y_pred.shape[1]
    return (options.nan_policy == "omit" or options.weighted_outputs
            or (k > 1 and (options.loss.root or not options.uniform)))


def _output_weights(backend: Backend, xp: Namespace, output_weights: Any, like: Array) -> Any:
    return None if output_weights is None else backend.asarray_like(xp, output_weights, like)


def loss_value(backend: Backend, options: Options, true: Array, pred: Array, weight: Array | None,
               output_weights: Any, params: tuple[Any, ...]) -> Array:
    """The loss of checked inputs, in the promoted input dtype."""
    c = columns(backend, true, pred, weight)
    xp = c.xp
    if options.reduction == "none":
        losses = weighted_losses(backend, options, c, params, kept(c, options))
        return backend.cast_result(xp, xp.reshape(losses, c.pred_shape), c.dtype)
    if not _needs_columns(options, c):
        total = backend.grand_total(options, c, params)
        if options.reduction == "mean":
            n, k = c.y_pred.shape
            count = n if c.weight is None else xp.sum(c.weight, dtype=total.dtype)
            total = total / (count * k)
            if options.loss.root:
                total = backend.sqrt(xp, total)
        if options.raw:
            total = xp.reshape(total, c.output_shape)
        return backend.cast_result(xp, total, c.dtype)
    total, count = backend.column_totals(options, c, params)
    value = _reduce.finalize(xp, options, total, count, c.output_shape,
                             _output_weights(backend, xp, output_weights, total), backend.sqrt)
    return backend.cast_result(xp, value, c.dtype)


def loss_statistics(backend: Backend, options: Options, true: Array, pred: Array,
                    weight: Array | None, params: tuple[Any, ...]) -> Statistics:
    """``(S, W)`` per output of checked inputs."""
    return backend.column_totals(options, columns(backend, true, pred, weight), params)


def loss_value_and_grad(backend: Backend, options: Options, true: Array, pred: Array,
                        weight: Array | None, output_weights: Any, params: tuple[Any, ...]
                        ) -> tuple[Array, Array]:
    """The value and the analytic gradient ``d loss / d y_pred`` from the loss's derivative."""
    c = columns(backend, true, pred, weight)
    xp = c.xp
    total, count = backend.column_totals(options, c, params)
    weights = _output_weights(backend, xp, output_weights, total)
    value = _reduce.finalize(xp, options, total, count, c.output_shape, weights, backend.sqrt)
    scale = _reduce.gradient_scale(xp, options, total, count, weights)
    residual = c.y_pred - c.y_true
    grad = options.loss.evaluate_derivative(xp, residual, params)
    grad = grad * xp.astype(scale, grad.dtype)[None, :]
    if c.weight is not None:
        grad = grad * c.weight[:, None]
    keep = kept(c, options)
    if keep is not None:
        grad = xp.where(keep, grad, xp.zeros_like(grad))
    return (backend.cast_result(xp, value, c.dtype),
            xp.astype(xp.reshape(grad, c.pred_shape), c.dtype))
