"""Chunked readers for prediction files (``.npy``, ``.csv``, ``.parquet``), for ``mseplug score``.

Each reader yields float64 NumPy chunks of at most ``chunk_rows`` rows, so a
file larger than memory streams through: ``.npy`` is memory-mapped, CSV and
Parquet go through pyarrow's streaming readers (``pip install mseplug[files]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHUNK_ROWS = 1 << 18


def row_count(path: Path) -> int | None:
    """Rows in the file when cheap to know (for the progress bar), else ``None``."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return int(np.load(path, mmap_mode="r").shape[0])
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def read_chunks(path: Path, *, column: str | None = None, chunk_rows: int = CHUNK_ROWS
                ) -> Iterator[np.ndarray]:
    """Yield the file's values in row chunks; ``column`` picks one column of a table."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if column is not None:
            raise ValueError(f"--column applies to .csv and .parquet files, not {path.name}")
        array = np.load(path, mmap_mode="r")
        for start in range(0, max(array.shape[0], 1), chunk_rows):
            yield np.asarray(array[start:start + chunk_rows])
    elif suffix == ".csv":
        import pyarrow.csv as pcsv

        options = pcsv.ReadOptions(block_size=1 << 22)
        with pcsv.open_csv(path, read_options=options) as reader:
            for batch in reader:
                yield _table_values(batch, column, path)
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        columns = None if column is None else [column]
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
            yield _table_values(batch, column, path)
    else:
        raise ValueError(f"{path}: unknown file type {suffix!r}; use .npy, .csv or .parquet")


def _table_values(batch: Any, column: str | None, path: Path) -> np.ndarray:
    names = list(batch.schema.names) if column is None else [column]
    if column is not None and column not in batch.schema.names:
        raise ValueError(f"--column {column!r} is not in {path.name}; columns: {batch.schema.names}")
    try:
        values = np.stack(
            [np.asarray(batch.column(batch.schema.get_field_index(name))
                        .to_numpy(zero_copy_only=False), dtype=np.float64) for name in names],
            axis=1,
        )
    except (TypeError, ValueError) as error:
        raise TypeError(f"{path.name}: columns {names} are not all numeric ({error})") from None
    return values[:, 0] if values.shape[1] == 1 else values


def aligned(*streams: Iterator[np.ndarray]) -> Iterator[tuple[np.ndarray, ...]]:
    """Zip chunk streams whose chunk sizes differ into equal-length tuples of chunks.

    A stream that ends before the others is a ``ValueError``: the files differ in length.
    """
    heads: list[np.ndarray | None] = [None] * len(streams)
    while True:
        for i, stream in enumerate(streams):
            if heads[i] is None or len(heads[i]) == 0:  # type: ignore[arg-type]
                heads[i] = next(stream, None)
        ended = [head is None for head in heads]
        if all(ended):
            return
        if any(ended):
            raise ValueError("the files have different numbers of rows")
        size = min(len(head) for head in heads)  # type: ignore[arg-type]
        yield tuple(head[:size] for head in heads)  # type: ignore[index]
        heads = [head[size:] for head in heads]  # type: ignore[index]
