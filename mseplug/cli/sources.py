"""What ``mseplug score`` streams, whatever the format: sources of row chunks, and their errors.

A :class:`Source` yields float64 NumPy chunks of rows; :func:`aligned` zips
several sources whose chunk sizes differ. The formats live in
:mod:`mseplug.cli.files`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """A file that cannot be scored as given; the message is one line and names the fix."""


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``"1 row"``, ``"0 rows"``, ``"1,000 rows"``: a count and its noun, singular only for 1."""
    return f"{number:,} {singular if number == 1 else (plural or singular + 's')}"


class Source:
    """One file's values: ``rows`` (``None`` when unknown before reading), the ``columns``
    used (``None`` for ``.npy``), and :meth:`chunks`.

    ``header`` is False for a CSV file without a header line (its columns are then
    named by position, ``"1"``, ``"2"``, ...). A source holds its file open from
    construction to :meth:`close`: every file is opened once, so a named pipe works.
    """

    def __init__(self, path: Path, rows: int | None, columns: list[str] | None,
                 shape: tuple[int, ...] | None = None, *, header: bool = True) -> None:
        self.path, self.rows, self.columns, self.shape = path, rows, columns, shape
        self.header = header

    @property
    def name(self) -> str:
        return self.path.name

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Close the file (idempotent)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def choose_columns(path: Path, names: list[str], column: str | None, all_columns: bool) -> list[str]:
    """``[column]``, the only column, or (``all_columns``) every column; else an InputError.

    A chosen name that two columns share is an error: which one was meant is unknowable.
    """
    def label(name: str) -> str:
        if names.count(name) > 1:
            return f" (named {names.count(name)} times)"
        return " (unnamed: a saved index?)" if not name.strip() else ""

    shown = ", ".join(repr(name) + label(name) for name in dict.fromkeys(names))
    if column is not None:
        if column not in names:
            raise InputError(f"--column {column!r} is not a column of {path.name}; its columns: {shown}")
        chosen = [column]
    elif len(names) == 1 or (all_columns and names):
        chosen = names
    elif not names:
        raise InputError(f"{path}: no columns found")
    else:
        raise InputError(
            f"{path.name} has {count(len(names), 'column')} ({shown}); choose one with --column "
            "NAME, or pass --all-columns to score every column as an output and average them"
        )
    for name in chosen:
        if names.count(name) > 1:
            raise InputError(
                f"{path.name} has {names.count(name)} columns named {name!r}; give each column "
                "its own name (a column's name must say which one to score)"
            )
    return chosen


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def aligned(*streams: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, ...]]:
    """Zip chunk streams whose chunk sizes differ into equal-length tuples of chunks.

    A stream that ends before the others raises :class:`LengthMismatch` with
    the rows each stream had (the longer ones are read to their end to count).
    """
    heads: list[np.ndarray | None] = [None] * len(streams)
    counts = [0] * len(streams)
    while True:
        for i, stream in enumerate(streams):
            head = heads[i]
            if head is None or len(head) == 0:
                head = heads[i] = next(stream, None)
                counts[i] += 0 if head is None else len(head)
        if all(head is None for head in heads):
            return
        if any(head is None for head in heads):
            for i, stream in enumerate(streams):
                if heads[i] is not None:
                    counts[i] += sum(len(chunk) for chunk in stream)
            raise LengthMismatch(counts)
        size = min(len(head) for head in heads if head is not None)
        if size:
            yield tuple(head[:size] for head in heads if head is not None)
        heads = [None if head is None else head[size:] for head in heads]


class LengthMismatch(InputError):
    """Streams of different lengths; ``counts`` holds each stream's rows."""

    def __init__(self, counts: list[int]) -> None:
        super().__init__(f"the files have different numbers of rows: {counts}")
        self.counts = counts
