"""Oracles nobody here wrote, overflow behaviour, and proof that the suite catches a broken backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from equivalence_cases import Case, check_case
from libraries import installed_backends
from loss_table import call, in_domain, rows

import mseplug


# Losses that take one output and no weights (max_error, as scikit-learn's) are left out by that
# property of their record; tests/loss/test_statistics.py checks their gradients.
@pytest.mark.parametrize(("loss", "params"), rows(outputs=True, weighted=True))
@pytest.mark.parametrize("weighted", [False, True])
def test_jax_check_grads(loss: str, params: dict, weighted: bool) -> None:
    jax = pytest.importorskip("jax")
    from jax.test_util import check_grads

    rng = np.random.default_rng(7)
    y_true, y_pred = in_domain(loss, rng.normal(size=(6, 2)), rng.normal(size=(6, 2)))
    y_true, y_pred = jax.numpy.asarray(y_true), jax.numpy.asarray(y_pred)  # no ties: smooth here
    w = jax.numpy.asarray(rng.uniform(0.2, 1.5, size=6)) if weighted else None

    def f(p):
        return call(loss, y_true, p, sample_weight=w, **params)

    # Second order too: away from kinks every loss is twice differentiable (and Huber's and
    # pinball's kinks are not hit by these residuals; MAE's and pinball's second derivative is 0).
    check_grads(f, (y_pred,), order=2, modes=("fwd", "rev"), eps=1e-6)


@pytest.mark.parametrize(("loss", "params"), rows(outputs=True))
def test_torch_gradcheck_with_output_weights_and_omit(loss: str, params: dict) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    y_true, y_pred = in_domain(loss, rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))
    y_true, y_pred = torch.tensor(y_true), torch.tensor(y_pred, requires_grad=True)
    y_true[1, 2] = float("nan")

    def f(p):
        return call(loss, y_true, p, multioutput=[0.2, 0.3, 0.5], nan_policy="omit", **params)

    assert torch.autograd.gradcheck(f, (y_pred,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(f, (y_pred,), eps=1e-6, atol=1e-7)


def _libraries_with(dtype: str) -> list[str]:
    has = {"numpy": ("float16", "float32"), "torch": ("float16", "float32"),
           "jax": ("float16", "float32"), "array_api_strict": ("float32",)}
    return [name for name in installed_backends() if dtype in has[name]]


@pytest.mark.parametrize("dtype, big", [("float32", 1e20), ("float16", 300.0)])
@pytest.mark.parametrize("loss", ["mse", "rmse"])
def test_overflow_is_inf_with_a_warning_or_exact_never_finite_and_wrong(dtype, big, loss) -> None:
    from libraries import Lib

    y_pred = np.full(10, big)
    exact = float(getattr(mseplug, loss)(np.zeros(10), y_pred))  # float64: 1e40 or 9e4 (MSE)
    largest = float(np.finfo(dtype).max)
    for name in _libraries_with(dtype):
        lib = Lib(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = float(lib.to_numpy(getattr(mseplug, loss)(lib.asarray(np.zeros(10), dtype),
                                                           lib.asarray(y_pred, dtype))))
        if exact > largest:
            assert got == np.inf, name
            if name != "array_api_strict":  # the generic backend follows IEEE without a warning
                assert any(issubclass(w.category, mseplug.LossOverflowWarning) for w in caught), name
        else:
            # the result fits: either exact, or inf with the warning; never a finite wrong number
            assert got == pytest.approx(exact, rel=4e-3) or (
                got == np.inf and any(issubclass(w.category, RuntimeWarning) for w in caught)
            ), (name, got)


def test_numpy_rescues_float32_squares_that_overflow() -> None:
    y_pred = np.full(100_000, 1e19, np.float32)  # squares 1e38·… overflow float32 sums, mean fits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = mseplug.mse(np.zeros_like(y_pred), y_pred)
    assert value.dtype == np.float32
    assert float(value) == pytest.approx(float(np.float32(1e19)) ** 2, rel=1e-6)


def test_infinite_inputs_give_inf_without_an_overflow_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(mseplug.mse(np.array([np.inf, 0.0], np.float32), np.zeros(2, np.float32))) == np.inf


def test_a_broken_backend_is_caught() -> None:
    """A MAE gradient of 1 at a zero residual (what jax.grad(jnp.abs) says) must fail the suite."""
    case = Case("mae", "float64", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.0]))
    assert check_case(case) >= 1  # healthy

    def broken_derivative(xp, r):
        return xp.where(r == 0, xp.ones_like(r), xp.sign(r))

    mae = mseplug.get_loss("mae").loss
    healthy = mae.derivative
    object.__setattr__(mae, "derivative", broken_derivative)  # the record is frozen
    _forget_jax_rules()
    try:
        with pytest.raises(AssertionError, match="mae grad"):
            check_case(case)
    finally:
        object.__setattr__(mae, "derivative", healthy)
        _forget_jax_rules()
    assert check_case(case) >= 1


def _forget_jax_rules() -> None:
    """JAX caches each loss's derivative rule; a changed derivative needs a fresh one."""
    if "jax" in installed_backends():
        from mseplug.backend.jax import kernels as jax_kernels

        jax_kernels._rule.cache_clear()
        jax_kernels.compiled.cache_clear()
        jax_kernels.compiled_value_and_grad.cache_clear()
