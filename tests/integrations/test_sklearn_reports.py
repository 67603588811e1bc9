"""What a scorer says about itself: its repr, a NaN score's warning, the Array API note."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, RegressorMixin  # noqa: E402
from sklearn.metrics import make_scorer as sklearn_make_scorer  # noqa: E402
from sklearn.metrics import mean_squared_error  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402

import mseplug.sklearn as msk  # noqa: E402


class NaNRegressor(RegressorMixin, BaseEstimator):
    """Predicts 0, except NaN for the first sample of every fold."""

    def fit(self, X, y):  # type: ignore[no-untyped-def]
        return self

    def predict(self, X):  # type: ignore[no-untyped-def]
        prediction = np.zeros(len(X))
        prediction[0] = np.nan
        return prediction


def scores_and_warnings(scoring):  # type: ignore[no-untyped-def]
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        scores = cross_val_score(NaNRegressor(), X, y, cv=2, scoring=scoring)
    return scores, [w for w in seen if issubclass(w.category, UserWarning)]


def test_a_nan_score_warns_as_scikit_learns_own_scorer_does() -> None:
    theirs, their_warnings = scores_and_warnings("neg_mean_squared_error")
    ours, our_warnings = scores_and_warnings(msk.mse_scorer)
    assert np.isnan(theirs).all() and np.isnan(ours).all()
    assert len(their_warnings) == len(our_warnings) == 2  # one per fold, both UserWarnings
    message = str(our_warnings[0].message)
    assert "y_pred contains NaN" in message and "nan_policy='omit'" in message
    omitted, quiet = scores_and_warnings(msk.make_scorer("mse", nan_policy="omit"))
    assert np.isfinite(omitted).all() and not quiet


def test_repr_reads_like_scikit_learns() -> None:
    assert repr(msk.mse_scorer) == repr(
        sklearn_make_scorer(mean_squared_error, greater_is_better=False)
    ).replace("mean_squared_error", "mse")
    assert repr(msk.make_scorer("huber", delta=0.5)).startswith(
        "make_scorer(huber, greater_is_better=False")
    assert "delta=0.5" in repr(msk.make_scorer("huber", delta=0.5))
    assert repr(pickle.loads(pickle.dumps(msk.mse_scorer))) == repr(msk.mse_scorer)


def test_array_api_mode_needs_scipy_array_api_documented() -> None:
    assert "SCIPY_ARRAY_API=1" in (msk.__doc__ or "")
