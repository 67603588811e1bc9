"""Bad input: a typed error that names the argument and what was seen, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import mseplug

GOOD = np.arange(6, dtype=np.float64)

# (id, call kwargs builder, error type, words the message must contain)
CASES = [
    ("shapes differ", lambda b: dict(y_true=b(np.zeros(32)), y_pred=b(np.zeros((32, 4)))),
     ValueError, ["y_true (32,)", "y_pred (32, 4)", "shapes differ"]),
    ("transposed", lambda b: dict(y_true=b(np.zeros((3, 1))), y_pred=b(np.zeros((1, 3)))),
     ValueError, ["y_true (3, 1)", "y_pred (1, 3)"]),
    ("row vs column", lambda b: dict(y_true=b(np.zeros((1, 5))), y_pred=b(np.zeros(5))),
     ValueError, ["y_true (1, 5)", "y_pred (5,)"]),
    ("0-d vs 1-d", lambda b: dict(y_true=b(np.float64(1.0)), y_pred=b(np.zeros(1))),
     ValueError, ["y_true ()", "y_pred (1,)"]),
    ("empty", lambda b: dict(y_true=b(np.zeros(0)), y_pred=b(np.zeros(0))),
     ValueError, ["empty"]),
    ("weights too short", lambda b: dict(sample_weight=b(np.ones(5))),
     ValueError, ["sample_weight (5,)", "6 samples"]),
    ("weights 2-d", lambda b: dict(sample_weight=b(np.ones((6, 1)))),
     ValueError, ["sample_weight (6, 1)"]),
    ("negative weight", lambda b: dict(sample_weight=b(np.array([1, 1, -1, 1, 1, 1.0]))),
     ValueError, ["sample_weight", "negative"]),
    ("NaN weight", lambda b: dict(sample_weight=b(np.array([1, 1, np.nan, 1, 1, 1.0]))),
     ValueError, ["sample_weight", "NaN"]),
    ("inf weight", lambda b: dict(sample_weight=b(np.array([1, 1, np.inf, 1, 1, 1.0]))),
     ValueError, ["sample_weight", "infinite"]),
    ("zero weights", lambda b: dict(sample_weight=b(np.zeros(6))),
     ValueError, ["sample_weight", "sums to 0"]),
    ("reduction", lambda b: dict(reduction="average"), ValueError, ["reduction", "'average'"]),
    ("nan_policy", lambda b: dict(nan_policy="ignore"), ValueError, ["nan_policy", "'ignore'"]),
    ("multioutput", lambda b: dict(multioutput="variance_weighted"),
     ValueError, ["multioutput", "variance_weighted"]),
    ("multioutput None", lambda b: dict(multioutput=None), TypeError, ["multioutput"]),
    ("reduction type", lambda b: dict(reduction=1), TypeError, ["reduction"]),
    ("output weights length", lambda b: dict(multioutput=[0.5, 0.5]),
     ValueError, ["multioutput", "2 weights", "1 outputs"]),
    ("NaN with raise", lambda b: dict(y_pred=b(np.array([0, 1, np.nan, 3, 4, 5.0])),
                                      nan_policy="raise"), ValueError, ["y_pred", "NaN"]),
    ("unknown backend", lambda b: dict(backend="tensorflow"), ValueError, ["backend", "tensorflow"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_bad_input_matrix(backend, case, loss) -> None:
    _, build, error, words = case
    kwargs = {"y_true": backend.asarray(GOOD), "y_pred": backend.asarray(GOOD + 1)}
    kwargs.update(build(backend.asarray))
    with pytest.raises(error) as info:
        getattr(mseplug, loss)(kwargs.pop("y_true"), kwargs.pop("y_pred"), **kwargs)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


@pytest.mark.parametrize(
    "value, words",
    [(None, ["y_pred is None"]), ("abc", ["y_pred is a str"]),
     (np.array([1 + 2j, 3j]), ["y_pred", "complex"]), (np.array(["a", "b"]), ["y_pred", "string"]),
     (np.array([object(), object()]), ["y_pred", "object"]), ([1.0, "x"], ["y_pred"])],
    ids=["None", "str", "complex", "strings", "objects", "mixed list"],
)
def test_non_numeric_inputs_are_type_errors(value, words) -> None:
    with pytest.raises(TypeError) as info:
        mseplug.mse(np.zeros(2), value)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(TypeError, match="y_true"):
        mseplug.mse(value, np.zeros(2))


def test_rmse_needs_mean_and_delta_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rmse needs reduction='mean'"):
        mseplug.rmse(GOOD, GOOD, reduction="sum")
    for delta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="delta"):
            mseplug.huber(GOOD, GOOD, delta=delta)
    with pytest.raises(TypeError, match="delta"):
        mseplug.huber(GOOD, GOOD, delta="big")


def test_output_weights_are_checked() -> None:
    y = np.zeros((4, 2))
    with pytest.raises(ValueError, match="multioutput weights"):
        mseplug.mse(y, y, multioutput=[-1.0, 2.0])
    with pytest.raises(ValueError, match="reduction='none'"):
        mseplug.mse(y, y, multioutput=[1.0, 2.0], reduction="none")
    with pytest.raises(TypeError, match="multioutput"):
        mseplug.mse(y, y, multioutput=object())


def test_never_broadcast_to_n_by_n() -> None:
    y_true = np.arange(4.0)
    y_pred = np.arange(4.0)[:, None] + 1
    assert mseplug.mse(y_true, y_pred, reduction="none").shape == (4, 1)
    assert float(mseplug.mse(y_true, y_pred)) == 1.0  # broadcasting would give 3.5
