"""Chunked readers of prediction files (``.npy``, ``.csv``, ``.parquet``) for ``mseplug score``.

Each format is a :class:`~mseplug._sources.Source` that yields float64 NumPy
chunks of at most ``chunk_rows`` rows, ``(m,)`` for one column and ``(m, k)``
for ``k``, so memory stays bounded by
the chunk size whatever the file size: ``.npy`` is memory-mapped, CSV goes
through pyarrow's streaming reader and Parquet through ``iter_batches``
without pre-buffering (both need ``pip install mseplug[files]``). Every
problem with a file is an :class:`~mseplug._sources.InputError` whose one-line
message names the file and says what to do.
"""

from __future__ import annotations

import csv
import mmap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mseplug._sources import InputError, Source, choose_columns, one_line

CHUNK_ROWS = 1 << 18
CSV_BLOCK_BYTES = 1 << 19  # pyarrow reads blocks ahead: ~70 MB of memory per file at 512 KB
PARQUET_BUFFER_BYTES = 1 << 20  # buffered reads, not whole column chunks
SUFFIXES = (".npy", ".csv", ".parquet")


def open_source(path: Path, *, column: str | None = None, all_columns: bool = False) -> Source:
    """The :class:`Source` of ``path``, with its columns chosen (see ``mseplug score --help``)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give a .npy, .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if column is not None:
            raise InputError(f"--column applies to .csv and .parquet files, not to {path.name}")
        return _NpySource(path)
    if suffix in (".csv", ".parquet"):
        reader = _CsvSource if suffix == ".csv" else _ParquetSource
        source = reader(path)
        source.columns = choose_columns(path, source.columns or [], column, all_columns)
        return source
    raise InputError(f"{path}: unknown file type {suffix!r}; use .npy, .csv or .parquet")


def _pyarrow(module: str, path: Path) -> Any:
    try:
        import importlib

        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"reading {path.suffix} files needs pyarrow: pip install 'mseplug[files]' "
            "(or convert the file to .npy)"
        ) from None


class _NpySource(Source):
    """A memory-mapped ``.npy`` file; pages already scored are given back to the system."""

    def __init__(self, path: Path) -> None:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise InputError(f"{path}: not a readable .npy file ({one_line(error)})") from None
        if not isinstance(array, np.ndarray):
            raise InputError(f"{path}: holds {type(array).__name__}, not one array; save one with np.save")
        if array.dtype.kind not in "fiub":
            raise InputError(f"{path}: has dtype {array.dtype}; save real numbers (a float array)")
        shape = tuple(array.shape) if array.ndim else (1,)
        super().__init__(path, shape[0], None, shape)
        self._array = array.reshape(shape)
        self._map: mmap.mmap | None = None
        if isinstance(array, np.memmap) and array.flags.c_contiguous and array.size:
            with path.open("rb") as file:  # a mapping of our own, to madvise
                self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            self._offset = int(array.offset)
            self._array = np.frombuffer(self._map, dtype=array.dtype, count=array.size,
                                        offset=self._offset).reshape(shape)

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        row_bytes = self._array.itemsize * (self._array.size // max(self._array.shape[0], 1))
        for start in range(0, self._array.shape[0], chunk_rows):
            yield np.asarray(self._array[start:start + chunk_rows], dtype=np.float64)
            self._forget(self._offset + start * row_bytes if self._map else 0,
                         min(chunk_rows, self._array.shape[0] - start) * row_bytes)

    def _forget(self, begin: int, size: int) -> None:
        """Drop the mapped pages of ``[begin, begin + size)`` from this process's memory (they
        stay in the page cache; a later read maps them again), so the RSS stays bounded."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if self._map is None or advice is None:
            return
        first = -(-begin // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the range
        last = (begin + size) // mmap.PAGESIZE * mmap.PAGESIZE
        if last > first:
            self._map.madvise(advice, first, last - first)


class _ParquetSource(Source):
    def __init__(self, path: Path) -> None:
        pq = _pyarrow("pyarrow.parquet", path)
        try:
            self._file = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
        except Exception as error:  # pyarrow's ArrowInvalid, OSError, ...
            raise InputError(f"{path}: not a readable Parquet file ({one_line(error)})") from None
        super().__init__(path, int(self._file.metadata.num_rows), list(self._file.schema_arrow.names))

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        batches = self._file.iter_batches(batch_size=chunk_rows, columns=self.columns,
                                          use_threads=False)
        done = 0
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as error:
                raise InputError(f"{self.path}: unreadable after row {done} ({one_line(error)})"
                                 ) from None
            yield _values(batch, self)
            done += batch.num_rows


class _CsvSource(Source):
    def __init__(self, path: Path) -> None:
        self._pa, self._csv = _pyarrow("pyarrow", path), _pyarrow("pyarrow.csv", path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as file:  # pyarrow skips a BOM too
                header = next(csv.reader(file), None)
        except UnicodeDecodeError as error:
            raise InputError(f"{path}: not UTF-8 text ({one_line(error)}); save it as UTF-8"
                             ) from None
        with path.open("rb") as binary:
            self._header_bytes = len(binary.readline())
        if header is None:
            raise InputError(f"{path}: the file is empty; expected a header line and rows of numbers")
        super().__init__(path, None, header)

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        pa, pcsv = self._pa, self._csv
        columns = self.columns or []
        convert = pcsv.ConvertOptions(column_types={name: pa.float64() for name in columns},
                                      include_columns=columns)
        # A block must hold whole lines: long headers (many columns) get larger blocks.
        read = pcsv.ReadOptions(block_size=max(CSV_BLOCK_BYTES, 64 * self._header_bytes))
        rows = 0
        try:
            with pcsv.open_csv(self.path, read_options=read, convert_options=convert) as reader:
                for batch in reader:
                    if batch.num_rows:
                        rows += batch.num_rows
                        yield _values(batch, self)
        except pa.ArrowInvalid as error:
            raise InputError(csv_problem(self.path, columns) or
                             f"{self.path}: unreadable after row {rows} ({one_line(error)})") from None
        if rows == 0:
            raise InputError(f"{self.path} has a header but no rows of numbers")


def csv_problem(path: Path, columns: list[str]) -> str | None:
    """The first line of a CSV file that pyarrow refused, as a message (a slow scan, for errors)."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        wanted = [header.index(name) for name in columns if name in header]
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                return (f"{path.name} line {line}: {len(row)} fields where the header has "
                        f"{len(header)}; every line needs one value per column")
            for i in wanted:
                if not _parses(row[i]):
                    return (f"{path.name} line {line}: {row[i]!r} in column {header[i]!r} is not a "
                            "number; fix or remove that line")
    return None


_NULLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"})


def _parses(text: str) -> bool:
    if text in _NULLS:
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _values(batch: Any, source: Source) -> np.ndarray:
    """A record batch's chosen columns as float64, ``(m,)`` or ``(m, k)``; nulls are NaN."""
    arrays = [_float64(batch.column(batch.schema.get_field_index(name)), name, source)
              for name in source.columns or []]
    if len(arrays) == 1:
        return arrays[0]
    return np.stack(arrays, axis=1)


def _float64(column: Any, name: str, source: Source) -> np.ndarray:
    """An Arrow column as float64 NumPy, zero-copy when it is float64 without nulls.

    Not ``to_numpy()``: that imports pandas, 50 MB of memory for nothing here.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.type != pa.float64():
        try:
            column = column.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"{source.path}: column {name!r} holds {column.type}, not numbers"
                             ) from None
    if column.null_count:
        column = pc.fill_null(column, float("nan"))
    return np.frombuffer(column.buffers()[1], dtype=np.float64, count=len(column),
                         offset=column.offset * 8)
