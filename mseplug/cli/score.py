"""``mseplug score``: the losses of prediction files, every metric in one streamed pass.

The files are read chunk by chunk (:mod:`mseplug.cli.files`) and each chunk
updates one :class:`~mseplug.Accumulator` per metric, so memory is bounded by
the chunk size, not the file size. A metric that is not decomposable (a median:
``median_absolute_error``, ``d2_absolute_error``, scored only when named) cannot
be streamed: its chunks are kept (:class:`Gathered`) and it is computed in one
call at the end, so its columns must fit in memory. Every problem the user can fix is an
:class:`~mseplug.cli.sources.InputError` with a one-line message naming the file,
the rows and the fix; the command line turns it into exit code 2.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mseplug.cli import files as _files
from mseplug.cli import metrics as _metrics
from mseplug.cli import progress as _progress
from mseplug.cli import sources as _sources
from mseplug.cli.sources import InputError, Source, count

NAN_POLICIES = ("raise", "omit", "propagate")


@dataclass
class Request:
    """What to score: the parsed command line."""

    true: Path
    pred: Path
    metrics: list[str]
    params: dict[str, float] = field(default_factory=dict)
    weights: Path | None = None
    column: str | None = None
    all_columns: bool = False
    nan_policy: str = "raise"
    backend: str = "numpy"
    progress: bool = True


@dataclass
class Scan:
    """What one pass saw in the values, besides the losses."""

    nan: bool = False  # some target or prediction was NaN
    infinite: tuple[str, int] | None = None  # (file, row) of the first infinite value
    skipped_rows: int = 0  # rows with a NaN target or prediction (--nan-policy omit drops them)
    skipped_values: int = 0  # the (row, output) values dropped
    outputs: int = 1


@dataclass
class Result:
    values: dict[str, float]
    rows: int
    columns: list[str] | None
    notes: list[str] = field(default_factory=list)  # one-line "warning: ..." / "note: ..." lines
    skipped: dict[str, dict[str, int]] | None = None  # --nan-policy omit: per metric
    no_header: list[str] = field(default_factory=list)  # CSV files without a header line


class Gathered:
    """A metric that is not decomposable, with an Accumulator's ``update``/``compute``: the
    chunks are kept (copied) and the metric is computed in one call over all of them."""

    def __init__(self, metric: str, backend: Any, **options: Any) -> None:
        self.metric, self.backend, self.options = metric, backend, options
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []

    def update(self, y_true: np.ndarray, y_pred: np.ndarray, *,
               sample_weight: np.ndarray | None = None) -> None:
        self.chunks.append((np.array(y_true), np.array(y_pred),
                            None if sample_weight is None else np.array(sample_weight)))

    def compute(self) -> Any:
        import mseplug

        true, pred = (np.concatenate([chunk[i] for chunk in self.chunks]) for i in (0, 1))
        weights = [chunk[2] for chunk in self.chunks if chunk[2] is not None]
        weight = np.concatenate(weights) if weights else None
        if self.backend.name != "numpy":
            true, pred = self.backend.convert(true, "y_true"), self.backend.convert(pred, "y_pred")
        value = mseplug.get_loss(self.metric)(true, pred, sample_weight=weight, **self.options)
        return self.backend.to_numpy(value)


def score(request: Request) -> Result:
    """Score the files of ``request`` in one pass (two if the weights overflow a float64 sum).

    Each file is opened once, and closed on return.
    """
    with contextlib.ExitStack() as files:
        def source(path: Path, **columns: Any) -> Source:
            return files.enter_context(_files.open_source(path, **columns))

        true = source(request.true, column=request.column, all_columns=request.all_columns)
        pred = source(request.pred, column=request.column, all_columns=request.all_columns)
        if request.all_columns and true.columns and pred.columns:
            if sorted(true.columns) != sorted(pred.columns):
                why = "".join(f"; {one.name} has no header line (its columns are named by position)"
                              for one in (true, pred) if not one.header)
                raise InputError(f"--all-columns: {true.name} has columns {true.columns} but "
                                 f"{pred.name} has {pred.columns}; both files need the same "
                                 f"columns{why}")
            pred.columns = list(true.columns)  # matched by name
        _check_shapes(true, pred)
        weight = None
        if request.weights is not None:
            weight = source(request.weights)
            _check_weights(weight, true)
        values, rows, total, largest, scan = _one_pass(request, true, pred, weight, 1.0)
        if weight is not None and (not math.isfinite(total) or (
                largest > 2.0**32 and not all(math.isfinite(v) for v in values.values()))):
            # Σw overflowed float64 (or made a loss inf): again, with the weights divided by a
            # power of two near the largest, which changes no mean.
            values, rows, _, _, scan = _one_pass(request, true, pred, weight,
                                                 2.0 ** -math.frexp(largest)[1])
    skipped = None
    if request.nan_policy == "omit":
        skipped = {metric: {"rows": scan.skipped_rows, "values": scan.skipped_values}
                   for metric in values}
    no_header = [one.name for one in (true, pred) if not one.header]
    return Result(values, rows, true.columns, _notes(values, request.nan_policy, scan), skipped,
                  no_header)


def _width(source: Source) -> tuple[int, ...]:
    """The shape of one row: ``()`` for one value, ``(k,)`` for ``k`` outputs."""
    if source.shape is not None:
        width = source.shape[1:]
    else:
        width = (len(source.columns or []),)
    return () if width == (1,) else width


def _check_shapes(true: Source, pred: Source) -> None:
    if true.rows is not None and pred.rows is not None and true.rows != pred.rows:
        hint = ""
        for one, other in ((true, pred), (pred, true)):
            if one.shape and len(one.shape) == 2 and one.rows == 1 and other.rows == one.shape[1]:
                hint = (f"; {one.name} is one row of {count(one.shape[1], 'value')}: save it as "
                        f"a column, np.save({one.name!r}, values.reshape(-1))")
        raise InputError(f"{true.name} has {count(true.rows, 'row')} {_shape(true)} but {pred.name} "
                         f"has {count(pred.rows, 'row')} {_shape(pred)}{hint}")
    if _width(true) != _width(pred):
        raise InputError(f"{true.name} rows hold {_values(true)} but {pred.name} rows hold "
                         f"{_values(pred)}; both need the same outputs per row")


def _shape(source: Source) -> str:
    return f"(shape {source.shape})" if source.shape else ""


def _values(source: Source) -> str:
    width = _width(source)
    return "one value" if width == () else f"shape {width}"


def _check_weights(weight: Source, true: Source) -> None:
    if _width(weight) != ():
        found = f"columns {weight.columns}" if weight.columns else _values(weight)
        raise InputError(f"{weight.name}: weights need one value per row, found {found}; "
                         "give a file with a single column of weights")
    if weight.rows is not None and true.rows is not None and weight.rows != true.rows:
        raise InputError(f"{weight.name} has {count(weight.rows, 'weight')} but {true.name} has "
                         f"{count(true.rows, 'row')}; give one weight per row")


def _one_pass(request: Request, true: Source, pred: Source, weight: Source | None,
              weight_scale: float) -> tuple[dict[str, float], int, float, float, Scan]:
    """``(values, rows, Σ weights, largest weight, what the values held)`` of one pass."""
    import mseplug
    from mseplug.api.backends import resolve

    omit_or_propagate = "propagate" if request.nan_policy == "raise" else request.nan_policy
    backend = resolve(None, None, request.backend)
    accumulators = {
        metric: mseplug.Accumulator(metric, nan_policy=omit_or_propagate,
                                    **_metrics.own_params(metric, request.params))
        for metric in request.metrics if _metrics.streamed(metric)
    }
    gathered = {metric: Gathered(metric, backend, nan_policy=omit_or_propagate,
                                 **_metrics.own_params(metric, request.params))
                for metric in request.metrics if not _metrics.streamed(metric)}
    domains = {metric: bounds for metric in request.metrics
               if (bounds := _metrics.bounds_of(metric, request.params))}
    sources = [true, pred] + ([weight] if weight is not None else [])
    streams = [source.chunks(_files.CHUNK_ROWS) for source in sources]
    start, total, largest, scan = 0, 0.0, 0.0, Scan()
    with _progress.Progress(pred.rows, hidden=not request.progress) as progress:
        try:
            for chunk in _sources.aligned(*streams):
                y_true, y_pred, w = chunk[0], chunk[1], (chunk[2] if len(chunk) > 2 else None)
                nan_true = _scan(y_true, true, start, request.nan_policy, scan)
                nan_pred = _scan(y_pred, pred, start, request.nan_policy, scan)
                if nan_true or nan_pred:
                    _count_nan(y_true, y_pred, scan)
                for metric, bounds in domains.items():
                    _metrics.check_domain(metric, bounds, {"y_true": (y_true, true),
                                                           "y_pred": (y_pred, pred)}, start)
                if w is not None:
                    with np.errstate(over="ignore"):
                        total += float(w.sum())
                    largest = max(largest, float(w.max()))
                    w = w * weight_scale if weight_scale != 1.0 else w
                for kept in gathered.values():
                    kept.update(y_true, y_pred, sample_weight=w)
                if backend.name != "numpy":
                    y_true, y_pred = backend.convert(y_true, "y_true"), backend.convert(y_pred, "y_pred")
                for accumulator in accumulators.values():
                    try:
                        accumulator.update(y_true, y_pred, sample_weight=w)
                    except (ValueError, TypeError) as error:
                        names = " / ".join(source.name for source in sources)
                        raise InputError(f"{names} {_span(start, len(y_pred))}: {error}") from None
                start += len(y_pred)
                progress.advance(len(y_pred))
        except _sources.LengthMismatch as error:
            counts = ", ".join(f"{source.name} {number:,}"
                               for source, number in zip(sources, error.counts))
            raise InputError(f"the files have different numbers of rows ({counts}); "
                             "every file needs one line per sample") from None
    if start == 0:
        raise InputError(f"{true.name} and {pred.name} have no rows to score")
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {metric: float(acc.compute()) for metric, acc in accumulators.items()}
        for metric, kept in gathered.items():
            try:
                values[metric] = float(kept.compute())
            except (ValueError, TypeError) as error:
                names = " / ".join(source.name for source in sources)
                raise InputError(f"{names}: {error}") from None
    return {metric: values[metric] for metric in request.metrics}, start, total, largest, scan


def _span(start: int, rows: int) -> str:
    """``"row 5"`` or ``"rows 5-9"`` (1-based) of ``rows`` rows from 0-based ``start``."""
    return f"row {start + 1:,}" if rows == 1 else f"rows {start + 1:,}-{start + rows:,}"


def _scan(chunk: np.ndarray, source: Source, start: int, nan_policy: str, scan: Scan) -> bool:
    """Whether ``chunk`` holds NaN (an error under ``nan_policy="raise"``); notes in ``scan``
    the first infinite value. One sum when every value is finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(chunk, axis=None)):
            return False
    rows = chunk.reshape(len(chunk), -1)
    nan = np.isnan(rows).any(axis=1)
    if nan.any():
        scan.nan = True
        if nan_policy == "raise":
            raise InputError(
                f"{source.name} row {start + int(np.flatnonzero(nan)[0]) + 1:,} is NaN (or an "
                "empty field); pass --nan-policy omit to skip such values or --nan-policy "
                "propagate to get NaN"
            )
    if scan.infinite is None:
        infinite = np.flatnonzero(np.isinf(rows).any(axis=1))
        if len(infinite):
            scan.infinite = (source.name, start + int(infinite[0]) + 1)
    return bool(nan.any())


