"""From sufficient statistics to a loss value, and to the gradient's per-output scale.

The statistics of one call (or of a stream, in the Accumulator) are, per
output ``k``: ``S[k] = Σᵢ wᵢ·e(rᵢₖ)`` and ``W[k] = Σᵢ wᵢ`` over the samples
kept. Everything below works on any Array API namespace ``xp``; output
weights arrive as an array of ``S``'s library, device and dtype.
"""

from __future__ import annotations

from collections.abc import Callable

from mseplug._options import Options
from mseplug._typing import Array, Namespace

Root = Callable[[Namespace, Array], Array]


def _output_share(xp: Namespace, options: Options, output_weights: Array | None, like: Array
                  ) -> Array | float | None:
    """How much each output counts in the combined value (``None``: raw values).

    Uniform outputs share alike: a number, ``1/K`` for the mean (1 for the sum).
    """
    mean = options.reduction == "mean"
    if output_weights is not None:
        return output_weights / xp.sum(output_weights) if mean else output_weights
    if options.raw:
        return None
    return 1 / like.shape[0] if mean else 1.0


def finalize(
    xp: Namespace, options: Options, total: Array, weight: Array,
    output_shape: tuple[int, ...], output_weights: Array | None, root: Root,
) -> Array:
    """The loss value from ``total`` (``S``, shape ``(K,)``) and ``weight`` (``W``).

    ``root(xp, x)`` is the backend's square root (with its gradient convention).
    Returns a 0-d array, or an array of ``output_shape`` for ``multioutput="raw_values"``.
    """
    per_output = total / weight if options.reduction == "mean" else total
    if options.loss.root:
        per_output = root(xp, per_output)
    share = _output_share(xp, options, output_weights, per_output)
    if share is None:
        return xp.reshape(per_output, output_shape)
    return xp.sum(share * per_output)


def gradient_scale(
    xp: Namespace, options: Options, total: Array, weight: Array, output_weights: Array | None
) -> Array:
    """Per-output factor ``c[k]`` with ``d loss / d y_pred[i, k] = c[k] · wᵢ · e'(rᵢₖ)``."""
    share = _output_share(xp, options, output_weights, total)
    if share is None:  # raw values of a single output: the value itself
        share = 1.0
    scale = xp.ones_like(total) * share if isinstance(share, float) else share
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
