"""The JAX backend: the engine's kernels compiled once, on concrete arrays and tracers alike.

Every call runs one ``jax.jit``-compiled engine kernel, cached per static
configuration (loss, reduction, NaN policy, multioutput mode; ``jit`` itself
keys on shapes and dtypes, and parameter values are ordinary arguments), so
an eager call pays one dispatch, not one per operation. Inside ``jax.jit``,
``grad``, ``vmap`` or ``lax.scan`` the same kernel is traced into the
caller's computation: nothing branches on traced values and nothing forces a
device sync.

Checks on *shapes and dtypes* always run (they are static). Checks on
*values* (``nan_policy="raise"``, sample weights finite, non-negative with a
positive sum, parameters in range) need the numbers, so they run on each
input that is concrete and are skipped for traced inputs.

Gradients (``mseplug.grad`` / ``value_and_grad``, and ``jax.grad`` of any
loss) follow the loss's derivative: MAE's subgradient at a zero residual is
0, RMSE's gradient at a perfect fit is 0, ``nan_policy="omit"`` gives finite
gradients (0 at dropped elements), and Hessians differentiate the derivative.

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
>>> float(jax.hessian(lambda p: mseplug.huber(jnp.zeros(1), p))(jnp.zeros(1))[0, 0])
1.0
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.core import Tracer

from mseplug._typing import Array, DType, Namespace
from mseplug.backend.jax import kernels
from mseplug.engine import overflow as _overflow
from mseplug.engine.backend import Backend
from mseplug.engine.checks import Checked
from mseplug.engine.kernels import loss_value
from mseplug.loss.options import Options
from mseplug.loss.record import Bound, Loss


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

    # -- conversion --------------------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        if not _concrete(x):
            raise TypeError(
                "it is a traced JAX array (inside jax.jit, grad, vmap or scan) and has no NumPy "
                "value; pass y_pred as a JAX array too, so JAX computes the loss"
            )
        return np.asarray(x)

    def from_foreign(self, x: np.ndarray, like: Any) -> Any:
        array = jnp.asarray(x)
        if isinstance(like, jax.Array) and _concrete(like):
            devices = like.devices()
            if len(devices) == 1 and devices != array.devices():
                array = jax.device_put(array, next(iter(devices)))
        return array

    def convert(self, x: Any, name: str, like: Any = None) -> Any:
        if isinstance(x, (jax.Array, np.ndarray)):  # jit takes NumPy arrays as they are
            return x
        return super().convert(x, name, like)

    def asarray_like(self, xp: Namespace, values: Any, like: Array) -> Array:
        return jnp.asarray(values, dtype=like.dtype)

    # -- dtypes ------------------------------------------------------------------------------
    def kind(self, xp: Namespace, dtype: DType) -> str:
        return _kind(dtype)

    def default_float(self, xp: Namespace) -> DType:
        return jax.dtypes.canonicalize_dtype(jnp.float64)

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        return jax.dtypes.canonicalize_dtype(super().result_dtype(xp, true_dtype, pred_dtype))

    def sum_dtype(self, xp: Namespace, dtype: DType) -> DType:
        return dtype  # float64 only exists with jax_enable_x64; XLA's sums are tree-shaped

    def widest_float(self, xp: Namespace) -> DType:
        return jax.dtypes.canonicalize_dtype(jnp.float64)  # float32 without jax_enable_x64

    # -- value checks (concrete inputs only) ----------------------------------------------------
    def readable(self, x: Array) -> bool:
        return _concrete(x)

    def any_nan(self, xp: Namespace, x: Array) -> bool:
        if isinstance(x, np.ndarray):
            return bool(np.isnan(x).any())
        with jax.ensure_compile_time_eval():  # a concrete constant inside an outer trace
            return bool(kernels.any_nan(x))

    def first_outside(self, xp: Namespace, array: Array, bound: Bound) -> tuple[int, float] | None:
        with jax.ensure_compile_time_eval():  # a concrete constant inside an outer trace
            return super().first_outside(xp, array, bound)

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        if isinstance(weight, np.ndarray):
            return kernels.numpy_weight_summary(weight)
        with jax.ensure_compile_time_eval():
            summary = kernels.weight_summary(weight)
        total, minimum, finite = np.asarray(summary).tolist()
        return total, minimum, bool(finite)

    # -- kernels --------------------------------------------------------------------------------
    def elementwise(self, xp: Namespace, loss: Loss, y_true: Array, y_pred: Array,
                    params: tuple[Any, ...]) -> Array:
        return kernels.differentiable_elementwise(loss, y_true, y_pred, params)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        return kernels.safe_sqrt(x)

    def run(self, kernel: Any, options: Options, *arrays: Any) -> Any:
        return kernels.compiled(kernel, self, options.static())(*arrays)

    def fast_value(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The common call, without the general checks (none applies): two float arrays of one
        shape and dtype, no weights, no output weights, NaN propagated; the engine's compiled
        kernel on the same arrays."""
        if (
            sample_weight is None
            and options.loss.domain is None
            and isinstance(y_pred, jax.Array)
            and isinstance(y_true, jax.Array)
            and options.nan_policy == "propagate"
            and isinstance(options.multioutput, str)
            and y_pred.ndim
            and y_true.shape == y_pred.shape
            and y_true.dtype == y_pred.dtype
            and _kind(y_pred.dtype) == "f"
            and y_pred.size
        ):
            kernel = kernels.compiled(loss_value, self, options.static())
            value = kernel(y_true, y_pred, None, None, options.params)
            return self._overflow_checked(value, y_true, y_pred)
        return None

    def finish(self, value: Array, checked: Checked) -> Array:
        return self._overflow_checked(value, checked.y_true, checked.y_pred)

    @staticmethod
    def _overflow_checked(value: Array, y_true: Array, y_pred: Array) -> Array:
        """``value``, after a warning if it is inf although every input is finite.

        Eager only: under ``jit`` the value is a tracer and cannot be read.
        """
        if _concrete(value) and np.isinf(np.asarray(value)).any():
            if not (bool(jnp.isinf(y_true).any()) or bool(jnp.isinf(y_pred).any())):
                _overflow.warn(value.dtype)
        return value

    def differentiate(self, options: Options, checked: Checked) -> tuple[Any, Any]:
        """``jax.value_and_grad`` of the compiled value kernel, with respect to ``y_pred``."""
        c = checked
        kernel = kernels.compiled_value_and_grad(loss_value, self, options.static())
        return kernel(c.y_true, c.y_pred, c.sample_weight, c.output_weights, options.params)
