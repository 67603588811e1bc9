"""Second derivatives agree across backends: jax.hessian, torch.func.hessian, double backward.

Every loss's Hessian with respect to ``y_pred`` equals the independent float64
reference (``reference.loss_hessian``: ``wᵢ e''(rᵢ)/Σw`` on the diagonal, and
the chain rule through the root for RMSE), on every backend that has one,
away from kinks and at a zero residual, where the anchors define it: there
Huber's second derivative is 1 (optax, ``torch.nn.HuberLoss``), MAE's 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from libraries import installed_backends
from loss_table import call, in_domain, rows, skip_if_refused
from reference import loss_hessian

import mseplug

N = 6


@pytest.fixture
def inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Residuals of magnitude 0.1 to 0.6 or 1.5 to 3: away from 0 and from Huber's kinks."""
    y_true = rng.normal(size=N)
    sizes = np.where(rng.random(N) < 0.5, rng.uniform(0.1, 0.6, N), rng.uniform(1.5, 3.0, N))
    return y_true, y_true + rng.choice([-1.0, 1.0], N) * sizes, rng.uniform(0.2, 2.0, N)


def jax_hessian(loss: str, y_true: np.ndarray, y_pred: np.ndarray, **options: Any) -> np.ndarray:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    weight = options.pop("sample_weight", None)
    weight = None if weight is None else jnp.asarray(weight)

    def f(p: Any) -> Any:
        return call(loss, jnp.asarray(y_true), p, sample_weight=weight, **options)

    jitted = np.asarray(jax.jit(jax.hessian(f))(jnp.asarray(y_pred)))
    np.testing.assert_allclose(np.asarray(jax.hessian(f)(jnp.asarray(y_pred))), jitted, rtol=1e-12)
    return jitted


def torch_hessians(loss: str, y_true: np.ndarray, y_pred: np.ndarray,
                   **options: Any) -> list[np.ndarray]:
    """``torch.func.hessian`` and the Hessian row by row from double backward."""
    torch = pytest.importorskip("torch")
    t = torch.asarray(y_true)
    weight = options.pop("sample_weight", None)
    weight = None if weight is None else torch.asarray(weight)

    def f(p: Any) -> Any:
        return call(loss, t, p, sample_weight=weight, **options)

    functional = torch.func.hessian(f)(torch.asarray(y_pred)).numpy(force=True)
    p = torch.asarray(y_pred).requires_grad_(True)
    (grad,) = torch.autograd.grad(f(p), p, create_graph=True)
    rows_ = [torch.autograd.grad(grad[i], p, retain_graph=True)[0].numpy(force=True)
             for i in range(N)]
    module = mseplug.torch.Loss(loss, **options)
    q = torch.asarray(y_pred).requires_grad_(True)
    (module_grad,) = torch.autograd.grad(module(q, t, weight), q, create_graph=True)
    module_rows = [torch.autograd.grad(module_grad[i], q, retain_graph=True)[0].numpy(force=True)
                   for i in range(N)]
    sign = -1.0 if mseplug.get_loss(loss).loss.greater_is_better else 1.0  # modules: 1 - score
    return [functional, np.stack(rows_), sign * np.stack(module_rows)]


@pytest.mark.parametrize(("loss", "params"), rows())
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("library", [n for n in ("jax", "torch") if n in installed_backends()])
def test_hessians_equal_the_reference(loss, params, weighted, library, inputs) -> None:
    skip_if_refused(loss, weighted=weighted)
    y_true, y_pred, w = inputs
    y_true, y_pred = in_domain(loss, y_true, y_pred, **params)
    options = {**params, "sample_weight": w if weighted else None}
    expected = loss_hessian(loss, y_true, y_pred, **options)
    if library == "jax":
        got = [jax_hessian(loss, y_true, y_pred, **options)]
    else:
        got = torch_hessians(loss, y_true, y_pred, **options)
    for hessian in got:
        np.testing.assert_allclose(hessian, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("library", [n for n in ("jax", "torch") if n in installed_backends()])
def test_at_a_zero_residual_every_backend_agrees_with_the_anchors(library) -> None:
    zeros = np.zeros(N)
    expected = {"mse": 2.0, "mae": 0.0, "huber": 1.0, "pinball": 0.0, "log_cosh": 1.0}
    for loss, curvature in expected.items():
        hessians = ([jax_hessian(loss, zeros, zeros)] if library == "jax"
                    else torch_hessians(loss, zeros, zeros))
        for hessian in hessians:
            np.testing.assert_allclose(hessian, np.eye(N) * curvature / N, atol=1e-15,
                                       err_msg=f"{library} {loss}")
    # RMSE at a perfect fit: the gradient is 0 by convention and stays finite under a second pass.
    hessians = ([jax_hessian("rmse", zeros, zeros)] if library == "jax"
                else torch_hessians("rmse", zeros, zeros))
    assert all(np.isfinite(h).all() for h in hessians)


def test_huber_anchors_at_zero() -> None:
    """optax and torch.nn.HuberLoss say the second derivative of Huber at 0 is 1; so do we."""
    if "jax" in installed_backends():
        jax = pytest.importorskip("jax")
        optax = pytest.importorskip("optax")
        jnp = jax.numpy
        ours = jax.hessian(lambda p: mseplug.huber(jnp.zeros(1), p))(jnp.zeros(1))
        theirs = jax.hessian(lambda p: optax.huber_loss(p, jnp.zeros(1)).mean())(jnp.zeros(1))
        assert float(ours[0, 0]) == float(theirs[0, 0]) == 1.0
    if "torch" in installed_backends():
        torch = pytest.importorskip("torch")
        from mseplug.torch import HuberLoss, Loss

        zero = torch.zeros(1, dtype=torch.float64)
        for module in (torch.nn.HuberLoss(), HuberLoss(), Loss("huber")):
            hessian = torch.func.hessian(lambda p, m=module: m(p, zero))(zero)
            assert float(hessian[0, 0]) == 1.0, module
