"""Chunked readers of prediction files (``.npy``, ``.csv``, ``.parquet``) for ``mseplug score``.

Each format is a :class:`~mseplug.cli.sources.Source` that yields float64 NumPy
chunks of at most ``chunk_rows`` rows, ``(m,)`` for one column and ``(m, k)``
for ``k``, so memory stays bounded by the chunk size whatever the file size:
``.npy`` is memory-mapped (or read in chunks from a pipe), CSV is read in
blocks of whole lines that pyarrow parses, and Parquet through
``iter_batches`` without pre-buffering (both need ``pip install
mseplug[files]``). Every problem with a file is an
:class:`~mseplug.cli.sources.InputError` whose one-line message names the file
and says what to do.

Every file is opened exactly once (a named pipe can be read only once): the
CSV header is peeked from the same binary stream the blocks then come from.

A CSV file's first line is a header unless it is a row of numbers: every field
a number (or empty, or a missing-value marker such as ``NA``), at least one a
number, and the first field not empty (pandas writes an index's header as an
empty first field). A file without a header line has its columns named by
position: ``"1"``, ``"2"``, ...
"""

from __future__ import annotations

import csv
import io
import mmap
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mseplug.cli.sources import InputError, Source, choose_columns, count, one_line

CHUNK_ROWS = 1 << 18
CSV_BLOCK_BYTES = 1 << 19  # read at a time (then cut after its last line break) and parsed at once
PARQUET_BUFFER_BYTES = 1 << 20  # buffered reads, not whole column chunks
SUFFIXES = (".npy", ".csv", ".parquet")
_BOM = b"\xef\xbb\xbf"


