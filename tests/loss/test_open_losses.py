"""A loss registered by a user works at once everywhere a built-in does, with no other code.

``cauchy_test`` (with a parameter) and ``soft_test`` (without a derivative) are
registered here and driven through every integration: NumPy, torch (autograd,
torch.compile, torch.func), JAX (grad, jit, vmap, hessian), the Array API
backend and Dask, ``grad``/``value_and_grad``, the Accumulator,
``mseplug.torch.Loss``, scikit-learn scorers and ``mseplug score``. Another
test installs a loss plugin through a real entry point, in a subprocess.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from libraries import installed_backends

import mseplug

SCALE = 2.0


def cauchy(xp: Any, r: Any, scale: float) -> Any:
    """``(s²/2) log(1 + (r/s)²)``: quadratic near 0, logarithmic far away."""
    z = r / scale
    return (scale * scale / 2) * xp.log1p(z * z)


def cauchy_derivative(xp: Any, r: Any, scale: float) -> Any:
    z = r / scale
    return r / (1 + z * z)


def cauchy_reference(r: np.ndarray, scale: float = SCALE) -> tuple[np.ndarray, ...]:
    """Value, first and second derivative in float64, written out independently."""
    z2 = (r / scale) ** 2
    return scale**2 / 2 * np.log1p(z2), r / (1 + z2), (1 - z2) / (1 + z2) ** 2


def soft(xp: Any, r: Any) -> Any:
    """``log(1 + r²)``, registered without a derivative."""
    return xp.log1p(r * r)


@pytest.fixture(scope="module")
def cauchy_test() -> Any:
    loss = mseplug.Loss("cauchy_test", cauchy, cauchy_derivative,
                        params={"scale": mseplug.Param(1.0, low=0.0, doc="The width")})
    return mseplug.register_loss(loss, replace=True)


@pytest.fixture(scope="module")
def soft_test() -> Any:
    return mseplug.register_loss(mseplug.Loss("soft_test", soft), replace=True)


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y_true = rng.normal(size=(20, 2)) * 3
    return y_true, y_true + rng.normal(size=(20, 2)) * 3, rng.uniform(0.1, 2.0, size=20)


def expected_value(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> float:
    e = cauchy_reference(y_pred - y_true)[0]
    return float(np.mean(np.average(e, axis=0, weights=w)))


def expected_grad(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    slope = cauchy_reference(y_pred - y_true)[1]
    return slope * w[:, None] / w.sum() / y_pred.shape[1]


def test_registering_returns_a_function_with_the_loss_keywords(cauchy_test) -> None:
    assert "cauchy_test" in mseplug.losses()
    assert mseplug.get_loss("cauchy_test") is cauchy_test
    assert cauchy_test.__name__ == "cauchy_test"
    import inspect

    parameters = inspect.signature(cauchy_test).parameters
    assert list(parameters)[-1] == "scale" and parameters["scale"].default == 1.0
    assert "The width" in cauchy_test.__doc__


def test_numpy_values_and_analytic_gradient(cauchy_test, data) -> None:
    y_true, y_pred, w = data
    value, grad = mseplug.value_and_grad(cauchy_test, y_true, y_pred, sample_weight=w, scale=SCALE)
    assert float(value) == pytest.approx(expected_value(y_true, y_pred, w), rel=1e-12)
    np.testing.assert_allclose(grad, expected_grad(y_true, y_pred, w), rtol=1e-12)
    raw = cauchy_test(y_true, y_pred, multioutput="raw_values", scale=SCALE)
    e = cauchy_reference(y_pred - y_true)[0]
    np.testing.assert_allclose(raw, e.mean(axis=0), rtol=1e-12)
    total = cauchy_test(y_true, y_pred, reduction="sum", multioutput=[1.0, 3.0], scale=SCALE)
    assert float(total) == pytest.approx(float(e.sum(axis=0) @ [1.0, 3.0]), rel=1e-12)
    # the default parameter value differs, and the value follows it
    assert float(cauchy_test(y_true, y_pred)) != pytest.approx(float(value))


@pytest.mark.parametrize("library", [name for name in installed_backends() if name != "numpy"])
def test_every_backend_gives_the_same_value_and_gradient(cauchy_test, data, library) -> None:
    from libraries import Lib

    lib = Lib(library)
    y_true, y_pred, w = data
    value, grad = mseplug.value_and_grad("cauchy_test", lib.asarray(y_true), lib.asarray(y_pred),
                                         sample_weight=lib.asarray(w), scale=SCALE)
    assert float(lib.to_numpy(value)) == pytest.approx(expected_value(y_true, y_pred, w), rel=1e-12)
    np.testing.assert_allclose(lib.to_numpy(grad), expected_grad(y_true, y_pred, w), rtol=1e-10)


def test_torch_autograd_compile_and_func(cauchy_test, data) -> None:
    torch = pytest.importorskip("torch")
    y_true, y_pred, w = data
    t, w_t = torch.asarray(y_true), torch.asarray(w)
    p = torch.asarray(y_pred).requires_grad_(True)
    cauchy_test(t, p, sample_weight=w_t, scale=SCALE).backward()
    np.testing.assert_allclose(p.grad.numpy(), expected_grad(y_true, y_pred, w), rtol=1e-12)

    torch._dynamo.reset()
    module = mseplug.torch.Loss("cauchy_test", scale=SCALE)
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    q = torch.asarray(y_pred).requires_grad_(True)
    value = compiled(q, t, w_t)
    value.backward()
    assert value.item() == pytest.approx(expected_value(y_true, y_pred, w), rel=1e-12)
    np.testing.assert_allclose(q.grad.numpy(), expected_grad(y_true, y_pred, w), rtol=1e-12)

    r = torch.asarray(y_pred[:, 0] - y_true[:, 0])
    hessian = torch.func.hessian(lambda q: module(q, torch.zeros(20, dtype=torch.float64)))(r)
    np.testing.assert_allclose(hessian.numpy(), np.diag(cauchy_reference(r.numpy())[2] / 20),
                               rtol=1e-10, atol=1e-15)
    per_row = torch.func.vmap(lambda q, y: module(q, y))(torch.asarray(y_pred), t)
    np.testing.assert_allclose(per_row.numpy(), cauchy_reference(y_pred - y_true)[0].mean(axis=1),
                               rtol=1e-12)
    restored = pickle.loads(pickle.dumps(module))
    assert repr(restored) == repr(module) == (
        "Loss('cauchy_test', reduction='mean', scale=2.0, multioutput='uniform_average', "
        "nan_policy='propagate')")


def test_jax_grad_jit_vmap_and_hessian(cauchy_test, data) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    y_true, y_pred, w = data
    t, w_j = jnp.asarray(y_true), jnp.asarray(w)

    def f(p: Any) -> Any:
        return cauchy_test(t, p, sample_weight=w_j, scale=SCALE)

    grad = jax.jit(jax.grad(f))(jnp.asarray(y_pred))
    np.testing.assert_allclose(grad, expected_grad(y_true, y_pred, w), rtol=1e-12)
    rows = jax.vmap(lambda p, y: cauchy_test(y, p, scale=SCALE))(jnp.asarray(y_pred), t)
    np.testing.assert_allclose(rows, cauchy_reference(y_pred - y_true)[0].mean(axis=1), rtol=1e-12)
    r = y_pred[:, 0] - y_true[:, 0]
    hessian = jax.hessian(lambda p: cauchy_test(jnp.zeros(20), p, scale=SCALE))(jnp.asarray(r))
    np.testing.assert_allclose(hessian, np.diag(cauchy_reference(r)[2] / 20), rtol=1e-10,
                               atol=1e-15)


def test_dask_on_a_local_cluster(cauchy_test, data) -> None:
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    y_true, y_pred, w = data
    # Threads in this process (the scheduler is still distributed's): the loss's functions live
    # in this test module, which worker processes would have to import. Process workers with a
    # registered loss are tested in test_dask.py.
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                       dashboard_address=None, silence_logs=40)
    with cluster, distributed.Client(cluster) as client:
        lazy = cauchy_test(da.from_array(y_true, chunks=(7, 2)), da.from_array(y_pred, chunks=(7, 2)),
                           sample_weight=da.from_array(w, chunks=7), scale=SCALE)
        assert isinstance(lazy, da.Array)
        assert float(client.compute(lazy).result(timeout=120)) == pytest.approx(
            expected_value(y_true, y_pred, w), rel=1e-12)


def test_accumulator_and_grad_by_every_name_form(cauchy_test, data) -> None:
    y_true, y_pred, w = data
    acc = mseplug.Accumulator("cauchy_test", scale=SCALE)
    for start in range(0, 20, 6):
        acc.update(y_true[start:start + 6], y_pred[start:start + 6], sample_weight=w[start:start + 6])
    assert float(acc.compute()) == pytest.approx(expected_value(y_true, y_pred, w), rel=1e-12)
    for form in ("cauchy_test", cauchy_test, cauchy_test.loss):
        np.testing.assert_allclose(mseplug.grad(form, y_true, y_pred, sample_weight=w, scale=SCALE),
                                   expected_grad(y_true, y_pred, w), rtol=1e-12)


def test_scikit_learn_scorers(cauchy_test, data) -> None:
    pytest.importorskip("sklearn")
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import cross_val_score

    import mseplug.sklearn as msk

    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(2, size=60)
    scorer = msk.make_scorer("cauchy_test", scale=SCALE)
    assert repr(scorer).startswith("make_scorer(cauchy_test")
    model = Ridge().fit(X, y)
    expected = -expected_value(y[:, None], model.predict(X)[:, None], np.ones(60))
    assert scorer(model, X, y) == pytest.approx(expected, rel=1e-12)
    assert pickle.loads(pickle.dumps(scorer))(model, X, y) == scorer(model, X, y)
    assert "neg_cauchy_test" in msk.scorers()
    scores = cross_val_score(Ridge(), X, y, cv=3, scoring=msk.cauchy_test_scorer)
    assert scores.shape == (3,) and np.all(scores < 0)


def test_command_line_metric(cauchy_test, data, tmp_path: Path, capsys) -> None:
    from mseplug.cli.main import main

    y_true, y_pred, w = data
    np.save(tmp_path / "t.npy", y_true)
    np.save(tmp_path / "p.npy", y_pred)
    np.save(tmp_path / "w.npy", w)
    code = main(["score", str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                 str(tmp_path / "w.npy"), "--metric", "cauchy_test,mse", "--param", "scale=2",
                 "--format", "json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["metrics"]["cauchy_test"] == pytest.approx(expected_value(y_true, y_pred, w), rel=1e-12)


def test_a_loss_without_derivative(soft_test, data) -> None:
    y_true, y_pred, w = data
    r = y_pred - y_true
    assert float(soft_test(y_true, y_pred)) == pytest.approx(float(np.log1p(r * r).mean()))
    with pytest.raises(TypeError, match=r"soft_test.*no derivative"):
        mseplug.grad("soft_test", y_true, y_pred)
    acc = mseplug.Accumulator("soft_test")
    acc.update(y_true, y_pred, sample_weight=w)
    assert float(acc.compute()) == pytest.approx(float(soft_test(y_true, y_pred, sample_weight=w)))
    slope = 2 * r / (1 + r * r) / r.size  # torch and JAX differentiate the elementwise function
    if "torch" in installed_backends():
        import torch

        np.testing.assert_allclose(
            mseplug.grad("soft_test", torch.asarray(y_true), torch.asarray(y_pred)).numpy(), slope,
            rtol=1e-12)
    if "jax" in installed_backends():
        import jax.numpy as jnp

        np.testing.assert_allclose(
            mseplug.grad("soft_test", jnp.asarray(y_true), jnp.asarray(y_pred)), slope, rtol=1e-12)


PLUGIN = '''
import mseplug

def squared_log(xp, r):
    return xp.log1p(xp.abs(r)) ** 2

def squared_log_derivative(xp, r):
    return 2 * xp.log1p(xp.abs(r)) * xp.sign(r) / (1 + xp.abs(r))

SQUARED_LOG = mseplug.Loss("squared_log_plugin", squared_log, squared_log_derivative)
NOT_A_LOSS = 42
'''


def test_an_installed_plugin_through_a_real_entry_point(tmp_path: Path) -> None:
    (tmp_path / "mseplug_plugin_example.py").write_text(PLUGIN)
    info = tmp_path / "mseplug_plugin_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mseplug-plugin-example\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mseplug.losses]\n"
        "squared_log_plugin = mseplug_plugin_example:SQUARED_LOG\n"
        "broken_plugin = mseplug_plugin_example:NOT_A_LOSS\n"
        "missing_plugin = mseplug_plugin_example_missing:ANYTHING\n"
    )
    np.save(tmp_path / "t.npy", np.array([0.0, 1.0, 2.0]))
    np.save(tmp_path / "p.npy", np.array([1.0, 1.0, 5.0]))
    code = textwrap.dedent(f"""
        import sys, warnings, json
        sys.path.insert(0, {str(tmp_path)!r})
        import numpy as np, mseplug
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = mseplug.losses()
        value = float(mseplug.get_loss("squared_log_plugin")([0.0, 1.0, 2.0], [1.0, 1.0, 5.0]))
        grad = mseplug.grad("squared_log_plugin", np.array([0.0]), np.array([1.0])).tolist()
        acc = mseplug.Accumulator("squared_log_plugin")
        acc.update([0.0, 1.0, 2.0], [1.0, 1.0, 5.0])
        from mseplug.cli.main import main
        code = main(["score", {str(tmp_path / "t.npy")!r}, {str(tmp_path / "p.npy")!r},
                     "--metric", "squared_log_plugin", "--format", "json", "--no-progress"])
        print(json.dumps({{"names": list(names), "value": value, "grad": grad,
                           "acc": float(acc.compute()), "code": code,
                           "warnings": [str(w.message) for w in caught]}}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    out, score = json.loads(lines[-1]), json.loads(lines[-2])
    expected = (np.log1p(1.0) ** 2 + 0.0 + np.log1p(3.0) ** 2) / 3
    assert out["names"][:6] == ["mse", "mae", "rmse", "huber", "pinball", "log_cosh"]
    assert "squared_log_plugin" in out["names"]
    assert out["value"] == pytest.approx(expected, rel=1e-12)
    assert out["acc"] == pytest.approx(expected, rel=1e-12)
    assert score["metrics"]["squared_log_plugin"] == pytest.approx(expected, rel=1e-12)
    assert out["grad"] == pytest.approx([2 * np.log1p(1.0) / 2])
    assert out["code"] == 0
    broken = [w for w in out["warnings"] if "failed to load" in w]
    assert len(broken) == 2 and any("broken_plugin" in w for w in broken)
    assert any("missing_plugin" in w for w in broken)
