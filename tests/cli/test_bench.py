"""``mseplug bench``: rows for every installed backend, goals and flags, the shared JSON format.

Timings are never asserted: only the table's and the JSON's shape, and the arithmetic.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from mseplug.cli import bench as _bench
from mseplug.cli.bench_cases import Row, Size

TINY = Size(large=2_000, jit=1_000, repeat=1, budget=0.0005)
ROW_KEYS = {"backend", "case", "anchor", "mseplug_s", "anchor_s", "ratio", "goal", "goal_value", "met",
            "mseplug_bytes", "anchor_bytes", "difference"}
BACKENDS = {"numpy": "numpy", "sklearn": "sklearn", "torch": "torch", "jax": "jax", "dask": "dask"}


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    """The rows of a tiny run, with the goals of 10^7 elements applied at its size."""
    from mseplug.cli import bench_cases as _bench_cases

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_bench_cases, "GOAL_SIZE", TINY.large)
        measured, _ = _bench.measure(TINY, io.StringIO())
    return measured


@pytest.mark.slow  # a full run of the bench, at a tiny size
def test_every_installed_backend_has_rows(rows: list[Row]) -> None:
    expected = {name for name, module in BACKENDS.items() if importlib.util.find_spec(module)}
    assert {row.backend for row in rows} == expected
    if "torch" in expected:
        cases = [row.case for row in rows if row.backend == "torch"]
        assert any("forward+backward" in case for case in cases)
        assert any("forward n=" in case for case in cases)
    if "jax" in expected:
        assert all("jit" in row.case for row in rows if row.backend == "jax")


@pytest.mark.slow  # a full run of the bench, at a tiny size
def test_rows_are_in_the_shared_json_format(rows: list[Row]) -> None:
    report = json.loads(json.dumps(_bench.report(rows, TINY, [])))
    assert set(report) == {"mseplug", "machine", "date", "repeat", "rows", "scaling"}
    assert report["scaling"] == [] and report["repeat"] == TINY.repeat
    assert {"python", "numpy", "cpu_count", "cpu"} <= set(report["machine"])
    assert len(report["date"]) == 10 and report["date"][4] == "-"  # YYYY-MM-DD
    for row in report["rows"]:
        assert set(row) == ROW_KEYS
        assert row["ratio"] == pytest.approx(row["anchor_s"] / row["mseplug_s"])
        if row["goal_value"] is None:
            assert row["met"] is None and row["goal"] == ""
        else:
            assert row["met"] == (row["ratio"] >= row["goal_value"]) and row["goal"].startswith(">=")


def test_a_row_that_misses_its_goal_is_flagged() -> None:
    assert _bench.flag(Row("numpy", "mse", "np.mean", 1.0, 2.06, ">= 3", 3.0)) == "MISSED"
    assert _bench.flag(Row("torch", "mse", "F.mse_loss", 1.0, 0.99, ">= 1", 1.0)).startswith(
        "MISSED (within timing noise")
    assert _bench.flag(Row("numpy", "mse", "np.mean", 1.0, 3.5, ">= 3", 3.0)) == ""
    assert _bench.flag(Row("dask", "mse", "da.mean", 1.0, 0.5)) == ""
    table = _bench.format_rows([Row("numpy", "mse", "np.mean", 1.0, 2.06, ">= 3", 3.0)])
    assert table.splitlines()[2].rstrip(" |").endswith("MISSED")
    table = _bench.format_rows([Row("numpy", "mse", "np.mean", 1.0, 2.0, mseplug_bytes=1_000_000,
                                    anchor_bytes=40_000_000)])
    assert table.splitlines()[2].rstrip(" |").endswith("1.00 / 40.0 MB")


def test_the_header_names_each_column_once() -> None:
    titles = [t.strip() for t in _bench.format_rows([]).splitlines()[0].strip("|").split("|")]
    named = [title for title in titles if title]
    assert len(named) == len(set(named)) and named.count("anchor") == 0


def test_one_timing_helper_for_the_bench_and_every_benchmark_script() -> None:
    scripts = sorted((Path(__file__).parents[2] / "benchmarks").glob("*.py"))
    assert scripts
    for script in scripts + [Path(_bench.__file__).with_name("bench_cases.py")]:
        source = script.read_text()
        assert "from mseplug.cli.timing import" in source, script.name
        assert "perf_counter" not in source and "import timeit" not in source, script.name


@pytest.mark.slow  # a full run of the bench, at a tiny size
def test_run_json_prints_one_object_with_scaling_and_the_table_to_stderr(
        monkeypatch, capsys, tmp_path: Path) -> None:
    from mseplug.cli import bench_scaling as _bench_scaling

    monkeypatch.setattr(_bench, "QUICK", TINY)
    monkeypatch.setattr(_bench, "QUICK_SCALING", 2)
    markdown = tmp_path / "bench.md"
    assert _bench.run(quick=True, as_json=True, output=markdown, scaling=True) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["rows"] and "| backend | case |" in err and "| backend | case |" in markdown.read_text()
    points = report["scaling"]
    expected = {name for name, module, _, _ in _bench_scaling.BACKENDS
                if importlib.util.find_spec(module)}
    assert {point["backend"] for point in points} == expected
    family = [row for row in report["rows"] if row["difference"] is not None]
    if importlib.util.find_spec("sklearn"):  # the family's rows run in --quick mode too
        assert {row["case"].split()[0].rstrip(",") for row in family} >= {"r2", "max_error"}
        assert all(row["difference"] <= 1e-12 and row["ratio"] > 0 for row in family)
        assert "values against scikit-learn:" in err
    assert {point["n"] for point in points} == {10, 100}
    assert {point["dtype"] for point in points} == {"float32", "float64"}
    assert all(point["mseplug_s"] > 0 and point["anchor_s"] > 0 for point in points)
    table = _bench_scaling.scaling_table(points)
    assert table.count("\n") == 5 and "numpy (mseplug / anchor)" in table


@pytest.mark.slow  # a full run of the bench, at a tiny size
def test_every_goal_is_applied_by_a_row_and_every_row_goal_is_listed(rows: list[Row]) -> None:
    """The goals of :data:`GOALS` are the ones the rows check (at the goals' size), no others."""
    from mseplug.cli import bench_cases as _bench_cases

    applied = {(row.backend, row.goal, row.goal_value) for row in rows if row.goal_value is not None}
    listed = {(goal.backend, goal.text, goal.value) for goal in _bench_cases.GOALS
              if goal.measure == "speed" and importlib.util.find_spec(BACKENDS[goal.backend])}
    assert applied == listed
    notes = _bench.accuracy_and_memory(TINY.large)
    for goal in _bench_cases.GOALS:
        if goal.measure != "speed":
            assert any(goal.words in note for note in notes), goal.key


def test_every_timing_starts_warm() -> None:
    """A callable that is slow on the first call after the other one ran is timed warm."""
    import time

    from mseplug.cli.timing import compare

    last = {"who": ""}

    def cold_after_other(me: str) -> None:
        if last["who"] != me:  # woken after the other side ran: slow, as a sleeping thread pool
            time.sleep(0.01)
        last["who"] = me

    ours, theirs = compare(lambda: cold_after_other("ours"), lambda: cold_after_other("theirs"),
                           repeat=3, budget=0.001)
    assert ours < 0.005 and theirs < 0.005, (ours, theirs)


#: The family metrics scikit-learn has (their rows come from the records' ``sklearn`` anchors).
FAMILY = {"msle", "rmsle", "mape", "poisson_deviance", "gamma_deviance", "tweedie_deviance", "r2",
          "explained_variance", "max_error"}


@pytest.mark.slow  # a full run of the bench, at a tiny size
def test_family_rows_time_each_metric_against_scikit_learn_and_agree_with_it(rows) -> None:
    """One row per built-in with a scikit-learn function (the family, and the losses before it),
    on the same float64 data, its value within 1e-12 relative of scikit-learn's, its goal
    "at least 2x faster" (applied here at the tiny run's size)."""
    pytest.importorskip("sklearn")
    import sklearn.metrics

    from mseplug.cli import bench_cases as _bench_cases

    family = {row.case.split()[0].rstrip(","): row for row in rows if row.difference is not None}
    anchored = {loss.name: loss.anchors["sklearn"] for loss in _bench_cases.BUILTINS
                if "sklearn" in loss.anchors}
    assert set(family) == set(anchored) and FAMILY <= set(family)
    for name, row in family.items():
        assert row.backend == "sklearn" and row.anchor == f"sklearn {anchored[name]}"
        assert callable(getattr(sklearn.metrics, anchored[name]))
        assert isinstance(row.ratio, float) and row.ratio > 0 and row.mseplug_s > 0
        assert 0 <= row.difference <= _bench_cases.FAMILY_RTOL, (name, row.difference)
        assert row.goal_value == 2.0 and row.goal == ">= 2 (at least 2x faster)"
        assert f"n={_bench_cases.count(TINY.large)} float64" in row.case
        assert _bench_cases.GOAL[f"family-{name}"].anchor == row.anchor
    assert "power=1.5" in family["tweedie_deviance"].case


def test_family_data_is_inside_each_domain_and_a_value_difference_is_flagged() -> None:
    import numpy as np

    from mseplug.cli import bench_cases as _bench_cases

    for loss in _bench_cases.BUILTINS:
        y_true, y_pred = _bench_cases.family_data(loss, 1000)
        if loss.domain is not None:
            assert y_true.min() > 0 and y_pred.min() > 0
        else:
            assert y_true.min() < 0  # normals: both signs
    assert _bench_cases.relative_difference(1.0, 1.0 + 2e-12) == pytest.approx(2e-12, rel=1e-3)
    assert _bench_cases.relative_difference(np.inf, np.inf) == 0.0
    assert _bench_cases.relative_difference(np.nan, 1.0) == np.inf
    differs = Row("sklearn", "r2 n=1e7 float64", "sklearn r2_score", 1.0, 3.0, ">= 2", 2.0,
                  difference=1e-9)
    assert _bench.flag(differs) == "VALUES DIFFER (1.0e-09)"
    differs.anchor_s = 1.0
    assert _bench.flag(differs) == "MISSED, VALUES DIFFER (1.0e-09)"
    note = _bench.family_note([differs, Row("numpy", "mse", "np.mean", 1.0, 2.0)])
    assert note == ["values against scikit-learn: 0 of 1 rows within 1e-12 relative; the largest "
                    "difference 1.0e-09 (r2 n=1e7 float64)"]
