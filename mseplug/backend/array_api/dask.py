"""Dask through the generic backend: the engine's kernels run on each chunk, lazily.

A Dask array is many chunks of another library's arrays (NumPy, usually).
Instead of running the engine's kernels on the Dask array (one graph layer
per array operation), each chunk pair goes whole to the chunk library's own
backend — for NumPy chunks the blocked float64 kernels — which returns that
chunk's sufficient statistics ``(S, W)``; the chunks' statistics are summed
in the graph and :func:`mseplug.engine.finalize.finalize` makes the value, exactly as
for one call. ``reduction="none"`` and gradients are computed chunk by chunk
too (gradients with the global statistics). Nothing is computed before the
caller computes the result.

Checks on values run inside the graph and raise when the result is
computed: each chunk is checked by its backend (``nan_policy="raise"``,
weights finite and non-negative), and a value or gradient whose sample
weights sum to 0 raises there too (``reduction="none"`` checks each chunk's
weights, not their total; output weights given as a Dask array are not
checked for their values). Chunk sizes may be unknown (DataFrame
columns, boolean-indexed arrays) when both inputs come in the same chunks;
chunks of different lengths raise at compute time. The functions the
tasks run on each chunk (the second half of this module) see NumPy (or CuPy, ...) chunks.
"""

from __future__ import annotations

import math
import string
import sys
from typing import Any

import numpy as np

from mseplug.engine import finalize, moments, overflow, pipeline
from mseplug.engine import validation as v
from mseplug.engine.backend import Backend
from mseplug.engine.finalize import ScaledStatistics, times_power_of_two
from mseplug.engine.kernels import columns, kept, loss_value, loss_value_and_grad, scaled_gradient
from mseplug.loss.options import Options
from mseplug.loss.record import Loss
from mseplug.loss.statistics import decomposable, layout


def is_dask_array(x: Any) -> bool:
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(x, module.Array)


def is_dask_frame(x: Any) -> bool:
    """A Dask DataFrame or Series (its columns are taken as a lazy Dask array)."""
    module = sys.modules.get("dask.dataframe")
    return module is not None and isinstance(x, (module.Series, module.DataFrame))


def as_array(frame: Any) -> Any:
    """A Dask DataFrame/Series as a Dask array, lazily (chunk lengths stay unknown)."""
    return frame.to_dask_array()


def unknown_rows(x: Any) -> bool:
    return any(math.isnan(size) for size in x.chunks[0])


# -- running the engine's kernels chunk by chunk -------------------------------------------
def run(backend: Backend, kernel: Any, options: Options, *arrays: Any) -> Any:
    """``kernel(backend, options, *arrays)`` for Dask arrays, chunk by chunk."""
    # The loss's parameters travel in ``options.params`` (the last of ``arrays`` repeats them).
    if options.loss.statistics is not None and kernel in (loss_value, loss_value_and_grad):
        true, pred, weight, output_weights, _ = arrays
        if kernel is loss_value_and_grad:
            return _named_value_and_grad(backend, options, true, pred, weight, output_weights)
        return _named_value(backend, options, true, pred, weight, output_weights)
    if kernel is loss_value:
        true, pred, weight, output_weights, _ = arrays
        if options.reduction == "none":
            return _elementwise(backend, options, true, pred, weight)
        return _value(backend, options, true, pred, weight, output_weights)[0]
    if kernel is loss_value_and_grad:
        true, pred, weight, output_weights, _ = arrays
        value, (scale, exponent) = _value(backend, options, true, pred, weight, output_weights,
                                          scale=True)
        return value, _gradient(backend, options, true, pred, weight, scale, exponent)
    return kernel(backend, options, *arrays)


