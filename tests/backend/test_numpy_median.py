"""The NumPy backend's median of unit weights: a partition for short columns, a sampled bracket
(Floyd-Rivest) for long ones, the term |r| formed in the bracket's pass. Every result is the
full partition's (today's ``numpy.partition`` of the whole term), bit for bit: ties, signed
zeros, infinities and NaN columns included, and a bracket that misses falls back to it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mseplug
from mseplug.backend.numpy import median as selection
from mseplug.backend.numpy import walk
from mseplug.backend.numpy.namespace import NAMESPACE
from mseplug.loss import builtin
from mseplug.loss.statistics import Quantile, quantile

N = selection.MIN_ROWS
#: Quantile parts of the built-in terms (the absolute residual's has an in-buffer form, formed
#: in the bracket's pass) and of a plugin's (formed whole, then bracketed).
ABSOLUTE = Quantile("absolute_residual", builtin._absolute_residual, deviation=False)
TARGET = Quantile("target", builtin._target)
PLUGIN = Quantile("plugin", lambda xp, t, p: xp.abs(t - p), deviation=False)
KINDS = ["normal", "few", "equal", "sorted", "reversed", "nan", "zeros", "infinite"]


def _bits(x: np.ndarray) -> bytes:
    """The float64 values' bytes: equal bytes are the same values, NaN and -0.0 included."""
    return np.ascontiguousarray(x, dtype=np.float64).tobytes()


