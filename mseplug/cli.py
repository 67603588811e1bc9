"""The ``mseplug`` command line: ``demo``, ``score`` and ``bench``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mseplug", description="Regression losses, the same on every backend."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="house prices and a small regression on every backend")
    score = commands.add_parser("score", help="evaluate prediction files, streamed in chunks")
    score.add_argument("true", type=Path, help="targets: .npy, .csv or .parquet")
    score.add_argument("pred", type=Path, help="predictions, same rows and columns")
    score.add_argument("--metric", default=None,
                       help="comma-separated losses (default: every registered loss)")
    score.add_argument("--weights", type=Path, help="sample weights, one per row")
    score.add_argument("--column", help="the column to use from .csv/.parquet files")
    score.add_argument("--backend", default="numpy", help="backend computing each chunk")
    score.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a loss parameter, e.g. delta=2 (Huber) or alpha=0.9 (pinball); "
                            "each metric takes the parameters it has")
    score.add_argument("--format", choices=("table", "json"), default="table")
    score.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    bench = commands.add_parser("bench", help="the performance table on this machine")
    bench.add_argument("--quick", action="store_true", help="fewer repeats, smaller inputs")
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

        return _bench.run(quick=args.quick, output=args.output)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"mseplug {args.command}: error: {error}", file=sys.stderr)
        return 2


def _score(args: argparse.Namespace) -> int:
    import mseplug
    from mseplug import _files, _progress
    from mseplug._backend_registry import resolve

    known = mseplug.losses()
    metrics = list(known) if args.metric is None else [
        m.strip() for m in args.metric.split(",") if m.strip()]
    unknown = sorted(set(metrics) - set(known))
    if unknown or not metrics:
        raise ValueError(f"--metric {args.metric!r}: unknown {unknown}; choose from {known}")
    params = _params(args.param)
    takes = {m: mseplug.get_loss(m).loss.params for m in metrics}
    unused = sorted(set(params) - {name for names in takes.values() for name in names})
    if unused:
        raise ValueError(f"--param {unused[0]}: none of the metrics {metrics} takes it")
    for path in (args.true, args.pred, args.weights):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    accumulators = {
        m: mseplug.Accumulator(m, **{k: v for k, v in params.items() if k in takes[m]})
        for m in metrics
    }
    streams = [_files.read_chunks(args.true, column=args.column),
               _files.read_chunks(args.pred, column=args.column)]
    if args.weights is not None:
        streams.append(_files.read_chunks(args.weights))
    backend = resolve(None, None, args.backend)
    progress = _progress.Progress(_files.row_count(args.pred), hidden=args.no_progress)
    for chunk in _files.aligned(*streams):
        y_true, y_pred = chunk[0], chunk[1]
        weight = chunk[2] if len(chunk) > 2 else None
        if backend.name != "numpy":
            y_true, y_pred = backend.convert(y_true, "y_true"), backend.convert(y_pred, "y_pred")
        for accumulator in accumulators.values():
            accumulator.update(y_true, y_pred, sample_weight=weight)
        progress.advance(len(y_pred))
    progress.close()
    results = {m: float(a.compute()) for m, a in accumulators.items()}
    rows = next(iter(accumulators.values())).count
    if args.format == "json":
        print(json.dumps({"rows": rows, **results}))
    else:
        print(f"{'metric':<8}  value")
        for metric, value in results.items():
            print(f"{metric:<8}  {value:.10g}")
        print(f"({rows} rows)")
    return 0


def _params(settings: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for setting in settings:
        name, equals, value = setting.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            equals = ""
        if not equals or not name.strip():
            raise ValueError(f"--param {setting!r}: expected NAME=NUMBER, e.g. delta=2")
    return params
