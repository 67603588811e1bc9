"""Losses with statistics of their own (``Loss(statistics=...)``): r2, explained_variance and
max_error against scikit-learn on every backend, their gradients and Hessians, what they refuse,
and torchmetrics' R2Score and ExplainedVariance."""

from __future__ import annotations

import numpy as np
import pytest
from libraries import as_library, as_numpy, installed_backends

import mseplug
from mseplug.loss.statistics import Centred, Statistics, Sum, layout

sklearn_metrics = pytest.importorskip("sklearn.metrics")

SCORES = {"r2": "r2_score", "explained_variance": "explained_variance_score"}
MODES = ["uniform_average", "raw_values", "variance_weighted", "weights"]


def _data(seed: int = 3, n: int = 40, k: int = 3):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, k)) * np.array([1.0, 3.0, 0.5])[:k]
    p = y + rng.normal(size=(n, k)) * 0.7 + 0.2
    return y, p, rng.uniform(0.1, 2.0, size=n)


def _as(library: str, x):
    return as_library(library, x, chunks=7)


_numpy = as_numpy


LIBRARIES = [*installed_backends(), "dask"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", list(SCORES))
def test_scores_equal_sklearn_on_every_backend(name, weighted, mode, library) -> None:
    if library == "dask":
        pytest.importorskip("dask.array")
    if library == "jax":
        import jax
        if not jax.config.jax_enable_x64:
            pytest.skip("float64 JAX only")
    y, p, w = _data()
    multioutput = np.array([0.2, 0.5, 0.3]) if mode == "weights" else mode
    want = getattr(sklearn_metrics, SCORES[name])(y, p, sample_weight=w if weighted else None,
                                                  multioutput=multioutput)
    got = mseplug.get_loss(name)(_as(library, y), _as(library, p),
                                 sample_weight=_as(library, w) if weighted else None,
                                 multioutput=multioutput)
    np.testing.assert_allclose(_numpy(got), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", list(SCORES))
def test_constant_target_scores_as_sklearn_force_finite(name) -> None:
    y = np.array([[2.0, 1.0], [2.0, 2.0], [2.0, 3.0]])
    for p in (y.copy(), y + np.array([[0.5, 0.0]]), y + np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])):
        for mode in ("raw_values", "uniform_average", "variance_weighted"):
            want = getattr(sklearn_metrics, SCORES[name])(y, p, multioutput=mode)
            np.testing.assert_array_equal(mseplug.get_loss(name)(y, p, multioutput=mode), want)
    # every output constant: variance_weighted averages uniformly, as scikit-learn
    flat = np.ones((4, 2))
    off = flat + np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    got = mseplug.get_loss(name)(flat, off, multioutput="variance_weighted")
    assert float(got) == getattr(sklearn_metrics, SCORES[name])(
        flat, off, multioutput="variance_weighted") == 0.5


def test_max_error_equals_sklearn_on_every_backend() -> None:
    y, p, _ = _data()
    want = sklearn_metrics.max_error(y[:, 0], p[:, 0])
    for library in LIBRARIES:
        if library == "jax":
            import jax
            if not jax.config.jax_enable_x64:
                continue
        assert float(_numpy(mseplug.max_error(_as(library, y[:, 0]), _as(library, p[:, 0])))) == want


def test_max_error_refuses_weights_and_outputs_as_sklearn() -> None:
    y, p, w = _data()
    with pytest.raises(ValueError, match="takes no sample_weight"):
        mseplug.max_error(y[:, 0], p[:, 0], sample_weight=w)
    with pytest.raises(ValueError, match="takes one output"):
        mseplug.max_error(y, p)
    with pytest.raises(ValueError, match="takes one output"):
        mseplug.max_error(y[:, :1], p[:, :1], multioutput="raw_values")


@pytest.mark.parametrize("name", ["r2", "explained_variance", "max_error"])
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_only_the_mean_reduction_applies(name, reduction) -> None:
    with pytest.raises(ValueError, match="reduction"):
        mseplug.get_loss(name)([1.0, 2.0, 3.0], [1.0, 2.5, 3.0], reduction=reduction)


def test_variance_weighted_is_refused_by_losses_without_it() -> None:
    with pytest.raises(ValueError, match="variance_weighted"):
        mseplug.mse([[1.0, 2.0]], [[1.0, 2.5]], multioutput="variance_weighted")


def test_records_say_what_they_are() -> None:
    r2 = mseplug.r2.loss
    assert r2.greater_is_better and mseplug.explained_variance.loss.greater_is_better
    assert not mseplug.max_error.loss.greater_is_better and not mseplug.mse.loss.greater_is_better
    assert r2.elementwise is None and r2.statistics is not None
    assert [key for key, _ in layout(r2.statistics)] == [
        "weight", "squared_residual", "target.shift", "target.sum", "target.squares"]
    assert mseplug.Loss(**r2.fields()).statistics is r2.statistics


