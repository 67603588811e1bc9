"""The torch backend and mseplug.torch's nn.Module losses, against torch.nn.functional itself."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402
from libraries import RTOL  # noqa: E402
from loss_table import (  # noqa: E402
    NAMES,
    call,
    example_params,
    in_domain,
    refusal,
    rows,
    skip_if_refused,
)
from reference import mean_loss  # noqa: E402

import mseplug  # noqa: E402
from mseplug.torch import HuberLoss, Loss, MAELoss, MSELoss, RMSELoss  # noqa: E402

LOSSES = NAMES
DTYPES = ("float16", "bfloat16", "float32", "float64")
NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def torch_reference(loss: str, y_true: Any, y_pred: Any, reduction: str = "mean",
                    delta: float = 1.0) -> Any:
    """torch.nn.functional's answer, argument order (input=y_pred, target=y_true)."""
    if loss == "rmse":
        return torch.sqrt(F.mse_loss(y_pred, y_true, reduction=reduction))
    if loss == "huber":
        return F.huber_loss(y_pred, y_true, reduction=reduction, delta=delta)
    return {"mse": F.mse_loss, "mae": F.l1_loss}[loss](y_pred, y_true, reduction=reduction)


def pair(rng: np.random.Generator, shape: tuple[int, ...], dtype: str = "float64",
         loss: str = "mse") -> tuple:
    """Two tensors of random numbers, in ``loss``'s domain."""
    t, p = in_domain(loss, rng.normal(size=shape), rng.normal(size=shape) * 2)
    return torch.asarray(t).to(getattr(torch, dtype)), torch.asarray(p).to(getattr(torch, dtype))


# -- values against torch.nn.functional -----------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
@pytest.mark.parametrize("shape", [(64,), (16, 3), ()])
def test_values_equal_functional(rng, loss, reduction, dtype, shape):
    t, p = pair(rng, shape, dtype)
    got = call(loss, t, p, reduction=reduction)
    want = torch_reference(loss, t.double(), p.double(), reduction)
    assert got.dtype == getattr(torch, dtype)
    assert got.shape == (p.shape if reduction == "none" else ())
    np.testing.assert_allclose(got.double().numpy(), want.numpy(), rtol=RTOL[dtype], atol=0)
    # And torch's own kernel in the same dtype (it accumulates half precision in float32 too).
    native = torch_reference(loss, t, p, reduction).double().numpy()
    np.testing.assert_allclose(got.double().numpy(), native, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_huber_delta_equals_functional(rng, delta, reduction):
    t, p = pair(rng, (40, 2))
    got = mseplug.huber(t, p, delta=delta, reduction=reduction)
    want = F.huber_loss(p, t, delta=delta, reduction=reduction)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    weighted = mseplug.huber(t, p, delta=delta, sample_weight=torch.ones(40), reduction=reduction)
    torch.testing.assert_close(weighted, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(50,), (50, 1), (12, 3, 2)])
