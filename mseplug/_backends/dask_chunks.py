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
from mseplug._kernels import columns, loss_statistics, loss_value, scaled_gradient
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
    if true.shape[0] != pred.shape[0] or (weighted and weight.shape[0] != pred.shape[0]):
        sizes = f"{true.shape[0]} rows of y_true, {pred.shape[0]} of y_pred"
        if weighted:
            sizes += f", {weight.shape[0]} of sample_weight"
        raise ValueError(
            f"chunks differ: {sizes}; inputs with unknown chunk lengths must come in the same "
            "chunks (the same partitions of one DataFrame)"
        )
    backend, true, pred, weight = dispatch(true, pred, weight if weighted else None)
    return backend, backend.check(job.options, true, pred, weight, partial=True)


def block_statistics(true: Any, pred: Any, weight: Any = None, *, job: Job,
                      weighted: bool) -> np.ndarray:
    backend, c = _chunk(true, pred, weight, job, weighted)
    options = job.options
    total, count = backend.run(loss_statistics, options, c.y_true, c.y_pred, c.sample_weight,
                               options.params)
    # Σw of the chunk: W itself (of any output) unless "omit" left elements out of W.
    weight_sum: Any = c.sample_weight if options.nan_policy == "omit" else count
    total, count, weight_sum = backend.fetch((total, count, weight_sum))
    if c.sample_weight is None:
        weight_sum = c.shape[0]
    elif options.nan_policy != "omit":
        weight_sum = np.reshape(weight_sum, -1)[:1]
    weight_sum = float(np.sum(weight_sum, dtype=np.float64))
    return np.concatenate([np.reshape(total, -1), np.reshape(count, -1), [weight_sum, c.shape[0]]]
                          ).astype(np.float64)[None, :]


def block_losses(true: Any, pred: Any, weight: Any = None, *, job: Job, weighted: bool) -> Any:
    backend, c = _chunk(true, pred, weight, job, weighted)
    return backend.run(loss_value, job.options, c.y_true, c.y_pred, c.sample_weight, None,
                       job.options.params)


def block_gradient(true: Any, pred: Any, weight: Any = None, scale: Any = None, *, job: Job,
                    weighted: bool) -> Any:
    if not weighted:
        weight, scale = None, weight
    backend, c = _chunk(true, pred, weight, job, weighted)
    cols = columns(backend, c.y_true, c.y_pred, c.sample_weight)
    factor = backend.asarray_like(cols.xp, scale, cols.y_pred)
    return scaled_gradient(job.options, cols, factor, job.options.params)


def block_rows(pred: Any) -> np.ndarray:
    return np.array([pred.shape[0]], np.int64)


def checked_weight_sum(parts: np.ndarray, k: int) -> np.ndarray:
    if parts.size and not parts[2 * k] > 0:
        raise ValueError("sample_weight sums to 0; at least one weight must be positive")
    return parts
