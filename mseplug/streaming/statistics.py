"""The exact loss of data spread over devices, processes or workers: sufficient statistics.

Every loss mseplug knows is, per output ``k``, a function of two sums over
the samples: ``S[k] = Σᵢ wᵢ·e(rᵢₖ)`` and ``W[k] = Σᵢ wᵢ`` (over the elements
``nan_policy="omit"`` keeps). Sums of parts add up, so each part (a device's
shard inside ``shard_map``, a torch.distributed rank, a Dask partition)
computes its ``(S, W)``, one collective adds them (``jax.lax.psum``,
``torch.distributed.all_reduce``) and :func:`loss_from_statistics` turns the
totals into the loss of all the data — exactly, for every loss, RMSE
included, and with gradients. Averaging per-part losses is not the same
thing: shards of unequal size or weight, and any root (RMSE), make it wrong.

A metric whose record is not decomposable (a median of all the samples:
``median_absolute_error``, ``d2_absolute_error``) has no such statistics: the
functions here refuse it with a ``ValueError``; compute it in one call.
"""

from __future__ import annotations

from typing import Any

from mseplug._typing import Array, ArrayLike, NanPolicy
from mseplug.api.backends import dispatch, resolve
from mseplug.api.registry import options_for
from mseplug.engine import finalize, moments, pipeline
from mseplug.engine import overflow as _overflow
from mseplug.engine.finalize import relative_output_weights
from mseplug.engine.kernels import output_weights_like
from mseplug.loss.statistics import layout


def sufficient_statistics(
    loss: Any, y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    nan_policy: NanPolicy = "propagate", **params: Any,
) -> tuple[Array, Array]:
    """The sufficient statistics ``(S, W)`` of one part of the data, per output.

    ``S[k]`` is the sum of ``wᵢ·e(rᵢₖ)`` and ``W[k]`` the sum of ``wᵢ`` over the
    samples of output ``k`` that count (all, or those ``nan_policy="omit"``
    keeps). Both have shape ``(K,)`` for ``K`` outputs (``K = 1`` for 1-D data,
    the product of the trailing dimensions otherwise), in ``y_pred``'s library,
    device and a float dtype wide enough to sum in. The function is a pure
    array computation: it works under ``jax.jit``, ``shard_map``, ``pmap``,
    ``vmap`` and ``torch.compile`` (value checks are skipped where values
    cannot be read, as for the losses), and gradients flow through it.

    A part may be empty (its statistics are zeros) and its weights may sum to
    0: only the total over all parts must be positive.

    Parameters
    ----------
    loss : str, loss function or Loss
        A registered loss (see :func:`mseplug.losses`).
    y_true, y_pred, sample_weight
        As for :func:`mseplug.mse`.
    nan_policy : {"propagate", "raise", "omit"}, default "propagate"
        As for :func:`mseplug.mse`; ``"omit"`` leaves dropped elements out of both sums.
    **params
        The loss's parameters (``delta=`` for ``"huber"``, ``alpha=`` for ``"pinball"``).

    Returns
    -------
    S, W : arrays of shape (K,)

    Examples
    --------
    Two shards of one data set: their statistics add up to the statistics of all of it.

    >>> import numpy as np, mseplug
    >>> y_true, y_pred = np.array([0.0, 0.0, 0.0]), np.array([1.0, 2.0, 4.0])
    >>> S1, W1 = mseplug.sufficient_statistics("rmse", y_true[:1], y_pred[:1])
    >>> S2, W2 = mseplug.sufficient_statistics("rmse", y_true[1:], y_pred[1:])
    >>> S1 + S2, W1 + W2
    (array([21.]), array([3.]))
    >>> float(mseplug.loss_from_statistics("rmse", S1 + S2, W1 + W2)) == float(mseplug.rmse(y_true, y_pred))
    True
    """
    for name in ("multioutput", "reduction"):
        if name in params:
            raise TypeError(
                f"sufficient_statistics() got an unexpected keyword argument {name!r}; the "
                "statistics are per output and per sample: give multioutput to "
                "loss_from_statistics"
            )
    options = options_for(loss, nan_policy=nan_policy, **params)
    moments.require_decomposable(options, "mseplug.sufficient_statistics")
    chosen, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight)
    statistics, checked = pipeline.statistics(chosen, options, y_true, y_pred, sample_weight,
                                              partial=True)
    if options.loss.statistics is not None:  # named statistics, in the caller's weight units
        named = statistics.total
        return {key: (chosen.times_power_of_two(named[key], statistics.exponent)
                      if how == "sum" else named[key])
                for key, how in layout(options.loss.statistics)}  # type: ignore[return-value]
    total, weight = pipeline.unscaled_statistics(chosen, statistics)
    if isinstance(statistics.exponent, int) and statistics.exponent:
        # Weights were read to be scaled, so reading their sums costs no extra sync here.
        _warn_if_overflowed(chosen, checked, total, weight)
    return total, weight


