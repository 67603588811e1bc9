"""From sufficient statistics to a loss value, and to the gradient's per-output scale.

The statistics of one call (or of a stream, in the Accumulator) are, per
output ``k``: ``S[k] = Σᵢ wᵢ·e(rᵢₖ)`` and ``W[k] = Σᵢ wᵢ`` over the samples
kept. Everything below works on any Array API namespace ``xp``.
"""

from __future__ import annotations

from typing import Any

from mseplug._options import Options


def _output_share(xp: Any, options: Options, weights: Any, k: int, like: Any) -> Any:
    """How much each output counts in the combined value (``None``: raw values)."""
    if options.weighted_outputs:
        share = xp.asarray(weights, dtype=like.dtype)
        return share / xp.sum(share) if options.reduction == "mean" else share
    if not options.uniform:  # raw values
        return None
    return xp.ones_like(like) / k if options.reduction == "mean" else xp.ones_like(like)


def finalize(
    xp: Any, options: Options, total: Any, weight: Any, output_shape: tuple[int, ...], weights: Any
) -> Any:
    """The loss value from ``total`` (``S``, shape ``(K,)``) and ``weight`` (``W``).

    ``weights`` are the checked output weights (or ``None``). Returns a 0-d
    array, or an array of ``output_shape`` for ``multioutput="raw_values"``.
    """
    per_output = total / weight if options.reduction == "mean" else total
    if options.loss.root:
        per_output = xp.sqrt(per_output)
    share = _output_share(xp, options, weights, per_output.shape[0], per_output)
    if share is None:
        return xp.reshape(per_output, output_shape)
    return xp.sum(share * per_output)


def gradient_scale(
    xp: Any, options: Options, total: Any, weight: Any, weights: Any
) -> Any:
    """Per-output factor ``c[k]`` with ``d loss / d y_pred[i, k] = c[k] · wᵢ · e'(rᵢₖ)``."""
    scale = _output_share(xp, options, weights, total.shape[0], total)
    if scale is None:  # raw values of a single output: the value itself
        scale = xp.ones_like(total)
    if options.reduction == "mean":
        scale = scale / weight
        if options.loss.root:
            root = xp.sqrt(total / weight)
            # d sqrt(m) = dm / (2 sqrt(m)); at a perfect fit (m == 0) the gradient is 0, never NaN.
            positive = root > 0
            scale = xp.where(positive, scale / (2 * xp.where(positive, root, 1)), 0)
            # An overflowed mean (inf) must not give 1 / inf = 0, a finite wrong gradient.
            scale = xp.where(xp.isinf(root), root, scale)
    return scale
