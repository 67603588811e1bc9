"""``Loss``: one loss as data, the single source of truth every integration derives from.

A loss is its elementwise function of the residual ``r = y_pred - y_true``,
written once against any Array API namespace ``xp``, its derivative, its
named parameters, and whether a root is taken after the mean (RMSE). The
engine turns that record into values, gradients, Hessians, streaming
statistics, ``nn.Module`` losses, scorers and a command-line metric.
"""

from __future__ import annotations

import importlib
import keyword
import math
import numbers
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mseplug._options import Options, make_options
from mseplug._typing import Array, Namespace

#: ``elementwise(xp, r, **params)`` and ``derivative(xp, r, **params)``.
Elementwise = Callable[..., Array]

#: Keywords of the loss functions; a parameter may not take one of these names.
RESERVED = frozenset({
    "y_true", "y_pred", "sample_weight", "multioutput", "reduction", "nan_policy", "backend",
    "loss", "replace",
})


@dataclass(frozen=True)
class Param:
    """A loss parameter: its default and the open interval ``(low, high)`` of its values.

    Examples
    --------
    >>> from mseplug import Param
    >>> Param(1.0, low=0.0)
    Param(default=1.0, low=0.0, high=inf, doc='')
    """

    default: float
    low: float = -math.inf
    high: float = math.inf
    doc: str = ""

    def describe(self) -> str:
        """The allowed values in words, for error messages and docs."""
        if self.low == -math.inf and self.high == math.inf:
            return "finite"
        if self.high == math.inf:
            return f"finite and > {self.low:g}"
        if self.low == -math.inf:
            return f"finite and < {self.high:g}"
        return f"in ({self.low:g}, {self.high:g})"


@dataclass(frozen=True, eq=False)
class Loss:
    """One regression loss, defined once for every backend.

    Parameters
    ----------
    name : str
        A Python identifier; the function is ``mseplug.<name>`` once registered.
    elementwise : callable
        ``elementwise(xp, r, **params)``: the loss of each residual
        ``r = y_pred - y_true``, with ``xp`` any Array API namespace.
    derivative : callable, optional
        ``derivative(xp, r, **params)``: ``d elementwise / d r``. NumPy and the
        generic Array API backend use it for analytic gradients; torch and JAX
        use it as the loss's derivative rule, so their gradients (and Hessians,
        by differentiating it) follow it. Without one, values work everywhere,
        torch and JAX differentiate ``elementwise`` themselves, and a NumPy
        gradient is a ``TypeError``.
    params : mapping of str to float or Param
        The loss's parameters and their defaults (a :class:`Param` adds bounds).
        Every value is checked at call time: a real number, finite, in bounds.
    root : bool, default False
        Take the square root of each output's mean before outputs combine (RMSE).
    native : mapping of str to object, optional
        Faster kernels for some backends, by backend name; a value may be a
        ``"module:attribute"`` string, imported on first use. Without one, the
        generic definition runs.
    doc : str, optional
        One sentence for the generated function's docstring.

    Examples
    --------
    >>> import mseplug
    >>> def cubed(xp, r):
    ...     return xp.abs(r) ** 3
    >>> def cubed_derivative(xp, r):
    ...     return 3 * r * xp.abs(r)
    >>> loss = mseplug.Loss("mean_cubed_example", cubed, cubed_derivative)
    >>> loss
    Loss('mean_cubed_example', params={})
    """

    name: str
    elementwise: Elementwise
    derivative: Elementwise | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    root: bool = False
    native: Mapping[str, Any] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(
            self.name
        ):
            raise ValueError(f"Loss name must be a Python identifier; got {self.name!r}")
        if not callable(self.elementwise):
            raise TypeError(f"loss {self.name!r}: elementwise must be callable; got "
                            f"{type(self.elementwise).__name__}")
        if self.derivative is not None and not callable(self.derivative):
            raise TypeError(f"loss {self.name!r}: derivative must be callable or None; got "
                            f"{type(self.derivative).__name__}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"loss {self.name!r}: params must be a mapping of name to default")
        specs = {name: _param_spec(self.name, name, spec) for name, spec in self.params.items()}
        object.__setattr__(self, "params", specs)
        object.__setattr__(self, "native", dict(self.native))
        object.__setattr__(self, "root", bool(self.root))
        object.__setattr__(self, "_kernels", {})

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, params={self.defaults})"

    @property
    def defaults(self) -> dict[str, float]:
        """Each parameter's default value."""
        return {name: spec.default for name, spec in self.params.items()}

    def options(
        self, *, multioutput: Any = "uniform_average", reduction: str = "mean",
        nan_policy: str = "propagate", **params: Any,
    ) -> Options:
        """Check the options and parameter values of many calls once.

        The result goes to :meth:`mseplug.Backend.evaluate` (as ``mseplug.torch``'s
        modules do), so a training loop pays for the checks once.

        Examples
        --------
        >>> import numpy as np, mseplug
        >>> options = mseplug.get_loss("huber").loss.options(delta=0.5, reduction="sum")
        >>> float(mseplug.get_backend(np.zeros(1)).evaluate(options, [0.0], [2.0]))
        0.875
        """
        return make_options(self, multioutput=multioutput, reduction=reduction,
                            nan_policy=nan_policy, params=params)

    def native_kernel(self, backend: str) -> Any:
        """This loss's native kernel for ``backend`` (imported on first use), or ``None``."""
        cache: dict[str, Any] = self._kernels  # type: ignore[attr-defined]
        try:
            return cache[backend]
        except KeyError:
            pass
        kernel = self.native.get(backend)
        if isinstance(kernel, str):
            name, _, attribute = kernel.partition(":")
            # Already imported when its backend runs: no import while torch.compile traces.
            module = sys.modules.get(name) or importlib.import_module(name)
            kernel = getattr(module, attribute)
        cache[backend] = kernel
        return kernel

    def check_params(self, given: Mapping[str, Any]) -> tuple[Any, ...]:
        """The parameter values of one call, in declaration order, checked.

        Unknown names are a ``TypeError``; values must be real numbers (not
        ``bool``, strings or complex), finite and within the parameter's
        bounds. A traced JAX value is accepted as it is: its value cannot be
        read, so only its dtype is checked (as for weights under ``jit``).
        """
        unknown = [name for name in given if name not in self.params]
        if unknown:
            takes = (f"its parameters are {', '.join(self.params)}" if self.params
                     else "it takes no parameters")
            raise TypeError(f"{self.name}() got an unexpected keyword argument {unknown[0]!r}; "
                            f"{takes}")
        return tuple(
            check_param_value(self.name, name, given[name], spec) if name in given
            else spec.default
            for name, spec in self.params.items()
        )

    def evaluate_elementwise(self, xp: Namespace, r: Array, params: tuple[Any, ...]) -> Array:
        """``elementwise(xp, r, **params)`` with the parameter values in declaration order."""
        return self.elementwise(xp, r, **dict(zip(self.params, params)))

    def evaluate_derivative(self, xp: Namespace, r: Array, params: tuple[Any, ...]) -> Array:
        """``derivative(xp, r, **params)``; a ``TypeError`` when the loss has none."""
        if self.derivative is None:
            raise TypeError(
                f"loss {self.name!r} has no derivative, so NumPy and the generic Array API "
                "backend cannot give its gradient; give Loss(..., derivative=...) or use "
                "torch or JAX arrays, whose autodiff differentiates the elementwise function"
            )
        return self.derivative(xp, r, **dict(zip(self.params, params)))


