"""Random cases for the metamorphic suite (tests/test_invariants.py), and what it compares them with.

A :class:`Spec` is what hypothesis draws: a loss (from the registry) with its
parameters, a size, an output shape, a dtype, a data scale, weights at some
scale, output weights, NaNs and a seed. Its repr is the call that rebuilds it,
so a falsifying example printed by hypothesis can be pasted into a shell:
``Spec(...).build()`` gives the float64 NumPy arrays (holding values already
rounded to the spec's dtype) and the keywords of the one-shot call.

The helpers convert arrays to each library (``numpy``, ``torch``, ``jax``,
``array_api_strict``, ``dask``, ``matrix`` for ``np.matrix``, ``list``), read
results back as float64 NumPy, name dtypes across libraries, and compare
values (NaN and infinities at the same places, finite values to a relative
tolerance, or bit for bit).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from libraries import Lib, installed_backends

import mseplug

#: Every registered loss when the suite starts (built-ins and installed plugins).
NAMES: tuple[str, ...] = mseplug.losses()

HAS_DASK = importlib.util.find_spec("dask") is not None
#: The array libraries under test (the installed backends, and Dask through the Array API one).
LIBRARIES: tuple[str, ...] = installed_backends() + (("dask",) if HAS_DASK else ())
#: Libraries that hold float16 (the Array API standard, so array_api_strict, has none).
HALF_LIBRARIES = tuple(name for name in LIBRARIES if name != "array_api_strict")
#: Libraries that hold bfloat16.
BFLOAT_LIBRARIES = tuple(name for name in LIBRARIES if name in ("torch", "jax"))

FLOAT64_MAX = float(np.finfo(np.float64).max)


# -- libraries ----------------------------------------------------------------------------------
def round_to(x: Any, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` and held as float64 (bfloat16 through ml_dtypes)."""
    x = np.asarray(x, dtype=np.float64)
    if dtype == "bfloat16":
        import ml_dtypes

        with np.errstate(over="ignore"):
            return x.astype(ml_dtypes.bfloat16).astype(np.float64)
    with np.errstate(over="ignore"):
        return x.astype(dtype).astype(np.float64)


def to_library(x: Any, library: str, dtype: str = "float64", *, chunks: Any = None) -> Any:
    """``x`` (NumPy) as an array of ``library`` in ``dtype``."""
    x = np.asarray(x, dtype=np.float64)
    if library == "list":
        return x.tolist()
    if library == "matrix":
        with warnings.catch_warnings():  # NumPy's advice against np.matrix: it is the point here
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            return np.asmatrix(x.astype(dtype))
    if library == "dask":
        import dask.array as da

        return da.from_array(x.astype(dtype), chunks=chunks if chunks is not None else -1)
    if dtype == "bfloat16" and library == "numpy":
        raise ValueError("NumPy has no bfloat16")
    if library == "torch":
        import torch

        return torch.asarray(x).to(getattr(torch, dtype))
    return Lib(library).asarray(x, dtype)


def library_of(x: Any) -> str:
    """The library an array belongs to: numpy, matrix, torch, jax, array_api_strict, dask."""
    module = type(x).__module__.split(".")[0]
    if isinstance(x, np.matrix):
        return "matrix"
    if isinstance(x, np.ndarray) or isinstance(x, np.generic):
        return "numpy"
    return {"jaxlib": "jax"}.get(module, module)


def to_numpy(x: Any) -> np.ndarray:
    """Any result (any library, lazy or not) as a float64 NumPy array."""
    if isinstance(x, (tuple, list)):
        return np.asarray([to_numpy(item) for item in x])
    module = type(x).__module__.split(".")[0]
    if module == "dask":
        x = x.compute()
        module = type(x).__module__.split(".")[0]
    if module == "torch":
        return x.detach().cpu().to(dtype=__import__("torch").float64).numpy()
    if module == "array_api_strict":
        return np.asarray(x._array, dtype=np.float64)
    return np.asarray(np.asarray(x), dtype=np.float64)


def dtype_name(x: Any) -> str:
    """The dtype of an array as a bare name ('float32', 'bfloat16', ...), whatever its library."""
    if type(x).__module__.split(".")[0] == "dask":
        return str(x.dtype)
    name = str(x.dtype)
    return name.rsplit(".", 1)[-1]


def float_eps(dtype: str) -> float:
    """Machine epsilon of a float dtype (bfloat16: 2**-7)."""
    return 2.0**-7 if dtype == "bfloat16" else float(np.finfo(dtype).eps)


def smallest_subnormal(dtype: str) -> float:
    """The spacing of a float dtype's subnormal numbers (bfloat16: 2**-133)."""
    return 2.0**-133 if dtype == "bfloat16" else float(np.finfo(dtype).smallest_subnormal)


