"""The suite's one independent float64 NumPy reference of the whole contract (no mseplug).

Each built-in loss is written out again here, plainly, with its first and
second derivative (``DEFINITIONS``); values and gradients of every option and
NaN policy follow the formulas of the semantics page by hand, so the backends
are compared against something that shares none of their code. A built-in
loss without an entry here fails the suite: a new loss comes with its reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import mpmath
import numpy as np


class Definition(NamedTuple):
    """A loss written out: e(y, ŷ), de/dŷ, d²e/dŷ² (away from kinks), and whether a root is
    taken. Each takes ``(y_true, y_pred, **params)``."""

    value: Callable[..., np.ndarray]
    slope: Callable[..., np.ndarray]
    curvature: Callable[..., np.ndarray]
    root: bool = False


def _of_residual(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """``f(r, **params)`` as ``g(y_true, y_pred, **params)``, ``r = y_pred - y_true``."""
    return lambda t, p, **params: function(p - t, **params)


def residual(value: Callable[..., np.ndarray], slope: Callable[..., np.ndarray],
             curvature: Callable[..., np.ndarray], root: bool = False) -> Definition:
    return Definition(_of_residual(value), _of_residual(slope), _of_residual(curvature), root)


def _huber(r: np.ndarray, delta: float = 1.0) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _pinball(r: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    # sklearn.metrics.mean_pinball_loss, with r = y_pred - y_true = -(y_true - y_pred).
    diff = -r
    return np.where(diff >= 0, alpha * diff, (alpha - 1) * diff)


def _log_cosh(r: np.ndarray) -> np.ndarray:
    # log(cosh(r)) = log1p(cosh(r) - 1); cosh(r) - 1 = expm1(|r|)²/(2 e^|r|) is exact to
    # rounding near 0, and e^|r| overflows only beyond |r| ≈ 709, where |r| - log 2 is exact.
    a = np.abs(r)
    with np.errstate(over="ignore", invalid="ignore"):
        near = np.log1p(np.expm1(a) ** 2 / (2 * np.exp(a)))
    return np.where(a < 300, near, a - np.log(2.0))


def _sech_squared(r: np.ndarray) -> np.ndarray:
    # log-cosh's second derivative 1/cosh(r)² = (2e^-|r| / (1 + e^-2|r|))², to a few ulp where
    # it is tiny too (1 - tanh(r)² rounds to a multiple of 2⁻⁵³ there: |r| above about 10).
    e = np.exp(-np.abs(r))
    s = 2 * e / (1 + e * e)
    return s * s


def _exact(function: Callable[..., Any], digits: int = 40) -> Callable[..., np.ndarray]:
    """``function`` of two mpmath numbers (and the loss's parameters) at ``digits`` significant
    digits, elementwise, rounded to float64 (NaN in, NaN out): exact to the last bit of float64
    however the terms cancel."""
    def evaluate(t: Any, p: Any, **params: float) -> np.ndarray:
        def one(t: float, p: float) -> float:
            if math.isnan(t) or math.isnan(p):
                return math.nan
            with mpmath.workdps(digits):
                return float(function(mpmath.mpf(t), mpmath.mpf(p), **params))

        t, p = np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(p, np.float64))
        return np.asarray(np.frompyfunc(one, 2, 1)(t, p), np.float64)

    return evaluate


def _tweedie(t: Any, p: Any, power: float = 0.0) -> Any:
    """sklearn.metrics.mean_tweedie_deviance's unit deviance, case by case (mpmath numbers)."""
    if power == 0 or t == p:  # an exact fit: 0 (the direct form would leave rounding there)
        return (t - p) ** 2
    if power == 1:
        return 2 * ((t * mpmath.log(t / p) if t else 0) - t + p)
    if power == 2:
        return 2 * (mpmath.log(p / t) + t / p - 1)
    a, b = 1 - mpmath.mpf(power), 2 - mpmath.mpf(power)
    return 2 * (max(t, 0) ** b / (a * b) - t * p ** a / a + p ** b / b)


def _tweedie_slope(t: Any, p: Any, power: float = 0.0) -> Any:
    return 2 * (p - t) * p ** -mpmath.mpf(power) if power else 2 * (p - t)


def _tweedie_curvature(t: Any, p: Any, power: float = 0.0) -> Any:
    """d/dŷ of 2 (ŷ - y) ŷ⁻ᵖ: 2 ŷ⁻ᵖ⁻¹ ((1 - p) ŷ + p y)."""
    if not power:
        return 2 + 0 * p
    return 2 * p ** (-mpmath.mpf(power) - 1) * ((1 - power) * p + power * t)


#: scikit-learn's MAPE epsilon, float64's machine epsilon.
_EPS = float(np.finfo(np.float64).eps)


def _mape(r: np.ndarray, t: np.ndarray, epsilon: float) -> np.ndarray:
    return r / np.maximum(np.abs(t), epsilon)


DEFINITIONS: dict[str, Definition] = {
    "mse": residual(lambda r: r * r, lambda r: 2 * r, lambda r: 2 + 0 * r),
    "rmse": residual(lambda r: r * r, lambda r: 2 * r, lambda r: 2 + 0 * r, root=True),
    "mae": residual(np.abs, np.sign, lambda r: 0 * r),
    "huber": residual(
        _huber,
        lambda r, delta=1.0: np.where(np.abs(r) <= delta, r, delta * np.sign(r)),
        lambda r, delta=1.0: np.where(np.abs(r) <= delta, 1.0, 0.0),
    ),
    "pinball": residual(
        _pinball,
        lambda r, alpha=0.5: np.where(r > 0, 1 - alpha, np.where(r < 0, -alpha, 0.0)),
        lambda r, alpha=0.5: 0 * r,
    ),
    "log_cosh": residual(_log_cosh, np.tanh, _sech_squared),
    # sklearn.metrics.mean_squared_log_error: (log(1 + ŷ) - log(1 + y))², to 40 digits: the
    # difference of two logs cancels when ŷ is close to y.
    "msle": Definition(
        _exact(lambda t, p: (mpmath.log1p(p) - mpmath.log1p(t)) ** 2),
        _exact(lambda t, p: 2 * (mpmath.log1p(p) - mpmath.log1p(t)) / (1 + p)),
        _exact(lambda t, p: 2 * (1 - (mpmath.log1p(p) - mpmath.log1p(t))) / (1 + p) ** 2),
    ),
    # sklearn.metrics.mean_poisson_deviance: 2 (xlogy(y, y/ŷ) - y + ŷ), to 40 digits: its three
    # terms cancel when ŷ is close to y.
    "poisson_deviance": Definition(
        # at ŷ = inf the limit, inf (mpmath's -inf + inf would be NaN)
        _exact(lambda t, p: mpmath.inf if mpmath.isinf(p) else
               2 * ((t * mpmath.log(t / p) if t else 0) - t + p)),
        _exact(lambda t, p: 2 * (p - t) / p),
        _exact(lambda t, p: 2 * t / (p * p)),
    ),
    # sklearn.metrics.root_mean_squared_log_error: the root of each output's msle.
    "rmsle": Definition(
        _exact(lambda t, p: (mpmath.log1p(p) - mpmath.log1p(t)) ** 2),
        _exact(lambda t, p: 2 * (mpmath.log1p(p) - mpmath.log1p(t)) / (1 + p)),
        _exact(lambda t, p: 2 * (1 - (mpmath.log1p(p) - mpmath.log1p(t))) / (1 + p) ** 2),
        root=True,
    ),
    # sklearn.metrics.mean_absolute_percentage_error: |ŷ - y| / max(|y|, eps).
    "mape": Definition(
        lambda t, p, epsilon=_EPS: _mape(np.abs(p - t), t, epsilon),
        lambda t, p, epsilon=_EPS: _mape(np.sign(p - t), t, epsilon),
        lambda t, p, epsilon=_EPS: 0 * (p - t),
    ),
    # sklearn.metrics.mean_gamma_deviance: 2 (log(ŷ/y) + y/ŷ - 1), to 80 digits (it cancels
    # to about (ŷ/y - 1)² when ŷ is close to y: 1e-28 from terms of 1e-14 leaves 50 digits).
    "gamma_deviance": Definition(
        _exact(lambda t, p: 2 * (mpmath.log(p / t) + t / p - 1), 80),
        _exact(lambda t, p: 2 * (p - t) / (p * p)),
        _exact(lambda t, p: 2 * (2 * t - p) / p ** 3),
    ),
    # sklearn.metrics.mean_tweedie_deviance, its direct form at 80 digits: its three terms
    # cancel to about (ŷ - y)² when ŷ is close to y.
    "tweedie_deviance": Definition(
        _exact(_tweedie, 80), _exact(_tweedie_slope, 80), _exact(_tweedie_curvature, 80),
    ),
}


def definition(loss: str) -> Definition:
    try:
        return DEFINITIONS[loss]
    except KeyError:
        raise KeyError(f"tests/reference.py has no definition of the loss {loss!r}; add one") from None


def _as_2d(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    t = np.asarray(y_true, np.float64)
    p = np.asarray(y_pred, np.float64)
    pred_shape = p.shape
    if t.ndim == 0:
        t, p = t.reshape(1), p.reshape(1)
    n = max(t.shape[0], p.shape[0])
    return t.reshape(n, -1), p.reshape(n, -1), pred_shape


def _sample_weights(sample_weight: Any, n: int) -> np.ndarray:
    return np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(n)


def _output_share(multioutput: Any, k: int, reduction: str) -> np.ndarray:
    """How much each output counts: its weight, normalised for the mean."""
    v = np.ones(k) if isinstance(multioutput, str) else np.asarray(multioutput, np.float64).reshape(k)
    return v / v.sum() if reduction == "mean" else v


def loss_value(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
               multioutput: Any = "uniform_average", reduction: str = "mean",
               nan_policy: str = "propagate", **params: float) -> np.ndarray:
    """The loss as float64, following the contract's definitions."""
    if loss in STATISTICS:
        if reduction != "mean" or params:
            raise ValueError(f"{loss} takes reduction='mean' and no parameters")
        return statistics_value(loss, y_true, y_pred, sample_weight=sample_weight,
                                multioutput=multioutput, nan_policy=nan_policy)
    spec = definition(loss)
    t, p, pred_shape = _as_2d(y_true, y_pred)
    n, k = t.shape
    w = _sample_weights(sample_weight, n)
    e = spec.value(t, p, **params)
    wk = np.repeat(w[:, None], k, axis=1)
    if nan_policy == "omit":
        drop = np.isnan(t) | np.isnan(p)
        e = np.where(drop, 0.0, e)
        wk = np.where(drop, 0.0, wk)
    if reduction == "none":
        return (e * w[:, None]).reshape(pred_shape)
    sums = np.array([np.sum(wk[:, j] * e[:, j]) if nan_policy == "omit" else np.sum(w * e[:, j])
                     for j in range(k)])
    per_output = sums / wk.sum(axis=0) if reduction == "mean" else sums
    if spec.root:
        per_output = np.sqrt(per_output)
    if isinstance(multioutput, str) and multioutput == "raw_values":
        out_shape = np.asarray(y_pred).shape[1:] if np.ndim(y_pred) > 1 else ()
        if np.ndim(y_true) > np.ndim(y_pred):
            out_shape = ()
        return per_output.reshape(out_shape)
    return np.asarray(np.sum(_output_share(multioutput, k, reduction) * per_output))


def mean_loss(loss: str, y_true: Any, y_pred: Any, sample_weight: Any = None,
              **params: float) -> float:
    """The default call: weighted mean over samples, outputs averaged uniformly."""
    return float(loss_value(loss, y_true, y_pred, sample_weight=sample_weight, **params))


def loss_grad(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
              multioutput: Any = "uniform_average", reduction: str = "mean",
              nan_policy: str = "propagate", **params: float) -> np.ndarray:
    """d loss / d y_pred in float64 for a scalar loss (chain rule, by hand)."""
    if loss in STATISTICS:
        return statistics_grad(loss, y_true, y_pred, sample_weight=sample_weight,
                               multioutput=multioutput, nan_policy=nan_policy)
    spec = definition(loss)
    t, p, pred_shape = _as_2d(y_true, y_pred)
    n, k = t.shape
    w = _sample_weights(sample_weight, n)
    drop = (np.isnan(t) | np.isnan(p)) if nan_policy == "omit" else np.zeros((n, k), bool)
    t, p = np.where(drop, 1.0, t), np.where(drop, 1.0, p)  # dropped: a harmless pair
    de = spec.slope(t, p, **params) * w[:, None]
    de = np.where(drop, 0.0, de)
    v = _output_share(multioutput, k, reduction)
    if reduction == "mean":
        kept_weight = np.where(drop, 0.0, w[:, None]).sum(axis=0)
        scale = v / kept_weight
        if spec.root:
            e = np.where(drop, 0.0, spec.value(t, p, **params))
            m = (e * w[:, None]).sum(axis=0) / kept_weight
            root = np.sqrt(m)
            scale = np.where(root > 0, scale / (2 * np.where(root > 0, root, 1.0)), 0.0)
            # Convention: an infinite RMSE (overflow or an infinite input) has a non-finite
            # gradient, never 1 / inf = 0 (docs/conventions.md).
            scale = np.where(np.isinf(root), np.inf, scale)
    else:
        scale = v
    return np.where(drop, 0.0, de * scale[None, :]).reshape(pred_shape)


def loss_hessian(loss: str, y_true: Any, y_pred: Any, *,
                               sample_weight: Any = None, **params: float) -> np.ndarray:
    """The Hessian d²loss / d y_pred² of the default mean loss of 1-D inputs, by hand.

    For a loss without a root it is diagonal: ``wᵢ e''(rᵢ) / Σw``. For a root
    (RMSE, ``m = Σ wᵢ e(rᵢ) / Σw``): ``H = (m''/(2√m)) - (m' m'ᵀ)/(4 m^{3/2})``.
    """
    if loss in STATISTICS:
        return statistics_hessian(loss, y_true, y_pred, sample_weight=sample_weight)
    spec = definition(loss)
    t = np.asarray(y_true, np.float64).reshape(-1)
    p = np.asarray(y_pred, np.float64).reshape(-1)
    w = _sample_weights(sample_weight, t.size)
    slope = w * spec.slope(t, p, **params) / w.sum()
    curvature = np.diag(w * spec.curvature(t, p, **params) / w.sum())
    if not spec.root:
        return curvature
    m = float(np.sum(w * spec.value(t, p, **params)) / w.sum())
    return curvature / (2 * np.sqrt(m)) - np.outer(slope, slope) / (4 * m ** 1.5)


# -- metrics that are not a weighted mean of one elementwise term (Loss(statistics=...)) ----------
def _score_parts(loss: str, t: np.ndarray, p: np.ndarray, w: np.ndarray, drop: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per output: the numerator and denominator of ``1 - num/den`` and each output's kept
    weights ``(n, K)``, plainly (two passes: the mean first)."""
    wk = np.where(drop, 0.0, w[:, None])
    t0, p0 = np.where(drop, 0.0, t), np.where(drop, 0.0, p)
    total = wk.sum(axis=0)
    y_mean = (wk * t0).sum(axis=0) / total
    den = (wk * (t0 - y_mean) ** 2).sum(axis=0)
    r = t0 - p0
    if loss == "r2":
        num = (wk * r ** 2).sum(axis=0)
    else:
        r_mean = (wk * r).sum(axis=0) / total
        num = (wk * (r - r_mean) ** 2).sum(axis=0)
    return num, den, wk


def _scores(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """scikit-learn's force_finite: a constant target scores 1 if fitted exactly, else 0."""
    return np.array([1 - a / b if b != 0 else (1.0 if a == 0 else a if np.isnan(a) else 0.0)
                     for a, b in zip(num, den)])  # a NaN error stays NaN


def _score_share(multioutput: Any, den: np.ndarray) -> np.ndarray:
    k = den.size
    if isinstance(multioutput, str) and multioutput == "variance_weighted" and np.any(den != 0):
        return den / den.sum()
    return _output_share(multioutput, k, "mean")


STATISTICS = ("r2", "explained_variance", "max_error", "median_absolute_error",
              "d2_absolute_error")
#: The metrics of a median of all the samples (scikit-learn's averaged weighted percentile).
MEDIANS = ("median_absolute_error", "d2_absolute_error")


def weighted_median(values: np.ndarray, weights: np.ndarray) -> tuple[float, dict[int, float]]:
    """scikit-learn's ``_weighted_percentile(values, weights, 50, average=True)`` of one column,
    step by step, and how much each element counts in it (``{index: share}``): sort (stably),
    walk the running weight to half the total; where it meets half (within float64's epsilon)
    average with the next value of positive weight. Elements of weight 0 never count."""
    order = np.argsort(values, kind="stable")
    running, half = 0.0, 0.5 * float(np.sum(weights[order]))
    cumulative = np.cumsum(weights[order])
    for rank, index in enumerate(order):
        running = cumulative[rank]
        if running >= half and weights[index] > 0:
            break
    if running - half > np.finfo(np.float64).eps:
        return float(values[index]), {int(index): 1.0}
    later = [int(j) for j in order[rank + 1:] if weights[j] > 0]
    other = later[0] if later else int(index)
    shares: dict[int, float] = {}
    for j in (int(index), other):
        shares[j] = shares.get(j, 0.0) + 0.5
    return (float(values[index]) + float(values[other])) / 2, shares


def _median_parts(loss: str, t: np.ndarray, p: np.ndarray, w: np.ndarray, drop: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, list[dict[int, float]]]:
    """Per output: the value's numerator and denominator (the median absolute error over 1; for
    D², Σw|y - ŷ| and Σw|y - median(y)|) and which elements the median takes."""
    k = t.shape[1]
    num, den, shares = np.empty(k), np.empty(k), []
    for j in range(k):
        kept = ~drop[:, j]
        weights = np.where(kept, w, 0.0)
        if not kept.any():
            num[j], den[j] = np.nan, 1.0
            shares.append({})
            continue
        if np.isnan(t[kept, j]).any() or np.isnan(p[kept, j]).any():
            num[j], den[j] = np.nan, 1.0
            shares.append({})
            continue
        if loss == "median_absolute_error":
            value, share = weighted_median(np.abs(t[:, j] - p[:, j]), weights)
            num[j], den[j] = value, 1.0
        else:
            centre, share = weighted_median(np.where(kept, t[:, j], 0.0), weights)
            num[j] = np.sum(np.where(kept, weights * np.abs(t[:, j] - p[:, j]), 0.0))
            den[j] = np.sum(np.where(kept, weights * np.abs(t[:, j] - centre), 0.0))
        shares.append(share)
    return num, den, shares


def statistics_value(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
                     multioutput: Any = "uniform_average", nan_policy: str = "propagate"
                     ) -> np.ndarray:
    t, p, _ = _as_2d(y_true, y_pred)
    n, k = t.shape
    drop = (np.isnan(t) | np.isnan(p)) if nan_policy == "omit" else np.zeros((n, k), bool)
    if loss == "max_error":  # nothing kept: NaN, as every loss's empty output
        return np.asarray(np.nan if drop.all() else np.max(np.where(drop, -np.inf, np.abs(t - p))))
    if loss in MEDIANS:
        num, den, _ = _median_parts(loss, t, p, _sample_weights(sample_weight, n), drop)
        per_output = num if loss == "median_absolute_error" else _scores(num, den)
        den = np.ones(k)  # no variance_weighted: outputs share as multioutput says
    else:
        num, den, _ = _score_parts(loss, t, p, _sample_weights(sample_weight, n), drop)
        per_output = _scores(num, den)
    if isinstance(multioutput, str) and multioutput == "raw_values":
        out_shape = np.asarray(y_pred).shape[1:] if np.ndim(y_pred) > 1 else ()
        return per_output.reshape(out_shape)
    return np.asarray(np.sum(_score_share(multioutput, den) * per_output))


def statistics_grad(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
                    multioutput: Any = "uniform_average", nan_policy: str = "propagate"
                    ) -> np.ndarray:
    t, p, pred_shape = _as_2d(y_true, y_pred)
    n, k = t.shape
    drop = (np.isnan(t) | np.isnan(p)) if nan_policy == "omit" else np.zeros((n, k), bool)
    if loss == "max_error":
        a = np.where(drop, -np.inf, np.abs(t - p))
        at_max = (a == a.max(axis=0)).astype(float)
        slope = np.where(drop, 0.0, np.sign(p - t))
        return (slope * at_max / at_max.sum(axis=0)).reshape(pred_shape)
    w = _sample_weights(sample_weight, n)
    if loss in MEDIANS:  # the subgradient sign(ŷ - y): at the median's elements, or weighted
        _, den, shares = _median_parts(loss, t, p, w, drop)
        sign = np.where(drop, 0.0, np.sign(p - t))
        slope = np.zeros((n, k))
        for j in range(k):
            if loss == "median_absolute_error":
                for i, share in shares[j].items():
                    slope[i, j] = sign[i, j] * share
            elif den[j] != 0:
                slope[:, j] = -w * sign[:, j] / den[j]
        share_of_output = _output_share(multioutput, k, "mean")
        return (slope * share_of_output[None, :]).reshape(pred_shape)
    _, den, wk = _score_parts(loss, t, p, w, drop)
    r = np.where(drop, 0.0, t - p)
    if loss == "explained_variance":
        r = r - (wk * r).sum(axis=0) / wk.sum(axis=0)
    slope = 2 * wk * r / np.where(den != 0, den, np.inf)  # d score / d ŷ; 0 for a constant target
    return np.where(drop, 0.0, slope * _score_share(multioutput, den)[None, :]).reshape(pred_shape)


def statistics_hessian(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None
                       ) -> np.ndarray:
    t = np.asarray(y_true, np.float64).reshape(-1)
    w = _sample_weights(sample_weight, t.size)
    if loss in ("max_error", *MEDIANS):  # piecewise linear in ŷ
        return np.zeros((t.size, t.size))
    den = np.sum(w * (t - np.sum(w * t) / w.sum()) ** 2)
    curvature = np.diag(w)
    if loss == "explained_variance":  # the mean residual: a rank-one part
        curvature = curvature - np.outer(w, w) / w.sum()
    return -2 * curvature / den
