"""The JAX backend: jitted kernels that work on concrete arrays and on tracers alike.

Every call runs one ``jax.jit``-compiled kernel, cached per static
configuration (loss, delta, reduction, NaN policy, multioutput mode; ``jit``
itself keys on shapes and dtypes), so an eager call pays one dispatch, not one
per operation. Inside ``jax.jit``, ``grad``, ``vmap`` or ``lax.scan`` the same
kernel is traced into the caller's computation: options are static, nothing
branches on traced values and nothing forces a device sync.

Checks on *shapes and dtypes* always run (they are static). Checks on
*values* (``nan_policy="raise"``, and sample weights being finite,
non-negative with a positive sum) need the numbers, so they run on each input
that is concrete (a NumPy array or a ``jax.Array`` that is not a tracer) and
are skipped for traced inputs, where they would need a device sync.

Gradients (``mseplug.grad`` / ``value_and_grad``) are ``jax.value_and_grad``
of the same kernel, with mseplug's conventions: MAE's subgradient at a zero
residual is 0 (a ``jax.custom_jvp``), RMSE's gradient at a perfect fit is 0,
and ``nan_policy="omit"`` gives finite gradients (0 at dropped elements).

Examples
--------
>>> import jax, jax.numpy as jnp, mseplug
>>> y = jnp.array([1.0, 2.0, 3.0], dtype=jnp.float32)
>>> mseplug.mse(y, jnp.array([1.0, 2.0, 6.0], dtype=jnp.float32))
Array(3., dtype=float32)
>>> jax.grad(lambda p: mseplug.mae(y, p))(y).tolist()  # zero residuals: subgradient 0
[0.0, 0.0, 0.0]
>>> jax.jit(jax.vmap(lambda p: mseplug.rmse(y, p)))(jnp.stack([y, y + 1])).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from mseplug import _overflow
from mseplug import _validation as v
from mseplug._backend import Backend, Prepared
from mseplug._backends import jax_kernels as kernels
from mseplug._options import Options


class _Call(NamedTuple):
    """The checked operands of one call (``jax.Array``, tracer or NumPy array each)."""

    y_true: Any
    y_pred: Any
    sample_weight: Any
    output_weights: Any
    shape: tuple[int, ...]  # the common (n, *outputs) shape


@functools.lru_cache(maxsize=64)
def _kind(dtype: Any) -> str:
    """NumPy-style kind letter of a dtype, with bfloat16 (kind 'V' in NumPy) as 'f'."""
    for kind, group in (("b", jnp.bool_), ("f", jnp.floating), ("i", jnp.signedinteger),
                        ("u", jnp.unsignedinteger), ("c", jnp.complexfloating)):
        if jnp.issubdtype(dtype, group):
            return kind
    try:
        return str(np.dtype(dtype).kind)
    except TypeError:  # JAX's extended dtypes (PRNG keys, ...)
        return "O"


def _concrete(x: Any) -> bool:
    return not isinstance(x, Tracer)


class JaxBackend(Backend):
    """``jax.Array`` and every JAX tracer (``isinstance(tracer, jax.Array)`` holds for all).

    Examples
    --------
    >>> import jax, jax.numpy as jnp, mseplug
    >>> mseplug.get_backend(jnp.zeros(2), jnp.ones(2)).name
    'jax'
    >>> seen = []  # inside jit the inputs are tracers, still detected
    >>> _ = jax.jit(lambda p: seen.append(mseplug.get_backend(p, p).name) or p)(jnp.ones(2))
    >>> seen
    ['jax']
    """

    name = "jax"
    library = "jax"

    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        return (jax.Array,)

    def namespace(self, x: Any) -> Any:
        return jnp

    def to_numpy(self, x: Any) -> np.ndarray:
        if not _concrete(x):
            raise TypeError(
                "it is a traced JAX array (inside jax.jit, grad, vmap or scan) and has no NumPy "
                "value; pass y_pred as a JAX array too, so JAX computes the loss"
            )
        return np.asarray(x)

    def from_foreign(self, x: Any, like: Any) -> Any:
        array = jnp.asarray(x)
        if isinstance(like, jax.Array) and _concrete(like):
            devices = like.devices()
            if len(devices) == 1 and devices != array.devices():
                array = jax.device_put(array, next(iter(devices)))
        return array

    # -- checks --------------------------------------------------------------
    def _operand(self, x: Any, name: str, like: Any) -> Any:
        """``x`` as a ``jax.Array``/tracer or NumPy array (``jit`` takes both), kind-checked."""
        if not isinstance(x, (jax.Array, np.ndarray)):
            x = self.convert(x, name, like)
        v.check_kind(name, _kind(x.dtype), x.dtype)
        return x

    def _check_nan(self, name: str, x: Any) -> None:
        if _kind(x.dtype) != "f" or not _concrete(x):
            return
        if isinstance(x, np.ndarray):
            found = bool(np.isnan(x).any())
        else:
            with jax.ensure_compile_time_eval():  # a concrete constant inside an outer trace
                found = bool(kernels.any_nan(x))
        if found:
            raise v.nan_error(name)

    def _check_weight(self, weight: Any) -> None:
        if isinstance(weight, np.ndarray):
            v.check_weight_values(*kernels.numpy_weight_summary(weight))
        elif _concrete(weight):
            with jax.ensure_compile_time_eval():
                summary = kernels.weight_summary(weight)
            total, minimum, finite = np.asarray(summary).tolist()
            v.check_weight_values(total, minimum, bool(finite))

    def _output_weights(self, weights: Any, output_shape: tuple[int, ...]) -> Any:
        if _concrete(weights):
            return v.check_output_weights(weights, output_shape)
        v.check_output_weights(np.ones(weights.shape), output_shape)  # traced: shape only
        return jnp.reshape(weights, (-1,))

    def _inputs(self, y_true: Any, y_pred: Any, sample_weight: Any, options: Options) -> _Call:
        """Convert and check one call's inputs; values only where they are concrete."""
        pred = self._operand(y_pred, "y_pred", None)
        true = self._operand(y_true, "y_true", pred)
        shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
        if options.nan_policy == "raise":
            self._check_nan("y_true", true)
            self._check_nan("y_pred", pred)
        weight = None
        if sample_weight is not None:
            weight = self._operand(sample_weight, "sample_weight", pred)
            v.check_weight_shape(tuple(weight.shape), shape[0])
            self._check_weight(weight)
        output_weights = None
        if options.weighted_outputs:
            output_weights = self._output_weights(options.multioutput, shape[1:])
        return _Call(true, pred, weight, output_weights, shape)

    # -- the engine ------------------------------------------------------------
    def evaluate(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        call = self._inputs(y_true, y_pred, sample_weight, options)
        kernel = kernels.evaluate_kernel(kernels.kernel_options(options))
        value = kernel(call.y_true, call.y_pred, call.sample_weight, call.output_weights)
        if value.ndim == 0 and not isinstance(value, Tracer) and np.isinf(np.asarray(value)):
            # Eager only (under jit the value is a tracer): inf from finite inputs is an overflow.
            if bool(jnp.isfinite(call.y_true).all()) and bool(jnp.isfinite(call.y_pred).all()):
                _overflow.warn(value.dtype)
        return value

    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
    ) -> tuple[Any, Any]:
        call = self._inputs(y_true, y_pred, sample_weight, options)
        if options.raw and call.shape[1:] != ():
            raise v.nonscalar_error(call.shape[1:])
        kernel = kernels.value_and_grad_kernel(kernels.kernel_options(options))
        value, grad = kernel(call.y_true, call.y_pred, call.sample_weight, call.output_weights)
        return value, grad

    def prepare(self, y_true: Any, y_pred: Any, sample_weight: Any, options: Options) -> Prepared:
        """Checked ``(n, K)`` inputs for :meth:`statistics` (the Accumulator's path)."""
        call = self._inputs(y_true, y_pred, sample_weight, options)
        true, pred = jnp.asarray(call.y_true), jnp.asarray(call.y_pred)
        weight = None if call.sample_weight is None else jnp.asarray(call.sample_weight)
        dtype = kernels.result_dtype(true.dtype, pred.dtype)
        true_2d, pred_2d, weight = kernels.columns(true, pred, weight)
        return Prepared(jnp, true_2d, pred_2d, weight, tuple(pred.shape), call.shape[1:], dtype,
                        call.output_weights)

    def statistics(self, data: Prepared, options: Options) -> tuple[Any, Any]:
        kernel = kernels.statistics_kernel(kernels.kernel_options(options))
        return kernel(data.y_true, data.y_pred, data.sample_weight)
