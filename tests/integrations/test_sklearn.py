"""mseplug.sklearn: the scorers agree with scikit-learn's own, fold by fold, wherever they go."""

from __future__ import annotations

import doctest
import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from loss_table import NAMES, refusal  # noqa: E402
from reference import loss_value  # noqa: E402
from scipy.stats import loguniform  # noqa: E402  (scipy comes with scikit-learn)
from sklearn.dummy import DummyRegressor  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    check_scoring,
    get_scorer,
    mean_absolute_error,
    mean_pinball_loss,
    mean_poisson_deviance,
    mean_squared_error,
    mean_squared_log_error,
    root_mean_squared_error,
)
from sklearn.metrics import make_scorer as sklearn_make_scorer  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    GridSearchCV,
    KFold,
    RandomizedSearchCV,
    cross_val_score,
    cross_validate,
)
from sklearn.multioutput import MultiOutputRegressor  # noqa: E402

import mseplug  # noqa: E402
import mseplug.sklearn as msk  # noqa: E402

#: The losses these tests judge as negated scores with weights and several outputs; scores
#: (greater is better: r2, explained_variance) and max_error (no weights, one output) are judged
#: by test_scores_are_reported_as_scikit_learn_reports_them, from their records' properties.
LOSSES = tuple(name for name in NAMES if not mseplug.get_loss(name).loss.greater_is_better
               and not refusal(name, weighted=True, outputs=3))
SKLEARN_NAME = {
    "mse": "neg_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "rmse": "neg_root_mean_squared_error",
}
#: scikit-learn's own functions, the anchors of the losses it defines.
SKLEARN_METRIC = {"mse": mean_squared_error, "mae": mean_absolute_error,
                  "rmse": root_mean_squared_error, "pinball": mean_pinball_loss,
                  "msle": mean_squared_log_error, "poisson_deviance": mean_poisson_deviance}
#: Targets are shifted this far above zero, so truth and every model's predictions lie in
#: every loss's domain (msle: > -1; the Poisson deviance: targets >= 0, predictions > 0).
OFFSET = 40.0
CV = KFold(5, shuffle=True, random_state=0)


def reference(loss, y_true, y_pred, **options):
    """scikit-learn's value where it defines the loss, else the suite's float64 reference."""
    if loss == "poisson_deviance" and np.ndim(y_true) == 2 and not options:
        # scikit-learn's deviances take one output; mseplug's average the outputs' deviances.
        return float(np.mean([mean_poisson_deviance(t, p) for t, p in zip(y_true.T, y_pred.T)]))
    if loss in SKLEARN_METRIC:
        return float(SKLEARN_METRIC[loss](y_true, y_pred, **options))
    return float(loss_value(loss, y_true, y_pred, **options))


def expected_scores(out, X, y, loss, **options):
    """-loss of each fold, from cross_validate(..., return_estimator=True, return_indices=True)."""
    folds = zip(out["estimator"], out["indices"]["test"], strict=True)
    return [-reference(loss, y[test], est.predict(X[test]), **options) for est, test in folds]