def test_a_record_with_statistics_has_no_elementwise_term() -> None:
    spec = Statistics((Sum("s", lambda xp, t, p: t),), lambda xp, stats: stats["s"])
    with pytest.raises(ValueError, match="no elementwise term"):
        mseplug.Loss("both_example", lambda xp, r: r, statistics=spec)
    with pytest.raises(ValueError, match="distinct names"):
        Statistics((Sum("a", lambda xp, t, p: t), Centred("a", lambda xp, t, p: t)),
                   lambda xp, stats: stats["a"])


# -- gradients ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["uniform_average", "variance_weighted", "weights"])
@pytest.mark.parametrize("name", list(SCORES))
def test_analytic_gradient_equals_torch_and_jax(name, mode) -> None:
    torch = pytest.importorskip("torch")
    y, p, w = _data(seed=5)
    multioutput = np.array([0.2, 0.5, 0.3]) if mode == "weights" else mode
    analytic = mseplug.grad(name, y, p, sample_weight=w, multioutput=multioutput)
    pt = torch.tensor(p, requires_grad=True)
    mseplug.get_loss(name)(torch.tensor(y), pt, sample_weight=torch.tensor(w),
                           multioutput=multioutput).backward()
    np.testing.assert_allclose(analytic, pt.grad.numpy(), rtol=1e-10, atol=1e-15)
    jax = pytest.importorskip("jax")
    if jax.config.jax_enable_x64:
        jnp = jax.numpy
        g = jax.grad(lambda q: mseplug.get_loss(name)(
            jnp.asarray(y), q, sample_weight=jnp.asarray(w), multioutput=multioutput))(jnp.asarray(p))
        np.testing.assert_allclose(analytic, np.asarray(g), rtol=1e-10, atol=1e-15)


def test_r2_gradient_is_the_formula() -> None:
    y, p, w = _data(seed=6)
    y, p = y[:, 0], p[:, 0]
    ss_tot = np.sum(w * (y - np.average(y, weights=w)) ** 2)
    np.testing.assert_allclose(mseplug.grad("r2", y, p, sample_weight=w),
                               -2 * w * (p - y) / ss_tot, rtol=1e-12)


def test_max_error_subgradient_is_at_the_largest_error() -> None:
    y = np.array([0.0, 0.0, 0.0, 0.0])
    p = np.array([0.5, -3.0, 1.0, 2.0])
    np.testing.assert_array_equal(mseplug.grad("max_error", y, p), [0.0, -1.0, 0.0, 0.0])
    torch = pytest.importorskip("torch")
    pt = torch.tensor(p, requires_grad=True)
    mseplug.max_error(torch.tensor(y), pt).backward()
    np.testing.assert_array_equal(pt.grad.numpy(), [0.0, -1.0, 0.0, 0.0])


def test_explained_variance_hessian_equals_a_hand_written_one() -> None:
    """EV's Hessian has a rank-one part (the mean residual); torch differentiates the value's
    own operations, so it is exact, as a float64 explained variance written by hand."""
    torch = pytest.importorskip("torch")
    y2, p2, w_ = _data(seed=9, n=12)
    y, p, w = torch.tensor(y2[:, 0]), torch.tensor(p2[:, 0]), torch.tensor(w_)

    def by_hand(q):
        r = y - q
        r_mean = torch.sum(w * r) / torch.sum(w)
        y_mean = torch.sum(w * y) / torch.sum(w)
        return 1 - torch.sum(w * (r - r_mean) ** 2) / torch.sum(w * (y - y_mean) ** 2)

    def ours(q):
        return mseplug.explained_variance(y, q, sample_weight=w)

    want = torch.autograd.functional.hessian(by_hand, p)
    got = torch.autograd.functional.hessian(ours, p)
    assert float(torch.linalg.matrix_rank(want - torch.diag(torch.diagonal(want)))) >= 1
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    ss_tot = torch.sum(w * (y - torch.sum(w * y) / torch.sum(w)) ** 2)
    want_r2 = torch.autograd.functional.hessian(
        lambda q: 1 - torch.sum(w * (y - q) ** 2) / ss_tot, p)
    torch.testing.assert_close(torch.autograd.functional.hessian(
        lambda q: mseplug.r2(y, q, sample_weight=w), p), want_r2, rtol=1e-10, atol=1e-12)


def test_dask_gradient_is_numpys_and_without_an_analytic_gradient_a_clear_error() -> None:
    """Dask gradients of the built-ins equal NumPy's (more in tests/backend/test_dask.py); a
    record without an analytic gradient is refused when called, before anything is computed."""
    da = pytest.importorskip("dask.array")
    from mseplug.api import registry

    y, p, w = _data()
    lazy = mseplug.grad("r2", da.from_array(y, chunks=7), da.from_array(p, chunks=7),
                        sample_weight=da.from_array(w, chunks=7))
    np.testing.assert_allclose(lazy.compute(scheduler="synchronous"),
                               mseplug.grad("r2", y, p, sample_weight=w), rtol=1e-12, atol=1e-15)
    spec = Statistics((Sum("squared", lambda xp, t, q: (t - q) ** 2),),
                      lambda xp, stats: stats["squared"] / stats["weight"])
    name = mseplug.register_loss(mseplug.Loss("no_gradient_example", None, statistics=spec)).loss.name
    try:
        with pytest.raises(TypeError, match="has no analytic gradient"):
            mseplug.grad(name, da.from_array(y, chunks=7), da.from_array(p, chunks=7))
        with pytest.raises(TypeError, match="has no analytic gradient"):
            mseplug.grad(name, y, p)
    finally:  # tests share one process; the registry has no public undo
        registry._records.pop(name, None)
        registry._functions.pop(name, None)


