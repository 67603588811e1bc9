"""The Accumulator, sufficient statistics and collectives for losses with statistics of their
own (R², explained variance, the maximum error): streamed, merged, restored and reduced values
equal one call, and float32 data far from 0 keeps its digits."""

from __future__ import annotations

import json
import pickle
import threading

import numpy as np
import pytest

import mseplug

sklearn_metrics = pytest.importorskip("sklearn.metrics")

CUTS = [0, 1, 7, 100, 101, 640, 1000]  # uneven batches, one of a single row


def _far_from_zero(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 targets of mean 1e6 and std 1, predictions with noise 0.3."""
    rng = np.random.default_rng(seed)
    y = (1e6 + rng.normal(size=n)).astype(np.float32)
    return y, (y + 0.3 * rng.normal(size=n)).astype(np.float32)


def _streamed(name: str, y, p, cuts=CUTS, **options) -> mseplug.Accumulator:
    acc = mseplug.Accumulator(name, **options)
    for a, b in zip(cuts, cuts[1:]):
        acc.update(y[a:b], p[a:b])
    return acc


@pytest.mark.parametrize(("name", "reference"), [("r2", "r2_score"),
                                                 ("explained_variance", "explained_variance_score")])
def test_float32_mean_1e6_in_one_call_streamed_and_merged(name, reference, capsys) -> None:
    y, p = _far_from_zero()
    exact = getattr(sklearn_metrics, reference)(y.astype(np.float64), p.astype(np.float64))
    sklearn_float32 = getattr(sklearn_metrics, reference)(y, p)
    one_call = float(mseplug.get_loss(name)(y, p))
    streamed = float(_streamed(name, y, p).compute())
    first, second = _streamed(name, y, p, [0, 333]), _streamed(name, y, p, [333, 1000])
    merged = float(second.merge(first).compute())
    with capsys.disabled():
        print(f"\n{name}: float64 sklearn {exact:.6f}, float32 sklearn {sklearn_float32:.6f}; "
              f"mseplug errors: one call {abs(one_call - exact):.1e}, streamed "
              f"{abs(streamed - exact):.1e}, merged {abs(merged - exact):.1e}")
    assert abs(one_call - exact) < 1e-6
    assert abs(streamed - exact) < 1e-6
    assert abs(merged - exact) < 1e-6


def test_torch_batches_float32_far_from_zero() -> None:
    torch = pytest.importorskip("torch")
    y, p = _far_from_zero()
    exact = sklearn_metrics.r2_score(y.astype(np.float64), p.astype(np.float64))
    acc = mseplug.Accumulator("r2")
    for a, b in zip(CUTS, CUTS[1:]):
        acc.update(torch.tensor(y[a:b]), torch.tensor(p[a:b]))
    assert abs(float(acc.compute()) - exact) < 1e-6
    assert abs(float(mseplug.r2(torch.tensor(y), torch.tensor(p))) - exact) < 1e-6


def test_the_epoch_r2_is_not_the_mean_of_batch_r2() -> None:
    y, p = _far_from_zero()
    one_call = float(mseplug.r2(y.astype(np.float64), p.astype(np.float64)))
    batches = [float(mseplug.r2(y[a:b], p[a:b])) for a, b in zip(CUTS[1:], CUTS[2:])]
    streamed = float(_streamed("r2", y, p).compute())
    assert streamed == pytest.approx(one_call, abs=1e-9)
    assert abs(np.mean(batches) - one_call) > 1e-3


@pytest.mark.parametrize("multioutput", ["uniform_average", "raw_values", "variance_weighted"])
@pytest.mark.parametrize("name", ["r2", "explained_variance"])
def test_weighted_outputs_and_omit_stream_as_one_call(name, multioutput) -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=(200, 3)) + 50
    p = y + rng.normal(size=(200, 3))
    w = rng.uniform(0.1, 2.0, size=200)
    y[5, 1] = np.nan
    want = mseplug.get_loss(name)(y, p, sample_weight=w, multioutput=multioutput, nan_policy="omit")
    acc = mseplug.Accumulator(name, multioutput=multioutput, nan_policy="omit")
    for a, b in zip([0, 3, 90, 91], [3, 90, 91, 200]):
        acc.update(y[a:b], p[a:b], sample_weight=w[a:b])
    np.testing.assert_allclose(acc.compute(), want, rtol=1e-12)
    restored = mseplug.Accumulator.from_state_dict(json.loads(json.dumps(acc.state_dict())))
    np.testing.assert_allclose(restored.compute(), want, rtol=1e-12)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(acc)).compute(), want, rtol=1e-12)


def test_max_error_combines_by_the_maximum_exactly() -> None:
    y, p = _far_from_zero()
    want = sklearn_metrics.max_error(y, p)
    acc = _streamed("max_error", y, p)
    assert float(acc.compute()) == want
    first, second = _streamed("max_error", y, p, [0, 500]), _streamed("max_error", y, p, [500, 1000])
    assert float(first.merge(second).compute()) == want
    state = acc.state_dict()
    assert set(state["total"]) == {"weight", "absolute_residual"}
    assert float(mseplug.Accumulator.from_state_dict(state).compute()) == want
    empty = mseplug.Accumulator("max_error")
    empty.update(y[:0], p[:0])
    assert float(empty.merge(acc).compute()) == want


def test_a_state_with_wrong_statistics_is_refused() -> None:
    state = _streamed("r2", *_far_from_zero()).state_dict()
    state["total"].pop("target.sum")
    with pytest.raises(ValueError, match="must be a dict of its statistics"):
        mseplug.Accumulator.from_state_dict(state)


class _Collective:
    """``psum``/``pmax`` stand-ins for parts that run in threads: each reduces what every part
    passes to its n-th collective call (the parts run the same code, so it is the same
    quantity)."""

    def __init__(self, parts: int) -> None:
        self.barrier = threading.Barrier(parts)
        self.slots: list = [None] * parts

    def reduce(self, me: int, x, operation):
        self.slots[me] = x
        self.barrier.wait()
        result = operation(list(self.slots))
        self.barrier.wait()
        return result


@pytest.mark.parametrize("name", ["r2", "explained_variance", "max_error"])
def test_sufficient_statistics_combine_as_one_call(name) -> None:
    y, p = _far_from_zero(seed=2)
    y, p = y.astype(np.float64), p.astype(np.float64)
    parts = [mseplug.sufficient_statistics(name, y[a:b], p[a:b]) for a, b in
             zip(CUTS, CUTS[1:])]
    parts.append(mseplug.sufficient_statistics(name, y[:0], p[:0]))  # a part without data
    collective = _Collective(len(parts))
    results: list = [None] * len(parts)

    def run(me: int) -> None:
        results[me] = mseplug.combine_statistics(
            name, parts[me], add=lambda x: collective.reduce(me, x, np.add.reduce),
            maximum=lambda x: collective.reduce(me, x, np.maximum.reduce))

    threads = [threading.Thread(target=run, args=(me,)) for me in range(len(parts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = [float(mseplug.loss_from_statistics(name, result)) for result in results]
    assert len(set(values)) == 1
    assert values[0] == pytest.approx(float(mseplug.get_loss(name)(y, p)), rel=1e-12)


@pytest.mark.parametrize("name", ["r2", "explained_variance", "max_error"])
def test_dask_chunks_stream_and_give_statistics_as_one_call(name) -> None:
    da = pytest.importorskip("dask.array")
    y, p = _far_from_zero(n=400, seed=6)
    t, q = da.from_array(y, chunks=57), da.from_array(p, chunks=57)
    want = float(mseplug.get_loss(name)(y.astype(np.float64), p.astype(np.float64)))
    acc = mseplug.Accumulator(name)
    acc.update(t, q)
    assert float(acc.compute()) == pytest.approx(want, rel=1e-12)
    lazy = mseplug.sufficient_statistics(name, t, q)
    assert all(isinstance(value, da.Array) for value in lazy.values())
    computed = {key: value.compute() for key, value in lazy.items()}
    assert float(mseplug.loss_from_statistics(name, computed)) == pytest.approx(want, rel=1e-12)
