"""Large tensors in training take one autograd function for forward and backward (MSE, MAE).

Its values and gradients equal torch's own losses; it survives a second
backward over a retained graph, differentiates twice with ``create_graph``,
gives the target its gradient too, and is as accurate as torch's cascade sums.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import mseplug  # noqa: E402
from mseplug.backend.torch.fused import FUSED_MIN  # noqa: E402

N = FUSED_MIN * 3 + 1234  # several rows and a ragged rest
ANCHORS = {"mse": F.mse_loss, "mae": F.l1_loss}


def tensors(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    y_true = torch.randn(N, generator=generator, dtype=dtype)
    return y_true, y_true + torch.randn(N, generator=generator, dtype=dtype)


@pytest.mark.parametrize("loss", sorted(ANCHORS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_values_and_gradients_equal_torch(loss, dtype, reduction) -> None:
    y_true, y_pred = tensors(dtype)
    ours_p, theirs_p = y_pred.clone().requires_grad_(), y_pred.clone().requires_grad_()
    ours = mseplug.get_loss(loss)(y_true, ours_p, reduction=reduction)
    theirs = ANCHORS[loss](theirs_p, y_true, reduction=reduction)
    assert ours.grad_fn.name() == "_ResidualLossBackward"
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=0)
    ours.backward()
    theirs.backward()
    torch.testing.assert_close(ours_p.grad, theirs_p.grad, rtol=rtol, atol=0)


def test_accuracy_matches_an_exact_sum() -> None:
    y_true, y_pred = tensors()
    r = (y_pred.double() - y_true.double()).numpy()
    for loss, exact in (("mse", math.fsum((r * r).tolist()) / N),
                        ("mae", math.fsum(np.abs(r).tolist()) / N)):
        value = mseplug.get_loss(loss)(y_true, y_pred.clone().requires_grad_()).item()
        assert abs(value - exact) / exact < 1e-6


def test_a_retained_graph_backs_up_twice_the_same() -> None:
    y_true, y_pred = tensors()
    p = y_pred.clone().requires_grad_()
    value = mseplug.mse(y_true, p)
    value.backward(retain_graph=True)
    first = p.grad.clone()
    p.grad = None
    value.backward()
    torch.testing.assert_close(p.grad, first, rtol=0, atol=0)
    torch.testing.assert_close(first, 2 * (y_pred - y_true) / N)


@pytest.mark.parametrize(("loss", "curvature"), [("mse", 2.0), ("mae", 0.0)])
def test_double_backward_gives_the_hessian(loss, curvature) -> None:
    y_true, y_pred = tensors(torch.float64)
    p = y_pred.clone().requires_grad_()
    (gradient,) = torch.autograd.grad(mseplug.get_loss(loss)(y_true, p), p, create_graph=True)
    direction = torch.randn(N, dtype=torch.float64)
    if curvature:
        (hvp,) = torch.autograd.grad(gradient @ direction, p)
        torch.testing.assert_close(hvp, curvature * direction / N)
    else:
        assert not gradient.requires_grad or torch.count_nonzero(
            torch.autograd.grad(gradient @ direction, p, allow_unused=True,
                                materialize_grads=True)[0]) == 0


def test_the_target_gets_the_opposite_gradient_and_rmse_the_root() -> None:
    y_true, y_pred = tensors(torch.float64)
    t, p = y_true.clone().requires_grad_(), y_pred.clone().requires_grad_()
    mseplug.mse(t, p).backward()
    torch.testing.assert_close(t.grad, -p.grad)
    q = y_pred.clone().requires_grad_()
    value = mseplug.rmse(y_true, q)
    value.backward()
    expected = (y_pred - y_true) / (N * math.sqrt(float(((y_pred - y_true) ** 2).mean())))
    torch.testing.assert_close(q.grad, expected)


def test_small_tensors_and_no_grad_keep_torchs_kernels() -> None:
    y_true, y_pred = tensors()
    assert mseplug.mse(y_true[:100], y_pred[:100].requires_grad_()).grad_fn.name() == "MseLossBackward0"
    with torch.no_grad():
        assert mseplug.mse(y_true, y_pred.requires_grad_()).grad_fn is None
