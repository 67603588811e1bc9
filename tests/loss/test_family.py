"""The regression family: rmsle, mape and the deviances against scikit-learn, torchmetrics, Keras
and each other (Tweedie at power 0, 1 and 2 is MSE, Poisson and Gamma), exact where ŷ ≈ y."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from reference import loss_grad, loss_value

import mseplug

POWERS = [-2.0, -0.5, 0.0, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 7.0]


def family_data(rng, power: float, n: int = 60):
    """Targets and predictions inside the domain at ``power`` (zeros and negative targets where
    the power allows them)."""
    y_true = rng.uniform(0.1, 5.0, size=n)
    y_pred = rng.uniform(0.1, 5.0, size=n)
    if power <= 0:
        y_true[:10] = -rng.uniform(0.0, 3.0, size=10)
    if power < 2:
        y_true[10:13] = 0.0
    if power == 0:
        y_pred[:5] = -rng.uniform(0.0, 3.0, size=5)
    return y_true, y_pred


@pytest.mark.parametrize("power", POWERS)
def test_tweedie_equals_scikit_learn_at_every_power(backend, power, rng) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = family_data(rng, power)
    w = rng.uniform(0.0, 2.0, size=y_true.size)
    expected = metrics.mean_tweedie_deviance(y_true, y_pred, power=power, sample_weight=w)
    got = mseplug.tweedie_deviance(backend.asarray(y_true), backend.asarray(y_pred), power=power,
                                   sample_weight=backend.asarray(w))
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-12)
    grad = mseplug.grad("tweedie_deviance", backend.asarray(y_true), backend.asarray(y_pred),
                        power=power, sample_weight=backend.asarray(w))
    np.testing.assert_allclose(backend.to_numpy(grad), loss_grad(
        "tweedie_deviance", y_true, y_pred, sample_weight=w, power=power), rtol=1e-12)


def test_tweedie_at_0_1_2_is_mse_poisson_gamma(backend, rng) -> None:
    """The identities, values and gradients; just beside 1 and 2 (the general formula, not the
    special cases) the deviance moves continuously from them."""
    t, p = (rng.uniform(0.1, 4.0, size=(30, 2)) for _ in range(2))
    t[:3, 0] = 0.0  # zero counts: Poisson's domain, not Gamma's
    for power, twin in ((0.0, "mse"), (1.0, "poisson_deviance"), (2.0, "gamma_deviance")):
        y_true = t if power < 2 else t + 0.5
        tt, pp = backend.asarray(y_true), backend.asarray(p)
        for options in ({}, {"multioutput": "raw_values"}, {"sample_weight": backend.asarray(
                rng.uniform(size=30))}):
            ours = backend.to_numpy(mseplug.tweedie_deviance(tt, pp, power=power, **options))
            theirs = backend.to_numpy(mseplug.get_loss(twin)(tt, pp, **options))
            np.testing.assert_allclose(ours, theirs, rtol=1e-13)
        np.testing.assert_allclose(
            backend.to_numpy(mseplug.grad("tweedie_deviance", tt, pp, power=power)),
            backend.to_numpy(mseplug.grad(twin, tt, pp)), rtol=1e-13)
        if power:
            for beside in (power - 1e-9, power + 1e-9):
                if 0 < beside < 1:
                    continue
                near = float(mseplug.tweedie_deviance(y_true, p, power=beside))
                assert near == pytest.approx(float(mseplug.get_loss(twin)(y_true, p)), rel=1e-7)


@pytest.mark.parametrize("power", [-3.0, -1.0, 1.0, 1.5, 2.0, 2.5, 4.0, 12.0])
def test_deviances_are_exact_when_the_prediction_is_close(power) -> None:
    """Where the direct formula cancels (ŷ/y - 1 from 1e-14 to 0.5), the deviance is the
    80-digit reference to 1e-13: the series below the switch and the expm1 form above it."""
    y_true = np.array([0.3, 1.0, 2.0, 7.5, 40.0, 1.0, 3.0, 1.0, 2.0, 0.5])
    ratio = 1 + np.array([1e-14, -3e-12, 1e-9, -2e-6, 4e-4, 0.01, -0.03, 0.09, 0.11, 0.5])
    y_pred = y_true * ratio
    got = mseplug.tweedie_deviance(y_true, y_pred, power=power, reduction="none")
    want = loss_value("tweedie_deviance", y_true, y_pred, power=power, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-13)
    if power == 2.0:
        np.testing.assert_allclose(mseplug.gamma_deviance(y_true, y_pred, reduction="none"),
                                   loss_value("gamma_deviance", y_true, y_pred, reduction="none"),
                                   rtol=1e-14)


def test_x_minus_log1p_is_within_the_units_its_docstring_says() -> None:
    """Poisson's and Gamma's core ``x - log1p(x)`` against 80-digit arithmetic: within 4 units
    in the last place below the switch to the series (|x| < 0.05), within 32 units and 4e-15
    relative between it and 0.1 and 16 units and 2e-15 to 0.2 (log1p's rounding is a larger
    share of the result there), and within 8 units beyond."""
    import mpmath

    from mseplug.loss import builtin

    rng = np.random.default_rng(19)
    signs = rng.choice([-1.0, 1.0], 3_000)
    x = np.concatenate([signs[:1_000] * 10.0 ** rng.uniform(-12, np.log10(0.05), 1_000),
                        signs[1_000:2_000] * rng.uniform(0.05, 0.1, 1_000),
                        signs[2_000:] * rng.uniform(0.1, 0.2, 1_000),
                        -rng.uniform(0.2, 0.9, 500), rng.uniform(0.2, 10.0, 500),
                        [0.0499999, -0.0499999, 0.05, -0.05, 0.1, -0.1]])
    with mpmath.workdps(80):
        exact = np.array([float(mpmath.mpf(v) - mpmath.log1p(mpmath.mpf(v))) for v in x])
    got = np.asarray(builtin.x_minus_log1p(np, x))
    units = np.abs(got - exact) / np.spacing(exact)
    series = np.abs(x) < builtin._SERIES_BELOW
    band = ~series & (np.abs(x) < 0.1)
    assert builtin._SERIES_BELOW == 0.05 and series.sum() == 1_002 and band.sum() == 1_002
    assert units[series].max() <= 4
    assert units[band].max() <= 32 and (np.abs(got - exact) / exact)[band].max() < 4e-15
    near = (np.abs(x) >= 0.1) & (np.abs(x) < 0.2)
    assert units[near].max() <= 16 and (np.abs(got - exact) / exact)[near].max() < 2e-15
    assert units[np.abs(x) >= 0.2].max() <= 8


def _targets_at(power: float) -> np.ndarray:
    """Targets of every kind the domain at ``power`` allows: positive, zero, negative."""
    y = [2.0, 0.5]
    if power < 2:
        y.append(0.0)
    if power <= 0:
        y.append(-1.5)
    return np.array(y)


@pytest.mark.parametrize("power", POWERS)
def test_tweedie_at_an_infinite_prediction_is_its_limit(backend, power) -> None:
    """ŷ = inf: the deviance is inf up to power 2 and 2 yᵇ/(ab) above it (both terms in ŷ
    vanish); its derivative 2(1 - y/ŷ) ŷ¹⁻ᵖ tends to inf below power 1, 2 at 1 and 0 above:
    never NaN, on every backend. scikit-learn refuses an infinite input (ValueError)."""
    metrics = pytest.importorskip("sklearn.metrics")
    y_true = _targets_at(power)
    y_pred = np.full_like(y_true, np.inf)
    a, b = 1 - power, 2 - power
    if power > 2:
        want = 2 * y_true ** b / (a * b)
        # the limit is where scikit-learn's deviance goes at a huge finite prediction
        for y, limit in zip(y_true, want):
            approached = metrics.mean_tweedie_deviance([y], [1e200], power=power)
            np.testing.assert_allclose(approached, limit, rtol=1e-12)
    else:
        want = np.full_like(y_true, np.inf)
    got = mseplug.tweedie_deviance(backend.asarray(y_true), backend.asarray(y_pred), power=power,
                                   reduction="none")
    if power > 2:
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=1e-12)
    else:
        np.testing.assert_array_equal(backend.to_numpy(got), want)
    slope = np.inf if power < 1 else 2.0 if power == 1 else 0.0
    grad = mseplug.grad("tweedie_deviance", backend.asarray(y_true), backend.asarray(y_pred),
                        power=power, reduction="sum")
    np.testing.assert_array_equal(backend.to_numpy(grad), np.full_like(y_true, slope))
    with pytest.raises(ValueError, match="infinity"):
        metrics.mean_tweedie_deviance(y_true, y_pred, power=power)


def test_poisson_and_gamma_gradients_at_an_infinite_prediction_are_their_limits(backend) -> None:
    """2(ŷ - y)/ŷ → 2 and 2(ŷ - y)/ŷ² → 0, as Tweedie's at power 1 and 2 (not inf/inf = NaN);
    a finite prediction beside them keeps its gradient."""
    y_true, y_pred = np.array([2.0, 1.0]), np.array([np.inf, 3.0])
    for name, power, slope in (("poisson_deviance", 1.0, 2.0), ("gamma_deviance", 2.0, 0.0)):
        value, grad = mseplug.value_and_grad(name, backend.asarray(y_true), backend.asarray(y_pred),
                                             reduction="sum")
        assert np.isposinf(backend.to_numpy(value))
        finite = mseplug.grad(name, np.array([1.0]), np.array([3.0]), reduction="sum")
        np.testing.assert_allclose(backend.to_numpy(grad), [slope, finite[0]], rtol=1e-12)
        twin = mseplug.grad("tweedie_deviance", backend.asarray(y_true), backend.asarray(y_pred),
                            power=power, reduction="sum")
        np.testing.assert_allclose(backend.to_numpy(twin), backend.to_numpy(grad), rtol=1e-12)


def test_tweedie_refuses_a_power_between_0_and_1_and_values_outside_its_domain() -> None:
    for power in (1e-9, 0.3, 0.999):
        with pytest.raises(ValueError, match=r"tweedie_deviance's power: the Tweedie deviance "
                                             r"is defined for power <= 0 and power >= 1"):
            mseplug.tweedie_deviance([1.0], [2.0], power=power)
    cases = [(-1.0, [-1.0], [0.0], "y_pred > 0"), (1.5, [-0.5], [1.0], "y_true >= 0"),
             (1.0, [1.0], [0.0], "y_pred > 0"), (2.0, [0.0], [1.0], "y_true > 0"),
             (3.0, [1.0], [-1.0], "y_pred > 0")]
    for power, y_true, y_pred, bound in cases:
        with pytest.raises(ValueError, match=rf"tweedie_deviance is defined for {bound}"):
            mseplug.tweedie_deviance(np.array(y_true), np.array(y_pred), power=power)
    assert float(mseplug.tweedie_deviance([-1.0], [-3.0])) == 4.0  # power 0: any real number
    with pytest.raises(ValueError, match="gamma_deviance is defined for y_true > 0"):
        mseplug.gamma_deviance(np.array([0.0, 1.0]), np.array([1.0, 1.0]))  # 1-D NumPy too


def test_tweedie_power_may_be_traced_under_jit(rng) -> None:
    """One compiled function for every power (the formula has no branch on it): the same
    values as concrete powers, MSE on negative values at a traced 0."""
    jax = pytest.importorskip("jax")
    function = jax.jit(lambda t, p, power: mseplug.tweedie_deviance(t, p, power=power))
    for power in (-1.0, 0.0, 1.0, 1.5, 2.0, 3.0):
        y_true, y_pred = family_data(rng, power)
        np.testing.assert_allclose(float(function(y_true, y_pred, power)),
                                   float(mseplug.tweedie_deviance(y_true, y_pred, power=power)),
                                   rtol=1e-13)
    # outside the domain under tracing (values cannot be checked there): NaN, not a number
    assert np.isnan(float(function(np.array([1.0]), np.array([-1.0]), 1.5)))


def test_rmsle_is_the_root_of_msle_per_output(backend, rng) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = rng.uniform(-0.5, 5, size=(40, 3)), rng.uniform(-0.5, 5, size=(40, 3))
    w = rng.uniform(size=40)
    for multioutput in ("raw_values", "uniform_average", [0.2, 0.3, 0.5]):
        ours = mseplug.rmsle(backend.asarray(y_true), backend.asarray(y_pred),
                             sample_weight=backend.asarray(w), multioutput=multioutput)
        np.testing.assert_allclose(backend.to_numpy(ours), metrics.root_mean_squared_log_error(
            y_true, y_pred, sample_weight=w, multioutput=multioutput), rtol=1e-12)
    per_output = mseplug.msle(y_true, y_pred, multioutput="raw_values")
    np.testing.assert_allclose(mseplug.rmsle(y_true, y_pred, multioutput="raw_values"),
                               np.sqrt(per_output), rtol=1e-15)


def test_mape_epsilon_is_scikit_learns_and_configurable() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = np.array([1.0, 0.0, 2.4, 7.0]), np.array([1.2, 0.1, 2.4, 8.0])
    assert mseplug.get_loss("mape").loss.defaults["epsilon"] == np.finfo(np.float64).eps
    assert float(mseplug.mape(y_true, y_pred)) == pytest.approx(
        metrics.mean_absolute_percentage_error(y_true, y_pred), rel=1e-12)  # 1.1e14: 0.1 / eps
    assert float(mseplug.mape(y_true, y_pred, epsilon=0.5)) == pytest.approx(
        (0.2 + 0.1 / 0.5 + 0.0 + 1 / 7) / 4, rel=1e-15)
    with pytest.raises(ValueError, match="mape's epsilon must be finite and > 0"):
        mseplug.mape(y_true, y_pred, epsilon=0.0)
    grad = mseplug.grad("mape", y_true, y_pred, epsilon=0.5)
    np.testing.assert_allclose(grad, np.array([1.0, 1 / 0.5, 0.0, 1 / 7]) / 4, rtol=1e-15)


# -- torchmetrics ---------------------------------------------------------------------------------
def test_torchmetrics_anchors(rng) -> None:
    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics")
    y_true, y_pred = rng.uniform(0.1, 5, size=(50, 2)), rng.uniform(0.1, 5, size=(50, 2))
    t, p = torch.asarray(y_true), torch.asarray(y_pred)
    functional = tm.functional  # the classes keep float32 states: their functions, float64
    assert float(functional.mean_squared_log_error(p, t)) == pytest.approx(
        float(mseplug.msle(t, p)), rel=1e-12)
    # torchmetrics' MAPE divides by max(|y|, 1.17e-06), a constant of its own
    y_true[:3, 0] = [0.0, 1e-7, -1e-9]
    t = torch.asarray(y_true)
    assert float(functional.mean_absolute_percentage_error(p, t)) == pytest.approx(
        float(mseplug.mape(t, p, epsilon=1.17e-06)), rel=1e-12)
    assert float(mseplug.mape(t, p)) > 1e6 * float(mseplug.mape(t, p, epsilon=1.17e-06))
    for power in (-1.0, 0.0, 1.0, 1.5, 2.0, 3.0):
        y_true, y_pred = family_data(rng, power)
        t, p = torch.asarray(y_true), torch.asarray(y_pred)
        theirs = float(functional.tweedie_deviance_score(p, t, power=power))
        assert float(mseplug.tweedie_deviance(t, p, power=power)) == pytest.approx(
            theirs, rel=1e-12), power
        if power == 2.0:
            assert float(mseplug.gamma_deviance(t, p)) == pytest.approx(theirs, rel=1e-12)
        if power == 1.0:
            assert float(mseplug.poisson_deviance(t, p)) == pytest.approx(theirs, rel=1e-12)


# -- Keras ------------------------------------------------------------------------------------------
_KERAS = """
import os, json, numpy as np
os.environ["KERAS_BACKEND"] = "jax"
import jax
jax.config.update("jax_enable_x64", True)
import keras
keras.config.set_floatx("float64")
data = json.loads(os.environ["FAMILY_DATA"])
t, p = np.asarray(data["t"]), np.asarray(data["p"])
out = {  # the functions (each row's mean over the last axis), then the classes' reductions
    "msle_rows": np.asarray(keras.losses.mean_squared_logarithmic_error(t, p)).tolist(),
    "mape_rows": np.asarray(keras.losses.mean_absolute_percentage_error(t, p)).tolist(),
    "msle": float(keras.losses.MeanSquaredLogarithmicError()(t, p)),
    "mape": float(keras.losses.MeanAbsolutePercentageError()(t, p)),
    "epsilon": keras.config.epsilon(),
}
keras.config.set_epsilon(0.0)  # Poisson's log(ŷ + epsilon): the plain log
out["poisson_rows"] = np.asarray(keras.losses.poisson(t, p)).tolist()
out["poisson_grad"] = np.asarray(jax.grad(lambda q: keras.ops.sum(keras.losses.poisson(t, q)))(
    p)).tolist()
