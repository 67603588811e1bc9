"""The PyTorch backend: torch's fused loss kernels, autograd, and the contract's checks.

Imported only when ``torch`` is already in ``sys.modules``. Results are 0-d
tensors (or the elementwise tensor) in the autograd graph, on ``y_pred``'s
device, in the promoted input dtype.

With the default options (no weights, ``reduction`` mean/sum/none, uniform
average, ``nan_policy="propagate"``) and two float32/float64 tensors of equal
shape, dtype and device, a call is one fused kernel (``mse_loss``,
``l1_loss``, ``huber_loss``) after a few attribute compares. Everything else
goes through :meth:`TorchBackend.prepare` and the kernels of
:mod:`mseplug._backends.torch_autograd`.

Checks that read values back to the host (sample weights finite, >= 0 and
with a positive sum; ``nan_policy="raise"``) cost a device sync. They are
skipped while ``torch.compile`` traces, on functorch-batched (``vmap``) tensors
and on the ``meta`` device, where no value can be read.

Examples
--------
>>> import torch, mseplug
>>> y_pred = torch.tensor([100_000.0, 80_000.0], requires_grad=True)
>>> loss = mseplug.mse(torch.tensor([120_000.0, 60_000.0]), y_pred)
>>> loss
tensor(4.0000e+08, grad_fn=<MseLossBackward0>)
>>> loss.backward()
>>> y_pred.grad
tensor([-20000.,  20000.])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mseplug import _overflow
from mseplug import _validation as v
from mseplug._backend import Backend, Prepared
from mseplug._backends import torch_autograd as K
from mseplug._options import _DEFAULTS, Options

Tensor = torch.Tensor
_HALF = (torch.float16, torch.bfloat16)
_UNSIGNED = tuple(getattr(torch, name) for name in ("uint8", "uint16", "uint32", "uint64")
                  if hasattr(torch, name))  # uint16 and wider: torch >= 2.3
_MISSING: Any = object()
_NAMESPACE: Any = None  # array_api_compat.torch, imported on first use (it takes ~10 ms)
# Fused kernels of the cached default options, by identity (they live as long as the process).
_NATIVE: dict[int, Callable[[Tensor, Tensor], Tensor] | None] = {
    id(options): K.native_kernel(options) for options in _DEFAULTS.values()
}


def _kind(dtype: torch.dtype) -> str:
    """NumPy-style kind letter of a torch dtype."""
    if dtype.is_floating_point:
        return "f"
    if dtype.is_complex:
        return "c"
    if dtype is torch.bool:
        return "b"
    return "u" if dtype in _UNSIGNED else "i"


def _cast(x: Tensor, dtype: torch.dtype) -> Tensor:
    return x if x.dtype is dtype else x.to(dtype)


def _device_error(name: str, x: Tensor, like: Tensor) -> ValueError:
    return ValueError(
        f"{name} is on device {x.device} but y_pred is on device {like.device}; move them to one "
        f"device first, e.g. {name}.to(y_pred.device)"
    )


def _overflow_checked(value: Tensor, y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Warn when an eager CPU loss is inf although its inputs are finite (docs/conventions.md).

    Costs one read of a CPU scalar; skipped on accelerators (it would be a
    device sync), while compiling and under ``torch.func``, where inf stays silent.
    """
    if (
        value.is_cpu
        and value.ndim == 0
        and K.host_checks_possible(value)
        and math.isinf(value.item())
        and bool(torch.isfinite(y_true).all())
        and bool(torch.isfinite(y_pred).all())
    ):
        _overflow.warn(value.dtype)
    return value


