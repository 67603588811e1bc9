"""Loss values: scikit-learn parity on float64, options, dtypes, every backend against float64 NumPy."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from libraries import RTOL
from loss_table import NAMES, call, example_params, in_domain, rows, skip_if_refused
from reference import loss_value, mean_loss

import mseplug

sklearn_metrics = pytest.importorskip("sklearn.metrics")



def _sklearn_anchor(name: str) -> tuple[object, dict[str, float]]:
    """scikit-learn's function and our example parameters that it takes too (MAPE's epsilon is
    fixed there: ours stays at its default, scikit-learn's value)."""
    function = getattr(sklearn_metrics, mseplug.get_loss(name).loss.anchors["sklearn"])
    takes = inspect.signature(function).parameters
    return function, {key: value for key, value in example_params(name).items() if key in takes}


#: The losses scikit-learn defines (their records' anchors), with parameters of ours.
SKLEARN = {name: _sklearn_anchor(name) for name in NAMES
           if "sklearn" in mseplug.get_loss(name).loss.anchors}


def test_house_prices() -> None:
    truth, guess = np.array([120_000.0, 60_000.0]), np.array([100_000.0, 80_000.0])
    assert float(np.sum(guess - truth)) == 0.0
    assert float(mseplug.mse(truth, guess)) == 4e8
    assert float(mseplug.mae(truth, guess)) == 2e4
    assert float(mseplug.rmse(truth, guess)) == 2e4


@pytest.mark.parametrize("name", sorted(SKLEARN))
@pytest.mark.parametrize("shape", [(40,), (40, 1), (40, 3)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("multioutput", ["uniform_average", "raw_values", "weights"])
def test_equals_sklearn(name, shape, weighted, multioutput, rng) -> None:
    # scikit-learn's max_error takes neither weights nor outputs: tests/loss/test_statistics.py
    skip_if_refused(name, weighted=True, outputs=int(np.prod(shape[1:])), multioutput=multioutput)
    y_true, y_pred = in_domain(name, rng.normal(size=shape) * 3, rng.normal(size=shape) * 3)
    w = rng.uniform(0, 2, size=shape[0]) if weighted else None
    k = shape[1] if len(shape) > 1 else 1
    mo = rng.uniform(0.1, 1, size=k) if multioutput == "weights" else multioutput
    anchor, params = SKLEARN[name]
    ours = np.asarray(call(name, y_true, y_pred, sample_weight=w, multioutput=mo, **params))
    if "multioutput" in inspect.signature(anchor).parameters:
        # sklearn refuses output weights for one output; for us they are the identity there.
        sk_mo = "uniform_average" if multioutput == "weights" and k == 1 else mo
        theirs = np.asarray(anchor(y_true, y_pred, sample_weight=w, multioutput=sk_mo, **params))
    else:  # a 1-D metric (the deviances): per output, combined as multioutput says
        columns = [anchor(y_true.reshape(40, k)[:, j], y_pred.reshape(40, k)[:, j],
                          sample_weight=w, **params) for j in range(k)]
        theirs = (np.asarray(columns) if multioutput == "raw_values" else
                  np.average(columns, weights=None if isinstance(mo, str) else mo))
    np.testing.assert_allclose(ours.reshape(-1), theirs.reshape(-1), rtol=1e-12, atol=0)


@pytest.mark.parametrize(("name", "params"), rows())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(), (7,), (7, 1), (9, 4), (5, 2, 3)])
def test_every_backend_matches_float64_reference(backend, name, params, dtype, shape, rng) -> None:
    skip_if_refused(name, outputs=int(np.prod(shape[1:])))
    y_true = rng.normal(size=shape)
    y_true, y_pred = in_domain(name, y_true, y_true + rng.normal(size=shape) * 2, **params)
    y_true_b, y_pred_b = backend.asarray(y_true, dtype), backend.asarray(y_pred, dtype)
    t64, p64 = backend.to_numpy(y_true_b), backend.to_numpy(y_pred_b)
    value = call(name, y_true_b, y_pred_b, **params)
    assert str(value.dtype).endswith(dtype)
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(backend.to_numpy(value), mean_loss(name, t64, p64, **params),
                               rtol=RTOL[dtype])


@pytest.mark.parametrize(("name", "params"), rows())
def test_weights_and_raw_values_on_every_backend(backend, name, params, rng) -> None:
    skip_if_refused(name, weighted=True, outputs=3, multioutput="raw_values")
    y_true, y_pred = in_domain(name, rng.normal(size=(12, 3)), rng.normal(size=(12, 3)), **params)
    w = rng.uniform(0, 1, size=12)
    got = call(name, backend.asarray(y_true), backend.asarray(y_pred),
               sample_weight=backend.asarray(w), multioutput="raw_values", **params)
    expected = [mean_loss(name, y_true[:, k], y_pred[:, k], w, **params) for k in range(3)]
    np.testing.assert_allclose(backend.to_numpy(got), expected, rtol=1e-12)


@pytest.mark.parametrize("delta", [0.1, 1.0, 2.5])
def test_huber_matches_definition_and_delta(delta, rng) -> None:
    y_true, y_pred = rng.normal(size=100) * 3, rng.normal(size=100) * 3
    got = float(mseplug.huber(y_true, y_pred, delta=delta))
    assert got == pytest.approx(mean_loss("huber", y_true, y_pred, delta=delta), rel=1e-12)


