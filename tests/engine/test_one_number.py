"""Regression tests of "one number on every path": each case once gave a wrong number, NaN, a
raw error or a hang on some path; the reference is scikit-learn or float64 NumPy.

The properties these cases are instances of (any split, chunking, weight scale, backend) are
tested at random in ``tests/test_invariants.py``; here each defect keeps a named test.
"""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest
from loss_table import NAMES, example_params, skip_if_refused

import mseplug
from mseplug.api.registry import loss_function

sklearn_metrics = pytest.importorskip("sklearn.metrics")
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_DASK = importlib.util.find_spec("dask") is not None

T3, P3 = np.array([1.0, 2.0, 3.0]), np.zeros(3)
EXPECTED_3 = 14 / 3  # the mean squared error of T3, P3 whatever the (equal) weights


def libraries() -> list[str]:
    return ["numpy"] + (["torch"] if HAS_TORCH else []) + (["jax"] if HAS_JAX else [])


def as_library(name: str, x: np.ndarray) -> object:
    if name == "torch":
        import torch

        return torch.asarray(x)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    return x


def number(x: object) -> float:
    return float(np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=np.float64))


# -- weights of any scale -------------------------------------------------------------------
@pytest.mark.skipif(not HAS_DASK, reason="needs dask")
def test_dask_with_ordinary_weights_equals_numpy_and_sklearn() -> None:
    import dask
    import dask.array as da

    rng = np.random.default_rng(0)
    n = 250_000
    t, p, w = rng.normal(size=n), rng.normal(size=n), rng.uniform(1e4, 1e5, size=n)
    expected = sklearn_metrics.mean_squared_error(t, p, sample_weight=w)
    chunk = lambda x: da.from_array(x, chunks=100_000)  # noqa: E731
    with dask.config.set(scheduler="synchronous"):
        dt, dp, dw = chunk(t), chunk(p), chunk(w)
        assert float(mseplug.mse(dt, dp, sample_weight=dw).compute()) == pytest.approx(expected,
                                                                                     rel=1e-12)
        assert float(mseplug.rmse(dt, dp, sample_weight=dw).compute()) == pytest.approx(
            np.sqrt(expected), rel=1e-12)
        total = float(mseplug.mse(dt, dp, sample_weight=dw, reduction="sum").compute())
        assert total == pytest.approx(float(np.sum(w * (p - t) ** 2)), rel=1e-12)
        gradient = mseplug.grad("mse", dt, dp, sample_weight=dw).compute()
        np.testing.assert_allclose(gradient, mseplug.grad("mse", t, p, sample_weight=w), rtol=1e-12)
        acc = mseplug.Accumulator("mse")
        acc.update(dt, dp, sample_weight=dw)
        assert float(acc.compute()) == pytest.approx(expected, rel=1e-12)
        S, W = dask.compute(*mseplug.sufficient_statistics("mse", dt, dp, sample_weight=dw))
        assert float(S[0] / W[0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("library", libraries())
def test_output_weights_whose_sum_overflows_weigh_as_their_ratios(library: str) -> None:
    y_true, y_pred = as_library(library, np.zeros((2, 2))), as_library(library, np.ones((2, 2)))
    assert number(mseplug.mse(y_true, y_pred, multioutput=[1e308, 1e308])) == 1.0
    value, gradient = mseplug.value_and_grad("mse", y_true, y_pred, multioutput=[1e308, 1e308])
    assert number(value) == 1.0
    np.testing.assert_array_equal(np.asarray(gradient, dtype=np.float64), np.full((2, 2), 0.5))
    acc = mseplug.Accumulator("mse", multioutput=[1e308, 1e308])
    acc.update(y_true, y_pred)
    assert float(acc.compute()) == 1.0


@pytest.mark.parametrize("library", libraries())
@pytest.mark.parametrize("scale", [1e-50, 1e300, 1e-300, 5e-324])
def test_float64_weights_beyond_float32_with_float32_predictions(library: str, scale: float) -> None:
    weights = np.full(3, scale)
    expected = sklearn_metrics.mean_squared_error(T3, P3.astype(np.float32), sample_weight=weights)
    y_true = as_library(library, T3.astype(np.float32))
    y_pred = as_library(library, P3.astype(np.float32))
    value = mseplug.mse(y_true, y_pred, sample_weight=weights)
    assert "float32" in str(value.dtype)
    assert number(value) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("scale", [1e308, 1e-308, 5e-324])
def test_parts_at_extreme_weights_equal_the_one_call(scale: float) -> None:
    weights = np.full(3, scale)
    one_call = float(mseplug.mse(T3, P3, sample_weight=weights))
    assert one_call == pytest.approx(EXPECTED_3, rel=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw NumPy overflow warning leaks
        acc = mseplug.Accumulator("mse")
        for part in (slice(0, 1), slice(1, 3)):
            acc.update(T3[part], P3[part], sample_weight=weights[part])
        assert float(acc.compute()) == pytest.approx(one_call, rel=1e-15)
        json_state = json.loads(json.dumps(acc.state_dict()))
        assert float(mseplug.Accumulator.from_state_dict(json_state).compute()) == float(acc.compute())


def test_statistics_beyond_float64_are_inf_with_a_warning_never_nan() -> None:
    with pytest.warns(mseplug.LossOverflowWarning, match="statistics overflowed float64"):
        S, W = mseplug.sufficient_statistics("mse", T3, P3, sample_weight=np.full(3, 1e308))
    assert np.isinf(S).all() and np.isinf(W).all()
    S, W = mseplug.sufficient_statistics("mse", T3, P3, sample_weight=np.full(3, 1e300))
    np.testing.assert_allclose([S[0], W[0]], [14e300, 3e300], rtol=1e-15)


def test_a_sum_beyond_float64_is_inf_with_a_warning() -> None:
    with pytest.warns(mseplug.LossOverflowWarning):
        value = mseplug.mse(T3, P3, sample_weight=np.full(3, 1e308), reduction="sum")
    assert np.isinf(value)
    assert float(mseplug.mse(T3, P3, sample_weight=np.full(3, 1e300), reduction="sum")) == \
        pytest.approx(14e300, rel=1e-15)


def test_accumulator_statistics_are_float64_whatever_the_batch_dtype() -> None:
    torch = pytest.importorskip("torch")
    expected = float(np.float32(3e19)) ** 2  # float64 holds it; float32 does not
    acc = mseplug.Accumulator("mse")
    acc.update(torch.zeros(3), torch.full((3,), 3e19))
    assert float(acc.compute()) == pytest.approx(expected, rel=1e-15)
    if HAS_JAX:
        import jax.numpy as jnp

        acc = mseplug.Accumulator("mse")
        acc.update(jnp.zeros(3, jnp.float32), jnp.full((3,), 3e19, jnp.float32))
        assert float(acc.compute()) == pytest.approx(expected, rel=1e-15)


def test_mixed_float32_streams_are_float64_exact() -> None:
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    rng = np.random.default_rng(3)
    t = (rng.normal(size=(6, 1000)) * 1e3).astype(np.float32)
    p = rng.normal(size=(6, 1000)).astype(np.float32)
    acc = mseplug.Accumulator("mse")
    for i in range(6):
        make = (lambda x: torch.from_numpy(x)) if i % 2 else jnp.asarray
        acc.update(make(t[i]), make(p[i]))
    exact = np.mean((p.astype(np.float64) - t.astype(np.float64)) ** 2)
    assert float(acc.compute()) == pytest.approx(exact, rel=1e-13)


# -- inputs ---------------------------------------------------------------------------------
def test_np_matrix_is_a_plain_array() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # NumPy's own, on np.matrix
        matrix = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    plain = np.asarray(matrix)
    np.testing.assert_array_equal(mseplug.mse(np.zeros((2, 2)), matrix, reduction="none"), plain**2)
    assert float(mseplug.mse(np.zeros((2, 2)), matrix)) == sklearn_metrics.mean_squared_error(
        np.zeros((2, 2)), plain)
    gradient = mseplug.grad("mse", np.zeros((2, 2)), matrix)
    assert type(gradient) is np.ndarray
    np.testing.assert_array_equal(gradient, plain / 2)
    acc = mseplug.Accumulator("mae")
    acc.update(matrix, np.zeros((2, 2)))
    assert float(acc.compute()) == 2.5


@pytest.mark.parametrize("library", libraries())
def test_zero_outputs_are_a_value_error(library: str) -> None:
    empty = as_library(library, np.zeros((3, 0)))
    with pytest.raises(ValueError, match=r"no outputs \(shape \(3, 0\)\)"):
        mseplug.mse(empty, empty)
    with pytest.raises(ValueError, match="no outputs"):
        mseplug.Accumulator("mse").update(empty, empty)


def test_a_huge_integer_parameter_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="huber's delta must be finite"):
        mseplug.huber(T3, P3, delta=10**400)


@pytest.mark.parametrize("library", libraries())
def test_a_root_of_a_negative_mean_is_nan_everywhere(library: str) -> None:
    loss = mseplug.Loss("negative_root_example", lambda xp, r: -(r * r), lambda xp, r: -2 * r,
                        root=True)
    function = loss_function(loss)  # not registered: it would join every later scorers() call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = function(as_library(library, T3), as_library(library, P3))
    assert np.isnan(number(value))


# -- dtypes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("library", libraries())
def test_a_list_takes_y_preds_float_dtype(library: str) -> None:
    y_pred = as_library(library, P3.astype(np.float32))
    assert "float32" in str(mseplug.mse([1.0, 2.0, 3.0], y_pred).dtype)
    assert "float32" in str(mseplug.mse([1, 2, 3], y_pred).dtype)
    assert "float32" in str(mseplug.mse(y_pred, [1.0, 2.0, 3.0]).dtype)  # y_true is the typed one


def test_typed_arrays_promote_whatever_their_libraries() -> None:
    torch = pytest.importorskip("torch")
    within = mseplug.mse(torch.zeros(3, dtype=torch.float64), torch.zeros(3)).dtype
    across = mseplug.mse(np.zeros(3), torch.zeros(3)).dtype
    assert within == across == torch.float64
    assert mseplug.mse(np.zeros(3, np.float32), torch.zeros(3)).dtype == torch.float32


# -- the Accumulator and the registry -------------------------------------------------------
def test_a_builtin_cannot_be_replaced() -> None:
    for name in NAMES[:6]:
        impostor = mseplug.Loss(name, lambda xp, r: r * 0)
        with pytest.raises(ValueError, match="built-in loss and cannot be replaced"):
            mseplug.register_loss(impostor, replace=True)
        assert mseplug.get_loss(name) is getattr(mseplug, name)


@pytest.mark.parametrize("loss", NAMES)
def test_loss_from_statistics_takes_the_losss_parameters(loss: str) -> None:
    params = example_params(loss)
    skip_if_refused(loss, outputs=int(np.prod(np.shape(T3)[1:])), streamed=True)
    found = mseplug.sufficient_statistics(loss, T3, P3 + 0.5, **params)
    statistics = found if isinstance(found, tuple) else (found,)  # (S, W), or named ones
    value = mseplug.loss_from_statistics(loss, *statistics, **params)
    assert float(value) == pytest.approx(float(mseplug.get_loss(loss)(T3, P3 + 0.5, **params)),
                                         rel=1e-15)
    with pytest.raises(TypeError, match="unexpected keyword argument 'not_a_parameter'"):
        mseplug.loss_from_statistics(loss, *statistics, not_a_parameter=1.0)


def test_make_scorer_checks_output_weights_and_backend_at_once() -> None:
    from mseplug.sklearn import make_scorer

    with pytest.raises(ValueError, match="multioutput weights must be finite, >= 0"):
        make_scorer("mse", multioutput=[-1, 1])
    with pytest.raises(ValueError, match="backend='nope' is unknown"):
        make_scorer("mse", backend="nope")


def test_a_backend_plugin_whose_library_is_missing_is_refused() -> None:
    class Missing(mseplug.Backend):
        name = "missing_library_example"
        library = "a_library_that_is_not_installed"

    with pytest.raises(ValueError, match="needs the library 'a_library_that_is_not_installed'"):
        mseplug.register_backend(Missing)
    assert float(mseplug.mse([1.0, 2.0], [1.0, 4.0])) == 2.0  # lists still go to NumPy


def test_a_plugin_whose_detection_fails_warns_and_is_disabled() -> None:
    class Broken(mseplug.Backend):
        name = "broken_detection_example"

        @classmethod
        def array_types(cls) -> tuple[type, ...]:
            raise KeyError("its library's module")

    mseplug.register_backend(Broken)

    class Unseen:  # a type no backend has decided yet
        def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
            return np.array([1.0, 2.0])

    with pytest.warns(RuntimeWarning, match="broken_detection_example.*disabled"):
        assert float(mseplug.mse(Unseen(), np.array([1.0, 4.0]))) == 2.0
    assert "broken_detection_example" not in mseplug.backends()
