"""``Backend``: the base class of every backend, built-in or plugin: the engine's hooks.

A backend says how to recognise its arrays, its Array API namespace, and
where it is faster than the generic definitions here: native kernels, value
checks without a device sync, a fast path for the commonest calls. A plugin
can override nothing but :meth:`Backend.array_types`. The engine that drives
these hooks (checks, kernels, final step) is :mod:`mseplug.engine.pipeline`;
it is written against the protocol :class:`~mseplug.engine.protocol.Hooks`,
which this class implements.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from mseplug._typing import Array, DType, Namespace
from mseplug.engine import moments
from mseplug.engine import validation as v
from mseplug.engine.checks import Checked, first_outside
from mseplug.engine.columns import Columns
from mseplug.engine.dtypes import namespace_kind
from mseplug.engine.finalize import ScaledStatistics, times_power_of_two
from mseplug.engine.kernels import (
    Statistics,
    generic_column_totals,
    generic_grand_value,
    loss_statistics,
    loss_value_and_grad,
)
from mseplug.loss.options import Options
from mseplug.loss.record import Bound, Loss

#: How many options objects :meth:`Backend.fast_plan` remembers.
_PLANS = 256


def plain_options(options: Options, *, checks_domain: bool = False) -> bool:
    """Whether a call with these options needs no check beyond its arrays' types, shapes and
    dtypes, keeps every element, and gives every element one weight: the options a fast path
    may take (a loss with a domain has values to check, ``"omit"`` drops elements, ``"raise"``
    looks for NaN, output weights and statistics of its own need the engine).

    ``checks_domain``: the fast path checks a loss's domain itself (a loss with one may be
    plain too).
    """
    return (
        (checks_domain or options.loss.domain is None)
        and options.loss.statistics is None
        and options.reduction != "none"
        and options.nan_policy == "propagate"
        and isinstance(options.multioutput, str)
    )


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
        self._plans: dict[int, tuple[Options, Any]] = {}

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
        found = self._kinds.get(key)
        if found is None:
            found = self._kinds[key] = namespace_kind(xp, dtype)
        return found

    def default_float(self, xp: Namespace) -> DType:
        """The dtype integer and bool inputs become."""
        try:
            return xp.__array_namespace_info__().default_dtypes()["real floating"]
        except AttributeError:
            return xp.float64

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        """Integers and bools become the default float; then floats promote to the wider."""
        if self.kind(xp, true_dtype) != "f":
            true_dtype = self.default_float(xp)
        if self.kind(xp, pred_dtype) != "f":
            pred_dtype = self.default_float(xp)
        return pred_dtype if true_dtype == pred_dtype else xp.result_type(true_dtype, pred_dtype)

    def accumulation_dtype(self, xp: Namespace, dtype: DType) -> DType:
        """At least float32: half precision accumulates in float32."""
        return xp.float32 if xp.finfo(dtype).bits < 32 else dtype

    def sum_dtype(self, xp: Namespace, dtype: DType) -> DType:
        """The dtype sums over samples are taken in: float64 where the library has it."""
        return getattr(xp, "float64", dtype)

    def widest_float(self, xp: Namespace) -> DType:
        """The widest float the library computes in: sufficient statistics and weight scaling
        use it (float64 where the library has it)."""
        return getattr(xp, "float64", None) or xp.float32

    def cast_result(self, xp: Namespace, value: Array, dtype: DType) -> Array:
        """A value computed in a wider dtype as the result dtype."""
        return value if value.dtype == dtype else xp.astype(value, dtype)

    def as_columns(self, xp: Namespace, x: Array, shape: tuple[int, ...], dtype: DType) -> Array:
        """``x`` reshaped to ``shape`` in the dtype ``dtype`` (the accumulation dtype)."""
        if x.dtype != dtype:
            x = xp.astype(x, dtype)
        return xp.reshape(x, shape)

    # -- value checks (hooks: a backend reads values without extra device syncs) ----
    def readable(self, x: Array) -> bool:
        """Whether ``x``'s values can be read now (not a tracer, not data-less)."""
        return True

    def checks_weights(self, weight: Array) -> bool:
        """Whether sample weights' values are checked (and rescaled) on this call."""
        return self.readable(weight)

    def any_nan(self, xp: Namespace, x: Array) -> bool:
        return bool(xp.any(xp.isnan(x)))

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        """``(Σw, min w, all finite)`` of the sample weights (a sum beyond the dtype is inf:
        the weights are then scaled, quietly, for a library that computes with NumPy too)."""
        with np.errstate(over="ignore"):
            return float(xp.sum(weight)), float(xp.min(weight)), bool(xp.all(xp.isfinite(weight)))

    def output_weights(self, xp: Namespace, weights: Any, output_shape: tuple[int, ...],
                       like: Array) -> Any:
        """The checked ``multioutput`` weights: a flat array of ``like``'s library (on its
        device, values checked where readable), else a float64 NumPy vector."""
        if not (self._is_own(weights) and self.same_library(weights, like)):
            return v.check_output_weights(weights, output_shape)
        v.check_output_weights_shape(tuple(weights.shape), output_shape)
        if self.readable(weights):
            finite = bool(xp.all(xp.isfinite(weights)))
            if not (finite and bool(xp.all(weights >= 0)) and bool(xp.any(weights > 0))):
                raise v.output_weights_error(f"an array with minimum {float(xp.min(weights))}")
        return xp.reshape(weights, (-1,))

    def first_outside(self, xp: Namespace, array: Array, bound: Bound) -> tuple[int, float] | None:
        """The flat index and value of the first element outside a loss's domain, or ``None``."""
        return first_outside(xp, array, bound)

    # -- kernel hooks --------------------------------------------------------------
    def elementwise(self, xp: Namespace, loss: Loss, y_true: Array, y_pred: Array,
                    params: tuple[Any, ...]) -> Array:
        """The loss of each element; autodiff backends attach the loss's derivative rule."""
        return loss.pointwise(xp, y_true, y_pred, params)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        """The square root of a mean (RMSE); autodiff backends make its gradient 0 at 0."""
        return xp.sqrt(x)

    def column_totals(self, options: Options, c: Columns, params: tuple[Any, ...]) -> Statistics:
        """``(S, W)``, each of shape ``(K,)``, in :meth:`sum_dtype`."""
        return generic_column_totals(self, options, c, params)

    def grand_value(self, options: Options, c: Columns, params: tuple[Any, ...]
                    ) -> tuple[Array, Any]:
        """Every element as one output, when the outputs share one weight: ``(Σ w·e / D, D)``
        for the mean (``D = Σw · K``), ``(Σ w·e, 1)`` for the sum; no NaN is omitted."""
        return generic_grand_value(self, options, c, params)

    def part_statistics(self, options: Options, c: Columns, keep: Array | None
                        ) -> dict[str, Array]:
        """The named statistics of one part of a loss with statistics of its own (``c`` in the
        widest float, ``keep`` the elements ``nan_policy="omit"`` keeps): every path (one call,
        gradients, sufficient statistics, an accumulator's update) computes them here, so they
        agree. Generic: :func:`mseplug.engine.moments.part_statistics` on whole columns."""
        return moments.part_statistics(c.xp, options, c, keep)

    def run(self, kernel: Callable[..., Any], options: Options, *arrays: Any) -> Any:
        """Run one of the engine's pure kernels (JAX compiles it; others call it)."""
        return kernel(self, options, *arrays)

    def fast_value(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The value of the commonest calls without the general checks, or ``None``.

        A fast path accepts only calls the engine accepts and needs no check for
        (by one predicate on types, shapes and options), computes through the
        same kernel hooks and final step, and so returns the engine's number
        bit for bit (the test suite asserts it).
        """
        return None

    def fast_plan(self, options: Options) -> Any:
        """:meth:`plan_fast_path` of ``options``, worked out once per :class:`Options` object.

        A fast path's decisions about the options alone (which kernel it runs,
        or ``None`` when they need the engine) cost a call nothing after the
        first: the loss functions reuse one options object per set of
        defaults, so a call pays only for looking at its arrays. The object is
        kept with its answer, so its ``id`` cannot be reused while the answer
        is remembered.
        """
        known = self._plans.get(id(options))
        if known is not None and known[0] is options:
            return known[1]
        answer = self.plan_fast_path(options)
        if len(self._plans) >= _PLANS:
            self._plans.clear()
        self._plans[id(options)] = (options, answer)
        return answer

    def plan_fast_path(self, options: Options) -> Any:
        """What this backend's fast paths need to know about ``options`` (see
        :meth:`fast_plan`); by default whether they are :func:`plain_options`."""
        return plain_options(options)

    def fast_value_and_grad(self, options: Options, y_true: Any, y_pred: Any,
                            sample_weight: Any) -> tuple[Array, Array] | None:
        """:meth:`fast_value` for gradients: bit for bit the engine's, or ``None``."""
        return None

    def differentiate(self, options: Options, checked: Checked) -> tuple[Array, Array]:
        """The value and ``d loss / d y_pred`` of checked inputs: analytic, from the loss's
        derivative (autodiff backends may differentiate the value kernel instead)."""
        return self.run(loss_value_and_grad, options, checked.y_true, checked.y_pred,
                        checked.sample_weight, checked.output_weights, options.params)

    def statistics(self, options: Options, checked: Checked) -> ScaledStatistics:
        """``(S, W)`` per output of checked inputs, in the widest float, with the exponent
        their weights were scaled by (a lazy library may return lazy ones). A loss with its
        own statistics has them as ``total``, a mapping of name to ``(K,)`` array (its
        ``"weight"`` is ``weight``)."""
        if options.loss.statistics is not None:
            named = self.run(loss_statistics, options, checked.y_true, checked.y_pred,
                             checked.sample_weight, options.params)
            return ScaledStatistics(named, named["weight"], checked.weight_exponent)
        total, weight = self.run(loss_statistics, options, checked.y_true, checked.y_pred,
                                 checked.sample_weight, options.params)
        return ScaledStatistics(total, weight, checked.weight_exponent)

    def times_power_of_two(self, x: Array, exponent: Any) -> Array:
        """``x · 2**exponent`` (exact unless it over- or underflows); ``exponent`` is an int,
        or lazy where :meth:`statistics` made it so."""
        if not exponent:
            return x
        with np.errstate(over="ignore"):  # inf where the true value exceeds the dtype
            return times_power_of_two(x, exponent)

    def unscaled_statistics(self, statistics: ScaledStatistics) -> tuple[Array, Array]:
        """``(S, W)`` in the caller's weight units: times ``2**exponent`` (``inf`` where that
        exceeds the widest float)."""
        return (self.times_power_of_two(statistics.total, statistics.exponent),
                self.times_power_of_two(statistics.weight, statistics.exponent))

    def finish(self, value: Array, checked: Checked) -> Array:
        """A hook on the final value (the built-ins warn here when a loss overflowed)."""
        return value

    def fetch(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        """Several results as NumPy arrays (Python numbers stay as they are), read together:
        a lazy library computes them in one pass."""
        return tuple(value if isinstance(value, (int, float)) else self.to_numpy(value)
                     for value in values)

    def rows(self, checked: Checked) -> Any:
        """The number of samples of checked inputs: an int, or a lazy count where it is not
        known before the data exist (see :meth:`fetch`)."""
        return checked.shape[0]
