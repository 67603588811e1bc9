"""The public functions: one per built-in loss, and ``grad`` / ``value_and_grad`` for any loss.

Each built-in below is registered from its :class:`~mseplug.Loss` record
(:mod:`mseplug._losses`); the ``def`` gives readers and static tools its
signature and docstring, and :func:`mseplug._loss_registry.builtin` supplies
the body every loss shares: check options, resolve the backend from
``y_pred``, run the engine.
"""

from __future__ import annotations

from typing import Any

from mseplug import _losses
from mseplug import _validation as v
from mseplug._backend_registry import dispatch
from mseplug._loss_registry import builtin, options_for
from mseplug._typing import Array, ArrayLike, BackendLike, LossLike, Multioutput, NanPolicy, Reduction


@builtin(_losses.MSE)
def mse(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None,
) -> Array:
    """Mean squared error, ``Σᵢ wᵢ (ŷᵢ - yᵢ)² / Σᵢ wᵢ``.

    Parameters
    ----------
    y_true : array_like of shape (n_samples,) or (n_samples, *outputs)
        Ground truth. Converted to ``y_pred``'s library, device and dtype.
    y_pred : array_like of the same shape
        Predictions; the result follows their library and device. The one
        shape difference tolerated is ``(n,)`` against ``(n, 1)``; nothing is
        ever broadcast.
    sample_weight : array_like of shape (n_samples,), optional
        Finite, non-negative weights with a positive sum.
    multioutput : {"uniform_average", "raw_values"} or array_like, default "uniform_average"
        How outputs (trailing dimensions) combine: their plain mean, one value
        per output (shape ``y.shape[1:]``), or an average with these weights.
        With ``reduction="sum"`` the outputs' sums are added (weighted).
    reduction : {"mean", "sum", "none"}, default "mean"
        Weighted mean over samples, sum of the weighted elementwise losses, or
        the weighted elementwise losses themselves (``y_pred``'s shape).
    nan_policy : {"propagate", "raise", "omit"}, default "propagate"
        ``"omit"`` drops each element whose target or prediction is NaN and
        renormalises by the weight that remains (its ``"none"`` entry is 0).
    backend : str or Backend, optional
        Force a backend (see :func:`mseplug.backends`); inputs are converted.

    Returns
    -------
    loss : array
        A 0-d array of ``y_pred``'s library and promoted dtype (an array for
        ``"raw_values"`` or ``reduction="none"``), still part of any autodiff graph.

    Examples
    --------
    Two house prices, 120K and 60K, predicted as 100K and 80K: the raw errors
    cancel (sum 0), the squared ones do not.

    >>> import mseplug
    >>> float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    400000000.0
    >>> float(mseplug.mse([[1.0, 2.0], [3.0, 4.0]], [[1.0, 3.0], [3.0, 6.0]],
    ...                   multioutput="raw_values")[1])
    2.5
    """


@builtin(_losses.MAE)
def mae(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None,
) -> Array:
    """Mean absolute error, ``Σᵢ wᵢ |ŷᵢ - yᵢ| / Σᵢ wᵢ``; less swayed by outliers than MSE.

    Parameters
    ----------
    y_true, y_pred, sample_weight, multioutput, reduction, nan_policy, backend
        As for :func:`mse`.

    Returns
    -------
    loss : array
        As for :func:`mse`.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.mae([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
    >>> float(mseplug.mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], sample_weight=[1.0, 1.0, 0.0]))
    0.5
    """


@builtin(_losses.RMSE)
def rmse(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None,
) -> Array:
    """Root mean squared error: the square root of each output's MSE, then averaged.

    As scikit-learn's ``root_mean_squared_error``, the root is taken per output
    before ``multioutput`` combines them; ``reduction`` must be ``"mean"``.
    The result is in the target's units.

    Parameters
    ----------
    y_true, y_pred, sample_weight, multioutput, reduction, nan_policy, backend
        As for :func:`mse`.

    Returns
    -------
    loss : array
        As for :func:`mse`.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.rmse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
    """


@builtin(_losses.HUBER)
def huber(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None, delta: float = 1.0,
) -> Array:
    """Huber loss: ``½r²`` where ``|r| <= delta``, else ``delta·(|r| - ½delta)``.

    The same elementwise loss as ``torch.nn.functional.huber_loss`` and
    ``optax.huber_loss``, averaged like :func:`mse`: quadratic near zero,
    linear (so less swayed by outliers) far away.

    Parameters
    ----------
    y_true, y_pred, sample_weight, multioutput, reduction, nan_policy, backend
        As for :func:`mse`.
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; finite and > 0.

    Returns
    -------
    loss : array
        As for :func:`mse`.

    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.huber([0.0, 0.0], [0.5, 3.0], delta=1.0))
    1.3125
    """


@builtin(_losses.PINBALL)
def pinball(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None, alpha: float = 0.5,
) -> Array:
    """Pinball (quantile) loss: ``α·|r|`` below the truth, ``(1 - α)·r`` above it.

    Minimising it makes the prediction the ``α``-quantile of the target, as
    ``sklearn.metrics.mean_pinball_loss`` (same values, weights and
    ``multioutput``); ``alpha=0.5`` gives half the MAE. The subgradient at a
    zero residual is 0, as for :func:`mae`.

    Parameters
    ----------
    y_true, y_pred, sample_weight, multioutput, reduction, nan_policy, backend
        As for :func:`mse`.
    alpha : float, default 0.5
        The quantile the loss targets; in (0, 1).

    Returns
    -------
    loss : array
        As for :func:`mse`.

    Examples
    --------
    Predicting 10 where the truth is 12 costs ``0.9 · 2`` at ``alpha=0.9``;
    predicting 14 costs ``0.1 · 2``.

    >>> import mseplug
    >>> float(mseplug.pinball([12.0, 12.0], [10.0, 14.0], alpha=0.9))
    1.0
    >>> float(2 * mseplug.pinball([1.0, 2.0], [3.0, 0.0])) == float(mseplug.mae([1.0, 2.0], [3.0, 0.0]))
    True
    """


@builtin(_losses.LOG_COSH)
def log_cosh(
    y_true: ArrayLike, y_pred: ArrayLike, *, sample_weight: ArrayLike | None = None,
    multioutput: Multioutput = "uniform_average", reduction: Reduction = "mean",
    nan_policy: NanPolicy = "propagate", backend: BackendLike = None,
) -> Array:
    """Log-cosh loss, ``Σᵢ wᵢ log(cosh(ŷᵢ - yᵢ)) / Σᵢ wᵢ``, as Keras' ``LogCosh``.

    About ``r²/2`` for small residuals and ``|r| - log 2`` for large ones: like
    Huber, smooth everywhere (its derivative is ``tanh(r)``), with no
    threshold to choose. Computed as ``|r| + log1p(exp(-2|r|)) - log 2``, so it
    stays finite where ``cosh`` overflows.

    Parameters
    ----------
    y_true, y_pred, sample_weight, multioutput, reduction, nan_policy, backend
        As for :func:`mse`.

    Returns
    -------
    loss : array
        As for :func:`mse`.

    Examples
    --------
    >>> import math, mseplug
    >>> math.isclose(float(mseplug.log_cosh([0.0], [1.0])), math.log(math.cosh(1.0)))
    True
    >>> float(mseplug.log_cosh([0.0], [1000.0]))  # cosh(1000) overflows; the loss does not
    999.3068528194401
    """


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
    value, gradient = chosen.value_and_grad(checked, y_true, y_pred, sample_weight)
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