def _column_data(kind: str, n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, k))
    if kind == "few":  # many ties: five distinct values
        data = rng.integers(-2, 3, (n, k)).astype(np.float64)
    elif kind == "equal":
        data = np.full((n, k), 1.5)
    elif kind == "sorted":
        data = np.sort(data, axis=0)
    elif kind == "reversed":
        data = np.sort(data, axis=0)[::-1].copy()
    elif kind == "nan":  # a NaN in the first column only
        data[rng.integers(0, n), 0] = np.nan
    elif kind == "zeros":  # both zeros, most of the column: the median is a zero
        data = np.where(rng.random((n, k)) < 0.4, -0.0, 0.0)
        data[: n // 10] = 1.0
    elif kind == "infinite":  # infinities on both sides, and more than half of them +inf
        data[rng.random((n, k)) < 0.1] = -np.inf
        data[rng.random((n, k)) < 0.55] = np.inf
    return data


def _pair_data(kind: str, n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions whose absolute residual is ``_column_data``'s kind of column
    (with -0.0 residuals, and NaN from inf - inf)."""
    rng = np.random.default_rng(seed + 1)
    y = rng.standard_normal((n, k))
    p = y + _column_data(kind, n, k, seed)
    if kind == "zeros":
        y = np.zeros((n, k))
        p = _column_data(kind, n, k, seed)  # residuals ±0.0: |r| is +0.0 either way
    if kind == "infinite":
        y[rng.random((n, k)) < 0.001] = np.inf  # inf - inf: NaN in some columns
    return y, p


# -- the bracket against the full partition --------------------------------------------------------
@pytest.mark.parametrize("n", [N, N + 1, 3 * N + 7])  # around and above the crossover
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("kind", KINDS)
def test_the_bracket_is_the_partition_bit_for_bit(n, k, kind) -> None:
    data = _column_data(kind, n, k, seed=n + k)
    expected = selection.partitioned_median(data)
    got = selection.bracketed_median(selection._Term(data))
    if kind == "zeros":  # a median of 0 with both zeros in the column: the partition decides
        assert got is None and np.all(expected == 0)
    else:
        assert got is not None, "the bracket missed"
        assert _bits(got) == _bits(expected), (got, expected)
    assert _bits(selection.quantile_of(NAMESPACE, TARGET, data, data, None, data)) == _bits(expected)
    assert np.array_equal(expected, np.median(data, axis=0), equal_nan=True)
    if kind == "nan":
        assert np.isnan(expected[0]) and not np.isnan(expected[1:]).any()


@pytest.mark.parametrize("n", [N, N + 1, 2 * N + 3])
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("part", [ABSOLUTE, PLUGIN], ids=["builtin", "plugin"])
def test_the_term_formed_in_the_pass_gives_the_partitions_median(n, k, kind, part) -> None:
    """|y - ŷ| formed block by block (the built-in) or whole (a plugin's term): the partition's
    median of the record's own term, bit for bit (a zero median of |r| is +0.0, no fallback)."""
    y, p = _pair_data(kind, n, k, seed=2 * n + k)
    with np.errstate(invalid="ignore"):  # inf - inf (as the backend runs it)
        expected = selection.partitioned_median(builtin._absolute_residual(NAMESPACE, y, p))
        got = selection.quantile_of(NAMESPACE, part, y, p, None, None)
    assert _bits(got) == _bits(expected), (got, expected)
    if part is ABSOLUTE:
        bracketed = selection.bracketed_median(
            selection._Pair(selection.FAST[part.term], y, p), unsigned_zeros=True)
        assert bracketed is not None and _bits(bracketed) == _bits(expected)


def test_many_threads_and_one_give_the_same_median(monkeypatch) -> None:
    """A column long enough for the walk's threads: the same value from 1 and 4 threads."""
    n = walk.PARALLEL_MIN + 5
    y, p = _pair_data("normal", n, 1, seed=5)
    expected = selection.partitioned_median(np.abs(y - p))
    for threads in ("1", "4"):
        monkeypatch.setenv("MSEPLUG_NUM_THREADS", threads)
        got = selection.quantile_of(NAMESPACE, ABSOLUTE, y, p, None, None)
        assert _bits(got) == _bits(expected)


@pytest.mark.parametrize("seed", range(8))
def test_ties_counted_in_some_blocks_and_kept_in_others(seed) -> None:
    """Blocks that hold many copies of a value near the middle count them (not kept); blocks
    with few keep them: the copies of both kinds add up, so the ranks are the partition's."""
    rng = np.random.default_rng(seed)
    rows = selection.BLOCK
    n = 6 * rows + int(rng.integers(0, 2))
    data = rng.standard_normal(n)
    values = rng.choice([0.05, 0.1, -0.1], size=2, replace=False)
    for start in range(0, n, rows):
        block = data[start:start + rows]  # (a view)
        share = 0.3 if rng.random() < 0.5 else 0.02  # above or below a block's eighth
        for value in values:
            block[rng.random(block.size) < share] = value
    data = data[:, None]
    got = selection.bracketed_median(selection._Term(data))
    assert got is not None and _bits(got) == _bits(selection.partitioned_median(data))


# -- the fallback ----------------------------------------------------------------------------------
def _counting_partitions(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = selection.partitioned_median

    def counted(term):
        calls.append(term.shape[0])
        return original(term)

    monkeypatch.setattr(selection, "partitioned_median", counted)
    return calls


def test_an_adversarial_column_misses_the_bracket_and_is_partitioned(monkeypatch) -> None:
    """A column whose sampled rows (the fixed seed's) hold its largest values: the bracket
    lies above the middle, so the full partition gives the median."""
    n = 2 * N + 1
    data = np.random.default_rng(9).standard_normal((n, 1))
    data[selection.sample_positions(n)] = 1e300
    assert selection.bracketed_median(selection._Term(data)) is None
    calls = _counting_partitions(monkeypatch)
    got = selection.quantile_of(NAMESPACE, TARGET, data, data, None, data)
    assert calls == [n]
    assert _bits(got) == _bits(np.median(data, axis=0))


def test_a_sample_unlike_its_column_falls_back(monkeypatch) -> None:
    """The sample of a sorted column's first rows (its smallest values): the bracket misses;
    the term |r| is then formed whole and partitioned, the same value as ever."""
    n = 2 * N
    y = np.zeros((n, 2))
    p = np.sort(np.random.default_rng(4).standard_normal((n, 2)) ** 2, axis=0)
    monkeypatch.setattr(selection, "sample_positions", lambda rows: np.arange(4096))
    calls = _counting_partitions(monkeypatch)
    got = selection.quantile_of(NAMESPACE, ABSOLUTE, y, p, None, None)
    assert calls == [n]
    assert _bits(got) == _bits(np.median(np.abs(p - y), axis=0))


def test_short_columns_weights_and_other_levels_do_not_bracket(monkeypatch) -> None:
    rng = np.random.default_rng(8)
    data = rng.standard_normal((N - 1, 2))
    calls = _counting_partitions(monkeypatch)
    got = selection.quantile_of(NAMESPACE, TARGET, data, data, None, data)
    assert calls == [N - 1] and _bits(got) == _bits(np.median(data, axis=0))
    long = rng.standard_normal((N, 2))
    weight = rng.random((N, 2))
    for part, w in ((TARGET, weight), (Quantile("q", builtin._target, 0.9), None)):
        expected = quantile(NAMESPACE, long, np.ones_like(long) if w is None else w, part.level)
        assert _bits(selection.quantile_of(NAMESPACE, part, long, long, w, long)) == _bits(expected)
    assert calls == [N - 1]  # neither bracketed nor partitioned: the generic sort


@settings(max_examples=25, deadline=None)
@given(extra=st.integers(0, 2 * selection.BLOCK), k=st.integers(1, 3),
       values=st.sampled_from([2, 7, 1000, 0]), nan=st.booleans(), seed=st.integers(0, 2**16))
def test_any_column_gives_the_partitions_median(extra, k, values, nan, seed) -> None:
    """Random lengths above the crossover, few or many distinct values (0: continuous), NaN
    or not: the bracket (or its fallback) is the partition's median bit for bit."""
    rng = np.random.default_rng(seed)
    n = N + extra
    data = (rng.standard_normal((n, k)) if values == 0
            else rng.integers(0, values, (n, k)).astype(np.float64))
    if nan:
        data[rng.integers(0, n), rng.integers(0, k)] = np.nan
    expected = selection.partitioned_median(data)
    got = selection.quantile_of(NAMESPACE, TARGET, data, data, None, data)
    assert _bits(got) == _bits(expected)
    assert np.array_equal(expected, np.median(data, axis=0), equal_nan=True)


# -- through the public functions ------------------------------------------------------------------
@pytest.mark.parametrize("n", [2 * N, 2 * N + 1])  # even and odd counts
def test_the_medians_of_long_columns_equal_numpy_and_scikit_learn(n) -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(n)
    y = rng.standard_normal((n, 2))
    p = y + 0.3 * rng.standard_normal((n, 2))
    w = rng.uniform(0.5, 2.0, n)
    expected = np.median(np.abs(p - y), axis=0)
    got = mseplug.median_absolute_error(y, p, multioutput="raw_values")
    assert _bits(got) == _bits(expected)
    assert float(mseplug.median_absolute_error(y[:, 0], p[:, 0])) == expected[0]
    for options in ({}, {"sample_weight": w}, {"multioutput": "raw_values"},
                    {"sample_weight": w, "multioutput": [0.3, 0.7]}):
        assert np.array_equal(mseplug.median_absolute_error(y, p, **options),
                              sklearn_metrics.median_absolute_error(y, p, **options)), options
        np.testing.assert_allclose(mseplug.d2_absolute_error(y, p, **options),
                                   sklearn_metrics.d2_absolute_error_score(y, p, **options),
                                   rtol=1e-12, err_msg=str(options))
# -- a median of unit weights: selected, not sorted ------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 1000, 1001])
@pytest.mark.parametrize("outputs", [1, 3])
def test_a_median_by_selection_is_the_sorted_quantile_bit_for_bit(n, outputs) -> None:
    """numpy.partition's middle value(s) are the generic sort's: the same median, ties, signed
    zeros and NaN columns included; weights and other levels take the generic sort."""
    from mseplug.loss.statistics import quantile

    rng = np.random.default_rng(n * 10 + outputs)
    for data in (rng.standard_normal((n, outputs)),
                 rng.integers(-2, 3, (n, outputs)).astype(np.float64),  # many ties
                 np.where(rng.random((n, outputs)) < 0.1, np.nan, rng.standard_normal((n, outputs)))):
        ones = np.ones_like(data)
        got = selection.median_by_selection(np, data, None, 0.5)
        expected = quantile(np, data, ones, 0.5)
        np.testing.assert_array_equal(got, expected)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
        weight = rng.random((n, outputs))
        np.testing.assert_array_equal(selection.median_by_selection(np, data, weight, 0.5),
                                      quantile(np, data, weight, 0.5))
        np.testing.assert_array_equal(selection.median_by_selection(np, data, None, 0.9),
                                      quantile(np, data, ones, 0.9))


def test_the_medians_on_numpy_equal_scikit_learns_by_selection() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    y = rng.integers(-5, 6, (20_001, 2)).astype(np.float64)
    p = y + rng.integers(-3, 4, (20_001, 2))
    for n in (20_000, 20_001):
        assert np.array_equal(
            mseplug.median_absolute_error(y[:n], p[:n], multioutput="raw_values"),
            sklearn_metrics.median_absolute_error(y[:n], p[:n], multioutput="raw_values"))
        np.testing.assert_allclose(
            mseplug.d2_absolute_error(y[:n], p[:n], multioutput="raw_values"),
            sklearn_metrics.d2_absolute_error_score(y[:n], p[:n], multioutput="raw_values"),
            rtol=1e-12)
