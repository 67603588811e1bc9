"""What makes two Accumulators compatible, and the layout of their plain state.

Two accumulators merge (or all-reduce) only when their options agree in
every respect — loss, parameter values, ``multioutput`` (output weights by
value), ``nan_policy`` — and their outputs have the same shape, ``(n,)`` and
``(n, 1)`` data counting as one. :func:`checked_state` reads the
dictionary ``Accumulator.state_dict`` writes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mseplug import _validation as v
from mseplug._backend_registry import backend_of
from mseplug._options import Options

#: The version of ``Accumulator.state_dict``'s layout.
STATE_VERSION = 1
STATE_KEYS = ("version", "loss", "params", "multioutput", "nan_policy", "output_shape",
              "total", "weight", "count")


def option_difference(mine: Options, theirs: Options) -> str:
    """The first difference between two accumulators' options in words, or ``""``."""
    if mine.loss is not theirs.loss:
        if mine.loss.name == theirs.loss.name:
            return f"two different losses are both named {mine.loss.name!r}"
        return f"loss {theirs.loss.name!r} (the other) vs {mine.loss.name!r} (this one)"
    for name, theirs_value, mine_value in zip(mine.loss.params, theirs.params, mine.params):
        if theirs_value != mine_value:
            return f"{mine.loss.name}'s {name} {theirs_value} (the other) vs {mine_value} (this one)"
    if not _same_multioutput(mine.multioutput, theirs.multioutput):
        return (f"multioutput {_shown(theirs.multioutput)} (the other) vs "
                f"{_shown(mine.multioutput)} (this one)")
    if mine.nan_policy != theirs.nan_policy:
        return f"nan_policy {theirs.nan_policy!r} (the other) vs {mine.nan_policy!r} (this one)"
    return ""


def _same_multioutput(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b if isinstance(a, str) and isinstance(b, str) else False
    return bool(a.shape == b.shape and np.array_equal(a, b))


def _shown(multioutput: Any) -> str:
    return repr(multioutput) if isinstance(multioutput, str) else f"weights {multioutput.tolist()}"


def joined_shape(seen: tuple[int, ...], new: tuple[int, ...], merging: bool) -> tuple[int, ...]:
    """The output shape of two batches (or accumulators): equal, or ``()`` with ``(1,)``."""
    if seen == new:
        return seen
    if {seen, new} == {(), (1,)}:
        return ()  # (n,) and (n, 1) batches mix, as the two inputs of one call
    if merging:
        raise ValueError(f"cannot merge these accumulators: outputs {new} (the other) vs "
                         f"{seen} (this one)")
    raise ValueError(
        f"this batch has outputs {new} but the accumulator has seen outputs {seen}; every "
        "batch needs the same trailing shape"
    )


def plain_output_weights(multioutput: Any) -> Any:
    """Output weights as a float64 NumPy array (values checked; the shape is checked by the
    first update); strings as they are."""
    if isinstance(multioutput, str) or multioutput is None:
        return multioutput
    owner = backend_of(multioutput)
    if owner is not None:
        multioutput = owner.to_numpy(multioutput)
    return np.array(v.check_output_weights(multioutput))  # a copy: the accumulator keeps it


def checked_state(state: Any) -> dict[str, Any]:
    """``state`` if it is a dictionary ``Accumulator.state_dict`` could have written."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict from Accumulator.state_dict(); got "
                        f"{type(state).__name__}")
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"state is missing {missing}; expected a dict from Accumulator.state_dict()")
    if state["version"] != STATE_VERSION:
        raise ValueError(f"state has version {state['version']!r}; this mseplug reads version "
                         f"{STATE_VERSION}")
    if not isinstance(state["params"], dict):
        raise TypeError(f"state['params'] must be a dict; got {type(state['params']).__name__}")
    return state


def state_statistics(state: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The totals, weights and output shape a (non-empty) state holds, checked against each other."""
    shape = tuple(int(d) for d in state["output_shape"])
    total = np.asarray(state["total"], dtype=np.float64).reshape(-1)
    weight = np.asarray(state["weight"], dtype=np.float64).reshape(-1)
    if not total.shape == weight.shape == (math.prod(shape),):
        raise ValueError(
            f"state has {total.size} totals and {weight.size} weights for outputs {shape}; "
            "expected one of each per output"
        )
    return total, weight, shape
