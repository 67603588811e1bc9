"""``mseplug score`` against the file readers alone: rows per second and peak memory per format.

For each format it writes a pair of ``--rows``-row files (one float64 column,
``price``) to a temporary folder and measures, side by side in this process
on the same files (warm page cache, ``mseplug.cli.timing``):

* the reader alone: both files read whole with ``np.load``,
  ``pyarrow.csv.read_csv`` or ``pyarrow.parquet.read_table`` (the same column);
* ``mseplug score`` of the pair with ``--metric mse`` and with its default metrics (every
  loss defined for all real numbers; the data are normal draws).

The goal: scoring within 1.5x of the reader's time. Peak memory is measured
again in a child process per run, which reports its own ``VmHWM`` (Linux).

Run: ``python benchmarks/bench_score.py [--rows 10000000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

import mseplug
from mseplug.cli import score as _score
from mseplug.cli.metrics import default_metrics
from mseplug.cli.timing import median_time

GOAL = 1.5
FORMATS = (".npy", ".csv", ".parquet")


def write_pair(folder: Path, suffix: str, rows: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    paths = []
    schema = pa.schema([("price", pa.float64())])
    for name, seed in (("t", 0), ("p", 1)):
        path = folder / f"{name}{suffix}"
        generator = np.random.default_rng(seed)
        if suffix == ".npy":
            np.save(path, generator.standard_normal(rows))
        else:
            writer = pq.ParquetWriter(path, schema) if suffix == ".parquet" else pcsv.CSVWriter(path, schema)
            for start in range(0, rows, 1 << 20):
                values = np.round(generator.standard_normal(min(1 << 20, rows - start)), 6)
                writer.write_table(pa.table({"price": values}, schema=schema))
            writer.close()
        paths.append(path)
    return paths[0], paths[1]


READ = {
    ".npy": "np.load",
    ".csv": "pyarrow.csv.read_csv",
    ".parquet": "pyarrow.parquet.read_table",
}


def read_whole(path: Path) -> Any:
    """The reader alone: the file's ``price`` column in memory."""
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(include_columns=["price"]))
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=["price"])


CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    import bench_score
    what, true, pred = sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    if what == "reader":
        bench_score.read_whole(true), bench_score.read_whole(pred)
    else:
        from mseplug.cli.main import main
        main(["score", str(true), str(pred), "--metric", what, "--format", "json", "--no-progress"])
    with open("/proc/self/status") as status:
        print(json.dumps(next(int(line.split()[1]) / 1024 for line in status
                              if line.startswith("VmHWM:"))))
""")


def peak_mb(what: str, true: Path, pred: Path) -> float | None:
    """Peak RSS in MB of one run in a fresh child (``None`` where ``/proc`` is missing)."""
    result = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), what,
                             str(true), str(pred)], capture_output=True, text=True, timeout=1200)
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    args = parser.parse_args(argv)
    every = default_metrics()
    print(f"mseplug {mseplug.__version__}, {args.rows:,} rows per file (two files per run), "
          f"median of {args.repeat}; goal: score within {GOAL}x of the reader alone\n")
    header = (f"{'format':<9}{'reader':<28}{'reader':>14}{'score mse':>14}{'ratio':>7}"
              f"{'default set':>14}{'ratio':>7}   peak MB: reader / mse / default set")
    print(header)
    print("-" * len(header))
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for suffix in FORMATS:
            true, pred = write_pair(Path(folder), suffix, args.rows)

            def reader(true: Path = true, pred: Path = pred) -> Any:
                return read_whole(true), read_whole(pred)

            def scorer(metrics: list[str], true: Path = true, pred: Path = pred) -> Any:
                return _score.score(_score.Request(true, pred, metrics, progress=False))

            t_read = median_time(reader, repeat=args.repeat, budget=0)
            t_mse = median_time(lambda: scorer(["mse"]), repeat=args.repeat, budget=0)
            t_all = median_time(lambda: scorer(every), repeat=args.repeat, budget=0)
            peaks = [peak_mb(what, true, pred) for what in ("reader", "mse", ",".join(every))]
            row = {"format": suffix, "reader": READ[suffix], "rows": args.rows,
                   "reader_rows_per_s": args.rows / t_read, "mse_rows_per_s": args.rows / t_mse,
                   "all_rows_per_s": args.rows / t_all, "mse_ratio": t_mse / t_read,
                   "all_ratio": t_all / t_read, "peak_mb": dict(zip(("reader", "mse", "all"), peaks))}
            results.append(row)
            shown = " / ".join("?" if p is None else f"{p:.0f}" for p in peaks)
            print(f"{suffix:<9}{READ[suffix]:<28}{row['reader_rows_per_s'] / 1e6:>9.1f} Mr/s"
                  f"{row['mse_rows_per_s'] / 1e6:>9.1f} Mr/s{row['mse_ratio']:>6.2f}x"
                  f"{row['all_rows_per_s'] / 1e6:>9.1f} Mr/s{row['all_ratio']:>6.2f}x   {shown}",
                  flush=True)
            for path in (true, pred):
                path.unlink()
    print("\nMr/s: million rows per second; ratio: score time / reader time (goal <= "
          f"{GOAL}); the reader holds both columns in memory, score streams them.")
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