def make_data(n=120, n_outputs=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    shape = (4,) if n_outputs is None else (4, n_outputs)
    noise = 1.5 * rng.standard_t(3, size=(n,) if n_outputs is None else (n, n_outputs))
    y = OFFSET + X @ rng.normal(size=shape) + noise  # heavy tails: Huber differs from MSE/2
    assert y.min() > 0, "the targets must lie in every loss's domain"
    return X, y, rng.uniform(0.1, 3.0, size=n)


@pytest.fixture(autouse=True)
def sklearn_defaults():
    """Every test starts with routing and Array API dispatch off, and leaves them so."""
    with sklearn.config_context(enable_metadata_routing=False, array_api_dispatch=False):
        yield


@pytest.fixture
def data():
    return make_data()


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse"])
def test_cross_val_score_matches_sklearn_fold_by_fold(loss, data):
    X, y, _ = data
    ours = cross_val_score(Ridge(), X, y, cv=CV, scoring=getattr(msk, f"{loss}_scorer"))
    theirs = cross_val_score(Ridge(), X, y, cv=CV, scoring=SKLEARN_NAME[loss])
    assert ours.shape == (5,) and np.all(ours < 0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize("delta", [1.0, 0.3])
def test_huber_cross_validate_matches_numpy_reference(delta, data):
    X, y, _ = data
    scorer = msk.huber_scorer if delta == 1.0 else msk.make_scorer("huber", delta=delta)
    out = cross_validate(Ridge(), X, y, cv=CV, scoring=scorer,
                         return_estimator=True, return_indices=True)
    expected = expected_scores(out, X, y, "huber", delta=delta)
    np.testing.assert_allclose(out["test_score"], expected, rtol=1e-12, atol=0)
    if delta != 1.0:  # delta really reaches the loss
        default = cross_val_score(Ridge(), X, y, cv=CV, scoring=msk.huber_scorer)
        assert np.all(np.abs(default - out["test_score"]) > 1e-3)


def test_cross_validate_with_scorers_dict(data):
    X, y, _ = data
    out = cross_validate(Ridge(), X, y, cv=CV, scoring=msk.scorers(),
                         return_estimator=True, return_indices=True)
    assert {f"test_neg_{loss}" for loss in LOSSES} <= set(out)
    for loss in LOSSES:
        expected = expected_scores(out, X, y, loss)
        np.testing.assert_allclose(out[f"test_neg_{loss}"], expected, rtol=1e-12, atol=0)


def test_grid_search_n_jobs_2_picks_sklearns_parameters():
    X, y, _ = make_data(n=80, seed=3)
    grid = {"alpha": [1e-3, 0.1, 3.0, 30.0, 300.0], "fit_intercept": [True, False]}
    ours = GridSearchCV(Ridge(), grid, cv=CV, scoring=msk.mse_scorer, n_jobs=2).fit(X, y)
    theirs = GridSearchCV(Ridge(), grid, cv=CV, scoring="neg_mean_squared_error",
                          n_jobs=2).fit(X, y)
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_index_ == theirs.best_index_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], rtol=1e-12, atol=0)
    assert isinstance(ours.best_score_, float) and ours.best_score_ < 0


def test_randomized_search_multimetric_refit(data):
    X, y, _ = data
    scoring = {**msk.scorers(), "sklearn_mse": "neg_mean_squared_error"}
    search = RandomizedSearchCV(Ridge(), {"alpha": loguniform(1e-3, 1e3)}, n_iter=6,
                                cv=CV, scoring=scoring, refit="neg_mse", random_state=0)
    search.fit(X, y)
    res = search.cv_results_
    np.testing.assert_allclose(res["mean_test_neg_mse"], res["mean_test_sklearn_mse"],
                               rtol=1e-12, atol=0)
    assert search.best_index_ == int(np.argmax(res["mean_test_sklearn_mse"]))
    assert msk.loss_from_score(search.best_score_) == pytest.approx(
        -np.max(res["mean_test_sklearn_mse"]), rel=1e-12)


def scorer_cases():
    return [
        ("mse_scorer", lambda: msk.mse_scorer, "mse", {}),
        ("mae_scorer", lambda: msk.mae_scorer, "mae", {}),
        ("rmse_scorer", lambda: msk.rmse_scorer, "rmse", {}),
        ("huber_scorer", lambda: msk.huber_scorer, "huber", {}),
        *[(f"scorers()[neg_{loss}]", lambda loss=loss: msk.scorers()[f"neg_{loss}"], loss, {})
          for loss in LOSSES],
        ("huber delta=0.25", lambda: msk.make_scorer("huber", delta=0.25), "huber",
         {"delta": 0.25}),
        ("make_scorer(mseplug.mae)", lambda: msk.make_scorer(mseplug.mae), "mae", {}),
    ]


@pytest.mark.parametrize("get, loss, options", [case[1:] for case in scorer_cases()],
                         ids=[case[0] for case in scorer_cases()])
def test_scorer_returns_negated_python_float_and_pickles(get, loss, options, data):
    X, y, w = data
    scorer = get()
    model = Ridge().fit(X, y)
    value = scorer(model, X, y)
    assert type(value) is float and value < 0
    assert value == pytest.approx(-reference(loss, y, model.predict(X), **options), rel=1e-12)
    clone = pickle.loads(pickle.dumps(scorer))
    assert repr(clone) == repr(scorer)
    assert clone(model, X, y) == value
    weighted = clone(model, X, y, sample_weight=w)
    assert weighted == scorer(model, X, y, sample_weight=w) and weighted != value


