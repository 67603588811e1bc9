"""The PyTorch backend: torch's fused loss kernels, autograd, and device-aware checks.

Imported only when ``torch`` is already in ``sys.modules``. Results are 0-d
tensors (or the elementwise tensor) in the autograd graph, on ``y_pred``'s
device, in the promoted input dtype.

With the default options (no weights, uniform average, ``nan_policy=
"propagate"``) and two float32/float64 tensors of equal shape, dtype and
device, a built-in loss is one fused kernel (``mse_loss``, ``l1_loss``,
``huber_loss``) after a few attribute compares. Everything else runs the
common engine with torch ops (:mod:`mseplug.backend.torch.kernels`).

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
from typing import Any, NamedTuple

import numpy as np
import torch

from mseplug._typing import Array, DType, Namespace
from mseplug.backend.torch import kernels as K
from mseplug.backend.torch.fused import FUSED_MIN, fused_loss
from mseplug.backend.torch.kernels import functorch_wrapped, is_compiling
from mseplug.engine import overflow as _overflow
from mseplug.engine import validation as v
from mseplug.engine.backend import Backend, plain_options
from mseplug.engine.checks import Checked
from mseplug.engine.finalize import finalize_grand
from mseplug.engine.pipeline import evaluate
from mseplug.loss.options import Options
from mseplug.loss.record import Loss

Tensor = torch.Tensor
_UNSIGNED = tuple(getattr(torch, name) for name in ("uint8", "uint16", "uint32", "uint64")
                  if hasattr(torch, name))  # uint16 and wider: torch >= 2.3


def _device_error(name: str, x: Tensor, like: Tensor) -> ValueError:
    return ValueError(
        f"{name} is on device {x.device} but y_pred is on device {like.device}; move them to one "
        f"device first, e.g. {name}.to(y_pred.device)"
    )


class TorchNamespace:
    """``array_api_compat.torch``, but for the functions whose compat wrapper ``torch.compile``
    cannot trace (it looks the namespace up again through an ``lru_cache``, which Dynamo
    refuses), which are torch's own here: ``cumulative_sum`` (a weighted median's running
    weight)."""

    def __init__(self, compat: Any) -> None:
        self._compat = compat

    def __getattr__(self, name: str) -> Any:
        return getattr(self._compat, name)

    def cumulative_sum(self, x: Any, /, *, axis: int | None = None, dtype: Any = None,
                       include_initial: bool = False) -> Any:
        if include_initial or (axis is None and x.ndim != 1):
            return self._compat.cumulative_sum(x, axis=axis, dtype=dtype,
                                               include_initial=include_initial)
        return torch.cumsum(x, dim=0 if axis is None else axis, dtype=dtype)


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

            self._xp = TorchNamespace(array_api_compat.torch)
        return self._xp

    # -- conversion ----------------------------------------------------------------------
    def to_numpy(self, x: Any) -> np.ndarray:
        """A detached CPU copy as NumPy. bfloat16, which NumPy lacks, becomes ml_dtypes'
        bfloat16 where that is installed (with JAX), so it keeps its dtype; else float32."""
        x = x.detach().cpu().resolve_conj().resolve_neg()
        if x.dtype is torch.bfloat16:
            try:
                import ml_dtypes
            except ImportError:
                return x.to(torch.float32).numpy()
            return x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return x.numpy()

    def from_foreign(self, x: np.ndarray, like: Any) -> Any:
        """A NumPy array as a tensor of its own dtype, on ``like``'s device."""
        if not x.flags.writeable:  # torch warns on (and could write to) read-only memory
            x = x.copy()
        if x.dtype.kind == "V" and x.dtype.name == "bfloat16":  # ml_dtypes' bfloat16
            tensor = torch.as_tensor(x.view(np.int16)).view(torch.bfloat16)
        else:
            tensor = torch.as_tensor(x)
        return tensor if like is None else tensor.to(like.device)

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

    def widest_float(self, xp: Namespace) -> DType:
        return torch.float64

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
    def elementwise(self, xp: Namespace, loss: Loss, y_true: Array, y_pred: Array,
                    params: tuple[Any, ...]) -> Array:
        native = K.native_kernel(loss)
        if native is not None:
            return native.elementwise(y_pred - y_true, params)
        return K.differentiable_elementwise(loss, y_true, y_pred, params)

    def sqrt(self, xp: Namespace, x: Array) -> Array:
        return K.safe_sqrt(x)

    def grand_value(self, options: Options, c: Any, params: tuple[Any, ...]) -> tuple[Any, Any]:
        """torch's fused losses without weights; the weighted sum of one output in a few kernels
        (:func:`_weighted_grand`); the generic definition otherwise."""
        native = K.native_kernel(options.loss)
        if c.weight is None and native is not None and native.fused is not None:
            return _unweighted_grand(options, native, c.y_true, c.y_pred)
        if c.weight is not None and c.y_pred.shape[1] == 1:
            return _weighted_grand(self, options, c.y_true.reshape(-1), c.y_pred.reshape(-1),
                                   c.weight, params)
        return super().grand_value(options, c, params)

    def fast_value(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any) -> Any:
        """:meth:`grand_value` straight from the tensors when no check is needed (options that
        allow it, :meth:`plan_fast_path`, and tensors that do, :func:`_plain`), and for 1-D
        weights in the usual range (:meth:`_fast_weighted`)."""
        if sample_weight is not None:
            return self._fast_weighted(options, y_true, y_pred, sample_weight)
        native = self.fast_plan(options).fused
        if native is None or not _plain(y_true, y_pred):
            return None
        if options.loss.root and y_pred.ndim > 1 and y_pred.shape[1] > 1:
            return None  # the root of each output's mean: per output, the engine's
        statistic, _ = _unweighted_grand(options, native, y_true, y_pred)
        value = finalize_grand(self.namespace(y_pred), options, statistic, (), self.sqrt)
        return self._overflow_checked(value, y_true, y_pred)

    def plan_fast_path(self, options: Options) -> FastPlan:
        """Whether the weighted fast path may take ``options``, and the native kernel with
        a fused torch loss the unweighted one runs (see
        :func:`~mseplug.engine.backend.plain_options`; outputs averaged uniformly, as the
        fused loss does)."""
        plain = plain_options(options)
        native = K.native_kernel(options.loss)
        fused = plain and options.uniform and native is not None and native.fused is not None
        return FastPlan(plain, native if fused else None)

    def _fast_weighted(self, options: Options, y_true: Any, y_pred: Any, weight: Any) -> Any:
        """``Σ w·e / Σ w`` (or ``Σ w·e``) of 1-D tensors, the weight check folded into the sum
        the value needs: on the CPU one read of two numbers, on an accelerator none (as the
        engine, which checks weights on the CPU only). Weights whose sum is outside
        ``[2**-31, 2**31]`` (a subset of the range the engine leaves unscaled), negative,
        NaN or infinite ones, and anything unusual take the engine."""
        if not (
            self.fast_plan(options).plain
            and isinstance(weight, Tensor) and _plain(y_true, y_pred) and y_pred.ndim == 1
            and weight.shape == y_pred.shape and weight.dtype.is_floating_point
            and ((weight.is_cpu and y_pred.is_cpu) or weight.device == y_pred.device)
        ):
            return None
        w = weight if weight.dtype is y_pred.dtype else weight.to(y_pred.dtype)
        total_weight = w.sum()  # checked here, and the mean's divisor
        if y_pred.is_cpu:
            if not K.host_checks_possible(w):
                return None  # compiling or batched: the engine's path
            total, minimum = total_weight.item(), w.min().item()
            if not (_FAST_WEIGHT_SUMS[0] <= total <= _FAST_WEIGHT_SUMS[1] and minimum >= 0):
                return None  # the engine raises the right error, or scales the weights
        statistic, _ = _weighted_grand(self, options, y_true, y_pred, w, options.params,
                                       total_weight=total_weight)
        value = finalize_grand(self.namespace(y_pred), options, statistic, (), self.sqrt)
        return self._overflow_checked(value, y_true, y_pred)

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
        if not value.is_cpu or is_compiling() or functorch_wrapped(value):
            return value  # (not meta either: K.host_checks_possible's other two conditions)
        if value.ndim == 0:
            if not math.isinf(value.item()):
                return value  # the common case: one read of a CPU scalar
        elif not bool(torch.isinf(value).any()):
            return value
        if not (bool(torch.isinf(y_true).any()) or bool(torch.isinf(y_pred).any())):
            _overflow.warn(value.dtype)
        return value

    # -- gradients -----------------------------------------------------------------------------
    def fast_value_and_grad(self, options: Options, y_true: Any, y_pred: Any, sample_weight: Any
                            ) -> tuple[Tensor, Tensor] | None:
        """The commonest gradient call in a few kernels: :meth:`fast_value`'s value and
        ``e'(r) / N`` (``N`` every element), as the engine's analytic path computes them (in an
        autograd graph too: the gradient is then differentiable, by the derivative's own rule)."""
        if (options.loss.derivative is None or options.loss.root or options.reduction == "none"
                or sample_weight is not None):
            return None
        value = self.fast_value(options, y_true, y_pred, None)
        if value is None:
            return None
        grad = options.loss.slope(self.namespace(y_pred), y_true, y_pred, options.params)
        return value, grad / y_pred.numel() if options.reduction == "mean" else grad

    def differentiate(self, options: Options, checked: Checked) -> tuple[Any, Any]:
        """Value and ``d loss / d y_pred``, analytic from the loss's derivative.

        The analytic gradient is made of torch ops on the inputs, so inside an
        autograd graph (``requires_grad``), ``torch.func`` or ``torch.compile`` it is
        itself differentiable, by the derivative's own rule (Huber's second
        derivative, ...), without autograd's fixed costs for the first one. A loss
        without a derivative is differentiated by ``torch.func.grad_and_value``. The
        gradient has ``y_pred``'s shape and device and the promoted dtype; integer
        predictions are differentiated as the float.
        """
        if options.loss.derivative is not None:
            return super().differentiate(options, checked)
        c = checked
        xp = self.namespace(c.y_pred)
        pred = c.y_pred.to(self.result_dtype(xp, c.y_true.dtype, c.y_pred.dtype))
        # The values were checked above: inside grad_and_value every tensor is wrapped.
        unchecked = options._replace(nan_policy="propagate") if options.nan_policy == "raise" else options

        def loss(p: Tensor) -> Tensor:
            value = evaluate(self, unchecked, c.y_true, p, c.sample_weight)
            if value.ndim != 0:
                raise v.nonscalar_error(tuple(value.shape))
            return value

        gradient, value = torch.func.grad_and_value(loss)(pred)
        return value, gradient


