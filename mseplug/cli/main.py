"""The ``mseplug`` command line: ``demo``, ``score`` and ``bench``.

Exit codes: 0 on success; 2 with a one-line message on stderr for anything the
user can fix (a missing file or extra, an unknown option, column or metric,
files of different lengths, a value that is not a number, ...); 130 on Ctrl-C
(one line, no traceback); 141 (128 + SIGPIPE, what ``yes | head -1`` gives) and
no message when the reader of the output went away (``mseplug score ... | head
-c1``). A traceback means a bug in mseplug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 2, 130, 141

EXIT_CODES = """\
exit status: 0 done; 2 a problem with the input or the options (one line on stderr);
130 interrupted (Ctrl-C); 141 the output's reader closed the pipe (as when killed by SIGPIPE)"""

SCORE_HELP = """\
Score prediction files against targets, every metric in one streamed pass: memory stays
bounded by the chunk size, whatever the file size, and each file is read once (a named
pipe works). Tables (.csv, .parquet) need pyarrow: pip install 'mseplug[files]'."""

CSV_HELP = """\
CSV files: the first line holds the column names, unless it is a row of numbers (every field
a number or empty, the first not empty): then the file has no header line and its columns are
named by position, "1", "2", ... (--column 2 is the second). np.savetxt's output is read
either way. Column names must be unique (a duplicated name is an error)."""


def mseplug_losses() -> tuple[str, ...]:
    import mseplug

    return mseplug.losses()


def _metrics_help() -> str:
    """The default metrics and the losses with a domain, from the registry."""
    import textwrap

    from mseplug.cli import metrics

    domains = [f"{name} ({metrics.domain_text(name)})" for name in metrics.bounded_metrics()]
    text = (f"Metrics: without --metric, every registered loss of the residual defined for all "
            f"real numbers: {', '.join(metrics.default_metrics())}.")
    named = [name for name in mseplug_losses() if name not in metrics.default_metrics()
             and name not in metrics.bounded_metrics()]
    if named:
        text += f" Losses of the pair without a domain are scored when named: {', '.join(named)}."
    if domains:
        text += (f" A loss with a domain is scored only when named, and a value outside it is "
                 f"an error naming the file and the row: {', '.join(domains)}.")
    return textwrap.fill(text, width=92)


class _Parser(argparse.ArgumentParser):
    """argparse, with a one-line error (usage goes to ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see "
                              f"{self.prog} --help)\n")


def _add_format(command: argparse.ArgumentParser, json_help: str) -> None:
    """``--format {table,json}``, and ``--json`` as its alias: one spelling in every subcommand."""
    output = command.add_mutually_exclusive_group()
    output.add_argument("--format", choices=("table", "json"), default="table",
                        help=f"table (default) or json: {json_help}")
    output.add_argument("--json", dest="format", action="store_const", const="json",
                        help="the same as --format json")


def _parser() -> argparse.ArgumentParser:
    from mseplug import __version__

    parser = _Parser(
        prog="mseplug", description="Regression losses, the same on every backend.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mseplug {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="house prices and a small regression on every backend")
    score = commands.add_parser(
        "score", help="evaluate prediction files, streamed in chunks",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=SCORE_HELP,
        epilog=f"{_metrics_help()}\n\n{CSV_HELP}\n\n{EXIT_CODES}")
    score.add_argument("true", type=Path, help="targets: .npy, .csv or .parquet")
    score.add_argument("pred", type=Path, help="predictions, same rows and columns")
    score.add_argument("--metric", action="append", default=None, metavar="NAME[,NAME...]",
                       help="losses to compute, comma-separated, repeatable (--metric mse "
                            "--metric mae = --metric mse,mae); default: every registered loss "
                            "defined for all real numbers (see below)")
    score.add_argument("--weights", type=Path, help="sample weights, one per row (one column)")
    score.add_argument("--column", help="the column to score in .csv/.parquet files")
    score.add_argument("--all-columns", action="store_true",
                       help="score every column of the tables as an output and average them")
    score.add_argument("--nan-policy", choices=("raise", "omit", "propagate"), default="raise",
                       help="NaN or empty values: stop and name the row (default), skip them "
                            "(counted in a note, and in the JSON's nan_skipped), or let the "
                            "metrics be NaN")
    score.add_argument("--backend", default="numpy", help="backend computing each chunk")
    score.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a loss parameter, e.g. delta=2 (Huber) or alpha=0.9 (pinball); "
                            "each metric takes the parameters it has")
    _add_format(score, "one object, NaN and inf as null")
    score.add_argument("--no-progress", action="store_true",
                       help="never show the progress bar (it shows only on a terminal, after 1 s)")
    bench = commands.add_parser("bench", help="the performance table on this machine",
                                epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--quick", action="store_true", help="smaller inputs, fewer repeats (< 10 s)")
    _add_format(bench, "the measurements as one JSON object on stdout (the table goes to stderr)")
    bench.add_argument("--scaling", action="store_true",
                       help="also time mse against n = 10 ... 10^8 (10^5 with --quick) on every "
                            "backend and its anchor")
    bench.add_argument("--output", type=Path, help="also write the table (Markdown) here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (see the module's docstring)."""
    try:
        args = _parser().parse_args(argv)
    except KeyboardInterrupt:
        return _interrupted("mseplug")
    command = f"mseplug {args.command}"
    try:
        try:
            code = _run(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except (ValueError, TypeError) as error:
            return _error(command, error)
        except BrokenPipeError:
            raise
        except OSError as error:
            return _error(command, error)
    except KeyboardInterrupt:
        return _interrupted(command)
    except BrokenPipeError:
        return _broken_pipe()


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from mseplug.cli import demo as _demo

        return _demo.run()
    if args.command == "score":
        return _score(args)
    from mseplug.cli import bench as _bench

    return _bench.run(quick=args.quick, output=args.output, as_json=args.format == "json",
                      scaling=args.scaling)


def _error(command: str, error: BaseException) -> int:
    message = " ".join(str(error).split())
    print(f"{command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _interrupted(command: str) -> int:
    try:
        print(f"{command}: interrupted", file=sys.stderr)
    except (OSError, ValueError):
        pass
    return EXIT_INTERRUPTED


def _broken_pipe() -> int:
    """The output's reader went away: stop quietly, as a tool killed by SIGPIPE would.

    Whatever is still buffered for stdout goes to /dev/null, so Python's flush at exit
    has nothing to complain about.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
        pass
    return EXIT_BROKEN_PIPE


def _score(args: argparse.Namespace) -> int:
    from mseplug.cli import metrics as _metrics
    from mseplug.cli import score as _score

    metrics = _metrics.metrics_from(args.metric)
    request = _score.Request(
        true=args.true, pred=args.pred, metrics=metrics,
        params=_metrics.params_from(args.param, metrics), weights=args.weights,
        column=args.column, all_columns=args.all_columns, nan_policy=args.nan_policy,
        backend=args.backend, progress=not args.no_progress,
    )
    report, notes = _score.run(request, args.format)
    for note in notes:
        print(f"mseplug score: {note}", file=sys.stderr)
    print(report)
    return 0
