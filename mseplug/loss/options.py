"""The options of one loss call, checked once and carried as one small immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeVar

from mseplug._typing import (
    MULTIOUTPUT_MODES,
    NAN_POLICIES,
    REDUCTIONS,
    Multioutput,
    NanPolicy,
    Reduction,
)
from mseplug.loss.record import Loss

Choice = TypeVar("Choice", bound=str)

#: Stand-in for output weights in a hashable (static) ``Options``; the weights travel as an array.
WEIGHTED = ("output weights",)


class Options(NamedTuple):
    """What to compute: the loss, its parameter values, and how to reduce and treat NaN.

    ``multioutput`` is ``"uniform_average"``, ``"raw_values"`` or the user's
    output weights as given (checked against the output shape once the
    inputs are known). ``params`` are the loss's parameter values in its
    declaration order.
    """

    loss: Loss
    reduction: Reduction
    nan_policy: NanPolicy
    multioutput: Multioutput
    params: tuple[Any, ...]

    @property
    def weighted_outputs(self) -> bool:
        """Whether ``multioutput`` holds output weights (not one of the mode strings)."""
        return not isinstance(self.multioutput, str)

    @property
    def raw(self) -> bool:
        """Whether each output gets its own value (``multioutput="raw_values"``)."""
        return isinstance(self.multioutput, str) and self.multioutput == "raw_values"

    @property
    def uniform(self) -> bool:
        """Whether outputs combine by their plain mean (or plain sum), the default."""
        return isinstance(self.multioutput, str) and self.multioutput == "uniform_average"

    @property
    def param_dict(self) -> dict[str, Any]:
        """The parameter values by name."""
        return dict(zip(self.loss.params, self.params))

    def static(self) -> Options:
        """The hashable part, for caches of compiled kernels: no weights, no parameter values.

        ``"raise"`` computes as ``"propagate"`` (its check runs before the kernel).
        """
        nan_policy = "propagate" if self.nan_policy == "raise" else self.nan_policy
        multioutput = WEIGHTED if self.weighted_outputs else self.multioutput
        return Options(self.loss, self.reduction, nan_policy, multioutput, ())


_cache: dict[tuple[Any, ...], Options] = {}
_CACHE_SIZE = 1024


def make_options(
    loss: Loss,
    *,
    multioutput: Multioutput = "uniform_average",
    reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate",
    params: Mapping[str, Any] | None = None,
) -> Options:
    """Check every option and the loss's parameters; return them as :class:`Options`.

    Calls with string options and plain-number parameters are cached, so a
    repeated call costs one dictionary lookup.
    """
    items = tuple(params.items()) if params else ()
    key = None
    if isinstance(multioutput, str) and all(type(value) is float for _, value in items):
        # id(loss): the cached Options holds the loss, so the id cannot be reused meanwhile.
        key = (id(loss), multioutput, reduction, nan_policy, items)
        try:
            return _cache[key]
        except (KeyError, TypeError):
            pass
    options = _check(loss, multioutput, reduction, nan_policy, dict(items))
    if key is not None and len(_cache) < _CACHE_SIZE:
        _cache[key] = options
    return options


def check_choice(name: str, value: object, allowed: tuple[Choice, ...]) -> Choice:
    """Return ``value`` (as the ``Literal`` type of ``allowed``) if it is one of ``allowed``,
    else raise a typed error naming ``name``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {allowed}; got {type(value).__name__}")
    for choice in allowed:
        if value == choice:
            return choice
    raise ValueError(f"{name}={value!r} is not one of {allowed}")


def _check(loss: Loss, multioutput: Any, reduction: object, nan_policy: object,
           params: dict[str, Any]) -> Options:
    reduction = check_choice("reduction", reduction, REDUCTIONS)
    nan_policy = check_choice("nan_policy", nan_policy, NAN_POLICIES)
    if isinstance(multioutput, str):
        multioutput = check_choice("multioutput", multioutput, MULTIOUTPUT_MODES)
    elif multioutput is None:
        raise TypeError("multioutput must be 'uniform_average', 'raw_values' or output weights; got None")
    elif reduction == "none":
        raise ValueError("multioutput output weights do not apply with reduction='none'")
    spec = loss.statistics
    if spec is not None and reduction != "mean":
        raise ValueError(f"{loss.name} is computed from its own statistics over all samples, so "
                         f"only reduction='mean' applies to it; got reduction={reduction!r}")
    variance_weighted = isinstance(multioutput, str) and multioutput == "variance_weighted"
    if variance_weighted and (spec is None or spec.output_weights is None):
        raise ValueError(f"multioutput='variance_weighted' weighs outputs by the variance of "
                         f"their targets, which {loss.name} does not use; give "
                         "'uniform_average', 'raw_values' or output weights")
    if loss.root and reduction != "mean":
        raise ValueError(
            f"{loss.name} takes the root of each output's mean, so it needs reduction='mean' "
            f"(a root of a sum is no {loss.name}); got {reduction!r}"
        )
    return Options(loss, reduction, nan_policy, multioutput, loss.check_params(params))
