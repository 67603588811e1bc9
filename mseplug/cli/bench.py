"""``mseplug bench``: the performance contract measured on this machine, every installed backend.

Every figure is a ratio of medians measured side by side in this process on
the same data (:mod:`mseplug.cli.timing`), so a busy machine slows both sides
alike. ``ratio`` is *anchor time / mseplug time*: above 1 means mseplug is
faster. A row whose ratio is below its goal is flagged ``MISSED``. With
``--json`` the measurements are printed as one JSON object::

    {"mseplug": version, "machine": {...}, "date": "YYYY-MM-DD", "repeat": int,
     "rows": [ROW, ...], "scaling": [POINT, ...]}

where each ROW holds ``backend, case, anchor, mseplug_s, anchor_s, ratio,
goal, goal_value, met, mseplug_bytes, anchor_bytes, difference`` (``difference``: the
relative difference of the two sides' values, for the rows of the regression family against
scikit-learn, else null) and each POINT (with
``--scaling``) ``backend, loss, n, dtype, mseplug_s, anchor, anchor_s``. The
goals come from :data:`mseplug.cli.bench_cases.GOALS`.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import mseplug
from mseplug.cli.bench_cases import CASES, FAMILY_RTOL, GOAL, GOAL_SIZE, Goal, Row, Size, count, installed
from mseplug.cli.timing import peak_bytes, seconds

QUICK = Size(large=5 * 10**5, jit=10**5, repeat=5, budget=0.005)
FULL = Size(large=10**7, jit=10**6, repeat=15, budget=0.02)
#: The largest n of the scaling run (10, 100, ..., 10**k).
QUICK_SCALING, FULL_SCALING = 5, 8
#: Ratios within this share below their goal are flagged as timing noise, not as misses.
NOISE = 0.02


def measure(size: Size, log: TextIO) -> tuple[list[Row], list[str]]:
    """Every backend's rows (installed ones only), and notes on what was skipped."""
    rows: list[Row] = []
    notes = []
    for name, module, cases in CASES:
        if not installed(module):
            notes.append(f"{name}: not installed, no rows")
            continue
        if log.isatty():
            print(f"\r  measuring {name} ...   ", end="", file=log, flush=True)
        rows.extend(cases(size))
    if log.isatty():
        print("\r" + " " * 30 + "\r", end="", file=log, flush=True)
    return rows, notes


def _verdict(goal: Goal, measured: float, n: int) -> str:
    """``'goal ... met'`` or ``'MISSED'`` at the goal's size; below it the goal is only named."""
    if n < GOAL_SIZE:
        return f"goal at n={count(GOAL_SIZE)}: {goal.words}"
    return f"goal: {goal.words}, {'met' if goal.met(measured) else 'MISSED'}"


