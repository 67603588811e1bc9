"""Dask through the generic Array API backend, computed on a real distributed.LocalCluster (127.0.0.1).

A scheduler plugin counts the graphs the cluster is given: mseplug's
functions submit none (everything stays lazy until the caller computes), and
``Accumulator.update`` submits exactly one.
"""

from __future__ import annotations

from typing import Any

import distributed_cases as cases
import numpy as np
import pytest
from loss_table import skip_if_refused

import mseplug

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

from distributed.diagnostics.plugin import SchedulerPlugin  # noqa: E402

ALL_LOSSES = (*mseplug.losses(), cases.CAUCHY)


class GraphCounter(SchedulerPlugin):
    """Counts the graphs submitted to the scheduler (one per compute/persist call)."""

    name = "mseplug-graph-counter"

    def __init__(self) -> None:
        self.graphs = 0

    def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
        self.graphs += 1


@pytest.fixture(scope="module")
def client():
    """A 2-worker LocalCluster on 127.0.0.1, on ports the OS picks (another developer's cluster
    may hold 8786/8787), and ``os.environ`` as it was afterwards (the nanny sets thread counts
    and a hash seed in the parent, which later tests and their subprocesses would inherit)."""
    import os

    saved = dict(os.environ)
    cases.register_cauchy()
    cluster = distributed.LocalCluster(
        host="127.0.0.1", scheduler_port=0, n_workers=2, threads_per_worker=1, processes=True,
        dashboard_address=None, silence_logs=40,
    )
    try:
        with cluster, distributed.Client(cluster) as dask_client:
            dask_client.register_plugin(GraphCounter())
            yield dask_client
    finally:
        cases.unregister_cauchy()
        os.environ.clear()
        os.environ.update(saved)


def graphs(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.plugins[GraphCounter.name].graphs)


def chunked(x: np.ndarray, rows: int) -> Any:
    return da.from_array(x, chunks=(rows,) + x.shape[1:])


@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_every_call_stays_lazy_and_equals_numpy(client, loss) -> None:
    """Values, options, NaN checks, gradients and statistics: no graph before compute()."""
    # sums, elementwise values, chunked gradients and (S, W): Dask values of statistics of their
    # own are in tests/loss/test_statistics.py and tests/streaming/test_accumulator_statistics.py
    skip_if_refused(loss, elementwise=True)
    function = mseplug.get_loss(loss)
    lazy, expected = [], []
    for option in cases.OPTIONS:
        case = cases.data(option, n=4000, loss=loss)
        t, p = chunked(case["y_true"], 700), chunked(case["y_pred"], 700)
        w = None if case["sample_weight"] is None else chunked(case["sample_weight"], 700)
        keywords = {"multioutput": case["multioutput"], "nan_policy": case["nan_policy"]}
        lazy.append(function(t, p, sample_weight=w, **keywords))
        expected.append(cases.one_shot(loss, case))
    case = cases.data("weighted", n=4000, loss=loss)
    t, p, w = (chunked(case[key], 700) for key in ("y_true", "y_pred", "sample_weight"))
    lazy.append(function(t, p, sample_weight=w, nan_policy="raise"))
    expected.append(cases.one_shot(loss, case))
    lazy.append(mseplug.grad(loss, t, p, sample_weight=w))
    expected.append(mseplug.grad(loss, case["y_true"], case["y_pred"], sample_weight=case["sample_weight"]))
    lazy.extend(mseplug.sufficient_statistics(loss, t, p, sample_weight=w))
    expected.extend(mseplug.sufficient_statistics(loss, case["y_true"], case["y_pred"],
                                                  sample_weight=case["sample_weight"]))
    if not function.loss.root:
        lazy.append(function(t, p, sample_weight=w, reduction="sum"))
        expected.append(function(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
                                 reduction="sum"))
        lazy.append(function(t, p, sample_weight=w, reduction="none"))
        expected.append(function(case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
                                 reduction="none"))
    before = graphs(client)
    assert all(isinstance(x, da.Array) for x in lazy)
    assert graphs(client) == before  # nothing computed yet
    got = client.compute(lazy, sync=True)
    assert graphs(client) == before + 1
    for value, want in zip(got, expected):
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-300)


