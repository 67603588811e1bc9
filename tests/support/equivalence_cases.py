"""Random cases of the cross-backend equivalence test, and their check against the float64
reference (``support/reference.py``): shared by ``tests/engine/test_equivalence.py`` and the
anchors' tests (which break a backend on purpose and check that the check notices)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from libraries import Lib, installed_backends
from loss_table import NAMES, in_domain
from reference import loss_grad, loss_value

import mseplug

EXAMPLES = int(os.environ.get("MSEPLUG_HYPOTHESIS_EXAMPLES", "300"))

#: (value rtol, gradient rtol relative to the largest gradient entry), by dtype.
TOLERANCE = {
    "float64": (1e-10, 1e-10),
    "float32": (2e-5, 2e-5),
    "float16": (4e-3, 4e-3),
    "bfloat16": (2e-2, 2e-2),
}
#: Which dtypes each library has.
DTYPES = {
    "numpy": ("float16", "float32", "float64"),
    "torch": ("float16", "bfloat16", "float32", "float64"),
    "jax": ("float16", "bfloat16", "float32", "float64"),
    "array_api_strict": ("float32", "float64"),
}
LIBS = {name: Lib(name) for name in installed_backends()}
#: Dtypes that at least one backend under test has.
AVAILABLE_DTYPES = [d for d in TOLERANCE if any(d in DTYPES[name] for name in LIBS)]


def scale_range(dtype: str) -> dict[str, float]:
    """Magnitudes per dtype: squares stay normal, and sums of ≈100 of them finite."""
    if dtype == "bfloat16":
        tiny, huge = 1.2e-38, 3.4e38
    else:
        info = np.finfo(dtype)
        tiny, huge = float(info.tiny), float(info.max)
    # XLA flushes subnormals to zero (documented in docs/conventions.md): keep squares normal.
    lift = 16.0 if dtype == "float16" else 1e6
    return {"unit": 1.0, "tiny": float(np.sqrt(tiny)) * lift, "huge": float(np.sqrt(huge)) / 1e3}


@dataclass
class Case:
    loss: str
    dtype: str
    y_true: np.ndarray
    y_pred: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)
    nonfinite: bool = False

    def scalar(self) -> bool:
        """Whether the loss is a 0-d value, so it has a gradient."""
        raw = isinstance(self.options.get("multioutput"), str)
        return self.options.get("reduction", "mean") != "none" and (
            not raw or self.y_pred.ndim <= 1
        )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    loss = draw(st.sampled_from(NAMES))
    record = mseplug.get_loss(loss).loss
    spec = record.statistics  # statistics of its own: what the record takes (refusal)
    one_output = spec is not None and not spec.multioutput
    dtype = draw(st.sampled_from(AVAILABLE_DTYPES))
    n = draw(st.integers(1, 12))
    shape = draw(st.sampled_from([(), (n,), (n, 1)] if one_output else
                                 [(), (n,), (n, 1), (n, 3), (n, 2, 2)]))
    magnitude = scale_range(dtype)[draw(st.sampled_from(["unit", "unit", "tiny", "huge"]))]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=shape) * magnitude
    residual = rng.normal(size=shape) * magnitude
    ties = draw(st.sampled_from(["none", "some", "all"]))
    if ties != "none":  # exact zero residuals: the MAE and RMSE gradient conventions
        residual = np.where(rng.random(shape) < (0.5 if ties == "some" else 1.0), 0.0, residual)
    y_pred = y_true + residual
    y_true, y_pred = in_domain(loss, y_true, y_pred)  # the same map for both: ties stay
    options: dict[str, Any] = {}
    n_samples = shape[0] if shape else 1
    outputs = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if draw(st.booleans()) and (spec is None or spec.sample_weight):
        weights = rng.uniform(0, 2, size=n_samples)
        weights[rng.integers(n_samples)] = 1.0  # a positive sum
        options["sample_weight"] = weights if shape else weights.reshape(())
    multioutput = draw(st.sampled_from(["uniform_average"] if one_output else
                                       ["uniform_average", "raw_values", "weights"]))
    if multioutput == "weights":
        options["multioutput"] = rng.uniform(0.1, 1.0, size=outputs)
    elif multioutput == "raw_values":
        options["multioutput"] = "raw_values"
    reductions = ["mean"] if record.root or spec is not None else ["mean", "sum", "none"]
    reduction = draw(st.sampled_from(reductions))
    if reduction != "mean":
        options["reduction"] = reduction
        if reduction == "none" and multioutput == "weights":
            del options["multioutput"]
    nan_policy = draw(st.sampled_from(["propagate", "omit"]))
    nonfinite = draw(st.sampled_from([False, False, False, True]))
    if nonfinite or nan_policy == "omit":
        flat_t, flat_p = y_true.reshape(-1), y_pred.reshape(-1)
        flat_t[rng.integers(flat_t.size)] = np.nan
        if flat_p.size > 1 and nonfinite:
            # -inf lies outside a domain bounded below (a ValueError there, tested elsewhere)
            specials = [np.nan, np.inf] if record.domain is not None else [np.nan, np.inf, -np.inf]
            flat_p[rng.integers(flat_p.size)] = draw(st.sampled_from(specials))
        nonfinite = True
    if nan_policy == "omit":
        options["nan_policy"] = "omit"
    for name, spec in record.params.items():
        if np.isfinite(spec.low) and np.isfinite(spec.high):  # a level, such as pinball's alpha
            share = draw(st.sampled_from([0.1, 0.5, 0.9]))
            options[name] = spec.low + share * (spec.high - spec.low)
        else:  # a scale, such as Huber's delta: in the data's units
            options[name] = float(draw(st.sampled_from([0.5, 1.0, 2.0]))) * spec.default * magnitude
    return Case(loss, dtype, y_true, y_pred, options, nonfinite)


def _convert(lib: Lib, case: Case) -> tuple[Any, Any, dict[str, Any]]:
    options = dict(case.options)
    if "sample_weight" in options:
        options["sample_weight"] = lib.asarray(options["sample_weight"], "float64")
    return lib.asarray(case.y_true, case.dtype), lib.asarray(case.y_pred, case.dtype), options


LARGEST = {"float16": 65504.0, "bfloat16": 3.3895e38, "float32": 3.4028235e38, "float64": np.inf}


def _close(got: np.ndarray, expected: np.ndarray, rtol: float, what: str, dtype: str,
           *, exact_nonfinite: bool = True) -> None:
    """Finite entries within ``rtol`` (relative to the largest); NaN and ±inf where expected.

    Gradients at infinite inputs are only promised to be non-finite
    (``exact_nonfinite=False``): inf·0 may be NaN on one backend and inf on another.
    """
    expected = np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        # A result beyond the dtype's range is inf, as IEEE rounding says.
        expected = np.where(np.abs(expected) > LARGEST[dtype], np.sign(expected) * np.inf, expected)
    got = np.asarray(got, np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} vs {expected.shape}"
    finite = np.isfinite(expected)
    if exact_nonfinite:
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"{what}: NaN")
        np.testing.assert_array_equal(got[np.isinf(expected)], expected[np.isinf(expected)],
                                      err_msg=f"{what}: inf")
    else:
        np.testing.assert_array_equal(np.isfinite(got), finite, err_msg=f"{what}: non-finite")
    if finite.any():
        scale = float(np.max(np.abs(expected[finite])))
        np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=rtol * scale,
                                   err_msg=what)


def check_case(case: Case) -> int:
    """Compare every backend with the reference; returns how many backends ran."""
    ran = 0
    loss = getattr(mseplug, case.loss)
    value_rtol, grad_rtol = TOLERANCE[case.dtype]
    for name, lib in LIBS.items():
        if case.dtype not in DTYPES[name]:
            continue
        y_true, y_pred, options = _convert(lib, case)
        t64, p64 = lib.to_numpy(y_true), lib.to_numpy(y_pred)  # the rounded inputs
        with np.errstate(all="ignore"):
            expected = loss_value(case.loss, t64, p64, **options_for_reference(options, lib))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # inputs with inf/NaN
            got = loss(y_true, y_pred, **options)
        assert str(got.dtype).endswith(case.dtype), f"{name}: dtype {got.dtype}"
        _close(lib.to_numpy(got), expected, value_rtol, f"{name} {case.loss} value",
               case.dtype)
        if case.scalar() and not (case.nonfinite and options.get("nan_policy") != "omit"):
            gradient = mseplug.grad(case.loss, y_true, y_pred, **options)
            assert tuple(gradient.shape) == tuple(y_pred.shape)
            with np.errstate(all="ignore"):
                expected_grad = loss_grad(case.loss, t64, p64,
                                          **options_for_reference(options, lib))
            _close(lib.to_numpy(gradient), expected_grad, grad_rtol, f"{name} {case.loss} grad",
                   case.dtype, exact_nonfinite=not case.nonfinite)
        ran += 1
    return ran


def options_for_reference(options: dict[str, Any], lib: Lib) -> dict[str, Any]:
    out = dict(options)
    if "sample_weight" in out:
        out["sample_weight"] = lib.to_numpy(out["sample_weight"])
    return out
