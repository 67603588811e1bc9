"""``all_reduce``: one Accumulator's statistics summed across torch.distributed ranks.

Every rank sends two tensors through ``torch.distributed.all_reduce``: a small
header (a fingerprint of the accumulator's options and the shape of its
outputs, reduced with ``MAX`` over the values and their negatives, so every
rank learns the largest and the smallest), then one float64 tensor
``[S..., W..., count]`` reduced with ``SUM``. The header lets a rank that saw
no data take part (it learns the output shape from the others) and makes every
rank raise the same error, with no rank left waiting, when accumulators differ.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mseplug._accumulate import Accumulator

#: Output dimensions the header carries (an output shape of more dimensions is an error).
MAX_OUTPUT_DIMS = 8
_HEADER = 2 + MAX_OUTPUT_DIMS  # fingerprint, ndim, dims


def all_reduce(acc: Accumulator, group: Any = None) -> Accumulator:
    """The Accumulator of every rank's samples, returned on every rank.

    A collective: every rank of ``group`` must call it, in the same order as
    its other collectives, including ranks that saw no data. ``acc`` itself
    is left as it is (update it further and reduce again later without
    counting anything twice). Works with gloo (CPU tensors) and nccl (CUDA
    tensors on the current device): two ``all_reduce`` calls, one small and
    one float64 tensor of ``2·K + 1`` numbers for ``K`` outputs.

    Parameters
    ----------
    acc : Accumulator
        This rank's accumulator; every rank's must have the same loss,
        parameters, ``multioutput`` and ``nan_policy``.
    group : ProcessGroup, optional
        The process group (the default group when ``None``).

    Returns
    -------
    Accumulator
        A new accumulator holding the sum of all ranks' statistics (empty if
        no rank saw data).

    Raises
    ------
    ValueError
        On every rank alike, when the ranks' accumulators have different
        options or output shapes.
    """
    if not isinstance(acc, Accumulator):
        raise TypeError(f"acc must be a mseplug.Accumulator; got {type(acc).__name__}")
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "mseplug.torch.all_reduce needs torch.distributed initialised; call "
            "torch.distributed.init_process_group first"
        )
    device = _device(group)
    header = torch.as_tensor(_header(acc), dtype=torch.float64, device=device)
    dist.all_reduce(header, op=dist.ReduceOp.MAX, group=group)
    shape = _agreed_shape(header.cpu().numpy())
    result = acc.empty_copy()
    if shape is None:  # no rank saw data
        return result
    k = math.prod(shape)
    statistics = np.zeros(2 * k + 1)
    if acc.total is not None and acc.weight is not None:
        statistics[:k], statistics[k:2 * k], statistics[2 * k] = acc.total, acc.weight, acc.count
    summed = torch.as_tensor(statistics, device=device)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=group)
    values = summed.cpu().numpy()
    result._add(values[:k].copy(), values[k:2 * k].copy(), round(float(values[2 * k])), shape,
                merging=True)
    return result


def _device(group: Any) -> torch.device:
    """Where the group's collectives take tensors: the current CUDA device for nccl, else CPU."""
    if "nccl" in str(dist.get_backend(group)).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _fingerprint(acc: Accumulator) -> float:
    """A number every rank computes alike from the options (an exact float64)."""
    options = acc.options
    multioutput = options.multioutput
    described = [options.loss.name, [float(value) for value in options.params],
                 multioutput if isinstance(multioutput, str) else multioutput.tolist(),
                 options.nan_policy]
    return float(zlib.crc32(json.dumps(described).encode()))


def _header(acc: Accumulator) -> np.ndarray:
    """``[h, -h]`` with ``h = [fingerprint, ndim, dims...]`` (dims padded with 1); a rank
    without data sends ``-inf`` for the shape, which no ``MAX`` picks."""
    h = np.full(_HEADER, -np.inf)
    h[0] = _fingerprint(acc)
    shape = acc.output_shape
    if shape is not None and acc.total is not None:
        h[1] = len(shape)
        h[2:] = 1
        h[2:2 + min(len(shape), MAX_OUTPUT_DIMS)] = shape[:MAX_OUTPUT_DIMS]
    negated = -h
    negated[1:][np.isinf(h[1:])] = -np.inf
    return np.concatenate([h, negated])


def _agreed_shape(header: np.ndarray) -> tuple[int, ...] | None:
    """The output shape all ranks with data agree on (``None``: no rank has data)."""
    largest, smallest = header[:_HEADER], -header[_HEADER:]
    if largest[0] != smallest[0]:
        raise ValueError(
            "mseplug.torch.all_reduce: the ranks' accumulators differ in loss, parameters, "
            "multioutput or nan_policy; build the same Accumulator on every rank"
        )
    if np.isneginf(largest[1]):
        return None
    ndim = int(largest[1])
    if ndim > MAX_OUTPUT_DIMS:
        raise ValueError(f"mseplug.torch.all_reduce takes outputs of at most {MAX_OUTPUT_DIMS} "
                         f"dimensions; got {ndim}")
    dims_agree = np.array_equal(largest[2:], smallest[2:])
    if dims_agree and int(smallest[1]) == ndim:
        return tuple(int(d) for d in largest[2:2 + ndim])
    if dims_agree and {int(smallest[1]), ndim} == {0, 1} and largest[2] == 1:
        return ()  # (n,) and (n, 1) data mix, as in one call
    low = tuple(int(d) for d in smallest[2:2 + int(smallest[1])])
    high = tuple(int(d) for d in largest[2:2 + ndim])
    raise ValueError(
        f"mseplug.torch.all_reduce: the ranks' accumulators have seen outputs of different "
        f"shapes (dimensions between {low} and {high}); every rank needs the same trailing shape"
    )