@pytest.mark.parametrize(("name", "params"), rows(sums=True))
def test_reductions(name, params, rng) -> None:
    y_true, y_pred = in_domain(name, rng.normal(size=(6, 2)), rng.normal(size=(6, 2)), **params)
    w = rng.uniform(0.1, 1, size=6)
    elementwise = np.asarray(call(name, y_true, y_pred, sample_weight=w, reduction="none", **params))
    e = loss_value(name, y_true, y_pred, reduction="none", **params)
    np.testing.assert_allclose(elementwise, e * w[:, None], rtol=1e-12)
    total = call(name, y_true, y_pred, sample_weight=w, reduction="sum", **params)
    assert float(total) == pytest.approx(float(np.sum(e * w[:, None])), rel=1e-12)
    per_output = call(name, y_true, y_pred, reduction="sum", multioutput="raw_values", **params)
    np.testing.assert_allclose(per_output, e.sum(axis=0), rtol=1e-12)
    weighted = call(name, y_true, y_pred, reduction="sum", multioutput=[2.0, 0.5], **params)
    assert float(weighted) == pytest.approx(float(e.sum(axis=0) @ [2.0, 0.5]), rel=1e-12)


def test_column_vector_against_vector_is_not_broadcast(rng) -> None:
    y_true, y_pred = rng.normal(size=10), rng.normal(size=10)
    expected = mean_loss("mse", y_true, y_pred)
    assert float(mseplug.mse(y_true[:, None], y_pred)) == pytest.approx(expected, rel=1e-12)
    assert float(mseplug.mse(y_true, y_pred[:, None])) == pytest.approx(expected, rel=1e-12)
    assert mseplug.mse(y_true, y_pred[:, None], reduction="none").shape == (10, 1)


def test_zero_d_pair_is_one_sample() -> None:
    assert float(mseplug.mse(np.float64(2.0), np.float64(5.0))) == 9.0
    assert float(mseplug.mae(3.0, 1.0)) == 2.0


def test_nan_policies(rng) -> None:
    y_true, y_pred = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
    y_true[2, 0] = np.nan
    y_pred[5, 1] = np.nan
    assert np.isnan(float(mseplug.mse(y_true, y_pred)))
    raw = mseplug.mse(y_true, y_pred, nan_policy="omit", multioutput="raw_values")
    keep0, keep1 = np.arange(8) != 2, np.arange(8) != 5
    np.testing.assert_allclose(raw, [mean_loss("mse", y_true[keep0, 0], y_pred[keep0, 0]),
                                     mean_loss("mse", y_true[keep1, 1], y_pred[keep1, 1])])
    none = mseplug.mse(y_true, y_pred, nan_policy="omit", reduction="none")
    assert none[2, 0] == 0 and none[5, 1] == 0 and np.isfinite(none).all()
    with pytest.raises(ValueError, match="y_true contains NaN"):
        mseplug.mse(y_true, y_pred, nan_policy="raise")


@pytest.mark.parametrize("dtype", ["int64", "int32", "bool"])
def test_integers_and_bools_promote_to_default_float(dtype) -> None:
    y_true = np.array([0, 1, 1], dtype=dtype)
    y_pred = np.array([1, 1, 0], dtype=dtype)
    value = mseplug.mse(y_true, y_pred)
    assert value.dtype == np.float64 and float(value) == pytest.approx(2 / 3)


def test_mixed_widths_promote_and_half_accumulates_wide() -> None:
    assert mseplug.mse(np.ones(3, np.float32), np.zeros(3, np.float64)).dtype == np.float64
    n = 40_000  # float16 sums would stall at 2048; the accumulation is wider
    value = mseplug.mse(np.zeros(n, np.float16), np.ones(n, np.float16))
    assert value.dtype == np.float16 and float(value) == 1.0
    assert float(mseplug.mse(np.zeros(n, np.float16), np.ones(n, np.float16), reduction="sum")) == n


def test_float32_large_input_is_accurate() -> None:
    import math

    rng = np.random.default_rng(3)
    a = rng.standard_normal(3_000_000).astype(np.float32)
    b = a + rng.standard_normal(3_000_000).astype(np.float32)
    exact = math.fsum(((a.astype(np.float64) - b.astype(np.float64)) ** 2).tolist()) / a.size
    assert abs(float(mseplug.mse(a, b)) - exact) / exact < 1e-6
    exact_abs = math.fsum(np.abs(a.astype(np.float64) - b.astype(np.float64)).tolist()) / a.size
    assert abs(float(mseplug.mae(a, b)) - exact_abs) / exact_abs < 1e-6


def test_inputs_are_not_modified_even_read_only(rng) -> None:
    for name in (row.values[0] for row in rows(weighted=True, outputs=True)):
        y_true, y_pred = in_domain(name, rng.normal(size=(50, 2)), rng.normal(size=(50, 2)))
        y_true[0, 0] = np.nan
        w = rng.uniform(size=50)
        copies = [y_true.copy(), y_pred.copy(), w.copy()]
        for array in (y_true, y_pred, w):
            array.flags.writeable = False
        for policy in ("propagate", "omit"):
            call(name, y_true, y_pred, sample_weight=w, nan_policy=policy)
            mseplug.value_and_grad(name, y_true, y_pred, sample_weight=w, nan_policy=policy)
        for original, array in zip(copies, (y_true, y_pred, w)):
            np.testing.assert_array_equal(original, array)


def test_lists_and_pandas_are_accepted() -> None:
    pandas = pytest.importorskip("pandas")
    assert float(mseplug.mse([1.0, 2.0], [1.0, 4.0])) == 2.0
    assert float(mseplug.mae(pandas.Series([1.0, 2.0]), pandas.Series([2.0, 2.0]))) == 0.5
