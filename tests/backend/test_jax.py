"""The JAX backend under jit, grad, vmap and scan; optax anchors; gradient conventions; dtypes."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from loss_table import NAMES, in_domain, skip_if_refused
from reference import loss_grad
from reference import mean_loss as reference

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

import mseplug  # noqa: E402
from mseplug.backend.jax import kernels as jax_kernels  # noqa: E402
from mseplug.engine.kernels import loss_value  # noqa: E402
from mseplug.loss import make_options  # noqa: E402

optax = pytest.importorskip("optax")

LOSSES: dict[str, Callable[..., Any]] = {name: mseplug.get_loss(name) for name in NAMES}

def expected_grad(name: str, y: Any, p: Any) -> np.ndarray:
    """The float64 NumPy reference gradient of the default mean loss."""
    return loss_grad(name, np.asarray(y), np.asarray(p))


@pytest.fixture
def data(rng: np.random.Generator) -> tuple[Any, Any]:
    y = rng.normal(size=32) * 2
    return jnp.asarray(y), jnp.asarray(y + rng.normal(size=32) * 1.5)


def in_jax(name: str, y: Any, p: Any) -> tuple[Any, Any]:
    """``y`` and ``p`` moved into ``name``'s domain, as JAX arrays."""
    y, p = in_domain(name, np.asarray(y), np.asarray(p))
    return jnp.asarray(y), jnp.asarray(p)


def _torch_backend() -> Any:
    """torch, if both torch and mseplug's torch backend are installed; else ``None``."""
    if importlib.util.find_spec("torch") is None:
        return None
    if importlib.util.find_spec("mseplug.backend.torch.backend") is None:
        return None
    import torch

    return torch


def torch_or_skip() -> Any:
    torch = _torch_backend()
    if torch is None:
        pytest.skip("torch or mseplug's torch backend is not installed")
    return torch


# -- detection ---------------------------------------------------------------
TRANSFORMS: dict[str, Callable[[Callable[[Any], Any], Any], Any]] = {
    "jit": lambda f, x: jax.jit(f)(x),
    "grad": lambda f, x: jax.grad(f)(x),
    "value_and_grad": lambda f, x: jax.value_and_grad(f)(x),
    "vmap": lambda f, x: jax.vmap(f)(jnp.stack([x, x + 1])),
    "scan": lambda f, x: jax.lax.scan(lambda c, row: (c + f(row), None), 0.0, jnp.stack([x, x]))[0],
    "jvp": lambda f, x: jax.jvp(f, (x,), (jnp.ones_like(x),)),
    "jacfwd": lambda f, x: jax.jacfwd(f)(x),
    "hessian": lambda f, x: jax.hessian(f)(x),
    "checkpoint": lambda f, x: jax.grad(jax.checkpoint(f))(x),
    "jit(grad)": lambda f, x: jax.jit(jax.grad(f))(x),
    "vmap(grad)": lambda f, x: jax.vmap(jax.grad(f))(jnp.stack([x, x + 1])),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
def test_tracers_are_detected_under_every_transformation(transform: str, data: Any) -> None:
    y, p = data
    seen: list[tuple[bool, bool, str]] = []

    def loss(q: Any) -> Any:
        # jax.Array's isinstance check accepts tracers (issubclass does not: per object)
        seen.append((isinstance(q, jax.core.Tracer), isinstance(q, jax.Array),
                     mseplug.get_backend(y, q).name))
        return mseplug.mse(y, q)

    result = TRANSFORMS[transform](loss, p)
    assert seen, "the loss was never traced"
    assert all(found == (True, True, "jax") for found in seen), seen
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree_util.tree_leaves(result))


def test_concrete_arrays_are_jax_and_results_stay_jax(data: Any) -> None:
    y, p = data
    assert mseplug.get_backend(y, p).name == "jax"
    assert mseplug.get_backend(np.asarray(y), p).name == "jax"  # follows y_pred
    assert mseplug.get_backend(y, np.asarray(p)).name == "numpy"
    for name, fn in LOSSES.items():
        t, q = in_jax(name, y, p)
        assert isinstance(fn(np.asarray(t), q), jax.Array)


# -- values --------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_values_eager_jit_and_reference_agree(name: str, data: Any) -> None:
    y, p = in_jax(name, *data)
    expected = reference(name, np.asarray(y), np.asarray(p))
    eager = LOSSES[name](y, p)
    jitted = jax.jit(lambda a, b: LOSSES[name](a, b))(y, p)
    assert eager.shape == () and jitted.shape == ()
    assert float(eager) == pytest.approx(expected, rel=1e-12)
    assert float(jitted) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("delta", [0.3, 1.0, 2.5])