def _count_nan(y_true: np.ndarray, y_pred: np.ndarray, scan: Scan) -> None:
    """Count the values ``nan_policy="omit"`` drops: those whose target or prediction is NaN."""
    dropped = np.isnan(y_true).reshape(len(y_true), -1) | np.isnan(y_pred).reshape(len(y_pred), -1)
    scan.outputs = dropped.shape[1]
    scan.skipped_values += int(dropped.sum())
    scan.skipped_rows += int(dropped.any(axis=1).sum())


def _names(metrics: list[str], verb: str = "is") -> str:
    """``"mse is"``, ``"mse, mae are"``."""
    return f"{', '.join(metrics)} {verb if len(metrics) == 1 else 'are'}"


def _notes(values: dict[str, float], nan_policy: str, scan: Scan) -> list[str]:
    notes = []
    nan = [metric for metric, value in values.items() if math.isnan(value)]
    inf = [metric for metric, value in values.items() if math.isinf(value)]
    if nan_policy == "omit" and scan.skipped_values:
        skipped = (count(scan.skipped_rows, "row") if scan.outputs == 1 else
                   f"{count(scan.skipped_values, 'value')} in {count(scan.skipped_rows, 'row')}")
        notes.append(f"note: {', '.join(values)}: {skipped} with NaN skipped")
    if scan.infinite is not None:
        name, row = scan.infinite
        results = [f"{_names(inf)} inf"] if inf else []
        if nan and not scan.nan:  # inf - inf, inf * 0: the infinite values made these NaN
            results.append(f"{_names(nan)} NaN")
            nan = []
        so = f", so {' and '.join(results)}" if results else ""
        notes.append(f"warning: {name} row {row:,} holds an infinite value{so}; fix or remove "
                     "the infinite values")
    elif inf:
        notes.append(f"warning: {', '.join(inf)} overflowed float64 to inf: rescale the values "
                     "(MSE scales with the square of a common factor)")
    if nan:
        why = (": every value of an output was NaN" if nan_policy == "omit"
               else ": the files contain NaN (--nan-policy omit skips those values)" if scan.nan
               else "")
        notes.append(f"warning: {_names(nan)} NaN{why}")
    return notes