def statistics(backend: Backend, options: Options, true: Any, pred: Any, weight: Any
               ) -> ScaledStatistics:
    """The lazy statistics of every chunk, added at one weight exponent (lazy too)."""
    if options.loss.statistics is not None:
        return _named_statistics(backend, options, true, pred, weight)
    k = _outputs(pred)
    parts = _statistics(backend, options, true, pred, weight)
    return ScaledStatistics(parts[:k], parts[k:2 * k], parts[_EXPONENT].astype(np.int64),
                            parts[_FINITE])


def unscaled(statistics: ScaledStatistics) -> tuple[Any, Any]:
    """Lazy ``(S, W)`` in the caller's weight units: inf beyond float64, with a
    LossOverflowWarning when computed if every input was finite."""
    total = ldexp(statistics.total, statistics.exponent)
    weight = ldexp(statistics.weight, statistics.exponent)
    return (_with_scalar(warn_if_overflowed, total, statistics.finite),
            _with_scalar(warn_if_overflowed, weight, statistics.finite))


def rows(pred: Any) -> Any:
    """The number of rows of a Dask array: its length, or a lazy count when unknown."""
    if not unknown_rows(pred):
        return int(pred.shape[0])
    import dask.array as da

    index = _index(pred.ndim)
    counts = da.blockwise(block_rows, "i", pred, index, adjust_chunks={"i": 1}, concatenate=True,
                          dtype=np.int64, meta=np.empty(0, np.int64))
    return counts.sum()


def _outputs(pred: Any) -> int:
    return math.prod(pred.shape[1:])


def _index(ndim: int) -> str:
    return "i" + string.ascii_lowercase[10:10 + ndim - 1]


def _indexed(true: Any, pred: Any, weight: Any) -> list[Any]:
    """``blockwise``'s ``(array, index)`` arguments, rows aligned chunk by chunk."""
    arrays = _aligned({"y_true": true, "y_pred": pred, "sample_weight": weight})
    pred_index = _index(pred.ndim)
    true_index = pred_index if true.ndim == pred.ndim else _index(true.ndim)
    args = [arrays["y_true"], true_index, arrays["y_pred"], pred_index]
    if weight is not None:
        args += [arrays["sample_weight"], "i"]
    return args


def _aligned(arrays: dict[str, Any]) -> dict[str, Any]:
    """With any chunk length unknown, every input must have as many chunks as ``y_pred``
    (their lengths are compared chunk by chunk at compute time); known chunks Dask unifies."""
    present = {name: a for name, a in arrays.items() if a is not None}
    if not any(unknown_rows(a) for a in present.values()):
        return arrays
    import dask.array as da

    blocks = present["y_pred"].numblocks[0]
    for name, a in present.items():
        if a.numblocks[0] != blocks:
            raise ValueError(
                f"{name} comes in {a.numblocks[0]} chunks along axis 0 and y_pred in {blocks}, "
                "and some chunk lengths are unknown; take both from one DataFrame (the same "
                "partitions) or call .compute_chunk_sizes() on them first"
            )
    from dask.array.utils import meta_from_array

    unknown = (math.nan,) * blocks
    return {name: a if a is None else da.Array(a.dask, a.name, (unknown, *a.chunks[1:]),
                                               meta=meta_from_array(a))
            for name, a in arrays.items()}


def _statistics(backend: Backend, options: Options, true: Any, pred: Any, weight: Any) -> Any:
    """The lazy ``(2K + 4,)`` vector ``[S..., W..., Σw, rows, finite, exponent]`` of all chunks: each
    chunk's row (:func:`block_statistics`), added at the
    largest weight exponent (:func:`aligned_sum`)."""
    import dask.array as da

    width = 2 * _outputs(pred) + 4
    parts = da.blockwise(
        block_statistics, "iz", *_indexed(true, pred, weight), new_axes={"z": width},
        adjust_chunks={"i": 1}, concatenate=True, dtype=np.float64,
        meta=np.empty((0, 0), np.float64), job=Job(options, type(backend)),
        weighted=weight is not None,
    )
    whole = parts.rechunk({0: -1})
    return da.map_blocks(aligned_sum, whole, chunks=((1,), (width,)), dtype=np.float64)[0]


