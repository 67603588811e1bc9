"""``mseplug score``: the losses of prediction files, every metric in one streamed pass.

The files are read chunk by chunk (:mod:`mseplug._files`) and each chunk
updates one :class:`~mseplug.Accumulator` per metric, so memory is bounded by
the chunk size, not the file size. Every problem the user can fix is an
:class:`~mseplug._sources.InputError` with a one-line message naming the file,
the rows and the fix; the command line turns it into exit code 2.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mseplug import _files, _progress, _sources
from mseplug._sources import InputError, Source

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
class Result:
    values: dict[str, float]
    rows: int
    columns: list[str] | None
    notes: list[str] = field(default_factory=list)  # one-line warnings for stderr


def metrics_from(text: str | None) -> list[str]:
    """The ``--metric`` list: every registered loss by default; unknown names are an error."""
    import mseplug

    known = mseplug.losses()
    if text is None:
        return list(known)
    metrics = [name.strip() for name in text.split(",") if name.strip()]
    if not metrics:
        raise InputError(f"--metric {text!r} names no metric; choose from {', '.join(known)}")
    unknown = [name for name in metrics if name not in known]
    if unknown:
        raise InputError(f"--metric: unknown {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(known)}")
    return list(dict.fromkeys(metrics))


def params_from(settings: Sequence[str], metrics: Sequence[str]) -> dict[str, float]:
    """``--param NAME=VALUE`` settings; each must be a parameter of at least one metric."""
    import mseplug

    params: dict[str, float] = {}
    for setting in settings:
        name, equals, value = (part.strip() for part in setting.partition("="))
        try:
            params[name] = float(value)
        except ValueError:
            equals = ""
        if not equals or not name:
            raise InputError(f"--param {setting!r}: expected NAME=NUMBER, e.g. delta=2")
    takes = {name for metric in metrics for name in mseplug.get_loss(metric).loss.params}
    unused = sorted(set(params) - takes)
    if unused:
        raise InputError(f"--param {unused[0]}: none of the metrics {', '.join(metrics)} takes it")
    return params


def score(request: Request) -> Result:
    """Score the files of ``request`` in one pass (two if the weights overflow a float64 sum)."""
    true = _files.open_source(request.true, column=request.column, all_columns=request.all_columns)
    pred = _files.open_source(request.pred, column=request.column, all_columns=request.all_columns)
    if request.all_columns and true.columns and pred.columns:
        if sorted(true.columns) != sorted(pred.columns):
            raise InputError(f"--all-columns: {true.name} has columns {true.columns} but {pred.name} "
                             f"has {pred.columns}; both files need the same columns")
        pred.columns = list(true.columns)  # matched by name
    _check_shapes(true, pred)
    weight = None
    if request.weights is not None:
        weight = _files.open_source(request.weights)
        _check_weights(weight, true)
    values, rows, total, largest = _one_pass(request, true, pred, weight, 1.0)
    if weight is not None and (not math.isfinite(total) or (
            largest > 2.0**32 and not all(math.isfinite(v) for v in values.values()))):
        # Σw overflowed float64 (or made a loss inf): again, with the weights divided by a
        # power of two near the largest, which changes no mean.
        values, rows, _, _ = _one_pass(request, true, pred, weight, 2.0 ** -math.frexp(largest)[1])
    return Result(values, rows, true.columns, _notes(values, request.nan_policy))


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
                hint = (f"; {one.name} is one row of {one.shape[1]} values: save it as a column, "
                        f"np.save({one.name!r}, values.reshape(-1))")
        raise InputError(f"{true.name} has {_rows(true.rows)} {_shape(true)} but {pred.name} has "
                         f"{_rows(pred.rows)} {_shape(pred)}{hint}")
    if _width(true) != _width(pred):
        raise InputError(f"{true.name} rows hold {_values(true)} but {pred.name} rows hold "
                         f"{_values(pred)}; both need the same outputs per row")


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


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
        raise InputError(f"{weight.name} has {weight.rows:,} weights but {true.name} has "
                         f"{true.rows:,} rows; give one weight per row")


def _one_pass(request: Request, true: Source, pred: Source, weight: Source | None,
              weight_scale: float) -> tuple[dict[str, float], int, float, float]:
    """``(values, rows, Σ weights, largest weight)`` of one pass over the files."""
    import mseplug
    from mseplug._backend_registry import resolve

    omit_or_propagate = "propagate" if request.nan_policy == "raise" else request.nan_policy
    accumulators = {
        metric: mseplug.Accumulator(metric, nan_policy=omit_or_propagate, **{
            name: value for name, value in request.params.items()
            if name in mseplug.get_loss(metric).loss.params})
        for metric in request.metrics
    }
    backend = resolve(None, None, request.backend)
    sources = [true, pred] + ([weight] if weight is not None else [])
    streams = [source.chunks(_files.CHUNK_ROWS) for source in sources]
    start, total, largest = 0, 0.0, 0.0
    with _progress.Progress(pred.rows, hidden=not request.progress) as progress:
        try:
            for chunk in _sources.aligned(*streams):
                y_true, y_pred, w = chunk[0], chunk[1], (chunk[2] if len(chunk) > 2 else None)
                if request.nan_policy == "raise":
                    _no_nan(y_true, true, start)
                    _no_nan(y_pred, pred, start)
                if w is not None:
                    with np.errstate(over="ignore"):
                        total += float(w.sum())
                    largest = max(largest, float(w.max()))
                    w = w * weight_scale if weight_scale != 1.0 else w
                if backend.name != "numpy":
                    y_true, y_pred = backend.convert(y_true, "y_true"), backend.convert(y_pred, "y_pred")
                for accumulator in accumulators.values():
                    try:
                        accumulator.update(y_true, y_pred, sample_weight=w)
                    except (ValueError, TypeError) as error:
                        names = " / ".join(source.name for source in sources)
                        raise InputError(f"{names} rows {start + 1:,}-{start + len(y_pred):,}: "
                                         f"{error}") from None
                start += len(y_pred)
                progress.advance(len(y_pred))
        except _sources.LengthMismatch as error:
            counts = ", ".join(f"{source.name} {count:,}" for source, count in zip(sources, error.counts))
            raise InputError(f"the files have different numbers of rows ({counts}); "
                             "every file needs one line per sample") from None
    if start == 0:
        raise InputError(f"{true.name} and {pred.name} have no rows to score")
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {metric: float(acc.compute()) for metric, acc in accumulators.items()}
    return values, start, total, largest


def _no_nan(chunk: np.ndarray, source: Source, start: int) -> None:
    if np.isnan(np.add.reduce(chunk, axis=None)) and np.isnan(chunk).any():
        row = int(np.flatnonzero(np.isnan(chunk).reshape(len(chunk), -1).any(axis=1))[0])
        raise InputError(
            f"{source.name} row {start + row + 1:,} is NaN (or an empty field); "
            "pass --nan-policy omit to skip such values or --nan-policy propagate to get NaN"
        )


def _notes(values: dict[str, float], nan_policy: str) -> list[str]:
    notes = []
    nan = [metric for metric, value in values.items() if math.isnan(value)]
    if nan:
        why = ("every value of an output was NaN" if nan_policy == "omit"
               else "the files contain NaN (--nan-policy omit skips those values)")
        notes.append(f"{', '.join(nan)} {'is' if len(nan) == 1 else 'are'} NaN: {why}")
    inf = [metric for metric, value in values.items() if math.isinf(value)]
    if inf:
        notes.append(f"{', '.join(inf)} overflowed float64 to inf: rescale the values "
                     "(MSE scales with the square of a common factor)")
    return notes


def format_table(result: Result, request: Request) -> str:
    width = max(len("metric"), *(len(metric) for metric in result.values))
    lines = [f"{'metric':<{width}}  value"]
    lines += [f"{metric:<{width}}  {value:.10g}" for metric, value in result.values.items()]
    what = f"{result.rows:,} rows"
    if result.columns:
        label = "column" if len(result.columns) == 1 else "columns (averaged)"
        what += f", {label} {', '.join(map(repr, result.columns))}"
    if request.weights is not None:
        what += f", weighted by {request.weights.name}"
    lines.append(f"({what}; nan_policy={request.nan_policy})")
    return "\n".join(lines)


def format_json(result: Result, request: Request) -> str:
    """Valid JSON: NaN and inf are ``null`` (the notes on stderr say why)."""
    def number(value: float) -> Any:
        return value if math.isfinite(value) else None

    return json.dumps({
        "rows": result.rows, "columns": result.columns, "nan_policy": request.nan_policy,
        "metrics": {metric: number(value) for metric, value in result.values.items()},
    }, allow_nan=False)


def run(request: Request, output_format: str) -> tuple[str, list[str]]:
    """The report to print, and one-line notes (including any warning raised) for stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score(request)
    notes = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught)) + result.notes
    text = format_json(result, request) if output_format == "json" else format_table(result, request)
    return text, notes
