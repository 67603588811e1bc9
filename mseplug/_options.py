"""The options of one loss call, checked once and carried as one small immutable value."""

from __future__ import annotations

from typing import Any, NamedTuple

from mseplug import _validation as v
from mseplug._losses import LOSSES, Loss


class Options(NamedTuple):
    """What to compute: the loss, its ``delta``, and how to reduce and treat NaN.

    ``multioutput`` is ``"uniform_average"``, ``"raw_values"`` or the user's
    output weights as given; the weights are checked against the output
    shape once the inputs are known (:func:`output_weights`).
    """

    loss: Loss
    delta: float
    reduction: str
    nan_policy: str
    multioutput: Any

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


_DEFAULTS: dict[str, Options] = {
    name: Options(loss, 1.0, "mean", "propagate", "uniform_average") for name, loss in LOSSES.items()
}


def make_options(
    loss: str,
    *,
    multioutput: Any = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    delta: Any = 1.0,
) -> Options:
    """Check every option and return them as :class:`Options` (cached for the defaults)."""
    if (
        reduction == "mean"
        and nan_policy == "propagate"
        and delta == 1.0
        and isinstance(multioutput, str)
        and multioutput == "uniform_average"
        and loss in _DEFAULTS
    ):
        return _DEFAULTS[loss]
    spec = LOSSES[v.check_choice("loss", loss, v.LOSS_NAMES)]
    v.check_choice("reduction", reduction, v.REDUCTIONS)
    v.check_choice("nan_policy", nan_policy, v.NAN_POLICIES)
    if isinstance(multioutput, str):
        v.check_choice("multioutput", multioutput, v.MULTIOUTPUT_MODES)
    elif multioutput is None:
        raise TypeError("multioutput must be 'uniform_average', 'raw_values' or output weights; got None")
    elif reduction == "none":
        raise ValueError("multioutput output weights do not apply with reduction='none'")
    if spec.root and reduction != "mean":
        raise ValueError(f"rmse needs reduction='mean' (a root of a sum is no RMSE); got {reduction!r}")
    return Options(spec, v.check_delta(delta), reduction, nan_policy, multioutput)
