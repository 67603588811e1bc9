"""The Accumulator: streaming equals one shot, merge, pickle, reset, errors."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest
from loss_table import call, in_domain, rows, skip_if_refused

import mseplug


def chunks(n: int, size: int):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


@pytest.mark.parametrize(("loss", "params"), rows())
@pytest.mark.parametrize("multioutput", ["uniform_average", "raw_values", "weights"])
@pytest.mark.parametrize("nan_policy", ["propagate", "omit"])
def test_streaming_equals_one_shot(loss, params, multioutput, nan_policy, rng) -> None:
    skip_if_refused(loss, weighted=True, outputs=3, multioutput=multioutput, streamed=True)
    y_true, y_pred = in_domain(loss, rng.normal(size=(101, 3)), rng.normal(size=(101, 3)))
    if nan_policy == "omit":
        y_true[7, 1] = y_pred[50, 2] = np.nan
    w = rng.uniform(0.1, 2, size=101)
    mo = [0.2, 0.5, 0.3] if multioutput == "weights" else multioutput
    acc = mseplug.Accumulator(loss, multioutput=mo, nan_policy=nan_policy, **params)
    for part in chunks(101, 17):
        acc.update(y_true[part], y_pred[part], sample_weight=w[part])
    expected = call(loss, y_true, y_pred, sample_weight=w, multioutput=mo,
                    nan_policy=nan_policy, **params)
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
        mseplug.Accumulator("not_a_loss")
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


# -- real streams: empty and zero-weight batches, mixed shapes, merge checks, state --------------
def test_empty_and_zero_weight_batches(rng) -> None:
    y_true, y_pred = rng.normal(size=300), rng.normal(size=300)
    w = rng.uniform(0.1, 2, size=300)
    w[:100] = 0.0
    acc = mseplug.Accumulator("rmse")
    acc.update(np.zeros(0), np.zeros(0))  # a partition with no rows changes nothing
    assert acc.count == 0 and acc.total is None
    for part in (slice(0, 100), slice(100, 100), slice(100, 300)):
        acc.update(y_true[part], y_pred[part], sample_weight=w[part])
    assert acc.count == 300
    expected = float(mseplug.rmse(y_true, y_pred, sample_weight=w))
    assert float(acc.compute()) == pytest.approx(expected, rel=1e-12)
    only_zero = mseplug.Accumulator("mse")
    only_zero.update(y_true[:100], y_pred[:100], sample_weight=w[:100])
    with pytest.raises(ValueError, match="total weight of the 100 samples seen is 0"):
        only_zero.compute()
    with pytest.raises(ValueError, match="negative"):
        only_zero.update([1.0], [2.0], sample_weight=[-1.0])


def test_one_and_two_dimensional_batches_mix(rng) -> None:
    y_true, y_pred = rng.normal(size=60), rng.normal(size=60)
    for mo in ("uniform_average", "raw_values"):
        acc = mseplug.Accumulator("mae", multioutput=mo)
        acc.update(y_true[:20], y_pred[:20])
        acc.update(y_true[20:40, None], y_pred[20:40, None])
        acc.update(y_true[40:], y_pred[40:, None])
        expected = mseplug.mae(y_true, y_pred[:, None], multioutput=mo)
        np.testing.assert_allclose(acc.compute(), expected, rtol=1e-12)
        assert acc.compute().shape == np.shape(expected) == ()
    column = mseplug.Accumulator("mae", multioutput="raw_values")
    column.update(y_true[:, None], y_pred[:, None])
    assert column.compute().shape == (1,)


@pytest.mark.parametrize(("left", "right", "message"), [
    ({"loss": "mse"}, {"loss": "mae"}, "loss 'mae' (the other) vs 'mse' (this one)"),
    ({"loss": "huber", "delta": 1.0}, {"loss": "huber", "delta": 2.0},
     "huber's delta 2.0 (the other) vs 1.0 (this one)"),
    ({"multioutput": [1.0, 0.0]}, {"multioutput": [0.0, 1.0]},
     "multioutput weights [0.0, 1.0] (the other) vs weights [1.0, 0.0] (this one)"),
    ({"multioutput": "uniform_average"}, {"multioutput": "raw_values"},
     "multioutput 'raw_values' (the other) vs 'uniform_average' (this one)"),
    ({"nan_policy": "propagate"}, {"nan_policy": "omit"},
     "nan_policy 'omit' (the other) vs 'propagate' (this one)"),
])
def test_merge_compares_every_option(left, right, message, rng) -> None:
    y = rng.normal(size=(10, 2))
    accumulators = []
    for options in (left, right):
        options = dict(options)
        acc = mseplug.Accumulator(options.pop("loss", "mse"), **options)
        acc.update(y, y + 1)
        accumulators.append(acc)
    with pytest.raises(ValueError, match=re.escape(f"cannot merge these accumulators: {message}")):
        accumulators[0].merge(accumulators[1])
    assert accumulators[0].count == 10  # a failed merge changes nothing


def test_merge_needs_the_same_outputs_and_equal_weights_merge(rng) -> None:
    y = rng.normal(size=(10, 2))
    left, right = mseplug.Accumulator("mse"), mseplug.Accumulator("mse")
    left.update(y, y + 1)
    right.update(y[:, 0], y[:, 0] + 1)
    with pytest.raises(ValueError, match=r"outputs \(\) \(the other\) vs \(2,\) \(this one\)"):
        left.merge(right)
    weighted = [mseplug.Accumulator("mse", multioutput=np.array([1.0, 3.0])) for _ in range(2)]
    weighted[0].update(y[:4], y[:4] + 1)
    weighted[1].update(y[4:], y[4:] * 2)
    merged = weighted[0].merge(weighted[1])
    expected = mseplug.mse(y, np.concatenate([y[:4] + 1, y[4:] * 2]), multioutput=[1.0, 3.0])
    assert float(merged.compute()) == pytest.approx(float(expected), rel=1e-12)
    empty = mseplug.Accumulator("mse", multioutput=[1.0, 3.0])
    assert merged.merge(empty).count == 10


@pytest.mark.parametrize("loss", mseplug.losses())
def test_state_dict_round_trips_through_json_and_pickle(loss, rng) -> None:
    import json

    skip_if_refused(loss, outputs=2, multioutput="weights", streamed=True)  # max_error: one output
    y_true, y_pred = in_domain(loss, rng.normal(size=(50, 2)), rng.normal(size=(50, 2)))
    y_true[3, 1] = np.nan
    acc = mseplug.Accumulator(loss, multioutput=[0.25, 0.75], nan_policy="omit")
    acc.update(y_true, y_pred)
    state = acc.state_dict()
    assert state["version"] == 2 and state["loss"] == loss and state["count"] == 50
    assert state["params"] == {name: float(value) for name, value in acc.options.param_dict.items()}
    for restored in (mseplug.Accumulator.from_state_dict(json.loads(json.dumps(state))),
                     mseplug.Accumulator.from_state_dict(pickle.loads(pickle.dumps(state)))):
        assert float(restored.compute()) == float(acc.compute())
        assert restored.state_dict() == state
        restored.merge(acc)  # the same options in every respect
        assert restored.count == 100
    fresh = mseplug.Accumulator.from_state_dict(mseplug.Accumulator(loss).state_dict())
    assert fresh.count == 0 and fresh.total is None


def test_from_state_dict_errors() -> None:
    state = mseplug.Accumulator("mse").state_dict()
    with pytest.raises(TypeError, match="dict"):
        mseplug.Accumulator.from_state_dict([("loss", "mse")])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"version.*3"):
        mseplug.Accumulator.from_state_dict({**state, "version": 3})
    with pytest.raises(ValueError, match=r"missing \['count'\]"):
        mseplug.Accumulator.from_state_dict({k: v for k, v in state.items() if k != "count"})
    with pytest.raises(ValueError, match="loss 'not_a_loss' is unknown"):
        mseplug.Accumulator.from_state_dict({**state, "loss": "not_a_loss"})
    with pytest.raises(ValueError, match=r"state\['weight'\] has 2 values for outputs \(3,\)"):
        mseplug.Accumulator.from_state_dict({**state, "output_shape": [3], "total": [1.0, 2.0, 3.0],
                                             "weight": [1.0, 1.0], "count": 1})


def _filled_state(**changes: object) -> dict[str, object]:
    acc = mseplug.Accumulator("mse", multioutput=[1.0, 3.0])
    acc.update(np.zeros((2, 2)), np.array([[1.0, 2.0], [3.0, 4.0]]))
    return {**acc.state_dict(), **changes}


@pytest.mark.parametrize(("changes", "error", "match"), [
    # Tampered statistics are never believed: each names the field.
    ({"weight": [-2.0, 2.0]}, ValueError, r"state\['weight'\] has -2.0 for output 0"),
    ({"weight": [float("nan"), 2.0]}, ValueError, r"state\['weight'\] has nan"),
    ({"count": -1}, ValueError, r"state\['count'\] is -1"),
    ({"count": 1e400}, ValueError, r"state\['count'\] must be a finite integer"),
    ({"count": 2.5}, ValueError, r"state\['count'\] must be a finite integer"),
    ({"count": True}, TypeError, r"state\['count'\] must be an integer"),
    ({"output_shape": None}, ValueError, r"state\['output_shape'\] is None but total, weight"),
    ({"output_shape": [0]}, ValueError, r"state\['output_shape'\] must be a list of positive"),
    ({"total": None, "weight": None, "output_shape": None}, ValueError,
     r"state\['count'\] is 2 but the state holds no statistics"),
    ({"multioutput": [1.0]}, ValueError, "multioutput has 1 weights .* 2 outputs"),
    ({"weight_exponent": 10**6}, ValueError, r"state\['weight_exponent'\] is 1000000"),
    ({"reduction": "sum"}, ValueError, r"unknown field\(s\) \['reduction'\]"),
    ({"params": {"delta": 2.0}}, TypeError, "unexpected keyword argument 'delta'"),
])
def test_a_tampered_state_is_refused_naming_its_field(changes: dict[str, object], error: type,
                                                      match: str) -> None:
    with pytest.raises(error, match=match):
        mseplug.Accumulator.from_state_dict(_filled_state(**changes))


def test_a_state_of_version_1_still_loads() -> None:
    state = _filled_state(version=1)
    del state["weight_exponent"]
    restored = mseplug.Accumulator.from_state_dict(state)
    expected = 0.25 * 10 / 2 + 0.75 * 20 / 2  # output weights 1:3 of the per-output MSEs 5, 10
    assert float(restored.compute()) == pytest.approx(expected, rel=1e-15)


def test_the_accumulator_has_no_reduction() -> None:
    with pytest.raises(ValueError, match="Accumulator takes no reduction"):
        mseplug.Accumulator("mse", reduction="sum")
    with pytest.raises(ValueError, match="Accumulator takes no reduction"):
        mseplug.Accumulator("mse", reduction="mean")
    unregistered = mseplug.Loss("not_registered_example", lambda xp, r: r * r)
    with pytest.raises(ValueError, match="not registered"):
        mseplug.Accumulator(unregistered).state_dict()


def test_output_weights_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="multioutput weights"):
        mseplug.Accumulator("mse", multioutput=[1.0, -1.0])
    with pytest.raises(TypeError, match="multioutput"):
        mseplug.Accumulator("mse", multioutput=["a", "b"])
    acc = mseplug.Accumulator("mse", multioutput=[1.0, 2.0])
    with pytest.raises(ValueError, match="2 weights"):
        acc.update(np.zeros((2, 3)), np.ones((2, 3)))


def test_score_a_file_whose_first_chunk_weighs_nothing(tmp_path, capsys, monkeypatch, rng) -> None:
    """mseplug score streams through an Accumulator: a zero-weight chunk is a chunk like others."""
    from mseplug.cli import files as _files
    from mseplug.cli.main import main

    y_true, y_pred, w = rng.normal(size=1000), rng.normal(size=1000), rng.uniform(size=1000)
    w[:300] = 0.0
    for name, array in (("t", y_true), ("p", y_pred), ("w", w)):
        np.save(tmp_path / f"{name}.npy", array)
    monkeypatch.setattr(_files, "CHUNK_ROWS", 128)  # the first two chunks weigh 0
    code = main(["score", str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                 str(tmp_path / "w.npy"), "--metric", "mse,rmse", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rows"] == 1000
    assert out["metrics"]["rmse"] == pytest.approx(
        float(mseplug.rmse(y_true, y_pred, sample_weight=w)), rel=1e-12)


def test_float32_weights_near_the_largest_float32_accumulate_in_float64() -> None:
    """Weights of 3e38 sum beyond float32; the Accumulator's float64 state holds them."""
    torch = pytest.importorskip("torch")
    acc = mseplug.Accumulator("mse")
    weights = torch.tensor([3e38, 3e38], dtype=torch.float32)
    acc.update(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 1.0]), sample_weight=weights)
    assert float(acc.compute()) == 0.5
    assert float(mseplug.mse(torch.tensor([3.0, 1.0]), torch.tensor([2.0, 1.0]),
                             sample_weight=weights)) == 0.5