@pytest.mark.parametrize("library", LIBRARIES)
def test_fewer_than_two_samples_r2_is_force_finite_where_sklearn_says_nan(library) -> None:
    """One sample is a constant target: r2 is 1.0 fitted exactly, else 0.0 (per output), with
    no warning; scikit-learn's r2_score is one NaN with an UndefinedMetricWarning, whatever
    multioutput says. explained_variance: both 1.0 (one residual is constant)."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    if library == "dask":
        pytest.importorskip("dask.array")
    for y, p, want in (([2.0], [2.0], 1.0), ([2.0], [3.0], 0.0)):
        for weight in (None, [3.0]):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = mseplug.r2(_as(library, y), _as(library, p),
                                 sample_weight=None if weight is None else _as(library, weight))
                variance = mseplug.explained_variance(_as(library, y), _as(library, p))
            assert float(_numpy(got)) == want and float(_numpy(variance)) == 1.0
            with pytest.warns(UndefinedMetricWarning, match="less than two samples"):
                assert np.isnan(sklearn_metrics.r2_score(y, p, sample_weight=weight))
            assert sklearn_metrics.explained_variance_score(y, p) == 1.0
    y, p = [[1.0, 2.0]], [[1.0, 5.0]]
    raw = mseplug.r2(_as(library, y), _as(library, p), multioutput="raw_values")
    np.testing.assert_array_equal(_numpy(raw), [1.0, 0.0])
    with pytest.warns(UndefinedMetricWarning):
        theirs = sklearn_metrics.r2_score(y, p, multioutput="raw_values")
    assert np.ndim(theirs) == 0 and np.isnan(theirs)


# -- anchors: torchmetrics ------------------------------------------------------------------
def test_torchmetrics_agrees_on_ordinary_float64_data() -> None:
    torch = pytest.importorskip("torch")
    torchmetrics = pytest.importorskip("torchmetrics")
    y, p, _ = _data(seed=11)
    yt, pt = torch.tensor(y), torch.tensor(p)
    for mode in ("uniform_average", "raw_values", "variance_weighted"):
        r2 = torchmetrics.R2Score(multioutput=mode)
        r2.update(pt, yt)
        torch.testing.assert_close(mseplug.r2(yt, pt, multioutput=mode), r2.compute().double())
        ev = torchmetrics.ExplainedVariance(multioutput=mode)
        ev.update(pt, yt)
        torch.testing.assert_close(mseplug.explained_variance(yt, pt, multioutput=mode),
                                   ev.compute().double())


def test_float32_far_from_zero_torchmetrics_drifts_mseplug_does_not(capsys) -> None:
    """float32 targets of mean 1e6 and spread 1: torchmetrics sums y² in float32 and loses the
    spread; mseplug's float64 statistics about a shift keep it (figures printed with -s)."""
    torch = pytest.importorskip("torch")
    torchmetrics = pytest.importorskip("torchmetrics")
    rng = np.random.default_rng(0)
    y = (1e6 + rng.normal(size=2000)).astype(np.float32)
    p = (y + 0.3 * rng.normal(size=2000)).astype(np.float32)
    exact_r2 = sklearn_metrics.r2_score(y.astype(np.float64), p.astype(np.float64))
    exact_ev = sklearn_metrics.explained_variance_score(y.astype(np.float64), p.astype(np.float64))
    r2, ev = torchmetrics.R2Score(), torchmetrics.ExplainedVariance()
    r2.update(torch.tensor(p), torch.tensor(y))
    ev.update(torch.tensor(p), torch.tensor(y))
    errors = {"torchmetrics R2Score": abs(float(r2.compute()) - exact_r2),
              "torchmetrics ExplainedVariance": abs(float(ev.compute()) - exact_ev),
              "mseplug r2": abs(float(mseplug.r2(torch.tensor(y), torch.tensor(p))) - exact_r2),
              "mseplug explained_variance": abs(float(mseplug.explained_variance(
                  torch.tensor(y), torch.tensor(p))) - exact_ev)}
    print({name: f"{error:.2e}" for name, error in errors.items()})
    assert errors["mseplug r2"] < 1e-6 and errors["mseplug explained_variance"] < 1e-6
    assert errors["torchmetrics R2Score"] > 100 * errors["mseplug r2"]