def _value(backend: Backend, options: Options, true: Any, pred: Any, weight: Any,
           output_weights: Any, scale: bool = False) -> tuple[Any, Any]:
    """The lazy loss value (and the gradient's per-output scale with its weight exponent) from
    the chunks' statistics, finished in NumPy by :func:`final_value` when computed."""
    import dask
    import dask.array as da

    xp = backend.namespace(pred)
    k = _outputs(pred)
    parts = _statistics(backend, options, true, pred, weight)
    if weight is not None:  # the whole call's weights must sum to more than 0
        parts = da.map_blocks(checked_weight_sum, parts, k, dtype=np.float64)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape))[1:]
    dtype = backend.result_dtype(xp, true.dtype, pred.dtype)
    value_shape = shape if options.raw else ()
    job = Job(options, type(backend))  # the loss travels by value (a worker may not know it)
    value = da.from_delayed(dask.delayed(final_value, pure=True)(
        parts, job, k, value_shape, output_weights, np.dtype(dtype)),
        shape=value_shape, dtype=dtype)
    factor = None
    if scale:  # the gradient's scale: of the mean in the scaled units, of a sum in the caller's
        scales = dask.delayed(gradient_scale, pure=True)(parts, job, k, output_weights)
        factor = (da.from_delayed(scales[0], shape=(k,), dtype=np.float64),
                  da.from_delayed(scales[1], shape=(), dtype=np.int64))
    return value, factor


# -- losses with statistics of their own: each chunk's named statistics, combined exactly --------
def _named_parts(backend: Backend, options: Options, true: Any, pred: Any, weight: Any,
                 blocks: list[Any] | None = None) -> Any:
    """A delayed ``(statistics, exponent, rows)`` of all chunks, combined (sums after re-centring,
    maxima by the maximum: :func:`mseplug.engine.moments.combined_parts`). Statistics that do not
    combine (a median: not decomposable) are of one part, every chunk brought together: exact,
    with the inputs' columns in one worker's memory. ``blocks``, when given, receives the
    parts' delayed ``(y_true, y_pred, sample_weight)``."""
    import dask

    job = Job(options, type(backend))
    chunks = _named_blocks(true, pred, weight)
    if not decomposable(moments.spec_of(options)):  # one part: every chunk brought together
        trues, preds, weights = zip(*chunks)
        chunks = [(dask.delayed(joined, pure=True)(list(trues)),
                   dask.delayed(joined, pure=True)(list(preds)),
                   None if weight is None else dask.delayed(joined, pure=True)(list(weights)))]
    if blocks is not None:
        blocks.extend(chunks)
    parts = [dask.delayed(block_named, pure=True)(t, p, w, job=job, weighted=weight is not None)
             for t, p, w in chunks]
    return dask.delayed(combined_named, pure=True, nout=3)(parts, job)


def _whole_outputs(true: Any, pred: Any) -> tuple[Any, Any]:
    """Both inputs rechunked so that every chunk holds every output."""
    return (true.rechunk({axis: -1 for axis in range(1, true.ndim)}),
            pred.rechunk({axis: -1 for axis in range(1, pred.ndim)}))


def _named_blocks(true: Any, pred: Any, weight: Any) -> list[tuple[Any, Any, Any]]:
    """The delayed ``(y_true, y_pred, sample_weight)`` of every chunk (rows aligned: known
    chunk lengths are made ``y_pred``'s, as ``blockwise`` would unify them)."""
    true, pred = _whole_outputs(true, pred)
    if not any(unknown_rows(a) for a in (true, pred, weight) if a is not None):
        rows = {0: pred.chunks[0]}
        true = true.rechunk(rows)
        weight = None if weight is None else weight.rechunk(rows)
    arrays = _aligned({"y_true": true, "y_pred": pred, "sample_weight": weight})
    blocks = [arrays[name].to_delayed().ravel() for name in ("y_true", "y_pred")]
    weights = (arrays["sample_weight"].to_delayed().ravel() if weight is not None
               else [None] * len(blocks[0]))
    return list(zip(*blocks, weights))


