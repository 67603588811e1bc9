"""Torch kernels with mseplug's gradient conventions, and the reduction on tensors.

Everything here stays in torch's autograd graph and composes with
``torch.compile`` and ``torch.func``. The conventions:

- MAE: ``abs`` differentiates through ``sgn``, so the subgradient at a zero
  residual is 0 (on the native ``l1_loss`` path too).
- RMSE: :func:`safe_sqrt` has gradient 0 at 0 (never ``inf * 0 = NaN``).
- ``nan_policy="omit"``: the *residual* is replaced by 0 with ``torch.where``
  before the loss, so the dropped elements get a zero, finite gradient.

Examples
--------
>>> import torch
>>> from mseplug._backends.torch_autograd import safe_sqrt
>>> x = torch.zeros(2, requires_grad=True)
>>> safe_sqrt(x).sum().backward()
>>> x.grad.tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mseplug._options import Options

Tensor = torch.Tensor

# The C functions behind ``F.mse_loss`` / ``F.l1_loss`` / ``F.huber_loss``. Called directly,
# they skip the wrappers' Python work (``broadcast_tensors``, a size warning, reduction
# lookup) that mseplug's own shape check makes redundant; ``__torch_function__`` subclasses
# are still dispatched by the C binding.
_nn: Any = torch._C._nn
_REDUCTION = {"none": 0, "mean": 1, "sum": 2}
#: dtypes the fused kernels compute in directly (half precision goes the float32 way).
NATIVE_DTYPES = (torch.float32, torch.float64)


def native_kernel(options: Options) -> Callable[[Tensor, Tensor], Tensor] | None:
    """``kernel(y_pred, y_true)`` with torch's fused loss for these options, or ``None``.

    The fused kernels give the contract's answer when there are no weights, NaN
    propagates and the outputs are averaged uniformly (the mean over all elements
    is then the mean over samples averaged over outputs). RMSE's kernel is only
    valid for a single output; :class:`TorchBackend` checks that.
    """
    if options.nan_policy != "propagate" or not options.uniform:
        return None
    enum = _REDUCTION[options.reduction]
    name = options.loss.name
    if name == "mse":
        mse = _nn.mse_loss
        return lambda p, t: mse(p, t, enum)
    if name == "mae":
        l1 = _nn.l1_loss
        return lambda p, t: l1(p, t, enum)
    if name == "huber":
        huber, delta = _nn.huber_loss, options.delta
        return lambda p, t: huber(p, t, enum, delta)
    mse = _nn.mse_loss
    return lambda p, t: safe_sqrt(mse(p, t, 1))


def safe_sqrt(x: Tensor) -> Tensor:
    """``sqrt(x)`` for ``x >= 0`` whose gradient at ``x == 0`` is 0, not ``inf`` (or NaN).

    ``relu`` is the identity on ``x >= 0`` and propagates NaN; its backward *selects*
    (``where(x <= 0, 0, grad)``) rather than multiplies, so the ``inf`` that ``sqrt``
    sends back at 0 becomes 0 instead of ``inf * 0 = NaN``. Two kernels, where a
    double ``torch.where`` needs four; it also holds under ``torch.compile``
    (inductor lowers the backward to the same select) and ``torch.func``.
    """
    root = torch.sqrt(torch.relu(x))
    # A float32 sum of squares that overflowed (x = inf) would get the derivative
    # 1 / (2·sqrt(inf)) = 0: a finite wrong gradient. ``x * x`` keeps the value inf and
    # makes the gradient inf, so the overflow shows (docs/conventions.md).
    return torch.where(torch.isinf(x), x * x, root)


def elementwise(name: str, r: Tensor, delta: float) -> Tensor:
    """The elementwise loss of the residual ``r = y_pred - y_true``."""
    if name in ("mse", "rmse"):
        return r * r
    a = torch.abs(r)  # backward uses sgn: 0 at r == 0
    if name == "mae":
        return a
    # huber: a²/2 inside the band, delta·(a - delta/2) outside; this form (as in
    # mseplug._losses) differentiates to delta·sign(r) even at r = ±inf.
    m = torch.clamp(a, max=delta)
    return 0.5 * (m * m) + delta * (a - m)


def totals(
    options: Options, y_true: Tensor, y_pred: Tensor, weight: Tensor | None,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor]:
    """``(S, W)``, each ``(K,)``: Σᵢ wᵢ·e(rᵢₖ) and Σᵢ wᵢ over the kept samples, per output.

    ``y_true``/``y_pred`` are ``(n, K)`` and ``weight`` is ``(n,)`` or ``None``;
    ``dtype`` widens the sums (float64 for the Accumulator).
    """
    residual = y_pred - y_true
    keep = None
    if options.nan_policy == "omit":
        keep = ~(torch.isnan(y_true) | torch.isnan(y_pred))
        residual = torch.where(keep, residual, 0.0)  # e(0) == 0 and a finite gradient
    losses = elementwise(options.loss.name, residual, options.delta)
    if weight is not None:
        losses = losses * weight[:, None]
    total = torch.sum(losses, dim=0, dtype=dtype)
    n, k = y_pred.shape
    if keep is not None:
        kept = keep.to(total.dtype) if weight is None else torch.where(keep, weight[:, None], 0.0)
        return total, torch.sum(kept, dim=0, dtype=total.dtype)
    if weight is None:
        return total, total.new_full((k,), float(n))
    return total, torch.sum(weight, dtype=total.dtype).expand(k)


def elementwise_losses(
    options: Options, y_true: Tensor, y_pred: Tensor, weight: Tensor | None
) -> Tensor:
    """``reduction="none"``: the weighted elementwise losses, 0 where ``omit`` drops."""
    residual = y_pred - y_true
    if options.nan_policy == "omit":
        keep = ~(torch.isnan(y_true) | torch.isnan(y_pred))
        residual = torch.where(keep, residual, 0.0)
    losses = elementwise(options.loss.name, residual, options.delta)
    return losses if weight is None else losses * weight[:, None]


def finalize(
    options: Options, total: Tensor, weight: Tensor, output_shape: tuple[int, ...],
    output_weights: np.ndarray | None,
) -> Tensor:
    """The value from ``(S, W)``: ``mseplug._reduce.finalize`` on tensors, with a safe root."""
    per_output = total / weight if options.reduction == "mean" else total
    if options.loss.root:
        per_output = safe_sqrt(per_output)
    if output_weights is not None:
        share = output_weights
        if options.reduction == "mean":
            share = share / share.sum()
        share_t = torch.as_tensor(share, dtype=per_output.dtype, device=per_output.device)
        return torch.sum(share_t * per_output)
    if options.raw:
        return per_output.reshape(output_shape)
    return per_output.mean() if options.reduction == "mean" else per_output.sum()


def host_checks_possible(x: Tensor) -> bool:
    """Whether a value check that reads numbers back to Python can run on ``x``.

    Not while ``torch.compile`` traces (it would break the graph, or fail under
    ``fullgraph=True``), not on functorch-wrapped tensors (``vmap`` cannot read
    a batched value) and not on the data-less ``meta`` device.
    """
    return not (_is_compiling() or x.is_meta or _functorch_wrapped(x))


_is_compiling: Callable[[], bool] = getattr(torch.compiler, "is_compiling", lambda: False)


_functorch_wrapped: Callable[[Tensor], bool] = getattr(
    torch._C._functorch, "is_functorch_wrapped_tensor", lambda x: False
)
