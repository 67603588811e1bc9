"""The command line's own behaviour: repeated --metric, one JSON spelling, a closed pipe,
Ctrl-C, one-line usage errors, plurals, and the rows ``--nan-policy omit`` skips.

Reference values come from NumPy in float64 and from scikit-learn.
"""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mseplug.cli import main as cli
from mseplug.cli import progress as _progress
from mseplug.cli.main import main

metrics = pytest.importorskip("sklearn.metrics")


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["score", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def log_cosh(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.log(np.cosh(pred - truth))))


@pytest.fixture
def pair(tmp_path: Path, rng) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    truth, pred = rng.normal(size=200), rng.normal(size=200)
    np.save(tmp_path / "t.npy", truth)
    np.save(tmp_path / "p.npy", pred)
    return tmp_path / "t.npy", tmp_path / "p.npy", truth, pred


# -- 8. a repeated --metric ------------------------------------------------------------------------
def test_a_repeated_metric_scores_every_one(capsys, pair) -> None:
    t, p, truth, pred = pair
    expected = {"mse": metrics.mean_squared_error(truth, pred),
                "mae": metrics.mean_absolute_error(truth, pred), "log_cosh": log_cosh(truth, pred)}
    for options in (["--metric", "mse", "--metric", "mae", "--metric", "log_cosh"],
                    ["--metric", "mse,mae", "--metric", "mse", "--metric", "log_cosh,mae"],
                    ["--metric", "mse,mae,log_cosh"]):
        code, out, err = run(capsys, t, p, *options, "--format", "json")
        assert code == 0, err
        scored = json.loads(out)["metrics"]
        assert list(scored) == list(expected), options  # each once, in the order first given
        for name, value in expected.items():
            assert scored[name] == pytest.approx(value, rel=1e-12), (options, name)


# -- 9. one JSON spelling --------------------------------------------------------------------------
def test_score_takes_json_as_an_alias_of_format_json(capsys, pair) -> None:
    t, p, _, _ = pair
    _, spelled, _ = run(capsys, t, p, "--metric", "mse", "--format", "json")
    _, alias, _ = run(capsys, t, p, "--metric", "mse", "--json")
    assert json.loads(spelled) == json.loads(alias)


@pytest.mark.parametrize(("options", "as_json"), [
    ([], False), (["--format", "table"], False), (["--format", "json"], True), (["--json"], True)])
def test_bench_spells_json_output_as_score_does(monkeypatch, options, as_json) -> None:
    from mseplug.cli import bench as _bench

    calls: list[dict] = []
    monkeypatch.setattr(_bench, "run", lambda **kwargs: calls.append(kwargs) or 0)
    assert main(["bench", "--quick", *options]) == 0
    assert calls == [{"quick": True, "output": None, "as_json": as_json, "scaling": False}]


@pytest.mark.parametrize("command", ["score", "bench"])
def test_every_result_printing_subcommand_documents_both_spellings(capsys, command) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--format {table,json}" in text and "--json" in text


def test_usage_errors_are_one_line_with_exit_2(capsys, pair) -> None:
    t, p, _, _ = pair
    for args in (["score", str(t), str(p), "--format", "json", "--json", "--format", "table"],
                 ["score", str(t), str(p), "--nan-policy", "skip"],
                 ["bench", "--frobnicate"], ["nonsense"]):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1, (args, err)
        assert ": error: " in err and "--help" in err


