"""The NumPy backend: blocked float64-accumulating kernels behind the common engine.

Its hooks: NumPy arrays stay in their own float dtype (the kernels cast block
by block, so no full-size copy is made), sums go through the loss's
:class:`~mseplug._backends.numpy_kernels.BlockKernel`, and the commonest call
(two 1-D float arrays of one dtype, default options) skips straight to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mseplug import _overflow
from mseplug._backends import numpy_kernels as kernels
from mseplug._engine import Backend, Columns
from mseplug._loss import Loss
from mseplug._options import Options
from mseplug._typing import Array, DType, Namespace

_FLOAT32 = np.dtype(np.float32)
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32)}


def _in_dtype(value: Any, dtype: np.dtype) -> np.ndarray:
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

    def kind(self, xp: Namespace, dtype: DType) -> str:
        kind = dtype.kind
        return "f" if kind == "V" and "float" in dtype.name else kind

    def default_float(self, xp: Namespace) -> DType:
        return np.dtype(np.float64)

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        if true_dtype == pred_dtype and pred_dtype.kind == "f":
            return pred_dtype
        return super().result_dtype(xp, true_dtype, pred_dtype)

    def accumulation_dtype(self, xp: Namespace, dtype: DType) -> DType:
        return _FLOAT32 if dtype.itemsize < 4 else dtype

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

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        # Two passes in the weights' own dtype, no copy: a NaN or inf makes the sum non-finite
        # (only then, or when the sum overflows, is the elementwise check needed). The sum is
        # only compared with 0, so its own dtype is precise enough.
        with np.errstate(over="ignore", invalid="ignore"):
            total = float(np.add.reduce(weight, axis=None))
        finite = math.isfinite(total) or bool(np.isfinite(weight).all())
        return total, float(np.minimum.reduce(weight, axis=None)), finite

    # -- kernels -------------------------------------------------------------------------
    def kernel(self, loss: Loss) -> kernels.BlockKernel:
        """The loss's native block kernel, else one made from its elementwise function."""
        kernel = self._kernels.get(loss)
        if kernel is None:
            kernel = loss.native_kernel("numpy") or kernels.generic_kernel(loss)
            self._kernels[loss] = kernel
        return kernel

    def column_totals(self, options: Options, c: Columns, params: tuple[Any, ...]
                      ) -> tuple[Array, Array]:
        kernel = self.kernel(options.loss)
        n, k = c.y_pred.shape
        if k == 1 and n and options.nan_policy != "omit":  # one output: the flat kernels
            t, p = c.y_true.reshape(-1), c.y_pred.reshape(-1)
            work = _FLOAT32 if c.dtype.itemsize < 4 else c.dtype
            if c.weight is not None:
                return kernels.weighted_flat_totals(kernel, t, p, c.weight, work, options.params)
            total = kernels.flat_total(kernel, t, p, work, options.params)
            return np.array([total]), np.array([float(n)])
        return kernels.column_totals(
            kernel, c.y_true, c.y_pred, c.weight, options.nan_policy == "omit", options.params,
        )

    def grand_total(self, options: Options, c: Columns, params: tuple[Any, ...]) -> Array:
        if c.weight is not None:  # weighted: Σₖ (w @ e)ₖ, the blocked float64 column sums
            return self.column_totals(options, c, params)[0].sum()
        work = _FLOAT32 if c.dtype.itemsize < 4 else c.dtype
        return np.float64(kernels.flat_total(
            self.kernel(options.loss), c.y_true.reshape(-1), c.y_pred.reshape(-1), work,
            options.params,
        ))

    def shortcut(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The common call: two 1-D float arrays of one shape and dtype, default options."""
        if (
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
            dtype = y_pred.dtype
            work = _FLOAT32 if dtype.itemsize < 4 else dtype
            total = kernels.flat_total(self.kernel(options.loss), y_true.reshape(-1),
                                       y_pred.reshape(-1), work, options.params)
            total /= y_pred.size
            if options.loss.root:
                total **= 0.5
            return _in_dtype(total, dtype)
        return None
