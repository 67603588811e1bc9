"""What runs on Dask workers: one chunk pair through its own library's backend.

:mod:`mseplug._backends.dask_blocks` builds the graph; its tasks call the
functions here with NumPy (or CuPy, ...) chunks. Each chunk is checked as
one part of the data (``partial=True``: it may be empty, its weights may sum
to 0), so value checks raise inside the graph, when the result is computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mseplug._backend_registry import dispatch
from mseplug._kernels import columns, loss_value, scaled_gradient
from mseplug._loss import Loss
from mseplug._options import Options


class Job:
    """A call's options as they travel to Dask workers.

    A loss registered only in the calling process is not known by name in a
    worker process, so the loss record travels by value (its functions by
    reference where they can be imported, as the built-ins').
    """

    def __init__(self, options: Options) -> None:
        self.options = options

    def __reduce__(self) -> Any:
        loss = self.options.loss
        fields = (loss.name, loss.elementwise, loss.derivative, dict(loss.params), loss.root,
                  dict(loss.native), loss.doc)
        return (_job, (fields, tuple(self.options)[1:]))


_rebuilt: dict[tuple[Any, ...], Loss] = {}


def _job(fields: tuple[Any, ...], rest: tuple[Any, ...]) -> Job:
    """The Job in a worker: the registered loss of that name if it is the same, else a copy."""
    from mseplug._loss_registry import get_record, losses

    name, elementwise, derivative = fields[:3]
    loss = get_record(name) if name in losses() else None
    if loss is None or loss.elementwise is not elementwise or loss.derivative is not derivative:
        key = (name, elementwise, derivative)
        loss = _rebuilt.get(key) or _rebuilt.setdefault(key, Loss(*fields))
    return Job(Options(loss, *rest))


def _chunk(true: Any, pred: Any, weight: Any, job: Job, weighted: bool) -> Any:
    """The checked chunk pair (as one part of the data) and its backend."""
    backend, true, pred, weight = _dispatched(true, pred, weight, weighted)
    return backend, backend.check(job.options, true, pred, weight, partial=True)


def _dispatched(true: Any, pred: Any, weight: Any, weighted: bool) -> Any:
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
    return dispatch(true, pred, weight if weighted else None)


def block_statistics(true: Any, pred: Any, weight: Any = None, *, job: Job,
                      weighted: bool) -> np.ndarray:
    """One row ``[S..., W..., Σw, rows, exponent]`` of a chunk: its statistics in the units of
    its weights divided by ``2**exponent`` (see :func:`aligned_sum`)."""
    backend, true, pred, weight = _dispatched(true, pred, weight, weighted)
    options = job.options
    statistics, c = backend.statistics(options, true, pred, weight, partial=True)
    # Σw of the chunk: W itself (of any output) unless "omit" left elements out of W.
    weight_sum: Any = c.sample_weight if options.nan_policy == "omit" else statistics.weight
    total, count, weight_sum = backend.fetch((statistics.total, statistics.weight, weight_sum))
    if c.sample_weight is None:
        weight_sum = c.shape[0]
    elif options.nan_policy != "omit":
        weight_sum = np.reshape(weight_sum, -1)[:1]
    weight_sum = float(np.sum(weight_sum, dtype=np.float64))
    return np.concatenate([np.reshape(total, -1), np.reshape(count, -1),
                           [weight_sum, c.shape[0], statistics.exponent]]
                          ).astype(np.float64)[None, :]


def aligned_sum(parts: np.ndarray) -> np.ndarray:
    """The rows of :func:`block_statistics` added into one, each brought to the largest
    weight exponent first (a power of two: exact, but for parts ~2**1000 times lighter)."""
    if not parts.shape[0]:
        return np.zeros((1, parts.shape[1]))
    exponents = parts[:, -1].astype(np.int64)
    common = int(exponents.max())
    with np.errstate(over="ignore"):
        sums = np.ldexp(parts[:, :-2], (exponents - common)[:, None]).sum(axis=0)
    return np.concatenate([sums, [parts[:, -2].sum(), common]])[None, :]


def block_losses(true: Any, pred: Any, weight: Any = None, *, job: Job, weighted: bool) -> Any:
    backend, c = _chunk(true, pred, weight, job, weighted)
    return backend.run(loss_value, job.options, c.y_true, c.y_pred, c.sample_weight, None,
                       job.options.params)


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
