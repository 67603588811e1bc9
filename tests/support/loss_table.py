"""The suite's loss table, derived from the registry: one row per registered loss.

Rows are ``pytest.param(name, params, id=name)`` (as torchmetrics' test tables):
``params`` gives every parameter of the loss a non-default value inside its
bounds, so each parameter is exercised. Tables of anchors (scikit-learn,
torch, optax, Keras functions) name only the losses an anchor defines.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import mseplug
from mseplug.loss.statistics import layout

#: Every loss registered when the suite starts: the built-ins and installed plugins.
NAMES: tuple[str, ...] = mseplug.losses()


def example_params(name: str) -> dict[str, float]:
    """A non-default value of each of the loss's parameters, inside its bounds."""
    params = {}
    for param, spec in mseplug.get_loss(name).loss.params.items():
        if math.isfinite(spec.low) and math.isfinite(spec.high):
            value = spec.low + 0.3 * (spec.high - spec.low)
        elif spec.default != 0:
            value = 0.7 * spec.default
        else:
            value = spec.default + 0.3
        if spec.check is not None and spec.check(value):  # a gap in the range (Tweedie's power)
            value = spec.default + 1.5
        params[param] = value
    return params


def decomposable(name: str) -> bool:
    """Whether the statistics of parts of ``name`` combine (its record's property; a median's
    do not: it works in one call only)."""
    spec = mseplug.get_loss(name).loss.statistics
    return spec is None or all(how != "none" for _, how in layout(spec))


def rows(*, root: bool | None = None, sums: bool | None = None, names: Any = None,
         weighted: bool | None = None, outputs: bool | None = None,
         elementwise: bool | None = None, streamed: bool | None = None) -> list[Any]:
    """Table rows, optionally only losses with (or without) a root, that allow ``"sum"``, that
    take sample weights (``weighted``), several outputs (``outputs``), that are the mean of an
    elementwise term (``elementwise``: not a loss with statistics of its own, such as R²), or
    whose statistics of parts combine (``streamed``: not a median, see :func:`decomposable`)."""
    chosen = []
    for name in NAMES if names is None else names:
        loss = mseplug.get_loss(name).loss
        spec = loss.statistics
        if streamed is not None and decomposable(name) != streamed:
            continue
        if root is not None and loss.root != root:
            continue
        if sums is not None and (not loss.root and spec is None) != sums:
            continue
        if weighted is not None and (spec is None or spec.sample_weight) != weighted:
            continue
        if outputs is not None and (spec is None or spec.multioutput) != outputs:
            continue
        if elementwise is not None and (spec is None) != elementwise:
            continue
        chosen.append(pytest.param(name, example_params(name), id=name))
    return chosen


def call(name: str, y_true: Any, y_pred: Any, **options: Any) -> Any:
    """``mseplug.<name>(y_true, y_pred, **options)``."""
    return mseplug.get_loss(name)(y_true, y_pred, **options)


def in_domain(name: str, y_true: Any, y_pred: Any, **params: float) -> tuple[Any, Any]:
    """NumPy ``y_true`` and ``y_pred`` moved into the loss's domain, elementwise and the same way
    for both (equal values stay equal, NaN and inf stay): ``x -> c + |x|``, ``c`` the largest
    lower bound of the two (plus 1/4 for a strict one). Losses without a domain get their
    inputs back. Without ``params``, the domain at the defaults and at :func:`example_params`
    (where a parameter sets the domain, as Tweedie's power, tests call with either)."""
    offsets = _offsets(name, params)
    if not offsets:
        return y_true, y_pred
    offset = max(offsets)
    return tuple(offset + np.abs(np.asarray(x, np.float64))  # type: ignore[return-value]
                 for x in (y_true, y_pred))


def _offsets(name: str, params: dict[str, float] | None = None) -> list[float]:
    """The lowest value strictly inside each of the loss's bounds (at ``params``, or at the
    defaults and the example parameters)."""
    loss = mseplug.get_loss(name).loss
    choices = [params] if params else [{}, example_params(name)]
    return [bound.low + (0.0 if bound.inclusive else 0.25) for chosen in choices
            for bound in loss.bounds(loss.check_params(chosen)).values()]


def domains() -> dict[str, Any]:
    """The registered losses that have a domain, by name."""
    return {name: mseplug.get_loss(name).loss.domain for name in NAMES
            if mseplug.get_loss(name).loss.domain is not None}


def in_every_domain(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """NumPy inputs moved, as :func:`in_domain` does, into every registered loss's domain at
    once (for data one test passes to all of them)."""
    offsets = [offset for name in NAMES for offset in _offsets(name)]
    if not offsets:
        return y_true, y_pred
    return tuple(max(offsets) + np.abs(np.asarray(x, np.float64))  # type: ignore[return-value]
                 for x in (y_true, y_pred))


def refusal(name: str, *, weighted: bool = False, outputs: int = 1,
            multioutput: Any = "uniform_average", reduction: str = "mean",
            elementwise: bool = False, streamed: bool = False) -> str:
    """Why ``name`` refuses such a call, from its record, or ``""``: a loss with statistics of its
    own (R², max_error) takes only ``reduction="mean"``, is no mean of an elementwise term, and
    may refuse sample weights or several outputs (as scikit-learn's max_error); one that is not
    decomposable (a median) refuses parts (``streamed``: an Accumulator, sufficient
    statistics, a collective)."""
    spec = mseplug.get_loss(name).loss.statistics
    if spec is None:
        return ""
    if streamed and not decomposable(name):
        return f"{name} is not decomposable: one call only (a property of its record)"
    if reduction != "mean":
        return f"{name} has statistics of its own: only reduction='mean' applies"
    if elementwise:
        return f"{name} has statistics of its own, not the mean of an elementwise term"
    if weighted and not spec.sample_weight:
        return f"{name} takes no sample_weight (a property of its record)"
    uniform = isinstance(multioutput, str) and multioutput == "uniform_average"
    if (outputs > 1 or not uniform) and not spec.multioutput:
        return f"{name} takes one output (a property of its record)"
    return ""


def skip_if_refused(name: str, **call: Any) -> None:
    """``pytest.skip`` with :func:`refusal`'s reason when ``name`` refuses such a call."""
    reason = refusal(name, **call)
    if reason:
        pytest.skip(reason)
