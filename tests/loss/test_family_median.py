"""The medians of the regression family: median_absolute_error and d2_absolute_error against
scikit-learn (weights, outputs, ties, even and odd counts, zero weights, float32), on every
backend, their gradients against torch autograd and jax.grad, and their refusal of everything
that needs statistics of parts (they are not decomposable: one call only)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from libraries import as_library, as_numpy, installed_backends

import mseplug
from mseplug.loss.statistics import Quantile, Statistics, Sum, decomposable, layout

sklearn_metrics = pytest.importorskip("sklearn.metrics")

#: mseplug's name -> scikit-learn's function, and the sign of the scorer.
SKLEARN = {"median_absolute_error": "median_absolute_error",
           "d2_absolute_error": "d2_absolute_error_score"}
NAMES = list(SKLEARN)
LIBRARIES = [*installed_backends(), "dask"]


def _data(seed: int, n: int, k: int, ties: bool):
    """Targets and predictions (small integers, so many ties, or continuous) and weights with
    zeros among them."""
    rng = np.random.default_rng(seed)
    if ties:
        y = rng.integers(-3, 4, size=(n, k)).astype(np.float64)
        p = rng.integers(-3, 4, size=(n, k)).astype(np.float64)
    else:
        y = rng.normal(size=(n, k)) * 3.0
        p = y + rng.normal(size=(n, k))
    w = rng.integers(0, 4, size=n).astype(np.float64)
    w[0] = 1.0  # a positive total
    return y, p, w


def _sklearn(name: str, y, p, **options) -> np.ndarray:
    return np.asarray(getattr(sklearn_metrics, SKLEARN[name])(y, p, **options), np.float64)


def _as(library: str, x):
    return as_library(library, x, chunks=5)


_numpy = as_numpy


# -- values against scikit-learn ----------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [7, 8])  # odd and even counts
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("weights", [None, "integers", "uniform"])
@pytest.mark.parametrize("mode", ["uniform_average", "raw_values", "weights"])
def test_values_equal_sklearn(name, n, ties, weights, mode) -> None:
    y, p, w = _data(n + 10 * ties, n, 3, ties)
    if weights == "uniform":
        w = np.random.default_rng(n).uniform(0.1, 2.0, size=n)
    sample_weight = None if weights is None else w
    multioutput = [0.2, 0.3, 0.5] if mode == "weights" else mode
    expected = _sklearn(name, y, p, sample_weight=sample_weight, multioutput=multioutput)
    got = np.asarray(mseplug.get_loss(name)(y, p, sample_weight=sample_weight,
                                            multioutput=multioutput))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_without_weights_the_median_is_numpy_median_bit_for_bit() -> None:
    """Odd and even counts, ties, one output and several: numpy.median of |y - ŷ| exactly."""
    for n, ties in ((9, True), (10, True), (9, False), (10, False), (2, False), (1, False)):
        y, p, _ = _data(n, n, 2, ties)
        expected = np.median(np.abs(p - y), axis=0)
        got = np.asarray(mseplug.median_absolute_error(y, p, multioutput="raw_values"))
        assert np.array_equal(got, expected), (n, ties, got, expected)
        one = float(mseplug.median_absolute_error(y[:, 0], p[:, 0]))
        assert one == expected[0]


@pytest.mark.parametrize("name", NAMES)
def test_zero_weights_leave_their_rows_out(name) -> None:
    y, p, w = _data(5, 12, 2, ties=True)
    w[[2, 5, 7]] = 0.0
    kept = w > 0
    with_zeros = np.asarray(mseplug.get_loss(name)(y, p, sample_weight=w,
                                                   multioutput="raw_values"))
    without = np.asarray(mseplug.get_loss(name)(y[kept], p[kept], sample_weight=w[kept],
                                                multioutput="raw_values"))
    np.testing.assert_allclose(with_zeros, without, rtol=1e-15)
    np.testing.assert_allclose(with_zeros, _sklearn(name, y, p, sample_weight=w,
                                                    multioutput="raw_values"), rtol=1e-12)


def test_a_weighted_median_exactly_at_half_averages_with_the_next_weighted_value() -> None:
    """Weights 1, 1, 0, 2 on errors 1, 2, 3, 4: the running weight meets half (2) at the error 2;
    the next value of positive weight is 4 (3 has weight 0), so the median is 3."""
    y = np.zeros(4)
    p = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 1.0, 0.0, 2.0])
    assert float(mseplug.median_absolute_error(y, p, sample_weight=w)) == 3.0
    assert float(sklearn_metrics.median_absolute_error(y, p, sample_weight=w)) == 3.0
    # past half: the first value whose running weight exceeds it
    assert float(mseplug.median_absolute_error(y, p, sample_weight=[1.0, 2.0, 0.0, 2.0])) == 2.0


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out_close_to_sklearn(name) -> None:
    y, p, w = _data(11, 50, 2, ties=False)
    y32, p32 = y.astype(np.float32) + 1000, p.astype(np.float32) + 1000
    got = mseplug.get_loss(name)(y32, p32, sample_weight=w)
    assert got.dtype == np.float32
    expected = _sklearn(name, y32.astype(np.float64), p32.astype(np.float64), sample_weight=w)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # scikit-learn on the float32 arrays themselves agrees to float32's rounding too
    np.testing.assert_allclose(float(got), _sklearn(name, y32, p32, sample_weight=w), rtol=1e-5)


def test_variance_weighted_is_refused_as_sklearn_refuses_it() -> None:
    y, p, _ = _data(1, 8, 2, ties=False)
    for name in NAMES:
        with pytest.raises(ValueError, match="variance_weighted"):
            mseplug.get_loss(name)(y, p, multioutput="variance_weighted")


def test_d2_of_one_sample_is_force_finite_as_r2_where_sklearn_gives_nan() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mseplug does not warn
        exact = float(mseplug.d2_absolute_error([2.0], [2.0]))
        missed = float(mseplug.d2_absolute_error([2.0], [3.0]))
        assert (exact, missed) == (float(mseplug.r2([2.0], [2.0])), float(mseplug.r2([2.0], [3.0])))
    assert (exact, missed) == (1.0, 0.0)
    with pytest.warns(sklearn_metrics._regression.UndefinedMetricWarning):
        assert np.isnan(sklearn_metrics.d2_absolute_error_score([2.0], [3.0]))
    # a constant target of several samples: scikit-learn's force_finite, the same values
    assert float(mseplug.d2_absolute_error([2.0, 2.0], [2.0, 3.0])) == float(
        sklearn_metrics.d2_absolute_error_score([2.0, 2.0], [2.0, 3.0])) == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_and_omit_drops_per_output(name) -> None:
    y, p, w = _data(4, 15, 2, ties=False)
    y[3, 1] = np.nan
    p[9, 1] = np.nan
    raw = np.asarray(mseplug.get_loss(name)(y, p, sample_weight=w, multioutput="raw_values"))
    assert np.isfinite(raw[0]) and np.isnan(raw[1])
    omitted = np.asarray(mseplug.get_loss(name)(y, p, sample_weight=w, multioutput="raw_values",
                                                nan_policy="omit"))
    kept = ~(np.isnan(y[:, 1]) | np.isnan(p[:, 1]))
    np.testing.assert_allclose(omitted[0], raw[0], rtol=1e-15)
    np.testing.assert_allclose(omitted[1], _sklearn(name, y[kept, 1], p[kept, 1],
                                                    sample_weight=w[kept]), rtol=1e-12)


# -- one number on every backend ----------------------------------------------------------------
@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ties", [False, True])
def test_every_backend_gives_the_numpy_value(library, name, ties) -> None:
    if library == "dask":
        pytest.importorskip("dask.array")
    y, p, w = _data(21, 23, 3, ties)
    for options in ({}, {"sample_weight": w}, {"sample_weight": w, "multioutput": "raw_values"},
                    {"multioutput": [0.5, 0.25, 0.25]}):
        expected = np.asarray(mseplug.get_loss(name)(y, p, **options))
        converted = {key: _as(library, value) if key == "sample_weight" else value
                     for key, value in options.items()}
        got = _numpy(mseplug.get_loss(name)(_as(library, y), _as(library, p), **converted))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=str(options))


def test_dask_brings_differently_chunked_inputs_together() -> None:
    da = pytest.importorskip("dask.array")
    y, p, w = _data(22, 31, 2, ties=True)
    for name in NAMES:
        got = mseplug.get_loss(name)(da.from_array(y, chunks=(4, 2)), da.from_array(p, chunks=9),
                                     sample_weight=da.from_array(w, chunks=13))
        expected = _sklearn(name, y, p, sample_weight=w)
        np.testing.assert_allclose(float(got.compute()), expected, rtol=1e-12)


def test_jax_jit_gives_the_numpy_value() -> None:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    y, p, w = _data(23, 16, 2, ties=True)
    for name in NAMES:
        function = mseplug.get_loss(name)
        compiled = jax.jit(lambda t, q, v, f=function: f(t, q, sample_weight=v))
        got = float(compiled(jnp.asarray(y), jnp.asarray(p), jnp.asarray(w)))
        assert got == pytest.approx(float(function(y, p, sample_weight=w)), rel=1e-12, abs=1e-15)


# -- gradients ----------------------------------------------------------------------------------
def test_median_gradient_is_the_sign_at_the_median_elements() -> None:
    y = np.zeros(5)
    p = np.array([1.0, -2.0, 3.0, -4.0, 5.0])  # |r| = 1, 2, 3, 4, 5: the median is row 2
    grad = mseplug.grad("median_absolute_error", y, p)
    assert grad.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    even = np.array([1.0, -2.0, 3.0, -4.0])  # the mean of rows 1 and 2
    assert mseplug.grad("median_absolute_error", y[:4], even).tolist() == [0.0, -0.5, 0.5, 0.0]


def test_d2_gradient_is_the_weighted_sign_over_the_deviation_from_the_median() -> None:
    y, p, w = _data(31, 9, 1, ties=False)
    y, p = y[:, 0], p[:, 0]
    from sklearn.utils.stats import _weighted_percentile  # the median scikit-learn's D² takes

    deviation = np.sum(w * np.abs(y - _weighted_percentile(y, w, 50, average=True)))
    expected = -w * np.sign(p - y) / deviation
    np.testing.assert_allclose(mseplug.grad("d2_absolute_error", y, p, sample_weight=w), expected,
                               rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ties", [False, True])
def test_numpy_gradient_equals_torch_autograd_and_jax_grad(name, ties) -> None:
    """Ties included: the sort is stable on every backend, so autodiff's subgradient (through the
    sort's gathers) is the analytic one element for element."""
    torch = pytest.importorskip("torch")
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    y, p, w = _data(41 + ties, 14, 3, ties)
    options = {"multioutput": [0.2, 0.3, 0.5]}
    expected = mseplug.grad(name, y, p, sample_weight=w, **options)
    assert np.any(expected != 0)
    function = mseplug.get_loss(name)
    pt = torch.tensor(p, requires_grad=True)
    function(torch.tensor(y), pt, sample_weight=torch.tensor(w), **options).backward()
    np.testing.assert_allclose(pt.grad.numpy(), expected, rtol=1e-12, atol=1e-15)
    gj = jax.grad(lambda q: function(jnp.asarray(y), q, sample_weight=jnp.asarray(w),
                                     **options))(jnp.asarray(p))
    np.testing.assert_allclose(np.asarray(gj), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        mseplug.grad(name, torch.tensor(y), torch.tensor(p), sample_weight=torch.tensor(w),
                     **options).numpy(), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_torch_gradcheck_and_a_zero_hessian(name) -> None:
    torch = pytest.importorskip("torch")
    y, p, w = _data(51, 9, 2, ties=False)  # no ties: differentiable here
    t, wt = torch.tensor(y), torch.tensor(w + 0.5)
    pt = torch.tensor(p, requires_grad=True)

    def f(q):
        return mseplug.get_loss(name)(t, q, sample_weight=wt, multioutput=[0.4, 0.6])

    assert torch.autograd.gradcheck(f, (pt,), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(f, (pt,), eps=1e-6, atol=1e-7)
    hessian = torch.autograd.functional.hessian(f, pt)
    assert hessian.shape == (9, 2, 9, 2) and bool((hessian == 0).all())


def test_torch_module_minimises_one_minus_d2() -> None:
    torch = pytest.importorskip("torch")
    from mseplug.torch import D2AbsoluteErrorLoss, Loss, MedianAbsoluteErrorLoss

    y, p, _ = _data(61, 10, 1, ties=False)
    t, q = torch.tensor(y[:, 0]), torch.tensor(p[:, 0])
    module = Loss("d2_absolute_error")
    assert float(module(q, t)) == pytest.approx(1 - float(mseplug.d2_absolute_error(t, q)),
                                                rel=1e-15)
    assert float(D2AbsoluteErrorLoss()(q, t)) == float(module(q, t))
    assert float(MedianAbsoluteErrorLoss()(q, t)) == float(
        sklearn_metrics.median_absolute_error(y[:, 0], p[:, 0]))


# -- one call only: the refusals ----------------------------------------------------------------
ONE_CALL = r"is not decomposable .* it works in one call only"


@pytest.mark.parametrize("name", NAMES)
def test_streaming_and_statistics_refuse_a_median(name) -> None:
    y, p, _ = _data(71, 6, 1, ties=False)
    with pytest.raises(ValueError, match=rf"{name} {ONE_CALL}.*mseplug\.{name}\(y_true, y_pred\)"):
        mseplug.Accumulator(name)
    with pytest.raises(ValueError, match=r"mseplug.sufficient_statistics cannot compute it"):
        mseplug.sufficient_statistics(name, y, p)
    with pytest.raises(ValueError, match=rf"{name} {ONE_CALL}"):
        mseplug.loss_from_statistics(name, {"weight": np.ones(1)})
    with pytest.raises(ValueError, match=r"mseplug.combine_statistics cannot compute it"):
        mseplug.combine_statistics(name, {"weight": np.ones(1)}, add=lambda x: x,
                                   maximum=lambda x: x)
    state = mseplug.Accumulator("mae").state_dict()
    state["loss"] = name
    with pytest.raises(ValueError, match=rf"{name} {ONE_CALL}"):
        mseplug.Accumulator.from_state_dict(state)


def test_torch_all_reduce_refuses_a_median() -> None:
    pytest.importorskip("torch.distributed")
    from mseplug.api.registry import options_for
    from mseplug.torch import all_reduce

    acc = mseplug.Accumulator("mae")
    acc.options = options_for("median_absolute_error")  # as if it had been made for one
    with pytest.raises(ValueError, match=rf"median_absolute_error {ONE_CALL}"):
        all_reduce(acc)


def test_the_record_says_it_is_not_decomposable() -> None:
    for name in NAMES:
        spec = mseplug.get_loss(name).loss.statistics
        assert spec is not None and not decomposable(spec)
        assert "none" in {how for _, how in layout(spec)}
    for name in ("r2", "explained_variance", "max_error"):
        assert decomposable(mseplug.get_loss(name).loss.statistics)
    spec = Statistics((Sum("s", lambda xp, t, p: t), Quantile("q", lambda xp, t, p: p, 0.9)),
                      lambda xp, stats: stats["q"])
    assert layout(spec) == (("weight", "sum"), ("s", "sum"), ("q", "none"),
                            ("q.deviation", "none"))
    with pytest.raises(ValueError, match=r"level must be a number in \[0, 1\]"):
        Quantile("q", lambda xp, t, p: t, 1.5)


def test_a_registered_quantile_metric_works_in_one_call() -> None:
    """A plugin's record with a Quantile of its own (the 0.9-quantile of |r|) takes the generic
    one-call path on every backend and is refused by the Accumulator alike: nothing is special
    to the built-ins' names."""
    loss = mseplug.Loss("q90_absolute_error_example", None, statistics=Statistics(
        (Quantile("q", lambda xp, t, p: xp.abs(t - p), 0.9),), lambda xp, stats: stats["q"]))
    function = mseplug.register_loss(loss)
    try:
        y, p, w = _data(81, 20, 2, ties=False)
        from sklearn.utils.stats import _weighted_percentile

        expected = _weighted_percentile(np.abs(y - p), w, 90, average=True)
        np.testing.assert_allclose(np.asarray(function(y, p, sample_weight=w,
                                                       multioutput="raw_values")),
                                   expected, rtol=1e-12)
        with pytest.raises(ValueError, match=ONE_CALL):
            mseplug.Accumulator("q90_absolute_error_example")
    finally:
        from mseplug.api import registry

        registry._functions.pop("q90_absolute_error_example", None)
        registry._records.pop("q90_absolute_error_example", None)


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_deviation_is_computed_only_where_the_finalize_reads_it(library, monkeypatch) -> None:
    """median_absolute_error's finalize reads its median only (``deviation=False``): no pinball
    deviation is computed, nor in its layout; d2_absolute_error's reads the target's."""
    if library == "dask":
        pytest.importorskip("dask.array")
    from mseplug.engine import moments

    calls: list[float] = []
    original = moments.pinball_deviation

    def counted(xp, term, weight, centre, level):
        calls.append(level)
        return original(xp, term, weight, centre, level)

    monkeypatch.setattr(moments, "pinball_deviation", counted)
    y, p, w = _data(4, 9, 2, ties=False)
    for name, deviations in (("median_absolute_error", []), ("d2_absolute_error", [0.5])):
        spec = mseplug.get_loss(name).loss.statistics
        keys = [key for key, _ in layout(spec)]
        assert any(key.endswith(".deviation") for key in keys) == bool(deviations)
        for options in ({}, {"sample_weight": w}):
            calls.clear()
            converted = {key: _as(library, value) for key, value in options.items()}
            got = _numpy(mseplug.get_loss(name)(_as(library, y), _as(library, p), **converted,
                                                multioutput="raw_values"))
            np.testing.assert_allclose(got, _sklearn(name, y, p, **options,
                                                     multioutput="raw_values"), rtol=1e-12)
            assert calls == deviations, (name, options)


def test_a_quantile_deviation_is_true_or_false() -> None:
    term = lambda xp, t, p: t  # noqa: E731
    assert Quantile("q", term).deviation
    spec = Statistics((Quantile("q", term, 0.9, deviation=False),), lambda xp, stats: stats["q"])
    assert layout(spec) == (("weight", "sum"), ("q", "none"))
    with pytest.raises(TypeError, match="deviation must be True or False"):
        Quantile("q", term, deviation=1)  # type: ignore[arg-type]
