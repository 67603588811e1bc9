"""The suite's loss table, derived from the registry: one row per registered loss.

Rows are ``pytest.param(name, params, id=name)`` (as torchmetrics' test tables):
``params`` gives every parameter of the loss a non-default value inside its
bounds, so each parameter is exercised. Tables of anchors (scikit-learn,
torch, optax, Keras functions) name only the losses an anchor defines.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

import mseplug

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
        params[param] = value
    return params


def rows(*, root: bool | None = None, sums: bool | None = None, names: Any = None) -> list[Any]:
    """Table rows, optionally only losses with (or without) a root, or that allow ``"sum"``."""
    chosen = []
    for name in NAMES if names is None else names:
        loss = mseplug.get_loss(name).loss
        if root is not None and loss.root != root:
            continue
        if sums is not None and (not loss.root) != sums:
            continue
        chosen.append(pytest.param(name, example_params(name), id=name))
    return chosen


def call(name: str, y_true: Any, y_pred: Any, **options: Any) -> Any:
    """``mseplug.<name>(y_true, y_pred, **options)``."""
    return mseplug.get_loss(name)(y_true, y_pred, **options)
