"""The engine for losses with their own statistics (``Loss(statistics=...)``): R², the maximum
error, and any metric that is not a weighted mean of one elementwise term.

A part of the data (a call, a batch, a shard, a chunk) gives its named
statistics (:func:`part_statistics`, in the library's widest float, see
:mod:`mseplug.loss.statistics`); parts combine exactly (:func:`combined`:
sums add after centred moments are brought to one shift, maxima take the
maximum); the record's ``finalize`` gives each output's value and
:func:`value` combines outputs. Everything is written once against the
Array API, so it traces under ``jax.jit`` and torch and JAX differentiate it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mseplug._typing import Array, Namespace
from mseplug.engine import validation as v
from mseplug.engine.columns import Columns
from mseplug.engine.finalize import aligned, times_power_of_two
from mseplug.loss.options import Options
from mseplug.loss.statistics import (
    Centred,
    Gradient,
    Maximum,
    Quantile,
    Statistics,
    decomposable,
    layout,
    pinball_deviation,
    quantile,
)

Named = dict[str, Array]


def spec_of(options: Options) -> Statistics:
    spec = options.loss.statistics
    if spec is None:
        raise TypeError(f"loss {options.loss.name!r} has no statistics of its own")
    return spec


def check_call(options: Options, shape: tuple[int, ...], weighted: bool) -> None:
    """What a loss with its own statistics refuses: sample weights, more than one output."""
    spec = spec_of(options)
    name = options.loss.name
    if weighted and not spec.sample_weight:
        raise ValueError(f"{name} takes no sample_weight (as scikit-learn's, it is not a "
                         "weighted mean); call it without sample_weight")
    outputs = 1
    for size in shape[1:]:
        outputs *= size
    if not spec.multioutput and (outputs != 1 or not options.uniform):
        mode = options.multioutput if isinstance(options.multioutput, str) else "weights"
        raise ValueError(f"{name} takes one output (as scikit-learn's); got y of shape {shape} "
                         f"and multioutput={mode!r}; call it per output")


def require_decomposable(options: Options, use: str) -> None:
    """A ``ValueError`` where ``use`` (the Accumulator, sufficient statistics, a collective) needs
    the statistics of parts and the loss's record says they do not combine (a
    :class:`~mseplug.loss.statistics.Quantile`, such as a median): its value is computed in one
    call over all the samples only."""
    spec = options.loss.statistics
    if spec is None or decomposable(spec):
        return
    name = options.loss.name
    raise ValueError(
        f"{name} is not decomposable (a quantile of all the samples at once: no statistics of "
        f"parts combine into it), so {use} cannot compute it; it works in one call only: call "
        f"mseplug.{name}(y_true, y_pred) on all the data (gathered first if it is spread out)")


def element_weights(xp: Namespace, c: Columns, keep: Array | None, like: Array) -> Array:
    """Each element's weight, ``(n, K)``: its sample's (1 without weights), 0 where
    ``nan_policy="omit"`` drops it."""
    weight = xp.ones_like(like) if c.weight is None else c.weight[:, None] + xp.zeros_like(like)
    if keep is not None:
        weight = xp.where(keep, weight, xp.zeros_like(weight))
    return weight


#: ``quantile_of(xp, part, true, pred, weight, term)``: the :class:`Quantile` ``part``'s ``q``
#: (:func:`~mseplug.loss.statistics.quantile`) of its term of ``true`` and ``pred``; ``weight``
#: ``None`` for unit weights, ``term`` the term when the caller formed it already (it needs it
#: besides), else ``None``. A backend may form the term its own way (the same values) and
#: select where the generic one sorts.
QuantileOf = Callable[[Namespace, Quantile, Array, Array, "Array | None", "Array | None"], Array]


def unit_or_weighted_quantile(xp: Namespace, part: Quantile, true: Array, pred: Array,
                              weight: Array | None, term: Array | None) -> Array:
    """:func:`~mseplug.loss.statistics.quantile` of the part's term, with unit weights where
    ``weight`` is ``None`` (the term formed here where ``term`` is ``None``)."""
    if term is None:
        term = part.term(xp, true, pred)
    return quantile(xp, term, xp.ones_like(term) if weight is None else weight, part.level)


def part_statistics(xp: Namespace, options: Options, c: Columns, keep: Array | None, *,
                    quantile_of: QuantileOf = unit_or_weighted_quantile) -> Named:
    """The named statistics of one part (``c`` in the widest float), each of shape ``(K,)``.

    ``keep`` (``nan_policy="omit"``) leaves elements out: their weight is 0 and
    their terms are not evaluated on NaN. A centred statistic's shift is its
    term at the first row, or with ``keep`` its largest kept term (0 for an empty
    part, or where nothing is kept): a value of the data either way.
    """
    spec = spec_of(options)
    c = in_work_dtype(xp, c)
    true, pred = c.y_true, c.y_pred
    if keep is not None:
        one = xp.ones_like(pred)
        true, pred = xp.where(keep, true, one), xp.where(keep, pred, one)
    n = pred.shape[0]
    weight: Array | None = None  # every weight 1: a product with it is the term itself, exactly
    if c.weight is None and keep is None:
        stats: Named = {"weight": xp.sum(pred[:0, :], axis=0) + n}  # Σ 1 = n
    else:
        weight = element_weights(xp, c, keep, pred)
        stats = {"weight": xp.sum(weight, axis=0)}
    for part in spec.parts:
        if isinstance(part, Quantile):  # of all the part's samples at once (one call only)
            # the term here only where the deviation needs it too: else quantile_of's to form
            term = part.term(xp, true, pred) if part.deviation else None
            q = quantile_of(xp, part, true, pred, weight, term)
            stats[part.name] = q
            if term is not None:  # only where the record's finalize reads it
                every = xp.ones_like(term) if weight is None else weight
                stats[f"{part.name}.deviation"] = pinball_deviation(xp, term, every, q, part.level)
            continue
        term = part.term(xp, true, pred)
        if isinstance(part, Maximum):
            masked = (term if keep is None
                      else xp.where(keep, term, xp.full_like(term, -float("inf"))))
            stats[part.name] = (xp.max(masked, axis=0) if n else xp.zeros_like(stats["weight"])
                                - float("inf"))
        elif isinstance(part, Centred):
            if n and keep is None:
                shift = term[0, :]
            elif n:  # the largest kept term: a data point (exact, so a constant one centres to
                # exactly 0 whichever rows are omitted), or 0 where nothing is kept
                top = xp.max(xp.where(keep, term, xp.full_like(term, -float("inf"))), axis=0)
                shift = xp.where(top == -float("inf"), xp.zeros_like(top), top)
            else:
                shift = xp.zeros_like(stats["weight"])
            d = term - shift[None, :]
            if keep is not None:
                d = xp.where(keep, d, xp.zeros_like(d))
            wd = d if weight is None else weight * d
            stats[f"{part.name}.shift"] = shift
            stats[f"{part.name}.sum"] = xp.sum(wd, axis=0)
            stats[f"{part.name}.squares"] = xp.sum(wd * d, axis=0)
        else:
            product = term if weight is None else weight * term
            if keep is not None:
                product = xp.where(keep, product, xp.zeros_like(product))
            stats[part.name] = xp.sum(product, axis=0)
    return stats


def in_work_dtype(xp: Namespace, c: Columns) -> Columns:
    """The columns in their work dtype (the widest float here): a backend may hand them over in
    the input dtype (NumPy's blocked kernels cast block by block; these sums do not)."""
    arrays = [x if x is None or x.dtype == c.work else xp.astype(x, c.work)
              for x in (c.y_true, c.y_pred, c.weight)]
    return c._replace(y_true=arrays[0], y_pred=arrays[1], weight=arrays[2])


def reshifted(xp: Namespace, stats: Mapping[str, Array], name: str, shift: Array) -> Named:
    """A centred statistic's moments about another shift, exactly:
    ``A' = A + W(c - c')``, ``B' = B + 2(c - c')A + W(c - c')²``."""
    step = stats[f"{name}.shift"] - shift
    weight, first = stats["weight"], stats[f"{name}.sum"]
    return {f"{name}.shift": shift, f"{name}.sum": first + weight * step,
            f"{name}.squares": stats[f"{name}.squares"] + step * (2 * first + weight * step)}


def common_shifts(xp: Namespace, spec: Statistics, a: Mapping[str, Array],
                  b: Mapping[str, Array]) -> Named:
    """The shift two parts meet at: the first's where it has weight, else the second's."""
    has = a["weight"] > 0
    return {f"{part.name}.shift": xp.where(has, a[f"{part.name}.shift"], b[f"{part.name}.shift"])
            for part in spec.parts if isinstance(part, Centred)}


def combined(xp: Namespace, spec: Statistics, a: Mapping[str, Array], b: Mapping[str, Array]
             ) -> Named:
    """The statistics of two parts together (both in the same weight units)."""
    shifts = common_shifts(xp, spec, a, b)
    a, b = at_shifts(xp, spec, a, shifts), at_shifts(xp, spec, b, shifts)
    result: Named = {}
    for key, how in layout(spec):
        if how == "shift":
            result[key] = shifts[key]
        elif how == "max":
            result[key] = xp.maximum(a[key], b[key])
        else:
            result[key] = a[key] + b[key]
    return result


def at_shifts(xp: Namespace, spec: Statistics, stats: Mapping[str, Array],
              shifts: Mapping[str, Array]) -> Named:
    """``stats`` with every centred statistic re-centred at ``shifts[<name>.shift]``."""
    result = dict(stats)
    for part in spec.parts:
        if isinstance(part, Centred):
            result.update(reshifted(xp, stats, part.name, shifts[f"{part.name}.shift"]))
    return result


def output_share(xp: Namespace, options: Options, stats: Mapping[str, Array],
                 output_weights: Array | None, per_output: Array) -> Array | float | None:
    """How much each output counts (``None``: raw values); see ``finalize._output_share``."""
    if options.raw:
        return None
    if output_weights is not None:
        inverse = 1 / xp.sqrt(xp.max(output_weights))
        relative = (output_weights * inverse) * inverse
        return relative / xp.sum(relative)
    if options.multioutput == "variance_weighted":
        spec = spec_of(options)
        assert spec.output_weights is not None  # checked with the options
        weights = spec.output_weights(xp, stats)
        total = xp.sum(weights)
        uniform = xp.ones_like(weights) / weights.shape[0]
        # sklearn: every output of zero variance averages them uniformly
        return xp.where(total > 0, weights / xp.where(total > 0, total, 1.0), uniform)
    return 1 / per_output.shape[0]


def value(xp: Namespace, options: Options, stats: Mapping[str, Array],
          output_shape: tuple[int, ...], output_weights: Array | None) -> Array:
    """The value from the statistics: per output by the record's ``finalize``, then outputs
    combined by ``multioutput``. An output without weight (empty, or emptied by
    ``nan_policy="omit"``) is NaN, as for every loss."""
    per_output = spec_of(options).finalize(xp, stats)
    weight = stats["weight"]
    per_output = xp.where(weight > 0, per_output, xp.full_like(per_output, float("nan")))
    share = output_share(xp, options, stats, output_weights, per_output)
    if share is None:
        return xp.reshape(per_output, output_shape)
    return xp.sum(share * per_output)


def analytic_gradient(options: Options) -> Gradient:
    """The record's analytic gradient, or a ``TypeError`` saying where gradients come from."""
    spec = spec_of(options)
    if spec.gradient is None:
        raise TypeError(f"loss {options.loss.name!r} has no analytic gradient, so NumPy and the "
                        "generic Array API backend cannot give it; use torch or JAX arrays")
    return spec.gradient


def _kept_pair(xp: Namespace, c: Columns, keep: Array | None) -> tuple[Array, Array]:
    """The columns in their work dtype, omitted elements replaced by 1 (never a NaN term)."""
    work = in_work_dtype(xp, c)
    true, pred = work.y_true, work.y_pred
    if keep is not None:
        one = xp.ones_like(pred)
        true, pred = xp.where(keep, true, one), xp.where(keep, pred, one)
    return true, pred


def ties(xp: Namespace, options: Options, stats: Mapping[str, Array], c: Columns,
         keep: Array | None) -> Named:
    """For each :class:`Maximum` part, ``<name>.ties``: how many (kept) elements of ``c`` attain
    the maximum ``stats[name]``, per output (float counts). Parts' counts add: a gradient
    that shares the maximum's subgradient among the elements that tie counts them over all
    parts (every chunk of a Dask array), not per part."""
    true, pred = _kept_pair(xp, c, keep)
    counts: Named = {}
    for part in spec_of(options).parts:
        if isinstance(part, Maximum):
            at = part.term(xp, true, pred) == stats[part.name][None, :]
            if keep is not None:
                at = xp.logical_and(at, keep)
            counts[f"{part.name}.ties"] = xp.sum(xp.where(at, xp.ones_like(pred),
                                                          xp.zeros_like(pred)), axis=0)
    return counts


def gradient(xp: Namespace, options: Options, stats: Mapping[str, Array], c: Columns,
             keep: Array | None, output_weights: Array | None,
             counts: Mapping[str, Array] | None = None) -> Array:
    """``d value / d y_pred`` from the record's analytic gradient, in ``y_pred``'s shape.

    The record's gradient sees the statistics and, for each :class:`Maximum` part,
    ``<name>.ties`` (:func:`ties`): ``counts`` when given (counted over every part of
    the data, as the Dask chunks' are), else this call's.
    """
    function = analytic_gradient(options)
    if options.raw and c.shape[1:] != () and c.outputs != 1:
        raise v.nonscalar_error(c.shape[1:])
    work = in_work_dtype(xp, c)
    true, pred = _kept_pair(xp, work, keep)
    weight = (None if work.weight is None and keep is None
              else element_weights(xp, work, keep, pred))
    if counts is None:
        counts = ties(xp, options, stats, c, keep)
    grad = function(xp, {**stats, **counts}, true, pred, weight)
    per_output = stats["weight"]
    share = output_share(xp, options, stats, output_weights, per_output)
    if share is not None:
        grad = grad * (share if isinstance(share, float) else share[None, :])
    if keep is not None:
        grad = xp.where(keep, grad, xp.zeros_like(grad))
    return xp.astype(xp.reshape(grad, c.pred_shape), c.dtype, copy=False)


def ordered(options: Options, stats: Mapping[str, Any]) -> tuple[Any, ...]:
    """The statistics as a tuple in the layout's order (for collectives and states)."""
    return tuple(stats[key] for key, _ in layout(spec_of(options)))


def named(options: Options, values: Any) -> dict[str, Any]:
    """A tuple in the layout's order as named statistics."""
    return {key: value for (key, _), value in zip(layout(spec_of(options)), values)}


def scaled(spec: Statistics, stats: Mapping[str, Any], exponent: int) -> Named:
    """``stats`` with every statistic linear in the weights times ``2**exponent`` (exact unless
    it over- or underflows); shifts and maxima stay."""
    if not exponent:
        return dict(stats)
    return {key: times_power_of_two(stats[key], exponent) if how == "sum" else stats[key]
            for key, how in layout(spec)}


def combined_parts(xp: Namespace, spec: Statistics, parts: list[tuple[Mapping[str, Any], int]]
                   ) -> tuple[Named, int]:
    """The statistics of several parts, each in units of its weights divided by
    ``2**exponent``: brought to the largest exponent, then combined (:func:`combined`)."""
    common, steps = aligned([exponent for _, exponent in parts])
    result: Named | None = None
    for (stats, _), step in zip(parts, steps):
        part = scaled(spec, stats, step)
        result = part if result is None else combined(xp, spec, result, part)
    assert result is not None, "no parts"
    return result, common
