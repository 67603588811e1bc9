"""No finite wrong number: huge weights, overflow warnings that fit, emptied outputs, odd inputs."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from libraries import Lib, installed_backends

import mseplug
from mseplug.engine.validation import ComplexDataError

HERE = Path(__file__).name


def caught(call):  # type: ignore[no-untyped-def]
    """``call()`` and every warning it raised."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        value = call()
    return value, seen


# -- weights: scaled before summing, so finite weights never overflow to a wrong 0 ----------
HUGE = {"float64": 1e308, "float32": 3e38}  # two of them sum beyond the dtype's range


@pytest.mark.parametrize("dtype", sorted(HUGE))
def test_huge_finite_weights_give_the_right_value(backend: Lib, dtype: str) -> None:
    """The issue's repro: [1e308, 1e308] (or float32 [3e38, 3e38]) weights used to give 0."""
    y_true, y_pred = backend.asarray([3.0, 1.0], dtype), backend.asarray([2.0, 1.0], dtype)
    w = backend.asarray([HUGE[dtype]] * 2, dtype)
    (mean, grad, total), seen = caught(lambda: (
        mseplug.mse(y_true, y_pred, sample_weight=w),
        mseplug.grad("mse", y_true, y_pred, sample_weight=w) if backend.name != "array_api_strict"
        else None,
        mseplug.mae(y_true, y_pred, sample_weight=w, reduction="sum")))
    assert float(backend.to_numpy(mean)) == 0.5
    if grad is not None:
        np.testing.assert_allclose(backend.to_numpy(grad), [-1.0, 0.0])
    # the sum is w·1 + w·0 = w exactly, which fits the dtype
    assert float(backend.to_numpy(total)) == pytest.approx(float(np.asarray(HUGE[dtype], dtype)))
    if backend.name != "array_api_strict":  # the generic backend's library may warn itself
        assert not [w for w in seen if issubclass(w.category, RuntimeWarning)], seen


def test_a_sum_beyond_the_range_is_inf_with_a_warning() -> None:
    w = np.array([1e308, 1e308])
    value, seen = caught(lambda: mseplug.mse([3.0, 2.0], [2.0, 1.0], sample_weight=w, reduction="sum"))
    assert value == np.inf  # 2e308: too large for float64, and said so
    assert [x.category for x in seen] == [mseplug.LossOverflowWarning]


@pytest.mark.parametrize("scale", [2.0**40, 2.0**-40, 2.0**1000, 2.0**-1000])
def test_rescaling_weights_is_exact(scale: float, rng) -> None:
    """Weights are divided by a power of two: a weighted mean is bit-for-bit unchanged."""
    y_true, y_pred = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    w = rng.uniform(0.5, 2.0, size=300)
    for loss in ("mse", "mae", "huber"):
        f = mseplug.get_loss(loss)
        assert float(f(y_true, y_pred, sample_weight=w * scale)) == float(f(y_true, y_pred, sample_weight=w))
        np.testing.assert_array_equal(mseplug.grad(loss, y_true, y_pred, sample_weight=w * scale),
                                      mseplug.grad(loss, y_true, y_pred, sample_weight=w))
    summed = float(mseplug.mse(y_true, y_pred, sample_weight=w * scale, reduction="sum"))
    assert summed == float(mseplug.mse(y_true, y_pred, sample_weight=w, reduction="sum")) * scale


def test_accumulator_with_rescaled_weights_equals_one_call(rng) -> None:
    y_true, y_pred = rng.normal(size=100), rng.normal(size=100)
    w = rng.uniform(size=100) * 2.0**100
    acc = mseplug.Accumulator("mse")
    acc.update(y_true[:60], y_pred[:60], sample_weight=w[:60])
    acc.update(y_true[60:], y_pred[60:], sample_weight=w[60:])
    assert float(acc.compute()) == pytest.approx(float(mseplug.mse(y_true, y_pred, sample_weight=w)),
                                                 rel=1e-14)


# -- overflow warnings: mseplug's, at the caller's line, with advice that fits the dtype ------
@pytest.mark.parametrize("call", [
    lambda: mseplug.mse(np.array([1e200]), np.array([0.0])),  # the repro
    lambda: mseplug.mse(np.full(20_000, 1e200), np.zeros(20_000)),  # blocked kernels
    lambda: mseplug.mse(np.full((4, 2), 1e200), np.zeros((4, 2))),  # per-output engine path
    lambda: mseplug.mse(np.full(4, 1e200), np.zeros(4), sample_weight=np.ones(4)),
    lambda: mseplug.rmse(np.array([1e200, 0.0]), np.zeros(2)),
    lambda: mseplug.huber(np.array([1e308]), np.array([-1e308]), delta=1e300),
    lambda: mseplug.value_and_grad("mse", np.full(3, 1e200), np.zeros(3), reduction="sum")[0],
], ids=["scalar", "blocked", "columns", "weighted", "rmse", "huber", "grad"])
def test_numpy_float64_overflow_warns_at_the_callers_line(call) -> None:
    value, seen = caught(call)
    assert np.isinf(value).any()
    assert [w.category for w in seen] == [mseplug.LossOverflowWarning], [str(w.message) for w in seen]
    assert seen[0].filename.endswith(HERE)
    message = str(seen[0].message)
    assert "float64" in message and "cast the inputs to float64" not in message and "rescale" in message