def format_table(result: Result, request: Request) -> str:
    width = max(len("metric"), *(len(metric) for metric in result.values))
    lines = [f"{'metric':<{width}}  value"]
    lines += [f"{metric:<{width}}  {value:.10g}" for metric, value in result.values.items()]
    what = count(result.rows, "row")
    if result.columns:
        label = "column" if len(result.columns) == 1 else "columns (averaged)"
        what += f", {label} {', '.join(map(repr, result.columns))}"
    if result.no_header:
        what += f" (no header line in {', '.join(dict.fromkeys(result.no_header))})"
    if request.weights is not None:
        what += f", weighted by {request.weights.name}"
    if result.skipped is not None:
        skipped = set(map(str, result.skipped.values()))
        if len(skipped) == 1:  # the same rows for every metric
            rows = next(iter(result.skipped.values()))["rows"]
            what += f", {count(rows, 'row')} with NaN skipped"
    lines.append(f"({what}; nan_policy={request.nan_policy})")
    return "\n".join(lines)


def format_json(result: Result, request: Request) -> str:
    """Valid JSON: NaN and inf are ``null`` (the notes on stderr say why).

    ``nan_skipped`` (``--nan-policy omit`` only) holds, per metric, the rows and the
    values (a row has one per output) dropped because their target or prediction was NaN.
    """
    def number(value: float) -> Any:
        return value if math.isfinite(value) else None

    report: dict[str, Any] = {
        "rows": result.rows, "columns": result.columns, "nan_policy": request.nan_policy,
        "metrics": {metric: number(value) for metric, value in result.values.items()},
    }
    if result.skipped is not None:
        report["nan_skipped"] = result.skipped
    return json.dumps(report, allow_nan=False)


def run(request: Request, output_format: str) -> tuple[str, list[str]]:
    """The report to print, and one-line notes for stderr (``"warning: ..."`` or ``"note:
    ..."``), including any warning raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score(request)
    raised = ["warning: " + " ".join(str(w.message).split()) for w in caught]
    notes = list(dict.fromkeys(raised)) + result.notes
    text = format_json(result, request) if output_format == "json" else format_table(result, request)
    return text, notes