class FastPlan(NamedTuple):
    """What the fast paths know about one options object (:meth:`TorchBackend.plan_fast_path`)."""

    plain: bool  # no check beyond the tensors' types, shapes and dtypes
    fused: Any  # the native kernel with the fused loss the unweighted path runs, or None


#: Weight sums the weighted fast path takes: half the range the engine leaves unscaled on each
#: side (mseplug.engine.finalize.weight_exponent), so a float32 sum near a bound never decides otherwise.
_FAST_WEIGHT_SUMS = (2.0**-31, 2.0**31)


def _plain(y_true: Any, y_pred: Any) -> bool:
    """The tensors the unweighted fast path takes: two of one shape (at most 2-D, so the
    engine's ``(n, K)`` columns are views of them), dtype (float32/64) and device, not empty.
    Nothing there needs a check."""
    if not (isinstance(y_pred, Tensor) and isinstance(y_true, Tensor)):
        return False
    dtype = y_pred.dtype  # (each attribute of a tensor costs a call: read once)
    return (
        dtype in K.NATIVE_DTYPES
        and y_true.dtype is dtype
        and y_pred.ndim <= 2
        and y_true.shape == y_pred.shape
        and ((y_true.is_cpu and y_pred.is_cpu) or y_true.device == y_pred.device)
        and y_pred.numel() > 0
    )


