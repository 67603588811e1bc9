"""The engine's pure kernels: from checked inputs to statistics, values and gradients.

Each is a function of arrays (plus the backend, whose hooks it calls, and the
static options), written once against the Array API: it runs eagerly on
NumPy, torch and Dask, and traces under ``jax.jit``, ``vmap`` and
``torch.compile``. :class:`mseplug.Backend` runs them through ``Backend.run``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

from mseplug import _reduce
from mseplug import _validation as v
from mseplug._options import Options
from mseplug._typing import Array, DType, Namespace

if TYPE_CHECKING:
    from mseplug._engine import Backend

Statistics = tuple[Array, Array]


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



def columns(backend: Backend, true: Array, pred: Array, weight: Array | None) -> Columns:
    """The inputs as ``(n, K)`` columns in the accumulation dtype."""
    xp = backend.namespace(pred)
    dtype = backend.result_dtype(xp, true.dtype, pred.dtype)
    acc = backend.accumulation_dtype(xp, dtype)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape), allow_empty=True)
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


def generic_column_totals(backend: Backend, options: Options, c: Columns,
                          params: tuple[Any, ...]) -> Statistics:
    """``(S, W)``, each of shape ``(K,)``, in the backend's ``sum_dtype``."""
    xp = c.xp
    keep = kept(c, options)
    dtype = backend.sum_dtype(xp, c.y_pred.dtype)
    total = xp.sum(weighted_losses(backend, options, c, params, keep), axis=0, dtype=dtype)
    if keep is None:
        count = c.shape[0] if c.weight is None else xp.sum(c.weight, dtype=dtype)
        return total, xp.zeros_like(total) + count
    ones = xp.ones_like(c.y_pred) if c.weight is None else c.weight[:, None] + xp.zeros_like(c.y_pred)
    kept_weight = xp.where(keep, ones, xp.zeros_like(ones))
    return total, xp.sum(kept_weight, axis=0, dtype=dtype)


def generic_grand_total(backend: Backend, options: Options, c: Columns,
                        params: tuple[Any, ...]) -> Array:
    """``Σ w·e`` over every element, in the backend's ``sum_dtype``."""
    xp = c.xp
    losses = weighted_losses(backend, options, c, params, None)
    return xp.sum(losses, dtype=backend.sum_dtype(xp, c.y_pred.dtype))


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
    return backend.cast_result(xp, value, c.dtype), scaled_gradient(options, c, scale, params)


def scaled_gradient(options: Options, c: Columns, scale: Array, params: tuple[Any, ...]) -> Array:
    """``d loss / d y_pred`` from the per-output factor ``scale`` (see ``_reduce.gradient_scale``):
    ``scale[k] · wᵢ · e'(rᵢₖ)``, 0 where ``nan_policy="omit"`` dropped an element."""
    xp = c.xp
    residual = c.y_pred - c.y_true
    grad = options.loss.evaluate_derivative(xp, residual, params)
    grad = grad * (scale if scale.dtype == grad.dtype else xp.astype(scale, grad.dtype))[None, :]
    if c.weight is not None:
        grad = grad * c.weight[:, None]
    keep = kept(c, options)
    if keep is not None:
        grad = xp.where(keep, grad, xp.zeros_like(grad))
    return xp.astype(xp.reshape(grad, c.pred_shape), c.dtype, copy=False)
