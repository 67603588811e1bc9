"""``mseplug score``'s readers: CSV without a header line, duplicate column names, named pipes
(every file opened once), integer Parquet columns, infinite values.

Reference values come from NumPy in float64 and from scikit-learn.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from mseplug.cli.main import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
metrics = pytest.importorskip("sklearn.metrics")

FIFO = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["score", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def scores(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = run(capsys, *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def error_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("mseplug score: error: ") and err.count("\n") == 1, err
    return err


# -- 1. a CSV file without a header line -----------------------------------------------------------
def test_a_csv_without_header_scores_every_row(tmp_path: Path, capsys) -> None:
    """The report's repro: truth 1,2,3 against 1,5,3 is an MSE of 3, not 4.5 (first row lost)."""
    (tmp_path / "t.csv").write_text("1\n2\n3\n")
    (tmp_path / "p.csv").write_text("1\n5\n3\n")
    report = scores(capsys, tmp_path / "t.csv", tmp_path / "p.csv", "--metric", "mse,mae")
    truth, pred = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 3.0])
    assert report["rows"] == 3 and report["columns"] == ["1"]
    assert report["metrics"]["mse"] == pytest.approx(np.mean((truth - pred) ** 2), rel=1e-15)
    assert report["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(truth, pred))
    code, out, _ = run(capsys, tmp_path / "t.csv", tmp_path / "p.csv", "--metric", "mse")
    assert code == 0 and "(3 rows, column '1' (no header line in t.csv, p.csv)" in out


def test_files_of_rows_without_outputs_are_an_error_naming_the_shape(tmp_path: Path, capsys
                                                                      ) -> None:
    """Arrays of shape (n, 0) have no value to score: exit 2 with one line naming the shape,
    not a ZeroDivisionError (as for the loss functions and the Accumulator)."""
    np.save(tmp_path / "t.npy", np.zeros((5, 0)))
    np.save(tmp_path / "p.npy", np.zeros((5, 0)))
    err = error_of(capsys, tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse,rmse")
    assert "no outputs (shape (5, 0))" in err and "Error" not in err


def test_np_savetxt_one_column(tmp_path: Path, capsys, rng) -> None:
    truth, pred = rng.normal(size=1000), rng.normal(size=1000)
    np.savetxt(tmp_path / "t.csv", truth)  # '%.18e', one value per line, no header
    np.savetxt(tmp_path / "p.csv", pred)
    np.savetxt(tmp_path / "named.csv", pred, header="price", comments="")
    for p in ("p.csv", "named.csv"):  # a header line or none: the same rows
        report = scores(capsys, tmp_path / "t.csv", tmp_path / p, "--metric", "mse")
        assert report["rows"] == 1000
        assert report["metrics"]["mse"] == pytest.approx(metrics.mean_squared_error(truth, pred),
                                                         rel=1e-12)
    np.savetxt(tmp_path / "small_t.csv", [1.0, 2.0, 3.0, 4.0])
    np.savetxt(tmp_path / "small_p.csv", [1.0, 2.0, 3.0, 5.0])
    report = scores(capsys, tmp_path / "small_t.csv", tmp_path / "small_p.csv", "--metric", "mse")
    assert report["metrics"]["mse"] == np.mean((np.arange(1.0, 5.0) - [1.0, 2.0, 3.0, 5.0]) ** 2)


def test_np_savetxt_several_columns_are_named_by_position(tmp_path: Path, capsys, rng) -> None:
    truth, pred = rng.normal(size=(500, 3)), rng.normal(size=(500, 3))
    np.savetxt(tmp_path / "t.csv", truth, delimiter=",")
    np.savetxt(tmp_path / "p.csv", pred, delimiter=",")
    t, p = tmp_path / "t.csv", tmp_path / "p.csv"
    report = scores(capsys, t, p, "--metric", "mse", "--all-columns")
    assert report["rows"] == 500 and report["columns"] == ["1", "2", "3"]
    assert report["metrics"]["mse"] == pytest.approx(metrics.mean_squared_error(truth, pred),
                                                     rel=1e-12)
    report = scores(capsys, t, p, "--metric", "mae", "--column", "2")
    assert report["metrics"]["mae"] == pytest.approx(
        metrics.mean_absolute_error(truth[:, 1], pred[:, 1]), rel=1e-12)
    err = error_of(capsys, t, p)  # three columns: choose
    assert "3 columns ('1', '2', '3')" in err and "--column" in err


def test_a_header_of_numbers_of_pandas_stays_a_header(tmp_path: Path, capsys, rng) -> None:
    """pandas writes unnamed columns as 0, 1, ... under an empty index header: ``,0``."""
    pd = pytest.importorskip("pandas")
    truth, pred = rng.normal(size=40), rng.normal(size=40)
    pd.DataFrame(truth).to_csv(tmp_path / "t.csv")
    pd.DataFrame(pred).to_csv(tmp_path / "p.csv")
    assert (tmp_path / "t.csv").read_text().startswith(",0\n")
    report = scores(capsys, tmp_path / "t.csv", tmp_path / "p.csv", "--column", "0", "--metric", "mse")
    assert report["rows"] == 40
    assert report["metrics"]["mse"] == pytest.approx(metrics.mean_squared_error(truth, pred),
                                                     rel=1e-12)


def test_a_header_less_first_line_with_a_missing_value_is_data(tmp_path: Path, capsys) -> None:
    (tmp_path / "t.csv").write_text("1,,3\n4,5,6\n")
    (tmp_path / "p.csv").write_text("1,2,3\n4,5,7\n")
    report = scores(capsys, tmp_path / "t.csv", tmp_path / "p.csv", "--column", "3", "--metric", "mse")
    assert report["rows"] == 2 and report["metrics"]["mse"] == np.mean(np.subtract([3, 6], [3, 7]) ** 2)
    err = error_of(capsys, tmp_path / "t.csv", tmp_path / "p.csv", "--column", "2")
    assert "t.csv row 1 is NaN" in err  # the missing value of the first line, not a lost line


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("header", ["", "price", "\ufeffprice", "\n\nprice"],
                         ids=["none", "named", "bom", "after-blank-lines"])
def test_line_breaks_bom_and_blank_lines(tmp_path: Path, capsys, newline, header) -> None:
    truth, pred = [1.0, 2.0, 3.0], [1.0, 5.0, 3.5]
    lines = ([header] if header else []) + [repr(v) for v in pred]
    (tmp_path / "p.csv").write_bytes(newline.join(lines).encode() + newline.encode())
    np.save(tmp_path / "t.npy", truth)
    report = scores(capsys, tmp_path / "p.csv", tmp_path / "t.npy", "--metric", "mse")
    assert report["rows"] == 3 and report["columns"] == ["price" if header else "1"]
    assert report["metrics"]["mse"] == metrics.mean_squared_error(truth, pred)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("header", [True, False])
def test_a_bad_line_is_named_across_blocks(tmp_path: Path, capsys, monkeypatch, newline,
                                          header) -> None:
    from mseplug.cli import files as _files

    monkeypatch.setattr(_files, "CSV_BLOCK_BYTES", 64)  # many blocks, a line break cut in two
    lines = (["a,price"] if header else []) + [f"{i},{i}.25" for i in range(300)]
    bad = 250 + header
    lines[bad - 1] = "7,oops"
    (tmp_path / "p.csv").write_bytes(newline.join(lines).encode() + newline.encode())
    column = "price" if header else "2"
    err = error_of(capsys, tmp_path / "p.csv", tmp_path / "p.csv", "--column", column)
    assert f"p.csv line {bad}: 'oops' in column '{column}' is not a number" in err, err


def test_the_help_says_how_a_header_is_told_from_data(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "header line" in text and '"1", "2"' in text and "np.savetxt" in text


# -- 2. duplicate column names ---------------------------------------------------------------------
def duplicated(path: Path) -> Path:
    if path.suffix == ".csv":
        path.write_text("x,x,y\n1,10,5\n2,20,6\n")
    else:
        columns = [pa.array([1.0, 2.0]), pa.array([10.0, 20.0]), pa.array([5.0, 6.0])]
        pq.write_table(pa.Table.from_arrays(columns, names=["x", "x", "y"]), path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_duplicate_column_names_are_an_error_naming_them(tmp_path: Path, capsys, suffix) -> None:
    table = duplicated(tmp_path / f"d{suffix}")
    for option in (["--column", "x"], ["--all-columns"]):
        err = error_of(capsys, table, table, "--metric", "mse", *option)
        assert f"d{suffix} has 2 columns named 'x'" in err, err
    err = error_of(capsys, table, table)
    assert "'x' (named 2 times)" in err
    report = scores(capsys, table, table, "--column", "y", "--metric", "mse")  # a unique name
    assert report["rows"] == 2 and report["metrics"]["mse"] == 0.0


# -- 3. infinite values ----------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_an_infinite_value_is_reported_as_such(tmp_path: Path, capsys, suffix) -> None:
    truth, pred = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, np.inf, 4.0])
    for name, values in (("t", truth), ("p", pred)):
        if suffix == ".npy":
            np.save(tmp_path / f"{name}{suffix}", values)
        else:
            np.savetxt(tmp_path / f"{name}{suffix}", values, header="price", comments="")
    code, out, err = run(capsys, tmp_path / f"t{suffix}", tmp_path / f"p{suffix}", "--metric",
                         "mse,mae", "--format", "json")
    with np.errstate(all="ignore"):
        expected = float(np.mean((truth - pred) ** 2))
    assert code == 0 and expected == np.inf and json.loads(out)["metrics"]["mse"] is None
    assert f"p{suffix} row 3 holds an infinite value" in err and "overflow" not in err, err
    assert err.count("\n") == 1


def test_a_real_overflow_is_still_called_one(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "t.npy", np.array([0.0, 1e200]))
    np.save(tmp_path / "p.npy", np.array([0.0, -1e200]))
    code, _, err = run(capsys, tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse")
    assert code == 0 and "overflowed float64" in err and "infinite value" not in err


# -- 6. named pipes: every file is opened once ------------------------------------------------------
def feed(fifo: Path, data: bytes) -> threading.Thread:
    """A writer thread: opens the pipe (waiting for the reader) and writes ``data``."""
    def write() -> None:
        with open(fifo, "wb") as pipe:
            try:
                pipe.write(data)
            except BrokenPipeError:
                pass

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def score_in_a_child(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mseplug", "score", *map(str, args),
                           "--no-progress", "--format", "json"],
                          capture_output=True, text=True, timeout=timeout)


@FIFO
@pytest.mark.parametrize("header", [True, False])
def test_a_csv_named_pipe(tmp_path: Path, rng, header: bool) -> None:
    truth, pred = rng.normal(size=20_000), rng.normal(size=20_000)  # ~500 KB: more than a pipe holds
    options = {"header": "price", "comments": ""} if header else {}
    np.savetxt(tmp_path / "t.csv", truth, **options)
    text = io.StringIO()
    np.savetxt(text, pred, **options)
    os.mkfifo(tmp_path / "p.csv")
    writer = feed(tmp_path / "p.csv", text.getvalue().encode())
    result = score_in_a_child(tmp_path / "t.csv", tmp_path / "p.csv", "--metric", "mse,mae")
    writer.join(5)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 20_000
    assert report["metrics"]["mse"] == pytest.approx(metrics.mean_squared_error(truth, pred), rel=1e-12)
    assert report["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(truth, pred), rel=1e-12)


@FIFO
def test_an_npy_named_pipe(tmp_path: Path, rng) -> None:
    truth, pred = rng.normal(size=(30_000, 2)), rng.normal(size=(30_000, 2))
    np.save(tmp_path / "t.npy", truth)
    data = io.BytesIO()
    np.save(data, pred)
    os.mkfifo(tmp_path / "p.npy")
    writer = feed(tmp_path / "p.npy", data.getvalue())
    result = score_in_a_child(tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse")
    writer.join(5)
    assert result.returncode == 0, result.stderr
    expected = metrics.mean_squared_error(truth, pred)
    assert json.loads(result.stdout)["metrics"]["mse"] == pytest.approx(expected, rel=1e-12)


@FIFO
def test_a_parquet_named_pipe_is_a_clear_error(tmp_path: Path) -> None:
    np.save(tmp_path / "t.npy", np.zeros(3))
    os.mkfifo(tmp_path / "p.parquet")
    result = score_in_a_child(tmp_path / "t.npy", tmp_path / "p.parquet", timeout=60)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "p.parquet" in result.stderr and "pipe" in result.stderr


def test_each_input_file_is_opened_once(tmp_path: Path, rng) -> None:
    """Counted by an audit hook in a child process: the Python-level opens of every input."""
    truth, pred, weights = rng.normal(size=300), rng.normal(size=300), rng.uniform(size=300)
    np.savetxt(tmp_path / "t.csv", truth, header="price", comments="")
    np.savetxt(tmp_path / "p.csv", pred)
    np.save(tmp_path / "w.npy", weights)
    script = textwrap.dedent("""
        import collections, json, sys
        opened = collections.Counter()

        def hook(event, args):
            if event == "open" and isinstance(args[0], str) and args[0].startswith(sys.argv[1]):
                opened[args[0].rsplit("/", 1)[-1]] += 1

        sys.addaudithook(hook)
        from mseplug.cli.main import main
        code = main(["score", *sys.argv[2:], "--metric", "mse", "--format", "json", "--no-progress"])
        print(json.dumps({"code": code, "opened": opened}))
    """)
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(tmp_path / "t.csv"),
                             str(tmp_path / "p.csv"), "--weights", str(tmp_path / "w.npy")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report, counted = (json.loads(line) for line in result.stdout.splitlines())
    assert counted == {"code": 0, "opened": {"t.csv": 1, "p.csv": 1, "w.npy": 1}}
    expected = metrics.mean_squared_error(truth, pred, sample_weight=weights)
    assert report["metrics"]["mse"] == pytest.approx(expected, rel=1e-12)


# -- 7. integer Parquet columns ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "uint64", "int32"])
def test_integer_parquet_columns_become_the_nearest_float64(tmp_path: Path, capsys, rng,
                                                            dtype: str) -> None:
    info = np.iinfo(dtype)
    low = max(info.min, -(2**62))
    values = rng.integers(low, info.max, size=2000, dtype=dtype, endpoint=True)
    values[:4] = [info.max, info.max - 1, 2**53 + 1 if info.max > 2**53 else 3, 0]
    pq.write_table(pa.table({"count": values}), tmp_path / "t.parquet")
    as_float = values.astype(np.float64)  # NumPy's rounding, as scikit-learn's check_array
    pq.write_table(pa.table({"count": as_float}), tmp_path / "same.parquet")
    report = scores(capsys, tmp_path / "t.parquet", tmp_path / "same.parquet", "--metric", "mae")
    assert report["rows"] == 2000 and report["metrics"]["mae"] == 0.0  # rounded exactly as NumPy
    pred = as_float * (1 + rng.normal(size=2000) * 1e-3)
    pq.write_table(pa.table({"count": pred}), tmp_path / "p.parquet")
    report = scores(capsys, tmp_path / "t.parquet", tmp_path / "p.parquet", "--metric", "mae")
    assert report["metrics"]["mae"] == pytest.approx(metrics.mean_absolute_error(values, pred),
                                                     rel=1e-12)
