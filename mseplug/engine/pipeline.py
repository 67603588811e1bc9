"""The engine's driver: one call from raw inputs to a value, a gradient or statistics.

Data flows one way: the inputs are converted and checked once
(:func:`mseplug.engine.checks.check_inputs`), a pure kernel of
:mod:`mseplug.engine.kernels` computes the statistics and the one final step
(:mod:`mseplug.engine.finalize`) the value, sums over scaled weights are
brought back to the caller's units, and the backend's ``finish`` hook warns
where a value overflowed. A backend's fast path (``fast_value``) is tried
first: it accepts only calls that need no check and computes through the
same hooks, so its number is the engine's bit for bit.

Every function takes the backend (see :class:`~mseplug.engine.protocol.Hooks`
and :class:`mseplug.Backend`) and checked :class:`~mseplug.loss.Options`.
"""

from __future__ import annotations

from typing import Any, Protocol

from mseplug._typing import Array
from mseplug.engine import moments
from mseplug.engine import validation as v
from mseplug.engine.checks import Checked, check_inputs, unscaled
from mseplug.engine.finalize import ScaledStatistics
from mseplug.engine.kernels import loss_value
from mseplug.engine.protocol import Hooks
from mseplug.loss.options import Options


class Driven(Hooks, Protocol):
    """The hooks the driver calls besides the kernels' (all in :class:`mseplug.Backend`)."""

    def fast_value(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
                   ) -> Any: ...
    def fast_value_and_grad(self, options: Options, y_true: Any, y_pred: Any,
                            sample_weight: Any) -> tuple[Array, Array] | None: ...
    def differentiate(self, options: Options, checked: Checked) -> tuple[Array, Array]: ...
    def statistics(self, options: Options, checked: Checked) -> ScaledStatistics: ...
    def times_power_of_two(self, x: Array, exponent: Any) -> Array: ...
    def unscaled_statistics(self, statistics: ScaledStatistics) -> tuple[Array, Array]: ...
    def finish(self, value: Array, checked: Checked) -> Array: ...


def check(backend: Hooks, options: Options, y_true: Any, y_pred: Any, sample_weight: Any = None,
          *, partial: bool = False) -> Checked:
    """Convert and check one call's inputs (see :func:`~mseplug.engine.checks.check_inputs`);
    a loss with its own statistics refuses what it does not take (:func:`moments.check_call`)."""
    checked = check_inputs(backend, options, y_true, y_pred, sample_weight, partial=partial)
    if options.loss.statistics is not None:
        moments.check_call(options, checked.shape, checked.sample_weight is not None)
    return checked


def evaluate(backend: Driven, options: Options, y_true: Any, y_pred: Any,
             sample_weight: Any = None) -> Array:
    """The loss value (the weighted elementwise losses for ``reduction="none"``)."""
    if options.loss.statistics is not None:  # no fast path: statistics of its own
        return engine_value(backend, options, y_true, y_pred, sample_weight)
    value = backend.fast_value(options, y_true, y_pred, sample_weight)
    if value is None:
        value = engine_value(backend, options, y_true, y_pred, sample_weight)
    return value


def engine_value(backend: Driven, options: Options, y_true: Any, y_pred: Any,
                 sample_weight: Any = None) -> Array:
    """:func:`evaluate` through the general engine, never a fast path."""
    c = check(backend, options, y_true, y_pred, sample_weight)
    value = backend.run(loss_value, options, c.y_true, c.y_pred, c.sample_weight,
                        c.output_weights, options.params)
    (value,) = unscaled(backend, c, options, value)
    return backend.finish(value, c)


def value_and_grad(backend: Driven, options: Options, y_true: Any, y_pred: Any,
                   sample_weight: Any = None) -> tuple[Array, Array]:
    """The loss value and its gradient with respect to ``y_pred``."""
    if options.loss.statistics is not None:
        return engine_value_and_grad(backend, options, y_true, y_pred, sample_weight)
    result = backend.fast_value_and_grad(options, y_true, y_pred, sample_weight)
    if result is None:
        result = engine_value_and_grad(backend, options, y_true, y_pred, sample_weight)
    return result


def engine_value_and_grad(backend: Driven, options: Options, y_true: Any, y_pred: Any,
                          sample_weight: Any = None) -> tuple[Array, Array]:
    """:func:`value_and_grad` through the general engine, never a fast path."""
    c = check(backend, options, y_true, y_pred, sample_weight)
    if options.raw and c.shape[1:] != ():
        raise v.nonscalar_error(c.shape[1:])
    value, grad = backend.differentiate(options, c)
    value, grad = unscaled(backend, c, options, value, grad)
    return backend.finish(value, c), grad


def statistics(backend: Driven, options: Options, y_true: Any, y_pred: Any,
               sample_weight: Any = None, *, partial: bool = False
               ) -> tuple[ScaledStatistics, Checked]:
    """The sufficient statistics ``(S, W)`` of one call and its checked inputs.

    ``partial``: the inputs are one part of the data (empty inputs give zeros,
    weights may sum to 0). ``S`` and ``W`` are in the library's widest float,
    in the units of the weights divided by ``2**exponent`` (see
    :mod:`mseplug.engine.finalize`; :func:`unscaled_statistics` gives the
    caller's units).
    """
    c = check(backend, options, y_true, y_pred, sample_weight, partial=partial)
    return backend.statistics(options, c), c


def unscaled_statistics(backend: Driven, statistics: ScaledStatistics) -> tuple[Array, Array]:
    """``(S, W)`` in the caller's weight units (``inf`` where that exceeds the widest float)."""
    return backend.unscaled_statistics(statistics)
