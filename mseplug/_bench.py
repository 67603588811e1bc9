"""``mseplug bench``: the performance goals (docs/benchmarks.md) measured on this machine.

Every figure is a ratio of medians measured side by side in this process on
the same data, so a busy machine slows both sides alike. ``ratio`` is
*anchor time / mseplug time*: above 1 means mseplug is faster.
"""

from __future__ import annotations

import gc
import importlib.util
import math
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import mseplug

Row = tuple[str, str, float, float, str]  # case, anchor, mseplug seconds, anchor seconds, goal


def median_time(function: Callable[[], Any], *, repeat: int, number: int | None = None) -> float:
    """Median seconds per call over ``repeat`` rounds (``number`` calls each, auto if None)."""
    if number is None:
        number, _ = timeit.Timer(function).autorange()
    gc.collect()
    times = timeit.repeat(function, repeat=repeat, number=number)
    return float(np.median(times)) / number


def peak_bytes(function: Callable[[], Any]) -> int:
    """Peak of memory allocated through Python's and NumPy's allocators during one call."""
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def numpy_rows(n: int, repeat: int) -> list[Row]:
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal(n).astype(dtype)
        b = rng.standard_normal(n).astype(dtype)
        rows.extend(_large_rows(a, b, repeat))
    small_a, small_b = rng.standard_normal(8), rng.standard_normal(8)
    ours = median_time(lambda: mseplug.mse(small_a, small_b), repeat=repeat)
    rows.append(("numpy mse n=8", "np.mean((a-b)**2)", ours,
                 median_time(lambda: np.mean((small_a - small_b) ** 2), repeat=repeat), ">= 1"))
    if importlib.util.find_spec("sklearn"):
        from sklearn.metrics import mean_squared_error

        rows.append(("numpy mse n=8", "sklearn mean_squared_error", ours,
                     median_time(lambda: mean_squared_error(small_a, small_b), repeat=repeat),
                     ">= 25"))
    return rows


def _large_rows(a: np.ndarray, b: np.ndarray, repeat: int) -> list[Row]:
    case = f"n={a.size:.0e} {a.dtype.name}"
    ours = median_time(lambda: mseplug.mse(a, b), repeat=repeat)
    return [
        (f"numpy mse {case}", "np.mean((a-b)**2)", ours,
         median_time(lambda: np.mean((a - b) ** 2), repeat=repeat), ">= 3"),
        (f"numpy mse {case}", "np.dot(a, b) (bandwidth)", ours,
         median_time(lambda: np.dot(a, b), repeat=repeat), ">= 0.6"),
        (f"numpy mae {case}", "np.mean(np.abs(a-b))",
         median_time(lambda: mseplug.mae(a, b), repeat=repeat),
         median_time(lambda: np.mean(np.abs(a - b)), repeat=repeat), ">= 2.5"),
    ]


def accuracy_and_memory(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(n).astype(np.float32)
    b = (a + rng.standard_normal(n).astype(np.float32) * 0.1).astype(np.float32)
    exact = math.fsum(((a.astype(np.float64) - b.astype(np.float64)) ** 2).tolist()) / n
    ours = float(mseplug.mse(a, b))
    naive = float(np.mean((a - b) ** 2))
    mem_ours = peak_bytes(lambda: mseplug.mse(a, b))
    mem_naive = peak_bytes(lambda: np.mean((a - b) ** 2))
    return [
        f"accuracy, float32 n={n:.0e}: mseplug rel. error {abs(ours - exact) / exact:.1e} "
        f"(goal <= 1e-6); np.mean((a-b)**2) {abs(naive - exact) / exact:.1e}",
        f"extra memory, float32 n={n:.0e}: mseplug {mem_ours / 1e6:.2f} MB, "
        f"np.mean((a-b)**2) {mem_naive / 1e6:.1f} MB (inputs {a.nbytes * 2 / 1e6:.0f} MB)",
    ]


def format_rows(rows: list[Row]) -> str:
    lines = ["| case | anchor | mseplug | anchor | ratio | goal |", "|---|---|---|---|---|---|"]
    for case, anchor, ours, theirs, goal in rows:
        lines.append(f"| {case} | {anchor} | {_seconds(ours)} | {_seconds(theirs)} | "
                     f"{theirs / ours:.2f}x | {goal} |")
    return "\n".join(lines)


def _seconds(value: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-9:.3g} ns"


def run(*, quick: bool = False, output: Path | None = None) -> int:
    n, repeat = (10**6, 5) if quick else (10**7, 15)
    print(f"mseplug {mseplug.__version__} benchmarks, median of {repeat} repeats; "
          "ratio = anchor time / mseplug time (higher is better)\n")
    table = format_rows(numpy_rows(n, repeat))
    notes = accuracy_and_memory(n)
    print(table)
    print()
    print("\n".join(notes))
    if output is not None:
        output.write_text(table + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n")
        print(f"\nwrote {output}")
    return 0
