"""``mseplug bench``: rows for every installed backend, goals and flags, the shared JSON format.

Timings are never asserted: only the table's and the JSON's shape, and the arithmetic.
"""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest

from mseplug import _bench
from mseplug._bench_cases import Row, Size

TINY = Size(large=2_000, jit=1_000, repeat=1, budget=0.0005)
ROW_KEYS = {"backend", "case", "anchor", "mseplug_s", "anchor_s", "ratio", "goal", "goal_value", "met",
            "mseplug_bytes", "anchor_bytes"}
BACKENDS = {"numpy": "numpy", "sklearn": "sklearn", "torch": "torch", "jax": "jax", "dask": "dask"}


@pytest.fixture(scope="module")
def rows() -> list[Row]:
    measured, _ = _bench.measure(TINY, io.StringIO())
    return measured


def test_every_installed_backend_has_rows(rows: list[Row]) -> None:
    expected = {name for name, module in BACKENDS.items() if importlib.util.find_spec(module)}
    assert {row.backend for row in rows} == expected
    if "torch" in expected:
        cases = [row.case for row in rows if row.backend == "torch"]
        assert any("forward+backward" in case for case in cases)
        assert any("forward n=" in case for case in cases)
    if "jax" in expected:
        assert all("jit" in row.case for row in rows if row.backend == "jax")


def test_rows_are_in_the_shared_json_format(rows: list[Row]) -> None:
    report = json.loads(json.dumps(_bench.report(rows, TINY, [])))
    assert set(report) == {"mseplug", "machine", "repeat", "rows", "scaling"}
    assert report["scaling"] == [] and report["repeat"] == TINY.repeat
    assert {"python", "numpy", "cpu_count"} <= set(report["machine"])
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


def test_run_json_prints_one_object_and_the_table_to_stderr(monkeypatch, capsys, tmp_path: Path
                                                            ) -> None:
    monkeypatch.setattr(_bench, "QUICK", TINY)
    markdown = tmp_path / "bench.md"
    assert _bench.run(quick=True, as_json=True, output=markdown) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["rows"] and report["scaling"] == []
    assert "| backend | case |" in err and "| backend | case |" in markdown.read_text()


def test_one_timing_helper_for_the_bench_and_every_benchmark_script() -> None:
    scripts = sorted((Path(__file__).parents[1] / "benchmarks").glob("*.py"))
    assert scripts
    for script in scripts + [Path(_bench.__file__).with_name("_bench_cases.py")]:
        source = script.read_text()
        assert "from mseplug._timing import" in source, script.name
        assert "perf_counter" not in source and "import timeit" not in source, script.name


def test_scaling_points_cover_every_size_and_installed_backend(monkeypatch, capsys) -> None:
    from mseplug import _bench_scaling

    points = _bench_scaling.scaling_points(3, TINY, io.StringIO())
    expected = {name for name, module, _, _ in _bench_scaling.BACKENDS
                if importlib.util.find_spec(module)}
    assert {point["backend"] for point in points} == expected
    assert sorted({point["n"] for point in points}) == [10, 100, 1000]
    assert all(point["mseplug_s"] > 0 and point["anchor_s"] > 0 for point in points)
    table = _bench_scaling.scaling_table(points)
    assert table.count("\n") == 4 and "numpy (mseplug / anchor)" in table
    monkeypatch.setattr(_bench, "QUICK", TINY)
    monkeypatch.setattr(_bench, "QUICK_SCALING", 2)
    assert _bench.run(quick=True, as_json=True, scaling=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert {point["n"] for point in report["scaling"]} == {10, 100}