def test_rmse_values(rng, dtype, shape):
    t, p = pair(rng, shape, dtype)
    got = mseplug.rmse(t, p)
    assert got.dtype == getattr(torch, dtype) and got.shape == ()
    want = mean_loss("rmse", t.double().numpy(), p.double().numpy())
    np.testing.assert_allclose(float(got), want, rtol=RTOL[dtype])
    if len(shape) == 1:
        torch.testing.assert_close(got.double(), torch_reference("rmse", t, p).double(),
                                   rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse", "huber"])  # the losses torch defines
def test_default_options_take_torch_native_kernels(rng, loss):
    t, p = pair(rng, (30,))
    p.requires_grad_(True)
    grad_fn = call(loss, t, p).grad_fn.name()
    expected = {"mse": "MseLossBackward0", "mae": "MeanBackward0",  # torch's l1_loss is abs+mean
                # not F.huber_loss: its double backward says 0 at |r| == delta, mseplug says 1
                "huber": "DivBackward0",
                "rmse": "WhereBackward0"}[loss]  # sqrt(mse_loss) behind the overflow guard
    assert grad_fn == expected


def test_huber_second_derivative_at_the_kink_is_one_unlike_torchs_fused_loss():
    t = torch.zeros(1, dtype=torch.float64)
    at_delta = torch.full((1,), 2.0, dtype=torch.float64)
    ours = torch.autograd.functional.hessian(lambda q: mseplug.huber(t, q, delta=2.0), at_delta)
    theirs = torch.autograd.functional.hessian(
        lambda q: torch.nn.functional.huber_loss(q, t, delta=2.0), at_delta)
    assert ours.item() == 1.0 and theirs.item() == 0.0


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ours, theirs", [
    (MSELoss, torch.nn.MSELoss), (MAELoss, torch.nn.L1Loss), (HuberLoss, torch.nn.HuberLoss),
])
def test_modules_are_drop_in(rng, ours, theirs, reduction):
    t, p = pair(rng, (20, 4))
    p1, p2 = p.clone().requires_grad_(True), p.clone().requires_grad_(True)
    got, want = ours(reduction=reduction)(p1, t), theirs(reduction=reduction)(p2, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(p1.grad, p2.grad, rtol=1e-12, atol=0)
    assert ours(reduction).reduction == theirs(reduction=reduction).reduction == reduction


def test_huber_module_positional_order_matches_torch(rng):
    t, p = pair(rng, (30,))
    torch.testing.assert_close(HuberLoss("sum", 0.5)(p, t), torch.nn.HuberLoss("sum", 0.5)(p, t))


# -- the contract's semantics, against the NumPy backend --------------------------------------


OPTION_GRID = [
    (loss, reduction, multioutput)
    for loss in LOSSES
    for reduction in (("mean",) if mseplug.get_loss(loss).loss.root else ("mean", "sum", "none"))
    for multioutput in ("uniform_average", "raw_values", "weights")
    if not (multioutput == "weights" and reduction == "none")
]


@pytest.mark.parametrize("loss, reduction, multioutput", OPTION_GRID)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
def test_every_option_equals_numpy_backend(rng, loss, reduction, multioutput, weighted,
                                           nan_policy):
    skip_if_refused(loss, weighted=weighted, outputs=3, multioutput=multioutput, reduction=reduction)
    t, p = in_domain(loss, rng.normal(size=(25, 3)), rng.normal(size=(25, 3)))
    if nan_policy == "omit":
        t[[1, 4], 0], p[[2, 4], 2] = np.nan, np.nan
    options: dict[str, Any] = {
        "reduction": reduction, "nan_policy": nan_policy,
        "multioutput": [1.0, 2.0, 0.5] if multioutput == "weights" else multioutput,
        "sample_weight": rng.uniform(0.1, 2.0, size=25) if weighted else None,
        **example_params(loss),
    }
    want = call(loss, t, p, **options)
    torch_options = dict(options)
    if weighted:
        torch_options["sample_weight"] = torch.asarray(options["sample_weight"])
    got = call(loss, torch.asarray(t), torch.asarray(p), **torch_options)
    assert isinstance(got, torch.Tensor)
    assert tuple(got.shape) == np.shape(want)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)
    assert not np.isnan(got.numpy()).any()


def test_raw_values_shapes():
    assert mseplug.mse(torch.zeros(5), torch.ones(5), multioutput="raw_values").shape == ()
    assert mseplug.mse(torch.zeros(5, 2, 3), torch.ones(5, 2, 3),
                       multioutput="raw_values").shape == (2, 3)
    value = mseplug.mae(torch.zeros(4, 2), torch.tensor([[1.0, 2.0]] * 4), multioutput="raw_values")
    assert value.tolist() == [1.0, 2.0]


def test_sum_reduction_is_total_sum(rng):
    t, p = pair(rng, (10, 3))
    torch.testing.assert_close(mseplug.mse(t, p, reduction="sum"), ((p - t) ** 2).sum())
    got = mseplug.mse(t, p, reduction="sum", multioutput=[1.0, 0.0, 2.0])
    torch.testing.assert_close(got, ((p - t) ** 2).sum(0) @ torch.tensor([1.0, 0.0, 2.0]).double())


def test_nan_policies():
    t = torch.tensor([1.0, float("nan"), 3.0, 4.0])
    p = torch.tensor([2.0, 2.0, float("nan"), 4.0])
    for loss in (name for name in LOSSES if not refusal(name, outputs=2)):
        assert torch.isnan(call(loss, t, p))
        assert torch.isnan(call(loss, t[:, None].expand(4, 2), p[:, None].expand(4, 2)))
    assert float(mseplug.mse(t, p, nan_policy="omit")) == 0.5
    assert mseplug.mae(t, p, nan_policy="omit", reduction="none").tolist() == [1.0, 0, 0, 0]
    for name, kwargs in (("y_true", {}), ("y_pred", {"y_true": torch.zeros(4)})):
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            mseplug.mse(kwargs.get("y_true", t), p, nan_policy="raise")


