"""The median of unit weights on NumPy: selected from a bracket, not sorted.

A :class:`~mseplug.loss.statistics.Quantile` at level ½ with every weight 1 is
``numpy.median``: the middle order statistic of each column, or the two middle
ones averaged as ``(first + second) / 2``. The generic quantile sorts; a short
column is partitioned (``numpy.partition``, linear time). A long one is
selected as Floyd and Rivest do, from a bracket:

1. a sample of the column's rows, at positions of a fixed seed, is sorted, and
   two of its values ``lo <= hi`` a few standard deviations either side of the
   middle rank(s) bracket the middle values with high probability;
2. one pass over the column, in cache-sized blocks over the walk's threads
   (:mod:`~mseplug.backend.numpy.walk`), counts the elements below ``lo`` and
   above ``hi`` and gathers the few from ``lo`` to ``hi`` (a block that holds
   many ties at a bound counts them instead); a built-in term is formed block
   by block in a reused buffer, never as a full-size array;
3. the middle rank(s) fall among the gathered elements (or the ties counted),
   which a partition of that small set selects.

The order statistics are values of the column, so the median is the same, bit
for bit, as a full partition's (NaN where the column holds NaN: its elements
then do not all fall in the counts and the gathered set). The partition
decides instead where the bracket misses (a sample unlike its column, which a
fixed seed makes reproducible), and where the median is a zero of a column that
holds both signed zeros (they compare equal: which a partition puts in the
middle is its own). The blocks' counts and gathered elements are combined in
block order, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from mseplug.backend.numpy import walk
from mseplug.backend.numpy.statistics import FAST, Fast
from mseplug.loss import builtin
from mseplug.loss.statistics import Quantile, quantile

#: Columns of at least this many rows are selected from a bracket; shorter ones are partitioned
#: (the bracket's fixed costs, a sample and its sort, made it slower at 2^14 rows, of 1, 4 or
#: 64 columns alike, and 1.4x to 2.4x faster at 2^15; 3x to 5x from 2^18).
MIN_ROWS = 1 << 15
#: Elements of a block of the pass (its rows: this over the number of columns).
BLOCK = 1 << 16
#: Rows of a block at least (for many columns: few NumPy calls per element).
MIN_BLOCK_ROWS = 1 << 12
#: Terms of more columns are partitioned (a block of them would not stay in cache).
MAX_COLUMNS = 256
#: The sample's size: about 8·√n rows, within these bounds.
SAMPLE_RANGE = (1 << 12, 1 << 16)
#: How far either side of the middle rank(s) the bracket reaches, in √(sample size) ranks:
#: the sample rank of the middle value has a standard deviation of ½√s, so 3√s is 6 of them.
SPREAD = 3.0
#: The sample's positions are drawn with this seed: the same sample of the same column.
SEED = 0x5E1EC7
#: Terms none of whose values is -0.0 (a median of 0 is then +0.0, whichever zero a partition
#: would put in the middle): ``where(r != 0, |r|, 0)`` and its in-buffer form ``|r|``.
UNSIGNED_ZEROS = frozenset({builtin._absolute_residual})


def quantile_of(xp: Any, part: Quantile, true: np.ndarray, pred: np.ndarray,
                weight: np.ndarray | None, term: np.ndarray | None) -> np.ndarray:
    """:func:`mseplug.loss.statistics.quantile` of ``part``'s term (see
    :data:`mseplug.engine.moments.QuantileOf`): by selection where every weight is 1 and the
    level is ½, else the generic sort.

    Columns of at least :data:`MIN_ROWS` rows (and at most :data:`MAX_COLUMNS` of them) are
    selected from a bracket (:func:`bracketed_median`); where ``term`` is not given and the
    part's term has an in-buffer form (:data:`~mseplug.backend.numpy.statistics.FAST`), it is
    formed block by block in that pass from ``true`` and ``pred`` (float64, ``(n, K)``), never
    as a whole. Shorter columns, and a bracket that misses, take a partition.
    """
    n, k = pred.shape if pred.ndim == 2 else (0, 0)
    if weight is None and part.level == 0.5 and n >= MIN_ROWS and k <= MAX_COLUMNS:
        fast = FAST.get(part.term)
        source: _Source | None = None
        if term is None and fast is not None and _float64(true, pred) and true.shape == pred.shape:
            source = _Pair(fast, true, pred)
        else:
            term = _formed(xp, part, true, pred, term)
            if _float64(term) and term.shape == (n, k):
                source = _Term(term)
        if source is not None:
            value = bracketed_median(source, unsigned_zeros=part.term in UNSIGNED_ZEROS)
            if value is not None:
                return value
    return median_by_selection(xp, _formed(xp, part, true, pred, term), weight, part.level)


def _formed(xp: Any, part: Quantile, true: np.ndarray, pred: np.ndarray,
            term: np.ndarray | None) -> np.ndarray:
    """The part's term: ``term`` where given, else its definition on the whole columns."""
    return part.term(xp, true, pred) if term is None else term


def _float64(*arrays: Any) -> bool:
    return all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in arrays)