@pytest.mark.parametrize("loss", LOSSES)
def test_sample_weight_direct_call_routing_off(loss, data):
    X, y, w = data
    model = Ridge().fit(X, y)
    scorer = getattr(msk, f"{loss}_scorer")
    weighted = scorer(model, X, y, sample_weight=w)
    pred = model.predict(X)
    assert weighted == pytest.approx(-reference(loss, y, pred, sample_weight=w), rel=1e-12)
    assert abs(weighted - scorer(model, X, y)) > 1e-6
    # The multi-metric path (cross_validate with a dict) hands weights to every scorer.
    weighted_scorers = {key: scorer for key, scorer in msk.scorers().items()
                        if key.removeprefix("neg_") in LOSSES}  # max_error takes no weights
    multi = check_scoring(model, scoring=weighted_scorers)(model, X, y, sample_weight=w)
    assert multi[f"neg_{loss}"] == weighted


def test_cross_val_score_weights_routing_off_fit_only_like_sklearn(data):
    # Without routing, scikit-learn sends fit params to fit only: scores stay unweighted.
    X, y, w = data
    params = {"sample_weight": w}
    ours = cross_val_score(Ridge(), X, y, cv=CV, scoring=msk.mse_scorer, params=params)
    theirs = cross_val_score(Ridge(), X, y, cv=CV, scoring="neg_mean_squared_error",
                             params=params)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse"])
def test_sample_weight_routed_with_metadata_routing(loss, data):
    X, y, w = data
    with sklearn.config_context(enable_metadata_routing=True):
        est = Ridge().set_fit_request(sample_weight=True)
        params = {"sample_weight": w}
        ours = cross_val_score(est, X, y, cv=CV, params=params,
                               scoring=getattr(msk, f"{loss}_scorer"))
        theirs = cross_val_score(est, X, y, cv=CV, params=params,
                                 scoring=get_scorer(SKLEARN_NAME[loss]).set_score_request(
                                     sample_weight=True))
        unweighted = cross_val_score(est, X, y, cv=CV, params=params,
                                     scoring=get_scorer(SKLEARN_NAME[loss]).set_score_request(
                                         sample_weight=False))
        opted_out = cross_val_score(est, X, y, cv=CV, params=params,
                                    scoring=msk.make_scorer(loss).set_score_request(
                                        sample_weight=False))
        no_weights = cross_val_score(Ridge(), X, y, cv=CV, scoring=msk.make_scorer(loss))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert np.all(np.abs(ours - unweighted) > 1e-9)
    np.testing.assert_allclose(opted_out, unweighted, rtol=1e-12, atol=0)
    np.testing.assert_allclose(no_weights, cross_val_score(Ridge(), X, y, cv=CV,
                                                           scoring=SKLEARN_NAME[loss]),
                               rtol=1e-12, atol=0)


def test_grid_search_routing_weights_n_jobs_2(data):
    X, y, w = data
    grid = {"alpha": [1e-2, 1.0, 100.0]}
    with sklearn.config_context(enable_metadata_routing=True):
        est = Ridge().set_fit_request(sample_weight=True)
        sk_scorer = get_scorer("neg_mean_squared_error").set_score_request(sample_weight=True)
        ours = GridSearchCV(est, grid, cv=CV, scoring=msk.mse_scorer, n_jobs=2)
        theirs = GridSearchCV(est, grid, cv=CV, scoring=sk_scorer, n_jobs=2)
        ours.fit(X, y, sample_weight=w)
        theirs.fit(X, y, sample_weight=w)
    assert ours.best_params_ == theirs.best_params_
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"],
                               theirs.cv_results_["mean_test_score"], rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("wrap", [False, True], ids=["Ridge", "MultiOutputRegressor"])
