"""``torch.nn`` losses: ``Loss(name)`` for any registered loss, and named drop-ins.

:class:`MSELoss`, :class:`MAELoss` and :class:`HuberLoss` replace
``torch.nn.MSELoss``, ``L1Loss`` and ``HuberLoss`` in a training loop:
``__init__(reduction="mean", ...)`` and ``forward(input, target)`` in torch's
order (``input`` is the prediction, ``target`` the truth), plus mseplug's
keywords: ``sample_weight`` in :meth:`Loss.forward`, ``multioutput`` and
``nan_policy`` in the constructor. Unlike torch, shapes that differ raise a
``ValueError`` instead of being broadcast with a warning, mixed float dtypes
promote, and integer targets are accepted. :func:`all_reduce` sums an
:class:`~mseplug.Accumulator` across ``torch.distributed`` ranks.

Examples
--------
>>> import torch
>>> from mseplug.torch import MSELoss
>>> loss_fn = MSELoss()
>>> loss_fn
MSELoss(reduction='mean', multioutput='uniform_average', nan_policy='propagate')
>>> prediction = torch.tensor([100_000.0, 80_000.0], requires_grad=True)
>>> loss = loss_fn(prediction, torch.tensor([120_000.0, 60_000.0]))
>>> loss.item()
400000000.0
>>> loss.backward()
>>> prediction.grad.tolist()
[-20000.0, 20000.0]
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

import mseplug
from mseplug._torch_distributed import all_reduce

__all__ = ["HuberLoss", "LogCoshLoss", "Loss", "MAELoss", "MSELoss", "PinballLoss", "RMSELoss",
           "all_reduce"]

_OPTIONS = ("reduction", "multioutput", "nan_policy")


def _setting(name: str) -> property:
    """An option attribute; assigning it (torch allows it for ``reduction``) re-checks options."""

    def getter(self: Loss) -> Any:
        return self._settings[name]

    def setter(self: Loss, value: Any) -> None:
        self._configure({**self._settings, name: value})

    return property(getter, setter, doc=f"The loss's ``{name}`` option (checked when set).")


class Loss(torch.nn.Module):
    """Any registered mseplug loss as a ``torch.nn.Module``.

    Parameters
    ----------
    loss : str
        A registered loss (see :func:`mseplug.losses`).
    reduction : {"mean", "sum", "none"}, default "mean"
        Weighted mean over samples, the sum of the weighted elementwise losses,
        or the weighted elementwise losses themselves (``input``'s shape).
    multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
        How trailing dimensions (outputs) combine; see :func:`mseplug.mse`.
    nan_policy : {"propagate", "raise", "omit"}, default "propagate"
        ``"omit"`` drops elements whose target or prediction is NaN (zero gradient there).
    **params
        The loss's parameters (``delta=`` for ``"huber"``, ``alpha=`` for ``"pinball"``).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import Loss
    >>> loss_fn = Loss("huber", delta=0.5)
    >>> loss_fn
    Loss('huber', reduction='mean', delta=0.5, multioutput='uniform_average', nan_policy='propagate')
    >>> float(loss_fn(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])))
    0.4375
    """

    reduction = _setting("reduction")
    multioutput = _setting("multioutput")
    nan_policy = _setting("nan_policy")

    def __init__(
        self, loss: str, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate", **params: Any,
    ) -> None:
        super().__init__()
        self._record: mseplug.Loss = mseplug.get_loss(loss).loss
        self._configure({"reduction": reduction, "multioutput": multioutput,
                         "nan_policy": nan_policy, **params})

    def _configure(self, settings: dict[str, Any]) -> None:
        options = {key: settings[key] for key in _OPTIONS}
        params = {key: value for key, value in settings.items() if key not in _OPTIONS}
        self._options = self._record.options(**options, **params)
        self._settings = settings

    @property
    def params(self) -> dict[str, Any]:
        """The loss's parameter values."""
        return self._options.param_dict

    def forward(self, input: torch.Tensor, target: Any, sample_weight: Any = None) -> torch.Tensor:
        """The loss of predictions ``input`` against ``target`` (torch's argument order).

        Parameters
        ----------
        input : Tensor of shape (n_samples, *outputs)
            Predictions; the result has their device and (promoted) dtype.
        target : Tensor or array_like of the same shape
            Ground truth; a NumPy array is moved to ``input``'s device and dtype.
        sample_weight : Tensor or array_like of shape (n_samples,), optional
            Finite, non-negative weights with a positive sum.

        Returns
        -------
        Tensor
            0-d (or per output / per element, by ``multioutput`` and ``reduction``).
        """
        return _TORCH.evaluate(self._options, target, input, sample_weight)

    def extra_repr(self) -> str:
        shown = [] if type(self)._name else [repr(self._record.name)]
        shown.append(f"reduction={self._settings['reduction']!r}")
        shown += [f"{name}={value!r}" for name, value in self.params.items()]
        for name in ("multioutput", "nan_policy"):
            value = self._settings[name]
            shown.append(f"{name}={value.tolist() if hasattr(value, 'tolist') else value!r}")
        return ", ".join(shown)

    _name: ClassVar[str] = ""