def median_by_selection(xp: Any, term: np.ndarray, weight: np.ndarray | None, level: float
                        ) -> np.ndarray:
    """:func:`mseplug.loss.statistics.quantile` of ``term``, by a partition where every weight
    is 1 and the level is ½ (``numpy.median``'s, linear time, where the generic quantile sorts).

    With unit weights the generic ranks are the middle one of an odd count, and the two
    middle ones of an even count, averaged as ``(first + second) / 2``: the same values, so
    the same median bit for bit (NaN where a column holds NaN). Weighted quantiles, other
    levels and empty parts take the generic sort.
    """
    n = term.shape[0]
    if weight is not None or level != 0.5 or n == 0:
        return quantile(xp, term, np.ones_like(term) if weight is None else weight, level)
    return partitioned_median(term)


def partitioned_median(term: np.ndarray) -> np.ndarray:
    """The median of each column of ``term`` (``(n, K)``, ``n >= 1``) by ``numpy.partition``
    of the whole column (NaN where the column holds NaN)."""
    n = term.shape[0]
    middle = n // 2
    if n % 2:
        selected = np.partition(term, middle, axis=0)
        value = selected[middle].copy()
    else:
        selected = np.partition(term, (middle - 1, middle), axis=0)
        value = (selected[middle - 1] + selected[middle]) / 2
    missing = np.isnan(np.max(term, axis=0))  # max propagates NaN
    return np.where(missing, np.nan, value)


