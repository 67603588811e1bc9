"""``all_reduce``: one Accumulator's statistics summed across torch.distributed ranks.

Every rank sends two tensors through ``torch.distributed.all_reduce``: a small
header, then one float64 tensor ``[S..., W..., count]`` reduced with ``SUM``.
The header holds the accumulator's options field by field (the loss, each
parameter value, ``multioutput``, ``nan_policy``), the shape of its outputs and
the exponent its weights are scaled by, and is reduced with ``MAX`` over the
values and their negatives, so every rank learns the largest and the smallest
of each field. That lets a rank that saw no data take part (it learns the
output shape from the others), brings every rank's statistics to the largest
weight exponent before they are added, and makes every rank raise the same
error, naming the first field that differs, with no rank left waiting.

A loss with statistics of its own (R², the maximum error: ``Loss(statistics=...)``)
combines as its record's layout says: one ``MAX`` all_reduce of the shifts of
its centred moments (each rank's, where it has weight) and of its maxima,
then every rank re-centres its moments at the agreed shift (exactly) and one
``SUM`` all_reduce adds the sums: the result is the merge of every rank's
accumulator, as :meth:`~mseplug.Accumulator.merge` computes it.
"""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mseplug.engine import finalize, moments
from mseplug.loss.statistics import Statistics, layout
from mseplug.streaming.accumulator import Accumulator