def test_checks_run_inside_the_graph(client, rng) -> None:
    y_true, y_pred = rng.normal(size=1000), rng.normal(size=1000)
    y_true[917] = np.nan
    t, p = chunked(y_true, 250), chunked(y_pred, 250)
    ones = da.ones(1000, chunks=250)
    before = graphs(client)
    raising = mseplug.mse(t, p, nan_policy="raise")
    zero_weights = mseplug.mae(p, p, sample_weight=ones * 0)
    negative = mseplug.rmse(p, p, sample_weight=-ones)
    infinite = mseplug.grad("huber", p, p, sample_weight=ones / 0)
    zero_grad = mseplug.grad("mse", p, p, sample_weight=ones * 0)
    assert graphs(client) == before
    for lazy, message in ((raising, "y_true contains NaN"), (zero_weights, "sums to 0"),
                          (negative, "negative values"), (infinite, "NaN or infinite"),
                          (zero_grad, "sums to 0")):
        with pytest.raises(ValueError, match=message):
            client.compute(lazy, sync=True)
    # A zero-weight chunk is fine when other chunks carry weight.
    partly = da.concatenate([ones[:250] * 0, ones[250:]])
    got = client.compute(mseplug.mse(chunked(y_pred, 250), p * 2, sample_weight=partly), sync=True)
    assert float(got) == pytest.approx(float(np.mean(y_pred[250:] ** 2)), rel=1e-12)


def test_accumulator_update_is_one_compute(client, rng) -> None:
    case = cases.data("omit", n=3000)
    t, p = chunked(case["y_true"], 400), chunked(case["y_pred"], 400)
    w = chunked(case["sample_weight"], 400)
    acc = mseplug.Accumulator("rmse", multioutput="raw_values", nan_policy="omit")
    for start in range(0, 3000, 1000):
        before = graphs(client)
        part = slice(start, start + 1000)
        acc.update(t[part], p[part], sample_weight=w[part])
        assert graphs(client) == before + 1
    assert acc.count == 3000
    np.testing.assert_allclose(acc.compute(), mseplug.rmse(
        case["y_true"], case["y_pred"], sample_weight=case["sample_weight"],
        multioutput="raw_values", nan_policy="omit"), rtol=1e-12)
    empty = t[t[:, 0] > 1e9]  # unknown chunk lengths, no rows at all
    before = graphs(client)
    acc.update(empty, p[p[:, 0] > 1e9])
    assert graphs(client) == before + 1 and acc.count == 3000


def test_unknown_chunk_lengths(client, rng) -> None:
    y_true, y_pred = rng.normal(size=(5000, 2)), rng.normal(size=(5000, 2))
    keep = (y_true[:, 0] > -1.0)
    t, p = chunked(y_true, 600), chunked(y_pred, 600)
    mask = chunked(keep, 600)
    t_kept, p_kept = t[mask], p[mask]
    assert np.isnan(t_kept.shape[0])
    before = graphs(client)
    lazy = [mseplug.rmse(t_kept, p_kept), mseplug.mae(t_kept[:, 0], p_kept[:, :1]),
            mseplug.grad("mse", t_kept, p_kept)]
    assert graphs(client) == before
    got = client.compute(lazy, sync=True)
    np.testing.assert_allclose(got[0], mseplug.rmse(y_true[keep], y_pred[keep]), rtol=1e-12)
    np.testing.assert_allclose(got[1], mseplug.mae(y_true[keep, 0], y_pred[keep, :1]), rtol=1e-12)
    np.testing.assert_allclose(got[2], mseplug.grad("mse", y_true[keep], y_pred[keep]), rtol=1e-12)
    acc = mseplug.Accumulator("mse")
    acc.update(t_kept, p_kept)
    assert acc.count == keep.sum()
    # Same number of chunks but different lengths: a clear error when computed.
    other = chunked(y_true, 600)[chunked(y_pred[:, 0] > -1.0, 600)]
    mismatched = mseplug.mse(other, p_kept)
    with pytest.raises(ValueError, match=r"chunks differ: .* rows of y_true, .* of y_pred"):
        client.compute(mismatched, sync=True)
    with pytest.raises(ValueError, match="y_true comes in 1 chunks along axis 0 and y_pred in 9"):
        mseplug.mse(y_true, p_kept)  # a different number of chunks is known at once


