"""Statistics of their own (R², explained variance, the maximum error) on NumPy: one read.

The generic :func:`mseplug.engine.moments.part_statistics` works on whole
``(n, K)`` columns: a float64 copy of float32 inputs, a full-size array per
term, per weighted product and per square, and a pass over memory for each.
Here the rows are visited in cache-sized blocks (as :mod:`~mseplug.backend.numpy.walk`
visits them for the mean losses): each block is cast to float64 in a reused
buffer, each part's term is formed there and reduced at once, and the blocks'
statistics are added in block order, so the inputs are read once.

- :class:`~mseplug.loss.statistics.Sum`: ``Σ w·term`` (a dot product;
  ``Σ w·r²`` as ``(w·r)·r`` without forming the square);
- :class:`~mseplug.loss.statistics.Centred`: ``Σ w(q - c)`` and
  ``Σ w(q - c)²`` about the whole call's shift ``c``, known before the pass
  (the term at the first row; with ``nan_policy="omit"`` the largest kept
  term, from a first blocked pass over the terms): every block has the same
  shift, so their moments simply add;
- :class:`~mseplug.loss.statistics.Maximum`: the maximum of the blocks' maxima.

Large inputs are split over the walk's worker threads; the block results are
combined in block order, so the statistics are the same, bit for bit, from any
number of threads. They equal the generic ones to rounding (the order of the
sums differs); the built-in terms have in-buffer forms here (the same values
as their definitions, element for element), any other term is its own
definition applied block by block.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mseplug.backend.numpy import walk
from mseplug.backend.numpy.kernels import dot
from mseplug.engine.columns import Columns
from mseplug.loss import builtin
from mseplug.loss.statistics import Centred, Maximum, Statistics, decomposable, layout

_FLOAT64 = np.dtype(np.float64)
#: Elements of a block (its rows: this over the number of outputs): its float64 buffers stay in
#: L2/L3, and the Python cost per block (a dozen NumPy calls) is small beside its arithmetic
#: (at 10^7 float64, 2^16 ran r2 about 10% faster than 2^15 or 2^14).
BLOCK = 1 << 16
#: Inputs with at least this many elements are split over the walk's threads.
PARALLEL_MIN = walk.PARALLEL_MIN

#: A built-in term formed into a buffer: ``fast(t, p, out)`` (float64 blocks), the same values
#: as the record's term, element for element.
Fast = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _target(t: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    return t


def _residual(t: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.subtract(t, p, out=out)


def _squared_residual(t: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    r = np.subtract(t, p, out=out)
    return np.multiply(r, r, out=r)


def _absolute_residual(t: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    # |r|: the record's where(r != 0, |r|, 0) has the same values (|-0| is +0, |NaN| NaN)
    return np.absolute(np.subtract(t, p, out=out), out=out)


#: The built-in terms' in-buffer forms, keyed by the records' term functions.
FAST: dict[Any, Fast] = {
    builtin._target: _target,
    builtin._residual: _residual,
    builtin._squared_residual: _squared_residual,
    builtin._absolute_residual: _absolute_residual,
}
#: Terms that are the square of another: ``Σ w·r²`` is the dot product ``(w·r)·r``.
SQUARE_OF: dict[Any, Fast] = {builtin._squared_residual: _residual}


def _term(part: Any, t: np.ndarray, p: np.ndarray, out: np.ndarray) -> np.ndarray:
    fast = FAST.get(part.term)
    if fast is not None:
        return fast(t, p, out)
    return np.asarray(part.term(np, t, p), dtype=np.float64)


def supported(spec: Statistics, c: Columns) -> bool:
    """Whether :func:`part_statistics` takes these statistics of these columns (else the
    generic definition): sums, centred moments and maxima (a quantile is of every row at
    once), of a non-empty float input."""
    return (decomposable(spec) and c.y_pred.shape[0] > 0 and c.work == _FLOAT64 and c.y_pred.ndim == 2
            and c.y_true.dtype.kind == "f" and c.y_pred.dtype.kind == "f"
            and (c.weight is None or c.weight.dtype.kind == "f"))


def part_statistics(spec: Statistics, c: Columns, keep: np.ndarray | None) -> dict[str, Any]:
    """The named statistics of ``c`` (see :func:`mseplug.engine.moments.part_statistics`),
    blocked: the same values to rounding, each of shape ``(K,)`` in float64."""
    n, k = c.y_pred.shape
    shifts = _shifts(spec, c, keep)
    keys = layout(spec)
    rows = max(1, BLOCK // k)
    count = -(-n // rows)
    results: list[Any] = [None] * count
    job = (spec, c, keep, shifts, rows, count, itertools.count(), results)
    workers = walk._threads() if n * k >= PARALLEL_MIN and count > 1 else 1
    futures = [walk._executor(workers).submit(_take_blocks, *job) for _ in range(workers - 1)]
    _take_blocks(*job)
    for future in futures:
        future.result()
    total = results[0]
    for block in results[1:]:  # in block order: the same sums from any number of threads
        for i, (_, how) in enumerate(keys):
            if how == "sum":
                total[i] = total[i] + block[i]
            elif how == "max":
                total[i] = np.maximum(total[i], block[i])
    if keep is None and c.weight is None:
        total[0] = np.full(k, float(n))  # Σ 1 = n, exactly
    return {key: np.broadcast_to(np.asarray(value, dtype=np.float64), (k,)).copy()
            for (key, _), value in zip(keys, total)}


def _shifts(spec: Statistics, c: Columns, keep: np.ndarray | None) -> dict[str, np.ndarray]:
    """Each centred part's shift: its term at the first row, or with ``keep`` its largest kept
    term (0 where nothing is kept), as the generic definition's."""
    centred = [part for part in spec.parts if isinstance(part, Centred)]
    if not centred:
        return {}
    if keep is None:
        t = c.y_true[:1].astype(np.float64)
        p = c.y_pred[:1].astype(np.float64)
        return {part.name: np.array(part.term(np, t, p), dtype=np.float64).reshape(-1)
                for part in centred}
    n, k = c.y_pred.shape
    rows = max(1, BLOCK // k)
    top = {part.name: np.full(k, -np.inf) for part in centred}
    buffers = _Buffers(min(rows, n), k)
    with np.errstate(all="ignore"):
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            t, p, _, kept, _ = buffers.block(c, keep, start, stop, weights=False)
            assert kept is not None
            for part in centred:
                term = _term(part, t, p, buffers.term[: stop - start])
                masked = np.where(kept, term, -np.inf)
                top[part.name] = np.maximum(top[part.name], masked.max(axis=0))
    return {name: np.where(value == -np.inf, 0.0, value) for name, value in top.items()}


class _Buffers:
    """One thread's reused float64 buffers for a block of ``rows`` rows and ``k`` outputs."""

    def __init__(self, rows: int, k: int) -> None:
        self.t = np.empty((rows, k))
        self.p = np.empty((rows, k))
        self.w = np.empty(rows)
        self.term = np.empty((rows, k))
        self.spare = np.empty((rows, k))

    def block(self, c: Columns, keep: np.ndarray | None, start: int, stop: int,
              weights: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None,
                         np.ndarray | None]:
        """Rows ``start:stop`` in float64 (omitted elements replaced by 1, as the generic
        definition's), the sample weights, the kept mask and (``weights``) the kept weights (0
        where omitted)."""
        size = stop - start
        t, p = c.y_true[start:stop], c.y_pred[start:stop]
        kept = None if keep is None else keep[start:stop]
        if t.dtype != _FLOAT64 or kept is not None:
            t = _cast(t, self.t[:size])
        if p.dtype != _FLOAT64 or kept is not None:
            p = _cast(p, self.p[:size])
        w = None if c.weight is None else c.weight[start:stop]
        if w is not None and w.dtype != _FLOAT64:
            w = _cast(w, self.w[:size])
        kept_weights = None
        if kept is not None:
            drop = ~kept
            np.copyto(t, 1.0, where=drop)
            np.copyto(p, 1.0, where=drop)
            if weights:
                kept_weights = (kept.astype(np.float64) if w is None
                                else np.where(kept, w[:, None], 0.0))
        return t, p, w, kept, kept_weights


def _cast(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    np.copyto(out, x, casting="unsafe")
    return out


def _take_blocks(spec: Statistics, c: Columns, keep: np.ndarray | None,
                 shifts: dict[str, np.ndarray], rows: int, count: int, tickets: Iterator[int],
                 results: list[Any]) -> None:
    """Compute blocks until none is left (``next(tickets)``: a block no other thread has)."""
    n, k = c.y_pred.shape
    buffers = _Buffers(min(rows, n), k)
    with np.errstate(all="ignore"):  # inf and NaN propagate, as the generic definition's
        for index in tickets:
            if index >= count:
                return
            start = index * rows
            results[index] = _block(spec, c, keep, shifts, buffers, start, min(start + rows, n))


def _block(spec: Statistics, c: Columns, keep: np.ndarray | None, shifts: dict[str, np.ndarray],
           buffers: _Buffers, start: int, stop: int) -> list[Any]:
    """One block's statistics, in the layout's order."""
    t, p, w, kept, weights = buffers.block(c, keep, start, stop)
    if kept is None and t.shape[1] == 1:
        return _flat_block(spec, t.reshape(-1), p.reshape(-1), w, shifts, buffers)
    out: list[Any] = []
    if weights is None:
        weights = None if w is None else w[:, None]
        out.append(0.0 if w is None else float(np.add.reduce(w)))
    else:
        out.append(np.add.reduce(weights, axis=0))
    for part in spec.parts:
        term = _term(part, t, p, buffers.term[: t.shape[0]])
        if isinstance(part, Maximum):
            out.append((term if kept is None else np.where(kept, term, -np.inf)).max(axis=0))
            continue
        if isinstance(part, Centred):
            d = np.subtract(term, shifts[part.name], out=buffers.spare[: term.shape[0]])
            if kept is not None:
                np.copyto(d, 0.0, where=~kept)
            wd = d if weights is None else weights * d
            out += [shifts[part.name], np.add.reduce(wd, axis=0), np.add.reduce(wd * d, axis=0)]
            continue
        product = term if weights is None else weights * term
        if kept is not None:
            product = np.where(kept, product, 0.0)
        out.append(np.add.reduce(product, axis=0))
    return out


def _flat_block(spec: Statistics, t: np.ndarray, p: np.ndarray, w: np.ndarray | None,
                shifts: dict[str, np.ndarray], buffers: _Buffers) -> list[Any]:
    """One block of one output, nothing omitted: 1-D float64 vectors and dot products."""
    size = t.shape[0]
    term_buffer = buffers.term.reshape(-1)[:size]
    spare = buffers.spare.reshape(-1)[:size]
    out: list[Any] = [0.0 if w is None else float(np.add.reduce(w))]
    for part in spec.parts:
        if isinstance(part, Maximum):
            out.append(float(_term(part, t, p, term_buffer).max()))
            continue
        if isinstance(part, Centred):
            shift = shifts[part.name]
            d = np.subtract(_term(part, t, p, term_buffer), shift[0], out=term_buffer)
            if w is None:
                out += [shift, float(np.add.reduce(d)), dot(d, d)]
            else:
                out += [shift, dot(w, d), dot(np.multiply(w, d, out=spare), d)]
            continue
        base = SQUARE_OF.get(part.term)
        if base is not None:  # Σ w·r² as (w·r)·r: the square is never formed
            r = base(t, p, term_buffer)
            out.append(dot(r, r) if w is None else dot(np.multiply(w, r, out=spare), r))
            continue
        term = _term(part, t, p, term_buffer)
        out.append(float(np.add.reduce(term)) if w is None else dot(w, term))
    return out
