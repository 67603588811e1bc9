"""The four losses as data: an elementwise function, its derivative, and whether to take a root.

Each function works on any Array API namespace ``xp`` and a residual
``r = y_pred - y_true``. Backends with faster native kernels use these as the
definition to agree with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Elementwise = Callable[[Any, Any, float], Any]


def _squared(xp: Any, r: Any, delta: float) -> Any:
    return r * r


def _squared_derivative(xp: Any, r: Any, delta: float) -> Any:
    return 2 * r


def _absolute(xp: Any, r: Any, delta: float) -> Any:
    return xp.abs(r)


def _absolute_derivative(xp: Any, r: Any, delta: float) -> Any:
    # sign(0) == 0: the subgradient convention shared by every backend.
    return xp.sign(r)


def _huber(xp: Any, r: Any, delta: float) -> Any:
    # With a = |r| and m = min(a, delta): m**2 / 2 + delta * (a - m) is a**2 / 2 inside
    # the band and delta * (a - delta / 2) outside it, with no branch. Written so that
    # autodiff gives delta * sign(r) even at r = ±inf (m * (a - m / 2) would give inf * 0).
    a = xp.abs(r)
    m = xp.minimum(a, xp.asarray(delta, dtype=a.dtype))
    return 0.5 * (m * m) + delta * (a - m)


def _huber_derivative(xp: Any, r: Any, delta: float) -> Any:
    return xp.clip(r, -delta, delta)


@dataclass(frozen=True)
class Loss:
    """One loss: ``elementwise(xp, r, delta)``, ``derivative(xp, r, delta)`` and ``root``.

    ``root`` is RMSE's square root of each output's mean, taken before the
    outputs are combined (as scikit-learn's ``root_mean_squared_error``).
    """

    name: str
    elementwise: Elementwise
    derivative: Elementwise
    root: bool = False


MSE = Loss("mse", _squared, _squared_derivative)
MAE = Loss("mae", _absolute, _absolute_derivative)
RMSE = Loss("rmse", _squared, _squared_derivative, root=True)
HUBER = Loss("huber", _huber, _huber_derivative)

LOSSES: dict[str, Loss] = {loss.name: loss for loss in (MSE, MAE, RMSE, HUBER)}