# -- 4. a closed pipe ------------------------------------------------------------------------------
def test_a_closed_pipe_is_quiet(pair) -> None:
    """``mseplug score ... | head -c1``: the reader is gone before the report is written."""
    t, p, _, _ = pair
    child = subprocess.Popen([sys.executable, "-m", "mseplug", "score", str(t), str(p), "--metric",
                              "mse", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the only reader: the child's write fails with EPIPE
    with child.stderr:
        err = child.stderr.read().decode()
    assert child.wait(timeout=120) == cli.EXIT_BROKEN_PIPE == 141
    assert err == ""


def test_a_closed_pipe_after_part_of_the_output_is_quiet(tmp_path: Path) -> None:
    """Through a shell pipeline, as users write it; more output than a pipe holds."""
    script = ("import sys; from mseplug.cli import main as cli; "
              "cli._run = lambda args: print('x' * 1_000_000) or 0; "
              "sys.exit(cli.main(['demo']))")
    shell = f"set -o pipefail; {sys.executable!r} -c {script!r} | head -c1 >/dev/null"
    result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert result.returncode == 141 and result.stderr == "", result.stderr


# -- 5. Ctrl-C -------------------------------------------------------------------------------------
#: ``python -m mseplug`` with Ctrl-C raising KeyboardInterrupt, whatever the test's own process
#: inherited: a command started in the background of a shell without job control (`make test &`)
#: has SIGINT ignored, and Python keeps an inherited "ignore" (as would every child it starts).
#: (Not ``preexec_fn``: it forks, and JAX, loaded by earlier tests, warns about forks.)
PYTHON_M_WITH_CTRL_C = ("import runpy, signal, sys; "
                        "signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "sys.argv[0] = 'mseplug'; "
                        "runpy.run_module('mseplug', run_name='__main__', alter_sys=True)")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
@pytest.mark.parametrize("sent", [b"", b"price\n1.5\n"], ids=["nothing", "a-header-then-nothing"])
def test_ctrl_c_exits_130_without_a_traceback(tmp_path: Path, sent: bytes) -> None:
    """SIGINT while the command waits for a named pipe that never delivers (all) its data."""
    (tmp_path / "t.csv").write_text("price\n1\n2\n3\n")
    fifo = tmp_path / "p.csv"
    os.mkfifo(fifo)
    with subprocess.Popen([sys.executable, "-c", PYTHON_M_WITH_CTRL_C, "score",
                           str(tmp_path / "t.csv"), str(fifo), "--metric", "mse", "--no-progress"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as child:  # its pipes closed on any exit
        writer = None
        deadline = time.monotonic() + 120
        while writer is None:  # wait for the child to open the pipe (until then, opening fails)
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                assert (error.errno == errno.ENXIO and time.monotonic() < deadline
                        and child.poll() is None)
                time.sleep(0.05)
        try:
            os.write(writer, sent)
            time.sleep(0.5)  # the child now waits in a read
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=60)
        finally:
            os.close(writer)
            child.kill()
    assert child.returncode == cli.EXIT_INTERRUPTED == 130, err
    assert "Traceback" not in err and err.count("\n") <= 1 and out == "", err


def test_ctrl_c_in_process_returns_130(monkeypatch, capsys, pair) -> None:
    t, p, _, _ = pair

    def interrupted(args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_score", interrupted)
    try:
        code = main(["score", str(t), str(p)])
    except KeyboardInterrupt:  # not pytest's own: a failure, not the end of the session
        pytest.fail("KeyboardInterrupt escaped main()")
    assert code == 130
    assert capsys.readouterr().err == "mseplug score: interrupted\n"


# -- 10. plurals -----------------------------------------------------------------------------------
def test_counts_of_one_are_singular(tmp_path: Path, capsys, monkeypatch) -> None:
    np.save(tmp_path / "one.npy", np.array([2.0]))
    np.save(tmp_path / "two.npy", np.array([1.0, 2.0]))
    one, two = tmp_path / "one.npy", tmp_path / "two.npy"
    code, out, _ = run(capsys, one, one, "--metric", "mse")
    assert code == 0 and "(1 row;" in out and "1 rows" not in out
    code, _, err = run(capsys, one, two)
    assert code == 2 and "one.npy has 1 row " in err and "two.npy has 2 rows" in err
    code, _, err = run(capsys, two, two, "--weights", one)
    assert code == 2 and "one.npy has 1 weight but two.npy has 2 rows" in err
    (tmp_path / "r.csv").write_text("a,price\n1,2\n3\n")
    code, _, err = run(capsys, tmp_path / "r.csv", tmp_path / "r.csv", "--column", "price")
    assert code == 2 and "line 3: 1 field where the header has 2" in err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setitem(sys.modules, "tqdm", None)  # the plain line
    shown = Terminal()
    with _progress.Progress(None, stream=shown, delay=0.0) as progress:
        progress.advance(1)
        assert "1 row" in shown.getvalue() and "1 rows" not in shown.getvalue()


# -- 11. the NaN --nan-policy omit skips -----------------------------------------------------------
def test_omit_reports_the_rows_it_skipped(tmp_path: Path, capsys, rng) -> None:
    truth, pred = rng.normal(size=1000), rng.normal(size=1000)
    pred[[3, 500, 999]] = np.nan
    truth[[3, 10]] = np.nan
    np.save(tmp_path / "t.npy", truth)
    np.save(tmp_path / "p.npy", pred)
    kept = ~(np.isnan(truth) | np.isnan(pred))
    code, out, err = run(capsys, tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse,mae",
                         "--nan-policy", "omit", "--format", "json")
    report = json.loads(out)
    assert code == 0 and int((~kept).sum()) == 4
    assert report["nan_skipped"] == {"mse": {"rows": 4, "values": 4}, "mae": {"rows": 4, "values": 4}}
    assert report["metrics"]["mse"] == pytest.approx(
        metrics.mean_squared_error(truth[kept], pred[kept]), rel=1e-12)
    assert "mseplug score: note: mse, mae: 4 rows with NaN skipped\n" == err
    code, out, err = run(capsys, tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse",
                         "--nan-policy", "omit")
    assert code == 0 and "4 rows with NaN skipped" in out and "4 rows with NaN skipped" in err
    code, out, err = run(capsys, tmp_path / "t.npy", tmp_path / "t.npy", "--metric", "mse",
                         "--nan-policy", "omit", "--format", "json")
    assert json.loads(out)["nan_skipped"] == {"mse": {"rows": 2, "values": 2}}


def test_omit_counts_values_per_output(tmp_path: Path, capsys, rng) -> None:
    truth, pred = rng.normal(size=(300, 2)), rng.normal(size=(300, 2))
    pred[5, 0] = pred[5, 1] = pred[7, 1] = truth[9, 0] = np.nan
    np.save(tmp_path / "t.npy", truth)
    np.save(tmp_path / "p.npy", pred)
    code, out, err = run(capsys, tmp_path / "t.npy", tmp_path / "p.npy", "--metric", "mse",
                         "--nan-policy", "omit", "--format", "json")
    assert code == 0, err
    kept = ~(np.isnan(truth) | np.isnan(pred))
    expected = np.mean([np.mean((truth[kept[:, k], k] - pred[kept[:, k], k]) ** 2) for k in (0, 1)])
    report = json.loads(out)
    assert report["nan_skipped"] == {"mse": {"rows": 3, "values": 4}}
    assert report["metrics"]["mse"] == pytest.approx(expected, rel=1e-12)
    assert "mse: 4 values in 3 rows with NaN skipped" in err
