"""``Statistics``: a metric that is not a weighted mean of one elementwise term, as data.

Most losses are, per output, ``Σ w·e / Σ w``: the engine's default statistics
``(S, W)``. Others need more: R² divides the squared error by the spread of
the target around its (weighted) mean, the maximum error keeps a maximum. A
:class:`~mseplug.Loss` says so with ``statistics=Statistics(...)``: the
named per-output statistics it needs, each one of

- :class:`Sum`: ``Σᵢ wᵢ·f(yᵢ, ŷᵢ)``, linear in the weights;
- :class:`Centred`: the first two moments of ``q(yᵢ, ŷᵢ)`` around a per-output
  shift ``c`` (the value of the call's or part's first row): ``Σ w(q - c)`` and
  ``Σ w(q - c)²``, so that a spread is computed without the cancellation of
  ``Σ w q² - (Σ w q)²/Σ w`` (float32 targets of mean 10⁶ keep their digits);
- :class:`Maximum`: ``maxᵢ f(yᵢ, ŷᵢ)``, unweighted;

and ``finalize(xp, stats)``, the per-output value from them. Every record
has the statistic ``"weight"``, ``W = Σ w``. The layout (:func:`layout`)
says how each named array combines over parts: ``"sum"`` (after the parts'
:class:`Centred` moments are brought to one shift: exact, ``A' = A + W(c - c')``
and ``B' = B + 2(c - c')A + W(c - c')²``), ``"max"``, or ``"shift"``. Linear
statistics share the engine's weight scale ``2**exponent``: the value is a
ratio of them, so it needs no unscaling.

Examples
--------
>>> from mseplug.loss.statistics import Centred, Statistics, layout, spread
>>> def target_spread(xp, stats):
...     return spread(xp, stats, "target")
>>> spec = Statistics((Centred("target", lambda xp, t, p: t),), target_spread)
>>> layout(spec)
(('weight', 'sum'), ('target.shift', 'shift'), ('target.sum', 'sum'), ('target.squares', 'sum'))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from mseplug._typing import Array, Namespace

#: ``term(xp, y_true, y_pred)``: one value per element, ``(n, K)``.
Term = Callable[[Namespace, Array, Array], Array]
#: How a named statistic combines over parts.
Combine = Literal["sum", "max", "shift"]


@dataclass(frozen=True)
class Sum:
    """``Σᵢ wᵢ·term(yᵢ, ŷᵢ)`` per output: linear in the weights, parts add."""

    name: str
    term: Term


@dataclass(frozen=True)
class Centred:
    """The moments of ``term(yᵢ, ŷᵢ)`` around a per-output shift ``c``.

    Named ``<name>.shift`` (``c``), ``<name>.sum`` (``Σ w(q - c)``) and
    ``<name>.squares`` (``Σ w(q - c)²``). The weighted sum of squares about
    the weighted mean is ``squares - sum²/W`` (:func:`spread`).
    """

    name: str
    term: Term


@dataclass(frozen=True)
class Maximum:
    """``maxᵢ term(yᵢ, ŷᵢ)`` per output (``-inf`` for no sample); parts take the maximum.
    Sample weights do not enter it."""

    name: str
    term: Term


Part: TypeAlias = "Sum | Centred | Maximum"
#: ``finalize(xp, stats)``: the per-output value, shape ``(K,)``, from the named statistics.
Finalize = Callable[[Namespace, Mapping[str, Array]], Array]
#: ``gradient(xp, stats, y_true, y_pred, weight)``: ``d value[k] / d y_pred[i, k]``, ``(n, K)``.
Gradient = Callable[[Namespace, Mapping[str, Array], Array, Array, "Array | None"], Array]


@dataclass(frozen=True)
class Statistics:
    """The sufficient statistics of a metric and its final step (see the module docstring).

    Parameters
    ----------
    parts : tuple of Sum, Centred or Maximum
        The named statistics besides ``"weight"`` (``Σ w``, always kept).
    finalize : callable
        ``finalize(xp, stats)``: the value of each output, ``(K,)``, from the
        statistics (a mapping of name to ``(K,)`` float arrays). Written with
        differentiable operations, torch and JAX differentiate through it.
    gradient : callable, optional
        ``gradient(xp, stats, y_true, y_pred, weight)``: the analytic
        ``d value[k] / d y_pred[i, k]`` (``(n, K)`` columns, ``weight`` of
        shape ``(n,)`` or ``None``) for NumPy and the Array API backend.
        ``stats`` are those of all the data (every chunk of a Dask array), and
        hold ``<name>.ties`` for each :class:`Maximum` part besides: how many
        elements of all the data attain its maximum (to share a subgradient).
    output_weights : callable, optional
        ``output_weights(xp, stats)``: the outputs' weights for
        ``multioutput="variance_weighted"`` (accepted only when given).
    sample_weight : bool, default True
        Whether ``sample_weight`` is accepted.
    multioutput : bool, default True
        Whether more than one output is accepted.

    Notes
    -----
    torch and JAX differentiate the value itself (statistics, then ``finalize``),
    never ``gradient``: their gradients and Hessians are those of the metric,
    rank-one parts included (explained variance's mean residual).
    """

    parts: tuple[Part, ...]
    finalize: Finalize
    gradient: Gradient | None = None
    output_weights: Callable[[Namespace, Mapping[str, Array]], Array] | None = None
    sample_weight: bool = True
    multioutput: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts))
        names = [part.name for part in self.parts]
        if not all(isinstance(part, (Sum, Centred, Maximum)) for part in self.parts):
            raise TypeError("Statistics parts are Sum, Centred or Maximum records")
        if len(set(names)) != len(names) or "weight" in names:
            raise ValueError(f"Statistics parts need distinct names other than 'weight'; got {names}")
        if not callable(self.finalize):
            raise TypeError("Statistics needs finalize(xp, stats), a callable")


def layout(spec: Statistics) -> tuple[tuple[str, Combine], ...]:
    """Every named statistic, in a fixed order, with how it combines over parts."""
    keys: list[tuple[str, Combine]] = [("weight", "sum")]
    for part in spec.parts:
        if isinstance(part, Centred):
            keys += [(f"{part.name}.shift", "shift"), (f"{part.name}.sum", "sum"),
                     (f"{part.name}.squares", "sum")]
        else:
            keys.append((part.name, "max" if isinstance(part, Maximum) else "sum"))
    return tuple(keys)


def _safe_weight(xp: Namespace, weight: Array) -> Array:
    return xp.where(weight > 0, weight, xp.ones_like(weight))


def spread(xp: Namespace, stats: Mapping[str, Array], name: str) -> Array:
    """``Σ w(q - q̄)²`` of a :class:`Centred` statistic: ``B - A²/W``, never below 0 (0 where
    ``W = 0``)."""
    first, second = stats[f"{name}.sum"], stats[f"{name}.squares"]
    value = second - first * (first / _safe_weight(xp, stats["weight"]))
    return xp.where(value < 0, xp.zeros_like(value), value)  # NaN stays NaN


def centre(xp: Namespace, stats: Mapping[str, Array], name: str) -> Array:
    """The weighted mean ``q̄ = c + A/W`` of a :class:`Centred` statistic (``c`` where ``W = 0``)."""
    return stats[f"{name}.shift"] + stats[f"{name}.sum"] / _safe_weight(xp, stats["weight"])
