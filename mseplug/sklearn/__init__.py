"""scikit-learn scorers for mseplug's losses.

Use them wherever scikit-learn takes ``scoring=``: ``cross_val_score``,
``cross_validate``, ``GridSearchCV``, ``RandomizedSearchCV``. They pickle, so
``n_jobs=2`` works; they accept multi-output targets and, with
``sklearn.set_config(array_api_dispatch=True)``, the estimator's own arrays
(for instance torch tensors), and they always return a Python ``float``.
scikit-learn's Array API mode also needs the environment variable
``SCIPY_ARRAY_API=1``, set before SciPy is first imported (scikit-learn
refuses ``array_api_dispatch=True`` without it).

A NaN score (a NaN prediction under the default ``nan_policy="propagate"``)
warns, as scikit-learn does when its own scorer fails on NaN input; build the
scorer with ``nan_policy="omit"`` to drop such samples, or ``"raise"`` to stop.

Importing this module does not import scikit-learn: the scorers are built on
first use (``mse_scorer`` and the others are created when first looked up).

Sign convention
---------------
scikit-learn always *maximises* a score, so a loss is reported **negated**,
as its own ``neg_mean_squared_error`` is: ``mse_scorer`` returns ``-MSE``, the
best model has the score closest to 0 and ``GridSearchCV.best_score_`` is
``-(smallest loss)``. That is why :func:`scorers` names its entries ``neg_*``.
A score whose record says ``greater_is_better`` (``r2``, ``explained_variance``)
is reported as it is, unnegated, and named without ``neg_``, as scikit-learn's ``r2``.
:func:`loss_from_score` undoes the sign, for one score or an array of them:
``loss_from_score(search.best_score_)`` is the best model's loss.

Sample weights
--------------
The scorers pass ``sample_weight`` on to the loss.

- Metadata routing off (scikit-learn's default): a direct call
  ``scorer(estimator, X, y, sample_weight=w)`` is weighted. In ``cross_validate``,
  ``GridSearchCV`` and the like, scikit-learn itself sends the weights to ``fit``
  only, so scores are unweighted (as with its own scorers).
- Metadata routing on (``sklearn.set_config(enable_metadata_routing=True)``):
  these scorers already *request* ``sample_weight`` (as if
  ``.set_score_request(sample_weight=True)`` had been called), so
  ``cross_validate(..., params={"sample_weight": w})`` weights every fold's
  score. To score unweighted while weighting ``fit``, opt out on a scorer of
  your own: ``make_scorer("mse").set_score_request(sample_weight=False)``
  (``mse_scorer`` and the others are shared by the whole process).

Examples
--------
>>> import numpy as np
>>> from sklearn.linear_model import Ridge
>>> from sklearn.model_selection import GridSearchCV
>>> from mseplug.sklearn import loss_from_score, mse_scorer
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(40, 3))
>>> y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=40)
>>> search = GridSearchCV(Ridge(), {"alpha": [0.01, 100.0]}, scoring=mse_scorer, cv=4).fit(X, y)
>>> search.best_params_
{'alpha': 0.01}
>>> bool(search.best_score_ < 0), bool(loss_from_score(search.best_score_) > 0)
(True, True)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, overload

import numpy as np

import mseplug
from mseplug.api.backends import backend_by_name
from mseplug.engine.validation import check_output_weights
from mseplug.loss.options import make_options
from mseplug.sklearn.metric import LossMetric

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["Scorer", "get_scorer", "get_scorer_names", "loss_from_score",
           "make_scorer", "scorers", *(f"{name}_scorer" for name in mseplug.losses())]

_OPTIONS = ("backend", "multioutput", "nan_policy")
_SUFFIX = "_scorer"


class Scorer(Protocol):
    """What :func:`make_scorer` returns: a scikit-learn scorer (a loss negated, a score as is)."""

    def __call__(
        self, estimator: Any, X: Any, y_true: Any, *, sample_weight: Any = None, **kwargs: Any
    ) -> float: ...

    def set_score_request(self, **kwargs: Any) -> Scorer: ...


def _loss(loss: object) -> mseplug.Loss:
    if isinstance(loss, str):
        return mseplug.get_loss(loss).loss
    record = getattr(loss, "loss", None)
    if isinstance(loss, mseplug.Loss):
        return loss
    if callable(loss) and isinstance(record, mseplug.Loss):
        return record
    if callable(loss):
        raise ValueError(
            f"loss={loss!r} is not one of mseplug's losses ({', '.join(mseplug.losses())}); "
            "for another function use sklearn.metrics.make_scorer(func, greater_is_better=False)"
        )
    raise TypeError(
        f"loss must be a loss name (one of {mseplug.losses()}) or an mseplug loss function; "
        f"got {type(loss).__name__}"
    )


def _check_options(loss: mseplug.Loss, options: dict[str, Any]) -> None:
    allowed = _OPTIONS + tuple(loss.params)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        hint = ""
        if "sample_weight" in unknown:
            hint = "; sample_weight is passed per call or routed as metadata, not fixed here"
        elif "reduction" in unknown:
            hint = "; a scorer always uses reduction='mean'"
        raise TypeError(
            f"make_scorer() got unexpected option(s) {unknown} for loss {loss.name!r}; "
            f"allowed: {sorted(allowed)}{hint}"
        )
    multioutput = options.get("multioutput", "uniform_average")
    if isinstance(multioutput, str) and multioutput == "raw_values":
        raise ValueError(
            "multioutput='raw_values' gives one loss per output, but a scorer returns one number; "
            "use 'uniform_average' or output weights"
        )
    # Check the values now rather than at the first fold (where cross_val_score would turn
    # the error into a warning and a NaN score): output weights' values (their number waits
    # for the data), the backend's name and the loss's parameters.
    if not isinstance(multioutput, str):
        check_output_weights(multioutput)
    if options.get("backend") is not None:
        backend_by_name(options["backend"])
    make_options(loss, multioutput=multioutput,
                 nan_policy=options.get("nan_policy", "propagate"),
                 params={key: value for key, value in options.items() if key not in _OPTIONS})


def make_scorer(loss: str | Callable[..., Any], **options: Any) -> Scorer:
    """Make a scikit-learn scorer that returns the negated ``loss`` as a Python float.

    Parameters
    ----------
    loss : str or callable
        A registered loss (see :func:`mseplug.losses`), by name or as its
        function (``mseplug.mse``, ...).
    **options
        The loss's keyword options, fixed for every call: ``multioutput``
        (``"uniform_average"`` or output weights; not ``"raw_values"``),
        ``nan_policy``, ``backend`` and the loss's parameters (``delta`` for
        ``"huber"``, ``alpha`` for ``"pinball"``).
        ``sample_weight`` is not an option: it comes with each call.

    Returns
    -------
    Scorer
        A new scorer made by :func:`sklearn.metrics.make_scorer` with
        ``greater_is_better`` from the record (``False`` for a loss), requesting
        ``sample_weight`` under metadata routing (see the module docstring).

    Raises
    ------
    ValueError
        If ``loss`` is not a known loss, or an option has a bad value.
    TypeError
        If ``loss`` is neither a string nor callable, or an option is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from mseplug.sklearn import make_scorer
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([0.0, 1.0, 2.0, 7.0])
    >>> model = LinearRegression().fit(X, y)
    >>> scorer = make_scorer("huber", delta=0.5)
    >>> round(scorer(model, X, y), 6)
    -0.37625
    >>> round(make_scorer("mse")(model, X, y, sample_weight=np.array([1.0, 1.0, 1.0, 0.0])), 6)
    -1.12
    """
    record = _loss(loss)
    _check_options(record, options)
    import sklearn
    from sklearn.metrics import make_scorer as sklearn_make_scorer

    scorer = sklearn_make_scorer(LossMetric(record), greater_is_better=record.greater_is_better,
                                 **options)
    # set_score_request refuses to run while routing is off; the request is kept
    # either way and only consulted when routing is on. A metric that takes no weights
    # (max_error, as scikit-learn's) does not request them.
    weighted = record.statistics is None or record.statistics.sample_weight
    with sklearn.config_context(enable_metadata_routing=True):
        scorer.set_score_request(sample_weight=weighted)
    result: Scorer = scorer
    return result


def scorers() -> dict[str, Scorer]:
    """New scorers for every registered loss, for multi-metric scoring.

    Returns
    -------
    dict of str to Scorer
        ``{"neg_mse": ..., "neg_mae": ..., ...}``, one per name in
        :func:`mseplug.losses`, fresh scorers with default options; the
        ``neg_`` marks negated losses.

    Examples
    --------
    Positive targets and a Poisson regression (positive predictions): inside every loss's
    domain (the Gamma deviance needs positive targets too; a zero count would be a NaN score
    for it and a warning):

    >>> import numpy as np
    >>> from sklearn.linear_model import PoissonRegressor
    >>> from sklearn.model_selection import cross_validate
    >>> from mseplug.sklearn import loss_from_score, scorers
    >>> X = np.arange(12.0).reshape(6, 2)
    >>> y = np.array([1.0, 1.0, 2.0, 3.0, 4.0, 6.0])
    >>> results = cross_validate(PoissonRegressor(), X, y, cv=3, scoring=scorers())
    >>> {"test_neg_mse", "test_neg_gamma_deviance", "test_neg_tweedie_deviance"} <= set(results)
    True
    >>> bool((loss_from_score(results["test_neg_mse"]) >= 0).all())
    True
    """
    return {_own_name(name): make_scorer(name) for name in mseplug.losses()}


def _sklearn_names() -> dict[str, str]:
    """``{"neg_mean_squared_error": "mse", "r2": "r2", ...}``: scikit-learn's own scorer names
    for the losses whose record names a ``sklearn.metrics`` function as its anchor: ``neg_`` and
    the function for a loss, the function without ``_score`` for a score (greater is better),
    or the name the record's ``"sklearn_scorer"`` anchor gives where scikit-learn's differs
    (``d2_absolute_error_score`` keeps its suffix)."""
    names = {}
    for loss in mseplug.losses():
        record = mseplug.get_loss(loss).loss
        anchor = record.anchors.get("sklearn")
        scorer = record.anchors.get("sklearn_scorer")
        if scorer:
            names[scorer] = loss
        elif anchor and anchor.isidentifier():
            if record.greater_is_better:
                names[anchor.removesuffix("_score")] = loss
            else:
                names[f"neg_{anchor}"] = loss
    return names


def _own_name(loss: str) -> str:
    """mseplug's scorer name of a loss: ``neg_<loss>``, or the plain name of a score."""
    return loss if mseplug.get_loss(loss).loss.greater_is_better else f"neg_{loss}"