def test_multi_output_regressor(loss, wrap):
    X, Y, _ = make_data(n_outputs=3, seed=1)
    est = MultiOutputRegressor(Ridge()) if wrap else Ridge()
    out = cross_validate(est, X, Y, cv=CV, scoring=getattr(msk, f"{loss}_scorer"),
                         return_estimator=True, return_indices=True)
    expected = expected_scores(out, X, Y, loss)
    np.testing.assert_allclose(out["test_score"], expected, rtol=1e-12, atol=0)
    if loss in SKLEARN_NAME:
        theirs = cross_val_score(est, X, Y, cv=CV, scoring=SKLEARN_NAME[loss])
        np.testing.assert_allclose(out["test_score"], theirs, rtol=1e-12, atol=0)


@pytest.mark.parametrize("loss", ["mse", "mae", "rmse"])
def test_multioutput_weights_pass_through(loss):
    X, Y, _ = make_data(n_outputs=3, seed=2)
    weights = [0.2, 0.0, 1.5]
    ours = cross_val_score(Ridge(), X, Y, cv=CV,
                           scoring=msk.make_scorer(loss, multioutput=weights))
    theirs = cross_val_score(Ridge(), X, Y, cv=CV, scoring=sklearn_make_scorer(
        SKLEARN_METRIC[loss], greater_is_better=False, multioutput=weights))
    uniform = cross_val_score(Ridge(), X, Y, cv=CV, scoring=SKLEARN_NAME[loss])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert np.all(np.abs(ours - uniform) > 1e-6)


def test_pandas_inputs():
    pd = pytest.importorskip("pandas")
    X, Y, _ = make_data(n_outputs=2, seed=4)
    X = pd.DataFrame(X, columns=list("abcd"))
    for y in (pd.Series(Y[:, 0], name="target"), pd.DataFrame(Y, columns=["u", "v"])):
        for loss in ("mse", "rmse"):
            ours = cross_val_score(Ridge(), X, y, cv=CV, scoring=getattr(msk, f"{loss}_scorer"))
            theirs = cross_val_score(Ridge(), X, y, cv=CV, scoring=SKLEARN_NAME[loss])
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_nan_policy_pass_through():
    X, y, _ = make_data(n=30)
    model = DummyRegressor().fit(X, y)
    y_nan = y.copy()
    y_nan[[3, 17]] = np.nan
    with pytest.warns(UserWarning, match="gave NaN"):  # the scorer says why and how to fix it
        assert np.isnan(msk.mse_scorer(model, X, y_nan))
    omitted = msk.make_scorer("mse", nan_policy="omit")(model, X, y_nan)
    keep = ~np.isnan(y_nan)
    assert omitted == pytest.approx(-mean_squared_error(y[keep], model.predict(X)[keep]),
                                    rel=1e-12)


def test_scorers_are_fresh_and_module_scorers_cached():
    first, second = msk.scorers(), msk.scorers()
    assert list(first) == [("" if mseplug.get_loss(name).loss.greater_is_better else "neg_") + name
                           for name in mseplug.losses()]
    assert list(first)[:4] == ["neg_mse", "neg_mae", "neg_rmse", "neg_huber"]
    assert all(first[key] is not second[key] for key in first)
    assert msk.mse_scorer is msk.mse_scorer
    assert {"mse_scorer", "huber_scorer"} <= set(dir(msk))
    with pytest.raises(AttributeError, match="no_such_scorer"):
        msk.no_such_scorer  # noqa: B018


def test_loss_from_score(data):
    X, y, _ = data
    assert msk.loss_from_score(-0.25) == 0.25 and type(msk.loss_from_score(-0.25)) is float
    scores = cross_val_score(Ridge(), X, y, cv=CV, scoring=msk.mse_scorer)
    losses = msk.loss_from_score(scores)
    assert isinstance(losses, np.ndarray) and np.all(losses > 0)
    np.testing.assert_array_equal(losses, -scores)


@pytest.mark.parametrize(
    "loss, options, error, match",
    [
        ("mean_squared_error", {}, ValueError, "loss"),
        (3, {}, TypeError, "loss"),
        (None, {}, TypeError, "loss"),
        (len, {}, ValueError, "loss"),
        ("mse", {"delta": 2.0}, TypeError, "delta"),
        ("mse", {"sample_weight": [1.0]}, TypeError, "sample_weight"),
        ("mse", {"reduction": "sum"}, TypeError, "reduction"),
        ("mse", {"multioutput": "raw_values"}, ValueError, "raw_values"),
        ("mse", {"nan_policy": "drop"}, ValueError, "nan_policy"),
        ("huber", {"delta": -1.0}, ValueError, "delta"),
    ],
)
def test_make_scorer_rejects_bad_arguments(loss, options, error, match):
    with pytest.raises(error, match=match):
        msk.make_scorer(loss, **options)


