"""The ``Backend`` base class: one generic engine over any Array API namespace.

A backend names the array classes it owns and the namespace that computes on
them; this class does the rest (conversion, checks, statistics, reduction,
analytic gradients). Built-in backends override the parts they do faster;
a plugin can override nothing but :meth:`Backend.array_types`.
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar, NamedTuple

import numpy as np

from mseplug import _reduce
from mseplug import _validation as v
from mseplug._options import Options


class Prepared(NamedTuple):
    """Inputs after conversion and checks, as ``(n_samples, n_outputs)`` arrays."""

    xp: Any
    y_true: Any  # (n, K), accumulation dtype
    y_pred: Any  # (n, K), accumulation dtype
    sample_weight: Any  # (n,) accumulation dtype, or None
    pred_shape: tuple[int, ...]  # y_pred's own shape: the shape of "none" results and gradients
    output_shape: tuple[int, ...]  # shape of "raw_values" results
    dtype: Any  # promoted input dtype: the dtype of results
    output_weights: Any  # checked multioutput weights (NumPy float64 vector) or None


class Backend:
    """Base class of every backend, built-in or plugin.

    Subclasses set :attr:`name` and :attr:`library` and implement
    :meth:`array_types`; the generic engine here computes through
    :meth:`namespace`, which defaults to ``array_api_compat.array_namespace``.
    """

    name: ClassVar[str] = "generic"
    #: Top-level module whose presence makes this backend usable; "" for always.
    library: ClassVar[str] = ""

    # -- detection ---------------------------------------------------------
    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        """Array classes this backend owns, looked up in ``sys.modules`` (never imported)."""
        return ()

    @classmethod
    def owns(cls, x: object) -> bool:
        """Whether ``x`` is one of this backend's arrays. Called once per type, then cached."""
        types = cls.array_types()
        return bool(types) and isinstance(x, types)

    @classmethod
    def is_installed(cls) -> bool:
        return not cls.library or importlib.util.find_spec(cls.library) is not None

    def __repr__(self) -> str:
        return f"<mseplug backend {self.name!r}>"

    # -- conversion --------------------------------------------------------
    def namespace(self, x: Any) -> Any:
        """The Array API namespace that computes on ``x``."""
        import array_api_compat

        return array_api_compat.array_namespace(x)

    def same_library(self, x: Any, like: Any) -> bool:
        """Whether two arrays this backend owns can meet in one computation."""
        return True

    def to_numpy(self, x: Any) -> np.ndarray:
        """``x`` (one of this backend's arrays) as a NumPy array, for another backend to take."""
        return np.asarray(x)

    def from_foreign(self, x: Any, like: Any) -> Any:
        """A NumPy array, list or scalar as one of this backend's arrays, on ``like``'s device."""
        xp = self.namespace(like)
        device = getattr(like, "device", None)
        return xp.asarray(x, device=device) if device is not None else xp.asarray(x)

    def convert(self, x: Any, name: str, like: Any = None) -> Any:
        """``x`` as one of this backend's arrays; foreign arrays go through NumPy."""
        v.check_input_present(name, x)
        from mseplug._registry import backend_of

        owner = backend_of(x)
        if owner is self and (like is None or self.same_library(x, like)):
            return x
        try:
            if owner is not None and owner is not self:
                x = owner.to_numpy(x)
            if not isinstance(x, np.ndarray):
                x = np.asarray(x)
        except Exception as error:
            raise TypeError(
                f"{name} is a {type(x).__name__} that cannot be converted to {self.name} "
                f"arrays ({error}); convert it yourself first"
            ) from None
        kind = x.dtype.kind
        if kind == "V" and "float" in x.dtype.name:  # ml_dtypes' bfloat16 from torch or JAX
            kind = "f"
        v.check_kind(name, kind, x.dtype)
        return self.from_foreign(x, like) if like is not None else self.from_foreign(x, x)

    # -- dtypes ------------------------------------------------------------
    def dtype_kind(self, xp: Any, dtype: Any) -> str:
        """NumPy-style kind letter of ``dtype``: 'f', 'i', 'u', 'b', 'c' or 'O'."""
        for kind, group in (("b", "bool"), ("i", "signed integer"), ("u", "unsigned integer"),
                            ("f", "real floating"), ("c", "complex floating")):
            if xp.isdtype(dtype, group):
                return kind
        return "O"

    def default_float(self, xp: Any, like: Any) -> Any:
        try:
            return xp.__array_namespace_info__().default_dtypes()["real floating"]
        except AttributeError:
            return xp.float64

    def result_dtype(self, xp: Any, true_kind: str, pred_kind: str, y_true: Any, y_pred: Any) -> Any:
        """Floats promote to the wider; integers and bools become the default float."""
        if true_kind == "f" and pred_kind == "f":
            return xp.result_type(y_true.dtype, y_pred.dtype)
        if pred_kind == "f":
            return y_pred.dtype
        if true_kind == "f":
            return y_true.dtype
        return self.default_float(xp, y_pred)

    def accumulation_dtype(self, xp: Any, dtype: Any) -> Any:
        """At least float32: half precision accumulates in float32."""
        return xp.float32 if xp.finfo(dtype).bits < 32 else dtype

    # -- checks ------------------------------------------------------------
    def prepare(self, y_true: Any, y_pred: Any, sample_weight: Any, options: Options) -> Prepared:
        """Convert, check and reshape the inputs of one call."""
        pred = self.convert(y_pred, "y_pred")
        true = self.convert(y_true, "y_true", like=pred)
        xp = self.namespace(pred)
        true_kind = self.dtype_kind(xp, true.dtype)
        pred_kind = self.dtype_kind(xp, pred.dtype)
        v.check_kind("y_true", true_kind, true.dtype)
        v.check_kind("y_pred", pred_kind, pred.dtype)
        shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
        dtype = self.result_dtype(xp, true_kind, pred_kind, true, pred)
        acc = self.accumulation_dtype(xp, dtype)
        n, k = shape[0], _prod(shape[1:])
        true = xp.reshape(xp.astype(true, acc), (n, k))
        pred_2d = xp.reshape(xp.astype(pred, acc), (n, k))
        if options.nan_policy == "raise":
            for name, array in (("y_true", true), ("y_pred", pred_2d)):
                if bool(xp.any(xp.isnan(array))):
                    raise v.nan_error(name)
        weight = None
        if sample_weight is not None:
            weight = self.convert(sample_weight, "sample_weight", like=pred)
            v.check_kind("sample_weight", self.dtype_kind(xp, weight.dtype), weight.dtype)
            v.check_weight_shape(tuple(weight.shape), n)
            weight = xp.reshape(xp.astype(weight, acc), (n,))
            self.check_weight_values(xp, weight)
        output_weights = None
        if options.weighted_outputs:
            output_weights = v.check_output_weights(options.multioutput, shape[1:])
        return Prepared(xp, true, pred_2d, weight, tuple(pred.shape), shape[1:], dtype, output_weights)

    def check_weight_values(self, xp: Any, weight: Any) -> None:
        v.check_weight_values(
            float(xp.sum(weight)), float(xp.min(weight)), bool(xp.all(xp.isfinite(weight)))
        )

    # -- the engine ----------------------------------------------------------
    def _kept(self, data: Prepared, options: Options) -> Any:
        """Boolean (n, K) mask of the elements ``nan_policy="omit"`` keeps, else ``None``."""
        if options.nan_policy != "omit":
            return None
        xp = data.xp
        return xp.logical_not(xp.logical_or(xp.isnan(data.y_true), xp.isnan(data.y_pred)))

    def _weighted_elementwise(self, data: Prepared, options: Options, keep: Any) -> Any:
        xp = data.xp
        residual = data.y_pred - data.y_true
        losses = options.loss.elementwise(xp, residual, options.delta)
        if keep is not None:
            losses = xp.where(keep, losses, xp.zeros_like(losses))
        if data.sample_weight is not None:
            losses = losses * data.sample_weight[:, None]
        return losses

    def statistics(self, data: Prepared, options: Options) -> tuple[Any, Any]:
        """``(S, W)``, each of shape ``(K,)``: the sufficient statistics of the call."""
        xp = data.xp
        keep = self._kept(data, options)
        total = xp.sum(self._weighted_elementwise(data, options, keep), axis=0)
        if keep is None:
            n = data.y_pred.shape[0]
            weight = n if data.sample_weight is None else xp.sum(data.sample_weight)
            return total, xp.zeros_like(total) + weight
        kept = xp.astype(keep, total.dtype)
        if data.sample_weight is not None:
            kept = kept * data.sample_weight[:, None]
        return total, xp.sum(kept, axis=0)

    def evaluate(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The loss value (or elementwise losses for ``reduction="none"``)."""
        data = self.prepare(y_true, y_pred, sample_weight, options)
        xp = data.xp
        if options.reduction == "none":
            losses = self._weighted_elementwise(data, options, self._kept(data, options))
            return xp.astype(xp.reshape(losses, data.pred_shape), data.dtype)
        total, weight = self.statistics(data, options)
        value = _reduce.finalize(xp, options, total, weight, data.output_shape, data.output_weights)
        return xp.astype(value, data.dtype)

    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
    ) -> tuple[Any, Any]:
        """The loss value and its analytic gradient with respect to ``y_pred``."""
        data = self.prepare(y_true, y_pred, sample_weight, options)
        xp = data.xp
        keep = self._kept(data, options)
        total, weight = self.statistics(data, options)
        value = _reduce.finalize(xp, options, total, weight, data.output_shape, data.output_weights)
        scale = _reduce.gradient_scale(xp, options, total, weight, data.output_weights)
        residual = data.y_pred - data.y_true
        grad = options.loss.derivative(xp, residual, options.delta) * scale[None, :]
        if data.sample_weight is not None:
            grad = grad * data.sample_weight[:, None]
        if keep is not None:
            grad = xp.where(keep, grad, xp.zeros_like(grad))
        grad = xp.astype(xp.reshape(grad, data.pred_shape), data.dtype)
        return xp.astype(value, data.dtype), grad


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for size in shape:
        out *= size
    return out
