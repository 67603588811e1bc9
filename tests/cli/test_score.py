"""``mseplug score``: streamed files, every metric in one pass, and one-line errors (exit 2)."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from loss_table import NAMES, domains, in_domain, in_every_domain, refusal

import mseplug
from mseplug.cli import files as _files
from mseplug.cli import progress as _progress
from mseplug.cli.main import main

pa = pytest.importorskip("pyarrow")
pcsv = pytest.importorskip("pyarrow.csv")
pq = pytest.importorskip("pyarrow.parquet")


def score(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["score", *args, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one-line error of a user mistake: exit code 2, nothing on stdout."""
    code, out, err = score(capsys, *args)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("mseplug score: error: ") and err.count("\n") == 1, err
    return err


def write_table(path: Path, columns: dict[str, np.ndarray], row_group: int = 700) -> Path:
    table = pa.table(columns)
    if path.suffix == ".csv":
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=row_group)
    return path


def test_npy_streams_every_metric_in_one_pass(tmp_path: Path, capsys, monkeypatch, rng) -> None:
    # The default is every registered loss: here, those the loss table knows (tests that ran
    # before may have registered their own, and a registration lasts the process).
    from mseplug.api import registry

    monkeypatch.setattr(registry, "_records", {name: registry._records[name] for name in NAMES})
    y_true, y_pred = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2))
    w = rng.uniform(size=1000)
    for name, array in (("t", y_true), ("p", y_pred), ("w", w)):
        np.save(tmp_path / f"{name}.npy", array)
    monkeypatch.setattr(_files, "CHUNK_ROWS", 128)  # many chunks
    code, out, _ = score(capsys, str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                         str(tmp_path / "w.npy"), "--format", "json")
    report = json.loads(out)
    # the default: losses of the residual (no relative error) and scores that take any real
    # data, weights and several outputs and can be streamed (max_error, mape and the medians,
    # which are not decomposable, are scored when named)
    everywhere = [name for name in NAMES if name not in domains()
                  and (mseplug.get_loss(name).loss.residual
                       or (mseplug.get_loss(name).loss.statistics is not None
                           and not refusal(name, weighted=True, outputs=2, streamed=True)))]
    assert everywhere and code == 0 and report["rows"] == 1000
    assert list(report["metrics"]) == everywhere
    for loss, value in report["metrics"].items():
        expected = float(mseplug.get_loss(loss)(y_true, y_pred, sample_weight=w))
        assert value == pytest.approx(expected, rel=1e-12), loss
    # every registered loss, named, on data inside every domain: still one pass (the medians'
    # columns gathered over the chunks and computed in one call)
    y_true, y_pred = in_every_domain(y_true, y_pred)
    np.save(tmp_path / "t.npy", y_true)
    np.save(tmp_path / "p.npy", y_pred)
    named = [name for name in NAMES if not refusal(name, weighted=True, outputs=2)]
    code, out, _ = score(capsys, str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                         str(tmp_path / "w.npy"), "--metric", ",".join(named), "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["rows"] == 1000 and list(report["metrics"]) == named
    for loss, value in report["metrics"].items():
        expected = float(mseplug.get_loss(loss)(y_true, y_pred, sample_weight=w))
        assert value == pytest.approx(expected, rel=1e-12), loss


def test_a_loss_with_a_domain_is_scored_only_when_named(tmp_path: Path, capsys, rng) -> None:
    """Ordinary data (negative values, zeros) never stops the default run; a loss with a
    domain, named, scores data inside it and refuses a value outside it in one line naming
    the file, the row and the bound."""
    assert domains(), "no registered loss has a domain"
    y_true, y_pred = rng.normal(size=(2, 300))
    np.save(tmp_path / "t.npy", y_true)
    np.save(tmp_path / "p.npy", y_pred)
    code, out, err = score(capsys, str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--json")
    assert code == 0 and err == "" and not set(json.loads(out)["metrics"]) & set(domains())
    for name in domains():
        loss = mseplug.get_loss(name).loss
        inside = dict(zip(("y_true", "y_pred"), in_domain(name, y_true, y_pred)))
        for arg, values in inside.items():
            np.save(tmp_path / f"{arg}.npy", values)
        files = [str(tmp_path / "y_true.npy"), str(tmp_path / "y_pred.npy")]
        code, out, _ = score(capsys, *files, "--metric", name, "--json")
        expected = float(mseplug.get_loss(name)(inside["y_true"], inside["y_pred"]))
        assert code == 0 and json.loads(out)["metrics"] == {name: pytest.approx(expected)}
        for arg, bound in loss.bounds(loss.check_params({})).items():
            for other, values in inside.items():
                np.save(tmp_path / f"{other}.npy", values)
            outside = inside[arg].copy()
            outside[[41, 250]] = bound.low - 1.5  # rows 42 and 251
            np.save(tmp_path / f"{arg}.npy", outside)
            err = error_of(capsys, *files, "--metric", f"mse,{name}")
            assert f"{arg}.npy row 42: {name} is defined for {arg} {bound.describe()}" in err, err
            assert f"{arg} is {bound.low - 1.5:g}" in err and "--metric" in err, err


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_tables_with_a_column(tmp_path: Path, capsys, suffix, rng) -> None:
    y_true, y_pred = rng.normal(size=5000), rng.normal(size=5000)
    for name, values in (("t", y_true), ("p", y_pred)):
        write_table(tmp_path / f"{name}{suffix}", {"id": np.arange(5000), "price": values})
    code, out, _ = score(capsys, str(tmp_path / f"t{suffix}"), str(tmp_path / f"p{suffix}"),
                         "--column", "price", "--metric", "mse,mae")
    assert code == 0 and "5,000 rows" in out and "'price'" in out
    assert f"{float(mseplug.mse(y_true, y_pred)):.10g}" in out
    assert f"{float(mseplug.mae(y_true, y_pred)):.10g}" in out


def test_a_pandas_index_column_is_never_averaged_silently(tmp_path: Path, capsys, rng) -> None:
    """The issue's repro: DataFrame.to_csv() writes the index too; it used to halve the MSE."""
    pd = pytest.importorskip("pandas")
    y_true = rng.normal(size=50)
    y_pred = y_true + rng.normal(size=50) * 0.3
    pd.DataFrame({"price": y_true}).to_csv(tmp_path / "t.csv")
    pd.DataFrame({"price": y_pred}).to_csv(tmp_path / "p.csv")
    t, p = str(tmp_path / "t.csv"), str(tmp_path / "p.csv")
    err = error_of(capsys, t, p, "--metric", "mse")
    assert "2 columns" in err and "'price'" in err and "unnamed" in err
    assert "--column" in err and "--all-columns" in err
    true_mse = float(mseplug.mse(y_true, y_pred))
    code, out, _ = score(capsys, t, p, "--metric", "mse", "--column", "price", "--format", "json")
    assert code == 0 and json.loads(out)["metrics"]["mse"] == pytest.approx(true_mse, rel=1e-12)
    code, out, _ = score(capsys, t, p, "--metric", "mse", "--all-columns", "--format", "json")
    report = json.loads(out)  # on purpose: the index (no error) and price, averaged
    assert report["columns"] == ["", "price"] and report["metrics"]["mse"] == pytest.approx(true_mse / 2)


def test_all_columns_match_by_name(tmp_path: Path, capsys, rng) -> None:
    a, b = rng.normal(size=(2, 300)), rng.normal(size=(2, 300))
    write_table(tmp_path / "t.parquet", {"x": a[0], "y": a[1]})
    write_table(tmp_path / "p.parquet", {"y": b[1], "x": b[0]})
    code, out, _ = score(capsys, str(tmp_path / "t.parquet"), str(tmp_path / "p.parquet"),
                         "--all-columns", "--metric", "mae", "--format", "json")
    expected = float(mseplug.mae(a.T, b.T))
    assert code == 0 and json.loads(out)["metrics"]["mae"] == pytest.approx(expected, rel=1e-12)
    write_table(tmp_path / "q.parquet", {"x": b[0], "z": b[1]})
    err = error_of(capsys, str(tmp_path / "t.parquet"), str(tmp_path / "q.parquet"), "--all-columns")
    assert "same columns" in err


def test_errors_name_the_file_the_rows_and_the_fix(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "a.npy", np.zeros(10))
    np.save(tmp_path / "b.npy", np.zeros(12))
    np.save(tmp_path / "row.npy", np.zeros((1, 10)))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x20\x67" + b"garbage" * 10)
    (tmp_path / "bad.parquet").write_bytes(b"garbage" * 10)
    (tmp_path / "header.csv").write_text("price\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "x.txt").write_text("1\n")
    a = str(tmp_path / "a.npy")
    cases = {
        (a, str(tmp_path / "b.npy")): ["a.npy has 10 rows", "b.npy has 12 rows"],
        (a, str(tmp_path / "row.npy")): ["(1, 10)", "one row of 10 values", "reshape(-1)"],
        (a, a, "--metric", ""): ["--metric", "names no metric", "mse"],
        (a, a, "--metric", "msse"): ["'msse'", "choose from", *NAMES],
        (a, a, "--metric", "mse", "--param", "delta=2"): ["delta", "none of the metrics"],
        (a, str(tmp_path / "none.npy")): ["none.npy: no such file"],
        (a, str(tmp_path / "bad.npy")): ["bad.npy: not a readable .npy file"],
        (str(tmp_path / "bad.parquet"), str(tmp_path / "bad.parquet")): ["bad.parquet", "Parquet"],
        (str(tmp_path / "header.csv"),) * 2: ["header.csv has a header but no rows"],
        (str(tmp_path / "empty.csv"),) * 2: ["empty.csv", "empty"],
        (a, a, "--column", "price"): ["--column", "a.npy"],
        (a, str(tmp_path / "x.txt")): ["unknown file type '.txt'"],
        (a, str(tmp_path)): ["is a directory"],
    }
    for args, words in cases.items():
        err = error_of(capsys, *args)
        for word in words:
            assert word in err, (args, err)


def test_csv_errors_give_the_line_and_both_lengths(tmp_path: Path, capsys) -> None:
    (tmp_path / "t.csv").write_text("price\n" + "".join(f"{i}.5\n" for i in range(10)))
    (tmp_path / "bad.csv").write_text("price\n1\n2\nabc\n" + "".join(f"{i}\n" for i in range(6)))
    (tmp_path / "ragged.csv").write_text("a,price\n1,2\n3\n")
    (tmp_path / "long.csv").write_text("price\n" + "".join(f"{i}\n" for i in range(12)))
    t = str(tmp_path / "t.csv")
    assert "bad.csv line 4: 'abc' in column 'price' is not a number" in error_of(
        capsys, str(tmp_path / "bad.csv"), t)
    assert "ragged.csv line 3: 1 field where the header has 2" in error_of(
        capsys, str(tmp_path / "ragged.csv"), str(tmp_path / "ragged.csv"), "--column", "price")
    err = error_of(capsys, t, str(tmp_path / "long.csv"))
    assert "t.csv 10" in err and "long.csv 12" in err
    err = error_of(capsys, t, t, "--column", "prce")
    assert "'prce' is not a column of t.csv" in err and "'price'" in err


def test_weights_must_be_one_column_of_the_right_length(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "t.npy", np.zeros(10))
    np.save(tmp_path / "w2.npy", np.ones((10, 2)))
    np.save(tmp_path / "w9.npy", np.ones(9))
    np.save(tmp_path / "neg.npy", -np.ones(10))
    t = str(tmp_path / "t.npy")
    assert "one value per row" in error_of(capsys, t, t, "--weights", str(tmp_path / "w2.npy"))
    assert "9 weights but t.npy has 10 rows" in error_of(capsys, t, t, "--weights",
                                                          str(tmp_path / "w9.npy"))
    err = error_of(capsys, t, t, "--weights", str(tmp_path / "neg.npy"))
    assert "neg.npy rows 1-10" in err and "negative" in err


def test_huge_weights_give_the_right_mean(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "t.npy", np.array([3.0, 1.0]))
    np.save(tmp_path / "p.npy", np.array([2.0, 1.0]))
    np.save(tmp_path / "w.npy", np.array([1e308, 1e308]))  # their sum overflows float64
    code, out, _ = score(capsys, str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                         str(tmp_path / "w.npy"), "--metric", "mse,mae", "--format", "json")
    assert code == 0 and json.loads(out)["metrics"] == {"mse": 0.5, "mae": 0.5}


def test_nan_policy(tmp_path: Path, capsys, rng) -> None:
    y_true, y_pred = rng.normal(size=600), rng.normal(size=600)
    y_pred[[5, 400]] = np.nan
    np.save(tmp_path / "t.npy", y_true)
    np.save(tmp_path / "p.npy", y_pred)
    t, p = str(tmp_path / "t.npy"), str(tmp_path / "p.npy")
    err = error_of(capsys, t, p)  # default: raise, naming the first row with NaN
    assert "p.npy row 6 is NaN" in err and "--nan-policy omit" in err
    code, out, _ = score(capsys, t, p, "--nan-policy", "omit", "--metric", "mse", "--format", "json")
    expected = float(mseplug.mse(y_true, y_pred, nan_policy="omit"))
    assert code == 0 and json.loads(out)["metrics"]["mse"] == pytest.approx(expected, rel=1e-12)
    code, out, err = score(capsys, t, p, "--nan-policy", "propagate", "--format", "json")

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    report = json.loads(out, parse_constant=no_constants)  # NaN must be null, not a bare NaN
    assert code == 0 and set(report["metrics"].values()) == {None}
    assert "warning" in err and "NaN" in err


def test_missing_files_extra_is_one_line_with_the_fix(tmp_path: Path) -> None:
    """Without pyarrow (the files extra) a table is exit 2 naming mseplug[files], no traceback."""
    np.save(tmp_path / "t.npy", np.zeros(3))
    for suffix in (".csv", ".parquet"):
        (tmp_path / f"p{suffix}").write_text("price\n1\n2\n3\n")
        script = textwrap.dedent(f"""
            import sys
            sys.modules["pyarrow"] = None  # as if the extra were not installed
            from mseplug.cli.main import main
            sys.exit(main(["score", {str(tmp_path / 't.npy')!r}, {str(tmp_path / f'p{suffix}')!r}]))
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2, result.stderr
        assert "pip install 'mseplug[files]'" in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1


def test_version() -> None:
    result = subprocess.run([sys.executable, "-m", "mseplug", "--version"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == f"mseplug {mseplug.__version__}"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_only_on_a_terminal_and_after_the_delay() -> None:
    pipe = io.StringIO()
    with _progress.Progress(100, stream=pipe, delay=0.0) as progress:
        progress.advance(50)
    assert pipe.getvalue() == ""  # not a terminal: never
    quick = Terminal()
    with _progress.Progress(100, stream=quick, delay=60.0) as progress:
        progress.advance(50)
    assert quick.getvalue() == ""  # a terminal, but done before the delay
    slow = Terminal()
    with _progress.Progress(100, stream=slow, delay=0.0) as progress:
        progress.advance(50)
        assert "50" in slow.getvalue()


def test_an_error_never_lands_on_the_bar_line(tmp_path: Path, capsys, monkeypatch, rng) -> None:
    y_pred = rng.normal(size=3000)
    y_pred[2500] = np.nan  # found after the bar has been drawn
    np.save(tmp_path / "t.npy", rng.normal(size=3000))
    np.save(tmp_path / "p.npy", y_pred)
    monkeypatch.setattr(_files, "CHUNK_ROWS", 500)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    original = _progress.Progress.__init__

    def eager(self, *args, **kwargs) -> None:  # show the bar at once
        original(self, *args, **{**kwargs, "delay": 0.0})

    monkeypatch.setattr(_progress.Progress, "__init__", eager)
    assert main(["score", str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--metric", "mse"]) == 2
    shown = terminal.getvalue()
    assert "rows" in shown  # the bar was drawn
    before, error = shown.split("mseplug score: error:")
    assert before.endswith("\r") or before.endswith("\n")  # the bar's line was cleared first
    assert before.rsplit("\n", 1)[-1].rsplit("\r", 1)[-1].strip() == ""
    assert "row 2,501" in error


@pytest.mark.slow
def test_memory_stays_bounded_for_20_million_rows(tmp_path: Path) -> None:
    """A 2e7-row Parquet pair and a CSV pair (about 0.8 GB of files) stream in bounded memory.

    Each score runs in a child process that reports its own peak RSS (``VmHWM``); the files
    are written in chunks to ``tmp_path`` and deleted at the end.
    """
    n, step = 20_000_000, 1 << 20
    schema = pa.schema([("price", pa.float64())])
    for suffix in (".parquet", ".csv"):
        for name, seed in (("t", 0), ("p", 1)):
            path = tmp_path / f"{name}{suffix}"
            writer = (pq.ParquetWriter(path, schema) if suffix == ".parquet"
                      else pcsv.CSVWriter(path, schema))
            generator = np.random.default_rng(seed)
            for start in range(0, n, step):
                values = np.round(generator.standard_normal(min(step, n - start)), 5)
                writer.write_table(pa.table({"price": values}, schema=schema))
            writer.close()
    script = textwrap.dedent("""
        import json, resource, sys
        from mseplug.cli.main import main

        def peak_mb():
            # VmHWM belongs to this program's memory map; ru_maxrss would carry over the
            # parent's (pytest's) peak through fork and exec.
            try:
                with open("/proc/self/status") as status:
                    return next(int(line.split()[1]) / 1024 for line in status
                                if line.startswith("VmHWM:"))
            except OSError:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                return peak / 2**20 if sys.platform == "darwin" else peak / 1024

        code = main(["score", sys.argv[1], sys.argv[2], "--metric", "mse,mae", "--format", "json"])
        print(json.dumps({"code": code, "peak_mb": peak_mb()}))
    """)
    try:
        for suffix in (".parquet", ".csv"):
            result = subprocess.run(
                [sys.executable, "-c", script, str(tmp_path / f"t{suffix}"),
                 str(tmp_path / f"p{suffix}")], capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, result.stderr
            report, measured = (json.loads(line) for line in result.stdout.splitlines())
            assert measured["code"] == 0 and report["rows"] == n
            assert math.isclose(report["metrics"]["mse"], 2.0, rel_tol=0.01)  # two N(0, 1)
            assert measured["peak_mb"] < 250, (suffix, measured)
    finally:
        for path in tmp_path.iterdir():
            path.unlink()


def test_csv_encodings(tmp_path: Path, capsys) -> None:
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfprice\n1\n2\n")  # Excel's UTF-8 with a BOM
    (tmp_path / "t.csv").write_text("price\n1\n4\n")
    (tmp_path / "latin.csv").write_bytes(b"pr\xe9ce\n1\n2\n")
    code, out, _ = score(capsys, str(tmp_path / "t.csv"), str(tmp_path / "bom.csv"), "--metric", "mae",
                         "--format", "json")
    assert code == 0 and json.loads(out)["metrics"]["mae"] == 1.0
    assert "latin.csv: not UTF-8" in error_of(capsys, str(tmp_path / "latin.csv"), str(tmp_path / "t.csv"))


def test_the_regression_family_by_name_with_a_power(tmp_path: Path, capsys, rng) -> None:
    """rmsle, mape, gamma_deviance and tweedie_deviance by --metric, the power by --param; the
    power sets Tweedie's domain, and a value outside it is the one-line error."""
    y_true, y_pred = 0.5 + np.abs(rng.normal(size=(2, 400)))
    np.save(tmp_path / "t.npy", y_true)
    np.save(tmp_path / "p.npy", y_pred)
    files = [str(tmp_path / "t.npy"), str(tmp_path / "p.npy")]
    code, out, _ = score(capsys, *files, "--metric", "rmsle,mape,gamma_deviance,tweedie_deviance",
                         "--param", "power=1.5", "--json")
    report = json.loads(out)["metrics"]
    assert code == 0 and list(report) == ["rmsle", "mape", "gamma_deviance", "tweedie_deviance"]
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    assert report["rmsle"] == pytest.approx(
        sklearn_metrics.root_mean_squared_log_error(y_true, y_pred), rel=1e-12)
    assert report["mape"] == pytest.approx(
        sklearn_metrics.mean_absolute_percentage_error(y_true, y_pred), rel=1e-12)
    assert report["gamma_deviance"] == pytest.approx(
        sklearn_metrics.mean_gamma_deviance(y_true, y_pred), rel=1e-12)
    assert report["tweedie_deviance"] == pytest.approx(
        sklearn_metrics.mean_tweedie_deviance(y_true, y_pred, power=1.5), rel=1e-12)
    y_true[9] = -1.0  # power 1.5: y_true >= 0
    np.save(tmp_path / "t.npy", y_true)
    err = error_of(capsys, *files, "--metric", "tweedie_deviance", "--param", "power=1.5")
    assert "t.npy row 10: tweedie_deviance is defined for y_true >= 0" in err, err
    code, out, _ = score(capsys, *files, "--metric", "tweedie_deviance", "--json")  # power 0
    assert code == 0 and json.loads(out)["metrics"]["tweedie_deviance"] == pytest.approx(
        float(mseplug.mse(y_true, y_pred)), rel=1e-12)
    err = error_of(capsys, *files, "--metric", "tweedie_deviance", "--param", "power=0.5")
    assert "power" in err and "(0, 1)" in err, err


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_the_medians_are_scored_when_named_in_one_call(tmp_path: Path, capsys, monkeypatch, rng,
                                                       backend) -> None:
    """median_absolute_error and d2_absolute_error are not decomposable: never a default, and
    named, their chunks are gathered and computed in one call, equal to scikit-learn's."""
    if backend not in mseplug.backends():
        pytest.skip(f"{backend} is not installed")
    from sklearn.metrics import d2_absolute_error_score, median_absolute_error

    y_true = rng.integers(0, 9, size=700).astype(np.float64)  # ties across chunks
    y_pred = y_true + rng.normal(size=700)
    w = rng.integers(0, 3, size=700).astype(np.float64)
    write_table(tmp_path / "t.csv", {"y": y_true})
    write_table(tmp_path / "p.csv", {"y": y_pred})
    write_table(tmp_path / "w.csv", {"w": w})
    monkeypatch.setattr(_files, "CHUNK_ROWS", 64)  # many chunks
    files = [str(tmp_path / name) for name in ("t.csv", "p.csv")]
    code, out, _ = score(capsys, *files, "--json")
    assert code == 0 and not {"median_absolute_error", "d2_absolute_error"} & set(
        json.loads(out)["metrics"])
    code, out, _ = score(capsys, *files, "--weights", str(tmp_path / "w.csv"), "--metric",
                         "median_absolute_error,mae,d2_absolute_error", "--backend", backend,
                         "--json")
    report = json.loads(out)
    assert code == 0 and report["rows"] == 700
    assert list(report["metrics"]) == ["median_absolute_error", "mae", "d2_absolute_error"]
    assert report["metrics"]["median_absolute_error"] == pytest.approx(
        median_absolute_error(y_true, y_pred, sample_weight=w), rel=1e-12)
    assert report["metrics"]["d2_absolute_error"] == pytest.approx(
        d2_absolute_error_score(y_true, y_pred, sample_weight=w), rel=1e-12)
    assert report["metrics"]["mae"] == pytest.approx(
        float(mseplug.mae(y_true, y_pred, sample_weight=w)), rel=1e-12)
