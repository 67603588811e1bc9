"""pinball and log_cosh against their anchors: scikit-learn, Keras, optax, and each other.

``pinball`` equals ``sklearn.metrics.mean_pinball_loss`` (values, weights,
multioutput) on every backend, and ``mae == 2 * pinball(alpha=0.5)``.
``log_cosh`` equals Keras' ``LogCosh`` and ``optax.log_cosh``, is finite for
residuals up to the dtype's largest value, and its derivative is ``tanh``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from libraries import RTOL, Lib, installed_backends
from reference import mean_loss

import mseplug


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("multioutput", ["uniform_average", "raw_values", [0.2, 0.5, 0.3]])
def test_pinball_equals_scikit_learn_on_every_backend(backend, alpha, multioutput, rng) -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    y_true, y_pred = rng.normal(size=(30, 3)) * 4, rng.normal(size=(30, 3)) * 4
    w = rng.uniform(0, 2, size=30)
    expected = metrics.mean_pinball_loss(y_true, y_pred, alpha=alpha, sample_weight=w,
                                         multioutput=multioutput)
    got = mseplug.pinball(backend.asarray(y_true), backend.asarray(y_pred), alpha=alpha,
                          sample_weight=backend.asarray(w), multioutput=multioutput)
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-12)


def test_mae_is_twice_pinball_at_the_median(backend, rng) -> None:
    y_true, y_pred = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    t, p = backend.asarray(y_true), backend.asarray(y_pred)
    for options in ({}, {"sample_weight": backend.asarray(rng.uniform(size=40))},
                    {"multioutput": "raw_values"}, {"reduction": "sum"}):
        mae = backend.to_numpy(mseplug.mae(t, p, **options))
        pinball = backend.to_numpy(mseplug.pinball(t, p, alpha=0.5, **options))
        np.testing.assert_allclose(mae, 2 * pinball, rtol=1e-15)
        np.testing.assert_allclose(backend.to_numpy(mseplug.grad("mae", t, p)),
                                   2 * backend.to_numpy(mseplug.grad("pinball", t, p)), rtol=1e-15)


def test_pinball_gradient_is_the_quantile_slope(backend) -> None:
    y_true = backend.asarray([0.0, 0.0, 0.0, 0.0])
    y_pred = backend.asarray([-1.0, 0.0, 2.0, 5.0])  # under, exact, over, over
    grad = backend.to_numpy(mseplug.grad("pinball", y_true, y_pred, alpha=0.9))
    np.testing.assert_allclose(grad, np.array([-0.9, 0.0, 0.1, 0.1]) / 4, rtol=1e-15)


def test_log_cosh_equals_optax() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jnp = jax.numpy
    rng = np.random.default_rng(4)
    y_true, y_pred = jnp.asarray(rng.normal(size=(50, 2)) * 5), jnp.asarray(rng.normal(size=(50, 2)))
    elementwise = optax.log_cosh(y_pred, y_true)
    np.testing.assert_allclose(mseplug.log_cosh(y_true, y_pred, reduction="none"), elementwise,
                               rtol=1e-12)
    np.testing.assert_allclose(jax.grad(lambda p: mseplug.log_cosh(y_true, p))(y_pred),
                               jax.grad(lambda p: optax.log_cosh(p, y_true).mean())(y_pred),
                               rtol=1e-12)


def test_log_cosh_equals_keras() -> None:
    """Keras' LogCosh averages over the last axis, then over the batch: our uniform mean.

    Elementwise, Keras' ``x + softplus(-2x) - log 2`` (float64) agrees with ours to
    rounding; its ``LogCosh`` reduction keeps about seven digits even with
    ``floatx("float64")`` (4e-8 relative here), so the reduced values are compared at 1e-6.
    """
    if importlib_missing("keras") or importlib_missing("jax"):
        pytest.skip("keras (on JAX) is not installed")
    code = """
