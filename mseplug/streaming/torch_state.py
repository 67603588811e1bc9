"""The :class:`~mseplug.Accumulator`'s torch state: statistics that stay on the batch's device.

A torch batch never reads a value back to the host here, so an update is no
device sync (on a GPU, no stall of the training loop): the statistics
``S``, ``W`` (float64 tensors of shape ``(K,)``) and, once a weighted batch
arrived, the weight exponent (an int64 0-d tensor) live on the batch's
device; the count of samples is a shape, a Python int. What needs a value
(NaN under ``nan_policy="raise"``, sample weights finite and ``>= 0``, a
loss's domain, the overflow warning) is recorded as device flags in
:class:`DeferredChecks` and raised or warned at the accumulator's next read.

Two ways in, with the same numbers bit for bit (the tests assert it):

- :func:`lean_update`: 1-D float32/float64 tensors of one shape, dtype and
  device (sample weights 1-D, on that device), a loss without a domain,
  ``nan_policy`` ``"propagate"`` or ``"raise"``. It runs the engine's own op
  sequence in float64 without the general checks; for MSE and MAE that is one
  fused kernel, ``mse_loss``/``l1_loss`` with ``reduction="sum"``.
- :func:`engine_update`: anything else, through the engine's checks (shapes
  and dtypes, eagerly) and statistics kernel, with value checks deferred.

Weights are scaled by powers of two on the device (:func:`weight_exponent`,
:func:`times_power_of_two`), as the engine scales them on the host, so
weights of ``1e300`` or ``1e-300`` keep exact means.

Examples
--------
>>> import torch, mseplug
>>> acc = mseplug.Accumulator("mse")
>>> acc.update(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 3.0]))
>>> acc.total, acc.weight, acc.count
(tensor([10.], dtype=torch.float64), tensor([2.], dtype=torch.float64), 2)
>>> float(acc.compute())
5.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mseplug.backend.torch import kernels as K
from mseplug.backend.torch.backend import TorchBackend
from mseplug.engine import overflow as _overflow
from mseplug.engine import pipeline
from mseplug.engine import validation as v
from mseplug.streaming.state import joined_shape

Tensor = torch.Tensor
F64 = torch.float64
#: ``2**±2044`` is reached in two steps of factors ``2**±1022`` (normal float64 numbers); any
#: shift beyond it takes a float64 to 0 or inf anyway.
_SHIFT_LIMIT = 2044
_SUM = K.REDUCTION["sum"]
#: Dimensions a deferred domain error can name a position in (more: the first ones only).
_MAX_DIMS = 8


def power_of_two(exponent: Tensor) -> Tensor:
    """``2**exponent`` as float64 for an int64 tensor in ``[-1022, 1023]``, exactly (its bits)."""
    return torch.bitwise_left_shift(exponent + 1023, 52).view(F64)


def times_power_of_two(x: Tensor, exponent: Tensor) -> Tensor:
    """``x · 2**exponent`` for an int64 0-d tensor ``exponent``, on ``x``'s device: exact unless
    the result itself under- or overflows (as :func:`mseplug.engine.finalize.times_power_of_two`).

    Examples
    --------
    >>> x = torch.tensor([3.0], dtype=torch.float64)
    >>> times_power_of_two(x, torch.tensor(-1100)).item() == 3.0 * 2.0**-550 * 2.0**-550
    True
    """
    exponent = exponent.clamp(-_SHIFT_LIMIT, _SHIFT_LIMIT)
    half = torch.div(exponent, 2, rounding_mode="floor")
    return x * power_of_two(exponent - half) * power_of_two(half)


def weight_exponent(weight: Tensor) -> Tensor:
    """:func:`mseplug.engine.finalize.weight_exponent` of non-empty float64 weights, on their
    device: 0 when they sum to within ``[2**-32, 2**32]`` (or not to a positive number), else
    the binary exponent of their sum (of their largest when the sum overflows)."""
    total = weight.sum()
    base = torch.where(torch.isfinite(total), total, weight.max())
    exponent = torch.frexp(base).exponent.to(torch.int64)
    plain = ((total >= 2.0**-32) & (total <= 2.0**32)) | ~(total > 0)
    return torch.where(plain, torch.zeros_like(exponent), exponent)


def _nonfinite(*arrays: Tensor) -> Tensor:
    """Whether any element of ``arrays`` is NaN or infinite (a 0-d bool tensor)."""
    finite = torch.isfinite(arrays[0]).all()
    for array in arrays[1:]:
        finite = finite & torch.isfinite(array).all()
    return ~finite


class DeferredChecks:
    """Value checks of torch batches, kept as device flags until the accumulator is read.

    ``flags[key]`` is a 0-d bool tensor (OR-ed over updates) and ``values[key]``
    the first offending value where the error names one. ``watch`` says
    whether the overflow warning needs ``nonfinite`` (a 0-d bool: an input was
    NaN or infinite), which is tracked from the first batch that could
    overflow float64 (see :func:`narrow`): before it, statistics of float32
    inputs are inf only where an input was.
    """

    #: The order errors are raised in at a read.
    ORDER = ("nan y_true", "nan y_pred", "domain y_true", "domain y_pred",
             "weight nonfinite", "weight negative")

    def __init__(self) -> None:
        self.flags: dict[str, Tensor] = {}
        self.values: dict[str, Tensor] = {}
        self.watch = False
        self.nonfinite: Tensor | None = None
        self.warned = False

    def flag(self, key: str, bad: Tensor, value: Tensor | None = None) -> None:
        """Record ``bad`` (a 0-d bool) for ``key``, and ``value`` if it is the first."""
        old = self.flags.get(key)
        if old is None:
            self.flags[key] = bad
            if value is not None:
                self.values[key] = value
            return
        if value is not None:
            self.values[key] = torch.where(old, self.values[key], value)
        self.flags[key] = old | bad

    def watch_from(self, total: Tensor | None, weight: Tensor | None, device: torch.device
                   ) -> None:
        """Start tracking non-finite inputs (if not yet). Statistics seen so far (``total``,
        ``weight``, or none) came from narrow batches or a restored state, so they count as
        non-finite inputs where they are not finite: an overflow there is not warned again."""
        if not self.watch:
            self.watch = True
            self.nonfinite = (torch.zeros((), dtype=torch.bool, device=device) if total is None
                              else _nonfinite(total, *(() if weight is None else (weight,))))

    def note_inputs(self, nonfinite: Tensor) -> None:
        assert self.nonfinite is not None
        self.nonfinite = self.nonfinite | nonfinite

    def moved(self, device: torch.device) -> DeferredChecks:
        """These checks with every tensor on ``device``."""
        copy = DeferredChecks()
        copy.flags = {key: flag.to(device) for key, flag in self.flags.items()}
        copy.values = {key: value.to(device) for key, value in self.values.items()}
        copy.watch, copy.warned = self.watch, self.warned
        copy.nonfinite = None if self.nonfinite is None else self.nonfinite.to(device)
        return copy

    def settle(self, acc: Any, what: str) -> None:
        """Read every flag in one transfer; raise the first failed check's error (naming the
        argument as an eager check does) or warn of an overflow."""
        total, weight = acc.total, acc.weight
        if total.is_meta:
            raise ValueError(
                f"Accumulator.{what}(): the statistics are on the meta device, which holds no "
                "values; update with tensors on a real device (cpu, cuda, ...) to read them")
        keys = [key for key in self.ORDER if key in self.flags]
        parts = [self.flags[key].to(F64).reshape(1) for key in keys]
        valued = [key for key in keys if key in self.values]
        parts += [self.values[key].to(F64).reshape(-1) for key in valued]
        overflow = self.watch and not self.warned
        if overflow:
            assert self.nonfinite is not None
            parts.append((_nonfinite(total, weight) & ~self.nonfinite).to(F64).reshape(1))
        if not parts:
            return
        read = torch.cat(parts).tolist()  # the one transfer
        flags = dict(zip(keys, read))
        values, at = {}, len(keys)
        for key in valued:
            size = self.values[key].numel()
            values[key], at = read[at:at + size], at + size
        for key in keys:
            if flags[key]:
                raise _deferred_error(acc.options, key, values.get(key))
        if overflow and read[-1]:
            self.warned = True
            _overflow.warn("float64")


def _deferred_error(options: Any, key: str, value: list[float] | None) -> ValueError:
    """The eager check's error for a failed deferred one; ``value``: the first offending value
    (and for a domain, its coordinates in its batch, -1 past the batch's dimensions)."""
    check, name = key.split(" ")
    if check == "nan":
        error = v.nan_error(name)
    elif check == "domain":
        assert value is not None
        bound = options.loss.bounds(options.params)[name]
        coordinates = [str(int(c)) for c in value[1:] if c >= 0]
        position = f"[{', '.join(coordinates)}]" if coordinates else ""
        error = ValueError(f"{options.loss.name} is defined for {name} {bound.describe()}; "
                           f"{name}{position} is {value[0]:g}")
    elif name == "nonfinite":
        error = ValueError("sample_weight has NaN or infinite values; weights must be finite")
    else:
        error = ValueError(f"sample_weight has negative values (min {value[0] if value else ''})"
                           "; weights must be >= 0")
    return ValueError(
        f"{error} (found in a batch given to Accumulator.update, which checks values at the "
        "next read instead of syncing the device; the accumulator holds that batch: reset() it)")


def checks_of(acc: Any) -> DeferredChecks:
    checks = acc._deferred
    if checks is None:
        checks = acc._deferred = DeferredChecks()
    return checks


def narrow(options: Any, dtype: torch.dtype) -> bool:
    """Whether statistics of this batch cannot overflow float64 from finite inputs: a built-in
    loss with a native kernel (squares, absolute values, Huber) of inputs no wider than float32,
    computed in float64 (``r² <= 4.7e77``; weights are scaled to sum near 1)."""
    return dtype.itemsize <= 4 and K.native_kernel(options.loss) is not None


# -- updates ------------------------------------------------------------------------------------
_BACKEND: TorchBackend | None = None


def _torch_backend() -> TorchBackend:
    global _BACKEND
    if _BACKEND is None:
        from mseplug.api.backends import backend_named

        _BACKEND = backend_named("torch")  # type: ignore[assignment]
    assert _BACKEND is not None
    return _BACKEND


class _Deferring(TorchBackend):
    """The torch backend with no value read: shapes and dtypes are checked, values are left
    to :class:`DeferredChecks` and weights to the device scaling here."""

    def readable(self, x: Any) -> bool:
        return False

    def checks_weights(self, weight: Any) -> bool:
        return False


_DEFERRING: _Deferring | None = None


def _deferring() -> _Deferring:
    global _DEFERRING
    if _DEFERRING is None:
        _DEFERRING = _Deferring()
    return _DEFERRING


def _detached(x: Any) -> Any:
    return x.detach() if isinstance(x, Tensor) and x.requires_grad else x


def lean_update(acc: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> bool:
    """Add a plain torch batch (see the module docstring) in a few kernels; ``False`` (nothing
    done) for any other batch, which takes :func:`engine_update`."""
    options = acc.options
    if not (
        isinstance(y_pred, Tensor) and isinstance(y_true, Tensor)
        and y_pred.ndim == 1 and y_true.shape == y_pred.shape
        and y_true.dtype is y_pred.dtype and y_pred.dtype in K.NATIVE_DTYPES
        and ((y_true.is_cpu and y_pred.is_cpu) or y_true.device == y_pred.device)
        and y_pred.shape[0]
        and options.nan_policy != "omit" and options.loss.domain is None
        and isinstance(options.multioutput, str)
        and acc.output_shape in (None, ())
    ):
        return False
    if sample_weight is not None and not (
        isinstance(sample_weight, Tensor) and sample_weight.shape == y_pred.shape
        and sample_weight.dtype.is_floating_point and sample_weight.device == y_pred.device
    ):
        return False
    if y_pred.requires_grad:
        y_pred = y_pred.detach()
    if y_true.requires_grad:
        y_true = y_true.detach()
    n = y_pred.shape[0]
    t64, p64 = y_true.to(F64), y_pred.to(F64)
    loss = options.loss
    native = K.native_kernel(loss)
    if sample_weight is None and native is not None and native.fused is not None:
        # mse_loss / l1_loss summing in float64: the engine's r*r (|r|) and sum, bit for bit.
        total = native.fused(p64, t64, _SUM, options.params)
        weight: Any = n
        exponent: Any = 0
    else:
        backend = _torch_backend()
        losses = backend.elementwise(backend.namespace(p64), loss, t64.view(n, 1),
                                     p64.view(n, 1), options.params)
        if sample_weight is None:
            weight, exponent = n, 0
        else:
            w = _detached(sample_weight).to(F64)
            _check_weights(checks_of(acc), w)
            exponent = weight_exponent(w)
            w = times_power_of_two(w, -exponent)
            losses = losses * w[:, None]
            weight = torch.zeros(1, dtype=F64, device=w.device) + torch.sum(w, dtype=F64)
        total = torch.sum(losses, 0, dtype=F64)
    if options.nan_policy == "raise":
        checks = checks_of(acc)
        checks.flag("nan y_true", torch.isnan(y_true).any())
        checks.flag("nan y_pred", torch.isnan(y_pred).any())
    state = acc.total
    if narrow(options, y_pred.dtype):
        if (isinstance(exponent, int) and exponent == 0
                and isinstance(acc.exponent, int) and acc.exponent == 0
                and isinstance(state, Tensor)
                and ((state.is_cpu and total.is_cpu) or state.device == total.device)
                and (acc._deferred is None or not acc._deferred.watch)):
            # The common step: both in the weights' own units, nothing to watch.
            acc.total = state + total
            acc.weight = acc.weight + weight
            acc.count += n
            return True
        add(acc, total, weight, exponent, n, (), wide=None)
    else:
        add(acc, total, weight, exponent, n, (), wide=_nonfinite(y_true, y_pred))
    return True


def _check_weights(checks: DeferredChecks, weight: Tensor) -> None:
    """Record non-finite and negative float64 weights (as ``check_weight_values``)."""
    checks.flag("weight nonfinite", _nonfinite(weight))
    smallest = weight.min()
    checks.flag("weight negative", smallest < 0, smallest)


def engine_update(acc: Any, y_true: Any, y_pred: Any, sample_weight: Any) -> None:
    """Add any torch batch through the engine: shapes and dtypes checked now (a ``ValueError``
    or ``TypeError`` as the loss functions raise), values recorded for the next read."""
    options = acc.options
    backend = _deferring()
    checked = pipeline.check(backend, options, _detached(y_true), _detached(y_pred),
                             _detached(sample_weight), partial=True)
    n, shape = checked.shape[0], checked.shape[1:]
    if n == 0:
        return
    if acc.output_shape is not None:
        joined_shape(acc.output_shape, shape, False)  # raises before anything is recorded
    checks = checks_of(acc)
    if options.nan_policy == "raise":
        for name, array in (("y_true", checked.y_true), ("y_pred", checked.y_pred)):
            if array.dtype.is_floating_point:
                checks.flag(f"nan {name}", torch.isnan(array).any())
    if options.loss.domain is not None:
        for name, bound in options.loss.bounds(options.params).items():
            array = checked.y_true if name == "y_true" else checked.y_pred
            outside = (array < bound.low if bound.inclusive else array <= bound.low).reshape(-1)
            flat = outside.to(torch.int8).argmax().reshape(1)  # no host read (indexing is one)
            first = array.reshape(-1).index_select(0, flat).to(F64)
            coordinates = []
            for size in reversed(tuple(array.shape)):
                coordinates.append(flat % size)
                flat = torch.div(flat, size, rounding_mode="floor")
            padding = torch.full((_MAX_DIMS - len(coordinates),), -1.0, dtype=F64,
                                 device=first.device)
            checks.flag(f"domain {name}", outside.any(),
                        torch.cat([first, *(c.to(F64) for c in reversed(coordinates)), padding]))
    exponent: Any = 0
    if checked.sample_weight is not None:
        w = checked.sample_weight.to(F64)
        _check_weights(checks, w)
        exponent = weight_exponent(w)
        checked = checked._replace(sample_weight=times_power_of_two(w, -exponent))
    statistics = backend.statistics(options, checked)
    dtype = backend.result_dtype(backend.namespace(checked.y_pred), checked.y_true.dtype,
                                 checked.y_pred.dtype)
    wide = None if narrow(options, dtype) else _nonfinite(checked.y_true, checked.y_pred)
    add(acc, statistics.total, statistics.weight, exponent, n, shape, wide=wide)


# -- the state ----------------------------------------------------------------------------------
def _on(x: Any, device: torch.device) -> Tensor:
    """A state part (NumPy float64, a tensor, or an int exponent) as a tensor on ``device``."""
    if isinstance(x, Tensor):
        return x.to(device)
    if isinstance(x, (int, np.integer)):
        return torch.tensor(int(x), dtype=torch.int64, device=device)
    return torch.as_tensor(np.array(x, dtype=np.float64), device=device)  # a copy: writable


def add(acc: Any, total: Any, weight: Any, exponent: Any, count: int, shape: tuple[int, ...],
        *, wide: Tensor | None, merging: bool = False, owned: bool = True) -> None:
    """Add statistics in units of weights divided by ``2**exponent`` into ``acc``'s torch state.

    ``weight`` may be an int (unit weights: a count); ``exponent`` an int (known on the host)
    or an int64 0-d tensor. A state on the host (restored, or from NumPy batches), or none,
    adopts the device of a tensor ``total``. ``wide``: ``None`` for a narrow batch (see
    :func:`narrow`), else whether its inputs were non-finite.
    """
    state = acc.total
    joined = shape if state is None else joined_shape(acc.output_shape, shape, merging)
    device = state.device if isinstance(state, Tensor) else total.device
    weight_tensor = None if isinstance(weight, int) else _on(weight, device)
    total = _on(total, device)
    checks = checks_of(acc)
    if state is None:
        if wide is not None:
            checks.watch_from(None, None, device)
            checks.note_inputs(wide)
        acc.total = total.reshape(-1) if owned else total.reshape(-1).clone()
        if weight_tensor is None:
            acc.weight = torch.full_like(acc.total, weight)
        else:
            acc.weight = weight_tensor.reshape(-1) if owned else weight_tensor.reshape(-1).clone()
        acc.exponent = exponent if isinstance(exponent, int) else exponent.to(device)
        acc.output_shape = joined
        acc.count += count
        return
    if not isinstance(state, Tensor):
        acc.total, acc.weight = _on(state, device), _on(acc.weight, device)
        checks.watch_from(acc.total, acc.weight, device)
    if wide is not None:
        checks.watch_from(acc.total, acc.weight, device)
        checks.note_inputs(wide)
    elif checks.watch:
        checks.note_inputs(_nonfinite(total))
    mine, theirs = acc.exponent, exponent
    if isinstance(mine, int) and isinstance(theirs, int) and mine == theirs:
        acc.total = acc.total + total
        acc.weight = acc.weight + (weight if weight_tensor is None else weight_tensor)
    else:
        mine, theirs = _on(mine, device), _on(theirs, device)
        common = torch.maximum(mine, theirs)
        added = weight_tensor if weight_tensor is not None else torch.full_like(acc.weight, weight)
        acc.total = (times_power_of_two(acc.total, mine - common)
                     + times_power_of_two(total, theirs - common))
        acc.weight = (times_power_of_two(acc.weight, mine - common)
                      + times_power_of_two(added, theirs - common))
        acc.exponent = common
    acc.output_shape = joined
    acc.count += count


def merge(acc: Any, other: Any) -> None:
    """Add ``other``'s state into ``acc``'s on the device (one of them holds tensors, the other
    tensors or NumPy); deferred checks travel with the statistics."""
    device = acc.total.device if isinstance(acc.total, Tensor) else other.total.device
    theirs = None if other._deferred is None else other._deferred.moved(device)
    total, weight = _on(other.total, device), _on(other.weight, device)
    if not isinstance(other.total, Tensor):
        wide: Tensor | None = _nonfinite(total, weight)  # a host state: taken as it is
    elif theirs is not None and theirs.watch:
        assert theirs.nonfinite is not None
        wide = theirs.nonfinite
    else:
        wide = None  # statistics of narrow batches only
    add(acc, total, weight, other.exponent, other.count, other.output_shape, wide=wide,
        merging=True, owned=False)
    if theirs is not None:
        checks = checks_of(acc)
        for key in theirs.flags:
            checks.flag(key, theirs.flags[key], theirs.values.get(key))


def is_torch_state(x: Any) -> bool:
    """Whether a state part is a tensor (the state lives on a torch device)."""
    return isinstance(x, Tensor)


def host_nonfinite(total: Any, weight: Any) -> Tensor | None:
    """For host statistics joining a torch state: whether they are not finite (taken as they
    are, never warned about), as a tensor; ``None`` for tensors (their own batch said)."""
    if isinstance(total, Tensor):
        return None
    finite = bool(np.isfinite(total).all() and np.isfinite(weight).all())
    return torch.tensor(not finite)


def host_state(acc: Any, what: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(S, W, exponent)`` of a torch state as NumPy float64 and an int, after raising any
    deferred check's error: the one read of the device."""
    if acc._deferred is not None:
        acc._deferred.settle(acc, what)
    elif acc.total.is_meta:
        DeferredChecks().settle(acc, what)
    exponent = acc.exponent
    parts = [acc.total, acc.weight]
    if isinstance(exponent, Tensor):
        parts.append(exponent.to(F64).reshape(1))
    flat = torch.cat(parts).cpu().numpy()
    k = acc.total.shape[0]
    if isinstance(exponent, Tensor):
        exponent = int(flat[2 * k])
    return flat[:k].copy(), flat[k:2 * k].copy(), int(exponent)