class TorchBackend(Backend):
    """``torch.Tensor`` inputs (including ``nn.Parameter`` and tensors inside ``torch.func``)."""

    name = "torch"
    library = "torch"

    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        return (torch.Tensor,)

    def namespace(self, x: Any) -> Any:
        global _NAMESPACE
        if _NAMESPACE is None:
            import array_api_compat.torch

            _NAMESPACE = array_api_compat.torch
        return _NAMESPACE

    # -- conversion --------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        """A detached CPU copy as NumPy (bfloat16, which NumPy lacks, becomes float32)."""
        x = x.detach()
        if x.dtype is torch.bfloat16:
            x = x.to(torch.float32)
        return x.cpu().resolve_conj().resolve_neg().numpy()

    def from_foreign(self, x: Any, like: Any) -> Any:
        """A NumPy array as a tensor on ``like``'s device (and dtype, if ``like`` is a float)."""
        array = np.asarray(x)
        if not array.flags.writeable:  # torch warns on (and could write to) read-only memory
            array = array.copy()
        if not isinstance(like, torch.Tensor):
            return torch.as_tensor(array)
        dtype = like.dtype if like.dtype.is_floating_point else None
        return torch.as_tensor(array, dtype=dtype, device=like.device)

    def _tensor(self, x: Any, name: str, like: Tensor | None) -> Tensor:
        if isinstance(x, torch.Tensor):
            if like is not None and x.device != like.device:
                raise _device_error(name, x, like)
            return x
        return self.convert(x, name, like)

    @staticmethod
    def _result_dtype(true: Tensor, pred: Tensor) -> torch.dtype:
        """Floats promote to the wider; integers and bools become the default float."""
        true_kind, pred_kind = _kind(true.dtype), _kind(pred.dtype)
        v.check_kind("y_true", true_kind, true.dtype)
        v.check_kind("y_pred", pred_kind, pred.dtype)
        if true_kind == "f" and pred_kind == "f":
            return torch.promote_types(true.dtype, pred.dtype)
        if pred_kind == "f":
            return pred.dtype
        return true.dtype if true_kind == "f" else torch.get_default_dtype()

    # -- checks ------------------------------------------------------------
    def prepare(self, y_true: Any, y_pred: Any, sample_weight: Any, options: Options) -> Prepared:
        """Convert, check and reshape the inputs to ``(n, K)`` tensors in the accumulation dtype."""
        pred = self._tensor(y_pred, "y_pred", None)
        true = self._tensor(y_true, "y_true", pred)
        dtype = self._result_dtype(true, pred)
        shape = v.common_shape(tuple(true.shape), tuple(pred.shape))
        acc = torch.float32 if dtype in _HALF else dtype
        n, k = shape[0], math.prod(shape[1:])
        true_2d = _cast(true, acc).reshape(n, k)
        pred_2d = _cast(pred, acc).reshape(n, k)
        if options.nan_policy == "raise" and K.host_checks_possible(pred_2d):
            for name, array in (("y_true", true_2d), ("y_pred", pred_2d)):
                if bool(torch.isnan(array).any()):
                    raise v.nan_error(name)
        weight = None
        if sample_weight is not None:
            if isinstance(sample_weight, Tensor):
                weight = self._tensor(sample_weight, "sample_weight", pred)
            else:  # keep the weights' own precision until the cast to the accumulation dtype
                weight = self.convert(sample_weight, "sample_weight").to(pred.device)
            v.check_kind("sample_weight", _kind(weight.dtype), weight.dtype)
            v.check_weight_shape(tuple(weight.shape), n)
            weight = _cast(weight, acc).reshape(n)
            if K.host_checks_possible(weight):
                self.check_weight_values(torch, weight)
        output_weights = None
        if options.weighted_outputs:
            output_weights = v.check_output_weights(options.multioutput, shape[1:])
        return Prepared(
            self.namespace(pred), true_2d, pred_2d, weight, tuple(pred.shape), shape[1:], dtype,
            output_weights,
        )

    def check_weight_values(self, xp: Any, weight: Any) -> None:
        # One device sync for the three numbers; NaN and inf show in the minimum or maximum.
        total, minimum, maximum = torch.stack((weight.sum(), *torch.aminmax(weight))).tolist()
        v.check_weight_values(total, minimum, math.isfinite(minimum) and math.isfinite(maximum))

    # -- computing ---------------------------------------------------------
    def statistics(self, data: Prepared, options: Options) -> tuple[Any, Any]:
        """``(S, W)`` per output, summed in float64 (float32 on MPS, which has no float64)."""
        wide = torch.float32 if data.y_pred.device.type == "mps" else torch.float64
        return K.totals(options, data.y_true, data.y_pred, data.sample_weight, wide)

    def evaluate(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """The loss value: one fused kernel when it gives the contract's answer, else the engine."""
        kernel = _NATIVE.get(id(options), _MISSING)
        if kernel is _MISSING:
            kernel = K.native_kernel(options)
        if (
            kernel is not None
            and sample_weight is None
            and isinstance(y_pred, Tensor)
            and isinstance(y_true, Tensor)
            and y_true.shape == y_pred.shape
            and y_true.dtype is y_pred.dtype
            and y_pred.dtype in K.NATIVE_DTYPES
            and y_true.device == y_pred.device
            and y_pred.numel()
            and (not options.loss.root or y_pred.ndim <= 1)
        ):
            return _overflow_checked(kernel(y_pred, y_true), y_true, y_pred)
        data = self.prepare(y_true, y_pred, sample_weight, options)
        if options.reduction == "none":
            losses = K.elementwise_losses(options, data.y_true, data.y_pred, data.sample_weight)
            return losses.reshape(data.pred_shape).to(data.dtype)
        total, weight = K.totals(options, data.y_true, data.y_pred, data.sample_weight)
        value = K.finalize(options, total, weight, data.output_shape, data.output_weights)
        return _overflow_checked(value.to(data.dtype), data.y_true, data.y_pred)

    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
    ) -> tuple[Any, Any]:
        """Value and ``d loss / d y_pred`` by ``torch.func.grad_and_value``.

        The gradient has ``y_pred``'s shape and device and the promoted dtype;
        integer predictions are differentiated as the promoted float. ``torch.func``
        composes with an outer autograd graph and with other transforms.
        """
        pred = self._tensor(y_pred, "y_pred", None)
        true = self._tensor(y_true, "y_true", pred)
        pred = pred.to(self._result_dtype(true, pred))
        if (options.nan_policy == "raise" or sample_weight is not None) and K.host_checks_possible(pred):
            # Inside grad_and_value every tensor is functorch-wrapped and prepare() cannot read
            # values: check NaN under "raise" and the weights' values here, once, outside it.
            self.prepare(true, pred, sample_weight, options)

        def loss(p: Tensor) -> Tensor:
            value = self.evaluate(options, true, p, sample_weight)
            if value.ndim != 0:
                raise v.nonscalar_error(tuple(value.shape))
            return value

        gradient, value = torch.func.grad_and_value(loss)(pred)
        return value, gradient
