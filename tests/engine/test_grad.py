"""Gradients: analytic NumPy gradients against finite differences, and the shared conventions."""

from __future__ import annotations

import numpy as np
import pytest
from loss_table import call, in_domain, in_every_domain, rows, skip_if_refused
from reference import loss_grad

import mseplug


def finite_difference(loss: str, y_true, y_pred, eps: float = 1e-6, **options) -> np.ndarray:
    """Central differences of the float64 loss, one element of y_pred at a time."""
    grad = np.zeros_like(y_pred)
    for index in np.ndindex(y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (float(call(loss, y_true, up, **options))
                       - float(call(loss, y_true, down, **options))) / (2 * eps)
    return grad


@pytest.mark.parametrize(("loss", "params"), rows())
@pytest.mark.parametrize("shape", [(6,), (5, 3), (4, 2, 2)])
@pytest.mark.parametrize(
    "options",
    [{}, {"sample_weight": "w"}, {"multioutput": "weights"}, {"reduction": "sum"},
     {"nan_policy": "omit"}, {"params": True}],
    ids=["default", "weighted", "output-weights", "sum", "omit", "params"],
)
def test_analytic_gradient_matches_finite_differences(loss, params, shape, options, rng) -> None:
    options = dict(options)
    if mseplug.get_loss(loss).loss.root and options.get("reduction") == "sum":
        pytest.skip(f"{loss} has no sum reduction")
    skip_if_refused(loss, weighted="sample_weight" in options, outputs=int(np.prod(shape[1:])),
                    multioutput=options.get("multioutput", "uniform_average"),
                    reduction=options.get("reduction", "mean"))
    if options.pop("params", False):
        if not params:
            pytest.skip(f"{loss} has no parameters")
        options = dict(params)
    y_true = rng.normal(size=shape)
    y_pred = y_true + rng.choice([-1, 1], size=shape) * rng.uniform(0.05, 2, size=shape)
    y_true, y_pred = in_domain(loss, y_true, y_pred)
    if options.get("sample_weight") == "w":
        options["sample_weight"] = rng.uniform(0.1, 2, size=shape[0])
    if options.get("multioutput") == "weights":
        options["multioutput"] = rng.uniform(0.1, 1, size=int(np.prod(shape[1:])))
    if options.get("nan_policy") == "omit":
        y_true.reshape(-1)[1] = np.nan
    value, grad = mseplug.value_and_grad(loss, y_true, y_pred, **options)
    assert grad.shape == y_pred.shape and grad.dtype == y_pred.dtype
    assert np.all(np.isfinite(grad))
    assert float(value) == pytest.approx(float(call(loss, y_true, y_pred, **options)))
    np.testing.assert_allclose(grad, finite_difference(loss, y_true, y_pred, **options),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(grad, loss_grad(loss, y_true, y_pred, **options),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("loss", "params"), rows())
def test_every_gradient_is_zero_at_a_perfect_fit(backend, loss, params) -> None:
    """Zero residuals: MAE's and pinball's subgradient 0, RMSE's 0 (never NaN), and e'(0) = 0."""
    y = backend.asarray([1.0, 2.0, 3.0])
    value, grad = mseplug.value_and_grad(loss, y, backend.asarray([1.0, 2.0, 3.0]), **params)
    best = 1.0 if mseplug.get_loss(loss).loss.greater_is_better else 0.0  # R²'s perfect score
    assert float(backend.to_numpy(value)) == best
    assert backend.to_numpy(grad).tolist() == [0.0, 0.0, 0.0]


def test_conventions_at_zero_residual_and_perfect_fit() -> None:
    y = np.array([1.0, 2.0, 3.0])
    assert mseplug.grad("mae", y, y.copy()).tolist() == [0.0, 0.0, 0.0]
    assert mseplug.grad("mae", y, np.array([1.0, 5.0, 3.0])).tolist() == [0.0, 1 / 3, 0.0]
    value, grad = mseplug.value_and_grad("rmse", y, y.copy())
    assert float(value) == 0.0 and grad.tolist() == [0.0, 0.0, 0.0]
    per_output = np.array([[1.0, 1.0], [2.0, 5.0]])
    grad = mseplug.grad("rmse", per_output, np.array([[1.0, 2.0], [2.0, 5.0]]))
    assert np.all(np.isfinite(grad)) and grad[:, 0].tolist() == [0.0, 0.0]


def test_grad_accepts_the_function_and_keeps_dtype() -> None:
    y_true = np.array([0.0, 1.0], np.float32)
    y_pred = np.array([1.0, 1.0], np.float32)
    grad = mseplug.grad(mseplug.mse, y_true, y_pred)
    assert grad.dtype == np.float32 and grad.tolist() == [1.0, 0.0]
    assert mseplug.grad(mseplug.huber, y_true, y_pred, delta=0.5).tolist() == [0.25, 0.0]


def test_grad_of_column_vector_keeps_y_pred_shape(rng) -> None:
    y_true, y_pred = rng.normal(size=5), rng.normal(size=(5, 1))
    grad = mseplug.grad("mse", y_true, y_pred)
    assert grad.shape == (5, 1)
    np.testing.assert_allclose(grad[:, 0], 2 * (y_pred[:, 0] - y_true) / 5)


def test_grad_needs_a_scalar_loss(rng) -> None:
    y_true, y_pred = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    with pytest.raises(ValueError, match="scalar"):
        mseplug.grad("mse", y_true, y_pred, reduction="none")
    with pytest.raises(ValueError, match="scalar"):
        mseplug.grad("mse", y_true, y_pred, multioutput="raw_values")
    with pytest.raises(ValueError, match="loss"):
        mseplug.grad("not_a_loss", y_true, y_pred)
    with pytest.raises(TypeError, match="loss"):
        mseplug.grad(np.mean, y_true, y_pred)


def test_array_api_gradient_matches_numpy(rng) -> None:
    xps = pytest.importorskip("array_api_strict")
    y_true, y_pred = in_every_domain(rng.normal(size=(6, 2)), rng.normal(size=(6, 2)))
    w = rng.uniform(size=6)
    for loss in rows(weighted=True, outputs=True):
        loss = loss.values[0]
        expected = mseplug.grad(loss, y_true, y_pred, sample_weight=w)
        got = mseplug.grad(loss, xps.asarray(y_true), xps.asarray(y_pred), sample_weight=xps.asarray(w))
        assert type(got).__module__.startswith("array_api_strict")
        np.testing.assert_allclose(np.from_dlpack(got), expected, rtol=1e-12)
