"""The public loss functions: check options -> resolve the backend -> compute.

Every function takes ``(y_true, y_pred)`` positionally, as scikit-learn and the
formula do, and its options by keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mseplug._options import make_options
from mseplug._registry import resolve
from mseplug._validation import nonscalar_error

ArrayLike = Any

_SHARED_PARAMETERS = """
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
"""

_RETURNS = """
    Returns
    -------
    loss : array
        A 0-d array of ``y_pred``'s library and promoted dtype (an array for
        ``"raw_values"`` or ``reduction="none"``), still part of any autodiff graph.
"""


def mse(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    multioutput: str | ArrayLike = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    backend: Any = None,
) -> Any:
    options = make_options(
        "mse", multioutput=multioutput, reduction=reduction, nan_policy=nan_policy
    )
    return resolve(y_true, y_pred, backend).evaluate(options, y_true, y_pred, sample_weight)


def mae(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    multioutput: str | ArrayLike = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    backend: Any = None,
) -> Any:
    options = make_options(
        "mae", multioutput=multioutput, reduction=reduction, nan_policy=nan_policy
    )
    return resolve(y_true, y_pred, backend).evaluate(options, y_true, y_pred, sample_weight)


def rmse(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    multioutput: str | ArrayLike = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    backend: Any = None,
) -> Any:
    options = make_options(
        "rmse", multioutput=multioutput, reduction=reduction, nan_policy=nan_policy
    )
    return resolve(y_true, y_pred, backend).evaluate(options, y_true, y_pred, sample_weight)


def huber(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    multioutput: str | ArrayLike = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    backend: Any = None,
    delta: float = 1.0,
) -> Any:
    options = make_options(
        "huber", multioutput=multioutput, reduction=reduction, nan_policy=nan_policy, delta=delta
    )
    return resolve(y_true, y_pred, backend).evaluate(options, y_true, y_pred, sample_weight)


mse.__doc__ = f"""Mean squared error, ``Σᵢ wᵢ (ŷᵢ - yᵢ)² / Σᵢ wᵢ``.
{_SHARED_PARAMETERS}{_RETURNS}
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

mae.__doc__ = f"""Mean absolute error, ``Σᵢ wᵢ |ŷᵢ - yᵢ| / Σᵢ wᵢ``.
{_SHARED_PARAMETERS}{_RETURNS}
    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.mae([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
    >>> float(mseplug.mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0], sample_weight=[1.0, 1.0, 0.0]))
    0.5
"""

rmse.__doc__ = f"""Root mean squared error: the square root of each output's MSE, then averaged.

    As scikit-learn's ``root_mean_squared_error``, the root is taken per output
    before ``multioutput`` combines them; ``reduction`` must be ``"mean"``.
{_SHARED_PARAMETERS}{_RETURNS}
    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.rmse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
    20000.0
"""

huber.__doc__ = f"""Huber loss: ``½r²`` where ``|r| <= delta``, else ``delta·(|r| - ½delta)``.

    The same elementwise loss as ``torch.nn.functional.huber_loss`` and
    ``optax.huber_loss``, averaged like :func:`mse`.
{_SHARED_PARAMETERS}
    delta : float, default 1.0
        Where the loss turns from quadratic to linear; finite and > 0.
{_RETURNS}
    Examples
    --------
    >>> import mseplug
    >>> float(mseplug.huber([0.0, 0.0], [0.5, 3.0], delta=1.0))
    1.3125
"""

_FUNCTIONS: dict[Callable[..., Any], str] = {mse: "mse", mae: "mae", rmse: "rmse", huber: "huber"}


def _loss_name(loss: Any) -> str:
    if isinstance(loss, str):
        return loss
    name = _FUNCTIONS.get(loss)
    if name is None:
        raise TypeError(
            "loss must be 'mse', 'mae', 'rmse', 'huber' or one of mseplug's loss functions; "
            f"got {loss!r}"
        )
    return name


def value_and_grad(
    loss: str | Callable[..., Any],
    y_true: ArrayLike,
    y_pred: ArrayLike,
    *,
    sample_weight: ArrayLike | None = None,
    multioutput: str | ArrayLike = "uniform_average",
    reduction: str = "mean",
    nan_policy: str = "propagate",
    backend: Any = None,
    delta: float = 1.0,
) -> tuple[Any, Any]:
    """The loss and its gradient with respect to ``y_pred``.

    The gradient has ``y_pred``'s library, shape, device and promoted dtype.
    NumPy gradients are analytic; torch and JAX use their autodiff with
    mseplug's conventions: the MAE subgradient at a zero residual is 0, the
    RMSE gradient at a perfect fit is 0, and ``nan_policy="omit"`` gives
    finite gradients (0 at the dropped elements).

    Parameters
    ----------
    loss : {"mse", "mae", "rmse", "huber"} or one of the loss functions
    y_true, y_pred, **options
        As for the loss; the loss must be a scalar (not ``reduction="none"``,
        not ``"raw_values"`` over several outputs).

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> value, g = mseplug.value_and_grad("mse", np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    >>> float(value), g.tolist()
    (0.5, [1.0, 0.0])
    """
    options = make_options(
        _loss_name(loss), multioutput=multioutput, reduction=reduction, nan_policy=nan_policy,
        delta=delta,
    )
    if options.reduction == "none":
        raise ValueError("grad needs a scalar loss; reduction='none' gives one value per element")
    chosen = resolve(y_true, y_pred, backend)
    value, gradient = chosen.value_and_grad(options, y_true, y_pred, sample_weight)
    if getattr(value, "ndim", 0) != 0:
        raise nonscalar_error(tuple(value.shape))
    return value, gradient


def grad(
    loss: str | Callable[..., Any],
    y_true: ArrayLike,
    y_pred: ArrayLike,
    **options: Any,
) -> Any:
    """The gradient of ``loss`` with respect to ``y_pred``; see :func:`value_and_grad`.

    Examples
    --------
    >>> import numpy as np, mseplug
    >>> mseplug.grad("mae", np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 4.0])).tolist()
    [0.0, -0.3333333333333333, 0.3333333333333333]
    """
    return value_and_grad(loss, y_true, y_pred, **options)[1]