# -- gradients ------------------------------------------------------------------------------


def _gradcheck_options():
    return [
        {},
        {"reduction": "sum"},
        {"multioutput": [0.2, 1.0, 3.0]},
        {"nan_policy": "omit"},
        {"nan_policy": "raise"},
    ]


@pytest.mark.parametrize("loss, options", [
    (loss, {**options, **example_params(loss)}) for loss in LOSSES for options in _gradcheck_options()
    if not (mseplug.get_loss(loss).loss.root and options.get("reduction") == "sum")
])
@pytest.mark.parametrize("weighted", [False, True])
def test_gradcheck(rng, loss, weighted, options):
    skip_if_refused(loss, weighted=True, outputs=3, reduction=options.get("reduction", "mean"),
                    multioutput=options.get("multioutput", "uniform_average"))
    t, p = in_domain(loss, rng.normal(size=(12, 3)), rng.normal(size=(12, 3)) * 2)
    t, p = torch.asarray(t, requires_grad=True), torch.asarray(p, requires_grad=True)
    if weighted:
        w = torch.asarray(rng.uniform(0.5, 2.0, size=12), requires_grad=True)
        def weighted_loss(t: Any, p: Any, w: Any) -> Any:
            return call(loss, t, p, sample_weight=w, **options)

        assert torch.autograd.gradcheck(weighted_loss, (t, p, w))
    else:
        assert torch.autograd.gradcheck(lambda t, p: call(loss, t, p, **options), (t, p))


@pytest.mark.parametrize("loss", LOSSES)
def test_gradcheck_one_dimensional_fast_path(rng, loss):
    t, p = in_domain(loss, rng.normal(size=20), rng.normal(size=20))
    t, p = torch.asarray(t, requires_grad=True), torch.asarray(p, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, p: call(loss, t, p), (t, p))
    assert torch.autograd.gradgradcheck(lambda t, p: call(loss, t, p), (t, p))


MAE_PATHS = [{}, {"reduction": "sum"}, {"sample_weight": torch.ones(4)}, {"nan_policy": "omit"},
             {"multioutput": "raw_values"}]


@pytest.mark.parametrize("options", MAE_PATHS)
def test_mae_gradient_zero_at_zero_residual(options):
    t = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    p = torch.tensor([1.0, 5.0, 3.0, 0.0], dtype=torch.float64, requires_grad=True)
    mseplug.mae(t, p, **options).backward()
    assert p.grad[0] == 0 and p.grad[2] == 0
    assert p.grad[1] > 0 and p.grad[3] < 0
    g = mseplug.grad("mae", t, p.detach(), **options)
    torch.testing.assert_close(g, p.grad)
    assert MAELoss()(p.detach().requires_grad_(), t).grad_fn is not None


@pytest.mark.parametrize("shape, options", [
    (shape, options) for shape in ((6,), (6, 1), (6, 3))
    for options in ({}, {"sample_weight": torch.rand(6) + 0.1}, {"nan_policy": "omit"},
                    {"multioutput": [1.0, 2.0, 3.0]})
    if "multioutput" not in options or shape == (6, 3)
])
def test_rmse_gradient_zero_at_perfect_fit(shape, options):
    t = torch.randn(shape, dtype=torch.float64)
    p = t.clone().requires_grad_(True)
    value = mseplug.rmse(t, p, **options)
    assert value.item() == 0.0
    value.backward()
    assert torch.equal(p.grad, torch.zeros_like(p))
    assert torch.equal(mseplug.grad("rmse", t, t.clone(), **options), torch.zeros_like(p))


def test_rmse_gradient_zero_on_a_perfectly_fitted_output_only():
    t = torch.zeros(5, 2, dtype=torch.float64)
    p = torch.stack([torch.zeros(5), torch.arange(5.0)], dim=1).double().requires_grad_(True)
    mseplug.rmse(t, p).backward()
    assert torch.isfinite(p.grad).all()
    assert torch.equal(p.grad[:, 0], torch.zeros(5, dtype=torch.float64))
    assert (p.grad[1:, 1] > 0).all()


@pytest.mark.parametrize("options", [{}, {"sample_weight": torch.ones(3)}, {"nan_policy": "omit"},
                                     {"multioutput": "raw_values"}])
def test_huber_gradient_is_delta_sign_at_infinite_residuals(options):
    p = torch.tensor([float("inf"), 0.5, -float("inf")], dtype=torch.float64, requires_grad=True)
    mseplug.huber(torch.zeros(3, dtype=torch.float64), p, delta=2.0, **options).backward()
    assert p.grad.tolist() == pytest.approx([2 / 3, 0.5 / 3, -2 / 3], rel=1e-15)


