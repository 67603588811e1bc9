"""The NumPy backend: blocked float64-accumulating kernels and analytic gradients."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mseplug import _overflow, _reduce
from mseplug import _validation as v
from mseplug._backend import Backend, Prepared
from mseplug._backends import numpy_kernels as kernels
from mseplug._options import Options

_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32)}


def _result(value: Any, dtype: np.dtype) -> np.ndarray:
    """A float64 value in the result dtype; beyond the dtype's range it is inf, with a warning."""
    largest = _LARGEST.get(dtype)
    if largest is not None:
        if isinstance(value, float):
            overflow = largest < abs(value) < math.inf
        else:
            overflow = bool(np.any((np.abs(value) > largest) & np.isfinite(value)))
        if overflow:
            _overflow.warn(dtype.name)
            with np.errstate(over="ignore"):
                return np.asarray(value, dtype=dtype)
    return np.asarray(value, dtype=dtype)


class NumpyBackend(Backend):
    """NumPy arrays and scalars, plus anything NumPy can convert (lists, pandas, ...)."""

    name = "numpy"
    library = "numpy"

    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        return (np.ndarray, np.generic)

    def namespace(self, x: Any) -> Any:
        import array_api_compat.numpy

        return array_api_compat.numpy

    def from_foreign(self, x: Any, like: Any) -> Any:
        return np.asarray(x)

    def _array(self, x: Any, name: str) -> np.ndarray:
        array = x if type(x) is np.ndarray else np.asarray(self.convert(x, name))
        kind = array.dtype.kind
        if kind != "f":
            v.check_kind(name, kind, array.dtype)
            array = array.astype(np.float64)  # integers and bools: the default float
        return array

    def prepare(self, y_true: Any, y_pred: Any, sample_weight: Any, options: Options) -> Prepared:
        # Unlike the generic engine, inputs keep their dtype here: the kernels
        # cast block by block, so no full-size copy is made.
        pred = self._array(y_pred, "y_pred")
        true = self._array(y_true, "y_true")
        shape = v.common_shape(true.shape, pred.shape)
        dtype = pred.dtype if true.dtype == pred.dtype else np.promote_types(true.dtype, pred.dtype)
        n = shape[0]
        true_2d, pred_2d = true.reshape(n, -1), pred.reshape(n, -1)
        if options.nan_policy == "raise":
            for name, array in (("y_true", true), ("y_pred", pred)):
                if np.isnan(np.add.reduce(array, axis=None)) and np.isnan(array).any():
                    raise v.nan_error(name)
        weight = None
        if sample_weight is not None:
            weight = self._array(sample_weight, "sample_weight")
            v.check_weight_shape(weight.shape, n)
            weight = weight.astype(np.float64).reshape(n)
            self.check_weight_values(np, weight)
        output_weights = None
        if options.weighted_outputs:
            output_weights = v.check_output_weights(options.multioutput, shape[1:])
        return Prepared(np, true_2d, pred_2d, weight, pred.shape, shape[1:], dtype, output_weights)

    @staticmethod
    def _work_dtype(dtype: np.dtype) -> np.dtype:
        return _FLOAT32 if dtype.itemsize < 4 else dtype

    def statistics(self, data: Prepared, options: Options) -> tuple[Any, Any]:
        # Residuals in float64: float32 squares cannot overflow here.
        return kernels.column_totals(
            options.loss.name, data.y_true, data.y_pred, data.sample_weight,
            options.nan_policy == "omit", _FLOAT64, options.delta,
        )

    def _flat(self, data: Prepared, options: Options) -> bool:
        """Whether the value needs only the grand total (no per-output statistics)."""
        return (
            data.sample_weight is None
            and options.nan_policy != "omit"
            and not options.weighted_outputs
            and (data.y_pred.shape[1] == 1 or (options.uniform and not options.loss.root))
        )

    def evaluate(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        if (  # the common call: two float arrays of one shape and dtype, default options
            type(y_pred) is np.ndarray
            and type(y_true) is np.ndarray
            and sample_weight is None
            and options.reduction == "mean"
            and options.nan_policy == "propagate"
            and y_true.shape == y_pred.shape
            and y_true.dtype == y_pred.dtype
            and y_pred.dtype.kind == "f"
            and y_pred.ndim <= 1
            and y_pred.size
            and not options.weighted_outputs
        ):
            return self._flat_value(options, y_true.reshape(-1), y_pred.reshape(-1), y_pred.dtype)
        data = self.prepare(y_true, y_pred, sample_weight, options)
        if options.reduction == "none":
            return self._elementwise(data, options)
        if self._flat(data, options):
            value = self._flat_value(
                options, data.y_true.reshape(-1), data.y_pred.reshape(-1), data.dtype
            )
            return value.reshape(data.output_shape) if options.raw else value
        total, weight = self.statistics(data, options)
        value = _reduce.finalize(np, options, total, weight, data.output_shape, data.output_weights)
        return _result(value, data.dtype)

    def _flat_value(self, options: Options, y_true: Any, y_pred: Any, dtype: np.dtype) -> Any:
        """The value from the grand total over 1-D views (no per-output statistics needed)."""
        # Huber's two dot products lose digits in float32 when the residuals are large.
        work = _FLOAT64 if options.loss.name == "huber" else self._work_dtype(dtype)
        total = kernels.flat_total(options.loss.name, y_true, y_pred, work, options.delta)
        if options.reduction == "mean":
            total /= y_pred.size
            if options.loss.root:
                total **= 0.5
        return _result(total, dtype)

    def _elementwise(self, data: Prepared, options: Options) -> Any:
        work = self._work_dtype(data.dtype)
        residual = np.subtract(data.y_pred, data.y_true, dtype=work)
        losses = options.loss.elementwise(np, residual, options.delta)
        if options.nan_policy == "omit":
            losses[np.isnan(data.y_true) | np.isnan(data.y_pred)] = 0
        if data.sample_weight is not None:
            losses *= data.sample_weight[:, None].astype(work)
        return losses.reshape(data.pred_shape).astype(data.dtype, copy=False)

    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
    ) -> tuple[Any, Any]:
        data = self.prepare(y_true, y_pred, sample_weight, options)
        total, weight = self.statistics(data, options)
        value = _reduce.finalize(np, options, total, weight, data.output_shape, data.output_weights)
        scale = _reduce.gradient_scale(np, options, total, weight, data.output_weights)
        residual = np.subtract(data.y_pred, data.y_true, dtype=np.float64)
        grad = options.loss.derivative(np, residual, options.delta)
        grad *= scale[None, :]
        if data.sample_weight is not None:
            grad *= data.sample_weight[:, None]
        if options.nan_policy == "omit":
            grad[np.isnan(data.y_true) | np.isnan(data.y_pred)] = 0
        grad = grad.reshape(data.pred_shape).astype(data.dtype, copy=False)
        return _result(value, data.dtype), grad
