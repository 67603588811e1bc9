"""The ``mseplug`` command line: ``demo``, ``score`` and ``bench``.

Exit codes: 0 on success, 2 with a one-line message on stderr for anything the
user can fix (a missing file or extra, an unknown column or metric, files of
different lengths, a value that is not a number, ...). A traceback means a
bug in mseplug.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    from mseplug import __version__

    parser = argparse.ArgumentParser(
        prog="mseplug", description="Regression losses, the same on every backend."
    )
    parser.add_argument("--version", action="version", version=f"mseplug {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="house prices and a small regression on every backend")
    score = commands.add_parser(
        "score", help="evaluate prediction files, streamed in chunks",
        description="Score prediction files against targets in one streamed pass; memory "
                    "stays bounded by the chunk size, whatever the file size. Tables (.csv, "
                    ".parquet) need pyarrow: pip install 'mseplug[files]'. Exit code 2 with "
                    "a one-line message for any problem with the input.")
    score.add_argument("true", type=Path, help="targets: .npy, .csv or .parquet")
    score.add_argument("pred", type=Path, help="predictions, same rows and columns")
    score.add_argument("--metric", default=None,
                       help="comma-separated losses (default: every registered loss)")
    score.add_argument("--weights", type=Path, help="sample weights, one per row (one column)")
    score.add_argument("--column", help="the column to score in .csv/.parquet files")
    score.add_argument("--all-columns", action="store_true",
                       help="score every column of the tables as an output and average them")
    score.add_argument("--nan-policy", choices=("raise", "omit", "propagate"), default="raise",
                       help="NaN or empty values: stop and name the row (default), skip them, "
                            "or let the metrics be NaN")
    score.add_argument("--backend", default="numpy", help="backend computing each chunk")
    score.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a loss parameter, e.g. delta=2 (Huber) or alpha=0.9 (pinball); "
                            "each metric takes the parameters it has")
    score.add_argument("--format", choices=("table", "json"), default="table",
                       help="json: one object, NaN and inf as null")
    score.add_argument("--no-progress", action="store_true",
                       help="never show the progress bar (it shows only on a terminal, after 1 s)")
    bench = commands.add_parser("bench", help="the performance table on this machine")
    bench.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats (< 10 s)")
    bench.add_argument("--json", action="store_true",
                       help="print the measurements as one JSON object on stdout (the table "
                            "goes to stderr)")
    bench.add_argument("--scaling", action="store_true",
                       help="also time mse against n = 10 ... 10^8 (10^5 with --quick) on every "
                            "backend and its anchor")
    bench.add_argument("--output", type=Path, help="also write the table (Markdown) here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from mseplug import _demo

            return _demo.run()
        if args.command == "score":
            return _score(args)
        from mseplug import _bench

        return _bench.run(quick=args.quick, output=args.output, as_json=args.json,
                          scaling=args.scaling)
    except (ValueError, TypeError, OSError) as error:
        message = " ".join(str(error).split())
        print(f"mseplug {args.command}: error: {message}", file=sys.stderr)
        return 2


def _score(args: argparse.Namespace) -> int:
    from mseplug import _score

    metrics = _score.metrics_from(args.metric)
    request = _score.Request(
        true=args.true, pred=args.pred, metrics=metrics,
        params=_score.params_from(args.param, metrics), weights=args.weights,
        column=args.column, all_columns=args.all_columns, nan_policy=args.nan_policy,
        backend=args.backend, progress=not args.no_progress,
    )
    report, notes = _score.run(request, args.format)
    for note in notes:
        print(f"mseplug score: warning: {note}", file=sys.stderr)
    print(report)
    return 0
