"""Torch kernels with mseplug's gradient conventions.

Everything here stays in torch's autograd graph and composes with
``torch.compile`` and ``torch.func``:

- A loss's elementwise function runs inside :class:`_Elementwise`, an
  autograd function whose backward (and forward-mode jvp) is the loss's
  derivative, so gradients follow the loss's own convention and second
  derivatives come from differentiating the derivative.
- The built-in losses have native kernels (:data:`SQUARED`, :data:`ABSOLUTE`,
  :data:`HUBER`): torch's fused losses for the default options (MSE, MAE), and plain torch
  ops whose autodiff already follows the conventions (``abs`` differentiates
  through ``sgn``: 0 at 0) for everything else.
- :func:`safe_sqrt` has gradient 0 at 0 (RMSE at a perfect fit), never NaN.

Examples
--------
>>> import torch
>>> from mseplug.backend.torch.kernels import safe_sqrt
>>> x = torch.zeros(2, requires_grad=True)
>>> safe_sqrt(x).sum().backward()
>>> x.grad.tolist()
[0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from mseplug.backend.torch.fused import ABSOLUTES, SQUARES, ResidualReduction
from mseplug.loss import builtin
from mseplug.loss.record import Loss

Tensor = torch.Tensor
Params = tuple[Any, ...]

# The C functions behind ``F.mse_loss`` / ``F.l1_loss`` / ``F.huber_loss``. Called directly,
# they skip the wrappers' Python work (``broadcast_tensors``, a size warning, reduction
# lookup) that mseplug's own shape check makes redundant; ``__torch_function__`` subclasses
# are still dispatched by the C binding.
_nn: Any = torch._C._nn
REDUCTION = {"none": 0, "mean": 1, "sum": 2}
#: dtypes the fused kernels compute in directly (half precision goes the float32 way).
NATIVE_DTYPES = (torch.float32, torch.float64)


class TorchKernel(NamedTuple):
    """A loss's native torch kernels.

    ``fused(y_pred, y_true, reduction_enum, params)`` is torch's fused loss
    (valid with no weights, NaN propagating and outputs averaged uniformly);
    ``elementwise(r, params)`` is the elementwise loss in plain torch ops
    whose autodiff gives the loss's derivative and second derivative;
    ``training`` reduces a kept residual for :func:`fused_loss` (large tensors
    that need a gradient), or ``None``.
    """

    fused: Callable[[Tensor, Tensor, int, Params], Tensor] | None
    elementwise: Callable[[Tensor, Params], Tensor]
    training: ResidualReduction | None = None


def _huber_elementwise(r: Tensor, params: Params) -> Tensor:
    # c²/2 + δ(|r| - |c|), c = clamp(r, -δ, δ): derivative clamp(r), second derivative 1
    # at 0 under autodiff, and δ·sign(r) at r = ±inf (mseplug.loss.builtin.huber).
    delta = params[0]
    c = torch.clamp(r, -delta, delta)
    return 0.5 * (c * c) + delta * (torch.abs(r) - torch.abs(c))


SQUARED = TorchKernel(lambda p, t, enum, params: _nn.mse_loss(p, t, enum), lambda r, params: r * r,
                      SQUARES)
ABSOLUTE = TorchKernel(lambda p, t, enum, params: _nn.l1_loss(p, t, enum),
                       lambda r, params: torch.abs(r), ABSOLUTES)
#: No fused kernel: ``F.huber_loss``'s double backward says 0 at ``|r| == δ``, where mseplug's
#: second derivative is 1 on every backend (the quadratic piece is closed, as ``clamp`` says).
HUBER = TorchKernel(None, _huber_elementwise)

#: The torch backend's native kernels, by the residual function of the loss they compute.
NATIVE: dict[Callable[..., Any], TorchKernel] = {
    builtin.squared_error: SQUARED,
    builtin.absolute_error: ABSOLUTE,
    builtin.huber: HUBER,
}


def native_kernel(loss: Loss) -> TorchKernel | None:
    """The loss's native kernels, or ``None`` (a loss of the pair has none)."""
    return NATIVE.get(loss.elementwise) if loss.residual and loss.elementwise else None


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
    # makes the gradient inf, so the overflow shows (docs/conventions.md). The root of a
    # negative mean (a custom root loss with negative values) is NaN, as on every backend.
    return torch.where(x < 0, torch.nan, torch.where(torch.isinf(x), x * x, root))


_XP: Any = None


def _namespace() -> Any:
    global _XP
    if _XP is None:
        import array_api_compat.torch

        _XP = array_api_compat.torch
    return _XP


