"""The Accumulator: streaming equals one shot, merge, pickle, reset, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mseplug

LOSSES = ("mse", "mae", "rmse", "huber")


def chunks(n: int, size: int):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("multioutput", ["uniform_average", "raw_values", "weights"])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
def test_streaming_equals_one_shot(loss, multioutput, nan_policy, rng) -> None:
    y_true, y_pred = rng.normal(size=(101, 3)), rng.normal(size=(101, 3))
    if nan_policy == "omit":
        y_true[7, 1] = y_pred[50, 2] = np.nan
    w = rng.uniform(0.1, 2, size=101)
    mo = [0.2, 0.5, 0.3] if multioutput == "weights" else multioutput
    options = {"delta": 0.7} if loss == "huber" else {}
    acc = mseplug.Accumulator(loss, multioutput=mo, nan_policy=nan_policy, **options)
    for part in chunks(101, 17):
        acc.update(y_true[part], y_pred[part], sample_weight=w[part])
    expected = getattr(mseplug, loss)(y_true, y_pred, sample_weight=w, multioutput=mo,
                                      nan_policy=nan_policy, **options)
    np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12)
    assert acc.count == 101


def test_merge_pickle_reset(rng) -> None:
    y_true, y_pred = rng.normal(size=40), rng.normal(size=40)
    left, right = mseplug.Accumulator("rmse"), mseplug.Accumulator("rmse")
    left.update(y_true[:25], y_pred[:25])
    right.update(y_true[25:], y_pred[25:])
    restored = pickle.loads(pickle.dumps(left))
    merged = restored.merge(right)
    assert merged is restored
    assert float(merged.compute()) == pytest.approx(float(mseplug.rmse(y_true, y_pred)), rel=1e-12)
    assert float(left.compute()) == pytest.approx(float(mseplug.rmse(y_true[:25], y_pred[:25])))
    merged.reset()
    with pytest.raises(ValueError, match="before any update"):
        merged.compute()


def test_other_libraries_feed_the_same_statistics(rng) -> None:
    xps = pytest.importorskip("array_api_strict")
    y_true, y_pred = rng.normal(size=30), rng.normal(size=30)
    acc = mseplug.Accumulator("mae")
    acc.update(xps.asarray(y_true[:10]), xps.asarray(y_pred[:10]))
    acc.update(y_true[10:], y_pred[10:])
    assert float(acc.compute()) == pytest.approx(float(mseplug.mae(y_true, y_pred)), rel=1e-12)


def test_accumulator_errors(rng) -> None:
    with pytest.raises(ValueError, match="loss"):
        mseplug.Accumulator("msle")
    acc = mseplug.Accumulator("mse")
    acc.update(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="outputs"):
        acc.update(np.zeros((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="cannot merge these accumulators: loss 'mae'"):
        acc.merge(mseplug.Accumulator("mae"))
    with pytest.raises(TypeError, match="Accumulator"):
        acc.merge("mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shapes differ"):
        acc.update(np.zeros(3), np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        mseplug.Accumulator("mse", nan_policy="raise").update([np.nan], [1.0])
