"""What ``mseplug score`` streams, whatever the format: sources of row chunks, and their errors.

A :class:`Source` yields float64 NumPy chunks of rows; :func:`aligned` zips
several sources whose chunk sizes differ. The formats live in
:mod:`mseplug._files`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np


class InputError(ValueError):
    """A file that cannot be scored as given; the message is one line and names the fix."""


class Source:
    """One file's values: ``rows`` (``None`` when unknown before reading), the ``columns``
    used (``None`` for ``.npy``), and :meth:`chunks`."""

    def __init__(self, path: Path, rows: int | None, columns: list[str] | None,
                 shape: tuple[int, ...] | None = None) -> None:
        self.path, self.rows, self.columns, self.shape = path, rows, columns, shape

    @property
    def name(self) -> str:
        return self.path.name

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError


def choose_columns(path: Path, names: list[str], column: str | None, all_columns: bool) -> list[str]:
    """``[column]``, the only column, or (``all_columns``) every column; else an InputError."""
    shown = ", ".join(repr(name) + (" (unnamed: a saved index?)" if not name.strip() else "")
                      for name in names)
    if column is not None:
        if column not in names:
            raise InputError(f"--column {column!r} is not a column of {path.name}; its columns: {shown}")
        return [column]
    if len(names) == 1 or (all_columns and names):
        return names
    if not names:
        raise InputError(f"{path}: no columns found")
    raise InputError(
        f"{path.name} has {len(names)} columns ({shown}); choose one with --column NAME, "
        "or pass --all-columns to score every column as an output and average them"
    )


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
