"""The metric call behind the scorers: ``mseplug.mse`` against scikit-learn's, on small inputs.

Side by side in one process on the same float64 data, median of repeats
(``mseplug.cli.timing.median_time``, shared with ``mseplug bench``). The performance
goal, the one ``mseplug bench`` applies: ``mseplug.mse`` costs at least 25x less than
``sklearn.metrics.mean_squared_error`` on small inputs, with identical results. The
hand-written NumPy expression is shown for scale. "identical" means bit for bit;
the script exits 1 only if the results differ by more than 1e-12 relative (a wrong
number, not rounding), never on timings.

Run: ``python benchmarks/bench_sklearn.py [--repeat 15]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import mean_squared_error

import mseplug
from mseplug.cli.bench_cases import GOAL
from mseplug.cli.timing import median_time

SIZES = (8, 1000)
TARGET = GOAL["sklearn-mse-small"].value


def contenders(y: Any, p: Any) -> dict[str, Callable[[], Any]]:
    return {
        "mseplug": lambda: mseplug.mse(y, p),
        "sklearn": lambda: mean_squared_error(y, p),
        "numpy": lambda: np.mean((y - p) ** 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per call (median)")
    args = parser.parse_args(argv)

    print(f"numpy {np.__version__}, scikit-learn {sys.modules['sklearn'].__version__}, "
          f"median of {args.repeat} runs, float64")
    header = (f"{'n':>6}  {'mseplug.mse':>12}  {'sklearn MSE':>12}  {'np.mean(d**2)':>13}  "
              f"{'sklearn/mseplug':>15}  {f'>= {TARGET:g}x':>6}  identical")
    print(header)
    print("-" * len(header))
    mismatches = 0
    rng = np.random.default_rng(0)
    for n in SIZES:
        y, p = rng.normal(size=n), rng.normal(size=n)
        calls = contenders(y, p)
        ours, theirs = float(calls["mseplug"]()), float(calls["sklearn"]())
        relative = abs(ours - theirs) / abs(theirs)
        mismatches += relative > 1e-12
        t_ours, t_sklearn, t_numpy = (median_time(calls[name], repeat=args.repeat, budget=0.2)
                                      for name in ("mseplug", "sklearn", "numpy"))
        ratio = t_sklearn / t_ours
        verdict = "yes" if ours == theirs else f"NO: {ours!r} vs {theirs!r} (rel {relative:.1e})"
        print(f"{n:>6}  {t_ours * 1e6:>9.2f} us  {t_sklearn * 1e6:>9.2f} us  "
              f"{t_numpy * 1e6:>10.2f} us  {ratio:>14.1f}x  {'yes' if ratio >= TARGET else 'no':>6}"
              f"  {verdict}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