def open_source(path: Path, *, column: str | None = None, all_columns: bool = False) -> Source:
    """The :class:`Source` of ``path``, with its columns chosen (see ``mseplug score --help``).

    The source holds its file open; close it with :meth:`Source.close`.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory; give a .npy, .csv or .parquet file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if column is not None:
            raise InputError(f"--column applies to .csv and .parquet files, not to {path.name}")
        return _NpySource(path)
    if suffix in (".csv", ".parquet"):
        reader = _CsvSource if suffix == ".csv" else _ParquetSource
        source = reader(path)
        try:
            source.columns = choose_columns(path, source.columns or [], column, all_columns)
        except BaseException:
            source.close()
            raise
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


def _is_regular(file: BinaryIO) -> bool:
    return stat.S_ISREG(os.fstat(file.fileno()).st_mode)


def _read_once(path: Path) -> InputError:
    return InputError(f"{path.name} is a pipe, read once, but scoring needs a second pass (the "
                      "weights' sum overflows float64); divide the weights by a constant or give "
                      "a regular file")


class _NpySource(Source):
    """A ``.npy`` file: memory-mapped when it is a regular file (pages already scored are given
    back to the system), else (a pipe) read chunk by chunk."""

    def __init__(self, path: Path) -> None:
        file = path.open("rb")
        try:
            shape, fortran, dtype = _npy_header(file, path)
            shape = shape if shape else (1,)
            super().__init__(path, shape[0], None, shape)
            self._file: BinaryIO | None = file
            self._dtype, self._fortran = dtype, fortran and len(shape) > 1
            self._row_items = int(np.prod(shape[1:], dtype=np.int64))
            self._map: mmap.mmap | None = None
            self._array: np.ndarray | None = None
            self._offset = 0
            if _is_regular(file):
                self._offset = file.tell()
                self._array = self._mapped(file)
                file.close()  # the mapping keeps its own reference to the file
                self._file = None
            elif self._fortran:
                raise InputError(f"{path.name}: a Fortran-ordered array cannot be read from a pipe "
                                 "row by row; save it with np.save(path, np.ascontiguousarray(a))")
        except BaseException:
            file.close()
            raise
        self._started = False

    def _mapped(self, file: BinaryIO) -> np.ndarray:
        assert self.shape is not None
        nbytes = self._dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        size = os.fstat(file.fileno()).st_size
        if size < self._offset + nbytes:
            raise InputError(f"{self.path}: not a readable .npy file (truncated: {size:,} bytes "
                             f"where its header promises {self._offset + nbytes:,})")
        if nbytes == 0:
            return np.zeros(self.shape, dtype=self._dtype)
        self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        return np.ndarray(self.shape, dtype=self._dtype, buffer=self._map, offset=self._offset,
                          order="F" if self._fortran else "C")

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        if self._array is None:
            yield from self._streamed(chunk_rows)
            return
        array = self._array
        row_bytes = array.itemsize * self._row_items
        for start in range(0, array.shape[0], chunk_rows):
            yield np.asarray(array[start:start + chunk_rows], dtype=np.float64)
            if not self._fortran:
                self._forget(self._offset + start * row_bytes,
                             min(chunk_rows, array.shape[0] - start) * row_bytes)

    def _streamed(self, chunk_rows: int) -> Iterator[np.ndarray]:
        if self._started or self._file is None:
            raise _read_once(self.path)
        self._started = True
        assert self.shape is not None
        rows, row_bytes = self.shape[0], self._dtype.itemsize * self._row_items
        for start in range(0, rows, chunk_rows):
            take = min(chunk_rows, rows - start)
            data = self._file.read(take * row_bytes)
            if len(data) < take * row_bytes:
                raise InputError(f"{self.path}: not a readable .npy file (it ends after row "
                                 f"{start + len(data) // max(row_bytes, 1):,} of {rows:,})")
            values = np.frombuffer(data, dtype=self._dtype).reshape((take, *self.shape[1:]))
            yield values.astype(np.float64)

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

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _npy_header(file: BinaryIO, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` from the header of an open ``.npy`` file."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(file)
        else:  # (3, 0): a UTF-8 header, read by NumPy's private reader where it has one
            shape, fortran, dtype = fmt._read_array_header(file, version)  # type: ignore[attr-defined]
    except (ValueError, OSError, EOFError, AttributeError, SyntaxError) as error:
        raise InputError(f"{path}: not a readable .npy file ({one_line(error)})") from None
    if dtype.hasobject:
        raise InputError(f"{path}: holds Python objects, not one array of numbers; save one with "
                         "np.save")
    if dtype.kind not in "fiub":
        raise InputError(f"{path}: has dtype {dtype}; save real numbers (a float array)")
    return tuple(shape), bool(fortran), dtype


class _ParquetSource(Source):
    def __init__(self, path: Path) -> None:
        pa, pq = _pyarrow("pyarrow", path), _pyarrow("pyarrow.parquet", path)
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError(f"{path.name}: a Parquet file is read from its end (the footer), "
                             "which a pipe cannot do; copy it to a regular file")
        self._native = pa.OSFile(str(path), "r")  # the one open of the file
        try:
            self._file = pq.ParquetFile(self._native, pre_buffer=False,
                                        buffer_size=PARQUET_BUFFER_BYTES)
        except Exception as error:  # pyarrow's ArrowInvalid, OSError, ...
            self._native.close()
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
                raise InputError(f"{self.path}: unreadable after {count(done, 'row')} "
                                 f"({one_line(error)})") from None
            yield _values(batch, self)
            done += batch.num_rows

    def close(self) -> None:
        self._native.close()


class _CsvSource(Source):
    """A CSV file, read in blocks of whole lines that pyarrow parses in memory.

    The reading is ours, in this thread, so Ctrl-C interrupts a read waiting on a
    pipe (pyarrow's streaming reader would wait on in a thread of its own), and a
    line pyarrow refuses is found again in its block, for its line number.
    """

    def __init__(self, path: Path) -> None:
        self._pa, self._csv = _pyarrow("pyarrow", path), _pyarrow("pyarrow.csv", path)
        self._file: BinaryIO = path.open("rb")  # the one open of the file
        try:
            first = _Header(self._file, path)
            if first.fields is None:
                raise InputError(f"{path}: the file is empty; expected rows of numbers (under a "
                                 "header line of column names, or without one)")
            self._fields = first.fields
            header = not is_data(first.fields)
            bom = len(_BOM) if first.consumed.startswith(_BOM) else 0
            # The data starts after the header, or at the first line (after a BOM); what was
            # read of it already is handed to the first pass.
            self._data_offset = len(first.consumed) if header else bom
            self._read_ahead = first.rest if header else first.consumed[bom:] + first.rest
            self._header_lines = _line_breaks(first.consumed) if header else 0
        except BaseException:
            self._file.close()
            raise
        super().__init__(path, None, None, header=header)
        self.columns = self._names()
        self._started = False

    def close(self) -> None:
        self._file.close()

    def _names(self) -> list[str]:
        """Every column's name: the header's, or ``"1"``, ``"2"``, ... without a header line."""
        if self.header:
            return list(self._fields)
        return [str(i) for i in range(1, len(self._fields) + 1)]

    def _blocks(self) -> Iterator[bytes]:
        """The data (after the header line, if any) in blocks of whole lines: once from a pipe,
        from the start again from a regular file."""
        if not self._started:
            self._started = True
            pending = self._read_ahead
        elif self._file.seekable():
            self._file.seek(self._data_offset)
            pending = b""
        else:
            raise _read_once(self.path)
        while data := self._file.read(CSV_BLOCK_BYTES):
            pending += data
            end = len(pending) - pending.endswith(b"\r")  # a final \r may start a \r\n
            cut = max(pending.rfind(b"\n", 0, end), pending.rfind(b"\r", 0, end)) + 1
            if cut:
                yield pending[:cut]
                pending = pending[cut:]
        if pending:
            yield pending

    def chunks(self, chunk_rows: int) -> Iterator[np.ndarray]:
        pa, pcsv = self._pa, self._csv
        columns, names = self.columns or [], self._names()
        convert = pcsv.ConvertOptions(column_types={name: pa.float64() for name in columns},
                                      include_columns=columns)
        read = pcsv.ReadOptions(column_names=names, use_threads=False)
        rows, line = 0, self._header_lines + 1  # the line the block starts on
        for block in self._blocks():
            if block.strip():  # pyarrow skips empty lines, but not a block of nothing else
                read.block_size = len(block) + 1  # one parse of the block, however long its lines
                try:
                    table = pcsv.read_csv(pa.py_buffer(block), read_options=read,
                                          convert_options=convert)
                except pa.ArrowInvalid as error:
                    text = io.StringIO(block.decode("utf-8", errors="replace"), newline="")
                    problem = csv_problem(self.name, text, names, columns, first_line=line,
                                          header=self.header)
                    raise InputError(problem or f"{self.path}: unreadable after "
                                     f"{count(rows, 'row')} ({one_line(error)})") from None
                for batch in table.to_batches(max_chunksize=chunk_rows):
                    if batch.num_rows:
                        rows += batch.num_rows
                        yield _values(batch, self)
            line += _line_breaks(block)
        if rows == 0:
            raise InputError(f"{self.path} has a header but no rows of numbers")


class _Header:
    """The first non-empty record of a CSV stream, read line by line (``\\n``, ``\\r\\n`` or
    ``\\r``), and what was read: ``consumed`` (the record's lines, a BOM included) and
    ``rest`` (bytes read past it, the start of the data).

    A quoted field may hold line breaks: the record may span several lines.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        self._file, self._buffer, self._lines = file, b"", 0
        self.consumed = b""
        self.fields: list[str] | None = None
        try:
            for fields in csv.reader(self._text(path)):
                if fields:
                    self.fields = fields
                    break
        except csv.Error as error:
            raise InputError(f"{path}: not a CSV file ({one_line(error)})") from None
        self.rest = self._buffer

    def _text(self, path: Path) -> Iterator[str]:
        while (line := self._line()) is not None:
            self.consumed += line
            try:
                yield line.removeprefix(_BOM if self._lines == 0 else b"").decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"{path}: not UTF-8 text ({one_line(error)}); save it as UTF-8"
                                 ) from None
            self._lines += 1

    def _line(self) -> bytes | None:
        while True:
            end = _line_end(self._buffer)
            if end:
                line, self._buffer = self._buffer[:end], self._buffer[end:]
                return line
            more = self._file.read1(1 << 16)  # type: ignore[attr-defined]
            if not more:
                line, self._buffer = self._buffer, b""
                return line or None
            self._buffer += more


def _line_end(data: bytes) -> int:
    """The length of the first line of ``data`` with its line break; 0 if none is complete yet
    (a final ``\\r`` may be the start of ``\\r\\n``)."""
    newline, cr = data.find(b"\n"), data.find(b"\r")
    if cr != -1 and (newline == -1 or cr < newline):
        if cr + 1 == len(data):
            return 0
        return cr + 2 if data[cr + 1:cr + 2] == b"\n" else cr + 1
    return newline + 1


def _line_breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


_NULLS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"})


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def is_data(fields: list[str]) -> bool:
    """Whether a CSV file's first record is a row of numbers rather than a header line.

    Every field a number or a missing value (empty, ``NA``, ...), at least one a
    number, and the first field not empty: pandas writes the header of an index
    with an empty first field (``,0,1`` for unnamed columns).
    """
    return (bool(fields) and fields[0].strip() != ""
            and all(_number(field) or field.strip() in _NULLS for field in fields)
            and any(_number(field) for field in fields))


def csv_problem(name: str, text: Any, names: list[str], columns: list[str], *,
                first_line: int = 2, header: bool = True) -> str | None:
    """The first line of CSV data lines that pyarrow refused, as a message (a slow scan, for
    errors); ``first_line`` is the file's line number of the first line of ``text``."""
    reader = csv.reader(text)
    wanted = [names.index(column) for column in columns if column in names]
    for row in reader:
        line = first_line + reader.line_num - 1
        if not row:
            continue
        if len(row) != len(names):
            what = "the header has" if header else "the first line has"
            return (f"{name} line {line}: {count(len(row), 'field')} where {what} "
                    f"{len(names)}; every line needs one value per column")
        for i in wanted:
            if not _parses(row[i]):
                return (f"{name} line {line}: {row[i]!r} in column {names[i]!r} is not a "
                        "number; fix or remove that line")
    return None


def _parses(text: str) -> bool:
    return text in _NULLS or _number(text)


def _values(batch: Any, source: Source) -> np.ndarray:
    """A record batch's chosen columns as float64, ``(m,)`` or ``(m, k)``; nulls are NaN."""
    arrays = [_float64(batch.column(batch.schema.get_field_index(name)), name, source)
              for name in source.columns or []]
    if len(arrays) == 1:
        return arrays[0]
    return np.stack(arrays, axis=1)


def _float64(column: Any, name: str, source: Source) -> np.ndarray:
    """An Arrow column as float64 NumPy, zero-copy when it is float64 without nulls.

    Integers become the nearest float64, as NumPy's ``astype(np.float64)`` (above
    2**53 not every integer has a float64 of its own). Not ``to_numpy()``: that
    imports pandas, 50 MB of memory for nothing here.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if column.type != pa.float64():
        try:
            column = column.cast(pa.float64(), safe=not pa.types.is_integer(column.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputError(f"{source.path}: column {name!r} holds {column.type}, not numbers"
                             ) from None
    if column.null_count:
        column = pc.fill_null(column, float("nan"))
    return np.frombuffer(column.buffers()[1], dtype=np.float64, count=len(column),
                         offset=column.offset * 8)
