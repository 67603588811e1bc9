"""The medians of the regression family on NumPy against scikit-learn's, at 10⁷ float64.

``mseplug.median_absolute_error`` and ``mseplug.d2_absolute_error`` against
``sklearn.metrics.median_absolute_error`` and ``d2_absolute_error_score`` on
``mseplug.cli.bench_cases.family_data`` (the data ``mseplug bench`` times them
on), the median of interleaved repeats (``mseplug.cli.timing.interleaved``:
each timing after an untimed warm-up call, the contenders taking turns, so a
neighbour's load falls on both). The goal, ``mseplug bench``'s for the family:
at least 2x faster. The median absolute error is ``numpy.median``'s (and so
scikit-learn's) bit for bit; the script exits 1 if a value differs (the median
absolute error by any bit, the D² score by more than 1e-12 relative), never on
timings.

Run: ``python benchmarks/bench_median.py [--n 1e7] [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import numpy as np
import sklearn.metrics

import mseplug
from mseplug.api.registry import get_record
from mseplug.cli.bench_cases import FAMILY_GOAL, family_data, relative_difference
from mseplug.cli.timing import interleaved

CASES = {"median_absolute_error": ("median_absolute_error", 0.0),
         "d2_absolute_error": ("d2_absolute_error_score", 1e-12)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=float, default=1e7, help="elements (float64)")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (median)")
    args = parser.parse_args(argv)
    n = int(args.n)
    print(f"numpy {np.__version__}, scikit-learn {sklearn.__version__}, n={n} float64, "
          f"median of {args.repeats} interleaved repeats")
    header = (f"{'metric':<22}  {'mseplug':>10}  {'sklearn':>10}  {'sklearn/mseplug':>15}  "
              f"{f'>= {FAMILY_GOAL:g}x':>6}  same value")
    print(header)
    print("-" * len(header))
    mismatches = 0
    for name, (anchor, rtol) in CASES.items():
        y, p = family_data(get_record(name), n)
        ours, theirs = mseplug.get_loss(name), getattr(sklearn.metrics, anchor)
        times = interleaved({"mseplug": partial(ours, y, p), "sklearn": partial(theirs, y, p)},
                            args.repeats)
        a, b = float(ours(y, p)), float(theirs(y, p))
        difference = relative_difference(a, b)
        same = a == b if rtol == 0 else difference <= rtol
        mismatches += not same
        ratio = times["sklearn"] / times["mseplug"]
        verdict = ("bit for bit" if a == b else f"to {difference:.1e}") if same else \
            f"NO: {a!r} vs {b!r}"
        print(f"{name:<22}  {times['mseplug'] * 1e3:>7.1f} ms  {times['sklearn'] * 1e3:>7.1f} ms  "
              f"{ratio:>14.2f}x  {'yes' if ratio >= FAMILY_GOAL else 'no':>6}  {verdict}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