def test_dataframe_columns_stay_lazy(client, rng) -> None:
    frame = pd.DataFrame({"y": rng.normal(size=6000), "p": rng.normal(size=6000),
                          "w": rng.uniform(0.1, 2, size=6000)})
    ddf = dd.from_pandas(frame, npartitions=5)
    before = graphs(client)
    value = mseplug.rmse(ddf.y, ddf.p, sample_weight=ddf.w)
    both = mseplug.mae(ddf[["y", "p"]], ddf[["p", "y"]], multioutput=[1.0, 3.0])
    assert isinstance(value, da.Array) and value.shape == () and graphs(client) == before
    got = client.compute([value, both], sync=True)
    assert graphs(client) == before + 1
    expected = mseplug.rmse(frame.y.to_numpy(), frame.p.to_numpy(), sample_weight=frame.w.to_numpy())
    assert float(got[0]) == pytest.approx(float(expected), rel=1e-12)
    expected = mseplug.mae(frame[["y", "p"]].to_numpy(), frame[["p", "y"]].to_numpy(),
                           multioutput=[1.0, 3.0])
    assert float(got[1]) == pytest.approx(float(expected), rel=1e-12)
    acc = mseplug.Accumulator("huber", delta=0.5)
    acc.update(ddf.y, ddf.p, sample_weight=ddf.w)
    assert graphs(client) == before + 2 and acc.count == 6000
    assert float(acc.compute()) == pytest.approx(float(mseplug.huber(
        frame.y.to_numpy(), frame.p.to_numpy(), sample_weight=frame.w.to_numpy(), delta=0.5)), rel=1e-12)


def test_float32_multioutput_is_accurate(client, rng) -> None:
    y_true = rng.normal(size=(400_000, 3)).astype(np.float32) * 100
    y_pred = (y_true + rng.normal(size=(400_000, 3)).astype(np.float32)).astype(np.float32)
    t, p = chunked(y_true, 50_000), chunked(y_pred, 50_000)
    for loss in ("mse", "mae", "rmse"):
        lazy = mseplug.get_loss(loss)(t, p, multioutput="raw_values")
        got = client.compute(lazy, sync=True)
        assert got.dtype == np.float32 and lazy.dtype == np.float32
        exact = mseplug.get_loss(loss)(y_true.astype(np.float64), y_pred.astype(np.float64),
                                       multioutput="raw_values")
        np.testing.assert_allclose(got.astype(np.float64), exact, rtol=1e-6)


def test_mixed_inputs_follow_y_pred(client, rng) -> None:
    y_true, y_pred = rng.normal(size=900), rng.normal(size=900)
    lazy = mseplug.mse(y_true, chunked(y_pred, 200))  # NumPy truth, Dask prediction
    assert isinstance(lazy, da.Array)
    assert float(client.compute(lazy, sync=True)) == pytest.approx(float(mseplug.mse(y_true, y_pred)),
                                                                   rel=1e-12)


def test_sum_with_huge_output_weights_and_tiny_sample_weights(client) -> None:
    # Sample weights near 1e-300 are scaled up by a power of two before they are summed; output
    # weights near 1e308 must come back down by one too, or their product overflows (found by the
    # invariants suite: inf where NumPy gives 2.2566e12).
    y_true, y_pred = np.array([125.7302210933933]), np.array([320.43578543068696])
    weight = np.array([9.214800195499495e-301])
    for multioutput in ([6.45972198e307], "uniform_average"):
        want = mseplug.mse(y_true, y_pred, sample_weight=weight, multioutput=multioutput,
                           reduction="sum")
        lazy = mseplug.mse(chunked(y_true, 1), chunked(y_pred, 1), sample_weight=chunked(weight, 1),
                           multioutput=multioutput, reduction="sum")
        assert np.isfinite(want) and want > 0
        assert float(client.compute(lazy, sync=True)) == float(want)


# -- gradients of metrics with statistics of their own (r2, explained_variance, max_error) ------
SCORES = ("r2", "explained_variance")
#: Row chunkings of 60 rows: even, one chunk, uneven, one row per chunk at the end.
CHUNKINGS = (10, 60, (7, 20, 13, 17, 1, 1, 1))


@pytest.mark.parametrize("name", SCORES)
def test_score_gradients_equal_numpy_for_every_chunking(client, rng, name) -> None:
    """The statistics of all chunks first, then each chunk's gradient with them: NumPy's
    gradient (float64, to 1e-12 of its largest component), with weights and every multioutput."""
    y_true = rng.normal(size=(60, 3)) * np.array([1.0, 4.0, 0.5]) + 10.0
    y_pred = y_true + rng.normal(size=(60, 3)) * 0.6 + 0.3
    weight = rng.uniform(0.1, 3.0, size=60)
    lazy, expected = [], []
    for multioutput in ("uniform_average", "variance_weighted", np.array([0.2, 0.5, 0.3])):
        for w in (None, weight):
            want = mseplug.value_and_grad(name, y_true, y_pred, sample_weight=w,
                                          multioutput=multioutput)
            for rows in CHUNKINGS:
                t, p = chunked(y_true, rows), da.from_array(y_pred, chunks=(rows, 1))
                lazy.append(mseplug.grad(name, t, p, sample_weight=None if w is None else
                                         da.from_array(w, chunks=rows), multioutput=multioutput))
                expected.append(want[1])
                lazy.extend(mseplug.value_and_grad(name, t, p, sample_weight=None if w is None
                                                   else chunked(w, rows), multioutput=multioutput))
                expected.extend(want)
    before = graphs(client)
    assert all(isinstance(x, da.Array) for x in lazy)
    assert graphs(client) == before  # nothing computed before the caller computes
    got = client.compute(lazy, sync=True)
    assert graphs(client) == before + 1
    for value, want in zip(got, expected):
        assert value.shape == np.shape(want) and value.dtype == np.float64
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