def test_mse_and_huber_match_optax(delta: float, data: Any) -> None:
    y, p = data
    squared = optax.squared_error(p, y)
    assert float(mseplug.mse(y, p)) == pytest.approx(float(squared.mean()), rel=1e-12)
    # optax.l2_loss is half the squared error
    half = float(optax.l2_loss(p, y).mean())
    assert float(mseplug.mse(y, p)) == pytest.approx(2 * half, rel=1e-12)
    np.testing.assert_allclose(mseplug.mse(y, p, reduction="none"), squared, rtol=1e-12)
    huber = optax.huber_loss(p, y, delta=delta)
    assert float(mseplug.huber(y, p, delta=delta)) == pytest.approx(float(huber.mean()), rel=1e-12)
    elementwise = mseplug.huber(y, p, delta=delta, reduction="none")
    np.testing.assert_allclose(elementwise, huber, rtol=1e-12)
    ours = jax.grad(lambda q: mseplug.huber(y, q, delta=delta))(p)
    theirs = jax.grad(lambda q: optax.huber_loss(q, y, delta=delta).mean())(p)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    ours = jax.jit(jax.grad(lambda q: mseplug.mse(y, q)))(p)
    theirs = jax.grad(lambda q: optax.squared_error(q, y).mean())(p)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_the_reference_away_from_ties(name: str, data: Any) -> None:
    y, p = in_jax(name, *data)
    expected = expected_grad(name, y, p)
    np.testing.assert_allclose(jax.grad(lambda q: LOSSES[name](y, q))(p), expected, rtol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(lambda q: LOSSES[name](y, q)))(p), expected,
                               rtol=1e-10)
    value, g = mseplug.value_and_grad(name, y, p)
    np.testing.assert_allclose(g, expected, rtol=1e-10)
    assert float(value) == pytest.approx(reference(name, np.asarray(y), np.asarray(p)), rel=1e-12)
    if mseplug.get_loss(name).loss.residual:  # the gradient with respect to y_true: the opposite
        np.testing.assert_allclose(jax.grad(lambda t: LOSSES[name](t, p))(y), -expected, rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_equals_a_loop(name: str, rng: np.random.Generator) -> None:
    skip_if_refused(name, weighted=True)
    y, p = in_jax(name, rng.normal(size=(5, 16)), rng.normal(size=(5, 16)))
    w = jnp.asarray(rng.uniform(0.1, 1.0, size=(5, 16)))
    fn = LOSSES[name]
    batched = jax.vmap(lambda a, b, c: fn(a, b, sample_weight=c))(y, p, w)
    jitted = jax.jit(jax.vmap(lambda a, b, c: fn(a, b, sample_weight=c)))(y, p, w)
    loop = [reference(name, y[i], p[i], np.asarray(w[i])) for i in range(5)]
    assert batched.shape == (5,)
    np.testing.assert_allclose(batched, loop, rtol=1e-12)
    np.testing.assert_allclose(jitted, loop, rtol=1e-12)
    shared_truth = jax.vmap(fn, in_axes=(None, 0))(y[0], p)
    np.testing.assert_allclose(shared_truth, [reference(name, y[0], p[i]) for i in range(5)],
                               rtol=1e-12)
    grads = jax.vmap(jax.grad(lambda b, a: fn(a, b)))(p, y)
    np.testing.assert_allclose(grads[2], expected_grad(name, y[2], p[2]), rtol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_lax_scan_over_batches(name: str, rng: np.random.Generator) -> None:
    y, p = in_jax(name, rng.normal(size=(4, 10)), rng.normal(size=(4, 10)))

    def body(total: Any, batch: tuple[Any, Any]) -> tuple[Any, Any]:
        value = LOSSES[name](*batch)
        return total + value, value

    total, values = jax.lax.scan(body, jnp.zeros(()), (y, p))
    expected = [reference(name, y[i], p[i]) for i in range(4)]
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    assert float(total) == pytest.approx(sum(expected), rel=1e-12)


# -- every keyword, against the NumPy backend -------------------------------------
OPTIONS = [
    {},
    {"sample_weight": True},
    {"multioutput": "raw_values"},
    {"multioutput": [0.2, 1.0, 3.0]},
    {"reduction": "sum"},
    {"reduction": "sum", "multioutput": [0.2, 1.0, 3.0], "sample_weight": True},
    {"reduction": "none", "sample_weight": True},
    {"nan_policy": "omit", "sample_weight": True},
    {"nan_policy": "omit", "multioutput": "raw_values"},
    {"nan_policy": "omit", "reduction": "none"},
]


def _call_options(options: dict[str, Any], w: np.ndarray) -> dict[str, Any]:
    out = dict(options)
    if out.pop("sample_weight", False):
        out["sample_weight"] = w
    return out


@pytest.mark.parametrize(
    ("name", "options"),
    [(name, options) for name in NAMES for options in OPTIONS
     if not mseplug.get_loss(name).loss.root  # a root (rmse, rmsle): mean only
     or options.get("reduction", "mean") == "mean"],
    ids=str,
)
def test_every_keyword_matches_numpy(name: str, options: dict[str, Any], rng: Any) -> None:
    skip_if_refused(name, weighted=bool(options.get("sample_weight")), outputs=3,
                    multioutput=options.get("multioutput", "uniform_average"),
                    reduction=options.get("reduction", "mean"))
    y, p = in_domain(name, rng.normal(size=(9, 3)), rng.normal(size=(9, 3)))
    if options.get("nan_policy") == "omit":
        y[1, 0], p[4, 2] = np.nan, np.nan
    w = rng.uniform(0.1, 2.0, size=9)
    kwargs = _call_options(options, w)
    expected = np.asarray(LOSSES[name](y, p, **kwargs))
    eager = LOSSES[name](jnp.asarray(y), jnp.asarray(p), **kwargs)

    def traced(a: Any, b: Any, c: Any) -> Any:  # every array argument is a tracer
        return LOSSES[name](a, b, **{**kwargs, **({"sample_weight": c} if "sample_weight" in
                                                   kwargs else {})})

    jitted = jax.jit(traced)(y, jnp.asarray(p), w)
    for got in (eager, jitted):
        assert isinstance(got, jax.Array) and got.shape == expected.shape
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-12, atol=1e-15)
    if options.get("reduction", "mean") != "none" and options.get("multioutput") != "raw_values":
        value, g = mseplug.value_and_grad(name, jnp.asarray(y), jnp.asarray(p), **kwargs)
        np_value, np_g = mseplug.value_and_grad(name, y, p, **kwargs)
        assert float(value) == pytest.approx(float(np_value), rel=1e-12)
        assert np.isfinite(np.asarray(g)).all()
        np.testing.assert_allclose(np.asarray(g), np_g, rtol=1e-10, atol=1e-15)


def test_shapes_column_vector_and_zero_d() -> None:
    y, p = jnp.arange(4.0), jnp.arange(4.0) + jnp.array([0.0, 1.0, 2.0, 0.0])
    assert float(mseplug.mse(y[:, None], p)) == pytest.approx(5 / 4)
    assert mseplug.mse(y, p[:, None], reduction="none").shape == (4, 1)
    g = mseplug.grad("mse", y, p[:, None])
    assert g.shape == (4, 1)
    np.testing.assert_allclose(g[:, 0], [0.0, 0.5, 1.0, 0.0])
    assert float(mseplug.mse(jnp.asarray(2.0), jnp.asarray(5.0))) == 9.0
    assert mseplug.mse(jnp.asarray(2.0), jnp.asarray(5.0), multioutput="raw_values").shape == ()
    raw = mseplug.mae(jnp.zeros((3, 2, 2)), jnp.ones((3, 2, 2)), multioutput="raw_values")
    assert raw.shape == (2, 2)


def test_traced_output_weights_are_differentiable(rng: np.random.Generator) -> None:
    y, p = jnp.asarray(rng.normal(size=(6, 2))), jnp.asarray(rng.normal(size=(6, 2)))
    per_output = mseplug.mse(y, p, multioutput="raw_values")
    g = jax.grad(lambda v: mseplug.mse(y, p, multioutput=v, reduction="sum"))(jnp.ones(2))
    np.testing.assert_allclose(g, 6 * per_output, rtol=1e-12)  # sum reduction: Σ v_k S_k


# -- gradient conventions ---------------------------------------------------------
def test_mae_subgradient_at_zero_residual_is_zero_under_grad_and_jit() -> None:
    y = jnp.array([1.0, 2.0, 3.0])
    p = jnp.array([1.0, 2.0, 4.0])  # two exact ties
    assert float(jax.grad(jnp.abs)(0.0)) == 1.0  # JAX's own convention differs
    expected = [0.0, 0.0, 1 / 3]
    for g in (
        jax.grad(lambda q: mseplug.mae(y, q))(p),
        jax.jit(jax.grad(lambda q: mseplug.mae(y, q)))(p),
        mseplug.grad("mae", y, p),
        jax.jit(lambda q: mseplug.grad(mseplug.mae, y, q))(p),
        jax.vmap(jax.grad(lambda q: mseplug.mae(y, q)))(p[None])[0],
    ):
        np.testing.assert_allclose(g, expected, rtol=1e-12)
    assert float(jax.grad(lambda q: mseplug.huber(y, q))(p)[0]) == 0.0


def test_rmse_gradient_at_perfect_fit_is_zero_not_nan() -> None:
    y = jnp.array([1.0, -2.0, 3.0])
    naive = jax.grad(lambda q: jnp.sqrt(jnp.mean((q - y) ** 2)))(y)
    assert np.isnan(np.asarray(naive)).all()  # what the hand-written expression gives
    for g in (
        jax.grad(lambda q: mseplug.rmse(y, q))(y),
        jax.jit(jax.grad(lambda q: mseplug.rmse(y, q)))(y),
        mseplug.grad("rmse", y, y),
        jax.grad(lambda q: mseplug.rmse(y, q, multioutput="raw_values"))(y),
    ):
        np.testing.assert_array_equal(g, np.zeros(3))
    assert float(mseplug.rmse(y, y)) == 0.0
    assert np.isnan(float(mseplug.rmse(y, y.at[0].set(jnp.nan))))  # NaN still propagates


def test_omit_gives_finite_gradients_under_jit() -> None:
    y = jnp.array([1.0, jnp.nan, 3.0, 4.0])
    p = jnp.array([2.0, 0.0, jnp.nan, 6.0])
    naive = jax.grad(lambda q: jnp.sum(jnp.where(jnp.isnan(q - y), 0.0, (q - y) ** 2)))(p)
    assert not np.isfinite(np.asarray(naive)).all()  # single where: NaN gradients
    for name in NAMES:
        fn = LOSSES[name]
        g = jax.jit(jax.grad(lambda q, fn=fn: fn(y, q, nan_policy="omit")))(p)
        kept = jax.grad(lambda q, fn=fn: fn(y[::3], q))(p[::3])
        assert np.isfinite(np.asarray(g)).all(), name
        np.testing.assert_allclose(g, [kept[0], 0.0, 0.0, kept[1]], rtol=1e-12)
        value = jax.jit(lambda q, fn=fn: fn(y, q, nan_policy="omit"))(p)
        assert float(value) == pytest.approx(reference(name, [1.0, 4.0], [2.0, 6.0]), rel=1e-12)
    assert np.isnan(float(mseplug.mse(y, p)))  # propagate


# -- training ----------------------------------------------------------------------
def test_optax_sgd_recovers_linear_weights(rng: np.random.Generator) -> None:
    X = jnp.asarray(rng.normal(size=(256, 3)))
    true_w = jnp.array([1.5, -2.0, 0.5])
    y = X @ true_w
    optimizer = optax.sgd(0.1)
    w = jnp.zeros(3)
    state = optimizer.init(w)

    @jax.jit
    def step(w: Any, state: Any) -> tuple[Any, Any, Any]:
        loss, g = jax.value_and_grad(lambda w: mseplug.mse(y, X @ w))(w)
        updates, state = optimizer.update(g, state)
        return optax.apply_updates(w, updates), state, loss

    first = jax.grad(lambda w: mseplug.mse(y, X @ w))(w)
    np.testing.assert_allclose(first, 2 / 256 * X.T @ (X @ w - y), rtol=1e-12)
    losses = []
    for _ in range(300):
        w, state, loss = step(w, state)
        losses.append(float(loss))
    assert losses[-1] < 1e-10 < losses[0]
    np.testing.assert_allclose(w, true_w, atol=1e-5)


# -- dtypes ---------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name: str, data: Any) -> None:
    skip_if_refused(name, outputs=2, multioutput="raw_values")
    y, p = (a.astype(jnp.float32) for a in in_jax(name, *data))
    assert LOSSES[name](y, p).dtype == jnp.float32
    assert jax.jit(lambda a, b: LOSSES[name](a, b))(y, p).dtype == jnp.float32
    value, g = mseplug.value_and_grad(name, y, p)
    assert value.dtype == jnp.float32 and g.dtype == jnp.float32
    assert jax.grad(lambda q: LOSSES[name](y, q))(p).dtype == jnp.float32
    assert LOSSES[name](y, p, multioutput="raw_values").dtype == jnp.float32
    weighted = LOSSES[name](y, p, sample_weight=np.ones(32), multioutput=np.ones(1))
    assert weighted.dtype == jnp.float32  # float64 weights do not widen the result
    assert float(LOSSES[name](y, p)) == pytest.approx(reference(name, y, p), rel=2e-6)
    assert LOSSES[name](y, p.astype(jnp.float64)).dtype == jnp.float64  # x64 on: the wider


def test_integers_promote_and_half_precision_accumulates_in_float32() -> None:
    value = mseplug.mse(jnp.arange(3), jnp.array([1, 1, 3]))
    assert value.dtype == jnp.float64 and float(value) == pytest.approx(2 / 3)
    half = jnp.full(20_000, 0.5, dtype=jnp.float16)
    for dtype in (jnp.float16, jnp.bfloat16):
        result = mseplug.mse(jnp.zeros(20_000, dtype=dtype), half.astype(dtype))
        assert result.dtype == dtype and float(result) == 0.25
    with pytest.raises(TypeError, match="complex"):
        mseplug.mse(jnp.ones(2), jnp.ones(2, dtype=jnp.complex64))


def test_without_x64_float64_numpy_truth_does_not_widen_or_warn(rng: np.random.Generator) -> None:
    y, p = rng.normal(size=8), rng.normal(size=8).astype(np.float32)
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        value = mseplug.mse(y, jnp.asarray(p))
        g = mseplug.grad("mse", y, jnp.asarray(p))
        assert value.dtype == jnp.float32 and g.dtype == jnp.float32
        assert mseplug.mse(jnp.arange(3), jnp.arange(3)).dtype == jnp.float32
    assert float(value) == pytest.approx(reference("mse", y, p), rel=1e-6)


# -- checks -------------------------------------------------------------------------
def test_shape_and_type_errors_are_raised_under_jit_too() -> None:
    bad = jax.jit(lambda a, b: mseplug.mse(a, b))
    with pytest.raises(ValueError, match=r"y_true \(3,\) vs y_pred \(3, 2\): shapes differ"):
        bad(jnp.ones(3), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="sample_weight"):
        jax.jit(lambda a, w: mseplug.mse(a, a, sample_weight=w))(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="multioutput has 3 weights"):
        jax.jit(lambda a: mseplug.mse(a, a, multioutput=[1.0, 2.0, 3.0]))(jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="scalar loss"):
        mseplug.grad("mse", jnp.ones((3, 2)), jnp.ones((3, 2)), multioutput="raw_values")
    with pytest.raises(TypeError, match="traced JAX array"):
        jax.jit(lambda a: mseplug.mse(a, np.ones(3)))(jnp.ones(3))


def test_value_checks_run_on_concrete_inputs_and_are_skipped_when_traced() -> None:
    y, p = jnp.array([1.0, jnp.nan]), jnp.array([1.0, 2.0])
    with pytest.raises(ValueError, match="y_true contains NaN"):
        mseplug.mse(y, p, nan_policy="raise")
    with pytest.raises(ValueError, match="y_pred contains NaN"):
        mseplug.mse(p, y, nan_policy="raise")
    with pytest.raises(ValueError, match="y_true contains NaN"):  # closed over: concrete
        jax.jit(lambda q: mseplug.mse(y, q, nan_policy="raise"))(p)
    traced = jax.jit(lambda t, q: mseplug.mse(t, q, nan_policy="raise"))(y, p)
    assert np.isnan(float(traced))  # no device sync under tracing: the value propagates
    with pytest.raises(ValueError, match="negative"):
        mseplug.mse(p, p, sample_weight=jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="sums to 0"):
        mseplug.mse(p, p, sample_weight=np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        jax.grad(lambda q: mseplug.mse(p, q, sample_weight=jnp.array([1.0, jnp.inf])))(p)
    negative = jnp.array([1.0, -1.0])
    with pytest.raises(ValueError, match="negative"):  # closed over under jit: concrete
        jax.jit(lambda q: mseplug.mse(p, q, sample_weight=negative))(p)
    unchecked = jax.jit(lambda w: mseplug.mse(p, p + 1, sample_weight=w))(jnp.array([1.0, -1.0]))
    assert np.isnan(float(unchecked))  # Σw = 0 is not checked under tracing: 0 / 0


# -- caching and dispatch ----------------------------------------------------------------
def test_eager_call_is_one_jitted_kernel_compiled_once(data: Any) -> None:
    y, p = data
    jaxpr = jax.make_jaxpr(lambda a, b: mseplug.huber(a, b, delta=0.5))(y, p).jaxpr
    assert len(jaxpr.eqns) == 1 and jaxpr.eqns[0].primitive.name in ("jit", "pjit")
    mseplug.huber(y, p, delta=0.5)
    before = jax_kernels.compiled.cache_info()
    for delta in (0.5, 0.7, 2.0):  # parameter values are arguments: no new kernel
        mseplug.huber(y + 1, p, delta=delta)
    after = jax_kernels.compiled.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3
    options = make_options(mseplug.get_loss("huber").loss, params={"delta": 0.5}).static()
    kernel = jax_kernels.compiled(loss_value, mseplug.get_backend(p), options)
    if hasattr(kernel, "_cache_size"):
        size = kernel._cache_size()
        mseplug.huber(y * 2, p, delta=1.5)
        assert kernel._cache_size() == size  # same shapes and dtypes: no retrace


# -- Accumulator and other libraries -----------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_accumulator_on_jax_chunks_equals_one_call(name: str, rng: np.random.Generator) -> None:
    skip_if_refused(name, weighted=True, outputs=2, streamed=True)
    y, p = in_domain(name, rng.normal(size=(30, 2)), rng.normal(size=(30, 2)))
    y[3, 1] = np.nan
    w = rng.uniform(0.1, 1.0, size=30)
    acc = mseplug.Accumulator(name, nan_policy="omit", multioutput="raw_values")
    for s in (slice(0, 7), slice(7, 30)):
        acc.update(jnp.asarray(y[s]), jnp.asarray(p[s]), sample_weight=jnp.asarray(w[s]))
    expected = LOSSES[name](y, p, sample_weight=w, nan_policy="omit", multioutput="raw_values")
    np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12)


def test_numpy_and_torch_truth_convert_to_jax(rng: np.random.Generator) -> None:
    y, p = rng.normal(size=6), rng.normal(size=6)
    value = mseplug.mse(y.tolist(), jnp.asarray(p))
    assert isinstance(value, jax.Array)
    assert float(value) == pytest.approx(reference("mse", y, p), rel=1e-12)
    torch = torch_or_skip()
    value = mseplug.mae(torch.asarray(y), jnp.asarray(p))
    assert isinstance(value, jax.Array)
    assert float(value) == pytest.approx(reference("mae", y, p), rel=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_torch_and_jax_agree_on_ties_with_weights(name: str) -> None:
    # a tie is no zero gradient for R² or EV (their gradient involves every row)
    skip_if_refused(name, elementwise=True)
    y = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.5, -1.0]])
    p = np.array([[1.0, 2.5], [3.0, 4.0], [4.0, 7.5], [0.5, -3.0]])  # four exact ties
    y, p = in_domain(name, y, p)  # ties stay ties
    w = np.array([0.5, 2.0, 1.0, 0.0])
    if name == "rmse":
        p[:, 0] = y[:, 0]  # a perfect fit on output 0
    results = {"numpy": mseplug.value_and_grad(name, y, p, sample_weight=w)}
    results["jax"] = mseplug.value_and_grad(
        name, jnp.asarray(y), jnp.asarray(p), sample_weight=jnp.asarray(w)
    )
    torch = _torch_backend()
    if torch is not None:  # NumPy against JAX runs either way
        results["torch"] = mseplug.value_and_grad(
            name, torch.asarray(y), torch.asarray(p), sample_weight=torch.asarray(w)
        )
    as_numpy = {lib: (float(v), np.asarray(g.tolist())) for lib, (v, g) in results.items()}
    value, grad = as_numpy["numpy"]
    assert np.isfinite(grad).all() and grad[1, 0] == 0.0
    for lib, (v, g) in as_numpy.items():
        assert v == pytest.approx(value, rel=1e-12), lib
        np.testing.assert_allclose(g, grad, rtol=1e-12, atol=1e-15, err_msg=lib)
    assert isinstance(results["jax"][1], jax.Array) and results["jax"][1].shape == (4, 2)