def largest(dtype: str) -> float:
    """The largest finite value of a float dtype (bfloat16: about 3.39e38)."""
    return float.fromhex("0x1.fep127") if dtype == "bfloat16" else float(np.finfo(dtype).max)


# -- comparing ------------------------------------------------------------------------------------
def relative_difference(got: Any, want: Any, atol: float = 0.0) -> float:
    """The largest relative difference of finite values beyond ``atol``; ``inf`` if NaN or
    infinities differ."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return math.inf
    if not np.array_equal(np.isnan(got), np.isnan(want)):
        return math.inf
    infinite = np.isinf(want) | np.isinf(got)
    if not np.array_equal(got[infinite], want[infinite]):
        return math.inf
    finite = ~(np.isnan(want) | infinite)
    if not finite.any():
        return 0.0
    g, w = got[finite], want[finite]
    scale = np.maximum(np.abs(w), np.finfo(np.float64).tiny)
    return float(np.max(np.maximum(np.abs(g - w) - atol, 0.0) / scale))


def assert_close(got: Any, want: Any, rtol: float, what: str, atol: float = 0.0) -> None:
    """``got`` equals ``want`` within ``rtol`` relative plus ``atol`` (NaN and infinities at the
    same places)."""
    got_array, want_array = to_numpy(got), np.asarray(want, dtype=np.float64)
    difference = relative_difference(got_array, want_array, atol)
    assert difference <= rtol, (
        f"{what}: got {got_array!r}, expected {want_array!r} "
        f"(relative difference {difference:.3g} > {rtol:.3g})"
    )


def assert_identical(got: Any, want: Any, what: str) -> None:
    """Bit for bit: the same shape, the same float64 values, NaN at the same places."""
    got_array, want_array = to_numpy(got), to_numpy(want)
    assert got_array.shape == want_array.shape and np.array_equal(
        got_array, want_array, equal_nan=True), (
        f"{what}: {got_array!r} is not bit-identical to {want_array!r} "
        f"(difference {got_array - want_array if got_array.shape == want_array.shape else 'shape'})"
    )


# -- the cases ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One call's inputs as float64 NumPy (values rounded to ``dtype``) and its keywords."""

    loss: str
    params: dict[str, float]
    y_true: np.ndarray
    y_pred: np.ndarray
    sample_weight: np.ndarray | None
    multioutput: Any
    nan_policy: str
    dtype: str
    outputs: tuple[int, ...]

    @property
    def root(self) -> bool:
        return bool(mseplug.get_loss(self.loss).loss.root)

    @property
    def k(self) -> int:
        return int(np.prod(self.outputs, dtype=np.int64))

    def keywords(self, **changes: Any) -> dict[str, Any]:
        """The keywords of the call: weights, multioutput, nan_policy and the loss's params."""
        keywords = {"sample_weight": self.sample_weight, "multioutput": self.multioutput,
                    "nan_policy": self.nan_policy, **self.params}
        keywords.update(changes)
        return keywords

    def one_shot(self, **changes: Any) -> np.ndarray:
        """The loss in one call on float64 NumPy (the property's other side), as float64."""
        keywords = self.keywords(**changes)
        return to_numpy(mseplug.get_loss(self.loss)(self.y_true, self.y_pred, **keywords))


