"""The built-in losses as data: small pure functions, each record with its documentation.

Each function works on any Array API namespace ``xp``. A loss's derivative
is also its gradient convention on every backend: ``sign(0) == 0`` gives MAE
and pinball a zero subgradient at a zero residual, and torch and JAX
differentiate the derivative for Hessians. Backends may register faster
kernels for some of these functions; the records never name them.

A record's ``doc`` is its function's docstring without the parameter
sections, which :func:`mseplug.get_loss` functions share (the registry writes
them): adding a loss is this record and its reference in the test suite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mseplug._typing import Array, Namespace
from mseplug.loss.record import Bound, Loss, Param
from mseplug.loss.statistics import (
    Centred,
    Maximum,
    Quantile,
    Statistics,
    Sum,
    centre,
    quantile_share,
    spread,
)


# -- functions of the residual r = y_pred - y_true ---------------------------------------------
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
    m = xp.expm1(xp.clip(a, 0.0, _FAR))  # clip, not minimum: torch.compile traces it whole
    return xp.where(a < _FAR, xp.log1p((m * m) / (2 * (1 + m))), a - _LOG_2)


def log_cosh_derivative(xp: Namespace, r: Array) -> Array:
    """``e'(r) = tanh(r)``."""
    return xp.tanh(r)