def _named_statistics(backend: Backend, options: Options, true: Any, pred: Any, weight: Any
                      ) -> ScaledStatistics:
    import dask.array as da

    k = _outputs(pred)
    stats, exponent, _ = _named_parts(backend, options, true, pred, weight)
    named = {key: da.from_delayed(stats[key], shape=(k,), dtype=np.float64)
             for key, _ in layout(moments.spec_of(options))}
    return ScaledStatistics(named, named["weight"],
                            da.from_delayed(exponent, shape=(), dtype=np.int64))


def _named_value(backend: Backend, options: Options, true: Any, pred: Any, weight: Any,
                 output_weights: Any, stats: Any = None) -> Any:
    """The lazy value from the chunks' combined statistics (``stats``: already combined)."""
    import dask
    import dask.array as da

    if stats is None:
        stats, _, _ = _named_parts(backend, options, true, pred, weight)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape))[1:]
    dtype = backend.result_dtype(backend.namespace(pred), true.dtype, pred.dtype)
    value_shape = shape if options.raw else ()
    job = Job(options, type(backend))
    return da.from_delayed(dask.delayed(final_named, pure=True)(
        stats, job, value_shape, output_weights, np.dtype(dtype)), shape=value_shape, dtype=dtype)


def _named_value_and_grad(backend: Backend, options: Options, true: Any, pred: Any, weight: Any,
                          output_weights: Any) -> tuple[Any, Any]:
    """The lazy value and gradient of a loss with statistics of its own: the statistics of all
    chunks first (and, for a maximum, how many elements of all chunks attain it), then each
    chunk's gradient by the record's gradient function with those statistics, as one call's."""
    import dask
    import dask.array as da

    moments.analytic_gradient(options)  # no analytic gradient: the error now, not at compute
    if not decomposable(moments.spec_of(options)):  # a median's gradient: every row at once
        true, pred = true.rechunk({0: -1}), pred.rechunk({0: -1})
        weight = None if weight is None else weight.rechunk({0: -1})
    chunks: list[tuple[Any, Any, Any]] = []
    stats, exponent, _ = _named_parts(backend, options, true, pred, weight, chunks)
    value = _named_value(backend, options, true, pred, weight, output_weights, stats)
    job = Job(options, type(backend))
    weighted = weight is not None
    counts = [dask.delayed(block_ties, pure=True)(t, p, w, stats, job=job, weighted=weighted)
              for t, p, w in chunks]
    total = dask.delayed(added_ties, pure=True)(counts, stats)
    true, pred = _whole_outputs(true, pred)
    grad_dtype = _result_dtype(true, pred)
    grad = da.blockwise(block_named_gradient, _index(pred.ndim), *_indexed(true, pred, weight),
                        dtype=grad_dtype, meta=np.empty((0,) * pred.ndim, grad_dtype),
                        concatenate=True, job=job, weighted=weighted, stats=stats,
                        exponent=exponent, counts=total, output_weights=output_weights)
    return value, grad


def joined(chunks: list[Any]) -> Any:
    """Chunks of rows as one array (in their own library)."""
    import array_api_compat

    return array_api_compat.array_namespace(*chunks).concat(chunks, axis=0)


def block_named(true: Any, pred: Any, weight: Any = None, *, job: Job, weighted: bool
                ) -> tuple[dict[str, np.ndarray], int, int]:
    """One chunk's named statistics (NumPy float64), weight exponent and rows."""
    backend, true, pred, weight = _dispatched(true, pred, weight, job, weighted)
    statistics, c = pipeline.statistics(backend, job.options, true, pred, weight, partial=True)
    keys = [key for key, _ in layout(moments.spec_of(job.options))]
    values = backend.fetch(tuple(statistics.total[key] for key in keys))
    named = {key: np.asarray(value, np.float64).reshape(-1) for key, value in zip(keys, values)}
    return named, int(statistics.exponent), c.shape[0]