class _Named(Loss):
    """A loss module for one fixed loss: torch's ``(reduction, *, ...)`` constructor."""

    def __init__(
        self, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate", **params: Any,
    ) -> None:
        super().__init__(self._name, reduction, multioutput=multioutput, nan_policy=nan_policy,
                         **params)


class MSELoss(_Named):
    """Mean squared error; a drop-in for ``torch.nn.MSELoss``.

    Parameters are those of :class:`Loss`, without ``loss``.

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import MSELoss
    >>> loss = MSELoss()(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]),
    ...                  sample_weight=torch.tensor([1.0, 3.0]))
    >>> float(loss)
    3.0
    """

    _name = "mse"


class MAELoss(_Named):
    """Mean absolute error; a drop-in for ``torch.nn.L1Loss`` (subgradient 0 at a zero residual).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import MAELoss
    >>> float(MAELoss()(torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 3.0, 3.0])))
    1.0
    """

    _name = "mae"


class RMSELoss(_Named):
    """Root mean squared error, per output then averaged; its gradient at a perfect fit is 0.

    ``reduction`` must be ``"mean"`` (a root of a sum is no RMSE).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import RMSELoss
    >>> float(RMSELoss()(torch.tensor([3.0, -3.0]), torch.tensor([0.0, 0.0])))
    3.0
    """

    _name = "rmse"


class HuberLoss(_Named):
    """Huber loss; a drop-in for ``torch.nn.HuberLoss`` (same argument order).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; finite and > 0.
    multioutput, nan_policy
        As for :class:`Loss`.

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import HuberLoss
    >>> HuberLoss(delta=2.0)
    HuberLoss(reduction='mean', delta=2.0, multioutput='uniform_average', nan_policy='propagate')
    >>> float(HuberLoss()(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])))
    1.3125
    """

    _name = "huber"
    delta = _setting("delta")

    def __init__(
        self, reduction: str = "mean", delta: float = 1.0, *,
        multioutput: Any = "uniform_average", nan_policy: str = "propagate",
    ) -> None:
        super().__init__(reduction, multioutput=multioutput, nan_policy=nan_policy, delta=delta)


class PinballLoss(_Named):
    """Pinball (quantile) loss of level ``alpha``: trains a model to predict that quantile.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
    multioutput, nan_policy
        As for :class:`Loss`.
    **params
        ``alpha`` (float, default 0.5, keyword only): the quantile; in (0, 1).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import PinballLoss
    >>> PinballLoss(alpha=0.9)
    PinballLoss(reduction='mean', alpha=0.9, multioutput='uniform_average', nan_policy='propagate')
    >>> float(PinballLoss(alpha=0.9)(torch.tensor([10.0, 14.0]), torch.tensor([12.0, 12.0])))
    1.0
    """

    _name = "pinball"
    alpha = _setting("alpha")


class LogCoshLoss(_Named):
    """Log-cosh loss (Keras' ``LogCosh``): smooth like MSE near 0, linear like MAE far away.

    Examples
    --------
    >>> import math, torch
    >>> from mseplug.torch import LogCoshLoss
    >>> loss = LogCoshLoss()(torch.tensor([1.0], dtype=torch.float64), torch.tensor([0.0]))
    >>> math.isclose(float(loss), math.log(math.cosh(1.0)))
    True
    """

    _name = "log_cosh"


_TORCH: mseplug.Backend = mseplug.get_backend(torch.empty(0))