class _Elementwise(torch.autograd.Function):
    """``loss.elementwise(r)`` with ``loss.derivative(r)`` as its backward rule.

    The backward is made of torch ops on the saved residual, so double
    backward, ``torch.func.hessian`` and ``vmap`` (a generated rule) work.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(r: Tensor, loss: Loss, *params: Any) -> Tensor:
        return loss.of_residual(_namespace(), r, params)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        r, loss, *params = inputs
        ctx.save_for_backward(r)
        ctx.save_for_forward(r)
        ctx.loss, ctx.params = loss, tuple(params)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:
        (r,) = ctx.saved_tensors
        slope = ctx.loss.slope_of_residual(_namespace(), r, ctx.params)
        return (grad * slope, None, *(None for _ in ctx.params))


class _ElementwiseWithJvp(_Elementwise):
    """:class:`_Elementwise` with a forward-mode rule (``torch.func.jacfwd``, ``hessian``).

    ``torch.compile`` cannot trace a custom ``jvp``, so compiled code uses the parent.
    """

    @staticmethod
    def jvp(ctx: Any, r_tangent: Tensor, *_: Any) -> Tensor:
        (r,) = ctx.saved_tensors
        return r_tangent * ctx.loss.slope_of_residual(_namespace(), r, ctx.params)


class _PairElementwise(torch.autograd.Function):
    """``loss.elementwise(y_true, y_pred)`` with ``loss.derivative`` as its rule for ``y_pred``.

    ``y_true`` rarely needs a gradient; when it does, it comes from autodiff of
    the elementwise function itself.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(t: Tensor, p: Tensor, loss: Loss, *params: Any) -> Tensor:
        return loss.pointwise(_namespace(), t, p, params)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
        t, p, loss, *params = inputs
        ctx.save_for_backward(t, p)
        ctx.save_for_forward(t, p)
        ctx.loss, ctx.params = loss, tuple(params)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Any:
        t, p = ctx.saved_tensors
        grad_p = grad * ctx.loss.slope(_namespace(), t, p, ctx.params)
        grad_t = None
        if ctx.needs_input_grad[0]:
            with torch.enable_grad():
                free = t.detach().requires_grad_(True)
                value = ctx.loss.pointwise(_namespace(), free, p.detach(), ctx.params)
                (grad_t,) = torch.autograd.grad(value, free, grad)
        return (grad_t, grad_p, None, *(None for _ in ctx.params))


class _PairElementwiseWithJvp(_PairElementwise):
    """:class:`_PairElementwise` with a forward-mode rule (for ``y_pred``'s tangent)."""

    @staticmethod
    def jvp(ctx: Any, t_tangent: Tensor | None, p_tangent: Tensor | None, *_: Any) -> Tensor:
        t, p = ctx.saved_tensors
        tangent = torch.zeros_like(p)
        if p_tangent is not None:
            tangent = tangent + p_tangent * ctx.loss.slope(_namespace(), t, p, ctx.params)
        if t_tangent is not None:
            moved = torch.func.jvp(
                lambda x: ctx.loss.pointwise(_namespace(), x, p, ctx.params), (t,), (t_tangent,))[1]
            tangent = tangent + moved
        return tangent


def differentiable_elementwise(loss: Loss, y_true: Tensor, y_pred: Tensor, params: Params) -> Tensor:
    """The loss of each element, differentiated by the loss's own derivative."""
    if loss.derivative is None:
        return loss.pointwise(_namespace(), y_true, y_pred, params)
    compiling = is_compiling()
    if loss.residual:
        function = _Elementwise if compiling else _ElementwiseWithJvp
        return function.apply(y_pred - y_true, loss, *params)
    pair = _PairElementwise if compiling else _PairElementwiseWithJvp
    return pair.apply(y_true, y_pred, loss, *params)


def host_checks_possible(x: Tensor) -> bool:
    """Whether a value check that reads numbers back to Python can run on ``x``.

    Not while ``torch.compile`` traces (it would break the graph, or fail under
    ``fullgraph=True``), not on functorch-wrapped tensors (``vmap`` cannot read
    a batched value) and not on the data-less ``meta`` device.
    """
    return not (is_compiling() or x.is_meta or functorch_wrapped(x))


is_compiling: Callable[[], bool] = getattr(torch.compiler, "is_compiling", lambda: False)


#: Whether ``x`` is a ``torch.func`` (vmap, grad) wrapper, whose values cannot be read.
functorch_wrapped: Callable[[Tensor], bool] = getattr(
    torch._C._functorch, "is_functorch_wrapped_tensor", lambda x: False
)
