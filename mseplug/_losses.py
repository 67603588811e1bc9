"""The built-in losses as data: small pure functions of the residual ``r = y_pred - y_true``.

Each function works on any Array API namespace ``xp``. A loss's derivative
is also its gradient convention on every backend: ``sign(0) == 0`` gives MAE
and pinball a zero subgradient at a zero residual, and torch and JAX
differentiate the derivative for Hessians. Native kernels (NumPy's blocked
sums, torch's fused losses) are optional speed-ups named in ``native``.
"""

from __future__ import annotations

import math

from mseplug._loss import Loss, Param
from mseplug._typing import Array, Namespace

_NUMPY = "mseplug._backends.numpy_kernels"
_TORCH = "mseplug._backends.torch_kernels"


def squared_error(xp: Namespace, r: Array) -> Array:
    """``e(r) = r²``."""
    return r * r


def squared_error_derivative(xp: Namespace, r: Array) -> Array:
    """``e'(r) = 2r``."""
    return 2 * r


def absolute_error(xp: Namespace, r: Array) -> Array:
    """``e(r) = |r|``."""
    return xp.abs(r)


def absolute_error_derivative(xp: Namespace, r: Array) -> Array:
    """``e'(r) = sign(r)``: the subgradient 0 at ``r = 0``, on every backend."""
    return xp.sign(r)


def huber(xp: Namespace, r: Array, delta: float) -> Array:
    """``e(r) = r²/2`` for ``|r| <= δ``, else ``δ(|r| - δ/2)``.

    Written as ``c²/2 + δ(|r| - |c|)`` with ``c = clip(r, -δ, δ)``: no branch,
    finite derivative ``δ·sign(r)`` at ``r = ±inf``, and second derivative 1
    at ``r = 0`` under plain autodiff too.
    """
    c = xp.clip(r, -delta, delta)
    return 0.5 * (c * c) + delta * (xp.abs(r) - xp.abs(c))


def huber_derivative(xp: Namespace, r: Array, delta: float) -> Array:
    """``e'(r) = clip(r, -δ, δ)``, written as a choice so that autodiff's second derivative at
    ``|r| == δ`` is 1 on every backend (the quadratic piece is closed, as torch's ``clamp``
    says; JAX's ``clip`` would split the difference, 0.5)."""
    return xp.where(xp.abs(r) <= delta, r, delta * xp.sign(r))


def pinball(xp: Namespace, r: Array, alpha: float) -> Array:
    """``e(r) = max(-α·r, (1 - α)·r)``: the quantile loss of level ``α``.

    Under-prediction (``r < 0``) costs ``α·|r|``, over-prediction ``(1 - α)·r``,
    as ``sklearn.metrics.mean_pinball_loss``; ``2·pinball(α=0.5)`` is MAE.
    """
    return xp.maximum(-alpha * r, (1 - alpha) * r)


def pinball_derivative(xp: Namespace, r: Array, alpha: float) -> Array:
    """``e'(r) = 1 - α`` for ``r > 0``, ``-α`` for ``r < 0`` and 0 at ``r = 0`` (as MAE)."""
    s = xp.sign(r)
    return s * (0.5 + (0.5 - alpha) * s)


_LOG_2 = math.log(2.0)
#: Where log-cosh is |r| - log 2 to rounding (see log_cosh).
_FAR = 20.0


def log_cosh(xp: Namespace, r: Array) -> Array:
    """``e(r) = log(cosh(r))``: about ``r²/2`` near 0 and ``|r| - log 2`` far away.

    With ``a = |r|`` and ``m = expm1(a)``, ``cosh(r) - 1 = m² / (2(1 + m))``, so
    ``log(cosh(r)) = log1p(m² / (2(1 + m)))``: exact to rounding however small
    ``r`` is (no cancellation), and two transcendental functions per element.
    ``cosh`` (and ``m``) overflow for ``|r|`` above about 710 (float64) or 89
    (float32); from ``|r| = 20`` on, ``log1p(exp(-2|r|)) < 5e-18`` is below a
    rounding of ``|r| - log 2``, which is the value there, finite up to the
    dtype's largest.
    """
    a = xp.abs(r)
    m = xp.expm1(xp.minimum(a, _FAR))
    return xp.where(a < _FAR, xp.log1p((m * m) / (2 * (1 + m))), a - _LOG_2)


def log_cosh_derivative(xp: Namespace, r: Array) -> Array:
    """``e'(r) = tanh(r)``."""
    return xp.tanh(r)


MSE = Loss(
    "mse", squared_error, squared_error_derivative,
    native={"numpy": f"{_NUMPY}:SQUARED", "torch": f"{_TORCH}:SQUARED"},
    doc="Mean squared error, ``Σᵢ wᵢ (ŷᵢ - yᵢ)² / Σᵢ wᵢ``.",
)
MAE = Loss(
    "mae", absolute_error, absolute_error_derivative,
    native={"numpy": f"{_NUMPY}:ABSOLUTE", "torch": f"{_TORCH}:ABSOLUTE"},
    doc="Mean absolute error, ``Σᵢ wᵢ |ŷᵢ - yᵢ| / Σᵢ wᵢ``.",
)
RMSE = Loss(
    "rmse", squared_error, squared_error_derivative, root=True,
    native={"numpy": f"{_NUMPY}:SQUARED", "torch": f"{_TORCH}:SQUARED"},
    doc="Root mean squared error: the square root of each output's MSE, then averaged.",
)
HUBER = Loss(
    "huber", huber, huber_derivative,
    params={"delta": Param(1.0, low=0.0, doc="Where the loss turns from quadratic to linear")},
    native={"numpy": f"{_NUMPY}:HUBER", "torch": f"{_TORCH}:HUBER"},
    doc="Huber loss: ``½r²`` where ``|r| <= delta``, else ``delta·(|r| - ½delta)``.",
)
PINBALL = Loss(
    "pinball", pinball, pinball_derivative,
    params={"alpha": Param(0.5, low=0.0, high=1.0, doc="The quantile the loss targets")},
    doc="Pinball (quantile) loss of level ``alpha``, as ``sklearn.metrics.mean_pinball_loss``.",
)
LOG_COSH = Loss(
    "log_cosh", log_cosh, log_cosh_derivative,
    doc="Log-cosh loss, ``Σᵢ wᵢ log(cosh(ŷᵢ - yᵢ)) / Σᵢ wᵢ``, as Keras' ``LogCosh``.",
)
