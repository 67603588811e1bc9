"""``grad`` and ``value_and_grad``: the gradient of any registered loss with respect to ``y_pred``.

The loss functions themselves (``mseplug.mse``, ...) are made from their
records by :mod:`mseplug.api.registry`.
"""

from __future__ import annotations

from typing import Any

from mseplug._typing import Array, ArrayLike, BackendLike, LossLike
from mseplug.api.backends import dispatch
from mseplug.api.registry import options_for
from mseplug.engine import pipeline
from mseplug.engine import validation as v


def value_and_grad(
    loss: LossLike, y_true: ArrayLike, y_pred: ArrayLike, *,
    sample_weight: ArrayLike | None = None, backend: BackendLike = None, **options: Any,
) -> tuple[Array, Array]:
    """The loss and its gradient with respect to ``y_pred``.

    The gradient has ``y_pred``'s library, shape, device and promoted dtype.
    NumPy (and the generic Array API backend) give the analytic gradient from
    the loss's derivative; torch and JAX use their autodiff, which follows the
    same derivative. The conventions hold everywhere: the MAE subgradient at a
    zero residual is 0, the RMSE gradient at a perfect fit is 0, and
    ``nan_policy="omit"`` gives finite gradients (0 at the dropped elements).

    Parameters
    ----------
    loss : str, loss function or Loss
        A registered loss by name (see :func:`mseplug.losses`), its function
        (``mseplug.mse``) or its :class:`~mseplug.Loss` record.
    y_true, y_pred, sample_weight, backend
        As for the loss.
    **options
        ``multioutput``, ``reduction``, ``nan_policy`` and the loss's
        parameters (``delta=`` for Huber). The loss must be a scalar: not
        ``reduction="none"``, not ``"raw_values"`` over several outputs.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> value, g = mseplug.value_and_grad("mse", np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    >>> float(value), g.tolist()
    (0.5, [1.0, 0.0])
    """
    checked = options_for(loss, **options)
    if checked.reduction == "none":
        raise ValueError("grad needs a scalar loss; reduction='none' gives one value per element")
    chosen, y_true, y_pred, sample_weight = dispatch(y_true, y_pred, sample_weight, backend)
    value, gradient = pipeline.value_and_grad(chosen, checked, y_true, y_pred, sample_weight)
    if getattr(value, "ndim", 0) != 0:
        raise v.nonscalar_error(tuple(value.shape))
    return value, gradient


def grad(loss: LossLike, y_true: ArrayLike, y_pred: ArrayLike, **options: Any) -> Array:
    """The gradient of ``loss`` with respect to ``y_pred``; see :func:`value_and_grad`.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> mseplug.grad("mae", np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 4.0])).tolist()
    [0.0, -0.3333333333333333, 0.3333333333333333]
    """
    return value_and_grad(loss, y_true, y_pred, **options)[1]