def _warn_if_overflowed(backend: Any, checked: Any, total: Array, weight: Array) -> None:
    """A LossOverflowWarning when the statistics in the caller's units exceed float64 although
    every input is finite (as the weights were checked to be)."""
    xp = backend.namespace(total)
    if bool(xp.all(xp.isfinite(total))) and bool(xp.all(xp.isfinite(weight))):
        return
    if not any(bool(xp.any(xp.isinf(x))) for x in (checked.y_true, checked.y_pred)):
        _overflow.warn_statistics()


def loss_from_statistics(
    loss: Any, S: Any, W: ArrayLike | None = None, *, multioutput: Any = "uniform_average", **params: Any,
) -> Array:
    """The loss from sufficient statistics ``(S, W)`` (see :func:`sufficient_statistics`).

    Computed by the same code as every loss function and the
    :class:`~mseplug.Accumulator`: per output ``S / W``, the root for RMSE,
    then ``multioutput``. Differentiable with respect to ``S`` and ``W`` in
    torch and JAX (the RMSE gradient at a perfect fit is 0, never NaN), and
    traceable under ``jit``. An output with ``W = 0`` (no sample counted), or
    with ``W = inf`` (weights whose sum exceeded float64: their mean is not
    known), has the value NaN; values are not checked, so no device sync happens.

    Parameters
    ----------
    loss : str, loss function or Loss
        The loss the statistics were computed for.
    S, W : arrays of shape (K,)
        Summed statistics; the result has ``S``'s library and device.
    multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
        How outputs combine, as for :func:`mseplug.mse`; ``"raw_values"`` gives shape ``(K,)``.
    **params
        The loss's parameters, checked as everywhere (the statistics were computed with them;
        the loss's final step does not use them), so code written for any loss can pass
        the same keywords to :func:`sufficient_statistics` and here.

    Returns
    -------
    loss : array
        0-d (or ``(K,)`` for ``"raw_values"``), in ``S``'s library and float dtype.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> float(mseplug.loss_from_statistics("rmse", np.array([21.0]), np.array([3.0])))
    2.6457513110645907
    >>> mseplug.loss_from_statistics("mse", np.array([2.0, 8.0]), np.array([2.0, 2.0]),
    ...                              multioutput="raw_values").tolist()
    [1.0, 4.0]
    """
    for name in ("reduction", "nan_policy", "sample_weight"):
        if name in params:
            raise TypeError(
                f"loss_from_statistics() got an unexpected keyword argument {name!r}; it belongs "
                "to sufficient_statistics, which computed S and W"
            )
    options = options_for(loss, multioutput=multioutput, **params)
    moments.require_decomposable(options, "mseplug.loss_from_statistics")
    if options.loss.statistics is not None:
        return _from_named(options, S)
    chosen = resolve(W, S)
    total = chosen.convert(S, "S")
    weight = chosen.convert(W, "W", like=total)
    xp = chosen.namespace(total)
    for name, array in (("S", total), ("W", weight)):
        if chosen.kind(xp, array.dtype) not in "fiu":
            raise TypeError(f"{name} has dtype {array.dtype}; sufficient statistics are real numbers")
    if len(total.shape) != 1 or tuple(total.shape) != tuple(weight.shape):
        raise ValueError(
            f"S {tuple(total.shape)} vs W {tuple(weight.shape)}: the statistics of K outputs "
            "are two arrays of shape (K,), as sufficient_statistics returns them"
        )
    dtype = chosen.result_dtype(xp, total.dtype, weight.dtype)
    total, weight = xp.astype(total, dtype), xp.astype(weight, dtype)
    # A sum of weights that overflowed (statistics beyond float64, which sufficient_statistics
    # warned about) leaves the mean unknown: NaN, never the finite wrong S / inf = 0.
    weight = xp.where(xp.isinf(weight), xp.full_like(weight, float("nan")), weight)
    output_shape = tuple(total.shape)
    output_weights = None
    if options.weighted_outputs:  # one per output, in any shape of K elements
        flat: Any = options.multioutput  # output weights: an array of any library
        if hasattr(flat, "shape") and len(flat.shape) > 1:
            flat = xp.reshape(flat, (-1,)) if chosen.owns(flat) else flat.reshape(-1)
        checked = chosen.output_weights(xp, flat, output_shape, total)
        relative, _ = relative_output_weights(options, checked)  # a mean: no exponent
        output_weights = output_weights_like(chosen, options, relative, total)
    return finalize.finalize(xp, options, total, weight, output_shape, output_weights, chosen.sqrt)