def accuracy_and_memory(n: int) -> list[str]:
    """The accuracy and memory goals (:data:`GOALS`), as notes under the table."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal(n).astype(np.float32)
    b = (a + rng.standard_normal(n).astype(np.float32) * 0.1).astype(np.float32)
    exact = math.fsum(((a.astype(np.float64) - b.astype(np.float64)) ** 2).tolist()) / n
    ours, naive = float(mseplug.mse(a, b)), float(np.mean((a - b) ** 2))
    memory, naive_memory = peak_bytes(lambda: mseplug.mse(a, b)), peak_bytes(lambda: np.mean((a - b) ** 2))
    error, inputs = abs(ours - exact) / exact, a.nbytes * 2
    return [
        f"accuracy, float32 n={count(n)}: mseplug relative error {error:.1e} "
        f"({_verdict(GOAL['accuracy-float32'], error, n)}); np.mean((a-b)**2) "
        f"{abs(naive - exact) / exact:.1e}",
        f"extra memory, float32 n={count(n)}: mseplug {memory / 1e6:.2f} MB, np.mean((a-b)**2) "
        f"{naive_memory / 1e6:.1f} MB (inputs {inputs / 1e6:.0f} MB, "
        f"{inputs / max(memory, 1):.0f}x mseplug's; "
        f"{_verdict(GOAL['memory-float32'], inputs / max(memory, 1), n)})",
    ]


def flag(row: Row) -> str:
    """``MISSED`` for a ratio below its goal; ``VALUES DIFFER`` where the two sides' values are
    further apart than :data:`~mseplug.cli.bench_cases.FAMILY_RTOL` (relative)."""
    flags = []
    if row.met is False:
        assert row.goal_value is not None
        flags.append("MISSED (within timing noise)" if row.ratio >= row.goal_value * (1 - NOISE)
                     else "MISSED")
    if row.difference is not None and not row.difference <= FAMILY_RTOL:
        flags.append(f"VALUES DIFFER ({row.difference:.1e})")
    return ", ".join(flags)


def family_note(rows: list[Row]) -> list[str]:
    """The largest relative difference of the rows that compare values, as a note."""
    compared = [row for row in rows if row.difference is not None]
    if not compared:
        return []
    worst = max(compared, key=lambda row: row.difference or 0.0)
    within = sum(1 for row in compared if row.difference is not None
                 and row.difference <= FAMILY_RTOL)
    return [f"values against scikit-learn: {within} of {len(compared)} rows within "
            f"{FAMILY_RTOL:.0e} relative; the largest difference {worst.difference:.1e} "
            f"({worst.case})"]


def format_rows(rows: list[Row]) -> str:
    """A Markdown table; every column title says something different."""
    lines = ["| backend | case | mseplug | compared with | its time | ratio | goal | | "
             "extra memory (mseplug / other) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        memory = ("" if row.mseplug_bytes is None or row.anchor_bytes is None
                  else f"{row.mseplug_bytes / 1e6:.2f} / {row.anchor_bytes / 1e6:.1f} MB")
        lines.append(f"| {row.backend} | {row.case} | {seconds(row.mseplug_s)} | {row.anchor} | "
                     f"{seconds(row.anchor_s)} | {row.ratio:.2f}x | {row.goal} | {flag(row)} | "
                     f"{memory} |")
    return "\n".join(lines)


def _cpu_model() -> str:
    """The processor's name (Linux ``/proc/cpuinfo``), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine() -> dict[str, Any]:
    found = {"python": platform.python_version(), "numpy": np.__version__,
             "cpu_count": os.cpu_count(), "platform": platform.platform(),
             "processor": platform.machine(), "cpu": _cpu_model()}
    for name in ("torch", "jax", "scikit-learn", "dask", "pyarrow"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def report(rows: list[Row], size: Size, scaling: list[dict[str, Any]]) -> dict[str, Any]:
    """The shared JSON format."""
    return {"mseplug": mseplug.__version__, "machine": machine(),
            "date": datetime.date.today().isoformat(), "repeat": size.repeat,
            "rows": [row.as_json() for row in rows], "scaling": scaling}


def run(*, quick: bool = False, output: Path | None = None, as_json: bool = False,
        scaling: bool = False) -> int:
    size = QUICK if quick else FULL
    out = sys.stderr if as_json else sys.stdout
    started = time.perf_counter()
    print(f"mseplug {mseplug.__version__} bench{' --quick' if quick else ''}: median of "
          f"{size.repeat} alternating repeats; ratio = anchor time / mseplug time (higher is "
          "better); MISSED flags a ratio below its goal", file=out)
    rows, notes = measure(size, sys.stderr)
    notes = accuracy_and_memory(size.large) + family_note(rows) + notes
    points = []
    if scaling:
        from mseplug.cli.bench_scaling import scaling_points, scaling_table

        points = scaling_points(QUICK_SCALING if quick else FULL_SCALING, size, sys.stderr)
        notes.append("time against n (median seconds per call):\n\n" + scaling_table(points))
    table = format_rows(rows)
    missed = sum(1 for row in rows if row.met is False)
    notes.append(f"{len(rows)} rows, {missed} below their goal; {time.perf_counter() - started:.1f} s")
    print(f"\n{table}\n\n" + "\n".join(f"- {note}" for note in notes), file=out)
    if output is not None:
        output.write_text(table + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n")
        print(f"\nwrote {output}", file=out)
    if as_json:
        print(json.dumps(report(rows, size, points), indent=1))
    return 0