@pytest.mark.parametrize("loss", LOSSES)
def test_omit_gradient_finite_and_zero_where_dropped(loss):
    skip_if_refused(loss, weighted=True)
    t, p = in_domain(loss, np.array([1.0, np.nan, 3.0, 0.0]), np.array([2.0, 2.0, np.nan, 2.0]))
    t, p = torch.tensor(t), torch.tensor(p, requires_grad=True)
    value = call(loss, t, p, nan_policy="omit", sample_weight=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(p.grad).all()
    assert p.grad[1] == 0 and p.grad[2] == 0
    if mseplug.get_loss(loss).loss.statistics is None:  # R²'s, EV's signs depend on all rows
        assert p.grad[0] > 0 and p.grad[3] > 0
    torch.testing.assert_close(mseplug.grad(loss, t, p.detach(), nan_policy="omit",
                                            sample_weight=torch.tensor([1.0, 2.0, 3.0, 4.0])),
                               p.grad)


@pytest.mark.parametrize("loss, options", [
    (loss, {**options, **example_params(loss)}) for loss in LOSSES
    for options in ({}, {"sample_weight": "w"}, {"multioutput": [1.0, 3.0]}, {"reduction": "sum"})
    if not (mseplug.get_loss(loss).loss.root and "reduction" in options)
])
def test_value_and_grad_equals_numpy_analytic(rng, loss, options):
    skip_if_refused(loss, weighted=True, outputs=2, multioutput="weights",
                    reduction=options.get("reduction", "mean"))
    t, p = in_domain(loss, rng.normal(size=(15, 2)), rng.normal(size=(15, 2)))
    np_options = dict(options)
    if options.get("sample_weight") == "w":
        np_options["sample_weight"] = rng.uniform(0.1, 1.0, size=15)
    value, gradient = mseplug.value_and_grad(loss, torch.asarray(t), torch.asarray(p), **np_options)
    want_value, want_grad = mseplug.value_and_grad(loss, t, p, **np_options)
    assert isinstance(value, torch.Tensor) and isinstance(gradient, torch.Tensor)
    assert gradient.shape == p.shape and gradient.dtype == torch.float64
    np.testing.assert_allclose(value.numpy(), want_value, rtol=1e-12)
    np.testing.assert_allclose(gradient.numpy(), want_grad, rtol=1e-10, atol=1e-15)


def test_value_and_grad_details():
    p32 = torch.tensor([1.0, 3.0])
    value, gradient = mseplug.value_and_grad("mse", torch.tensor([0.0, 0.0]), p32)
    assert value.dtype == gradient.dtype == torch.float32
    assert gradient.tolist() == [1.0, 3.0]
    ints = mseplug.grad("mse", torch.tensor([0, 0]), torch.tensor([1, 3]))
    assert ints.dtype == torch.get_default_dtype() and ints.tolist() == [1.0, 3.0]
    with pytest.raises(ValueError, match="scalar loss"):
        mseplug.grad("mse", torch.zeros(3, 2), torch.ones(3, 2), multioutput="raw_values")
    with pytest.raises(ValueError, match="scalar loss"):
        mseplug.grad("mse", torch.zeros(3), torch.ones(3), reduction="none")
    # The gradient stays differentiable when y_pred is part of a graph (second order).
    leaf = torch.tensor([1.0, 3.0], requires_grad=True)
    g = mseplug.grad("mse", torch.zeros(2), leaf * 2)
    g.sum().backward()
    assert leaf.grad.tolist() == [2.0, 2.0]


# -- shapes, dtypes, devices, foreign inputs ---------------------------------------------------


@pytest.mark.parametrize("true_shape, pred_shape", [((3,), (3, 2)), ((4, 1), (1, 4)), ((3,), (4,)),
                                                    ((2, 3), (3, 2)), ((), (2,))])
@pytest.mark.parametrize("loss", LOSSES)
def test_shape_mismatch_raises_instead_of_broadcasting(loss, true_shape, pred_shape):
    with pytest.raises(ValueError, match="shapes differ") as info:
        call(loss, torch.zeros(true_shape), torch.ones(pred_shape))
    assert str(true_shape) in str(info.value) and str(pred_shape) in str(info.value)
    with pytest.raises(ValueError, match="shapes differ"):
        Loss(loss)(torch.ones(pred_shape), torch.zeros(true_shape))


@pytest.mark.parametrize("loss", LOSSES)
def test_n_against_n_by_1_is_not_broadcast(loss):
    skip_if_refused(loss, reduction="none")
    t = torch.tensor([0.5, 1.0, 2.0])  # inside every loss's domain, either way round
    p = torch.tensor([[1.0], [1.0], [4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch would warn here and broadcast to (3, 3)
        got = call(loss, t, p)
        assert call(loss, p, t).shape == got.shape == ()
        if not mseplug.get_loss(loss).loss.root:
            assert call(loss, t, p, reduction="none").shape == p.shape
    torch.testing.assert_close(got, call(loss, t, p.reshape(3)))


def test_zero_d_pair_is_one_sample_and_empty_raises():
    assert float(mseplug.mse(torch.tensor(1.0), torch.tensor(3.0))) == 4.0
    assert mseplug.mse(torch.tensor(1.0), torch.tensor(3.0), reduction="none").shape == ()
    with pytest.raises(ValueError, match="empty"):
        mseplug.mse(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="empty"):
        MSELoss()(torch.zeros(0, 3), torch.zeros(0, 3))


@pytest.mark.parametrize("loss", LOSSES)
def test_mixed_float_widths_promote_and_backward_works(rng, loss):
    t, p = in_domain(loss, rng.normal(size=10), rng.normal(size=10))
    t = torch.asarray(t)  # float64
    p = torch.asarray(p, dtype=torch.float32, requires_grad=True)
    value = call(loss, t, p)
    assert value.dtype == torch.float64
    value.backward()
    assert p.grad is not None and p.grad.dtype == torch.float32
    np.testing.assert_allclose(value.item(), mean_loss(loss, t.numpy(), p.detach().numpy()),
                               rtol=1e-12)
    half = call(loss, t.to(torch.float16), p.detach().to(torch.bfloat16))
    assert half.dtype == torch.float32  # float16 with bfloat16: torch's promotion


@pytest.mark.parametrize("true_dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_targets_promote(true_dtype):
    t = torch.tensor([0, 1, 1, 0]).to(true_dtype)
    p = torch.tensor([0.5, 1.0, 2.0, 0.0])
    value = mseplug.mse(t, p)
    assert value.dtype == torch.float32 and float(value) == pytest.approx(0.3125)
    assert MSELoss()(p, t).dtype == torch.float32
    both = mseplug.mae(t, t.to(torch.int64) * 3)
    assert both.dtype == torch.get_default_dtype() and float(both) == 1.0


def test_complex_inputs_are_type_errors():
    with pytest.raises(TypeError, match="complex"):
        mseplug.mse(torch.zeros(3, dtype=torch.complex64), torch.zeros(3))
    with pytest.raises(TypeError, match="y_pred has complex"):
        MSELoss()(torch.zeros(3, dtype=torch.complex64), torch.zeros(3))


def test_numpy_and_list_targets_follow_y_pred():
    """The library and device follow y_pred; a typed target keeps its dtype and promotes (as
    two tensors would), a list takes y_pred's."""
    p = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    target = np.array([1.0, 2.0, 3.0])  # float64
    value = mseplug.mse(target, p)
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    assert value.dtype == mseplug.mse(torch.from_numpy(target), p).dtype
    assert value.grad_fn is not None and value.item() == pytest.approx(1 / 3)
    assert mseplug.mse(target.astype(np.float32), p).dtype == torch.float32
    listed = MSELoss()(p, [1, 2, 3])
    assert listed.dtype == torch.float32 and listed.item() == pytest.approx(1 / 3)
    read_only = target.copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = mseplug.mse(read_only, p, sample_weight=np.ones(3))
    assert value.item() == pytest.approx(1 / 3)


def test_tensor_target_with_numpy_prediction_goes_to_numpy():
    t = torch.tensor([1.0, 2.0], dtype=torch.bfloat16, requires_grad=True)
    value = mseplug.mse(t, np.array([1.0, 4.0]))
    assert isinstance(value, np.ndarray) and float(value) == 2.0


def test_backend_forced_on_numpy_input():
    value = mseplug.mse(np.zeros(3), np.ones(3), backend="torch")
    assert isinstance(value, torch.Tensor) and float(value) == 1.0


@pytest.mark.parametrize("name", ["y_true", "sample_weight"])
def test_different_devices_are_a_clear_error(name):
    # The meta device stands in for a second device on CPU-only machines.
    args = {"y_true": torch.zeros(3), "sample_weight": torch.ones(3)}
    args[name] = args[name].to("meta")
    with pytest.raises(ValueError, match=f"{name} is on device meta but y_pred is on device cpu"):
        mseplug.mse(args["y_true"], torch.ones(3), sample_weight=args["sample_weight"])


@pytest.mark.parametrize("weights, message", [
    ([1.0, -1.0, 1.0], "negative"), ([1.0, float("nan"), 1.0], "finite"),
    ([0.0, 0.0, 0.0], "sums to 0"), ([1.0, 1.0], "sample_weight needs shape"),
])
def test_bad_sample_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        mseplug.mse(torch.zeros(3), torch.ones(3), sample_weight=torch.tensor(weights))
    with pytest.raises(ValueError, match=message):
        MAELoss()(torch.ones(3), torch.zeros(3), sample_weight=np.array(weights))


def test_inputs_are_not_modified(rng):
    for loss in (name for name in LOSSES if not refusal(name, weighted=True, outputs=3)):
        t, p = pair(rng, (8, 2), loss=loss)
        t[0, 0] = float("nan")
        w = torch.rand(8)
        copies = [x.clone() for x in (t, p, w)]
        call(loss, t, p, sample_weight=w, nan_policy="omit")
        mseplug.grad(loss, t, p, sample_weight=w, nan_policy="omit")
        for x, c in zip((t, p, w), copies, strict=True):
            assert torch.equal(torch.isnan(x), torch.isnan(c))
            assert torch.equal(torch.nan_to_num(x), torch.nan_to_num(c))


def test_half_precision_accumulates_in_float32():
    # 2**15 squared residuals of 0.125**2: a float16 running sum would stall far below the mean.
    n = 2**15
    p = torch.full((n,), 0.125, dtype=torch.float16)
    for weight in (None, torch.ones(n, dtype=torch.float16)):
        value = mseplug.mse(torch.zeros(n, dtype=torch.float16), p, sample_weight=weight,
                            reduction="sum")
        assert value.dtype == torch.float16 and float(value) == 512.0
    assert float(mseplug.mae(torch.zeros(n, 2, dtype=torch.bfloat16), p.bfloat16()[:, None]
                             .expand(n, 2))) == 0.125


def test_parameter_and_backend_detection():
    p = torch.nn.Parameter(torch.ones(3))
    assert mseplug.get_backend(torch.zeros(3), p).name == "torch"
    value = mseplug.mse(torch.zeros(3), p)
    value.backward()
    assert p.grad.tolist() == pytest.approx([2 / 3] * 3)


# -- modules: training, pickling, repr, compile, torch.func ------------------------------------


def test_training_loop_recovers_linear_weights():
    torch.manual_seed(0)
    true_w, true_b = torch.tensor([[2.0, -3.0, 0.5]]), torch.tensor([1.5])
    x = torch.randn(512, 3)
    y = x @ true_w.T + true_b + 0.01 * torch.randn(512, 1)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = MSELoss()
    for _ in range(300):
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
    torch.testing.assert_close(model.weight.detach(), true_w, atol=5e-3, rtol=0)
    torch.testing.assert_close(model.bias.detach(), true_b, atol=5e-3, rtol=0)
    assert loss.item() < 2e-4


def test_training_with_sample_weights_ignores_zero_weight_outliers():
    torch.manual_seed(1)
    x = torch.randn(256, 2)
    y = x @ torch.tensor([1.0, -1.0]) + 0.5
    y[:32] += 100.0  # outliers, weighted 0
    w = torch.ones(256)
    w[:32] = 0.0
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(300):
        optimizer.zero_grad()
        MSELoss()(model(x), y[:, None], sample_weight=w).backward()
        optimizer.step()
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.0, -1.0]]), atol=1e-3,
                               rtol=0)


@pytest.mark.parametrize(("loss", "params"), rows())
def test_pickle_and_repr(loss, params):
    skip_if_refused(loss, outputs=2, multioutput="weights")
    options: dict[str, Any] = {"multioutput": [1.0, 2.0], "nan_policy": "omit"}
    module = Loss(loss, **options, **params)
    text = repr(module)
    assert text.startswith(f"Loss({loss!r}, reduction='mean'")
    assert "multioutput=[1.0, 2.0]" in text and "nan_policy='omit'" in text
    assert all(f"{name}={value!r}" in text for name, value in params.items())
    clone = pickle.loads(pickle.dumps(module))
    assert repr(clone) == text
    t, p = torch.tensor([[1.0, float("nan")], [0.5, 2.0]]), torch.tensor([[0.5, 1.0], [0.5, 0.25]])
    torch.testing.assert_close(clone(p, t), module(p, t))
    assert torch.isfinite(module(p, t))


def test_module_options_are_checked():
    with pytest.raises(ValueError, match="reduction"):
        MSELoss("avg")
    with pytest.raises(ValueError, match=r"rmse .*needs reduction='mean'"):
        RMSELoss("sum")
    with pytest.raises(ValueError, match="delta"):
        HuberLoss(delta=0.0)
    module = MSELoss()
    module.reduction = "sum"  # torch allows assigning it; it takes effect
    assert float(module(torch.ones(4), torch.zeros(4))) == 4.0
    with pytest.raises(ValueError, match="nan_policy"):
        module.nan_policy = "drop"
    assert module.nan_policy == "propagate" and "reduction='sum'" in repr(module)
    assert isinstance(module, torch.nn.Module) and list(module.parameters()) == []


@pytest.mark.parametrize(("loss", "params"), rows())
@pytest.mark.parametrize("weighted", [False, True])
def test_torch_compile(rng, loss, params, weighted):
    skip_if_refused(loss, weighted=weighted, outputs=3)
    torch._dynamo.reset()
    module = Loss(loss, multioutput="uniform_average", **params)
    t, p = pair(rng, (16, 3), "float32", loss)
    w = torch.rand(16) + 0.1 if weighted else None
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    p1, p2 = p.clone().requires_grad_(True), p.clone().requires_grad_(True)
    got, want = compiled(p1, t, w), module(p2, t, w)
    torch.testing.assert_close(got, want)
    got.backward()
    want.backward()
    torch.testing.assert_close(p1.grad, p2.grad)


def test_torch_compile_functional_api(rng):
    torch._dynamo.reset()
    t, p = pair(rng, (32,), "float32")
    f = torch.compile(lambda t, p: mseplug.mae(t, p) + mseplug.rmse(t, p, nan_policy="omit"),
                      backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(f(t, p), mseplug.mae(t, p) + mseplug.rmse(t, p))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_torch_compile_inductor(rng):
    torch._dynamo.reset()
    t, p = pair(rng, (64,), "float32")
    compiled = torch.compile(MSELoss())
    torch.testing.assert_close(compiled(p, t), F.mse_loss(p, t))


@pytest.mark.parametrize(("loss", "params"), rows())
def test_torch_func_grad_and_vmap(rng, loss, params):
    skip_if_refused(loss, weighted=True, outputs=2)
    t, p = pair(rng, (10, 2), loss=loss)
    w = torch.rand(10, dtype=torch.float64) + 0.1
    module = Loss(loss, **params)
    sign = -1.0 if mseplug.get_loss(loss).loss.greater_is_better else 1.0  # modules: 1 - score
    g = sign * torch.func.grad(lambda p: module(p, t, w))(p)
    torch.testing.assert_close(g, mseplug.grad(loss, t.numpy(), p, sample_weight=w, **params))
    np.testing.assert_allclose(
        g.numpy(), mseplug.grad(loss, t.numpy(), p.numpy(), sample_weight=w.numpy(), **params),
        rtol=1e-10)
    # vmap: one loss per row (each row's two entries are two samples).
    per_row = torch.func.vmap(lambda p, t: module(p, t))(p, t)
    assert per_row.shape == (10,)
    torch.testing.assert_close(per_row[3], module(p[3], t[3]))
    # vmap over sample weights: the host-side weight checks are skipped, values still right.
    ws = torch.rand(4, 10, dtype=torch.float64) + 0.1
    batched = torch.func.vmap(lambda w: module(p, t, w))(ws)
    torch.testing.assert_close(batched[2], module(p, t, ws[2]))


# -- the Accumulator ----------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("options", [{}, {"nan_policy": "omit"}, {"multioutput": "raw_values"}])
def test_accumulator_with_tensors_equals_one_shot(rng, loss, dtype, options):
    skip_if_refused(loss, weighted=True, outputs=3,
                    multioutput=options.get("multioutput", "uniform_average"), streamed=True)
    t, p = pair(rng, (60, 2), dtype, loss)
    if options.get("nan_policy") == "omit":
        t[5, 1] = float("nan")
    w = torch.rand(60, dtype=torch.float64) + 0.1
    acc = mseplug.Accumulator(loss, **options)
    for start in range(0, 60, 17):
        acc.update(t[start:start + 17], p[start:start + 17], sample_weight=w[start:start + 17])
    value = acc.compute()
    assert isinstance(value, np.ndarray) and value.dtype == np.float64
    one_shot = call(loss, t, p, sample_weight=w, **options)  # rounded to the input dtype
    np.testing.assert_allclose(value, one_shot.double().numpy(), rtol=RTOL[dtype])
    # The statistics are float64 sums of residuals computed in float32 (or wider).
    exact = call(loss, t.double(), p.double(), sample_weight=w, **options)
    np.testing.assert_allclose(value, exact.numpy(), rtol=1e-12 if dtype == "float64" else 1e-6)


def test_accumulator_with_requires_grad_and_numpy_mix():
    acc = mseplug.Accumulator("mae")
    acc.update(torch.zeros(3), torch.ones(3, requires_grad=True))
    acc.update(np.zeros(2), torch.full((2,), 3.0, dtype=torch.float16))
    assert float(acc.compute()) == pytest.approx(9 / 5)


# -- CUDA (skipped without a GPU) --------------------------------------------------------------


@NEEDS_CUDA
@pytest.mark.gpu
@pytest.mark.parametrize("loss", LOSSES)
def test_cuda_values_and_device(rng, loss):
    t, p = pair(rng, (32, 2), "float32")
    tc, pc = t.cuda(), p.cuda().requires_grad_(True)
    value = call(loss, tc, pc, sample_weight=torch.rand(32, device="cuda"))
    assert value.device == pc.device
    value.backward()
    assert pc.grad.device == pc.device
    torch.testing.assert_close(call(loss, tc, pc).cpu(), call(loss, t, p))
    numpy_target = call(loss, t.numpy(), pc)
    assert numpy_target.device == pc.device
    module = Loss(loss).cuda()
    torch.testing.assert_close(module(pc, tc).cpu(), call(loss, t, p))


@NEEDS_CUDA
@pytest.mark.gpu
def test_cuda_cpu_mix_is_an_error_and_accumulator_works():
    with pytest.raises(ValueError, match="y_true is on device cpu but y_pred is on device cuda"):
        mseplug.mse(torch.zeros(3), torch.ones(3, device="cuda"))
    acc = mseplug.Accumulator("mse")
    acc.update(torch.zeros(3, device="cuda"), torch.ones(3, device="cuda"))
    assert float(acc.compute()) == 1.0
    value, gradient = mseplug.value_and_grad("mse", torch.zeros(2, device="cuda"),
                                             torch.ones(2, device="cuda"))
    assert value.device.type == gradient.device.type == "cuda"
    assert gradient.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("imports", ["torch, mseplug", "mseplug, torch"])
def test_first_call_of_a_fresh_process_may_be_inside_torch_compile(imports):
    """Tensors are detected when both are imported, in either order, so tracing needs no lock
    (torch first: at ``import mseplug``; mseplug first: right after ``import torch``)."""
    import subprocess
    import sys

    code = (
        f"import {imports}, sys\n"
        "assert not any(type(f).__module__ == 'mseplug.api.import_hook' for f in sys.meta_path)\n"
        "f = torch.compile(lambda t, p: mseplug.mse(t, p) + mseplug.huber(t, p), "
        "backend='aot_eager', fullgraph=True)\n"
        "print(float(f(torch.zeros(3), torch.ones(3))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip().splitlines()[-1]) == 1.5


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse", "huber"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("n", [5, 64, 5000])
def test_weighted_one_dimensional_calls_equal_the_reference(rng, loss, dtype, reduction, n):
    """The direct weighted path (short and long tensors) against the float64 reference."""
    if mseplug.get_loss(loss).loss.root and reduction == "sum":
        pytest.skip("rmse has no sum")
    t, p = pair(rng, (n,), dtype)
    w = torch.asarray(rng.uniform(0.1, 2.0, size=n)).to(getattr(torch, dtype))
    q = p.clone().requires_grad_(True)
    value = call(loss, t, q, sample_weight=w, reduction=reduction)
    value.backward()
    args = (t.double().numpy(), p.double().numpy())
    expected = call(loss, *args, sample_weight=w.double().numpy(), reduction=reduction)
    np.testing.assert_allclose(value.item(), float(expected), rtol=RTOL[dtype])
    grad = mseplug.grad(loss, *args, sample_weight=w.double().numpy(), reduction=reduction)
    np.testing.assert_allclose(q.grad.double().numpy(), grad, rtol=RTOL[dtype],
                               atol=RTOL[dtype] * float(np.max(np.abs(grad))))
