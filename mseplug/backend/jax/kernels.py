"""JAX pieces of the JAX backend: the loss's derivative rule, a safe root, compiled kernels.

A loss's elementwise function runs as a :func:`jax.custom_jvp` whose rule is
the loss's derivative (:func:`differentiable_elementwise`), so ``jax.grad``
follows mseplug's conventions (``jax.grad(jnp.abs)(0.0)`` is 1; mseplug's
MAE says 0) and ``jax.hessian`` differentiates the derivative (Huber's
second derivative at 0 is 1, as optax and torch say). Parameters are
ordinary arguments, so a traced ``delta`` works and is differentiated too.

The engine's pure kernels are compiled once per static configuration
(:func:`compiled`); ``jit`` itself keys on shapes and dtypes. Called under an
outer ``jit``, ``grad``, ``vmap`` or ``scan``, a kernel is traced into it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mseplug.loss.options import Options
from mseplug.loss.record import Loss


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


def _symbolic_zero(tangent: Any) -> bool:
    return isinstance(tangent, jax.custom_derivatives.SymbolicZero)


@functools.cache
def _rule(loss: Loss) -> Callable[..., Any]:
    """``f(y_true, y_pred, *params)``: the loss's elementwise function with its derivative as
    the JVP rule for ``y_pred``; ``y_true``'s and the parameters' tangents by plain autodiff
    (for a loss of the residual, ``y_true``'s is minus ``y_pred``'s)."""

    def elementwise(t: Any, p: Any, *params: Any) -> Any:
        return loss.pointwise(jnp, t, p, params)

    function = jax.custom_jvp(elementwise)

    def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        t, p, *params = primals
        t_tangent, p_tangent, *param_tangents = tangents
        value = function(t, p, *params)
        slope = None
        tangent = jnp.zeros_like(value)
        if not _symbolic_zero(p_tangent):
            slope = loss.slope(jnp, t, p, tuple(params))
            tangent = tangent + slope * p_tangent
        if not _symbolic_zero(t_tangent):
            if loss.residual:
                slope = loss.slope(jnp, t, p, tuple(params)) if slope is None else slope
                tangent = tangent - slope * t_tangent
            else:
                tangent = tangent + jax.jvp(lambda x: elementwise(x, p, *params), (t,),
                                            (t_tangent,))[1]
        moving = [i for i, d in enumerate(param_tangents) if not _symbolic_zero(d)]
        if moving:  # a differentiated parameter: its partial derivative by plain autodiff
            def of_params(*moved: Any) -> Any:
                values = list(params)
                for i, value_i in zip(moving, moved):
                    values[i] = value_i
                return elementwise(t, p, *values)

            tangent = tangent + jax.jvp(
                of_params, tuple(params[i] for i in moving),
                tuple(param_tangents[i] for i in moving),
            )[1]
        return value, tangent

    function.defjvp(jvp, symbolic_zeros=True)
    return function


def differentiable_elementwise(loss: Loss, y_true: Any, y_pred: Any, params: tuple[Any, ...]
                               ) -> Any:
    """The loss of each element, differentiated by the loss's own derivative."""
    if loss.derivative is None:
        return loss.pointwise(jnp, y_true, y_pred, params)
    return _rule(loss)(y_true, y_pred, *params)


@functools.lru_cache(maxsize=1024)
def compiled(kernel: Callable[..., Any], backend: Any, options: Options) -> Callable[..., Any]:
    """``jax.jit`` of one engine kernel for static ``options`` (see ``Options.static``)."""

    def run(*arrays: Any) -> Any:
        return kernel(backend, options, *arrays)

    return jax.jit(run)


@functools.lru_cache(maxsize=1024)
def compiled_value_and_grad(kernel: Callable[..., Any], backend: Any, options: Options
                            ) -> Callable[..., Any]:
    """``jax.jit`` of ``jax.value_and_grad`` of a value kernel with respect to ``y_pred``."""

    def run(true: Any, pred: Any, weight: Any, output_weights: Any, params: Any) -> Any:
        xp = jnp
        pred = pred.astype(backend.result_dtype(xp, true.dtype, pred.dtype))
        return jax.value_and_grad(
            lambda p: kernel(backend, options, true, p, weight, output_weights, params)
        )(pred)

    return jax.jit(run)


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
    with np.errstate(over="ignore"):  # a sum beyond float64 is inf: the engine rescales
        return float(w.sum()), float(w.min()), bool(np.isfinite(w).all())
