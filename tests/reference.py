"""An independent float64 NumPy reference of the whole contract, written plainly (no mseplug).

Values and gradients of every loss, option and NaN policy, straight from the
formulas in DESIGN.md section 2, so the backends can be compared against
something that shares none of their code.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _elementwise(loss: str, r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    if loss in ("mse", "rmse"):
        return r * r
    if loss == "mae":
        return a
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _derivative(loss: str, r: np.ndarray, delta: float) -> np.ndarray:
    if loss in ("mse", "rmse"):
        return 2 * r
    if loss == "mae":
        return np.sign(r)
    return np.where(np.abs(r) <= delta, r, delta * np.sign(r))


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
               nan_policy: str = "propagate", delta: float = 1.0) -> np.ndarray:
    """The loss as float64, following the contract's definitions."""
    t, p, pred_shape = _as_2d(y_true, y_pred)
    n, k = t.shape
    w = _sample_weights(sample_weight, n)
    e = _elementwise(loss, p - t, delta)
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
    if loss == "rmse":
        per_output = np.sqrt(per_output)
    if isinstance(multioutput, str) and multioutput == "raw_values":
        out_shape = np.asarray(y_pred).shape[1:] if np.ndim(y_pred) > 1 else ()
        if np.ndim(y_true) > np.ndim(y_pred):
            out_shape = ()
        return per_output.reshape(out_shape)
    return np.asarray(np.sum(_output_share(multioutput, k, reduction) * per_output))


def loss_grad(loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
              multioutput: Any = "uniform_average", reduction: str = "mean",
              nan_policy: str = "propagate", delta: float = 1.0) -> np.ndarray:
    """d loss / d y_pred in float64 for a scalar loss (chain rule, by hand)."""
    t, p, pred_shape = _as_2d(y_true, y_pred)
    n, k = t.shape
    w = _sample_weights(sample_weight, n)
    drop = (np.isnan(t) | np.isnan(p)) if nan_policy == "omit" else np.zeros((n, k), bool)
    r = np.where(drop, 0.0, p - t)
    de = _derivative(loss, r, delta) * w[:, None]
    de = np.where(drop, 0.0, de)
    v = _output_share(multioutput, k, reduction)
    if reduction == "mean":
        kept_weight = np.where(drop, 0.0, w[:, None]).sum(axis=0)
        scale = v / kept_weight
        if loss == "rmse":
            e = np.where(drop, 0.0, _elementwise(loss, r, delta))
            m = (e * w[:, None]).sum(axis=0) / kept_weight
            root = np.sqrt(m)
            scale = np.where(root > 0, scale / (2 * np.where(root > 0, root, 1.0)), 0.0)
            # Convention: an infinite RMSE (overflow or an infinite input) has a non-finite
            # gradient, never 1 / inf = 0 (docs/conventions.md).
            scale = np.where(np.isinf(root), np.inf, scale)
    else:
        scale = v
    return np.where(drop, 0.0, de * scale[None, :]).reshape(pred_shape)