def combined_named(parts: list[Any], job: Job) -> tuple[dict[str, np.ndarray], int, int]:
    spec = moments.spec_of(job.options)
    with np.errstate(all="ignore"):
        stats, exponent = moments.combined_parts(np, spec, [(s, e) for s, e, _ in parts])
    return stats, exponent, sum(rows for _, _, rows in parts)


def final_named(stats: dict[str, np.ndarray], job: Job, shape: tuple[int, ...],
                output_weights: Any, dtype: np.dtype) -> np.ndarray:
    """The value from the combined statistics, as one call's."""
    if not np.any(stats["weight"] > 0):
        raise ValueError("sample_weight sums to 0; at least one weight must be positive")
    weights = None if output_weights is None else np.asarray(output_weights, np.float64).ravel()
    with np.errstate(all="ignore"):
        value = moments.value(np, job.options, stats, shape, weights)
    return np.asarray(value).astype(dtype)


def _named_columns(true: Any, pred: Any, weight: Any, job: Job, weighted: bool,
                   exponent: int | None = None) -> tuple[Any, Any, Any]:
    """A checked chunk as wide columns, its kept mask and its backend; with ``exponent``, its
    weights in the units of all chunks' statistics (divided by ``2**exponent``, not by its own
    power of two: exact, but for weights ~2**1000 times lighter than the largest chunk's)."""
    backend, c = _chunk(true, pred, weight, job, weighted)
    cols = columns(backend, c.y_true, c.y_pred, c.sample_weight, wide=True)
    if exponent is not None and cols.weight is not None and c.weight_exponent != exponent:
        with np.errstate(under="ignore"):
            cols = cols._replace(weight=times_power_of_two(cols.weight,
                                                           c.weight_exponent - exponent))
    return cols, kept(cols, job.options), backend


def _like(backend: Backend, stats: dict[str, np.ndarray], like: Any) -> dict[str, Any]:
    """NumPy statistics as arrays of ``like``'s library, device and dtype."""
    xp = backend.namespace(like)
    return {key: backend.asarray_like(xp, value, like) for key, value in stats.items()}


def block_ties(true: Any, pred: Any, weight: Any, stats: dict[str, np.ndarray], *, job: Job,
               weighted: bool) -> dict[str, np.ndarray]:
    """How many elements of a chunk attain each maximum of all chunks (:func:`moments.ties`)."""
    cols, keep, backend = _named_columns(true, pred, weight, job, weighted)
    counts = moments.ties(cols.xp, job.options, _like(backend, stats, cols.y_pred), cols, keep)
    values = backend.fetch(tuple(counts.values()))
    return {key: np.asarray(value, np.float64).reshape(-1) for key, value in zip(counts, values)}


def added_ties(counts: list[dict[str, np.ndarray]], stats: dict[str, np.ndarray]
               ) -> dict[str, np.ndarray]:
    """The chunks' counts of :func:`block_ties` added (the weights' check of the gradient)."""
    if not np.any(stats["weight"] > 0):
        raise ValueError("sample_weight sums to 0; at least one weight must be positive")
    total: dict[str, np.ndarray] = {}
    for part in counts:
        for key, value in part.items():
            total[key] = total[key] + value if key in total else value
    return total


def block_named_gradient(true: Any, pred: Any, weight: Any = None, *, job: Job, weighted: bool,
                         stats: dict[str, np.ndarray], exponent: int,
                         counts: dict[str, np.ndarray], output_weights: Any) -> Any:
    """A chunk's gradient by the record's gradient function, with the statistics (and counts
    of maxima) of all chunks; its weights in the statistics' units."""
    if not weighted:
        weight = None
    cols, keep, backend = _named_columns(true, pred, weight, job, weighted, exponent)
    like = cols.y_pred
    weights = (None if output_weights is None
               else backend.asarray_like(cols.xp, np.asarray(output_weights, np.float64).ravel(),
                                         like))
    with np.errstate(all="ignore"):
        return moments.gradient(cols.xp, job.options, _like(backend, stats, like), cols, keep,
                                weights, _like(backend, counts, like))


