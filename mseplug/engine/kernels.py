"""The engine's pure kernels: from checked inputs to statistics, values and gradients.

Each is a function of arrays (plus the backend, whose hooks it calls, and the
static options), written once against the Array API: it runs eagerly on
NumPy, torch and Dask, and traces under ``jax.jit``, ``vmap`` and
``torch.compile``. The engine's driver (:mod:`mseplug.engine.pipeline`) runs them
through the backend's ``run`` hook; they call the other hooks of
:class:`~mseplug.engine.protocol.Hooks`.
"""

from __future__ import annotations

import math
from typing import Any

from mseplug._typing import Array
from mseplug.engine import finalize as _finalize
from mseplug.engine import moments
from mseplug.engine import validation as v
from mseplug.engine.columns import Columns
from mseplug.engine.protocol import Hooks
from mseplug.loss.options import Options

Statistics = tuple[Array, Array]


def columns(backend: Hooks, true: Array, pred: Array, weight: Array | None, *,
            wide: bool = False) -> Columns:
    """The inputs as ``(n, K)`` columns in the accumulation dtype (``wide``: in the library's
    widest float, as sufficient statistics are, whatever the batch dtype)."""
    xp = backend.namespace(pred)
    dtype = backend.result_dtype(xp, true.dtype, pred.dtype)
    work = backend.widest_float(xp) if wide else backend.accumulation_dtype(xp, dtype)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape), allow_empty=True)
    n, k = shape[0], math.prod(shape[1:])
    t = backend.as_columns(xp, true, (n, k), work)
    p = backend.as_columns(xp, pred, (n, k), work)
    w = None if weight is None else backend.as_columns(xp, weight, (n,), work)
    return Columns(xp, t, p, w, shape, tuple(pred.shape), dtype, work)


def kept(c: Columns, options: Options) -> Array | None:
    """Boolean ``(n, K)`` mask of the elements ``nan_policy="omit"`` keeps, else ``None``."""
    if options.nan_policy != "omit":
        return None
    xp = c.xp
    return xp.logical_not(xp.logical_or(xp.isnan(c.y_true), xp.isnan(c.y_pred)))


def kept_pair(c: Columns, keep: Array | None) -> tuple[Array, Array]:
    """The columns with every omitted element replaced by 1 (a value inside every built-in
    loss's domain, of loss 0), so a NaN never reaches a loss or its derivative: gradients stay
    finite where ``nan_policy="omit"`` dropped an element."""
    if keep is None:
        return c.y_true, c.y_pred
    xp = c.xp
    one = xp.ones_like(c.y_pred)
    return xp.where(keep, c.y_true, one), xp.where(keep, c.y_pred, one)


def weighted_losses(backend: Hooks, options: Options, c: Columns, params: tuple[Any, ...],
                    keep: Array | None) -> Array:
    """``w·e(y, ŷ)`` of every element, ``(n, K)``; 0 (with a finite gradient) where omitted."""
    xp = c.xp
    true, pred = kept_pair(c, keep)
    losses = backend.elementwise(xp, options.loss, true, pred, params)
    if keep is not None:
        losses = xp.where(keep, losses, xp.zeros_like(losses))
    if c.weight is not None:
        losses = losses * c.weight[:, None]
    return losses