def run_python(code, **env):
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), **env}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=environment, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_is_lazy():
    out = run_python("""
        import sys
        import mseplug
        assert "sklearn" not in sys.modules, "import mseplug imported sklearn"
        import mseplug.sklearn
        mseplug.sklearn.loss_from_score(-1.0)
        assert "sklearn" not in sys.modules, "import mseplug.sklearn imported sklearn"
        mseplug.sklearn.mse_scorer
        print("sklearn" in sys.modules)
    """)
    assert out.strip() == "True"


def test_array_api_dispatch_with_torch():
    pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    # scikit-learn's Array API mode needs SCIPY_ARRAY_API=1 before scipy is imported,
    # hence a fresh interpreter.
    out = run_python("""
        import json, warnings
        import numpy as np, sklearn, torch
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import KFold, cross_val_score
        from mseplug.sklearn import mse_scorer, rmse_scorer
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        X = torch.asarray(rng.normal(size=(60, 3)))
        Y = X @ torch.asarray(rng.normal(size=(3, 2))) + torch.asarray(rng.normal(size=(60, 2)))
        w = torch.asarray(rng.uniform(0.5, 2.0, size=60))
        out = {}
        with sklearn.config_context(array_api_dispatch=True):
            model = Ridge(solver="svd").fit(X, Y[:, 0])
            pred = model.predict(X)
            out["predict_is_tensor"] = isinstance(pred, torch.Tensor)
            value = mse_scorer(model, X, Y[:, 0], sample_weight=w)
            out["type"] = type(value).__name__
            out["value"] = value
            out["reference"] = -float((w * (pred - Y[:, 0]) ** 2).sum() / w.sum())
            for name, ours, theirs, y in [
                ("mse", mse_scorer, "neg_mean_squared_error", Y[:, 0]),
                ("rmse_2d", rmse_scorer, "neg_root_mean_squared_error", Y),
            ]:
                out[name] = [cross_val_score(Ridge(solver="svd"), X, y, cv=KFold(3),
                                             scoring=s).tolist() for s in (ours, theirs)]
        print(json.dumps(out))
    """, SCIPY_ARRAY_API="1")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["predict_is_tensor"] and result["type"] == "float"
    assert result["value"] == pytest.approx(result["reference"], rel=1e-12)
    for name in ("mse", "rmse_2d"):
        ours, theirs = result[name]
        assert all(score < 0 for score in ours)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_docstring_examples_run():
    result = doctest.testmod(msk, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10
    assert result.failed == 0


# -- scikit-learn's scorer names ------------------------------------------------------------------
def sklearn_regression_scorer_names() -> set[str]:
    """Every scorer name of the installed scikit-learn whose metric is a regression metric."""
    from sklearn.metrics import get_scorer_names

    return {name for name in get_scorer_names()
            if getattr(getattr(get_scorer(name), "_score_func", None), "__module__", "")
            == "sklearn.metrics._regression"}


#: scikit-learn's regression scorer names, every one of which mseplug computes.
IMPLEMENTED = ["d2_absolute_error_score", "explained_variance", "neg_max_error",
               "neg_mean_absolute_error", "neg_mean_absolute_percentage_error",
               "neg_mean_gamma_deviance", "neg_mean_poisson_deviance", "neg_mean_squared_error",
               "neg_mean_squared_log_error", "neg_median_absolute_error",
               "neg_root_mean_squared_error", "neg_root_mean_squared_log_error", "r2"]


def test_every_sklearn_regression_scorer_name_is_implemented() -> None:
    """Each of scikit-learn's regression scorer names is one get_scorer takes; a new
    scikit-learn name fails here until mseplug computes it."""
    names = sklearn_regression_scorer_names()
    assert sorted(names) == IMPLEMENTED
    assert names <= set(msk.get_scorer_names())
    assert not hasattr(msk, "NOT_YET") and "NOT_YET" not in msk.__all__


@pytest.mark.parametrize("name", IMPLEMENTED)
@pytest.mark.parametrize("model", ["ridge", "dummy"])
def test_get_scorer_matches_sklearn_scoring_by_name(name, model, data) -> None:
    """cross_val_score with get_scorer(name) equals scoring=name, fold by fold (the targets, and
    so the predictions, are positive: inside every loss's domain)."""
    X, y, _ = data
    estimator = Ridge() if model == "ridge" else DummyRegressor(strategy="median")
    assert (estimator.fit(X, y).predict(X) > 0).all()
    ours = cross_val_score(estimator, X, y, cv=CV, scoring=msk.get_scorer(name))
    theirs = cross_val_score(estimator, X, y, cv=CV, scoring=name)
    if name.startswith("neg_"):
        assert np.all(ours < 0)  # a loss, negated
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_get_scorer_takes_mseplug_names_and_options(data) -> None:
    X, y, _ = data
    own = {loss if mseplug.get_loss(loss).loss.greater_is_better else f"neg_{loss}"
           for loss in mseplug.losses()}
    assert set(msk.scorers()) == own and {"r2", "explained_variance", "neg_max_error"} <= own
    assert own <= set(msk.get_scorer_names())
    model = Ridge().fit(X, y)
    for loss in ("rmsle", "mape", "gamma_deviance", "tweedie_deviance"):
        assert msk.get_scorer(f"neg_{loss}")(model, X, y) == pytest.approx(
            -loss_value(loss, y, model.predict(X)), rel=1e-12)
    assert msk.get_scorer("neg_tweedie_deviance", power=1.5)(model, X, y) == pytest.approx(
        -loss_value("tweedie_deviance", y, model.predict(X), power=1.5), rel=1e-12)
    assert msk.get_scorer("neg_mean_squared_error")(model, X, y) == msk.mse_scorer(model, X, y)


@pytest.mark.parametrize(("name", "function", "sign"), [
    ("neg_median_absolute_error", "median_absolute_error", -1.0),
    ("d2_absolute_error_score", "d2_absolute_error_score", 1.0)])
def test_median_scorers_take_weights_and_outputs_as_sklearn(name, function, sign, data) -> None:
    """The two median scorers called with sample weights, and on two outputs with output
    weights, equal scikit-learn's functions (a median is computed in one call per fold)."""
    import sklearn.metrics as sklearn_metrics

    X, y, w = data
    model = Ridge().fit(X, y)
    expected = sign * getattr(sklearn_metrics, function)(y, model.predict(X), sample_weight=w)
    got = msk.get_scorer(name)(model, X, y, sample_weight=w)
    assert isinstance(got, float)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    Y = np.column_stack([y, y[::-1]])
    both = Ridge().fit(X, Y)
    expected = sign * getattr(sklearn_metrics, function)(Y, both.predict(X), sample_weight=w,
                                                         multioutput=[0.3, 0.7])
    got = msk.get_scorer(name, multioutput=[0.3, 0.7])(both, X, Y, sample_weight=w)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_get_scorer_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"'accuracy' is not a scorer of mseplug; choose from "
                                         r".*neg_mean_squared_error"):
        msk.get_scorer("accuracy")
    with pytest.raises(ValueError, match="'neg_nothing' is not a scorer"):
        msk.get_scorer("neg_nothing")
    with pytest.raises(TypeError, match="must be a string"):
        msk.get_scorer(3)
    with pytest.raises(ValueError, match="power"):
        msk.get_scorer("neg_tweedie_deviance", power=0.5)


def test_scores_are_reported_as_scikit_learn_reports_them(data):
    """r2 and explained_variance unnegated (greater is better), max_error negated, each equal to
    scikit-learn's own scorer, fold by fold."""
    X, y, _ = data
    for ours, theirs in (("r2", "r2"), ("explained_variance", "explained_variance"),
                         ("max_error", "neg_max_error")):
        assert ours in msk.scorers() or f"neg_{ours}" in msk.scorers()
        got = cross_val_score(Ridge(), X, y, cv=CV, scoring=getattr(msk, f"{ours}_scorer"))
        want = cross_val_score(Ridge(), X, y, cv=CV, scoring=theirs)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
