"""Dask through the generic Array API backend, computed on a real distributed.LocalCluster (127.0.0.1)."""

from __future__ import annotations

import numpy as np
import pytest

import mseplug

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=40,
    )
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse", "huber"])
def test_dask_values_equal_numpy_on_the_cluster(client, loss, rng) -> None:
    y_true, y_pred = rng.normal(size=(4000, 3)), rng.normal(size=(4000, 3))
    w = rng.uniform(0.1, 2, size=4000)
    t, p = da.from_array(y_true, chunks=(700, 3)), da.from_array(y_pred, chunks=(700, 3))
    dw = da.from_array(w, chunks=700)
    for options in ({}, {"multioutput": "raw_values"}, {"multioutput": [0.2, 0.3, 0.5]}):
        lazy = getattr(mseplug, loss)(t, p, sample_weight=dw, **options)
        assert isinstance(lazy, da.Array), type(lazy)
        got = client.compute(lazy).result()
        expected = getattr(mseplug, loss)(y_true, y_pred, sample_weight=w, **options)
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_dask_gradient_and_accumulator(client, rng) -> None:
    y_true, y_pred = rng.normal(size=3000), rng.normal(size=3000)
    t, p = da.from_array(y_true, chunks=500), da.from_array(y_pred, chunks=500)
    gradient = mseplug.grad("huber", t, p, delta=0.5)
    assert isinstance(gradient, da.Array) and gradient.shape == (3000,)
    np.testing.assert_allclose(client.compute(gradient).result(),
                               mseplug.grad("huber", y_true, y_pred, delta=0.5), rtol=1e-12)
    acc = mseplug.Accumulator("rmse")
    for start in range(0, 3000, 1000):
        acc.update(t[start:start + 1000], p[start:start + 1000])
    assert float(acc.compute()) == pytest.approx(float(mseplug.rmse(y_true, y_pred)), rel=1e-12)


def test_dask_nan_policies(client, rng) -> None:
    y_true = rng.normal(size=1000)
    y_true[17] = np.nan
    y_pred = rng.normal(size=1000)
    t, p = da.from_array(y_true, chunks=250), da.from_array(y_pred, chunks=250)
    keep = ~np.isnan(y_true)
    got = client.compute(mseplug.mse(t, p, nan_policy="omit")).result()
    assert float(got) == pytest.approx(float(np.mean((y_pred[keep] - y_true[keep]) ** 2)), rel=1e-12)
    lazy = mseplug.mse(t, p, nan_policy="raise")  # checked inside the graph, as it computes
    with pytest.raises(ValueError, match="y_true contains NaN"):
        client.compute(lazy).result()
