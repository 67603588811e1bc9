"""``Loss``: one loss as data, the single source of truth every integration derives from.

A loss is its elementwise term of the truth and the prediction, written once
against any Array API namespace ``xp``, the term's derivative with respect to
the prediction, its named parameters and their bounds, the range of inputs it
is defined on, and whether a root is taken after the mean (RMSE). The engine
turns that record into values, gradients, Hessians, streaming statistics,
``nn.Module`` losses, scorers and a command-line metric.

Most losses are functions of the residual ``r = y_pred - y_true`` alone; for
them ``elementwise(xp, r, **params)`` is the shorthand (told from the
function's signature, or said with ``residual=True``), so records written
that way keep working.
"""

from __future__ import annotations

import inspect
import keyword
import math
import numbers
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mseplug._typing import Array, Namespace
from mseplug.loss.statistics import Statistics

#: ``elementwise(xp, y_true, y_pred, **params)`` (or ``(xp, r, **params)`` for a residual loss).
Elementwise = Callable[..., Array]

#: Keywords of the loss functions; a parameter may not take one of these names.
RESERVED = frozenset({
    "y_true", "y_pred", "sample_weight", "multioutput", "reduction", "nan_policy", "backend",
    "loss", "replace",
})


@dataclass(frozen=True)
class Param:
    """A loss parameter: its default and the open interval ``(low, high)`` of its values.

    ``check`` may refuse more (a callable returning an error message for a bad
    value, or ``""``), for a range that is not one interval (Tweedie's power
    is not in ``(0, 1)``).

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
    check: Callable[[float], str] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """The allowed values in words, for error messages and docs."""
        if self.low == -math.inf and self.high == math.inf:
            return "finite"
        if self.high == math.inf:
            return f"finite and > {self.low:g}"
        if self.low == -math.inf:
            return f"finite and < {self.high:g}"
        return f"in ({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Bound:
    """A lower bound on the values of ``y_true`` or ``y_pred``: ``> low`` (or ``>= low``)."""

    low: float
    inclusive: bool = False

    def describe(self) -> str:
        return f"{'>=' if self.inclusive else '>'} {self.low:g}"


#: The inputs' ranges: ``{"y_true": Bound(...), "y_pred": Bound(...)}``, either may be missing.
Domain = Mapping[str, Bound]


@dataclass(frozen=True, eq=False)
class Loss:
    """One regression loss, defined once for every backend.

    Parameters
    ----------
    name : str
        A Python identifier; the function is ``mseplug.<name>`` once registered.
    elementwise : callable or None
        ``elementwise(xp, y_true, y_pred, **params)``: the loss of each element,
        with ``xp`` any Array API namespace. A loss of the residual alone may be
        written ``elementwise(xp, r, **params)`` with ``r = y_pred - y_true``.
    derivative : callable, optional
        ``d elementwise / d y_pred``, with the same arguments. NumPy and the
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
    residual : bool, optional
        Whether ``elementwise`` and ``derivative`` take the residual ``r`` instead
        of ``(y_true, y_pred)``. By default it is told from ``elementwise``'s
        signature: two positional arguments (``xp, r``) besides the parameters.
    domain : mapping or callable, optional
        The inputs' ranges, ``{"y_true": Bound(...), "y_pred": Bound(...)}``, or
        ``domain(**params)`` returning one. Values outside are a ``ValueError``
        naming the argument and the first offending value (as scikit-learn's),
        checked where values can be read (not under tracing, as NaN checks).
    doc : str, optional
        The function's description: a summary line, then paragraphs and an
        ``Examples`` section (the parameters' sections are written for it).
    title : str, optional
        The loss in names made for it (``MSELoss`` in ``mseplug.torch``):
        its name in CamelCase by default (``log_cosh``: ``LogCosh``).
    anchors : mapping of str to str, optional
        The same loss in other libraries, by library: ``"sklearn"`` (the
        ``sklearn.metrics`` function), ``"torch"``, ``"torchmetrics"``,
        ``"keras"``, ``"optax"``. The docs' name tables and the scikit-learn
        scorer names derive from them (``neg_`` and the function for a loss,
        a score's function without ``_score``; ``"sklearn_scorer"`` names the
        scorer where scikit-learn's differs, as ``d2_absolute_error_score``).
    statistics : Statistics, optional
        A metric that is not a weighted mean of one elementwise term (R², the
        maximum error) names its own sufficient statistics and final step
        (:class:`~mseplug.loss.statistics.Statistics`); ``elementwise`` is then
        ``None``. Streaming, merging and collectives combine them generically.
        Only ``reduction="mean"`` applies.
    greater_is_better : bool, default False
        Whether the value is a score (higher is better, as R²) rather than a loss.

    Examples
    --------
    >>> import mseplug
    >>> def cubed(xp, r):
    ...     return xp.abs(r) ** 3
    >>> def cubed_derivative(xp, r):
    ...     return 3 * r * xp.abs(r)
    >>> loss = mseplug.Loss("mean_cubed_example", cubed, cubed_derivative)
    >>> loss, loss.residual
    (Loss('mean_cubed_example', params={}), True)
    >>> def relative(xp, y_true, y_pred):
    ...     return ((y_pred - y_true) / y_true) ** 2
    >>> mseplug.Loss("relative_example", relative, domain={"y_true": mseplug.Bound(0.0)}).residual
    False
    """

    name: str
    elementwise: Elementwise | None
    derivative: Elementwise | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    root: bool = False
    doc: str = ""
    residual: bool | None = None
    domain: Domain | Callable[..., Domain] | None = None
    title: str = ""
    anchors: Mapping[str, str] = field(default_factory=dict)
    statistics: Statistics | None = None
    greater_is_better: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier() or keyword.iskeyword(
            self.name
        ):
            raise ValueError(f"Loss name must be a Python identifier; got {self.name!r}")
        if self.statistics is not None and not isinstance(self.statistics, Statistics):
            raise TypeError(f"loss {self.name!r}: statistics must be a Statistics record or None; "
                            f"got {type(self.statistics).__name__}")
        if self.statistics is not None and (self.elementwise is not None or self.root):
            raise ValueError(f"loss {self.name!r}: a loss with its own statistics has no "
                             "elementwise term and no root (its finalize says everything)")
        object.__setattr__(self, "greater_is_better", bool(self.greater_is_better))
        if self.statistics is None and not callable(self.elementwise):
            raise TypeError(f"loss {self.name!r}: elementwise must be callable; got "
                            f"{type(self.elementwise).__name__}")
        if self.derivative is not None and not callable(self.derivative):
            raise TypeError(f"loss {self.name!r}: derivative must be callable or None; got "
                            f"{type(self.derivative).__name__}")
        if not isinstance(self.params, Mapping):
            raise TypeError(f"loss {self.name!r}: params must be a mapping of name to default")
        specs = {name: _param_spec(self.name, name, spec) for name, spec in self.params.items()}
        object.__setattr__(self, "params", specs)
        object.__setattr__(self, "root", bool(self.root))
        object.__setattr__(self, "anchors", dict(self.anchors))
        if not self.title:
            object.__setattr__(self, "title", "".join(part.title() for part in self.name.split("_")))
        elif not self.title.isidentifier():
            raise ValueError(f"loss {self.name!r}: title must be an identifier; got {self.title!r}")
        if self.residual is None and self.elementwise is None:
            object.__setattr__(self, "residual", False)
        if self.residual is None and self.elementwise is not None:
            object.__setattr__(self, "residual", _takes_residual(self.name, self.elementwise, specs))
        if self.domain is not None and not (callable(self.domain) or isinstance(self.domain, Mapping)):
            raise TypeError(f"loss {self.name!r}: domain must be a mapping of argument to Bound, "
                            f"or a callable of the parameters returning one")
        if isinstance(self.domain, Mapping):
            _check_domain(self.name, self.domain)

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, params={self.defaults})"

    @property
    def defaults(self) -> dict[str, float]:
        """Each parameter's default value."""
        return {name: spec.default for name, spec in self.params.items()}

    def fields(self) -> dict[str, Any]:
        """The record's fields: ``Loss(**loss.fields())`` is an equal record (pickling by value)."""
        return {"name": self.name, "elementwise": self.elementwise, "derivative": self.derivative,
                "params": dict(self.params), "root": self.root, "doc": self.doc,
                "residual": self.residual, "domain": self.domain, "title": self.title,
                "anchors": dict(self.anchors), "statistics": self.statistics,
                "greater_is_better": self.greater_is_better}

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

    def bounds(self, params: tuple[Any, ...]) -> Domain:
        """The inputs' ranges for these parameter values (empty: any real number).

        A domain set by a parameter traced under JAX's ``jit`` cannot be known: empty then,
        as values are not checked under tracing either."""
        if self.domain is None:
            return {}
        if isinstance(self.domain, Mapping):
            return self.domain
        if any(_is_traced(value) for value in params):
            return {}
        domain = self.domain(**dict(zip(self.params, params)))
        _check_domain(self.name, domain)
        return domain

    # -- evaluation: the one place a residual is formed from the pair --------------------------
    def pointwise(self, xp: Namespace, y_true: Array, y_pred: Array, params: tuple[Any, ...]
                  ) -> Array:
        """The loss of each element, ``elementwise`` with the parameter values in order."""
        keywords = dict(zip(self.params, params))
        elementwise = self._term()
        if self.residual:
            return elementwise(xp, y_pred - y_true, **keywords)
        return elementwise(xp, y_true, y_pred, **keywords)

    def _term(self) -> Elementwise:
        if self.elementwise is None:
            raise TypeError(f"{self.name} is computed from its own statistics, not as the mean "
                            "of an elementwise term: reduction='none' has no meaning for it")
        return self.elementwise

    def slope(self, xp: Namespace, y_true: Array, y_pred: Array, params: tuple[Any, ...]) -> Array:
        """``d pointwise / d y_pred``; a ``TypeError`` when the loss has no derivative."""
        if self.derivative is None:
            raise TypeError(
                f"loss {self.name!r} has no derivative, so NumPy and the generic Array API "
                "backend cannot give its gradient; give Loss(..., derivative=...) or use "
                "torch or JAX arrays, whose autodiff differentiates the elementwise function"
            )
        keywords = dict(zip(self.params, params))
        if self.residual:
            return self.derivative(xp, y_pred - y_true, **keywords)
        return self.derivative(xp, y_true, y_pred, **keywords)

    def of_residual(self, xp: Namespace, r: Array, params: tuple[Any, ...]) -> Array:
        """``elementwise(xp, r, ...)`` of a residual loss (kernels that form ``r`` themselves)."""
        return self._term()(xp, r, **dict(zip(self.params, params)))

    def slope_of_residual(self, xp: Namespace, r: Array, params: tuple[Any, ...]) -> Array:
        """``derivative(xp, r, ...)`` of a residual loss, ``d / d r``."""
        if self.derivative is None:
            return self.slope(xp, r, r, params)  # the TypeError above
        return self.derivative(xp, r, **dict(zip(self.params, params)))


def _takes_residual(loss: str, function: Callable[..., Any], params: Mapping[str, Param]) -> bool:
    """Whether ``function`` is ``f(xp, r, **params)`` (two positional arguments besides the
    parameters) rather than ``f(xp, y_true, y_pred, **params)`` (three)."""
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise TypeError(f"loss {loss!r}: the signature of elementwise cannot be read; say "
                        "Loss(..., residual=True) for f(xp, r) or residual=False for "
                        "f(xp, y_true, y_pred)") from None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in signature.parameters.values()
                  if p.kind in kinds and p.name not in params]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
        raise TypeError(f"loss {loss!r}: elementwise takes *args, so its form is unclear; say "
                        "Loss(..., residual=True) or residual=False")
    if len(positional) == 2:
        return True
    if len(positional) == 3:
        return False
    raise TypeError(f"loss {loss!r}: elementwise must be f(xp, r, **params) or "
                    f"f(xp, y_true, y_pred, **params); it takes {len(positional)} positional "
                    f"arguments besides the parameters ({[p.name for p in positional]})")


def _check_domain(loss: str, domain: Any) -> None:
    if not isinstance(domain, Mapping) or not all(
            key in ("y_true", "y_pred") and isinstance(bound, Bound) for key, bound in domain.items()):
        raise TypeError(f"loss {loss!r}: a domain maps 'y_true' and 'y_pred' to Bound(low, "
                        f"inclusive=...); got {domain!r}")


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
    if spec.check is not None and spec.check(default):
        raise ValueError(f"loss {loss!r}: the default of {name!r}: {spec.check(default)}")
    return Param(default, float(spec.low), float(spec.high), spec.doc, spec.check)


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
    if spec.check is not None:
        problem = spec.check(number)
        if problem:
            raise ValueError(f"{loss}'s {name}: {problem}; got {number}")
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