# -- functions of the pair (y_true, y_pred) -------------------------------------------------------
def squared_log_error(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``e = (log(1 + ŷ) - log(1 + y))²``, the difference as ``log1p((ŷ - y) / (1 + y))``: no
    cancellation when the prediction is close."""
    d = xp.log1p((y_pred - y_true) / (1 + y_true))
    return d * d


def squared_log_error_derivative(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``de/dŷ = 2 (log(1 + ŷ) - log(1 + y)) / (1 + ŷ)``."""
    return 2 * xp.log1p((y_pred - y_true) / (1 + y_true)) / (1 + y_pred)


#: Coefficients of ``2 atanh(u) - 2u = u³ Σₖ 2 u²ᵏ / (2k + 3)`` in ``u²`` (k = 3..0), highest
#: first: four terms are float64's rounding below :data:`_SERIES_BELOW` (see :func:`x_minus_log1p`).
_SERIES = tuple(2.0 / (2 * k + 3) for k in range(3, -1, -1))
#: Below this |x| the series replaces the direct form ``x - log1p(x)``, which cancels there.
_SERIES_BELOW = 0.05


def x_minus_log1p(xp: Namespace, x: Array) -> Array:
    """``g(x) = x - log(1 + x)`` for ``x > -1``: about ``x²/2`` near 0, and accurate there too,
    where the direct difference of two numbers near ``x`` would cancel.

    For ``|x| < 0.05`` (:data:`_SERIES_BELOW`) it is taken through ``u = x / (2 + x)``: there
    ``log1p(x) = 2 atanh(u)`` and ``x - 2u = x u``, so

    ``g(x) = x u - u³ S(u²) = u (x - w S(w))``, ``w = u²``,
    ``S(w) = 2/3 + 2w/5 + 2w²/7 + 2w³/9`` (:data:`_SERIES`, the first four terms):

    ``w S(w)`` is about ``|x|/6`` of ``x``, under 1 % (no cancellation), and the first
    omitted term, ``2u³w⁴/11``, is below 4.4e-16 of ``g`` (``|u| < 0.026``,
    ``w < 6.6e-4``). Elsewhere the direct form; ``inf`` at ``x = inf``.

    Against 80-digit arithmetic: within 4 units in the last place of ``g`` below 0.05; within
    32 (4e-15 relative) between 0.05 and 0.1 and 16 (2e-15) between 0.1 and 0.2, where
    ``log1p``'s own rounding (half a unit of ``log1p(x)``, about ``x``) is a larger share of
    ``g``; within 8 beyond. (The textbook deviance formulas, as scikit-learn's, lose about
    ``1e-16 / x²`` relative near 0.) The switch is at 0.05, not 0.1, for speed: fewer
    elements take the series, and four terms of it suffice.
    """
    small = xp.abs(x) < _SERIES_BELOW
    s = xp.where(small, x, xp.zeros_like(x))
    u = s / (2 + s)
    w = u * u
    series = _SERIES[0] + 0 * w
    for coefficient in _SERIES[1:]:
        series = coefficient + w * series
    far = xp.where(small, xp.ones_like(x), x)
    direct = xp.where(far == float("inf"), far, far - xp.log1p(far))  # inf - log1p(inf): inf
    return xp.where(small, u * (s - w * series), direct)


def poisson_deviance(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``e = 2 (y log(y / ŷ) - y + ŷ)``, 0 log 0 = 0: ``2 y g((ŷ - y) / y)`` with
    ``g(x) = x - log1p(x)`` (:func:`x_minus_log1p`), ``2 ŷ`` at ``y = 0``; exact to rounding when
    the prediction is close, where the direct form cancels."""
    zero = y_true == 0  # (NaN is not zero: it stays NaN)
    t = xp.where(zero, xp.ones_like(y_true), y_true)  # no division by a zero target
    x = (y_pred - t) / t
    return 2 * xp.where(zero, y_pred, t * xp.where(x == -1, x + _log_ratio(xp, t, y_pred),
                                                   x_minus_log1p(xp, x)))


def _log_ratio(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``log(y / ŷ)`` as ``log y - log ŷ``: where ``ŷ`` is below ``y·2⁻⁵³``, ``1 + (ŷ - y) / y``
    rounds to 0 and ``log1p`` of it is ``-inf`` (a deviance of inf or NaN where scikit-learn's
    is finite), and ``ŷ / y`` may underflow; apart, both logs are finite."""
    return xp.log(y_true) - xp.log(y_pred)


def poisson_deviance_derivative(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``de/dŷ = 2 (1 - y / ŷ) = 2 (ŷ - y) / ŷ``; its limit 2 at ``ŷ = inf`` (not ``inf / inf``)."""
    far = y_pred == float("inf")
    slope = 2 * (y_pred - y_true) / xp.where(far, xp.ones_like(y_pred), y_pred)
    return xp.where(far, xp.full_like(slope, 2.0), slope)


def absolute_percentage_error(xp: Namespace, y_true: Array, y_pred: Array, epsilon: float
                              ) -> Array:
    """``e = |ŷ - y| / max(|y|, ε)``, as ``sklearn.metrics.mean_absolute_percentage_error``."""
    return xp.abs(y_pred - y_true) / xp.clip(xp.abs(y_true), epsilon, None)


def absolute_percentage_error_derivative(xp: Namespace, y_true: Array, y_pred: Array,
                                         epsilon: float) -> Array:
    """``de/dŷ = sign(ŷ - y) / max(|y|, ε)``: 0 at ``ŷ = y``, as MAE's subgradient."""
    return xp.sign(y_pred - y_true) / xp.clip(xp.abs(y_true), epsilon, None)


def gamma_deviance(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``e = 2 (log(ŷ / y) + y / ŷ - 1)``: ``2 g((y - ŷ) / ŷ)`` with ``g(x) = x - log1p(x)``
    (:func:`x_minus_log1p`), exact to rounding when the prediction is close."""
    # (y - ŷ) / ŷ keeps its digits when ŷ is close to y; at ŷ = inf it is -inf / inf: y / ŷ - 1
    x = xp.where(xp.isinf(y_pred), y_true / y_pred - 1, (y_true - y_pred) / y_pred)
    return 2 * x_minus_log1p(xp, x)


def gamma_deviance_derivative(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``de/dŷ = 2 (1/ŷ - y/ŷ²) = 2 (ŷ - y) / ŷ²``; its limit 0 at ``ŷ = inf`` (not NaN)."""
    far = y_pred == float("inf")
    safe = xp.where(far, xp.ones_like(y_pred), y_pred)
    slope = 2 * ((y_pred - y_true) / safe) / safe
    return xp.where(far, xp.zeros_like(slope), slope)


def check_tweedie_power(power: float) -> str:
    """Tweedie's deviance has no distribution for ``0 < power < 1`` (scikit-learn refuses it)."""
    if 0 < power < 1:
        return "the Tweedie deviance is defined for power <= 0 and power >= 1, not in (0, 1)"
    return ""


def tweedie_domain(power: float) -> dict[str, Bound]:
    """The inputs' ranges at ``power``, as ``sklearn.metrics.mean_tweedie_deviance`` checks them:
    ``ŷ > 0`` below 0, any real number at 0, ``y >= 0, ŷ > 0`` in ``[1, 2)``, ``y, ŷ > 0`` from 2."""
    if power < 0:
        return {"y_pred": Bound(0.0)}
    if power == 0:
        return {}
    if power < 2:
        return {"y_true": Bound(0.0, inclusive=True), "y_pred": Bound(0.0)}
    return {"y_true": Bound(0.0), "y_pred": Bound(0.0)}


#: ``h(L) = Σₖ (bᵏ⁻¹ - aᵏ⁻¹) Lᵏ / k!`` for k = 12 down to 2 (see :func:`tweedie_deviance`): below
#: :data:`_TWEEDIE_SERIES_BELOW` the first omitted term (k = 13) is under 1e-17 of ``h`` for
#: every power.
_TWEEDIE_TERMS = range(12, 1, -1)
#: Below this ``|L| (|a| + |b|)`` the series replaces ``expm1(bL)/b - expm1(aL)/a``, which
#: cancels there (just above the switch that form is off by about 10 units in the last place
#: near power 1.5, a few hundred at power 12).
_TWEEDIE_SERIES_BELOW = 0.2


def _tweedie_coefficients(a: Any, b: Any) -> list[Any]:
    """``(bᵏ⁻¹ - aᵏ⁻¹) / k!`` for k in :data:`_TWEEDIE_TERMS` (highest first: Horner's order);
    ``a`` and ``b`` numbers, maybe traced."""
    return [(b ** (k - 1) - a ** (k - 1)) / float(math.factorial(k)) for k in _TWEEDIE_TERMS]


def _expm1_over(xp: Namespace, c: Any, L: Array) -> Array:
    """``expm1(c L) / c``, and ``L`` at ``c = 0`` (its limit); ``c`` a scalar, maybe traced."""
    zero = (c == 0) * 1.0  # a number, not a bool: array_api_strict adds no bool to floats
    return xp.expm1(c * L) / (c + zero) + zero * L


def tweedie_deviance(xp: Namespace, y_true: Array, y_pred: Array, power: float) -> Array:
    """The unit Tweedie deviance of ``power`` ``p``, with ``a = 1 - p`` and ``b = 2 - p``:

    ``e = 2 (max(y, 0)ᵇ / (ab) - y ŷᵃ / a + ŷᵇ / b)``, ``(ŷ - y)²`` at ``p = 0``, Poisson's
    at 1, Gamma's at 2 (the limits of the general form there).

    For ``y > 0``, with ``L = log(ŷ / y) = log1p((ŷ - y) / y)``, the bracket is
    ``yᵇ h(L)``, ``h(L) = expm1(bL) / b - expm1(aL) / a`` (``L`` for a zero ``a`` or ``b``),
    which is ``Σₖ₌₂ (bᵏ⁻¹ - aᵏ⁻¹) Lᵏ / k!`` (no division: one formula for every power; its
    terms up to k = 12, :data:`_TWEEDIE_TERMS`). The series is taken where ``h`` would cancel
    (``ŷ`` close to ``y``), so the deviance is exact to rounding there too, as Poisson's and
    Gamma's are. At power 1.5 given as a number (``a = -b = -1/2``), ``h`` is
    ``4 (cosh(L/2) - 1) = 8 sinh(L/4)²``, which cancels nowhere: that form on every element,
    no series (a traced power takes the general form: the same value to rounding). For ``y <= 0``
    (powers below 2) no term cancels: the direct form. The power may be a traced JAX value:
    every branch is a choice of arrays (with harmless values where a branch is not taken: no
    warning).

    At ``ŷ = inf`` the deviance is its limit: ``inf`` for powers up to 2 (``ŷᵇ``, or ``log ŷ``
    at 2, grows without bound), and ``2 yᵇ / (ab)`` above 2, where both terms in ``ŷ`` vanish.
    """
    a, b = 1 - power, 2 - power
    positive = y_true > 0
    normal = xp.zeros_like(y_true, dtype=xp.bool) | (power == 0)
    far = y_pred == float("inf")
    safe_pred = xp.where((y_pred > 0) & ~far, y_pred, xp.ones_like(y_pred))
    # y > 0: 2 yᵇ h(L)
    t = xp.where(positive, y_true, xp.ones_like(y_true))
    ratio = (safe_pred - t) / t
    L = xp.where(ratio == -1, -_log_ratio(xp, t, safe_pred), xp.log1p(ratio))
    if isinstance(power, (int, float)) and power == 1.5:
        quarter = xp.sinh(L * 0.25)
        h = 8 * (quarter * quarter)
    else:
        small = xp.abs(L) * (abs(a) + abs(b)) < _TWEEDIE_SERIES_BELOW
        s = xp.where(small, L, xp.zeros_like(L))
        series = 0 * s
        for coefficient in _tweedie_coefficients(a, b):
            series = coefficient + s * series
        h = xp.where(small, s * s * series, _expm1_over(xp, b, L) - _expm1_over(xp, a, L))
    inside = 2 * t ** b * h
    # y <= 0 (below power 2): 2 (ŷᵇ / b - y ŷᵃ / a), the first term 0 at y = 0 (a = 0 at power 1)
    zero_true = y_true == 0
    linear = xp.where(zero_true, xp.zeros_like(y_true),
                      y_true * safe_pred ** a / (a + (a == 0) * 1.0))
    edge = 2 * (safe_pred ** b / (b + (b == 0) * 1.0) - linear)
    general = xp.where(positive, inside, edge)
    # ŷ = inf: the limit, finite only above power 2 (where y > 0: the domain)
    ab = a * b
    bounded = xp.zeros_like(y_true, dtype=xp.bool) | (power > 2)
    limit = xp.where(bounded, 2 * t ** b / (ab + (ab == 0) * 1.0),
                     xp.full_like(y_true, float("inf")))
    general = xp.where(far, limit, general)
    # Outside the domain (only under tracing, where values are not checked): NaN, not a number
    # made of the stand-ins above; a NaN input stays NaN.
    outside = ~(y_pred > 0) | ((y_true < 0) & (power >= 1)) | ((y_true <= 0) & (power >= 2))
    general = xp.where(outside, xp.full_like(general, xp.nan), general)
    return xp.where(normal, (y_pred - y_true) * (y_pred - y_true), general)


def tweedie_deviance_derivative(xp: Namespace, y_true: Array, y_pred: Array, power: float
                                ) -> Array:
    """``de/dŷ = 2 (ŷ - y) ŷ⁻ᵖ``, ``2 (ŷ - y)`` at ``p = 0`` (any sign of ``ŷ`` there).

    At ``ŷ = inf`` its limit, that of ``2 (1 - y/ŷ) ŷ¹⁻ᵖ``: ``inf`` below power 1, 2 at 1
    (Poisson's), 0 above (Gamma's at 2), not ``inf · 0``.
    """
    normal = xp.zeros_like(y_true, dtype=xp.bool) | (power == 0)
    far = y_pred == float("inf")
    safe_pred = xp.where(normal | ~(y_pred > 0) | far, xp.ones_like(y_pred), y_pred)
    slope = 2 * (y_pred - y_true) * safe_pred ** (-power)
    one = xp.zeros_like(y_true, dtype=xp.bool) | (power == 1)
    above = xp.zeros_like(y_true, dtype=xp.bool) | (power > 1)
    limit = xp.where(one, xp.full_like(slope, 2.0),
                     xp.where(above, xp.zeros_like(slope), xp.full_like(slope, float("inf"))))
    return xp.where(far & ~normal, limit, slope)


# -- the records ----------------------------------------------------------------------------------
MSE = Loss(
    "mse", squared_error, squared_error_derivative, title="MSE",
    anchors={"sklearn": "mean_squared_error", "torch": "torch.nn.MSELoss",
             "torchmetrics": "MeanSquaredError", "keras": "MeanSquaredError",
             "optax": "squared_error"},
    doc="""Mean squared error, ``Σᵢ wᵢ (ŷᵢ - yᵢ)² / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_squared_error`` (and ``torch.nn.MSELoss``): each
    error squared, so a few large errors weigh more than many small ones.

    Examples
    --------
    Two house prices, 120K and 60K, predicted as 100K and 80K: the raw errors
    cancel (sum 0), the squared ones do not.

    >>> import mseplug
    >>> float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    400000000.0
    >>> float(mseplug.mse([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [3.0, 6.0]],
    ...                   multioutput="raw_values")[1])
    2.5
    """,
)
MAE = Loss(
    "mae", absolute_error, absolute_error_derivative, title="MAE",
    anchors={"sklearn": "mean_absolute_error", "torch": "torch.nn.L1Loss",
             "torchmetrics": "MeanAbsoluteError", "keras": "MeanAbsoluteError"},
    doc="""Mean absolute error, ``Σᵢ wᵢ |ŷᵢ - yᵢ| / Σᵢ wᵢ``; less swayed by outliers than MSE.

    As ``sklearn.metrics.mean_absolute_error`` (and ``torch.nn.L1Loss``); its
    subgradient at a zero residual is 0 on every backend.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.mae([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
    >>> float(mseplug.mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], sample_weight=[1.0, 1.0, 0.0]))
    0.5
    """,
)
RMSE = Loss(
    "rmse", squared_error, squared_error_derivative, title="RMSE", root=True,
    anchors={"sklearn": "root_mean_squared_error",
             "torchmetrics": "MeanSquaredError(squared=False)", "keras": "RootMeanSquaredError"},
    doc="""Root mean squared error: the square root of each output's MSE, then averaged.

    As scikit-learn's ``root_mean_squared_error``, the root is taken per output
    before ``multioutput`` combines them; ``reduction`` must be ``"mean"``.
    The result is in the target's units; its gradient at a perfect fit is 0.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.rmse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
    """,
)
HUBER = Loss(
    "huber", huber, huber_derivative,
    params={"delta": Param(1.0, low=0.0, doc="Where the loss turns from quadratic to linear")},
    anchors={"torch": "torch.nn.HuberLoss", "keras": "Huber", "optax": "huber_loss"},
    doc="""Huber loss: ``½r²`` where ``|r| <= delta``, else ``delta·(|r| - ½delta)``.

    The same elementwise loss as ``torch.nn.functional.huber_loss`` and
    ``optax.huber_loss``, averaged like :func:`mse`: quadratic near zero,
    linear (so less swayed by outliers) far away.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.huber([0.0, 0.0], [0.5, 3.0], delta=1.0))
    1.3125
    """,
)
PINBALL = Loss(
    "pinball", pinball, pinball_derivative,
    params={"alpha": Param(0.5, low=0.0, high=1.0, doc="The quantile the loss targets")},
    anchors={"sklearn": "mean_pinball_loss"},
    doc="""Pinball (quantile) loss: ``α·|r|`` below the truth, ``(1 - α)·r`` above it.

    Minimising it makes the prediction the ``α``-quantile of the target, as
    ``sklearn.metrics.mean_pinball_loss`` (same values, weights and
    ``multioutput``); ``alpha=0.5`` gives half the MAE. The subgradient at a
    zero residual is 0, as for :func:`mae`.

    Examples
    --------
    Predicting 10 where the truth is 12 costs ``0.9 · 2`` at ``alpha=0.9``;
    predicting 14 costs ``0.1 · 2``.

    >>> import mseplug
    >>> float(mseplug.pinball([12.0, 12.0], [10.0, 14.0], alpha=0.9))
    1.0
    >>> float(2 * mseplug.pinball([1.0, 2.0], [3.0, 0.0])) == float(mseplug.mae([1.0, 2.0], [3.0, 0.0]))
    True
    """,
)
LOG_COSH = Loss(
    "log_cosh", log_cosh, log_cosh_derivative,
    anchors={"keras": "LogCosh", "optax": "log_cosh"},
    doc="""Log-cosh loss, ``Σᵢ wᵢ log(cosh(ŷᵢ - yᵢ)) / Σᵢ wᵢ``, as Keras' ``LogCosh``.

    About ``r²/2`` for small residuals and ``|r| - log 2`` for large ones: like
    Huber, smooth everywhere (its derivative is ``tanh(r)``), with no
    threshold to choose. Computed without ``cosh``, so it stays finite where
    ``cosh`` overflows.

    Examples
    --------
    >>> import math, mseplug
    >>> math.isclose(float(mseplug.log_cosh([0.0], [1.0])), math.log(math.cosh(1.0)))
    True
    >>> float(mseplug.log_cosh([0.0], [1000.0]))  # cosh(1000) overflows; the loss does not
    999.3068528194401
    """,
)
MSLE = Loss(
    "msle", squared_log_error, squared_log_error_derivative, title="MSLE",
    domain={"y_true": Bound(-1.0), "y_pred": Bound(-1.0)},
    anchors={"sklearn": "mean_squared_log_error", "torchmetrics": "MeanSquaredLogError",
             "keras": "MeanSquaredLogarithmicError"},
    doc="""Mean squared logarithmic error, ``Σᵢ wᵢ (log(1 + ŷᵢ) - log(1 + yᵢ))² / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_squared_log_error``: the squared error of
    ``log(1 + y)``, so it measures *relative* errors (predicting 110 for 100
    costs about what 1.1 for 1 does) and penalises under-prediction more than
    over-prediction. Targets and predictions must be greater than -1.

    Examples
    --------
    >>> import math, mseplug
    >>> math.isclose(float(mseplug.msle([100.0], [110.0])), math.log(111 / 101) ** 2)
    True
    """,
)
RMSLE = Loss(
    "rmsle", squared_log_error, squared_log_error_derivative, title="RMSLE", root=True,
    domain={"y_true": Bound(-1.0), "y_pred": Bound(-1.0)},
    anchors={"sklearn": "root_mean_squared_log_error"},
    doc="""Root mean squared logarithmic error: the square root of each output's MSLE.

    As ``sklearn.metrics.root_mean_squared_log_error``: :func:`msle` as
    :func:`rmse` is to :func:`mse`, the root taken per output before
    ``multioutput`` combines them; ``reduction`` must be ``"mean"``. In the
    units of ``log(1 + y)``: about the typical *relative* error (0.1 is
    roughly 10 %). Targets and predictions must be greater than -1.

    Examples
    --------
    >>> import math, mseplug
    >>> value = float(mseplug.rmsle([3.0, 5.0, 2.5, 7.0], [2.5, 5.0, 4.0, 8.0]))
    >>> round(value, 6)
    0.199324
    >>> math.isclose(value ** 2, float(mseplug.msle([3.0, 5.0, 2.5, 7.0], [2.5, 5.0, 4.0, 8.0])))
    True
    """,
)
MAPE = Loss(
    "mape", absolute_percentage_error, absolute_percentage_error_derivative, title="MAPE",
    params={"epsilon": Param(float(2.0 ** -52), low=0.0,
                             doc="The smallest ``|y|`` divided by (scikit-learn's: float64's "
                                 "machine epsilon)")},
    anchors={"sklearn": "mean_absolute_percentage_error",
             "torchmetrics": "MeanAbsolutePercentageError", "keras": "MeanAbsolutePercentageError"},
    doc="""Mean absolute percentage error, ``Σᵢ wᵢ |ŷᵢ - yᵢ| / max(|yᵢ|, ε) / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_absolute_percentage_error``: each error relative
    to the truth, as a fraction (0.1 is 10 %, not 10 as Keras reports it).
    Scale-free, but a truth near zero makes the error huge (``ε`` only keeps
    it finite: a zero truth divides by ``ε``), and for positive values
    over-prediction can cost without bound where under-prediction costs at
    most 1. Any real inputs.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.mape([1.0, 10.0], [2.0, 8.0]))
    0.6
    >>> float(mseplug.mape([0.0], [0.5], epsilon=0.1))  # a zero truth: divided by epsilon
    5.0
    """,
)
POISSON_DEVIANCE = Loss(
    "poisson_deviance", poisson_deviance, poisson_deviance_derivative,
    domain={"y_true": Bound(0.0, inclusive=True), "y_pred": Bound(0.0)},
    anchors={"sklearn": "mean_poisson_deviance", "torchmetrics": "TweedieDevianceScore(power=1)",
             "keras": "Poisson"},
    doc="""Mean Poisson deviance, ``Σᵢ wᵢ 2(yᵢ log(yᵢ/ŷᵢ) - yᵢ + ŷᵢ) / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_poisson_deviance``: the loss of a Poisson
    regression (counts, rates), minimised by the mean of the target. Targets
    must be non-negative and predictions positive (a log link keeps them so).

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.poisson_deviance([0.0, 2.0], [1.0, 2.0]))
    1.0
    """,
)

GAMMA_DEVIANCE = Loss(
    "gamma_deviance", gamma_deviance, gamma_deviance_derivative,
    domain={"y_true": Bound(0.0), "y_pred": Bound(0.0)},
    anchors={"sklearn": "mean_gamma_deviance", "torchmetrics": "TweedieDevianceScore(power=2)"},
    doc="""Mean Gamma deviance, ``Σᵢ wᵢ 2(log(ŷᵢ/yᵢ) + yᵢ/ŷᵢ - 1) / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_gamma_deviance``: the loss of a Gamma regression
    (positive amounts whose spread grows with their size: claim sizes,
    durations), minimised by the mean of the target. It depends on the ratio
    ``ŷ / y`` alone, so it is the same at every scale. Targets and predictions
    must be positive.

    Examples
    --------
    >>> import math, mseplug
    >>> math.isclose(float(mseplug.gamma_deviance([1.0, 2.0], [2.0, 2.0])), math.log(2) - 0.5)
    True
    >>> float(mseplug.gamma_deviance([1.0], [2.0])) == float(mseplug.gamma_deviance([100.0], [200.0]))
    True
    """,
)
TWEEDIE_DEVIANCE = Loss(
    "tweedie_deviance", tweedie_deviance, tweedie_deviance_derivative,
    params={"power": Param(0.0, doc="The Tweedie power: 0 normal, 1 Poisson, 2 Gamma; not in "
                                    "(0, 1)", check=check_tweedie_power)},
    domain=tweedie_domain,
    anchors={"sklearn": "mean_tweedie_deviance", "torchmetrics": "TweedieDevianceScore"},
    doc="""Mean Tweedie deviance of power ``p``, with ``a = 1 - p`` and ``b = 2 - p``:
    ``Σᵢ wᵢ 2(max(yᵢ, 0)ᵇ/(ab) - yᵢ ŷᵢᵃ/a + ŷᵢᵇ/b) / Σᵢ wᵢ``.

    As ``sklearn.metrics.mean_tweedie_deviance``: the family of deviances
    with :func:`mse` at ``power=0``, :func:`poisson_deviance` at 1 and
    :func:`gamma_deviance` at 2; between 1 and 2 the compound Poisson-Gamma
    (amounts with exact zeros: insurance claims, rainfall). Powers in
    ``(0, 1)`` are refused. The domain follows the power: any real inputs at
    0, ``y_pred > 0`` below 0, ``y_true >= 0`` and ``y_pred > 0`` in
    ``[1, 2)``, both positive from 2; other values are a ``ValueError``.

    Examples
    --------
    >>> import math, mseplug
    >>> y, p = [2.0, 0.0, 1.0, 4.0], [0.5, 0.5, 2.0, 2.0]
    >>> math.isclose(float(mseplug.tweedie_deviance(y, p, power=1)),
    ...              float(mseplug.poisson_deviance(y, p)))
    True
    >>> round(float(mseplug.tweedie_deviance(y, p, power=1.5)), 6)
    1.778175
    """,
)



# -- metrics from statistics of their own (see mseplug.loss.statistics) -------------------------
def _target(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    return y_true


def _residual(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    return y_true - y_pred


def _squared_residual(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    r = y_true - y_pred
    return r * r


def _absolute_residual(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``|y - ŷ|``, whose derivative is 0 at ``y == ŷ`` under every autodiff (as ``sign(0)``)."""
    r = y_true - y_pred
    return xp.where(r != 0, xp.abs(r), xp.zeros_like(r))


def _score(xp: Namespace, numerator: Array, denominator: Array) -> Array:
    """``1 - numerator / denominator`` per output, finite as scikit-learn's ``force_finite``:
    a constant target (denominator 0) scores 1 if it is fitted exactly, else 0."""
    nonzero = denominator != 0
    ratio = numerator / xp.where(nonzero, denominator, xp.ones_like(denominator))
    # NaN stays NaN (nan_policy="propagate"); an infinite error is "not fitted": 0, not inf * 0
    fitted = xp.where(numerator == 0, xp.ones_like(numerator),
                      xp.where(xp.isnan(numerator), numerator, xp.zeros_like(numerator)))
    return xp.where(nonzero, 1 - ratio, fitted)


def _slope_over(xp: Namespace, numerator_slope: Array, denominator: Array) -> Array:
    """``-(d numerator / d ŷ) / denominator``: 0 for a constant target (the score is flat)."""
    nonzero = denominator != 0
    inverse = xp.where(nonzero, 1 / xp.where(nonzero, denominator, xp.ones_like(denominator)),
                       xp.zeros_like(denominator))
    return -numerator_slope * inverse[None, :]


def _weighted(weight: Array | None, x: Array) -> Array:
    """``x`` times each element's weight (``(n, K)``, or ``None`` for unit weights)."""
    return x if weight is None else x * weight


def r2_finalize(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    """``R² = 1 - SS_res / SS_tot`` per output (``SS_tot`` the target's spread about its mean)."""
    return _score(xp, stats["squared_residual"], spread(xp, stats, "target"))


def r2_gradient(xp: Namespace, stats: Mapping[str, Array], y_true: Array, y_pred: Array,
                weight: Array | None) -> Array:
    """``d R² / d ŷᵢ = -2wᵢ(ŷᵢ - yᵢ) / SS_tot``."""
    return _slope_over(xp, _weighted(weight, 2 * (y_pred - y_true)), spread(xp, stats, "target"))


def target_spread(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    """Each output's weight for ``multioutput="variance_weighted"``: its target's spread."""
    return spread(xp, stats, "target")


def explained_variance_finalize(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    """``1 - Var(y - ŷ) / Var(y)`` per output (weighted variances)."""
    return _score(xp, spread(xp, stats, "residual"), spread(xp, stats, "target"))


def explained_variance_gradient(xp: Namespace, stats: Mapping[str, Array], y_true: Array,
                                y_pred: Array, weight: Array | None) -> Array:
    """``d EV / d ŷᵢ = 2wᵢ(rᵢ - r̄) / SS_tot`` with ``r = y - ŷ`` and ``r̄`` its weighted mean."""
    mean = centre(xp, stats, "residual")
    slope = _weighted(weight, -2 * ((y_true - y_pred) - mean[None, :]))
    return _slope_over(xp, slope, spread(xp, stats, "target"))


def max_error_finalize(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    return stats["absolute_residual"]


def max_error_gradient(xp: Namespace, stats: Mapping[str, Array], y_true: Array, y_pred: Array,
                       weight: Array | None) -> Array:
    """The subgradient ``sign(ŷ - y)`` at the row of the largest error, shared alike by rows that
    tie (as torch's and JAX's ``max`` share their gradient), 0 elsewhere. The rows that tie are
    counted over all the data (``stats["absolute_residual.ties"]``), not only these rows: a
    Dask chunk's gradient is its share of the whole array's."""
    largest = stats["absolute_residual"][None, :]
    at_max = xp.where(xp.abs(y_true - y_pred) == largest, xp.ones_like(y_pred),
                      xp.zeros_like(y_pred))
    ties = stats["absolute_residual.ties"]
    return xp.sign(y_pred - y_true) * at_max / xp.where(ties > 0, ties, xp.ones_like(ties))[None, :]


R2 = Loss(
    "r2", None, statistics=Statistics(
        (Sum("squared_residual", _squared_residual), Centred("target", _target)),
        r2_finalize, gradient=r2_gradient, output_weights=target_spread),
    greater_is_better=True, title="R2Score",
    anchors={"sklearn": "r2_score", "torchmetrics": "R2Score", "keras": "R2Score"},
    doc="""Coefficient of determination, ``R² = 1 - Σᵢ wᵢ(yᵢ - ŷᵢ)² / Σᵢ wᵢ(yᵢ - ȳ)²``.

    As ``sklearn.metrics.r2_score``: 1 for a perfect fit, 0 for predicting the
    (weighted) mean of the target, negative for worse; a score (greater is
    better). A constant target scores 1 if fitted exactly, else 0 (scikit-learn's
    ``force_finite=True``). ``multioutput="variance_weighted"`` weighs each output
    by its target's spread. Computed from float64 statistics about a shift (the
    first row), so float32 targets far from 0 keep their digits; streamed
    (:class:`~mseplug.Accumulator`) it is the R² of all samples, not a mean of
    batch scores. Only ``reduction="mean"`` applies.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.r2([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]))
    0.5
    """,
)
EXPLAINED_VARIANCE = Loss(
    "explained_variance", None, statistics=Statistics(
        (Centred("residual", _residual), Centred("target", _target)),
        explained_variance_finalize, gradient=explained_variance_gradient,
        output_weights=target_spread),
    greater_is_better=True, title="ExplainedVariance",
    anchors={"sklearn": "explained_variance_score", "torchmetrics": "ExplainedVariance"},
    doc="""Explained variance, ``1 - Var(y - ŷ) / Var(y)`` (weighted variances).

    As ``sklearn.metrics.explained_variance_score``: R² without the mean of the
    residual (a constant offset is not penalised); a score (greater is better).
    A constant target scores 1 if the residual is constant too, else 0
    (``force_finite=True``). Only ``reduction="mean"`` applies.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.explained_variance([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]))
    1.0
    """,
)
MAX_ERROR = Loss(
    "max_error", None, statistics=Statistics(
        (Maximum("absolute_residual", _absolute_residual),), max_error_finalize,
        gradient=max_error_gradient, sample_weight=False, multioutput=False),
    anchors={"sklearn": "max_error"},
    doc="""Maximum absolute error, ``maxᵢ |yᵢ - ŷᵢ|``.

    As ``sklearn.metrics.max_error``: one output and no sample weights (both are
    refused, as scikit-learn does). Batches and shards combine by the maximum,
    exactly. Its gradient is the subgradient ``sign(ŷ - y)`` at the row of the
    largest error (shared by rows that tie), 0 elsewhere.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.max_error([3.0, 2.0, 7.0, 1.0], [4.0, 2.0, 7.0, 1.0]))
    1.0
    """,
)



# -- not decomposable: a median of all the samples (one call only) -------------------------------
def _half_absolute_residual(xp: Namespace, y_true: Array, y_pred: Array) -> Array:
    """``½|y - ŷ|``: the pinball loss at level ½ (0 slope at ``y == ŷ``, as :func:`mae`'s)."""
    return 0.5 * _absolute_residual(xp, y_true, y_pred)


def _unit_weights(weight: Array | None, like: Array) -> Array:
    return weight if weight is not None else like * 0 + 1


def median_absolute_error_finalize(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    return stats["absolute_residual"]


def median_absolute_error_gradient(xp: Namespace, stats: Mapping[str, Array], y_true: Array,
                                   y_pred: Array, weight: Array | None) -> Array:
    """The subgradient ``sign(ŷ - y)`` at the element the median takes (½ at each of two it
    averages), 0 elsewhere: the gradient torch and JAX give through the same sort."""
    term = _absolute_residual(xp, y_true, y_pred)
    share = quantile_share(xp, term, _unit_weights(weight, term), 0.5)
    return xp.sign(y_pred - y_true) * share


def d2_absolute_error_finalize(xp: Namespace, stats: Mapping[str, Array]) -> Array:
    """``D² = 1 - Σw|y - ŷ| / Σw|y - median(y)|`` per output (both halved: pinball at ½)."""
    return _score(xp, stats["half_absolute_residual"], stats["target.deviation"])


def d2_absolute_error_gradient(xp: Namespace, stats: Mapping[str, Array], y_true: Array,
                               y_pred: Array, weight: Array | None) -> Array:
    """``d D² / d ŷᵢ = -wᵢ sign(ŷᵢ - yᵢ) / Σw|y - median(y)|`` (the median is of ``y`` alone)."""
    slope = _weighted(weight, 0.5 * xp.sign(y_pred - y_true))
    return _slope_over(xp, slope, stats["target.deviation"])


MEDIAN_ABSOLUTE_ERROR = Loss(
    "median_absolute_error", None, statistics=Statistics(
        (Quantile("absolute_residual", _absolute_residual, deviation=False),),
        median_absolute_error_finalize,
        gradient=median_absolute_error_gradient),
    anchors={"sklearn": "median_absolute_error"},
    doc="""Median absolute error, the (weighted) median of ``|yᵢ - ŷᵢ|``.

    As ``sklearn.metrics.median_absolute_error``: the typical error, untouched
    by a few huge ones (up to half the samples may be outliers). Without
    weights it is ``numpy.median`` (the mean of the two middle errors for an
    even count); with ``sample_weight`` scikit-learn's averaged weighted
    percentile (the first error whose running weight reaches half the total,
    or the mean of it and the next where it meets half exactly). Not
    decomposable: no statistics of parts give a median of the whole, so it is
    computed in one call over all the samples, and an
    :class:`~mseplug.Accumulator`, :func:`~mseplug.sufficient_statistics` or
    ``all_reduce`` of it is a ``ValueError``. Its gradient is the subgradient
    ``sign(ŷ - y)`` at the median's element (½ each where it averages two), 0
    elsewhere, on every backend. Only ``reduction="mean"`` applies.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.median_absolute_error([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]))
    0.5
    >>> float(mseplug.median_absolute_error([0.0, 0.0, 0.0], [1.0, 2.0, 100.0]))  # an outlier
    2.0
    """,
)
D2_ABSOLUTE_ERROR = Loss(
    "d2_absolute_error", None, statistics=Statistics(
        (Sum("half_absolute_residual", _half_absolute_residual), Quantile("target", _target)),
        d2_absolute_error_finalize, gradient=d2_absolute_error_gradient),
    greater_is_better=True, title="D2AbsoluteError",
    anchors={"sklearn": "d2_absolute_error_score", "sklearn_scorer": "d2_absolute_error_score"},
    doc="""D² absolute error score, ``1 - Σᵢ wᵢ|yᵢ - ŷᵢ| / Σᵢ wᵢ|yᵢ - m|``, ``m`` the weighted median
    of ``y``.

    As ``sklearn.metrics.d2_absolute_error_score`` (``d2_pinball_score`` at
    ``alpha=0.5``): the share of the absolute error of predicting the median
    that the prediction removes; 1 is perfect, 0 is predicting the median,
    negative is worse; a score (greater is better). A constant target scores 1
    if fitted exactly, else 0 (``force_finite``, as :func:`r2`), also for a
    single sample, where scikit-learn returns NaN with a warning. Not
    decomposable (a median of all the targets): computed in one call only, as
    :func:`median_absolute_error`. The median does not depend on ``ŷ``, so the
    gradient is ``-wᵢ sign(ŷᵢ - yᵢ) / Σw|y - m|``. Only ``reduction="mean"``
    applies.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.d2_absolute_error([1.0, 2.0, 3.0], [1.0, 3.0, 3.0]))
    0.5
    >>> float(mseplug.d2_absolute_error([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]))  # the median
    0.0
    """,
)

#: The built-in records, in the order :func:`mseplug.losses` lists them.
BUILTINS: tuple[Loss, ...] = (MSE, MAE, RMSE, HUBER, PINBALL, LOG_COSH, MSLE, RMSLE, MAPE,
                              POISSON_DEVIANCE, GAMMA_DEVIANCE, TWEEDIE_DEVIANCE,
                              R2, EXPLAINED_VARIANCE, MAX_ERROR,
                              MEDIAN_ABSOLUTE_ERROR, D2_ABSOLUTE_ERROR)