# -- the bracket -------------------------------------------------------------------------------
class _Term:
    """The values to select from: a term already formed, ``(n, K)``."""

    def __init__(self, term: np.ndarray) -> None:
        self.term = term
        self.shape = term.shape

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return np.asarray(self.term[positions], dtype=np.float64)

    def block(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        return self.term[start:stop]


class _Pair:
    """The values to select from: a built-in term of ``(true, pred)``, formed per block."""

    def __init__(self, fast: Fast, true: np.ndarray, pred: np.ndarray) -> None:
        self.fast, self.true, self.pred = fast, true, pred
        self.shape = pred.shape

    def rows(self, positions: np.ndarray) -> np.ndarray:
        t, p = self.true[positions], self.pred[positions]
        return self.fast(t, p, np.empty(p.shape))

    def block(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        return self.fast(self.true[start:stop], self.pred[start:stop], out)


_Source = _Term | _Pair


class _Counts(NamedTuple):
    """One column's counts in one block, and its elements inside the bracket: from ``lo`` to
    ``hi``, less the ties already counted in ``at_low`` and ``at_high`` (where a block holds
    many, only the elements strictly between are kept)."""

    below: int
    at_low: int
    at_high: int
    above: int
    between: np.ndarray
    #: The signs of the zeros among the ties counted, not kept: 1 for -0.0, 2 for +0.0.
    zero_signs: int = 0


def middle_ranks(n: int) -> tuple[int, int]:
    """The ranks (from 0) of the median's order statistics: the middle one twice for an odd
    ``n``, the two middle ones for an even ``n``."""
    return (n // 2, n // 2) if n % 2 else (n // 2 - 1, n // 2)


def sample_positions(n: int) -> np.ndarray:
    """The sampled rows of a column of ``n`` rows: about ``8·√n`` (see :data:`SAMPLE_RANGE`),
    one drawn (with :data:`SEED`) from each of that many equal stretches of the column, so in
    increasing order (read front to back, no sort) and spread over all of it."""
    low, high = SAMPLE_RANGE
    size = min(n, max(low, min(high, int(8 * math.sqrt(n)))))
    offsets = np.random.default_rng(SEED).random(size)
    positions = ((np.arange(size) + offsets) * (n / size)).astype(np.int64)
    return np.minimum(positions, n - 1, out=positions)


def bracket(sample: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` per column from the sorted sample ``(s, K)`` of columns of ``n`` rows:
    :data:`SPREAD`·√s sample ranks below the first middle rank and above the last."""
    s = sample.shape[0]
    first, last = middle_ranks(n)
    reach = SPREAD * math.sqrt(s)
    low = min(s - 1, max(0, math.floor(first * s / n - reach)))
    high = min(s - 1, max(0, math.ceil((last + 1) * s / n + reach)))
    return sample[low].copy(), sample[high].copy()


def bracketed_median(source: _Source, *, unsigned_zeros: bool = False) -> np.ndarray | None:
    """The median of each column of ``source`` (``(n, K)``, ``n >= 1``) from a bracket (see the
    module docstring), the same bit for bit as :func:`partitioned_median`'s; ``None`` where the
    bracket misses a middle rank of some column, or a median is 0 and the column holds both
    -0.0 and +0.0 (``unsigned_zeros``: the term holds no -0.0), for the caller to
    partition."""
    n, k = source.shape
    with np.errstate(all="ignore"):
        sample = np.sort(source.rows(sample_positions(n)), axis=0)  # NaN sorts last
        lo, hi = bracket(sample, n)
        blocks = _pass(source, lo, hi)
    ranks = middle_ranks(n)
    value = np.empty(k)
    for j in range(k):
        column = [block[j] for block in blocks]  # in block order
        low, high = float(lo[j]), float(hi[j])
        # in order: the elements below, the copies of lo counted, the kept ones (from lo to
        # hi: with the copies of lo and hi the blocks kept, which sort to their ends), the
        # copies of hi counted, the elements above
        kept = np.concatenate([counts.between for counts in column])
        runs = (sum(counts.below for counts in column), sum(counts.at_low for counts in column),
                kept.size, sum(counts.at_high for counts in column),
                sum(counts.above for counts in column))
        if sum(runs) < n:  # a NaN is in none of them: the column's median is NaN
            value[j] = np.nan
            continue
        picked = _order_statistics(runs[:4], low, high, kept, ranks)
        if picked is None:
            return None
        value[j] = picked[0] if ranks[0] == ranks[1] else (picked[0] + picked[1]) / 2
        if value[j] == 0 and not unsigned_zeros:  # every zero of the column is in the bracket
            signs = _zero_signs(kept)
            for counts in column:
                signs |= counts.zero_signs
            if signs == 3:  # both zeros: which one a partition puts in the middle is its own
                return None
    return value


def _order_statistics(runs: tuple[int, int, int, int], lo: float, hi: float,
                      between: np.ndarray, ranks: tuple[int, int]) -> list[float] | None:
    """The order statistics of ``ranks`` in a column whose sorted values are ``below``
    elements under ``lo``, ``at_low`` copies of ``lo``, the ``inside`` elements ``between``
    (from ``lo`` to ``hi``, in any order), ``at_high`` copies of ``hi`` and the rest above
    (``runs``: those four counts); ``None`` where a rank is not among those in the
    bracket."""
    below, at_low, inside, at_high = runs
    values: list[float | None] = []
    wanted: list[int] = []
    for rank in ranks:
        r = rank - below
        if r < 0:
            return None
        if r < at_low:
            values.append(lo)
        elif r < at_low + inside:
            values.append(None)
            wanted.append(r - at_low)
        elif r < at_low + inside + at_high:
            values.append(hi)
        else:
            return None
    if wanted:
        chosen = np.partition(between, tuple(sorted(set(wanted))))
        taken = iter([float(chosen[i]) for i in wanted])
        values = [next(taken) if v is None else v for v in values]
    return [float(v) for v in values if v is not None]


def _pass(source: _Source, lo: np.ndarray, hi: np.ndarray) -> list[list[_Counts]]:
    """Every block's counts (a :class:`_Counts` per column), in block order (blocks over the
    walk's threads)."""
    n, k = source.shape
    rows = min(n, max(BLOCK // k, MIN_BLOCK_ROWS))
    count = -(-n // rows)
    results: list[Any] = [None] * count
    job = (source, lo, hi, rows, count, itertools.count(), results)
    workers = walk._threads() if n * k >= walk.PARALLEL_MIN and count > 1 else 1
    futures = [walk._executor(workers).submit(_take_blocks, *job) for _ in range(workers - 1)]
    _take_blocks(*job)
    for future in futures:
        future.result()
    return results


def _take_blocks(source: _Source, lo: np.ndarray, hi: np.ndarray, rows: int, count: int,
                 tickets: Iterator[int], results: list[Any]) -> None:
    """Count blocks until none is left (``next(tickets)``: a block no other thread has)."""
    n, k = source.shape
    buffer = np.empty((rows, k))
    columns = np.empty((k, rows)) if k > 1 else None  # a block's columns, each contiguous
    bounds = [(float(low), float(high)) for low, high in zip(lo, hi)]
    with np.errstate(all="ignore"):
        for index in tickets:
            if index >= count:
                return
            start = index * rows
            stop = min(start + rows, n)
            x = source.block(start, stop, buffer[: stop - start])
            if columns is None:
                results[index] = [_counts(x.reshape(-1), *bounds[0])]
            else:
                each = columns[:, : stop - start]
                np.copyto(each, x.T)
                results[index] = [_counts(each[j], *bounds[j]) for j in range(k)]


def _counts(x: np.ndarray, lo: float, hi: float) -> _Counts:
    """One column's block (1-D, contiguous): its counts, and its elements from ``lo`` to
    ``hi`` (ties included, told apart once for the column; unless they are many: then counted
    here, and only the elements strictly between kept)."""
    inner = x >= lo
    inner &= x <= hi
    between = x[np.flatnonzero(inner)]  # (faster than a boolean index, for few elements)
    at_low = at_high = signs = 0
    if between.size > x.size // 8:  # many ties at a bound: counted, not kept
        at_low = int(np.count_nonzero(between == lo))
        at_high = int(np.count_nonzero(between == hi)) if lo != hi else 0
        if lo == 0 or hi == 0:
            signs = _zero_signs(between)
        between = between[(between > lo) & (between < hi)]
    return _Counts(int(np.count_nonzero(x < lo)), at_low, at_high, int(np.count_nonzero(x > hi)),
                   between, signs)


def _zero_signs(x: np.ndarray) -> int:
    """The signs of the zeros among ``x``: 1 for a -0.0, 2 for a +0.0 (0: no zero)."""
    negative = np.signbit(x[x == 0])
    return int(negative.any()) | 2 * int(not negative.all())
