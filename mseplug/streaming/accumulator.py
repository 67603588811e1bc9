"""The streaming, mergeable ``Accumulator`` (torchmetrics' update/compute split).

It keeps the same sufficient statistics the one-shot functions compute —
per output ``S = Σwᵢ·eᵢ`` and ``W = Σwᵢ``, plus a count of samples — in
float64, and finalises them with the same code, so a stream of batches
equals one call. Its state is a plain dictionary
(:meth:`Accumulator.state_dict`) for checkpoints and for engines that ship
results between processes (Ray, Spark); ``mseplug.torch.all_reduce`` sums
it across torch.distributed ranks.

Where the state lives, and when it is read
------------------------------------------
The state is in the library and on the device of the batches, so that an
update in a training loop is no device sync:

- ``total`` (``S``) and ``weight`` (``W``): float64, shape ``(K,)``. NumPy
  arrays for NumPy, JAX, Dask and list batches (their statistics are read to
  the host per update, as before); float64 tensors on the batch's device
  for torch batches (:mod:`mseplug.streaming.torch_state`).
- ``exponent``: ``S`` and ``W`` are in units of the weights divided by
  ``2**exponent`` (see :mod:`mseplug.engine.finalize`). A Python int while
  it is known on the host (always for NumPy, and for torch until a weighted
  batch arrives), else an int64 0-d tensor on the state's device: torch
  weights are scaled by powers of two on the device.
- ``count``: samples seen, a Python int (a batch's row count is its shape).
- ``output_shape``: a tuple; ``options``: the loss and its options.

A loss with statistics of its own (R², explained variance, the maximum
error: ``Loss(statistics=...)``) keeps them by name in ``total`` (a dict of
float64 NumPy arrays, ``weight`` its ``"weight"``), on the host for every
library: each update reads its batch's statistics back (a torch batch on an
accelerator costs one device sync). Updates and merges combine them as the
record says, exactly: centred moments are re-centred at one shift, maxima
take the maximum. A metric whose record is not decomposable (a median:
``median_absolute_error``, ``d2_absolute_error``) has no Accumulator: creating
one is a ``ValueError`` (it works in one call only).

A torch update reads no value back. Checks that need one (NaN under
``nan_policy="raise"``, sample weights finite and ``>= 0``, a loss's domain
such as msle's ``y > -1``, the overflow warning) are kept as device flags
and raised, with the error the eager check raises and naming the same
argument, at the next read; shapes and dtypes are checked at once. The
reads are :meth:`~Accumulator.compute`, :meth:`~Accumulator.state_dict` and
``mseplug.torch.all_reduce`` (one transfer each). :meth:`~Accumulator.merge`
of two torch states stays on the device (the other's flags come along); a
host state (from :meth:`~Accumulator.from_state_dict`, or NumPy batches)
meeting a torch batch or state is moved to that device, exactly (float64
to float64). An accumulator whose deferred check failed raises at every
read until :meth:`~Accumulator.reset`: it never gives a silent number.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from mseplug._typing import ArrayLike, LossLike
from mseplug.api.backends import dispatch
from mseplug.api.registry import is_registered, options_for
from mseplug.engine import finalize, moments, pipeline
from mseplug.engine import overflow as _overflow
from mseplug.loss.options import Options
from mseplug.loss.statistics import layout
from mseplug.streaming.state import (
    STATE_VERSION,
    checked_state,
    joined_shape,
    option_difference,
    plain_output_weights,
    state_statistics,
)


class Accumulator:
    """Streaming loss over batches of ``(y_true, y_pred)``; mergeable, picklable, all-reducible.

    Parameters
    ----------
    loss : str, loss function or Loss
        A registered loss (see :func:`mseplug.losses`).
    multioutput, nan_policy
        As for the loss functions (``reduction`` is always ``"mean"``).
    **params
        The loss's parameters, e.g. ``delta=2.0`` for ``"huber"``.

    Notes
    -----
    A batch may be empty (it changes nothing) and its weights may sum to 0;
    only :meth:`compute` needs a positive total weight. Batches of shape
    ``(n,)`` and ``(n, 1)`` mix, as the two inputs of one call do.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> acc = mseplug.Accumulator("mse")
    >>> acc.update(np.array([120_000.0]), np.array([100_000.0]))
    >>> acc.update(np.array([60_000.0]), np.array([80_000.0]))
    >>> float(acc.compute())
    400000000.0
    >>> other = mseplug.Accumulator("mse")
    >>> other.update(np.array([0.0]), np.array([0.0]))
    >>> float(acc.merge(other).compute()) == 8e8 / 3
    True
    """

    def __init__(
        self,
        loss: LossLike = "mse",
        *,
        multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
        **params: Any,
    ) -> None:
        if "reduction" in params:
            raise ValueError(
                f"Accumulator takes no reduction (got reduction={params['reduction']!r}): it "
                "computes the weighted mean over every sample seen; for a sum, keep the "
                "statistics (mseplug.sufficient_statistics) and add them yourself"
            )
        self.options: Options = options_for(
            loss, multioutput=plain_output_weights(multioutput), nan_policy=nan_policy, **params
        )
        moments.require_decomposable(self.options, "mseplug.Accumulator (streaming and merging)")
        self.reset()

    def reset(self) -> None:
        """Forget every update."""
        # Where each part lives, and when it is read: the module docstring.
        self.total: Any = None  # S: Σ w·e per output, float64 (NumPy, or a torch tensor), scaled
        self.weight: Any = None  # W: Σ w per output, float64, scaled
        self.exponent: Any = 0  # S and W are in units of the weights divided by 2**exponent
        self.count = 0  # samples seen
        self.output_shape: tuple[int, ...] | None = None
        self._deferred: Any = None  # torch: value checks waiting for the next read

    def __repr__(self) -> str:
        return f"Accumulator({self.options.loss.name!r}, samples={self.count})"

    def update(self, y_true: ArrayLike, y_pred: ArrayLike, *,
               sample_weight: ArrayLike | None = None) -> None:
        """Add one batch of samples (any library; checked as by the loss functions).

        The batch's statistics are computed in float64 whatever its dtype. Lazy
        inputs (Dask) are computed here, statistics and count in one pass. A
        torch batch's statistics stay on its device and its values are checked
        at the next read (see the module docstring): shape and dtype errors
        are raised here, value errors by :meth:`compute` or :meth:`state_dict`.
        """
        accumulate = _torch_accumulate or _torch_module()
        if self.options.loss.statistics is not None:  # named statistics: a host state
            backend, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight)
            self._update_on_host(backend, y_true, y_pred, sample_weight)
            return
        if accumulate is not None and accumulate.lean_update(self, y_true, y_pred, sample_weight):
            return
        backend, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight)
        if accumulate is not None and isinstance(backend, accumulate.TorchBackend):
            accumulate.engine_update(self, y_true, y_pred, sample_weight)
            return
        self._update_on_host(backend, y_true, y_pred, sample_weight)

    def _update_on_host(self, backend: Any, y_true: Any, y_pred: Any, sample_weight: Any
                        ) -> None:
        """Add a dispatched batch through the engine, its statistics read to NumPy."""
        statistics, checked = pipeline.statistics(backend, self.options, y_true, y_pred,
                                                  sample_weight, partial=True)
        if self.options.loss.statistics is not None:
            keys = [key for key, _ in layout(self.options.loss.statistics)]
            *values, exponent, count = backend.fetch(
                (*(statistics.total[key] for key in keys), statistics.exponent,
                 backend.rows(checked)))
            if int(count):
                named = {key: _float64(value) for key, value in zip(keys, values)}
                self._add(named, named["weight"], int(exponent), int(count), checked.shape[1:],
                          merging=False)
            return
        total, weight, exponent, count = backend.fetch(
            (statistics.total, statistics.weight, statistics.exponent, backend.rows(checked)))
        if int(count) == 0:
            return
        total, weight = _float64(total), _float64(weight)
        if np.isinf(total).any() or np.isinf(weight).any():
            _warn_if_overflowed(backend, checked)
        self._add(total, weight, int(exponent), int(count), checked.shape[1:], merging=False)

    def _add(self, total: Any, weight: np.ndarray, exponent: int, count: int,
             shape: tuple[int, ...], *, merging: bool) -> None:
        """Add statistics in units of weights divided by ``2**exponent`` (brought to one
        exponent first: exact, but for a part whose weights are ~2**1000 times smaller).
        ``total`` is ``S``, or the named statistics of a loss with statistics of its own
        (combined as its record says: :func:`mseplug.engine.moments.combined_parts`)."""
        spec = self.options.loss.statistics
        if spec is not None:  # named statistics: combined exactly (re-centred, maxima)
            if self.total is None or self.output_shape is None:
                self.total, self.output_shape = dict(total), shape
                self.exponent = exponent
            else:
                self.output_shape = joined_shape(self.output_shape, shape, merging)
                with np.errstate(over="ignore", invalid="ignore"):
                    self.total, self.exponent = moments.combined_parts(
                        np, spec, [(self.total, self.exponent), (total, exponent)])
            self.weight = self.total["weight"]
            self.count += count
            return
        accumulate = _torch_accumulate
        if accumulate is not None and accumulate.is_torch_state(self.total):
            accumulate.add(self, total, weight, exponent, count, shape, merging=merging,
                           wide=accumulate.host_nonfinite(total, weight), owned=False)
            return
        if self.total is None or self.weight is None or self.output_shape is None:
            self.total, self.weight, self.output_shape = total.copy(), weight.copy(), shape
            self.exponent = exponent
        else:
            self.output_shape = joined_shape(self.output_shape, shape, merging)
            common, (mine, theirs) = finalize.aligned([self.exponent, exponent])
            with np.errstate(over="ignore", invalid="ignore"):
                added = (finalize.times_power_of_two(self.total, mine)
                         + finalize.times_power_of_two(total, theirs))
            if not np.isfinite(added).all() and np.isfinite(self.total).all() and \
                    np.isfinite(total).all():
                _overflow.warn("float64")  # two finite sums whose sum exceeds float64
            self.total = added
            self.weight = (finalize.times_power_of_two(self.weight, mine)
                           + finalize.times_power_of_two(weight, theirs))
            self.exponent = common
        self.count += count

    def merge(self, other: Accumulator) -> Accumulator:
        """Add ``other``'s statistics into this one; returns ``self``.

        Both must have the same loss, parameter values, ``multioutput`` (output
        weights compared by value) and ``nan_policy``, and have seen outputs
        of the same shape; otherwise a ``ValueError`` names the first difference.
        """
        if not isinstance(other, Accumulator):
            raise TypeError(f"other must be an Accumulator; got {type(other).__name__}")
        difference = option_difference(self.options, other.options)
        if difference:
            raise ValueError(f"cannot merge these accumulators: {difference}")
        accumulate = _torch_accumulate
        if other.total is None:
            return self
        if accumulate is not None and (accumulate.is_torch_state(self.total)
                                       or accumulate.is_torch_state(other.total)):
            accumulate.merge(self, other)  # on the device, deferred checks included
            return self
        if other.total is not None and other.weight is not None and other.output_shape is not None:
            self._add(other.total, other.weight, other.exponent, other.count, other.output_shape,
                      merging=True)
        return self

    def compute(self) -> np.ndarray:
        """The loss over everything seen: a float64 0-d array (or per output, ``raw_values``)."""
        if self.total is None or self.weight is None or self.output_shape is None:
            raise ValueError("Accumulator.compute() before any update: no samples seen")
        total, weight, _ = self._host_statistics("compute")
        if not np.any(weight != 0):
            raise ValueError(
                f"Accumulator.compute(): the total weight of the {self.count} samples seen is 0 "
                "(all weights 0, or every element omitted as NaN); at least one sample must count"
            )
        output_weights = None
        if self.options.weighted_outputs:
            output_weights = np.reshape(self.options.multioutput, -1)
        if self.options.loss.statistics is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = moments.value(np, self.options, self.total, self.output_shape,
                                      output_weights)
            return np.asarray(value, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):  # an output with no weight: NaN
            value = finalize.finalize(
                np, self.options, total, weight, self.output_shape, output_weights,
                _sqrt,
            )
        return np.asarray(value, dtype=np.float64)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The whole state as plain Python values (JSON-able, picklable), versioned.

        The loss is recorded by name (it must be registered wherever the state
        is loaded) with its parameter values; ``multioutput`` as a string or a
        list of output weights. Statistics that are NaN or infinite stay so
        (Python's ``json`` writes them as ``NaN``/``Infinity``).

        Examples
        --------
        >>> import json, mseplug
        >>> acc = mseplug.Accumulator("huber", delta=2.0)
        >>> acc.update([0.0, 0.0], [1.0, 4.0])
        >>> state = acc.state_dict()
        >>> state["loss"], state["params"], state["total"], state["count"]
        ('huber', {'delta': 2.0}, [6.5], 2)
        >>> restored = mseplug.Accumulator.from_state_dict(json.loads(json.dumps(state)))
        >>> float(restored.compute()) == float(acc.compute())
        True
        """
        options = self.options
        if not is_registered(options.loss):
            raise ValueError(
                f"loss {options.loss.name!r} is not registered, so a state cannot name it; "
                "register it with mseplug.register_loss first"
            )
        multioutput = options.multioutput
        total = weight = None
        exponent = self.exponent
        if self.total is not None:
            total, weight, exponent = self._host_statistics("state_dict")
        return {
            "version": STATE_VERSION,
            "loss": options.loss.name,
            "params": {name: float(value) for name, value in options.param_dict.items()},
            "multioutput": multioutput if isinstance(multioutput, str) else multioutput.tolist(),
            "nan_policy": options.nan_policy,
            "output_shape": None if self.output_shape is None else list(self.output_shape),
            "total": None if total is None else _plain(total),
            "weight": None if weight is None else weight.tolist(),
            "count": int(self.count),
            "weight_exponent": int(exponent),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Accumulator:
        """An Accumulator from :meth:`state_dict`'s dictionary (checked)."""
        state = checked_state(state)
        accumulator = cls(state["loss"], multioutput=state["multioutput"],
                          nan_policy=state["nan_policy"], **state["params"])
        if state["total"] is not None:
            total, weight, shape = state_statistics(state, accumulator.options)
            accumulator._add(total, weight, state["weight_exponent"], state["count"], shape,
                             merging=True)
        return accumulator

    def _host_statistics(self, what: str) -> tuple[np.ndarray, np.ndarray, int]:
        """``(S, W, exponent)`` as NumPy float64 and an int: for a torch state, the one read
        of the device, which raises any deferred check's error first (``what`` names the
        method in the messages)."""
        accumulate = _torch_accumulate
        if accumulate is not None and accumulate.is_torch_state(self.total):
            return accumulate.host_state(self, what)
        return self.total, self.weight, int(self.exponent)

    def empty_copy(self) -> Accumulator:
        """A new Accumulator with these options and no samples."""
        copy = object.__new__(type(self))
        copy.options = self.options
        copy.reset()
        return copy


_torch_accumulate: Any = None  # mseplug.streaming.torch_state, once torch is imported


def _torch_module() -> Any:
    """The torch state's module when torch is imported (never imports torch)."""
    global _torch_accumulate
    if _torch_accumulate is None and "torch" in sys.modules:
        from mseplug.streaming import torch_state

        _torch_accumulate = torch_state
    return _torch_accumulate


def _sqrt(xp: Any, x: Any) -> Any:
    return xp.sqrt(x)


def _warn_if_overflowed(backend: Any, checked: Any) -> None:
    """A LossOverflowWarning when a batch's float64 sums are inf although no input is."""
    xp = backend.namespace(checked.y_pred)
    infinite = [xp.any(xp.isinf(x)) for x in (checked.y_true, checked.y_pred)
                if backend.kind(xp, x.dtype) == "f"]
    if not any(bool(np.asarray(flag)) for flag in backend.fetch(tuple(infinite))):
        _overflow.warn("float64")


def _plain(total: Any) -> Any:
    """Statistics as lists: ``S``, or a loss's named statistics as a dict of lists."""
    if isinstance(total, dict):
        return {key: value.tolist() for key, value in total.items()}
    return total.tolist()


def _float64(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float64).reshape(-1)
