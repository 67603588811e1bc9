"""The command line: demo, score over .npy/.csv/.parquet in chunks, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mseplug
from mseplug import _files
from mseplug.cli import main


def test_score_npy_streams_and_equals_one_shot(tmp_path: Path, capsys, monkeypatch, rng) -> None:
    y_true, y_pred = rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2))
    w = rng.uniform(size=1000)
    for name, array in (("t", y_true), ("p", y_pred), ("w", w)):
        np.save(tmp_path / f"{name}.npy", array)
    monkeypatch.setattr(_files, "CHUNK_ROWS", 128)  # many chunks
    code = main(["score", str(tmp_path / "t.npy"), str(tmp_path / "p.npy"), "--weights",
                 str(tmp_path / "w.npy"), "--format", "json", "--no-progress"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["rows"] == 1000
    assert sorted(out) == sorted(["rows", *mseplug.losses()])  # every registered loss by default
    for loss in mseplug.losses():
        expected = float(mseplug.get_loss(loss)(y_true, y_pred, sample_weight=w))
        assert out[loss] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_tables_with_a_column(tmp_path: Path, capsys, suffix, rng) -> None:
    pa = pytest.importorskip("pyarrow")
    y_true, y_pred = rng.normal(size=5000), rng.normal(size=5000)
    for name, values in (("t", y_true), ("p", y_pred)):
        table = pa.table({"id": np.arange(5000), "price": values})
        path = tmp_path / f"{name}{suffix}"
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, path)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, path, row_group_size=700)
    code = main(["score", str(tmp_path / f"t{suffix}"), str(tmp_path / f"p{suffix}"),
                 "--column", "price", "--metric", "mse,mae", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "5000 rows" in out
    assert f"{float(mseplug.mse(y_true, y_pred)):.10g}" in out
    assert f"{float(mseplug.mae(y_true, y_pred)):.10g}" in out


def test_score_errors_name_the_problem(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "a.npy", np.zeros(10))
    np.save(tmp_path / "b.npy", np.zeros(12))
    assert main(["score", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--no-progress"]) == 2
    assert "different numbers of rows" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "a.npy"), str(tmp_path / "a.npy"), "--metric", "msle"]) == 2
    assert "msle" in capsys.readouterr().err
    assert main(["score", str(tmp_path / "a.npy"), str(tmp_path / "none.npy")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_aligned_rechunks_streams_of_different_sizes() -> None:
    a = iter([np.arange(3), np.arange(3, 10)])
    b = iter([np.arange(5), np.arange(5, 7), np.arange(7, 10)])
    pairs = list(_files.aligned(a, b))
    assert all(len(x) == len(y) for x, y in pairs)
    assert np.concatenate([x for x, _ in pairs]).tolist() == list(range(10))
    assert np.concatenate([y for _, y in pairs]).tolist() == list(range(10))


def test_python_m_mseplug_demo_prints_the_table() -> None:
    result = subprocess.run([sys.executable, "-m", "mseplug", "demo"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "raw errors sum to 0" in result.stdout and "MSE = 4e+08" in result.stdout
    assert "house prices" in result.stdout and "Largest cross-backend difference" in result.stdout
    worst = float(result.stdout.rsplit("difference:", 1)[1].strip())
    assert worst < 1e-9
