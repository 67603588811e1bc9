"""Pure ``jax.numpy`` kernels of the JAX backend, and their ``jax.jit`` caches.

The losses are the core's (:mod:`mseplug._losses`), evaluated through
:data:`XP`: ``jax.numpy`` with two functions swapped for ones whose gradients
follow mseplug's conventions. ``abs`` is a :func:`jax.custom_jvp` with
derivative ``sign(r)`` (``jax.grad(jnp.abs)(0.0)`` is 1; mseplug says 0), and
``sqrt`` uses the safe-where pattern so RMSE's gradient at a perfect fit is 0,
not NaN. The reduction is the core's :func:`mseplug._reduce.finalize`.

Every kernel is a pure function of its array arguments; the options are
closed over, one ``jax.jit`` per static configuration (:func:`kernel_options`),
so shapes and dtypes are left to ``jit``'s own cache. Called under an outer
``jit``, ``grad``, ``vmap`` or ``scan`` the kernel is simply traced into it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mseplug import _reduce
from mseplug import _validation as v
from mseplug._options import Options

#: Hashable stand-in for output weights in a kernel's static options (the weights are an argument).
WEIGHTED = ("output weights",)


@jax.custom_jvp
def safe_abs(r: Any) -> Any:
    """``|r|`` whose derivative is ``sign(r)``: 0 at a zero residual, as on every backend.

    Examples
    --------
    >>> import jax
    >>> float(jax.grad(safe_abs)(0.0)), float(jax.grad(jax.numpy.abs)(0.0))
    (0.0, 1.0)
    """
    return jnp.abs(r)


@safe_abs.defjvp
def _safe_abs_jvp(primals: Any, tangents: Any) -> tuple[Any, Any]:
    (r,), (dr,) = primals, tangents
    return jnp.abs(r), jnp.sign(r) * dr


def safe_sqrt(x: Any) -> Any:
    """``sqrt(x)`` with derivative 0 (not inf) at ``x == 0``; NaN still propagates.

    Examples
    --------
    >>> import jax
    >>> float(jax.grad(safe_sqrt)(0.0)), float(jax.grad(safe_sqrt)(4.0))
    (0.0, 0.25)
    """
    zero = x == 0
    root = jnp.where(zero, jnp.zeros_like(x), jnp.sqrt(jnp.where(zero, jnp.ones_like(x), x)))
    # An overflowed sum of squares (x = inf) would get the derivative 0, a finite wrong
    # gradient; ``x * x`` keeps the value inf and makes the gradient inf (docs/conventions.md).
    return jnp.where(jnp.isinf(x), x * x, root)


class _Conventions:
    """``jax.numpy``, with ``abs`` and ``sqrt`` whose gradients follow mseplug's conventions."""

    abs = staticmethod(safe_abs)
    sqrt = staticmethod(safe_sqrt)

    def __getattr__(self, name: str) -> Any:
        return getattr(jnp, name)


XP: Any = _Conventions()


def kernel_options(options: Options) -> Options:
    """The static part of ``options``: hashable, and ``"raise"`` computes as ``"propagate"``."""
    if options.weighted_outputs:
        options = options._replace(multioutput=WEIGHTED)
    if options.nan_policy == "raise":
        options = options._replace(nan_policy="propagate")
    return options


def result_dtype(true_dtype: Any, pred_dtype: Any) -> Any:
    """Floats promote to the wider; integers and bools become JAX's default float."""
    true_float = jnp.issubdtype(true_dtype, jnp.floating)
    pred_float = jnp.issubdtype(pred_dtype, jnp.floating)
    if true_float and pred_float:
        dtype = jnp.promote_types(true_dtype, pred_dtype)
    elif pred_float or true_float:
        dtype = pred_dtype if pred_float else true_dtype
    else:
        dtype = jnp.float64
    return jax.dtypes.canonicalize_dtype(dtype)


def _columns(true: Any, pred: Any, weight: Any) -> tuple[Any, Any, Any, tuple[int, ...], Any]:
    """``(n, K)`` inputs in the accumulation dtype (>= float32), the shape, the result dtype."""
    dtype = result_dtype(true.dtype, pred.dtype)
    acc = jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
    n, k = shape[0], math.prod(shape[1:])
    true = jnp.reshape(true, (n, k)).astype(acc)
    pred = jnp.reshape(pred, (n, k)).astype(acc)
    if weight is not None:
        weight = jnp.reshape(weight, (n,)).astype(acc)
    return true, pred, weight, shape, dtype