@dataclass(frozen=True)
class Spec:
    """What hypothesis draws; ``build()`` makes the arrays (deterministic in ``seed``)."""

    loss: str
    params: dict[str, float] = field(default_factory=dict)
    n: int = 5
    outputs: tuple[int, ...] = ()
    dtype: str = "float64"
    magnitude: float = 1.0
    weight_scale: float | None = None  # None: no sample weights
    zero_weights: bool = False
    multioutput: str = "uniform_average"  # or "weights": output weights
    output_scale: float = 1.0
    nan_policy: str = "propagate"
    nans: bool = False
    exact_rows: bool = False  # zero residuals (and |r| == delta for a loss with a delta)
    seed: int = 0

    def build(self) -> Case:
        rng = np.random.default_rng(self.seed)
        shape = (self.n, *self.outputs)
        y_true = rng.normal(size=shape) * self.magnitude
        spread = np.exp(rng.uniform(-2.0, 1.0, size=shape))
        y_pred = y_true + rng.normal(size=shape) * self.magnitude * spread
        anchor = int(rng.integers(self.n))  # a row that always counts: no NaN, a positive weight
        if self.exact_rows:
            flat_t, flat_p = y_true.reshape(self.n, -1), y_pred.reshape(self.n, -1)
            chosen = rng.random(flat_t.shape) < 0.4
            flat_p[chosen] = flat_t[chosen]
            delta = self.params.get("delta")
            if delta is not None:
                kink = (rng.random(flat_t.shape) < 0.3) & ~chosen
                sign = rng.choice([-1.0, 1.0], size=flat_t.shape)
                flat_t[kink] = 0.0
                flat_p[kink] = sign[kink] * delta
        from loss_table import in_domain

        y_true, y_pred = in_domain(self.loss, y_true, y_pred, **self.params)  # ties stay ties
        y_true, y_pred = round_to(y_true, self.dtype), round_to(y_pred, self.dtype)
        if self.nans:
            for array in (y_true, y_pred):
                flat = array.reshape(self.n, -1)
                kept = flat[anchor].copy()  # the anchor row keeps its values (no NaN there)
                flat[rng.random(flat.shape) < 0.2] = np.nan
                flat[anchor] = kept
        weight = None
        if self.weight_scale is not None:
            base = rng.uniform(0.1, 1.0, size=self.n)
            if self.zero_weights:
                base[rng.random(self.n) < 0.35] = 0.0
            base[anchor] = max(base[anchor], 0.5)
            weight = base * self.weight_scale
        multioutput: Any = self.multioutput
        if self.multioutput == "weights":
            k = int(np.prod(self.outputs, dtype=np.int64))
            values = rng.uniform(0.1, 1.0, size=k)
            if k > 1:
                values[rng.random(k) < 0.25] = 0.0
                values[int(rng.integers(k))] = 0.7
            multioutput = (values * self.output_scale).reshape(self.outputs or (1,))
        return Case(self.loss, dict(self.params), y_true, y_pred, weight, multioutput,
                    self.nan_policy, self.dtype, self.outputs)


def example_params(name: str) -> dict[str, float]:
    """As tests/support/loss_table.py: a non-default value of each parameter, inside its bounds."""
    from loss_table import example_params as table_params

    return table_params(name)


@st.composite
def params_for(draw: st.DrawFn, loss: str) -> dict[str, float]:
    """Parameter values inside their bounds, other than the defaults (sometimes the table's)."""
    declared = mseplug.get_loss(loss).loss.params
    if not declared or draw(st.booleans()):
        return example_params(loss)
    chosen = {}
    for name, spec in declared.items():
        if math.isfinite(spec.low) and math.isfinite(spec.high):
            span = spec.high - spec.low
            value = draw(st.floats(spec.low + 0.01 * span, spec.high - 0.01 * span))
        else:
            base = spec.default if spec.default != 0 else 1.0
            value = base * 10 ** draw(st.floats(-1.5, 1.5))
            if spec.check is not None:  # a power (Tweedie's): the useful range, out of the gap
                # (y^(2-p) at p = 30 leaves float32's range for y of 20 already)
                refuses = spec.check
                value = draw(st.floats(-3.0, 4.0).filter(lambda v, refuses=refuses: not refuses(v)))
        chosen[name] = float(value)
    return chosen


#: Scales where the defects live: sums of weights that overflow, weights that underflow in float32.
EXTREME_SCALES = (1e308, 1e307, 1e300, 1e-300, 1e-50, 1e4)


def weight_scales(low: int = -300, high: int = 308) -> st.SearchStrategy[float]:
    """1, an extreme scale (:data:`EXTREME_SCALES`), or ``10**k`` for ``k`` in ``[low, high]``."""
    return st.one_of(st.just(1.0), st.sampled_from(EXTREME_SCALES),
                     st.integers(low, high).map(lambda k: float(10.0**k)))


