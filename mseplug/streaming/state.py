"""The Accumulator's state as plain values: what makes two accumulators compatible, the
layout of :meth:`~mseplug.Accumulator.state_dict`, and the checks a loaded state passes.

Kept apart from the Accumulator so that every place that holds a state (the
host NumPy one, the torch device one in :mod:`mseplug.streaming.torch_state`)
checks and joins it the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mseplug.api.backends import backend_of
from mseplug.engine import validation as v
from mseplug.loss.options import Options
from mseplug.loss.statistics import layout

#: The version of ``Accumulator.state_dict``'s layout (1: before ``weight_exponent``).
STATE_VERSION = 2
STATE_KEYS = ("version", "loss", "params", "multioutput", "nan_policy", "output_shape",
              "total", "weight", "count", "weight_exponent")
#: Exponents of weight scales: a float64 weight is at most 2**1024, at least 2**-1074.
_EXPONENT_LIMIT = 2200

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
    """``state`` if it is a dictionary ``Accumulator.state_dict`` could have written: every
    field checked, a ``ValueError`` (``TypeError`` for a wrong type) naming the first bad one.

    The loss, its parameters, ``multioutput`` and ``nan_policy`` are checked again by the
    Accumulator made from them; the statistics by :func:`state_statistics`.
    """
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict from Accumulator.state_dict(); got "
                        f"{type(state).__name__}")
    state = dict(state)
    if state.get("version") == 1:  # written before weights were scaled by powers of two
        state.setdefault("weight_exponent", 0)
    missing = [key for key in STATE_KEYS if key not in state]
    if missing:
        raise ValueError(f"state is missing {missing}; expected a dict from Accumulator.state_dict()")
    unknown = sorted(set(state) - set(STATE_KEYS))
    if unknown:
        raise ValueError(f"state has unknown field(s) {unknown}; expected a dict from "
                         "Accumulator.state_dict()")
    if state["version"] not in (1, STATE_VERSION) or isinstance(state["version"], bool):
        raise ValueError(f"state['version'] is {state['version']!r}; this mseplug reads versions "
                         f"1 and {STATE_VERSION}")
    if not isinstance(state["loss"], str):
        raise TypeError(f"state['loss'] must be a loss name; got {type(state['loss']).__name__}")
    if not isinstance(state["params"], dict):
        raise TypeError(f"state['params'] must be a dict; got {type(state['params']).__name__}")
    count = _integer(state, "count")
    if count < 0:
        raise ValueError(f"state['count'] is {count}; a count of samples is >= 0")
    exponent = _integer(state, "weight_exponent")
    if abs(exponent) > _EXPONENT_LIMIT:
        raise ValueError(f"state['weight_exponent'] is {exponent}; expected at most "
                         f"{_EXPONENT_LIMIT} in size")
    empty = [key for key in ("output_shape", "total", "weight") if state[key] is None]
    if empty and len(empty) != 3:
        raise ValueError(f"state[{empty[0]!r}] is None but "
                         f"{', '.join(k for k in ('output_shape', 'total', 'weight') if k not in empty)} "
                         "is not; an Accumulator without samples has all three None")
    if empty and count:
        raise ValueError(f"state['count'] is {count} but the state holds no statistics")
    return state


def _integer(state: dict[str, Any], key: str) -> int:
    value = state[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"state[{key!r}] must be an integer; got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and float(value).is_integer()):
        raise ValueError(f"state[{key!r}] must be a finite integer; got {value!r}")
    return int(value)


def state_statistics(state: dict[str, Any], options: Options
                     ) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The totals, weights and output shape a (non-empty) state holds, checked against each
    other and against the accumulator's ``options`` (output weights: one per output)."""
    shape_value = state["output_shape"]
    if not isinstance(shape_value, (list, tuple)) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape_value):
        raise ValueError(f"state['output_shape'] must be a list of positive integers; got "
                         f"{shape_value!r}")
    shape = tuple(int(d) for d in shape_value)
    if options.loss.statistics is not None:
        return _named_statistics(state, options, shape)
    arrays = []
    for key in ("total", "weight"):
        try:
            arrays.append(np.asarray(state[key], dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            raise ValueError(f"state[{key!r}] must be a list of numbers; got {state[key]!r}"
                             ) from None
    total, weight = arrays
    outputs = math.prod(shape)
    for key, array in (("total", total), ("weight", weight)):
        if array.shape != (outputs,):
            raise ValueError(f"state[{key!r}] has {array.size} values for outputs {shape}; "
                             f"expected {outputs}, one per output")
    bad = np.flatnonzero(~(np.isfinite(weight) & (weight >= 0)))
    if bad.size:
        raise ValueError(f"state['weight'] has {weight[bad[0]]} for output {int(bad[0])}; sums "
                         "of sample weights are finite and >= 0")
    if options.weighted_outputs:
        v.check_output_weights_shape(tuple(np.shape(options.multioutput)), shape)
    return total, weight, shape


def _named_statistics(state: dict[str, Any], options: Options, shape: tuple[int, ...]
                      ) -> tuple[Any, np.ndarray, tuple[int, ...]]:
    """The named statistics of a loss with statistics of its own (``state['total']`` a dict of
    lists, one per name of its layout), checked."""
    assert options.loss.statistics is not None
    keys = [key for key, _ in layout(options.loss.statistics)]
    given = state["total"]
    if not isinstance(given, dict) or sorted(given) != sorted(keys):
        raise ValueError(f"state['total'] of {options.loss.name} must be a dict of its "
                         f"statistics {keys}; got {given!r:.200}")
    outputs = math.prod(shape)
    named = {}
    for key in keys:
        try:
            named[key] = np.asarray(given[key], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"state['total'][{key!r}] must be a list of numbers") from None
        if named[key].shape != (outputs,):
            raise ValueError(f"state['total'][{key!r}] has {named[key].size} values for outputs "
                             f"{shape}; expected {outputs}, one per output")
    weight = named["weight"]
    bad = np.flatnonzero(~(np.isfinite(weight) & (weight >= 0)))
    if bad.size:
        raise ValueError(f"state['total']['weight'] has {weight[bad[0]]} for output "
                         f"{int(bad[0])}; sums of sample weights are finite and >= 0")
    if options.weighted_outputs:
        v.check_output_weights_shape(tuple(np.shape(options.multioutput)), shape)
    return named, weight, shape