def _losses(true: Any, pred: Any, weight: Any, options: Options) -> tuple[Any, Any]:
    """Weighted elementwise losses ``(n, K)`` and the mask of kept elements (``None``: all)."""
    residual = pred - true
    keep = None
    if options.nan_policy == "omit":
        # Safe where, twice: NaN never reaches the loss, so its gradient stays finite.
        keep = jnp.logical_not(jnp.isnan(true) | jnp.isnan(pred))
        residual = jnp.where(keep, residual, 0)
    losses = options.loss.elementwise(XP, residual, options.delta)
    if keep is not None:
        losses = jnp.where(keep, losses, 0)
    if weight is not None:
        losses = losses * weight[:, None]
    return losses, keep


def _statistics(losses: Any, keep: Any, weight: Any) -> tuple[Any, Any]:
    """Per-output ``S = Σ w·e`` and ``W = Σ w`` over the kept elements, each of shape ``(K,)``."""
    total = jnp.sum(losses, axis=0)
    if keep is None:
        count = losses.shape[0] if weight is None else jnp.sum(weight)
        return total, jnp.zeros_like(total) + count
    kept = keep.astype(total.dtype)
    if weight is not None:
        kept = kept * weight[:, None]
    return total, jnp.sum(kept, axis=0)


def value(true: Any, pred: Any, weight: Any, output_weights: Any, options: Options) -> Any:
    """The loss (elementwise for ``reduction="none"``) in the promoted input dtype."""
    t, p, w, shape, dtype = _columns(true, pred, weight)
    losses, keep = _losses(t, p, w, options)
    if options.reduction == "none":
        return jnp.reshape(losses, pred.shape).astype(dtype)
    if keep is None and not options.loss.root and options.uniform:
        total = jnp.sum(losses)  # one flat reduction, as the hand-written jnp expression
        if options.reduction == "mean":
            count = t.shape[0] if w is None else jnp.sum(w)
            total = total / (count * t.shape[1])
        return total.astype(dtype)
    total, count = _statistics(losses, keep, w)
    result = _reduce.finalize(XP, options, total, count, shape[1:], output_weights)
    return result.astype(dtype)


@functools.lru_cache(maxsize=512)
def evaluate_kernel(options: Options) -> Callable[..., Any]:
    """Jitted ``(y_true, y_pred, sample_weight, output_weights) -> loss`` for static options."""

    def kernel(true: Any, pred: Any, weight: Any, output_weights: Any) -> Any:
        return value(true, pred, weight, output_weights, options)

    return jax.jit(kernel)


@functools.lru_cache(maxsize=512)
def value_and_grad_kernel(options: Options) -> Callable[..., Any]:
    """Jitted ``jax.value_and_grad`` of the loss with respect to ``y_pred`` (promoted dtype)."""

    def kernel(true: Any, pred: Any, weight: Any, output_weights: Any) -> Any:
        pred = pred.astype(result_dtype(true.dtype, pred.dtype))
        return jax.value_and_grad(lambda p: value(true, p, weight, output_weights, options))(pred)

    return jax.jit(kernel)


@functools.lru_cache(maxsize=512)
def statistics_kernel(options: Options) -> Callable[..., Any]:
    """Jitted ``(S, W)`` of ``(n, K)`` inputs already in the accumulation dtype."""

    def kernel(true: Any, pred: Any, weight: Any) -> tuple[Any, Any]:
        losses, keep = _losses(true, pred, weight, options)
        return _statistics(losses, keep, weight)

    return jax.jit(kernel)


@jax.jit
def columns(true: Any, pred: Any, weight: Any) -> tuple[Any, Any, Any]:
    """``(n, K)`` inputs and ``(n,)`` weights in the accumulation dtype (for the Accumulator)."""
    return _columns(true, pred, weight)[:3]


@jax.jit
def any_nan(x: Any) -> Any:
    return jnp.any(jnp.isnan(x))


@jax.jit
def weight_summary(weight: Any) -> Any:
    """``[Σw, min w, all finite]`` in one array, so checking weights costs one transfer."""
    w = weight.astype(jnp.result_type(float))
    return jnp.stack([jnp.sum(w), jnp.min(w), jnp.all(jnp.isfinite(w)).astype(w.dtype)])


def numpy_weight_summary(weight: np.ndarray) -> tuple[float, float, bool]:
    w = weight.astype(np.float64, copy=False)
    return float(w.sum()), float(w.min()), bool(np.isfinite(w).all())