def get_scorer_names() -> list[str]:
    """The names :func:`get_scorer` takes, sorted.

    Returns
    -------
    list of str
        scikit-learn's scorer names of the losses mseplug computes
        (``"neg_mean_squared_error"``, ``"neg_mean_gamma_deviance"``, ...: ``neg_`` and the
        ``sklearn.metrics`` function a loss's record names as its anchor) and mseplug's own
        ``neg_<loss>`` (``"neg_mse"``, ...), as :func:`scorers` names them.

    Examples
    --------
    >>> from mseplug.sklearn import get_scorer_names
    >>> {"neg_mean_squared_error", "neg_root_mean_squared_log_error", "neg_mse"} <= set(
    ...     get_scorer_names())
    True
    >>> "r2" in get_scorer_names()  # a score, greater is better: not negated
    True
    >>> {"neg_median_absolute_error", "d2_absolute_error_score"} <= set(get_scorer_names())
    True
    """
    return sorted({*_sklearn_names(), *(_own_name(loss) for loss in mseplug.losses())})


def get_scorer(name: str, **options: Any) -> Scorer:
    """A new scorer by name, as ``sklearn.metrics.get_scorer``: scikit-learn's names or mseplug's.

    ``get_scorer("neg_mean_squared_error")`` scores as scikit-learn's
    ``scoring="neg_mean_squared_error"`` does (the same values to rounding, negated
    likewise), computed by mseplug on any backend, with ``nan_policy`` and the other options.

    Parameters
    ----------
    name : str
        One of :func:`get_scorer_names`: scikit-learn's regression scorer name of a loss
        mseplug computes (``"neg_mean_absolute_percentage_error"``, ``"r2"``, ...), or
        ``"neg_"`` and a registered loss's name (``"neg_huber"``), or a score's own name
        (``"r2"``, ``"explained_variance"``: greater is better, not negated).
    **options
        As for :func:`make_scorer`: ``multioutput``, ``nan_policy``, ``backend`` and the
        loss's parameters.

    Returns
    -------
    Scorer
        A new scorer returning ``-loss`` (a score as it is), as :func:`make_scorer` makes.

    Raises
    ------
    ValueError
        For an unknown name (every scikit-learn regression scorer name is known).
    TypeError
        If ``name`` is not a string, or an option is unknown.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyRegressor
    >>> from sklearn.metrics import get_scorer as sklearn_get_scorer
    >>> from mseplug.sklearn import get_scorer
    >>> X, y = np.zeros((4, 1)), np.array([1.0, 2.0, 4.0, 8.0])
    >>> model = DummyRegressor().fit(X, y)
    >>> ours = get_scorer("neg_mean_squared_log_error")(model, X, y)
    >>> theirs = sklearn_get_scorer("neg_mean_squared_log_error")(model, X, y)
    >>> bool(np.isclose(ours, theirs, rtol=1e-12))
    True
    >>> median = get_scorer("neg_median_absolute_error")(model, X, y)
    >>> median == sklearn_get_scorer("neg_median_absolute_error")(model, X, y)
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"a scorer name must be a string; got {type(name).__name__}")
    loss = _sklearn_names().get(name)
    if loss is None:
        loss = {_own_name(known): known for known in mseplug.losses()}.get(name)
    if loss is None:
        raise ValueError(f"{name!r} is not a scorer of mseplug; choose from "
                         f"{', '.join(get_scorer_names())}")
    return make_scorer(loss, **options)


@overload
def loss_from_score(score: float) -> float: ...
@overload
def loss_from_score(score: ArrayLike) -> NDArray[np.float64]: ...
def loss_from_score(score: Any) -> Any:
    """Turn a negated score back into the loss (undo scikit-learn's ``neg_`` sign).

    Parameters
    ----------
    score : float or array_like
        What a scorer, ``cross_val_score`` or a search's ``best_score_`` reports.

    Returns
    -------
    float or ndarray
        ``-score``: a float for a number, a float64 array otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from mseplug.sklearn import loss_from_score
    >>> loss_from_score(-0.25)
    0.25
    >>> loss_from_score(np.array([-1.0, -0.5]))
    array([1. , 0.5])
    """
    if isinstance(score, numbers.Real):
        return -float(score)
    return -np.asarray(score, dtype=np.float64)


def __getattr__(name: str) -> Scorer:
    """Create ``<loss>_scorer`` (``mse_scorer``, ..., for every registered loss) on first use."""
    loss = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else ""
    if loss not in mseplug.losses():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    scorer: Scorer = globals().setdefault(name, make_scorer(loss))
    return scorer


def __dir__() -> list[str]:
    return sorted(set(globals()) | {f"{loss}{_SUFFIX}" for loss in mseplug.losses()})
