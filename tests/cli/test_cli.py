"""The command line: demo, and the chunk alignment of score (score itself: test_score.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from loss_table import NAMES

from mseplug.cli import demo as _demo
from mseplug.cli import sources as _sources


def test_aligned_rechunks_streams_of_different_sizes() -> None:
    a = iter([np.arange(3), np.arange(3, 10)])
    b = iter([np.arange(5), np.arange(5, 7), np.arange(7, 10)])
    pairs = list(_sources.aligned(a, b))
    assert all(len(x) == len(y) for x, y in pairs)
    assert np.concatenate([x for x, _ in pairs]).tolist() == list(range(10))
    assert np.concatenate([y for _, y in pairs]).tolist() == list(range(10))


@pytest.mark.slow  # the whole demo in a fresh interpreter (make demo runs it too)
def test_python_m_mseplug_demo_prints_the_table() -> None:
    result = subprocess.run([sys.executable, "-m", "mseplug", "demo"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "raw errors sum to 0" in result.stdout and "MSE = 4e+08" in result.stdout
    assert "house prices" in result.stdout and "Largest cross-backend difference" in result.stdout
    worst = float(result.stdout.rsplit("difference:", 1)[1].strip())
    assert worst < 1e-9
    lines = result.stdout.splitlines()
    for name in NAMES:  # every registered loss on every problem, those with a domain included
        assert sum(f"  {name}  " in line for line in lines) == len(_demo.problems()), name