@pytest.mark.parametrize("name", SCORES)
def test_score_gradients_with_omitted_nan_and_far_apart_weights(client, rng, name) -> None:
    """nan_policy="omit" (NaN in different chunks), and chunks whose weights are 1e300 and
    1e-300 (each chunk scales its weights by its own power of two; the gradient brings them to
    the statistics' one)."""
    y_true, y_pred = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    y_true[3, 0], y_pred[27, 1] = np.nan, np.nan
    weight = rng.uniform(0.5, 2.0, size=40)
    far = weight * np.where(np.arange(40) < 20, 1e300, 1e-300)
    cases = [(w, rows) for w in (weight, far, weight * 1e-200) for rows in (10, 13)]
    lazy = [mseplug.grad(name, chunked(y_true, rows), chunked(y_pred, rows),
                         sample_weight=chunked(w, rows), nan_policy="omit") for w, rows in cases]
    got = client.compute(lazy, sync=True)
    for value, (w, _) in zip(got, cases):
        want = mseplug.grad(name, y_true, y_pred, sample_weight=w, nan_policy="omit")
        assert np.all(np.isfinite(want)) and np.all(want[[3, 27], [0, 1]] == 0)
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12 * np.max(np.abs(want)))


def test_max_error_gradient_shares_ties_across_chunks(client, rng) -> None:
    """The largest error's subgradient is shared by every row that attains it, counted over
    all chunks (NumPy's gradient, bit for bit): three ties in three chunks get 1/3 each."""
    y_true = np.array([1.0, 5.0, 3.0, 0.0, 2.0, 5.0, 4.0])
    y_pred = np.array([2.0, 1.0, 3.0, 4.0, 2.0, 9.0, 4.5])
    want = mseplug.grad("max_error", y_true, y_pred)
    np.testing.assert_array_equal(want, [0, -1 / 3, 0, 1 / 3, 0, 1 / 3, 0])
    random_true, random_pred = rng.normal(size=500), rng.normal(size=500)
    random_true[[10, 250, 499]] = 7.0  # ties of the largest error in chunks 0, 2 and 4
    random_pred[[10, 250, 499]] = [0.0, 14.0, 0.0]
    lazy, expected = [], []
    for rows in (2, 3, 7, (1, 4, 2)):
        t, p = chunked(y_true, rows), chunked(y_pred, rows)
        lazy.append(mseplug.grad("max_error", t, p))
        expected.append(want)
        lazy.extend(mseplug.value_and_grad("max_error", t, p))
        expected.extend(mseplug.value_and_grad("max_error", y_true, y_pred))
    for rows in (100, 499, 37):
        lazy.append(mseplug.grad("max_error", chunked(random_true, rows), chunked(random_pred, rows)))
        expected.append(mseplug.grad("max_error", random_true, random_pred))
    assert np.count_nonzero(expected[-1]) == 3
    got = client.compute(lazy, sync=True)
    for value, want_ in zip(got, expected):
        np.testing.assert_array_equal(value, want_)
    # NaN omitted, and a NaN maximum propagated as NumPy does
    random_true[42] = np.nan
    for policy in ("omit", "propagate"):
        lazy = mseplug.grad("max_error", chunked(random_true, 60), chunked(random_pred, 60),
                            nan_policy=policy)
        np.testing.assert_array_equal(client.compute(lazy, sync=True), mseplug.grad(
            "max_error", random_true, random_pred, nan_policy=policy))


def test_score_gradient_checks_run_inside_the_graph(client, rng) -> None:
    y_true, y_pred = rng.normal(size=100), rng.normal(size=100)
    zero = mseplug.grad("r2", chunked(y_true, 30), chunked(y_pred, 30),
                        sample_weight=da.zeros(100, chunks=30))
    with pytest.raises(ValueError, match="sample_weight sums to 0"):
        client.compute(zero, sync=True)
    with pytest.raises(ValueError, match="max_error takes no sample_weight"):
        mseplug.grad("max_error", chunked(y_true, 30), chunked(y_pred, 30),
                     sample_weight=da.ones(100, chunks=30))
