"""Weighted calls on torch tensors in a handful of kernels: the training loop's common case.

The engine's general path checks the weights, reshapes to columns and reduces
per output; for 1-D tensors with weights in the usual range it comes down to
``Σ w·e(r) / Σ w``. Here that is computed directly, with the weight check
folded into the two reductions the value needs anyway (the sum of the weights
is the denominator; its minimum says whether one is negative): on the CPU one
read of two numbers, and on an accelerator none at all, as in a training loop
(there the weights' values are not checked; ``nan_policy="raise"`` is a check
the user asks for and goes through the engine). Anything unusual (negative,
NaN or huge weights, other shapes) returns ``None`` and takes the engine,
which raises the right error or rescales.
"""

from __future__ import annotations

from typing import Any

import torch

from mseplug._backends import torch_kernels as K
from mseplug._options import Options

Tensor = torch.Tensor
#: Weight sums in this range need no rescaling (see mseplug._checks.WEIGHT_SUM_RANGE).
_LOW, _HIGH = 2.0**-32, 2.0**32
_DOT_MAX = 1 << 12


def weighted_value(options: Options, y_true: Any, y_pred: Any, weight: Any) -> Tensor | None:
    """``Σ w·e / Σ w`` (or ``Σ w·e`` for ``"sum"``) of 1-D tensors, or ``None`` for the engine."""
    if not (
        isinstance(y_pred, Tensor) and isinstance(y_true, Tensor) and isinstance(weight, Tensor)
        and y_pred.ndim == 1 and y_true.shape == y_pred.shape and weight.shape == y_pred.shape
        and y_true.dtype is y_pred.dtype and y_pred.dtype in K.NATIVE_DTYPES
        and weight.dtype.is_floating_point
        and y_true.device == y_pred.device and weight.device == y_pred.device
        and options.nan_policy == "propagate" and options.reduction != "none"
        and isinstance(options.multioutput, str) and y_pred.shape[0]
    ):
        return None
    native = options.loss.native_kernel("torch")
    if native is None:
        return None
    w = weight if weight.dtype is y_pred.dtype else weight.to(y_pred.dtype)
    total_weight = w.sum()
    if y_pred.device.type == "cpu":
        if not K.host_checks_possible(w):
            return None  # compiling or batched: the engine's path
        total, minimum = total_weight.item(), w.min().item()
        if not (_LOW <= total <= _HIGH and minimum >= 0):
            return None  # the engine raises the right error, or rescales
    losses = native.elementwise(y_pred - y_true, options.params)
    # One dot for short tensors; long ones sum in torch's cascades (a float32 dot drifts).
    weighted = torch.dot(w, losses) if y_pred.shape[0] <= _DOT_MAX else torch.sum(w * losses)
    if options.reduction == "sum":
        return weighted
    value = weighted / total_weight
    return K.safe_sqrt(value) if options.loss.root else value