def _param_spec(loss: str, name: Any, spec: Any) -> Param:
    if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
        raise ValueError(
            f"loss {loss!r}: parameter name {name!r} must be an identifier other than "
            f"{sorted(RESERVED)}"
        )
    if not isinstance(spec, Param):
        spec = Param(spec)
    for field_name in ("default", "low", "high"):
        value = getattr(spec, field_name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"loss {loss!r}: parameter {name!r} needs a real {field_name}; got {value!r}"
            )
    default = float(spec.default)
    if not (math.isfinite(default) and spec.low < default < spec.high):
        raise ValueError(
            f"loss {loss!r}: the default of {name!r} must be {spec.describe()}; got {default}"
        )
    return Param(default, float(spec.low), float(spec.high), spec.doc)


def check_param_value(loss: str, name: str, value: Any, spec: Param) -> Any:
    """One parameter value: a finite real number within bounds (a traced JAX value as is)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**1023:
        raise ValueError(f"{loss}'s {name} must be {spec.describe()}; got an integer beyond "
                         f"float64's range ({str(value)[:12]}...)")
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        number = float(value)
    elif _is_traced(value):
        if getattr(value, "shape", None) != () or _dtype_kind(value) not in ("f", "i", "u"):
            raise TypeError(f"{loss}'s {name} must be a real scalar; got a traced value of shape "
                            f"{getattr(value, 'shape', '?')} and dtype {getattr(value, 'dtype', '?')}")
        return value
    elif isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_boolean(value):
        number = float(value)
    elif getattr(value, "shape", None) == () and _dtype_kind(value) in ("f", "i", "u"):
        number = float(value)  # a 0-d array of any library
    else:
        raise TypeError(
            f"{loss}'s {name} must be a real number; got {type(value).__name__} {value!r}"
        )
    if not (math.isfinite(number) and spec.low < number < spec.high):
        raise ValueError(f"{loss}'s {name} must be {spec.describe()}; got {number}")
    return number


def _is_boolean(value: Any) -> bool:
    return _dtype_kind(value) == "b"


def _dtype_kind(value: Any) -> str:
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return ""
    name = str(dtype).rsplit(".", 1)[-1]
    if name == "bool":
        return "b"
    if "float" in name:
        return "f"
    if name.startswith("uint"):
        return "u"
    if name.startswith("int"):
        return "i"
    return "O"


def _is_traced(value: Any) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(value, jax.core.Tracer)
