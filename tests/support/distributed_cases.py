"""Data and options shared by the distributed tests (also imported by their subprocesses).

The Cauchy loss here is a loss the way a user adds one: a ``Loss`` record
registered with ``mseplug.register_loss``. ``cases()`` covers every loss
mseplug knows (from ``mseplug.losses()``) with each option the statistics
must carry: sample weights, output weights, raw values and ``omit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mseplug
from mseplug.loss.statistics import layout

CAUCHY = "cauchy_example"


def _cauchy(xp: Any, r: Any) -> Any:
    return xp.log1p(r * r)


def _cauchy_derivative(xp: Any, r: Any) -> Any:
    return 2 * r / (1 + r * r)


def register_cauchy() -> str:
    """Register the example loss in this process (once); returns its name."""
    if CAUCHY not in mseplug.losses():
        mseplug.register_loss(mseplug.Loss(CAUCHY, _cauchy, _cauchy_derivative))
    return CAUCHY


def unregister_cauchy() -> None:
    """Undo :func:`register_cauchy` (tests share one process; the registry has no public undo)."""
    from mseplug.api import registry as _loss_registry

    _loss_registry._records.pop(CAUCHY, None)
    _loss_registry._functions.pop(CAUCHY, None)


#: Options each loss is checked with; the values are made by :func:`data`.
OPTIONS = ("plain", "weighted", "output_weights", "raw_values", "omit")


def params(loss: str) -> dict[str, float]:
    """A parameter value other than the default for each parameter (inside its bounds)."""
    record = mseplug.get_loss(loss).loss
    chosen = {}
    for name, spec in record.params.items():
        high = spec.high if np.isfinite(spec.high) else spec.default + 1
        chosen[name] = float(spec.default + 0.3 * (high - spec.default))
        if spec.check is not None and spec.check(chosen[name]):  # a gap (Tweedie's power)
            chosen[name] = spec.default + 1.5
    return chosen


def applies(loss: str, option: str) -> bool:
    """Whether ``loss`` takes the inputs of ``option`` in parts: a loss with statistics of its own
    may refuse sample weights or several outputs (max_error, as scikit-learn's), or parts at all
    (a median is not decomposable: one call only), properties of its record."""
    spec = mseplug.get_loss(loss).loss.statistics
    if spec is None:
        return True
    if any(how == "none" for _, how in layout(spec)):
        return False
    if not spec.sample_weight and option in ("weighted", "omit"):
        return False
    return spec.multioutput or option not in ("output_weights", "raw_values")


def outputs(loss: str) -> int:
    """The outputs of the cases of ``loss``: 3, or 1 for a loss that takes one output."""
    spec = mseplug.get_loss(loss).loss.statistics
    return 1 if spec is not None and not spec.multioutput else 3


def data(option: str, n: int = 1337, outputs: int = 3, seed: int = 7,
         loss: str | None = None) -> dict[str, Any]:
    """``y_true``, ``y_pred`` (float64 NumPy), the sample weights or ``None`` and the keywords
    of the one-shot call, for one of :data:`OPTIONS`, inside ``loss``'s domain when given. Later
    rows have larger errors, so shards of unequal size have unequal losses."""
    from loss_table import in_domain

    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(n, outputs))
    scale = np.linspace(0.5, 3.0, n)[:, None]
    y_pred = y_true + rng.normal(size=(n, outputs)) * scale
    if loss is not None and loss in mseplug.losses():
        y_true, y_pred = in_domain(loss, y_true, y_pred)
    weight = rng.uniform(0.1, 2.0, size=n) if option in ("weighted", "omit") else None
    keywords: dict[str, Any] = {}
    nan_policy = "propagate"
    if option == "output_weights":
        keywords["multioutput"] = [0.2, 0.5, 0.3]
    elif option == "raw_values":
        keywords["multioutput"] = "raw_values"
    elif option == "omit":
        y_true[rng.choice(n, 40, replace=False), rng.integers(0, outputs, 40)] = np.nan
        y_pred[rng.choice(n, 40, replace=False), rng.integers(0, outputs, 40)] = np.nan
        nan_policy = "omit"
    return {"y_true": y_true, "y_pred": y_pred, "sample_weight": weight,
            "multioutput": keywords.get("multioutput", "uniform_average"), "nan_policy": nan_policy}


def one_shot(loss: str, case: dict[str, Any], **extra: Any) -> np.ndarray:
    """The one-shot NumPy value of ``loss`` on a whole case, float64."""
    value = mseplug.get_loss(loss)(
        case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
        multioutput=case["multioutput"], nan_policy=case["nan_policy"], **extra,
    )
    return np.asarray(value, dtype=np.float64)


def relative_error(got: Any, expected: Any) -> float:
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)))
