"""The losses ``mseplug score`` computes: ``--metric``, ``--param`` and the losses' domains.

Every list derives from the registry, never from typed names. Without
``--metric``, score computes every registered loss of the residual
``ŷ - y`` defined for all real numbers (its record has ``residual`` true and
no ``domain``): errors in the target's units, which any data has; and the
scores with statistics of their own that take weights and several outputs
(``r2``, ``explained_variance``). The others are scored only when named: a
loss with a domain (its inputs must lie above a bound, as a log or a deviance
needs), since ordinary data (a negative value, a zero) would otherwise stop
every run, and then a value outside its domain is an
:class:`~mseplug.cli.sources.InputError` naming the file, the row and the
bound; a relative error such as ``mape``, which a zero target makes about
1e16 (as scikit-learn's); ``max_error``, which takes neither weights nor
several outputs; and the metrics that are not decomposable
(``median_absolute_error``, ``d2_absolute_error``: a median of all the rows),
which cannot be streamed: named, their columns are loaded whole and computed
in one call (:func:`streamed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mseplug.cli.sources import InputError, Source
from mseplug.loss.record import Bound, Domain, Loss
from mseplug.loss.statistics import decomposable


def _record(name: str) -> Loss:
    import mseplug

    return mseplug.get_loss(name).loss


def has_domain(name: str) -> bool:
    """Whether the loss refuses some real inputs: its record has a domain (a mapping that
    bounds an argument, or a function of the parameters, which may)."""
    domain = _record(name).domain
    return domain is not None and not (isinstance(domain, Mapping) and not domain)


def default_metrics() -> list[str]:
    """The metrics of ``mseplug score`` without ``--metric``, in the registry's order: every
    registered loss of the residual defined for all real numbers, and the scores that take
    any data (see :func:`by_default`)."""
    import mseplug

    return [name for name in mseplug.losses() if by_default(_record(name)) and not has_domain(name)]


def by_default(loss: Loss) -> bool:
    """A loss of the residual, or statistics of its own that take sample weights and several
    outputs and can be streamed (``max_error`` takes neither weights nor outputs, as
    scikit-learn's; a median is not decomposable: each is scored only when named)."""
    spec = loss.statistics
    if spec is None:
        return bool(loss.residual)
    return bool(spec.sample_weight and spec.multioutput and decomposable(spec))


def streamed(name: str) -> bool:
    """Whether the metric streams through an :class:`~mseplug.Accumulator` (bounded memory);
    otherwise (not decomposable) its columns are gathered and it is computed in one call."""
    spec = _record(name).statistics
    return spec is None or decomposable(spec)


def bounded_metrics() -> list[str]:
    """The registered losses with a domain, scored only when named."""
    import mseplug

    return [name for name in mseplug.losses() if has_domain(name)]


def domain_text(name: str) -> str:
    """The loss's domain in words, ``"y_true > -1 and y_pred > -1"``: at the default
    parameters when the parameters set it."""
    loss = _record(name)
    bounds = loss.bounds(loss.check_params({}))
    text = " and ".join(f"{arg} {bound.describe()}" for arg, bound in bounds.items())
    if isinstance(loss.domain, Mapping):
        return text or "any real number"
    return f"{text or 'any real number'} at the default parameters (they set it)"


def metrics_from(given: str | Sequence[str] | None) -> list[str]:
    """The ``--metric`` list: :func:`default_metrics` by default; unknown names are an error.

    ``given`` is one comma-separated list or several (a repeated ``--metric``); each
    metric is scored once, in the order first given.
    """
    import mseplug

    known = mseplug.losses()
    if given is None:
        return default_metrics()
    texts = [given] if isinstance(given, str) else list(given)
    metrics = [name.strip() for text in texts for name in text.split(",") if name.strip()]
    if not metrics:
        shown = " ".join(f"--metric {text!r}" for text in texts)
        raise InputError(f"{shown} names no metric; choose from {', '.join(known)}")
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise InputError(f"--metric: unknown {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(known)}")
    return list(dict.fromkeys(metrics))


def params_from(settings: Sequence[str], metrics: Sequence[str]) -> dict[str, float]:
    """``--param NAME=VALUE`` settings; each must be a parameter of at least one metric."""
    params: dict[str, float] = {}
    for setting in settings:
        name, equals, value = (part.strip() for part in setting.partition("="))
        try:
            params[name] = float(value)
        except ValueError:
            equals = ""
        if not equals or not name:
            raise InputError(f"--param {setting!r}: expected NAME=NUMBER, e.g. delta=2")
    takes = {name for metric in metrics for name in _record(metric).params}
    unused = sorted(set(params) - takes)
    if unused:
        raise InputError(f"--param {unused[0]}: none of the metrics {', '.join(metrics)} takes it")
    return params


def own_params(metric: str, params: Mapping[str, float]) -> dict[str, float]:
    """The ``--param`` values that ``metric`` takes."""
    takes = _record(metric).params
    return {name: value for name, value in params.items() if name in takes}


def bounds_of(metric: str, params: Mapping[str, float]) -> Domain:
    """The metric's domain at these parameter values (empty: any real number)."""
    loss = _record(metric)
    return loss.bounds(loss.check_params(own_params(metric, params))) if has_domain(metric) else {}


def check_domain(metric: str, bounds: Domain, chunks: Mapping[str, tuple[np.ndarray, Source]],
                 start: int) -> None:
    """An InputError naming the file, the row (1-based, of the whole file) and the bound of
    the first value outside ``bounds``; ``chunks`` maps ``"y_true"`` and ``"y_pred"`` to a
    chunk of rows from 0-based row ``start`` and its source. NaN is not outside: the NaN
    policy decides about it."""
    first: tuple[int, str, np.ndarray, Source, Bound] | None = None
    for arg, (chunk, source) in chunks.items():
        bound = bounds.get(arg)
        if bound is None:
            continue
        rows = chunk.reshape(len(chunk), -1)
        outside = (rows < bound.low if bound.inclusive else rows <= bound.low).any(axis=1)
        if outside.any():
            row = int(np.argmax(outside))
            if first is None or row < first[0]:
                first = (row, arg, rows, source, bound)
    if first is None:
        return
    row, arg, rows, source, bound = first
    column = int(np.argmax(rows[row] < bound.low if bound.inclusive else rows[row] <= bound.low))
    where = ""
    if rows.shape[1] > 1:
        where = (f", column {source.columns[column]!r}" if source.columns
                 else f", value {column + 1} of {rows.shape[1]}")
    raise InputError(
        f"{source.name} row {start + row + 1:,}{where}: {metric} is defined for {arg} "
        f"{bound.describe()}; {arg} is {rows[row, column]:g} there (leave {metric} out of "
        "--metric for such data: the default metrics take any real number)")