import os, json, numpy as np
os.environ["KERAS_BACKEND"] = "jax"
import jax
jax.config.update("jax_enable_x64", True)  # else JAX, and Keras on it, compute in float32
import keras
keras.config.set_floatx("float64")
rng = np.random.default_rng(9)
y_true, y_pred = rng.normal(size=(64, 3)) * 3, rng.normal(size=(64, 3)) * 3
w = rng.uniform(0.1, 2.0, size=64)
x = keras.ops.convert_to_tensor(y_pred - y_true)
elementwise = x + keras.ops.softplus(-2.0 * x) - keras.ops.log(2.0)
import mseplug
ours = np.asarray(mseplug.log_cosh(y_true, y_pred, reduction="none"))
print(json.dumps({
    "elementwise": [np.asarray(elementwise).tolist(), ours.tolist()],
    "plain": [float(keras.losses.LogCosh()(y_true, y_pred)),
              float(mseplug.log_cosh(y_true, y_pred))],
    "weighted": [float(keras.losses.LogCosh(reduction="sum")(y_true, y_pred, sample_weight=w)),
                 float(np.sum(ours.mean(axis=1) * w))],
}))
"""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    theirs, ours = out.pop("elementwise")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    for theirs, ours in out.values():
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


# The gradient call also computes the mean of these losses near the dtype's largest value,
# whose sum overflows: LossOverflowWarning (NumPy's own overflow warning on array_api_strict).
@pytest.mark.filterwarnings("ignore::mseplug.LossOverflowWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered in reduce:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_cosh_is_finite_up_to_the_largest_value(backend, dtype) -> None:
    largest = float(np.finfo(dtype).max)
    y_pred = np.array([largest, -largest, 1e30, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way to a finite answer
        value = mseplug.log_cosh(backend.asarray(np.zeros(4), dtype),
                                 backend.asarray(y_pred, dtype), reduction="none")
    got = backend.to_numpy(value)
    assert np.isfinite(got).all()
    expected = np.abs(y_pred.astype(dtype).astype(np.float64)) - np.log(2.0)
    expected[-1] = np.log(np.cosh(3.0))
    np.testing.assert_allclose(got, expected, rtol=RTOL[dtype])
    grad = backend.to_numpy(mseplug.grad("log_cosh", backend.asarray(np.zeros(4), dtype),
                                         backend.asarray(y_pred, dtype)))
    np.testing.assert_allclose(grad, np.tanh(y_pred) / 4, rtol=RTOL[dtype])


def test_log_cosh_is_exact_near_zero(backend) -> None:
    """Where |r| + log1p(exp(-2|r|)) - log 2 cancels, the loss is still r²/2 to rounding."""
    r = np.array([1e-8, 1e-4, -0.01, 0.03])
    got = backend.to_numpy(mseplug.log_cosh(backend.asarray(np.zeros(4)), backend.asarray(r),
                                            reduction="none"))
    taylor = r**2 / 2 - r**4 / 12 + r**6 / 45 - 17 * r**8 / 2520  # log(cosh(r)), small r
    np.testing.assert_allclose(got, taylor, rtol=1e-14)


def test_torch_modules_for_the_new_losses(rng) -> None:
    torch = pytest.importorskip("torch")
    from mseplug.torch import LogCoshLoss, PinballLoss

    t, p = torch.asarray(rng.normal(size=(20, 2))), torch.asarray(rng.normal(size=(20, 2)))
    assert float(PinballLoss(alpha=0.9)(p, t)) == pytest.approx(
        mean_loss("pinball", t.numpy(), p.numpy(), alpha=0.9), rel=1e-12)
    assert float(LogCoshLoss()(p, t)) == pytest.approx(mean_loss("log_cosh", t.numpy(), p.numpy()),
                                                       rel=1e-12)
    module = PinballLoss("sum", alpha=0.25)
    module.alpha = 0.75  # re-checked when set
    assert module.alpha == 0.75
    with pytest.raises(ValueError, match="alpha"):
        module.alpha = 1.0
    assert repr(module) == ("PinballLoss(reduction='sum', alpha=0.75, "
                            "multioutput='uniform_average', nan_policy='propagate')")


def test_new_losses_agree_across_backends(rng) -> None:
    """The figures of the closing note: the largest difference between backends, float64."""
    y_true, y_pred = rng.normal(size=(200, 3)) * 2, rng.normal(size=(200, 3)) * 2
    w = rng.uniform(0.1, 2, size=200)
    for loss in ("pinball", "log_cosh"):
        values, grads = [], []
        for name in installed_backends():
            lib = Lib(name)
            value, grad = mseplug.value_and_grad(loss, lib.asarray(y_true), lib.asarray(y_pred),
                                                 sample_weight=lib.asarray(w))
            values.append(float(lib.to_numpy(value)))
            grads.append(lib.to_numpy(grad))
        assert max(values) - min(values) <= 1e-15 * abs(values[0])
        assert max(float(np.max(np.abs(g - grads[0]))) for g in grads) <= 1e-17
