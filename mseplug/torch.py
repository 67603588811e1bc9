"""Drop-in ``torch.nn`` losses: ``MSELoss``, ``MAELoss``, ``RMSELoss`` and ``HuberLoss``.

They replace ``torch.nn.MSELoss``, ``L1Loss`` and ``HuberLoss`` in a training
loop: ``__init__(reduction="mean", ...)`` and ``forward(input, target)`` in
torch's order (``input`` is the prediction, ``target`` the truth), plus
mseplug's keywords: ``sample_weight`` in :meth:`forward`, ``multioutput`` and
``nan_policy`` in the constructor. Unlike torch, shapes that differ raise a
``ValueError`` instead of being broadcast with a warning, mixed float dtypes
promote, and integer targets are accepted.

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

from mseplug import _registry
from mseplug._options import Options, make_options

__all__ = ["HuberLoss", "MAELoss", "MSELoss", "RMSELoss"]


def _setting(name: str) -> property:
    """An option attribute; assigning it (torch allows it for ``reduction``) re-checks options."""

    def getter(self: _RegressionLoss) -> Any:
        return self._settings[name]

    def setter(self: _RegressionLoss, value: Any) -> None:
        settings = {**self._settings, name: value}
        self._options = self._make_options(settings)
        self._settings = settings

    return property(getter, setter, doc=f"The loss's ``{name}`` option (checked when set).")


class _RegressionLoss(torch.nn.Module):
    """Shared machinery: options checked once at construction, one backend call per forward."""

    _loss: ClassVar[str]
    _shown: ClassVar[tuple[str, ...]] = ("reduction", "multioutput", "nan_policy")

    reduction = _setting("reduction")
    multioutput = _setting("multioutput")
    nan_policy = _setting("nan_policy")

    def __init__(
        self,
        reduction: str = "mean",
        *,
        multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
        delta: float = 1.0,
    ) -> None:
        super().__init__()
        settings = {
            "reduction": reduction, "multioutput": multioutput, "nan_policy": nan_policy,
            "delta": delta,
        }
        self._options: Options = self._make_options(settings)
        self._settings: dict[str, Any] = settings

    def _make_options(self, settings: dict[str, Any]) -> Options:
        return make_options(self._loss, **settings)

    def forward(
        self, input: torch.Tensor, target: Any, sample_weight: Any = None
    ) -> torch.Tensor:
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
        return _BACKEND.evaluate(self._options, target, input, sample_weight)

    def extra_repr(self) -> str:
        shown = []
        for name in self._shown:
            value = self._settings[name]
            if hasattr(value, "tolist"):
                value = value.tolist()
            shown.append(f"{name}={value!r}")
        return ", ".join(shown)


class MSELoss(_RegressionLoss):
    """Mean squared error; a drop-in for ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
        Weighted mean over samples, the sum of the weighted elementwise losses,
        or the weighted elementwise losses themselves (``input``'s shape).
    multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
        How trailing dimensions (outputs) combine; see :func:`mseplug.mse`.
    nan_policy : {"propagate", "raise", "omit"}, default "propagate"
        ``"omit"`` drops elements whose target or prediction is NaN (zero gradient there).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import MSELoss
    >>> loss = MSELoss()(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0]),
    ...                  sample_weight=torch.tensor([1.0, 3.0]))
    >>> float(loss)
    3.0
    """

    _loss = "mse"

    def __init__(
        self, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
    ) -> None:
        super().__init__(reduction, multioutput=multioutput, nan_policy=nan_policy)


class MAELoss(_RegressionLoss):
    """Mean absolute error; a drop-in for ``torch.nn.L1Loss`` (subgradient 0 at a zero residual).

    Parameters are those of :class:`MSELoss`.

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import MAELoss
    >>> float(MAELoss()(torch.tensor([1.0, 2.0, 5.0]), torch.tensor([1.0, 3.0, 3.0])))
    1.0
    """

    _loss = "mae"

    def __init__(
        self, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
    ) -> None:
        super().__init__(reduction, multioutput=multioutput, nan_policy=nan_policy)


class RMSELoss(_RegressionLoss):
    """Root mean squared error, per output then averaged; its gradient at a perfect fit is 0.

    Parameters are those of :class:`MSELoss`, except that ``reduction`` must
    be ``"mean"`` (a root of a sum is no RMSE).

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import RMSELoss
    >>> float(RMSELoss()(torch.tensor([3.0, -3.0]), torch.tensor([0.0, 0.0])))
    3.0
    """

    _loss = "rmse"

    def __init__(
        self, reduction: str = "mean", *, multioutput: Any = "uniform_average",
        nan_policy: str = "propagate",
    ) -> None:
        super().__init__(reduction, multioutput=multioutput, nan_policy=nan_policy)


class HuberLoss(_RegressionLoss):
    """Huber loss; a drop-in for ``torch.nn.HuberLoss`` (same argument order).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default "mean"
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; finite and > 0.
    multioutput, nan_policy
        As for :class:`MSELoss`.

    Examples
    --------
    >>> import torch
    >>> from mseplug.torch import HuberLoss
    >>> HuberLoss(delta=2.0)
    HuberLoss(reduction='mean', delta=2.0, multioutput='uniform_average', nan_policy='propagate')
    >>> float(HuberLoss()(torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])))
    1.3125
    """

    _loss = "huber"
    _shown = ("reduction", "delta", "multioutput", "nan_policy")

    delta = _setting("delta")

    def __init__(
        self, reduction: str = "mean", delta: float = 1.0, *,
        multioutput: Any = "uniform_average", nan_policy: str = "propagate",
    ) -> None:
        super().__init__(reduction, multioutput=multioutput, nan_policy=nan_policy, delta=delta)


_BACKEND: Any = _registry._builtin("torch")