@st.composite
def specs(draw: st.DrawFn, loss: str, *, dtypes: tuple[str, ...] = ("float64",),
          rows: st.SearchStrategy[int] | None = None, weights: bool | str = True, scales: bool = True,
          nans: bool = True, multioutput: bool = True, outputs: Any = None, exact: bool | str = True,
          magnitudes: Any = None) -> Spec:
    """A :class:`Spec` of ``loss``: every option the statistics must carry.

    ``rows``: the number of rows (1 to 12 by default); ``weights``: sample weights sometimes
    (True), never (False) or ``"always"``; ``scales``: weights and output weights at scales
    10**k, k in [-300, 308] (else 1); ``exact``: zero residuals and |r| == delta sometimes
    (True), never (False) or ``"always"``. A loss with statistics of its own gets only what its
    record takes (max_error: no weights, one output).
    """
    record = mseplug.get_loss(loss).loss.statistics
    if record is not None and not record.sample_weight:
        weights = False
    if record is not None and not record.multioutput:
        outputs, multioutput = st.just(()), False
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(outputs if outputs is not None else st.sampled_from([(), (3,), (2, 2)]))
    if magnitudes is None:
        magnitudes = {"float16": [1.0, 0.05, 20.0], "bfloat16": [1.0, 0.05, 20.0],
                      "float32": [1.0, 1e-3, 1e3, 3e19], "float64": [1.0, 1e-3, 1e3]}[dtype]
    magnitude = draw(st.sampled_from(magnitudes))
    weight_scale = None
    zero_weights = False
    if weights == "always" or (weights and draw(st.booleans())):
        weight_scale = draw(weight_scales()) if scales else 1.0
        zero_weights = draw(st.booleans())
    mode = draw(st.sampled_from(["uniform_average", "raw_values", "weights"])) if multioutput \
        else "uniform_average"
    output_scale = draw(weight_scales()) if mode == "weights" and scales else 1.0
    nan_policy, has_nans = "propagate", False
    if nans:
        nan_policy = draw(st.sampled_from(["propagate", "omit"]))
        has_nans = nan_policy == "omit" or draw(st.integers(0, 4)) == 0
    return Spec(
        loss=loss, params=draw(params_for(loss)), n=draw(rows if rows is not None else st.integers(1, 12)),
        outputs=shape, dtype=dtype, magnitude=magnitude, weight_scale=weight_scale,
        zero_weights=zero_weights, multioutput=mode, output_scale=output_scale, nan_policy=nan_policy,
        nans=has_nans, exact_rows=exact == "always" or (bool(exact) and draw(st.booleans())),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@st.composite
def splits(draw: st.DrawFn, n: int, libraries: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Part sizes summing to ``n`` (empty parts and parts of one row included) and a library each."""
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=0, max_size=5)))
    bounds = [0, *cuts, n]
    sizes = tuple(b - a for a, b in zip(bounds, bounds[1:]))
    chosen = tuple(draw(st.sampled_from(libraries)) for _ in sizes)
    return sizes, chosen


@st.composite
def chunkings(draw: st.DrawFn, n: int) -> tuple[int, ...]:
    """Dask chunk sizes along axis 0 summing to ``n`` (no empty chunks)."""
    sizes: list[int] = []
    left = n
    while left:
        size = draw(st.integers(1, left))
        sizes.append(size)
        left -= size
    return tuple(sizes)


# -- an independent float64 reference of the sufficient statistics -------------------------------
def weighted_terms(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """``wᵢ eᵢ`` and ``wᵢ`` per element and output, 0 where dropped, by hand (tests/reference.py)."""
    from reference import definition

    spec = definition(case.loss)
    n = case.y_true.shape[0]
    t, p = case.y_true.reshape(n, -1), case.y_pred.reshape(n, -1)
    w = np.ones(n) if case.sample_weight is None else case.sample_weight
    wk = np.repeat(w[:, None], t.shape[1], axis=1)
    with np.errstate(all="ignore"):
        e = spec.value(t, p, **case.params)
        if case.nan_policy == "omit":
            drop = np.isnan(t) | np.isnan(p)
            e, wk = np.where(drop, 0.0, e), np.where(drop, 0.0, wk)
        return wk * e, wk


def reference_statistics(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """``S = Σ wᵢ eᵢ`` and ``W = Σ wᵢ`` per output over kept elements, by hand (tests/reference.py)."""
    products, weights = weighted_terms(case)
    with np.errstate(all="ignore"):  # a sum beyond float64 is inf, as the contract's
        return np.sum(products, axis=0), np.sum(weights, axis=0)


def subnormal_products(case: Case) -> bool:
    """Whether some ``wᵢ eᵢ`` is below float64's normal range (and not 0): plain sums of them,
    as ``sufficient_statistics`` returns, keep few of its bits, and XLA flushes it to 0."""
    products = np.abs(weighted_terms(case)[0])
    return bool(np.any((products > 0) & (products < np.finfo(np.float64).tiny)))


# -- anchors --------------------------------------------------------------------------------------
def sklearn_metric(loss: str) -> Any:
    """The scikit-learn function of a loss it defines (an anchor table: names only what it has)."""
    try:
        from sklearn import metrics
    except ImportError:
        return None
    table = {
        "mse": metrics.mean_squared_error,
        "mae": metrics.mean_absolute_error,
        "rmse": getattr(metrics, "root_mean_squared_error", None),
        "pinball": metrics.mean_pinball_loss,
    }
    return table.get(loss)


def scaled_exactly(value: Any, *factors: float) -> np.ndarray:
    """``value * f1 * f2 ...`` rounded once per factor, without intermediate overflow or
    underflow (mantissas and exponents apart): exact when the factors are powers of two;
    ``inf`` where the true product overflows float64."""
    mantissa, exponent = np.frexp(np.asarray(value, dtype=np.float64))
    for factor in factors:
        m, e = math.frexp(factor)
        mantissa, exponent = mantissa * m, exponent + e
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(mantissa, exponent)