def _from_named(options: Any, named: Any) -> Array:
    """The value of a loss with statistics of its own from its named statistics."""
    spec = options.loss.statistics
    keys = [key for key, _ in layout(spec)]
    if not isinstance(named, dict) or sorted(named) != sorted(keys):
        raise TypeError(f"{options.loss.name}'s statistics are a dict of {keys}, as "
                        "sufficient_statistics returns them")
    chosen = resolve(None, named["weight"])
    first = chosen.convert(named["weight"], "weight")
    xp = chosen.namespace(first)
    stats = {key: chosen.convert(named[key], key, like=first) for key in keys}
    stats = {key: value if chosen.kind(xp, value.dtype) == "f"
             else xp.astype(value, chosen.widest_float(xp)) for key, value in stats.items()}
    output_shape = tuple(first.shape)
    output_weights = None
    if options.weighted_outputs:
        checked = chosen.output_weights(xp, options.multioutput, output_shape, first)
        output_weights = output_weights_like(chosen, options, checked, stats["weight"])
    return moments.value(xp, options, stats, output_shape, output_weights)


def combine_statistics(loss: Any, statistics: Any, *, add: Any, maximum: Any) -> Any:
    """Statistics of every part, combined by the collectives ``add`` and ``maximum``.

    For a loss whose statistics are ``(S, W)`` this is ``(add(S), add(W))``. A
    loss with statistics of its own (R², the maximum error) combines as its
    record says: the shifts of its centred moments meet at their mean over the
    parts that have weight (with ``add``), each part re-centres its moments there
    (exactly), sums are added and maxima take the maximum. Inside ``shard_map``, pass
    ``add=lambda x: jax.lax.psum(x, "i")`` and ``maximum=lambda x: jax.lax.pmax(x, "i")``
    (``pmax`` has no derivative rule in JAX: for gradients, take
    ``maximum=lambda x: jnp.max(jax.lax.all_gather(x, "i"), axis=0)``).

    Parameters
    ----------
    loss : str, loss function or Loss
        The loss the statistics were computed for.
    statistics
        This part's statistics, as :func:`sufficient_statistics` returns them.
    add, maximum : callable
        The collectives: each takes an array and returns its sum (maximum) over every part.

    Examples
    --------
    With one part, the collectives are the identity (inside ``shard_map`` they are ``psum``
    and ``pmax``: ``tests/streaming/test_jax_sharded.py``):

    >>> import numpy as np, mseplug
    >>> y, p = np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.5, 2.0, 2.5, 5.0])
    >>> part = mseplug.sufficient_statistics("r2", y, p)
    >>> sorted(part)
    ['squared_residual', 'target.shift', 'target.squares', 'target.sum', 'weight']
    >>> same = mseplug.combine_statistics("r2", part, add=lambda x: x, maximum=lambda x: x)
    >>> float(mseplug.loss_from_statistics("r2", same)) == float(mseplug.r2(y, p))
    True
    """
    options = options_for(loss)
    moments.require_decomposable(options, "mseplug.combine_statistics")
    spec = options.loss.statistics
    if spec is None:
        total, weight = statistics
        return add(total), add(weight)
    chosen = resolve(None, statistics["weight"])
    xp = chosen.namespace(statistics["weight"])
    weight = statistics["weight"]
    has = weight > 0
    zero = xp.zeros_like(weight)
    parts = add(xp.where(has, xp.ones_like(weight), zero))
    shifts = {}
    for key, how in layout(spec):
        if how == "shift":  # the mean shift of the parts with weight: any common one is exact
            total = add(xp.where(has, statistics[key], zero))
            shifts[key] = xp.where(parts > 0, total / xp.where(parts > 0, parts, 1.0), zero)
    centred = moments.at_shifts(xp, spec, statistics, shifts)
    return {key: shifts[key] if how == "shift" else
            maximum(centred[key]) if how == "max" else add(centred[key])
            for key, how in layout(spec)}