print(json.dumps(out))
"""


@pytest.mark.slow  # Keras starts in a subprocess
def test_keras_anchors_msle_mape_and_the_poisson_gradient(rng) -> None:
    """Keras' MSLE is msle of values clipped at 1e-7; its MAPE is 100 times mape with epsilon
    1e-7; its Poisson loss ŷ - y log ŷ is half the deviance minus a term of y alone, so
    mseplug's Poisson deviance gradient is twice Keras' (exactly; compared to the float32
    precision Keras' losses compute in here)."""
    import importlib.util

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("jax") is None:
        pytest.skip("keras (on JAX) is not installed")
    y_true, y_pred = rng.uniform(0.1, 5, size=(32, 3)), rng.uniform(0.1, 5, size=(32, 3))
    y_true[:4, 0] = 0.0  # zero counts: Poisson's domain (Keras' MAPE divides by its epsilon)
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "FAMILY_DATA": json.dumps({"t": y_true.tolist(), "p": y_pred.tolist()})}
    result = subprocess.run([sys.executable, "-c", _KERAS], capture_output=True, text=True,
                            timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    keras = json.loads(result.stdout.strip().splitlines()[-1])
    assert keras["epsilon"] == 1e-7
    rows = y_true.shape[1]

    def per_row(loss, y, q, **params):
        return mseplug.get_loss(loss)(y, q, reduction="none", **params).mean(axis=1)

    # MSLE: Keras clips both at its epsilon first (mseplug and scikit-learn take any value > -1);
    # Keras' losses compute in float32 here (its epsilon is a float32 tensor), so 1e-6
    np.testing.assert_allclose(per_row("msle", np.maximum(y_true, 1e-7), y_pred),
                               keras["msle_rows"], rtol=1e-6)
    # MAPE: Keras reports percent (x 100) and divides by max(|y|, 1e-7), scikit-learn's is eps
    np.testing.assert_allclose(100 * per_row("mape", y_true, y_pred, epsilon=1e-7),
                               keras["mape_rows"], rtol=1e-6)
    # the classes' reductions keep about seven digits in float64 (as for LogCosh)
    assert float(mseplug.msle(np.maximum(y_true, 1e-7), y_pred)) == pytest.approx(keras["msle"],
                                                                                rel=1e-6)
    assert 100 * float(mseplug.mape(y_true, y_pred, epsilon=1e-7)) == pytest.approx(
        keras["mape"], rel=1e-6)
    # Poisson: the deviance 2 (y log(y/ŷ) - y + ŷ) is 2 (ŷ - y log ŷ) + 2 (y log y - y)
    keras_grad = np.asarray(keras["poisson_grad"])  # d(Σ of the rows' means)/dŷ: (1 - y/ŷ)/rows
    ours = mseplug.grad("poisson_deviance", y_true, y_pred, reduction="sum") / rows
    np.testing.assert_allclose(ours, 2 * keras_grad, rtol=1e-6)
    xlogy = np.where(y_true > 0, y_true * np.log(np.where(y_true > 0, y_true, 1.0)), 0.0)
    np.testing.assert_allclose(per_row("poisson_deviance", y_true, y_pred),
                               2 * np.asarray(keras["poisson_rows"])
                               + 2 * (xlogy - y_true).mean(axis=1), rtol=1e-6)


@pytest.mark.parametrize(("name", "anchor", "params"), [
    ("poisson_deviance", "mean_poisson_deviance", {}),
    ("gamma_deviance", "mean_gamma_deviance", {}),
    ("tweedie_deviance", "mean_tweedie_deviance", {"power": 1.0}),
    ("tweedie_deviance", "mean_tweedie_deviance", {"power": 1.5}),
    ("tweedie_deviance", "mean_tweedie_deviance", {"power": 3.0}),
])
@pytest.mark.parametrize("tiny", [1e-17, 1e-300])
def test_a_prediction_far_below_its_target_is_scikit_learns_deviance(name, anchor, params,
                                                                      tiny) -> None:
    """ŷ below y·2⁻⁵³: 1 + (ŷ - y)/y rounds to 0, and log1p of it was -inf (Poisson: inf, Tweedie:
    NaN where scikit-learn is finite). On NumPy (one element, and a long input through the
    native kernels) and torch."""
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    torch = pytest.importorskip("torch")
    y, p = np.array([1.0, 2.0, 3.0]), np.array([tiny, 2.5, 3.0])
    with np.errstate(over="ignore"):  # scikit-learn's ŷ^(1-p) at power 3 overflows to its inf
        expected = getattr(sklearn_metrics, anchor)(y, p, **params)
    function = mseplug.get_loss(name)
    for y_true, y_pred in ((y, p), (torch.tensor(y), torch.tensor(p)),
                           (np.tile(y, 40_000), np.tile(p, 40_000))):
        if np.isinf(expected):  # beyond float64 there too: inf, with the overflow warning
            with pytest.warns(mseplug.LossOverflowWarning):
                assert np.isinf(float(function(y_true, y_pred, **params)))
        else:
            assert float(function(y_true, y_pred, **params)) == pytest.approx(expected, rel=1e-13)
