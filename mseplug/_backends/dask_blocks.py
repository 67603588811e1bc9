"""Dask through the generic backend: the engine's kernels run on each chunk, lazily.

A Dask array is many chunks of another library's arrays (NumPy, usually).
Instead of running the engine's kernels on the Dask array (one graph layer
per array operation), each chunk pair goes whole to the chunk library's own
backend — for NumPy chunks the blocked float64 kernels — which returns that
chunk's sufficient statistics ``(S, W)``; the chunks' statistics are summed
in the graph and :func:`mseplug._reduce.finalize` makes the value, exactly as
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
tasks run on each chunk are in :mod:`mseplug._backends.dask_chunks`.
"""

from __future__ import annotations

import math
import string
import sys
from typing import Any

import numpy as np

from mseplug import _reduce
from mseplug import _validation as v
from mseplug._backends import dask_chunks as chunks
from mseplug._engine import Backend
from mseplug._kernels import loss_value, loss_value_and_grad
from mseplug._options import Options
from mseplug._reduce import ScaledStatistics


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
    if kernel is loss_value:
        true, pred, weight, output_weights, _ = arrays
        if options.reduction == "none":
            return _elementwise(options, true, pred, weight)
        return _value(backend, options, true, pred, weight, output_weights)[0]
    if kernel is loss_value_and_grad:
        true, pred, weight, output_weights, _ = arrays
        value, (scale, exponent) = _value(backend, options, true, pred, weight, output_weights,
                                          scale=True)
        return value, _gradient(options, true, pred, weight, scale, exponent)
    return kernel(backend, options, *arrays)


def statistics(options: Options, true: Any, pred: Any, weight: Any) -> ScaledStatistics:
    """The lazy statistics of every chunk, added at one weight exponent (lazy too)."""
    k = _outputs(pred)
    parts = _statistics(options, true, pred, weight)
    return ScaledStatistics(parts[:k], parts[k:2 * k], parts[2 * k + 2].astype(np.int64))


def unscaled(statistics: ScaledStatistics) -> tuple[Any, Any]:
    """Lazy ``(S, W)`` in the caller's weight units (``inf`` beyond float64)."""
    import dask.array as da

    exponent = statistics.exponent
    return da.ldexp(statistics.total, exponent), da.ldexp(statistics.weight, exponent)


def rows(pred: Any) -> Any:
    """The number of rows of a Dask array: its length, or a lazy count when unknown."""
    if not unknown_rows(pred):
        return int(pred.shape[0])
    import dask.array as da

    index = _index(pred.ndim)
    counts = da.blockwise(chunks.block_rows, "i", pred, index, adjust_chunks={"i": 1}, concatenate=True,
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


def _statistics(options: Options, true: Any, pred: Any, weight: Any) -> Any:
    """The lazy ``(2K + 3,)`` vector ``[S..., W..., Σw, rows, exponent]`` of all chunks: each
    chunk's row (:func:`~mseplug._backends.dask_chunks.block_statistics`), added at the
    largest weight exponent (:func:`~mseplug._backends.dask_chunks.aligned_sum`)."""
    import dask.array as da

    width = 2 * _outputs(pred) + 3
    parts = da.blockwise(
        chunks.block_statistics, "iz", *_indexed(true, pred, weight), new_axes={"z": width},
        adjust_chunks={"i": 1}, concatenate=True, dtype=np.float64,
        meta=np.empty((0, 0), np.float64), job=chunks.Job(options), weighted=weight is not None,
    )
    whole = parts.rechunk({0: -1})
    return da.map_blocks(chunks.aligned_sum, whole, chunks=((1,), (width,)), dtype=np.float64)[0]


def _value(backend: Backend, options: Options, true: Any, pred: Any, weight: Any,
           output_weights: Any, scale: bool = False) -> tuple[Any, Any]:
    """The lazy loss value (and the gradient's per-output scale with its weight exponent) from
    the chunks' statistics."""
    import dask.array as da

    xp = backend.namespace(pred)
    k = _outputs(pred)
    parts = _statistics(options, true, pred, weight)
    if weight is not None:  # the whole call's weights must sum to more than 0
        parts = da.map_blocks(chunks.checked_weight_sum, parts, k, dtype=np.float64)
    total, count, exponent = parts[:k], parts[k:2 * k], parts[2 * k + 2].astype(np.int64)
    weights = None if output_weights is None else xp.asarray(output_weights, dtype=xp.float64)
    shape = v.common_shape(tuple(true.shape), tuple(pred.shape))[1:]
    value = _reduce.finalize(xp, options, total, count, shape, weights, backend.sqrt)
    if options.reduction == "sum":  # a sum in the caller's units (inf beyond float64)
        value = da.ldexp(value, exponent)
    dtype = backend.result_dtype(xp, true.dtype, pred.dtype)
    factor = None
    if scale:  # the gradient's scale: of the mean in the scaled units, of a sum in the caller's
        factor = (_reduce.gradient_scale(xp, options, total, count, weights),
                  exponent if options.reduction == "mean" else da.zeros((), np.int64))
    return xp.astype(value, dtype), factor


def _elementwise(options: Options, true: Any, pred: Any, weight: Any) -> Any:
    import dask.array as da

    dtype = _result_dtype(true, pred)
    index = _index(pred.ndim)
    return da.blockwise(chunks.block_losses, index, *_indexed(true, pred, weight), dtype=dtype,
                        meta=np.empty((0,) * pred.ndim, dtype), job=chunks.Job(options),
                        weighted=weight is not None)


def _gradient(options: Options, true: Any, pred: Any, weight: Any, scale: Any,
              exponent: Any) -> Any:
    import dask.array as da

    whole = {axis: -1 for axis in range(1, pred.ndim)}  # each chunk holds every output
    pred = pred.rechunk(whole)
    true = true.rechunk({axis: -1 for axis in range(1, true.ndim)})
    dtype = _result_dtype(true, pred)
    return da.blockwise(chunks.block_gradient, _index(pred.ndim), *_indexed(true, pred, weight),
                        scale, None, exponent, None, dtype=dtype,
                        meta=np.empty((0,) * pred.ndim, dtype), concatenate=True,
                        job=chunks.Job(options), weighted=weight is not None)


def _result_dtype(true: Any, pred: Any) -> np.dtype:
    """The dtype of elementwise results and gradients: as the NumPy backend's."""
    floats = [np.dtype(x.dtype) for x in (pred, true) if np.dtype(x.dtype).kind == "f"]
    if len(floats) == 2:
        return np.result_type(*floats)
    return floats[0] if floats else np.dtype(np.float64)
