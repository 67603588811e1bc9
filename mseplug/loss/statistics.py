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
- :class:`Quantile`: the weighted quantile ``q`` of ``f(yᵢ, ŷᵢ)`` (the median
  by default) and, unless the record says its ``finalize`` does not read it
  (``deviation=False``), the weighted pinball deviation ``Σ w·ρ(f - q)`` about it.
  No statistic of parts gives a quantile of the whole exactly, so a record
  with one is *not decomposable*: it is computed in one call over all the
  samples at once, and streaming, sufficient statistics and collectives
  refuse it (:func:`decomposable`);

and ``finalize(xp, stats)``, the per-output value from them. Every record
has the statistic ``"weight"``, ``W = Σ w``. The layout (:func:`layout`)
says how each named array combines over parts: ``"sum"`` (after the parts'
:class:`Centred` moments are brought to one shift: exact, ``A' = A + W(c - c')``
and ``B' = B + 2(c - c')A + W(c - c')²``), ``"max"``, ``"shift"``, or
``"none"`` (a :class:`Quantile`'s: parts do not combine). Linear
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
>>> median = Statistics((Quantile("target", lambda xp, t, p: t),), lambda xp, stats: stats["target"])
>>> layout(median), decomposable(median)
((('weight', 'sum'), ('target', 'none'), ('target.deviation', 'none')), False)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, TypeAlias

from mseplug._typing import Array, Namespace

#: ``term(xp, y_true, y_pred)``: one value per element, ``(n, K)``.
Term = Callable[[Namespace, Array, Array], Array]
#: How a named statistic combines over parts (``"none"``: it does not; one call only).
Combine = Literal["sum", "max", "shift", "none"]


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


@dataclass(frozen=True)
class Quantile:
    """The weighted ``level``-quantile ``q`` of ``term(yᵢ, ŷᵢ)`` per output, over all samples.

    Named ``<name>`` (``q``) and ``<name>.deviation`` (``Σ wᵢ·ρ(termᵢ - q)``,
    ``ρ(u) = max(level·u, (level - 1)·u)`` the pinball loss ``q`` minimises:
    ``½ Σ w|term - q|`` for the median). ``q`` is scikit-learn's
    ``_weighted_percentile(..., average=True)`` (NumPy's
    ``"averaged_inverted_cdf"``): with the values sorted and ``C`` the running
    sum of their weights, the first value whose ``C`` reaches ``level·W``, or the
    mean of it and the next value of positive weight where ``C`` meets
    ``level·W`` exactly (within float64's epsilon, as scikit-learn). Unit
    weights give ``numpy.median`` at ``level=0.5``. Elements of weight 0 do not
    count. A NaN term makes its output NaN.

    Not decomposable: its layout entries combine by ``"none"``.

    Parameters
    ----------
    name : str
        The statistic's name (``<name>.deviation`` for the deviation).
    term : callable
        ``term(xp, y_true, y_pred)``: one value per element, ``(n, K)``.
    level : float, default 0.5
        The quantile's level, in ``[0, 1]``.
    deviation : bool, default True
        Whether ``<name>.deviation`` is a statistic of the record. A record whose
        ``finalize`` never reads it (the median absolute error's) says ``False``:
        it is then neither computed (a pass over every element fewer) nor in the
        layout (:func:`layout`), on every backend. Keyword-only.

    Examples
    --------
    >>> median = Statistics((Quantile("q", lambda xp, t, p: t, deviation=False),),
    ...                     lambda xp, stats: stats["q"])
    >>> layout(median)
    (('weight', 'sum'), ('q', 'none'))
    """

    name: str
    term: Term
    level: float = 0.5
    deviation: bool = field(default=True, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.level, bool) or not 0.0 <= float(self.level) <= 1.0:
            raise ValueError(f"Quantile level must be a number in [0, 1]; got {self.level!r}")
        if not isinstance(self.deviation, bool):
            raise TypeError(f"Quantile deviation must be True or False; got {self.deviation!r}")


Part: TypeAlias = "Sum | Centred | Maximum | Quantile"
#: ``finalize(xp, stats)``: the per-output value, shape ``(K,)``, from the named statistics.
Finalize = Callable[[Namespace, Mapping[str, Array]], Array]
#: ``gradient(xp, stats, y_true, y_pred, weight)``: ``d value[k] / d y_pred[i, k]``, ``(n, K)``;
#: ``weight`` is each element's weight, ``(n, K)`` (0 where ``nan_policy="omit"`` dropped it), or
#: ``None``: no sample weights and nothing dropped.
Gradient = Callable[[Namespace, Mapping[str, Array], Array, Array, "Array | None"], Array]


@dataclass(frozen=True)
class Statistics:
    """The sufficient statistics of a metric and its final step (see the module docstring).

    Parameters
    ----------
    parts : tuple of Sum, Centred, Maximum or Quantile
        The named statistics besides ``"weight"`` (``Σ w``, always kept).
    finalize : callable
        ``finalize(xp, stats)``: the value of each output, ``(K,)``, from the
        statistics (a mapping of name to ``(K,)`` float arrays). Written with
        differentiable operations, torch and JAX differentiate through it.
    gradient : callable, optional
        ``gradient(xp, stats, y_true, y_pred, weight)``: the analytic
        ``d value[k] / d y_pred[i, k]`` (``(n, K)`` columns, ``weight`` each
        element's weight, ``(n, K)``, or ``None`` for unit weights) for NumPy
        and the Array API backend. ``stats`` are those of all the data (every
        chunk of a Dask array), and hold ``<name>.ties`` for each
        :class:`Maximum` part besides: how many elements of all the data attain
        its maximum (to share a subgradient).
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
        if not all(isinstance(part, (Sum, Centred, Maximum, Quantile)) for part in self.parts):
            raise TypeError("Statistics parts are Sum, Centred, Maximum or Quantile records")
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
        elif isinstance(part, Quantile):
            keys.append((part.name, "none"))
            if part.deviation:
                keys.append((f"{part.name}.deviation", "none"))
        else:
            keys.append((part.name, "max" if isinstance(part, Maximum) else "sum"))
    return tuple(keys)


def decomposable(spec: Statistics) -> bool:
    """Whether the statistics of parts combine into the statistics of the whole (no
    :class:`Quantile`): if not, the metric is computed in one call over all samples only."""
    return all(how != "none" for _, how in layout(spec))


class Ranks(NamedTuple):
    """Where a weighted quantile lies in each output's sorted values (see :func:`ranks`)."""

    order: Array  #: ``(n, K)``: the sorting permutation of each column (stable)
    values: Array  #: ``(n, K)``: the sorted values (gathered: autodiff flows to the elements)
    low: Array  #: ``(1, K)``: the rank of the quantile's value
    high: Array  #: ``(1, K)``: the rank of the value averaged with it (``low`` if none)
    exact: Array  #: ``(1, K)``: whether the running weight meets ``level·W`` there (average)


def ranks(xp: Namespace, term: Array, weight: Array, level: float) -> Ranks:
    """The ranks of :class:`Quantile`'s ``q`` in each column of ``term`` (``(n, K)``, ``n >= 1``)
    with element weights ``weight`` (``(n, K)``, 0 for an element that does not count).

    Written once against the Array API (a stable sort, gathers, a running sum and
    comparisons): the same ranks on every backend, under ``jax.jit`` too.
    """
    n = term.shape[0]
    order = xp.argsort(term, axis=0, stable=True)
    values = xp.take_along_axis(term, order, axis=0)
    sorted_weight = xp.take_along_axis(weight, order, axis=0)
    running = xp.cumulative_sum(sorted_weight, axis=0)
    target = level * running[-1:, :]
    # scikit-learn's searchsorted(running, target) (a zero target: the first positive weight)
    below = xp.where(target > 0, running < target, running <= 0)
    # (min(count, n - 1) and min(low + 1, n - 1) as integer arithmetic: no scalar promotion,
    # which torch.compile cannot trace through array_api_compat)
    count = xp.sum(xp.astype(below, order.dtype), axis=0, keepdims=True)
    low = count - xp.astype(count >= n, order.dtype)
    at_low = xp.take_along_axis(running, low, axis=0)
    exact = at_low - target <= xp.finfo(running.dtype).eps
    step = low + xp.astype(low < n - 1, order.dtype)
    # the next value of positive weight: the first whose running weight exceeds low's
    beyond = xp.sum(xp.astype(running <= at_low, order.dtype), axis=0, keepdims=True)
    skipped = xp.where(beyond > n - 1, low, beyond)
    high = xp.where(xp.take_along_axis(sorted_weight, step, axis=0) == 0, skipped, step)
    return Ranks(order, values, low, high, exact)


def quantile(xp: Namespace, term: Array, weight: Array, level: float) -> Array:
    """:class:`Quantile`'s ``q`` of each column, ``(K,)`` (NaN where the column holds NaN)."""
    if term.shape[0] == 0:
        return xp.full_like(xp.sum(term, axis=0), float("nan"))
    at = ranks(xp, term, weight, level)
    first = xp.take_along_axis(at.values, at.low, axis=0)
    second = xp.take_along_axis(at.values, at.high, axis=0)
    value = xp.where(at.exact, (first + second) / 2, first)[0, :]
    missing = xp.any(xp.isnan(term), axis=0)
    return xp.where(missing, xp.full_like(value, float("nan")), value)


def quantile_share(xp: Namespace, term: Array, weight: Array, level: float) -> Array:
    """``d q[k] / d term[i, k]``, ``(n, K)``: 1 at the element :func:`quantile` takes, ½ at each
    of two it averages (1 if both are one element), 0 elsewhere: the subgradient autodiff
    gives through the sort's gathers, so NumPy's analytic gradient equals torch's and JAX's."""
    at = ranks(xp, term, weight, level)
    rank = xp.arange(term.shape[0], dtype=at.order.dtype)[:, None]
    zero = xp.zeros_like(at.values)
    half = xp.where(at.exact, 0.5 + zero[:1, :], 1.0 + zero[:1, :])
    other = xp.where(at.exact, 0.5 + zero[:1, :], zero[:1, :])
    in_order = xp.where(rank == at.low, half, zero) + xp.where(rank == at.high, other, zero)
    return xp.take_along_axis(in_order, xp.argsort(at.order, axis=0, stable=True), axis=0)


def pinball_deviation(xp: Namespace, term: Array, weight: Array, centre: Array, level: float
                      ) -> Array:
    """``Σ wᵢ·ρ(termᵢ - c)`` per output with ``ρ(u) = max(level·u, (level - 1)·u)``."""
    u = term - centre[None, :]
    return xp.sum(weight * xp.maximum(level * u, (level - 1) * u), axis=0)


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