@pytest.mark.parametrize("loss", ["mse", "log_cosh"])
def test_value_and_grad_warns_when_the_value_overflows(backend, loss) -> None:
    """``value_and_grad`` says so when its value is inf from finite inputs, as the loss does."""
    if backend.name == "array_api_strict":
        pytest.skip("array_api_strict leaves overflow to NumPy's own RuntimeWarning")
    big = float(np.finfo(np.float32).max)
    (value, _), seen = caught(lambda: mseplug.value_and_grad(
        loss, backend.asarray(np.zeros(4), "float32"), backend.asarray(np.full(4, big), "float32"),
        reduction="sum"))
    assert np.isinf(backend.to_numpy(value))
    assert mseplug.LossOverflowWarning in [w.category for w in seen], [str(w.message) for w in seen]


def test_overflow_advice_fits_the_dtype() -> None:
    _, seen = caught(lambda: mseplug.mse(np.array([1e30], np.float32), np.zeros(1, np.float32)))
    assert "exact" not in str(seen[0].message) and "cast the inputs to float64" in str(seen[0].message)
    if "torch" in installed_backends():
        import torch

        _, seen = caught(lambda: mseplug.mse(torch.tensor([1e200], dtype=torch.float64),
                                             torch.zeros(1, dtype=torch.float64)))
        message = str(seen[0].message)
        assert seen[0].category is mseplug.LossOverflowWarning and seen[0].filename.endswith(HERE)
        assert "cast the inputs to float64" not in message and "rescale" in message


def test_infinite_inputs_are_not_an_overflow() -> None:
    value, seen = caught(lambda: mseplug.mse(np.array([np.inf, 1.0]), np.array([0.0, 1.0])))
    assert value == np.inf and not seen


def test_an_output_emptied_by_omit_says_so() -> None:
    y_true = np.array([[np.nan, 1.0], [np.nan, 2.0]])
    y_pred = np.array([[1.0, 1.0], [2.0, 3.0]])
    value, seen = caught(lambda: mseplug.mse(y_true, y_pred, nan_policy="omit",
                                             multioutput="raw_values"))
    assert np.isnan(value[0]) and value[1] == 0.5
    assert [w.category for w in seen] == [mseplug.EmptyOutputWarning]
    assert "output(s) [0] of 2" in str(seen[0].message) and seen[0].filename.endswith(HERE)
    weighted, seen = caught(lambda: mseplug.mae(np.array([np.nan, 1.0]), np.array([1.0, 2.0]),
                                                sample_weight=[1.0, 0.0], nan_policy="omit"))
    assert np.isnan(weighted) and [w.category for w in seen] == [mseplug.EmptyOutputWarning]
    _, seen = caught(lambda: mseplug.grad("mse", y_true, y_pred, nan_policy="omit"))
    assert [w.category for w in seen] == [mseplug.EmptyOutputWarning]
    # data left in every output: no warning, even with NaN in the inputs
    _, seen = caught(lambda: mseplug.mse(np.array([np.nan, 1.0]), np.array([1.0, 2.0]),
                                         nan_policy="omit"))
    assert not seen


# -- inputs ------------------------------------------------------------------------------------
def test_ml_dtypes_bfloat16_numpy_arrays_are_floats() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    y_true = np.array([1.0, 2.0, 3.5], ml_dtypes.bfloat16)
    y_pred = np.array([1.5, 2.0, 2.0], ml_dtypes.bfloat16)
    value = mseplug.mse(y_true, y_pred)
    assert value.dtype == ml_dtypes.bfloat16
    expected = np.mean((y_pred.astype(np.float64) - y_true.astype(np.float64)) ** 2)
    assert float(value) == pytest.approx(expected, rel=1e-2)
    assert float(mseplug.mae(y_true, y_pred, sample_weight=np.array([1, 1, 0], ml_dtypes.bfloat16))) == 0.25
    np.testing.assert_allclose(mseplug.grad("mse", y_true, y_pred).astype(np.float64),
                               2 * (y_pred.astype(np.float64) - y_true.astype(np.float64)) / 3, rtol=1e-2)
    mixed = mseplug.mse(y_true, y_pred.astype(np.float32))
    assert mixed.dtype == np.float32 and float(mixed) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("make", [lambda: (x for x in [1.0, 2.0]), lambda: iter([1.0, 2.0]),
                                  lambda: map(float, [1, 2])], ids=["generator", "iterator", "map"])
@pytest.mark.parametrize("position", ["y_true", "y_pred", "sample_weight"])
def test_iterators_must_be_materialised(make, position: str) -> None:
    args = {"y_true": [1.0, 2.0], "y_pred": [1.5, 2.0], "sample_weight": None}
    args[position] = make()
    with pytest.raises(TypeError, match=f"{position} is a .*materialise it first"):
        mseplug.mse(args["y_true"], args["y_pred"], sample_weight=args["sample_weight"])


@pytest.mark.parametrize("position", ["y_true", "y_pred", "sample_weight"])
def test_complex_data_is_sklearns_value_error_and_the_contracts_type_error(backend: Lib,
                                                                          position: str) -> None:
    if backend.name == "array_api_strict" and position != "y_pred":
        pytest.skip("array_api_strict refuses to mix complex and real arrays itself")
    args = {name: backend.asarray([1.0, 2.0]) for name in ("y_true", "y_pred", "sample_weight")}
    args[position] = backend.asarray([1.0, 2.0], "complex128")
    for expected in (ValueError, TypeError):
        with pytest.raises(expected, match=f"Complex data not supported: {position}"):
            mseplug.mse(args["y_true"], args["y_pred"], sample_weight=args["sample_weight"])
    assert issubclass(ComplexDataError, ValueError) and issubclass(ComplexDataError, TypeError)


def test_complex_data_matches_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    complex_weight = np.array([1 + 1j, 1.0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        metrics.mean_squared_error([1.0, 2.0], [1.0, 2.0], sample_weight=complex_weight)
    with pytest.raises(ValueError, match="Complex data not supported"):
        mseplug.mse([1.0, 2.0], [1.0, 2.0], sample_weight=complex_weight)