def generic_column_totals(backend: Hooks, options: Options, c: Columns,
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


def generic_grand_value(backend: Hooks, options: Options, c: Columns,
                        params: tuple[Any, ...]) -> tuple[Array, Any]:
    """Every element taken as one output: ``(Σ w·e / D, D)`` with ``D = Σw · K`` for the
    mean (``Σw`` is ``n`` without weights), ``(Σ w·e, 1)`` for the sum; no NaN is omitted."""
    xp = c.xp
    losses = weighted_losses(backend, options, c, params, None)
    total = xp.sum(losses, dtype=backend.sum_dtype(xp, c.y_pred.dtype))
    if options.reduction != "mean":
        return total, 1
    count = c.shape[0] if c.weight is None else xp.sum(c.weight, dtype=total.dtype)
    denominator = count * c.outputs
    return total / denominator, denominator


def needs_columns(options: Options, c: Columns) -> bool:
    """Whether the value needs per-output statistics (else one grand value over every element:
    the outputs share one weight, and a uniform mean of equal means is their grand mean)."""
    k = c.y_pred.shape[1]
    return (options.nan_policy == "omit" or options.weighted_outputs
            or (k > 1 and (options.loss.root or not options.uniform)))


def output_weights_like(backend: Hooks, options: Options, output_weights: Any, like: Array
                        ) -> Any:
    """Checked output weights as an array of ``like``'s library, device and dtype."""
    if output_weights is None:
        return None
    return backend.asarray_like(backend.namespace(like), output_weights, like)


def loss_value(backend: Hooks, options: Options, true: Array, pred: Array, weight: Array | None,
               output_weights: Any, params: tuple[Any, ...]) -> Array:
    """The loss of checked inputs, in the promoted input dtype."""
    if options.loss.statistics is not None:
        return statistics_value(backend, options, true, pred, weight, output_weights)
    c = columns(backend, true, pred, weight)
    xp = c.xp
    if options.reduction == "none":
        losses = weighted_losses(backend, options, c, params, kept(c, options))
        return backend.cast_result(xp, xp.reshape(losses, c.pred_shape), c.dtype)
    if not needs_columns(options, c):
        statistic, _ = backend.grand_value(options, c, params)
        value = _finalize.finalize_grand(xp, options, statistic, c.output_shape, backend.sqrt)
        return backend.cast_result(xp, value, c.dtype)
    total, count = backend.column_totals(options, c, params)
    value = _finalize.finalize(xp, options, total, count, c.output_shape,
                             output_weights_like(backend, options, output_weights, total), backend.sqrt)
    return backend.cast_result(xp, value, c.dtype)


def loss_statistics(backend: Hooks, options: Options, true: Array, pred: Array,
                    weight: Array | None, params: tuple[Any, ...]) -> Statistics:
    """``(S, W)`` per output of checked inputs, in the library's widest float (a loss with
    statistics of its own: its named statistics, see :mod:`mseplug.engine.moments`)."""
    if options.loss.statistics is not None:
        c = columns(backend, true, pred, weight, wide=True)
        return backend.part_statistics(options, c, kept(c, options))  # type: ignore[return-value]
    return backend.column_totals(options, columns(backend, true, pred, weight, wide=True), params)


def loss_value_and_grad(backend: Hooks, options: Options, true: Array, pred: Array,
                        weight: Array | None, output_weights: Any, params: tuple[Any, ...]
                        ) -> tuple[Array, Array]:
    """The value (as :func:`loss_value`'s, bit for bit) and the analytic gradient
    ``d loss / d y_pred`` from the loss's derivative."""
    if options.loss.statistics is not None:
        return statistics_value_and_grad(backend, options, true, pred, weight, output_weights)
    c = columns(backend, true, pred, weight)
    xp = c.xp
    if not needs_columns(options, c):
        statistic, denominator = backend.grand_value(options, c, params)
        value = _finalize.finalize_grand(xp, options, statistic, c.output_shape, backend.sqrt)
        factor = _finalize.root_gradient_factor(xp, statistic) if options.loss.root else None
        if factor is not None and not hasattr(factor, "dtype"):
            factor = xp.asarray(factor)
        grad = scaled_gradient(options, c, factor, params,
                               denominator=denominator if options.reduction == "mean" else None)
        return backend.cast_result(xp, value, c.dtype), grad
    total, count = backend.column_totals(options, c, params)
    weights = output_weights_like(backend, options, output_weights, total)
    value = _finalize.finalize(xp, options, total, count, c.output_shape, weights, backend.sqrt)
    scale = _finalize.gradient_scale(xp, options, total, count, weights)
    return backend.cast_result(xp, value, c.dtype), scaled_gradient(options, c, scale, params)


def scaled_gradient(options: Options, c: Columns, scale: Array | None, params: tuple[Any, ...],
                    *, denominator: Any = None) -> Array:
    """``d loss / d y_pred`` in ``y_pred``'s shape: ``wᵢ · e'(rᵢₖ) / denominator · scale[k]``
    (``scale`` from ``_finalize.gradient_scale``, or a 0-d factor, or none), 0 where
    ``nan_policy="omit"`` dropped an element."""
    xp = c.xp
    keep = kept(c, options)
    grad = options.loss.slope(xp, *kept_pair(c, keep), params)
    if c.weight is not None:
        grad = grad * c.weight[:, None]
    if denominator is not None:
        grad = grad / denominator
    if scale is not None:
        if scale.dtype != grad.dtype:
            scale = xp.astype(scale, grad.dtype)
        grad = grad * (scale[None, :] if scale.ndim else scale)
    if keep is not None:
        grad = xp.where(keep, grad, xp.zeros_like(grad))
    return xp.astype(xp.reshape(grad, c.pred_shape), c.dtype, copy=False)


# -- losses with statistics of their own (R², the maximum error) -----------------------------
def _statistics_of(backend: Hooks, options: Options, true: Array, pred: Array,
                   weight: Array | None) -> tuple[Columns, Array | None, dict[str, Array]]:
    c = columns(backend, true, pred, weight, wide=True)
    keep = kept(c, options)
    return c, keep, backend.part_statistics(options, c, keep)


def statistics_value(backend: Hooks, options: Options, true: Array, pred: Array,
                     weight: Array | None, output_weights: Any) -> Array:
    """The value of a loss with its own statistics, computed in the widest float."""
    c, _, stats = _statistics_of(backend, options, true, pred, weight)
    weights = output_weights_like(backend, options, output_weights, stats["weight"])
    value = moments.value(c.xp, options, stats, c.output_shape, weights)
    return backend.cast_result(c.xp, value, c.dtype)


def statistics_value_and_grad(backend: Hooks, options: Options, true: Array, pred: Array,
                              weight: Array | None, output_weights: Any) -> tuple[Array, Array]:
    """The value and the record's analytic gradient of a loss with its own statistics."""
    c, keep, stats = _statistics_of(backend, options, true, pred, weight)
    weights = output_weights_like(backend, options, output_weights, stats["weight"])
    value = moments.value(c.xp, options, stats, c.output_shape, weights)
    grad = moments.gradient(c.xp, options, stats, c, keep, weights)
    return backend.cast_result(c.xp, value, c.dtype), grad