def _unweighted_grand(options: Options, native: Any, y_true: Tensor, y_pred: Tensor
                      ) -> tuple[Tensor, Any]:
    """The grand statistic of every element without weights: torch's fused loss (forward and
    backward fused for large tensors in training, :mod:`~mseplug.backend.torch.fused`)."""
    n = y_pred.numel()
    mean = options.reduction == "mean"
    if n >= FUSED_MIN and native.training is not None and TorchBackend._trains(y_true, y_pred):
        value = fused_loss(y_pred, y_true, native.training, mean)
    else:
        value = native.fused(y_pred, y_true, K.REDUCTION[options.reduction], options.params)
    return value, (n if mean else 1)


#: Up to this many elements a weighted sum is one dot product; longer ones sum in torch's
#: cascades (a long float32 dot drifts).
_DOT_MAX = 1 << 12


def _weighted_grand(backend: TorchBackend, options: Options, y_true: Tensor, y_pred: Tensor,
                    weight: Tensor, params: tuple[Any, ...], *, total_weight: Tensor | None = None
                    ) -> tuple[Tensor, Any]:
    """``(Σ w·e / Σ w, Σ w)`` (or ``(Σ w·e, 1)``) of 1-D tensors, ``weight`` in their dtype
    (``total_weight``: ``Σ w`` if the caller has it)."""
    losses = backend.elementwise(backend.namespace(y_pred), options.loss, y_true, y_pred, params)
    weighted = torch.dot(weight, losses) if y_pred.shape[0] <= _DOT_MAX else torch.sum(weight * losses)
    if options.reduction != "mean":
        return weighted, 1
    if total_weight is None:
        total_weight = weight.sum()
    return weighted / total_weight, total_weight
