"""``LossMetric``: one loss as a metric function returning a Python float, for the scorers.

It needs no scikit-learn: a scorer pickles as this metric plus scikit-learn's wrapper.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from mseplug.api.registry import loss_function
from mseplug.loss.record import Loss


class LossMetric:
    """The metric a scorer calls: one loss as a function returning a Python float.

    It pickles with its loss's definition (so ``n_jobs > 1`` works for any loss
    whose functions pickle) and reads ``mse`` in a scorer's repr.
    """

    def __init__(self, loss: Loss) -> None:
        self.loss = loss
        self.__name__ = loss.name
        self._function = loss_function(loss)

    def __call__(self, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
                 **options: Any) -> float:
        value = float(self._function(y_true, y_pred, sample_weight=sample_weight, **options))
        if math.isnan(value):
            _warn_nan_score(self.loss.name, y_true, y_pred)
        return value

    def __repr__(self) -> str:
        return self.loss.name

    def __reduce__(self) -> Any:
        return (_metric, (self.loss.fields(),))


def _has_nan(x: Any) -> bool:
    try:
        return bool(np.isnan(np.asarray(x, dtype=np.float64)).any())
    except (TypeError, ValueError, RuntimeError):  # on an accelerator, say: no verdict
        return False


def _warn_nan_score(name: str, y_true: Any, y_pred: Any) -> None:
    """Warn, as scikit-learn's scorers do when NaN input makes them fail, that a score is NaN."""
    culprits = [label for label, x in (("y_pred", y_pred), ("y_true", y_true)) if _has_nan(x)]
    verb = "contains" if len(culprits) == 1 else "contain"
    cause = f"{' and '.join(culprits)} {verb} NaN" if culprits else "an output has no data left"
    warnings.warn(
        f"Scoring with mseplug's {name!r} gave NaN: {cause}. The score on this train-test "
        "partition will be NaN. Make the scorer with nan_policy='omit' to drop NaN samples "
        f"(make_scorer({name!r}, nan_policy='omit')) or 'raise' to stop at them.",
        UserWarning,
        stacklevel=3,
    )


def _metric(fields: dict[str, Any]) -> LossMetric:
    return LossMetric(Loss(**fields))