#: Output dimensions and loss parameters the header carries (more is an error).
MAX_OUTPUT_DIMS = 8
MAX_PARAMS = 8
#: The header's fields: the options (compared), then the data's shape and weight exponent.
_LOSS, _PARAMS = 0, slice(1, 1 + MAX_PARAMS)
_MULTIOUTPUT, _NAN_POLICY = 1 + MAX_PARAMS, 2 + MAX_PARAMS
_NDIM, _DIMS = 3 + MAX_PARAMS, slice(4 + MAX_PARAMS, 4 + MAX_PARAMS + MAX_OUTPUT_DIMS)
_EXPONENT = 4 + MAX_PARAMS + MAX_OUTPUT_DIMS
_FAILED = _EXPONENT + 1  # 1 where the rank's deferred value checks failed
_HEADER = _FAILED + 1


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
        options or output shapes; for a metric that is not decomposable
        (a median: it works in one call only).
    """
    if not isinstance(acc, Accumulator):
        raise TypeError(f"acc must be a mseplug.Accumulator; got {type(acc).__name__}")
    moments.require_decomposable(acc.options, "mseplug.torch.all_reduce")
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(
            "mseplug.torch.all_reduce needs torch.distributed initialised; call "
            "torch.distributed.init_process_group first"
        )
    if len(acc.options.params) > MAX_PARAMS:
        raise ValueError(f"mseplug.torch.all_reduce takes losses of at most {MAX_PARAMS} "
                         f"parameters; {acc.options.loss.name!r} has {len(acc.options.params)}")
    device = _device(group)
    # A torch state is read here; a deferred check's error is raised on every rank alike.
    local, failure = None, None
    if acc.total is not None:
        try:
            local = acc._host_statistics("mseplug.torch.all_reduce")
        except ValueError as error:
            failure = error
    h = _header(acc, None if local is None else local[2], failed=failure is not None)
    header = torch.as_tensor(h, dtype=torch.float64, device=device)
    dist.all_reduce(header, op=dist.ReduceOp.MAX, group=group)
    largest, smallest = _extremes(header.cpu().numpy())
    if largest[_FAILED] > 0:
        if failure is not None:
            raise failure
        raise ValueError("mseplug.torch.all_reduce: another rank's accumulator failed a check "
                         "of its values (its error says which); nothing was reduced")
    _check_options_agree(acc, largest, smallest)
    shape = _agreed_shape(largest, smallest)
    result = acc.empty_copy()
    if shape is None:  # no rank saw data
        return result
    k = math.prod(shape)
    common = int(largest[_EXPONENT])
    if acc.options.loss.statistics is not None:
        named = _reduce_named(acc, acc.options.loss.statistics, local, common, k, device, group)
        result._add(named, named["weight"], common, round(float(named.pop("count")[0])), shape,
                    merging=True)
        return result
    statistics = np.zeros(2 * k + 1)
    if acc.total is not None and acc.weight is not None:
        assert local is not None
        total, weight, exponent = local
        shift = exponent - common  # <= 0: to the largest exponent of any rank
        statistics[:k] = finalize.times_power_of_two(total, shift)
        statistics[k:2 * k] = finalize.times_power_of_two(weight, shift)
        statistics[2 * k] = acc.count
    summed = torch.as_tensor(statistics, device=device)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM, group=group)
    values = summed.cpu().numpy()
    result._add(values[:k].copy(), values[k:2 * k].copy(), common, round(float(values[2 * k])),
                shape, merging=True)
    return result


def _reduce_named(acc: Accumulator, spec: Statistics, local: Any, common: int, k: int,
                  device: torch.device, group: Any) -> dict[str, np.ndarray]:
    """A loss's named statistics of every rank, exactly as merged: one MAX all_reduce of the
    shifts (a rank's, where it has weight) and maxima, so every rank re-centres its moments at
    one shift; then one SUM all_reduce of the sums (at the common weight exponent) and count."""
    keys = layout(spec)
    highest = [key for key, how in keys if how != "sum"]
    summed = [key for key, how in keys if how == "sum"]
    highs = np.full(len(highest) * k, -np.inf)
    stats = None
    if local is not None and acc.count:
        stats, _, exponent = local
        for i, key in enumerate(highest):
            values = stats[key]
            if key.endswith(".shift"):
                values = np.where(stats["weight"] > 0, values, -np.inf)
            highs[i * k:(i + 1) * k] = values
    reduced = torch.as_tensor(highs, device=device)
    dist.all_reduce(reduced, op=dist.ReduceOp.MAX, group=group)
    highs = reduced.cpu().numpy()
    agreed = {key: highs[i * k:(i + 1) * k].copy() for i, key in enumerate(highest)}
    shifts = {key: np.where(np.isfinite(value), value, 0.0) for key, value in agreed.items()
              if key.endswith(".shift")}
    sums = np.zeros(len(summed) * k + 1)
    if stats is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            part = moments.scaled(spec, moments.at_shifts(np, spec, stats, shifts),
                                  exponent - common)
        for i, key in enumerate(summed):
            sums[i * k:(i + 1) * k] = part[key]
        sums[-1] = acc.count
    total = torch.as_tensor(sums, device=device)
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    sums = total.cpu().numpy()
    named = {key: sums[i * k:(i + 1) * k].copy() for i, key in enumerate(summed)}
    named.update(agreed)
    named.update(shifts)
    named["count"] = sums[-1:]
    return named


def _device(group: Any) -> torch.device:
    """Where the group's collectives take tensors: the current CUDA device for nccl, else CPU."""
    if "nccl" in str(dist.get_backend(group)).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _fingerprint(value: Any) -> float:
    """A number every rank computes alike from a JSON-able value (an exact float64)."""
    return float(zlib.crc32(json.dumps(value).encode()))


def _header(acc: Accumulator, exponent: int | None, *, failed: bool = False) -> np.ndarray:
    """``[h, -h]``: ``h`` the fields above. A rank without data sends ``-inf`` for the shape and
    exponent, which no ``MAX`` picks."""
    options = acc.options
    h = np.full(_HEADER, -np.inf)
    h[_LOSS] = _fingerprint(options.loss.name)
    h[_PARAMS] = 0.0
    h[_PARAMS.start:_PARAMS.start + len(options.params)] = [float(p) for p in options.params]
    multioutput = options.multioutput
    h[_MULTIOUTPUT] = _fingerprint(multioutput if isinstance(multioutput, str)
                                   else np.asarray(multioutput, np.float64).tolist())
    h[_NAN_POLICY] = _fingerprint(options.nan_policy)
    shape = acc.output_shape
    if shape is not None and acc.total is not None:
        if len(shape) > MAX_OUTPUT_DIMS:
            raise ValueError(f"mseplug.torch.all_reduce takes outputs of at most "
                             f"{MAX_OUTPUT_DIMS} dimensions; got {len(shape)}")
        h[_NDIM] = len(shape)
        h[_DIMS] = 1
        h[_DIMS.start:_DIMS.start + len(shape)] = shape
        h[_EXPONENT] = exponent
    h[_FAILED] = float(failed)
    negated = -h
    negated[_NDIM:][np.isinf(h[_NDIM:])] = -np.inf
    return np.concatenate([h, negated])


def _extremes(header: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every field's largest and smallest value over the ranks (over ranks with data, for the
    shape and exponent: ``-inf`` and ``inf`` when none has data)."""
    return header[:_HEADER], -header[_HEADER:]


def _check_options_agree(acc: Accumulator, largest: np.ndarray, smallest: np.ndarray) -> None:
    """The same ValueError on every rank, naming the first option that differs."""
    differs = None
    if largest[_LOSS] != smallest[_LOSS]:
        differs = "the loss"
    else:
        names = list(acc.options.loss.params)
        for i in range(MAX_PARAMS):
            slot = _PARAMS.start + i
            if largest[slot] != smallest[slot]:
                name = names[i] if i < len(names) else f"parameter {i + 1}"
                differs = (f"{acc.options.loss.name}'s {name} (between {smallest[slot]:g} and "
                           f"{largest[slot]:g})")
                break
        else:
            if largest[_MULTIOUTPUT] != smallest[_MULTIOUTPUT]:
                differs = "multioutput"
            elif largest[_NAN_POLICY] != smallest[_NAN_POLICY]:
                differs = "nan_policy"
    if differs is not None:
        raise ValueError(
            f"mseplug.torch.all_reduce: the ranks' accumulators differ in {differs}; build the "
            "same Accumulator (loss, parameters, multioutput, nan_policy) on every rank"
        )


def _agreed_shape(largest: np.ndarray, smallest: np.ndarray) -> tuple[int, ...] | None:
    """The output shape all ranks with data agree on (``None``: no rank has data)."""
    if np.isneginf(largest[_NDIM]):
        return None
    ndim, low_ndim = int(largest[_NDIM]), int(smallest[_NDIM])
    dims_agree = np.array_equal(largest[_DIMS], smallest[_DIMS])
    if dims_agree and low_ndim == ndim:
        return tuple(int(d) for d in largest[_DIMS][:ndim])
    if dims_agree and {low_ndim, ndim} == {0, 1} and largest[_DIMS.start] == 1:
        return ()  # (n,) and (n, 1) data mix, as in one call
    low = tuple(int(d) for d in smallest[_DIMS][:low_ndim])
    high = tuple(int(d) for d in largest[_DIMS][:ndim])
    raise ValueError(
        f"mseplug.torch.all_reduce: the ranks' accumulators have seen outputs of different "
        f"shapes (dimensions between {low} and {high}); every rank needs the same trailing shape"
    )
