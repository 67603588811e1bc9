"""The PyTorch backend: torch's fused loss kernels, autograd, and device-aware checks.

Imported only when ``torch`` is already in ``sys.modules``. Results are 0-d
tensors (or the elementwise tensor) in the autograd graph, on ``y_pred``'s
device, in the promoted input dtype.

With the default options (no weights, uniform average, ``nan_policy=
"propagate"``) and two float32/float64 tensors of equal shape, dtype and
device, a built-in loss is one fused kernel (``mse_loss``, ``l1_loss``,
``huber_loss``) after a few attribute compares. Everything else runs the
common engine with torch ops (:mod:`mseplug._backends.torch_kernels`).

Checks that read values back to the host (sample weights finite, >= 0 and
with a positive sum; ``nan_policy="raise"``) cost one device sync each. They
are skipped while ``torch.compile`` traces, on functorch-batched (``vmap``)
tensors and on the ``meta`` device, where no value can be read.

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
from typing import Any

import numpy as np
import torch

from mseplug import _overflow
from mseplug import _validation as v
from mseplug._backends import torch_kernels as K
from mseplug._backends.torch_fused import FUSED_MIN, fused_loss
from mseplug._backends.torch_weighted import weighted_value
from mseplug._engine import Backend, Checked
from mseplug._loss import Loss
from mseplug._options import Options
from mseplug._typing import Array, DType, Namespace

Tensor = torch.Tensor
_UNSIGNED = tuple(getattr(torch, name) for name in ("uint8", "uint16", "uint32", "uint64")
                  if hasattr(torch, name))  # uint16 and wider: torch >= 2.3


def _device_error(name: str, x: Tensor, like: Tensor) -> ValueError:
    return ValueError(
        f"{name} is on device {x.device} but y_pred is on device {like.device}; move them to one "
        f"device first, e.g. {name}.to(y_pred.device)"
    )


class TorchBackend(Backend):
    """``torch.Tensor`` inputs (including ``nn.Parameter`` and tensors inside ``torch.func``)."""

    name = "torch"
    library = "torch"

    def __init__(self) -> None:
        super().__init__()
        self._xp: Any = None  # array_api_compat.torch, imported on first use (it takes ~10 ms)

    @classmethod
    def array_types(cls) -> tuple[type, ...]:
        return (torch.Tensor,)

    def namespace(self, x: Any) -> Any:
        if self._xp is None:
            import array_api_compat.torch

            self._xp = array_api_compat.torch
        return self._xp

    # -- conversion ----------------------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        """A detached CPU copy as NumPy (bfloat16, which NumPy lacks, becomes float32)."""
        x = x.detach()
        if x.dtype is torch.bfloat16:
            x = x.to(torch.float32)
        return x.cpu().resolve_conj().resolve_neg().numpy()

    def from_foreign(self, x: np.ndarray, like: Any) -> Any:
        """A NumPy array as a tensor on ``like``'s device (and dtype, if ``like`` is a float)."""
        if not x.flags.writeable:  # torch warns on (and could write to) read-only memory
            x = x.copy()
        if like is None:
            return torch.as_tensor(x)
        dtype = like.dtype if like.dtype.is_floating_point else None
        return torch.as_tensor(x, dtype=dtype, device=like.device)

    def convert(self, x: Any, name: str, like: Any = None) -> Any:
        if isinstance(x, Tensor):
            if like is not None and x.device != like.device:
                raise _device_error(name, x, like)
            return x
        return super().convert(x, name, like)

    def asarray_like(self, xp: Namespace, values: Any, like: Array) -> Array:
        return torch.as_tensor(values, dtype=like.dtype, device=like.device)

    # -- dtypes ----------------------------------------------------------------------------
    def kind(self, xp: Namespace, dtype: DType) -> str:
        if dtype.is_floating_point:
            return "f"
        if dtype.is_complex:
            return "c"
        if dtype is torch.bool:
            return "b"
        return "u" if dtype in _UNSIGNED else "i"

    def default_float(self, xp: Namespace) -> DType:
        return torch.get_default_dtype()

    def result_dtype(self, xp: Namespace, true_dtype: DType, pred_dtype: DType) -> DType:
        if true_dtype is pred_dtype and pred_dtype.is_floating_point:
            return pred_dtype
        if true_dtype.is_floating_point and pred_dtype.is_floating_point:
            return torch.promote_types(true_dtype, pred_dtype)
        return super().result_dtype(xp, true_dtype, pred_dtype)

    def accumulation_dtype(self, xp: Namespace, dtype: DType) -> DType:
        return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def sum_dtype(self, xp: Namespace, dtype: DType) -> DType:
        return dtype  # torch's reductions sum in cascades: accurate in float32 already

    def as_columns(self, xp: Namespace, x: Array, shape: tuple[int, ...], dtype: DType) -> Array:
        return (x if x.dtype is dtype else x.to(dtype)).reshape(shape)

    # -- value checks ----------------------------------------------------------------------
    def readable(self, x: Array) -> bool:
        return K.host_checks_possible(x)

    def checks_weights(self, weight: Array) -> bool:
        # On an accelerator a check would be a device sync in every training step: skipped.
        return weight.device.type in ("cpu", "meta") and K.host_checks_possible(weight)

    def any_nan(self, xp: Namespace, x: Array) -> bool:
        return bool(torch.isnan(x).any())

    def weight_summary(self, xp: Namespace, weight: Array) -> tuple[float, float, bool]:
        # One device sync for the three numbers; NaN and inf show in the minimum or maximum.
        weight = weight.to(torch.float64 if weight.device.type != "mps" else torch.float32)
        total, minimum, maximum = torch.stack((weight.sum(), *torch.aminmax(weight))).tolist()
        return total, minimum, math.isfinite(minimum) and math.isfinite(maximum)

    # -- kernels -----------------------------------------------------------------------------
    def elementwise(self, xp: Namespace, loss: Loss, r: Array, params: tuple[Any, ...]) -> Array:
        native = loss.native_kernel("torch")
        if native is not None:
            return native.elementwise(r, params)
        return K.differentiable_elementwise(loss, r, params)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        return K.safe_sqrt(x)

    def shortcut(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """One fused kernel when it gives the contract's answer."""
        if sample_weight is not None:
            value = weighted_value(options, y_true, y_pred, sample_weight)
            return None if value is None else self._overflow_checked(value, y_true, y_pred)
        if (
            options.nan_policy == "propagate"
            and options.uniform
            and isinstance(y_pred, Tensor)
            and isinstance(y_true, Tensor)
            and y_true.shape == y_pred.shape
            and y_true.dtype is y_pred.dtype
            and y_pred.dtype in K.NATIVE_DTYPES
            and y_true.device == y_pred.device
            and y_pred.numel()
        ):
            native = options.loss.native_kernel("torch")
            if native is None or native.fused is None:
                return None
            root = options.loss.root
            if root and y_pred.ndim > 1 and y_pred[0].numel() > 1:
                return None  # the root of the mean over all elements: one output only
            reduction = "mean" if root else options.reduction
            if reduction != "none" and native.training is not None and self._trains(y_true, y_pred):
                value = fused_loss(y_pred, y_true, native.training, reduction == "mean")
            else:
                value = native.fused(y_pred, y_true, K.REDUCTION[reduction], options.params)
            return self._overflow_checked(K.safe_sqrt(value) if root else value, y_true, y_pred)
        return None

    @staticmethod
    def _trains(y_true: Tensor, y_pred: Tensor) -> bool:
        """Large eager tensors that need a gradient: forward and backward fused pay off."""
        return (
            y_pred.numel() >= FUSED_MIN
            and (y_pred.requires_grad or y_true.requires_grad)
            and torch.is_grad_enabled()
            and K.host_checks_possible(y_pred)
            and K.host_checks_possible(y_true)
        )

    def finish(self, value: Array, checked: Checked) -> Array:
        return self._overflow_checked(value, checked.y_true, checked.y_pred)

    @staticmethod
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

    # -- gradients -----------------------------------------------------------------------------
    def value_and_grad(
        self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any = None
    ) -> tuple[Any, Any]:
        """Value and ``d loss / d y_pred``: analytic when no autograd graph is involved.

        When an input takes part in a graph (``requires_grad`` under grad mode) or
        runs inside ``torch.func`` or ``torch.compile``, the gradient comes from
        ``torch.func.grad_and_value``, so it composes with the outer graph and
        transforms; otherwise from the loss's derivative, as on NumPy, without
        autograd's fixed costs. The gradient has ``y_pred``'s shape and device and
        the promoted dtype; integer predictions are differentiated as the float.
        """
        if options.loss.derivative is not None and not self._in_graph(y_true, y_pred,
                                                                        sample_weight):
            shortcut = self._gradient_shortcut(options, y_true, y_pred, sample_weight)
            if shortcut is not None:
                return shortcut
            return super().value_and_grad(options, y_true, y_pred, sample_weight)
        c = self.check(options, y_true, y_pred, sample_weight)
        xp = self.namespace(c.y_pred)
        pred = c.y_pred.to(self.result_dtype(xp, c.y_true.dtype, c.y_pred.dtype))
        # The values were checked above: inside grad_and_value every tensor is wrapped.
        unchecked = options._replace(nan_policy="propagate") if options.nan_policy == "raise" else options

        def loss(p: Tensor) -> Tensor:
            value = self.evaluate(unchecked, c.y_true, p, c.sample_weight)
            if value.ndim != 0:
                raise v.nonscalar_error(tuple(value.shape))
            return value

        gradient, value = torch.func.grad_and_value(loss)(pred)
        value, gradient = c.unscaled(options, value, gradient)
        return value, gradient

    def _gradient_shortcut(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
                           ) -> tuple[Tensor, Tensor] | None:
        """The commonest gradient call in a few kernels: :meth:`shortcut`'s value (so it is
        ``mseplug.mse``'s, bit for bit) and ``e'(r) / N``, or ``None`` for the engine's path.

        ``N`` is every element (uniform mean over outputs of equal size); a sum has no ``N``.
        """
        if options.loss.root or options.reduction == "none" or sample_weight is not None:
            return None
        value = self.shortcut(options, y_true, y_pred, None)
        if value is None:
            return None
        residual = y_pred - y_true
        grad = options.loss.evaluate_derivative(self.namespace(residual), residual, options.params)
        return value, grad / y_pred.numel() if options.reduction == "mean" else grad

    @staticmethod
    def _in_graph(*inputs: Any) -> bool:
        """Whether an input takes part in autograd, ``torch.func`` or ``torch.compile``."""
        if K.is_compiling():
            return True
        grad_mode = torch.is_grad_enabled()
        return any(
            isinstance(x, Tensor) and ((grad_mode and x.requires_grad) or not K.host_checks_possible(x))
            for x in inputs
        )