def _finished(parts: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, int, bool]:
    return parts[:k], parts[k:2 * k], int(parts[_EXPONENT]), bool(parts[_FINITE] == 1)


def final_value(parts: np.ndarray, job: Job, k: int, shape: tuple[int, ...],
                output_weights: Any, dtype: np.dtype) -> np.ndarray:
    """The value from the added statistics (in NumPy, as one call's): the engine's final step,
    a sum brought to the caller's units (inf beyond float64), in the result dtype, and a
    LossOverflowWarning when it is inf although no input was."""
    options = job.options
    total, count, exponent, finite = _finished(parts, k)
    weights, output_exponent = None, 0
    if output_weights is not None:  # a sum's weights by a power of two, as one call's checks do
        weights, output_exponent = finalize.relative_output_weights(
            options, np.asarray(output_weights, np.float64).ravel())
    with np.errstate(all="ignore"):
        value = finalize.finalize(np, options, total, count, shape, weights, _sqrt)
        if options.reduction == "sum":
            value = np.ldexp(value, exponent + output_exponent)
        value = np.asarray(value).astype(dtype)
    if finite and np.isinf(value).any():
        overflow.warn(dtype)
    return value


def gradient_scale(parts: np.ndarray, job: Job, k: int, output_weights: Any
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The gradient's per-output factor and the weight exponent it is in: the mean's in the
    statistics' scaled units, a sum's in the caller's (exponent 0)."""
    options = job.options
    total, count, exponent, _ = _finished(parts, k)
    weights = None if output_weights is None else np.asarray(output_weights, np.float64).ravel()
    with np.errstate(all="ignore"):
        factor = finalize.gradient_scale(np, options, total, count, weights)
    return factor, np.asarray(exponent if options.reduction == "mean" else 0, np.int64)


def _sqrt(xp: Any, x: Any) -> Any:
    return np.sqrt(x)


def _elementwise(backend: Backend, options: Options, true: Any, pred: Any, weight: Any) -> Any:
    import dask.array as da

    dtype = _result_dtype(true, pred)
    index = _index(pred.ndim)
    return da.blockwise(block_losses, index, *_indexed(true, pred, weight), dtype=dtype,
                        meta=np.empty((0,) * pred.ndim, dtype), job=Job(options, type(backend)),
                        weighted=weight is not None)


def _gradient(backend: Backend, options: Options, true: Any, pred: Any, weight: Any, scale: Any,
              exponent: Any) -> Any:
    import dask.array as da

    whole = {axis: -1 for axis in range(1, pred.ndim)}  # each chunk holds every output
    pred = pred.rechunk(whole)
    true = true.rechunk({axis: -1 for axis in range(1, true.ndim)})
    dtype = _result_dtype(true, pred)
    return da.blockwise(block_gradient, _index(pred.ndim), *_indexed(true, pred, weight),
                        scale, None, exponent, None, dtype=dtype,
                        meta=np.empty((0,) * pred.ndim, dtype), concatenate=True,
                        job=Job(options, type(backend)), weighted=weight is not None)


def _result_dtype(true: Any, pred: Any) -> np.dtype:
    """The dtype of elementwise results and gradients: as the NumPy backend's."""
    floats = [np.dtype(x.dtype) for x in (pred, true) if np.dtype(x.dtype).kind == "f"]
    if len(floats) == 2:
        return np.result_type(*floats)
    return floats[0] if floats else np.dtype(np.float64)


# -- what runs on the workers: one chunk pair through its own library's backend ------------------
# Each chunk is checked as one part of the data (``partial=True``: it may be empty, its weights
# may sum to 0), so value checks raise inside the graph, when the result is computed.
_chunk_backends: dict[type, Backend] = {}


def _chunk_backend(chunk: Any, generic: type[Backend]) -> Backend:
    """The backend of a chunk's library: NumPy's for NumPy chunks, else the generic backend
    the graph was built by (the Array API namespace of CuPy, ... chunks). One instance of
    each per worker process."""
    if isinstance(chunk, np.ndarray):
        from mseplug.backend.numpy.backend import NumpyBackend

        kind: type[Backend] = NumpyBackend
    else:
        kind = generic
    backend = _chunk_backends.get(kind)
    if backend is None:
        backend = _chunk_backends.setdefault(kind, kind())
    return backend


class Job:
    """A call's options as they travel to Dask workers.

    A loss registered only in the calling process is not known by name in a
    worker process, so the loss record travels by value (its functions by
    reference where they can be imported, as the built-ins').
    """

    def __init__(self, options: Options, generic: type[Backend]) -> None:
        self.options = options
        self.generic = generic  # the class of the backend that built the graph (by reference)

    def __reduce__(self) -> Any:
        return (_job, (self.options.loss.fields(), tuple(self.options)[1:], self.generic))


_rebuilt: dict[tuple[Any, ...], Loss] = {}


def _job(fields: dict[str, Any], rest: tuple[Any, ...], generic: type[Backend]) -> Job:
    """The Job in a worker: the record it was given, rebuilt once per worker (its functions
    came by reference where they can be imported, as the built-ins')."""
    key = (fields["name"], fields["elementwise"], fields["derivative"])
    loss = _rebuilt.get(key) or _rebuilt.setdefault(key, Loss(**fields))
    return Job(Options(loss, *rest), generic)


def _chunk(true: Any, pred: Any, weight: Any, job: Job, weighted: bool) -> Any:
    """The checked chunk pair (as one part of the data) and its backend."""
    backend, true, pred, weight = _dispatched(true, pred, weight, job, weighted)
    return backend, pipeline.check(backend, job.options, true, pred, weight, partial=True)


def _dispatched(true: Any, pred: Any, weight: Any, job: Job, weighted: bool) -> Any:
    """The chunk's backend and arrays, once their lengths are known to agree."""
    if true.shape[0] != pred.shape[0] or (weighted and weight.shape[0] != pred.shape[0]):
        rows = "row" if true.shape[0] == 1 else "rows"
        sizes = f"{true.shape[0]} {rows} of y_true, {pred.shape[0]} of y_pred"
        if weighted:
            sizes += f", {weight.shape[0]} of sample_weight"
        raise ValueError(
            f"chunks differ: {sizes}; inputs with unknown chunk lengths must come in the same "
            "chunks (the same partitions of one DataFrame)"
        )
    return _chunk_backend(pred, job.generic), true, pred, weight if weighted else None


#: Where the statistics vector keeps whether every input was finite, and the weight exponent.
_FINITE, _EXPONENT = -2, -1


def block_statistics(true: Any, pred: Any, weight: Any = None, *, job: Job,
                      weighted: bool) -> np.ndarray:
    """One row ``[S..., W..., Σw, rows, finite, exponent]`` of a chunk: its statistics in the
    units of its weights divided by ``2**exponent`` (see :func:`aligned_sum`), and 1 when its
    inputs are finite (read only when its sums are not)."""
    backend, true, pred, weight = _dispatched(true, pred, weight, job, weighted)
    options = job.options
    statistics, c = pipeline.statistics(backend, options, true, pred, weight, partial=True)
    # Σw of the chunk: W itself (of any output) unless "omit" left elements out of W.
    weight_sum: Any = c.sample_weight if options.nan_policy == "omit" else statistics.weight
    total, count, weight_sum = backend.fetch((statistics.total, statistics.weight, weight_sum))
    if c.sample_weight is None:
        weight_sum = c.shape[0]
    elif options.nan_policy != "omit":
        weight_sum = np.reshape(weight_sum, -1)[:1]
    weight_sum = float(np.sum(weight_sum, dtype=np.float64))
    finite = bool(np.isfinite(total).all()) or not any(
        bool(np.any(np.isinf(backend.to_numpy(x)))) for x in (c.y_true, c.y_pred))
    return np.concatenate([np.reshape(total, -1), np.reshape(count, -1),
                           [weight_sum, c.shape[0], float(finite), statistics.exponent]]
                          ).astype(np.float64)[None, :]


def aligned_sum(parts: np.ndarray) -> np.ndarray:
    """The rows of :func:`block_statistics` added into one, each brought to the largest
    weight exponent first (a power of two: exact, but for parts ~2**1000 times lighter)."""
    if not parts.shape[0]:
        return np.zeros((1, parts.shape[1]))
    exponents = parts[:, _EXPONENT].astype(np.int64)
    common = int(exponents.max())
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.ldexp(parts[:, :-3], (exponents - common)[:, None]).sum(axis=0)
    rows, finite = parts[:, -3].sum(), parts[:, _FINITE].min()
    return np.concatenate([sums, [rows, finite, common]])[None, :]


def ldexp(x: Any, exponent: Any) -> Any:
    """Lazy ``x · 2**exponent`` (``exponent`` a lazy 0-d integer), quietly ``inf`` beyond float64."""
    return _with_scalar(_ldexp, x, exponent)


def _with_scalar(function: Any, x: Any, scalar: Any) -> Any:
    """Lazy ``function(block, scalar)`` on every block of ``x``, ``scalar`` a lazy 0-d array."""
    import dask.array as da

    index = string.ascii_lowercase[:x.ndim]
    return da.blockwise(function, index, x, index, scalar, None, dtype=x.dtype,
                        meta=np.empty((0,) * x.ndim, x.dtype))


def _ldexp(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.ldexp(x, np.asarray(exponent, np.int64))


def warn_if_overflowed(value: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """``value``, after a LossOverflowWarning if it is inf although every input was finite."""
    if np.any(np.isinf(value)) and bool(np.all(np.asarray(finite) == 1)):
        overflow.warn(value.dtype)
    return value


def block_losses(true: Any, pred: Any, weight: Any = None, *, job: Job, weighted: bool) -> Any:
    """The weighted elementwise losses of a chunk (its backend warns of an overflow)."""
    backend, c = _chunk(true, pred, weight, job, weighted)
    losses = backend.run(loss_value, job.options, c.y_true, c.y_pred, c.sample_weight, None,
                         job.options.params)
    return backend.finish(losses, c)


def block_gradient(true: Any, pred: Any, weight: Any = None, scale: Any = None,
                   exponent: Any = None, *, job: Job, weighted: bool) -> Any:
    """The gradient of a chunk: ``scale`` (per output) is in the units of weights divided by
    ``2**exponent``; this chunk's weights are divided by its own power of two."""
    if not weighted:
        weight, scale, exponent = None, weight, scale
    backend, c = _chunk(true, pred, weight, job, weighted)
    cols = columns(backend, c.y_true, c.y_pred, c.sample_weight)
    shift = c.weight_exponent - int(np.asarray(exponent))
    factor = backend.asarray_like(cols.xp, np.ldexp(np.asarray(scale, np.float64), shift),
                                  cols.y_pred)
    return scaled_gradient(job.options, cols, factor, job.options.params)


def block_rows(pred: Any) -> np.ndarray:
    return np.array([pred.shape[0]], np.int64)


def checked_weight_sum(parts: np.ndarray, k: int) -> np.ndarray:
    if parts.size and not parts[2 * k] > 0:
        raise ValueError("sample_weight sums to 0; at least one weight must be positive")
    return parts
