"""One number on every path: a metamorphic suite (hypothesis).

A loss computed in one call equals the same loss over any split of the rows
into parts (``Accumulator.update`` with parts in different libraries, a random
merge tree with JSON round trips of the state, summed ``sufficient_statistics``),
over any Dask chunking, across ranks and devices, at any scale of the weights,
on every backend, and through any fast path or the general engine. Data,
splits, chunks, scales, dtypes and options are drawn at random for every
registered loss (``mseplug.losses()``) with parameter values inside their
bounds. The one-call side of each property is mseplug's own float64 NumPy call
(the property is that two paths agree); absolute values are anchored to the
independent float64 reference (tests/reference.py) and to scikit-learn.

``CI=true`` draws the same cases every run (tests/conftest.py); elsewhere each
run explores new ones (reproduce a failure with ``--hypothesis-seed=N``). A
falsifying example prints as ``Spec(...)``: ``Spec(...).build()`` rebuilds its
arrays (tests/invariants_cases.py).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import invariants_cases as ic
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from invariants_cases import LIBRARIES, NAMES, Case, Spec, assert_close, assert_identical, to_numpy
from loss_table import in_domain, refusal, skip_if_refused
from loss_table import rows as table_rows
from reference import loss_grad, loss_hessian, loss_value

import mseplug
from mseplug.engine import pipeline
from mseplug.loss import make_options

#: float64 paths agree to this (docs/semantics.md: "within 1e-12 relative in float64").
RTOL = 1e-12


def budget(examples: int) -> settings:
    """``examples`` per run, no deadline (the first call of a shape compiles on JAX), and one
    falsifying example shrunk per test (shrinking every distinct failure costs minutes)."""
    return settings(max_examples=examples, deadline=None, report_multiple_bugs=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(autouse=True, scope="module")
def _synchronous_dask() -> Iterator[None]:
    """Dask computes in the calling thread here (tests/test_dask.py runs a real LocalCluster)."""
    if not ic.HAS_DASK:
        yield
        return
    import dask

    with dask.config.set(scheduler="synchronous"):
        yield


@contextmanager
def recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning inside, recorded rather than raised (pytest makes warnings errors)."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        yield records


def assert_quiet(records: list[warnings.WarningMessage], expected: Any, what: str) -> None:
    """The warnings of a path whose answer is ``expected`` (from finite inputs, NaN aside): none
    at all where it is finite; where it overflowed, mseplug's LossOverflowWarning and no raw
    NumPy warning."""
    values = np.asarray(expected, dtype=np.float64)
    own = (mseplug.LossOverflowWarning, mseplug.EmptyOutputWarning)
    records = [r for r in records if not tolerated(r)]
    if np.all(np.isfinite(values)):
        noisy = [f"{r.category.__name__}: {r.message}" for r in records
                 if issubclass(r.category, RuntimeWarning)]
        assert not noisy, f"{what}: the answer is finite, yet it warned {noisy}"
        return
    raw = [f"{r.category.__name__}: {r.message}" for r in records
           if issubclass(r.category, RuntimeWarning) and not issubclass(r.category, own)]
    assert not raw, f"{what}: raw warnings {raw} (mseplug's own say what happened)"
    if np.isinf(values).any():
        assert any(issubclass(r.category, mseplug.LossOverflowWarning) for r in records), (
            f"{what}: {values} overflowed without LossOverflowWarning")


def tolerated(record: warnings.WarningMessage) -> bool:
    """The warnings the project's pytest configuration allows: array_api_strict's own operators
    warn about 0/0 and inf*0 (it computes with NumPy outside any errstate)."""
    message = str(record.message)
    return ("array_api_strict" in str(record.filename) and issubclass(record.category, RuntimeWarning)
            and message.startswith(("invalid value encountered", "divide by zero encountered")))


def representable(S: Any, W: Any) -> bool:
    """Whether statistics fit float64 with room for adding a few parts (1e300): beyond that the
    contract makes them inf with a LossOverflowWarning, and their loss NaN, never finite."""
    S, W = np.abs(np.asarray(S, np.float64)), np.asarray(W, np.float64)
    with np.errstate(invalid="ignore"):
        return bool(np.all((S < 1e300) | np.isnan(S)) and np.all(W < 1e300))


def assert_statistics(found: Any, expected: Any, want: tuple[Any, Any],
                      records: list[warnings.WarningMessage], what: str, *,
                      ours_overflowed: bool = True, subnormal: bool = False) -> None:
    """The loss from summed statistics: the one-call loss, quietly, where the statistics are
    representable (``want``: the exact sums); else not a finite number, and a warning said so
    when mseplug's own statistics overflowed (``ours_overflowed``; not when only the caller's sum
    of finite parts did)."""
    if subnormal:
        # Plain float64 sums of terms below the normal range keep only a few of their bits, and
        # XLA flushes them to 0 (docs/conventions.md, "Subnormals"; ``subnormal``: some wᵢeᵢ
        # is); the one call and the Accumulator, checked on the same case, scale the weights
        # and keep every digit. A finite loss is still due.
        found = np.asarray(to_numpy(found), np.float64).ravel()
        assert np.all(np.isfinite(found) | np.isnan(np.asarray(expected, np.float64).ravel())), \
            f"{what}: {found} from statistics below float64's normal range"
        return
    if representable(*want):
        assert_close(found, expected, RTOL, what)
        assert_quiet(records, expected, what)
        return
    found = np.asarray(to_numpy(found), np.float64).ravel()
    expected = np.broadcast_to(np.asarray(expected, np.float64).ravel(), found.shape)
    finite = np.isfinite(found)
    if finite.any():  # a finite answer is allowed only when it is the right one
        assert_close(found[finite], expected[finite], RTOL, what)
    overflowed = ~finite & ~np.isnan(expected)  # NaN expected: a NaN input, propagated
    if overflowed.any() and ours_overflowed:
        assert any(issubclass(r.category, mseplug.LossOverflowWarning) for r in records), \
            f"{what}: statistics beyond float64 came back without a LossOverflowWarning"


def loss_function(name: str) -> Any:
    return mseplug.get_loss(name)


def describe(case: Case) -> str:
    """The arrays of a case, printed with a falsifying example (hypothesis' ``note``)."""
    return (f"y_true={case.y_true.tolist()}\ny_pred={case.y_pred.tolist()}\n"
            f"sample_weight={None if case.sample_weight is None else case.sample_weight.tolist()}\n"
            f"multioutput={case.multioutput!r} nan_policy={case.nan_policy} params={case.params}")


# =================================================================================================
# 1. Splits into parts
# =================================================================================================
def part_libraries(spec: Spec) -> tuple[str, ...]:
    if spec.dtype == "bfloat16":
        return ic.BFLOAT_LIBRARIES
    libraries = ic.HALF_LIBRARIES if spec.dtype == "float16" else LIBRARIES
    if len(spec.outputs) == 1:
        libraries = (*libraries, "matrix")  # np.matrix is 2-D: taken as a plain array
    return libraries


def make_parts(case: Case, sizes: tuple[int, ...], libraries: tuple[str, ...],
               order: np.ndarray) -> list[tuple[Any, Any, Any]]:
    parts = []
    start = 0
    for size, library in zip(sizes, libraries):
        rows = order[start:start + size]
        start += size
        weight = None
        if case.sample_weight is not None:
            # Weights stay float64 whatever the batch dtype (1e-300 or 1e308 do not fit float32).
            weight = ic.to_library(case.sample_weight[rows], "numpy" if library == "matrix" else library)
        parts.append((ic.to_library(case.y_true[rows], library, case.dtype),
                      ic.to_library(case.y_pred[rows], library, case.dtype), weight))
    return parts


def json_round_trip(acc: mseplug.Accumulator) -> mseplug.Accumulator:
    return mseplug.Accumulator.from_state_dict(json.loads(json.dumps(acc.state_dict())))


def new_accumulator(case: Case) -> mseplug.Accumulator:
    return mseplug.Accumulator(case.loss, multioutput=case.multioutput, nan_policy=case.nan_policy,
                               **case.params)


@pytest.mark.parametrize("loss", NAMES)
@budget(12)
@given(data=st.data())
def test_parts_give_the_one_call_loss(loss: str, data: st.DataObject) -> None:
    """Accumulator over parts (any libraries), a merge tree with JSON round trips, and summed
    statistics: each equals the one call (float64 NumPy of the same rounded inputs) to 1e-12."""
    skip_if_refused(loss, streamed=True)
    spec = data.draw(ic.specs(loss, dtypes=("float64", "float64", "float32", "float16", "bfloat16")
                              if ic.BFLOAT_LIBRARIES else ("float64", "float64", "float32", "float16")),
                     label="spec")
    case = spec.build()
    sizes, libraries = data.draw(ic.splits(spec.n, part_libraries(spec)), label="parts")
    shuffle = data.draw(st.booleans(), label="shuffle rows")
    order = np.random.default_rng(spec.seed).permutation(spec.n) if shuffle else np.arange(spec.n)
    note(describe(case))
    with recorded() as records:
        expected = case.one_shot()
    assert_quiet(records, expected, "the one call")
    parts = make_parts(case, sizes, libraries, order)

    # Accumulator.update with every part in turn, JSON round trips in between.
    with recorded() as records:
        acc = new_accumulator(case)
        for t, p, w in parts:
            acc.update(t, p, sample_weight=w)
            if data.draw(st.booleans(), label="round trip after update"):
                acc = json_round_trip(acc)
        streamed = acc.compute()
    assert_close(streamed, expected, RTOL, "Accumulator.update over the parts")
    assert ic.dtype_name(streamed) == "float64"
    assert_quiet(records, expected, "Accumulator.update")

    # A random merge tree of per-part Accumulators, JSON round trips at random nodes.
    with recorded() as records:
        nodes = []
        for t, p, w in parts:
            node = new_accumulator(case)
            node.update(t, p, sample_weight=w)
            nodes.append(node)
        while len(nodes) > 1:
            i = data.draw(st.integers(0, len(nodes) - 1), label="merge into")
            j = data.draw(st.integers(0, len(nodes) - 2), label="merge from")
            j += j >= i
            left, right = nodes[i], nodes[j]
            if data.draw(st.booleans(), label="round trip before merge"):
                left, right = json_round_trip(left), json_round_trip(right)
            merged = left.merge(right)
            nodes = [node for index, node in enumerate(nodes) if index not in (i, j)] + [merged]
        tree = nodes[0].compute()
    assert_close(tree, expected, RTOL, "a merge tree of per-part Accumulators")
    assert_quiet(records, expected, "merge tree")

    # loss_from_statistics of the summed sufficient_statistics of the parts (S, W); statistics of
    # their own combine by their record (tests/streaming/test_accumulator_statistics.py).
    if mseplug.get_loss(loss).loss.statistics is not None:
        return
    with recorded() as records:
        total, weight, ours_overflowed = 0.0, 0.0, False
        for t, p, w in parts:
            S, W = mseplug.sufficient_statistics(loss, t, p, sample_weight=w,
                                                 nan_policy=case.nan_policy, **case.params)
            ours_overflowed |= bool(np.isinf(to_numpy(S)).any() or np.isinf(to_numpy(W)).any())
            with np.errstate(over="ignore"):  # the caller's own sum of parts
                total, weight = total + to_numpy(S), weight + to_numpy(W)
        found = statistics_loss(loss, total, weight, case.multioutput, case.params)
    assert_statistics(to_numpy(found).ravel(), expected.ravel(), ic.reference_statistics(case),
                      records, "loss_from_statistics of the summed statistics of the parts",
                      ours_overflowed=ours_overflowed, subnormal=ic.subnormal_products(case))


def statistics_loss(loss: str, S: Any, W: Any, multioutput: Any, params: dict[str, float]) -> Any:
    """``loss_from_statistics`` with the loss's params (checked on its own in
    test_loss_from_statistics_takes_the_params; here the numbers are the point). The statistics
    are flat, one per output (K,): so are the output weights given with them."""
    if not isinstance(multioutput, str):
        multioutput = np.ravel(multioutput)
    try:
        return mseplug.loss_from_statistics(loss, S, W, multioutput=multioutput, **params)
    except TypeError as error:
        if not params or "unexpected keyword" not in str(error):
            raise
        return mseplug.loss_from_statistics(loss, S, W, multioutput=multioutput)


STATISTICS_CASES = [(library, dtype) for library in LIBRARIES
                    for dtype in ("float16", "bfloat16", "float32", "float64")
                    if (dtype != "bfloat16" or library in ic.BFLOAT_LIBRARIES)
                    and (dtype != "float16" or library in ic.HALF_LIBRARIES)]


@pytest.mark.parametrize(("library", "dtype"), STATISTICS_CASES)
def test_statistics_are_float64_whatever_the_batch_dtype(library: str, dtype: str) -> None:
    """sufficient_statistics of a batch of any float dtype are float64 (in y_pred's library)."""
    for loss in (row.values[0] for row in table_rows(elementwise=True)):  # (S, W) losses
        t, p = in_domain(loss, np.array([0.0, 1.0, 2.0]), np.array([0.5, 3.0, -1.0]))
        t, p = ic.to_library(t, library, dtype), ic.to_library(p, library, dtype)
        S, W = mseplug.sufficient_statistics(loss, t, p, **ic.example_params(loss))
        assert (ic.dtype_name(S), ic.dtype_name(W)) == ("float64", "float64"), (
            f"{loss}: statistics of a {dtype} batch in {library} are {ic.dtype_name(S)}, not float64")


@pytest.mark.parametrize("loss", NAMES)
def test_loss_from_statistics_takes_the_params(loss: str) -> None:
    """Generic code passes the same params to sufficient_statistics and loss_from_statistics."""
    # (S, W), sums and elementwise losses: a loss with statistics of its own has none of them
    # (tests/streaming/test_accumulator_statistics.py and tests/loss/test_statistics.py)
    skip_if_refused(loss, elementwise=True)
    params = ic.example_params(loss)
    t, p = in_domain(loss, np.array([0.0, 1.0, 2.0]), np.array([0.5, 3.0, -1.0]))
    S, W = mseplug.sufficient_statistics(loss, t, p, **params)
    assert_close(mseplug.loss_from_statistics(loss, S, W, **params),
                 loss_value(loss, t, p, **params), RTOL, f"{loss} from its statistics")


# =================================================================================================
# 2. Chunks (Dask)
# =================================================================================================
def scalar_multioutput(case: Case) -> Any:
    """``multioutput`` for a gradient, which needs a scalar loss."""
    raw = isinstance(case.multioutput, str) and case.multioutput == "raw_values"
    return "uniform_average" if raw and case.k > 1 else case.multioutput


def reduction_keywords(case: Case, reduction: str) -> dict[str, Any]:
    """Output weights apply to means and sums; ``reduction="none"`` takes none (a ValueError)."""
    if reduction == "none" and not isinstance(case.multioutput, str):
        return {"reduction": reduction, "multioutput": "uniform_average"}
    return {"reduction": reduction}


@pytest.mark.skipif(not ic.HAS_DASK, reason="Dask is not installed")
@pytest.mark.parametrize("loss", NAMES)
@budget(8)
@given(data=st.data())
def test_dask_chunks_give_the_numpy_answer(loss: str, data: st.DataObject) -> None:
    """Random chunks along axis 0 (weights chunked differently): value, sum, none, grad,
    statistics and Accumulator.update equal float64 NumPy to 1e-12."""
    import dask.array as da

    # (S, W), sums and elementwise losses: a loss with statistics of its own has none of them
    # (tests/streaming/test_accumulator_statistics.py and tests/loss/test_statistics.py)
    skip_if_refused(loss, elementwise=True)

    spec = data.draw(ic.specs(loss, rows=st.integers(1, 40), outputs=st.sampled_from([(), (3,)])),
                     label="spec")
    case = spec.build()
    chunks = data.draw(ic.chunkings(spec.n), label="data chunks")
    weight_chunks = data.draw(ic.chunkings(spec.n), label="weight chunks")
    note(describe(case))

    def lazy(x: np.ndarray, rows: tuple[int, ...]) -> Any:
        return da.from_array(x, chunks=(rows, *x.shape[1:]))

    t, p = lazy(case.y_true, chunks), lazy(case.y_pred, chunks)
    w = None if case.sample_weight is None else lazy(case.sample_weight, weight_chunks)
    function = loss_function(loss)
    reductions = ("mean",) if case.root or refusal(loss, reduction="sum") else ("mean", "sum", "none")
    for reduction in reductions:
        with recorded() as records:
            expected = case.one_shot(**reduction_keywords(case, reduction))
        assert_quiet(records, expected, f"NumPy reduction={reduction}")
        with recorded() as records:
            got = function(t, p, **case.keywords(sample_weight=w, **reduction_keywords(case, reduction)))
            got = to_numpy(got)
        assert_close(got, expected, RTOL, f"Dask, reduction={reduction!r}")
        assert_quiet(records, expected, f"Dask reduction={reduction}")
    multioutput = scalar_multioutput(case)
    expected_grad = to_numpy(mseplug.grad(loss, case.y_true, case.y_pred,
                                          **case.keywords(multioutput=multioutput)))
    with recorded() as records:
        got_grad = to_numpy(mseplug.grad(loss, t, p, **case.keywords(sample_weight=w,
                                                                      multioutput=multioutput)))
    assert_close(got_grad, expected_grad, RTOL, "Dask mseplug.grad against NumPy's")
    assert_quiet(records, expected_grad, "Dask mseplug.grad")
    expected = case.one_shot()
    with recorded() as records:
        S, W = mseplug.sufficient_statistics(loss, t, p, sample_weight=w, nan_policy=case.nan_policy,
                                             **case.params)
        S, W = to_numpy(S), to_numpy(W)
        found = statistics_loss(loss, S, W, case.multioutput, case.params)
    assert_statistics(to_numpy(found).ravel(), expected.ravel(), ic.reference_statistics(case),
                      records, "Dask sufficient_statistics", subnormal=ic.subnormal_products(case))
    want_S, want_W = ic.reference_statistics(case)
    if np.all(np.isfinite(want_S)) and np.all(np.isfinite(want_W)) and (
            case.sample_weight is None or 1e-250 < np.max(case.sample_weight) < 1e250):
        # Statistics of representable size are the literal sums Σ w·e and Σ w.
        assert_close(S, want_S, RTOL, "Dask S = Σ w·e")
        assert_close(W, want_W, RTOL, "Dask W = Σ w")
    acc = new_accumulator(case)
    with recorded() as records:
        acc.update(t, p, sample_weight=w)
        streamed = acc.compute()
    assert_close(streamed, expected, RTOL, "Accumulator.update with a Dask batch")
    assert_quiet(records, expected, "Accumulator.update on Dask")


# =================================================================================================
# 3. Weight scale invariance
# =================================================================================================
@st.composite
def factors(draw: st.DrawFn, high: int = 308) -> tuple[str, int, float]:
    """``10**k`` (k in [-300, high]) or an exact power of two ``2**j`` (j in [-1000, 1000]),
    the ends of both ranges one draw in three."""
    extreme = draw(st.integers(0, 2)) == 0
    if draw(st.booleans()):
        k = draw(st.sampled_from([-300, 300, 307, high]) if extreme else st.integers(-300, high))
        return "10", k, float(10.0**k)
    j = draw(st.sampled_from([-1000, 1000]) if extreme else st.integers(-1000, 1000))
    return "2", j, math.ldexp(1.0, j)


@pytest.mark.parametrize("loss", NAMES)
@budget(12)
@given(data=st.data())
def test_weight_scale_does_not_change_a_mean(loss: str, data: st.DataObject) -> None:
    """``loss(w * c) == loss(w)`` for every mean (bit for bit for c = 2**j), sample weights and
    output weights, on every backend; ``reduction="sum"`` scales by c where the answer is
    representable, else is inf with LossOverflowWarning (never another finite number, never NaN)."""
    # (S, W), sums and elementwise losses: a loss with statistics of its own has none of them
    # (tests/streaming/test_accumulator_statistics.py and tests/loss/test_statistics.py)
    skip_if_refused(loss, elementwise=True)
    library = data.draw(st.sampled_from(LIBRARIES), label="library")
    spec = data.draw(ic.specs(loss, weights="always", scales=False, exact=False), label="spec")
    case = spec.build()
    kind, power, c = data.draw(factors(), label="sample weight factor")
    output_kind, output_power, c_out = "2", 0, 1.0
    if not isinstance(case.multioutput, str):
        output_kind, output_power, c_out = data.draw(factors(), label="output weight factor")
    note(describe(case))
    function = loss_function(loss)
    exact = kind == "2" and output_kind == "2" and terms_stay_normal(case, c, c_out)
    scaling = f"weights times {kind}**{power}, output weights times {output_kind}**{output_power}"
    assert case.sample_weight is not None
    weight = case.sample_weight
    scaled_outputs = case.multioutput if isinstance(case.multioutput, str) else case.multioutput * c_out

    def on(weight: np.ndarray, multioutput: Any, reduction: str) -> tuple[np.ndarray, list[Any]]:
        with recorded() as records:
            value = function(ic.to_library(case.y_true, library), ic.to_library(case.y_pred, library),
                             **case.keywords(sample_weight=ic.to_library(weight, library),
                                             multioutput=multioutput, reduction=reduction))
            value = to_numpy(value)
        return value, records

    plain, _ = on(weight, case.multioutput, "mean")
    reference = loss_value(loss, case.y_true, case.y_pred, **case.keywords())
    assert_close(plain, reference, RTOL, f"{library}: the mean at weight scale 1 against the reference")
    scaled, records = on(weight * c, scaled_outputs, "mean")
    if exact:
        assert_identical(scaled, plain, f"{library}: the mean, {scaling}")
    else:
        assert_close(scaled, plain, RTOL, f"{library}: the mean, {scaling}")
    assert_quiet(records, reference, f"{library}: a mean, {scaling}")
    metric = ic.sklearn_metric(loss)
    if metric is not None and not (np.isnan(case.y_true).any() or np.isnan(case.y_pred).any()):
        anchor = sklearn_value(metric, case, weight)
        assert_close(np.ravel(scaled), np.ravel(anchor), RTOL, f"{library}: against scikit-learn")
    if case.root:
        return  # a root loss has no sum
    plain_sum, _ = on(weight, case.multioutput, "sum")
    scaled_sum, records = on(weight * c, scaled_outputs, "sum")
    product = ic.scaled_exactly(plain_sum, c, c_out)
    overflows = np.isinf(product) & np.isfinite(plain_sum)
    if overflows.any():
        assert np.all(np.isinf(scaled_sum[overflows])), (
            f"{library}: reduction='sum', {scaling}: the true sum {plain_sum} x {c * c_out:.3g} "
            f"overflows float64; got {scaled_sum} instead of inf")
        assert any(issubclass(r.category, mseplug.LossOverflowWarning) for r in records), (
            f"{library}: reduction='sum', {scaling}: inf without LossOverflowWarning")
    else:
        assert_quiet(records, product, f"{library}: reduction='sum', {scaling}")
    normal = ~overflows & ((np.abs(product) >= 1e-290) | (plain_sum == 0))
    got, want = np.ravel(scaled_sum[normal]), np.ravel(product[normal])
    if exact:
        assert_identical(got, want, f"{library}: reduction='sum', {scaling}")
    else:
        assert_close(got, want, RTOL, f"{library}: reduction='sum', {scaling}")
    assert np.array_equal(np.isnan(scaled_sum), np.isnan(plain_sum)), (
        f"{library}: reduction='sum', {scaling}: NaN {scaled_sum} where the unscaled sum is {plain_sum}")


def terms_stay_normal(case: Case, c: float, c_out: float) -> bool:
    """Whether every nonzero weighted term ``w·e·v`` times ``c·c_out`` is a normal float64: then
    scaling by powers of two is exact in any order of operations, and the answer bit for bit
    the same (a subnormal term would round differently)."""
    with np.errstate(all="ignore"):
        terms = np.abs(loss_value(case.loss, case.y_true, case.y_pred,
                                  **case.keywords(reduction="none", multioutput="uniform_average")))
    outputs = np.ones(1) if isinstance(case.multioutput, str) else np.abs(np.ravel(case.multioutput))
    terms, outputs = terms[np.isfinite(terms) & (terms > 0)], outputs[outputs > 0]
    if terms.size == 0:
        return True
    low = math.log2(terms.min()) + math.log2(outputs.min()) + math.log2(c) + math.log2(c_out)
    high = math.log2(terms.max()) + math.log2(outputs.max()) + math.log2(c) + math.log2(c_out)
    return -1021 < low and high < 1023


def sklearn_value(metric: Any, case: Case, weight: Any) -> np.ndarray:
    """scikit-learn's value of a case (2-D columns, output weights flat)."""
    n = case.y_true.shape[0]
    multioutput = case.multioutput if isinstance(case.multioutput, str) else np.ravel(case.multioutput)
    if case.outputs == () and not isinstance(multioutput, str):
        multioutput = "uniform_average"  # one output: its weight does not change a mean
    return np.asarray(metric(case.y_true.reshape(n, -1), case.y_pred.reshape(n, -1), sample_weight=weight,
                             multioutput=multioutput, **case.params), dtype=np.float64)


@pytest.mark.parametrize("loss", NAMES)
@budget(8)
@given(data=st.data())
def test_float32_predictions_take_float64_weights_of_any_scale(loss: str, data: st.DataObject) -> None:
    """float32 y_pred, float64 weights times 10**k or 2**j: the float32 answer of the
    unscaled weights (scikit-learn's where it has the loss); bit for bit for 2**j."""
    # Not yet for statistics of their own (R², max_error): their streaming, merging and
    # precision are in tests/streaming/test_accumulator_statistics.py
    skip_if_refused(loss, elementwise=True)
    library = data.draw(st.sampled_from(LIBRARIES), label="library")
    list_truth = data.draw(st.booleans(), label="y_true as a list")
    spec = data.draw(ic.specs(loss, dtypes=("float32",), weights="always", scales=False, nans=False,
                              exact=False, magnitudes=[1.0, 1e3]), label="spec")
    case = spec.build()
    kind, power, c = data.draw(factors(), label="weight factor")
    note(describe(case))
    assert case.sample_weight is not None
    function = loss_function(loss)
    t = case.y_true.tolist() if list_truth else ic.to_library(case.y_true, library, "float32")
    p = ic.to_library(case.y_pred, library, "float32")

    def at(weight: np.ndarray) -> tuple[Any, list[Any]]:
        with recorded() as records:
            value = function(t, p, **case.keywords(sample_weight=ic.to_library(weight, library)))
        return value, records

    plain, _ = at(case.sample_weight)
    scaled, records = at(case.sample_weight * c)
    reference = loss_value(loss, case.y_true, case.y_pred, **case.keywords())
    tolerance = dtype_tolerance("float32", case.y_true.shape[0], case.k, loss, library)
    assert_close(scaled, reference, tolerance, f"{library}: float32 with weights times {kind}**{power}")
    assert ic.dtype_name(scaled) == "float32", f"{library}: float32 in, {ic.dtype_name(scaled)} out"
    assert_quiet(records, reference, f"{library}: float32 with weights times {kind}**{power}")
    if kind == "2":
        assert_identical(scaled, plain, f"{library}: float32, weights times 2**{power}")
    metric = ic.sklearn_metric(loss)
    if metric is not None:
        anchor = sklearn_value(metric, case, case.sample_weight)
        assert_close(np.ravel(to_numpy(scaled)), np.ravel(anchor), tolerance,
                     f"{library}: float32 against scikit-learn")


ISSUE_SCALES = [1e-300, 1e-50, 1e300, 1e308]


@pytest.mark.parametrize("scale", ISSUE_SCALES)
@pytest.mark.parametrize("library", LIBRARIES)
def test_reported_float32_predictions_with_float64_weights(library: str, scale: float) -> None:
    """float32 inputs, float64 weights that do not fit float32: scikit-learn's 14/3."""
    from sklearn.metrics import mean_squared_error

    truth, prediction, weight = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.full(3, scale)
    with recorded() as records:
        got = mseplug.mse(ic.to_library(truth, library, "float32"),
                          ic.to_library(prediction, library, "float32"),
                          sample_weight=ic.to_library(weight, library))
    # float32: one rounding of the answer and a few of the mean.
    assert_close(got, mean_squared_error(truth, prediction), 1e-7, f"{library}: weights {scale}")
    assert_quiet(records, 1.0, f"{library}: float32 with weights {scale}")


@pytest.mark.parametrize("scale", ISSUE_SCALES)
@pytest.mark.parametrize("library", LIBRARIES)
def test_reported_parts_at_extreme_weights(library: str, scale: float) -> None:
    """Accumulator at weights up to 1e308: the one-shot 14/3, quietly; sufficient_statistics
    too where the sums fit float64 (at 1e308 they do not: inf, a warning, and no finite loss)."""
    truth, prediction, weight = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.full(3, scale)
    acc = mseplug.Accumulator("mse")
    with recorded() as records:
        acc.update(ic.to_library(truth, library), ic.to_library(prediction, library),
                   sample_weight=ic.to_library(weight, library))
        streamed = acc.compute()
    assert_close(streamed, 14 / 3, RTOL, f"{library}: Accumulator at weights {scale}")
    assert_quiet(records, 1.0, f"{library}: Accumulator at weights {scale}")
    with recorded() as records:
        S, W = mseplug.sufficient_statistics("mse", ic.to_library(truth, library),
                                             ic.to_library(prediction, library),
                                             sample_weight=ic.to_library(weight, library))
        from_statistics = mseplug.loss_from_statistics("mse", to_numpy(S), to_numpy(W))
    exact = (14 * scale, 3 * scale) if math.isfinite(3 * scale) else (math.inf, math.inf)
    assert_statistics(from_statistics, 14 / 3, exact, records,
                      f"{library}: statistics at weights {scale}")


@pytest.mark.parametrize("scale", ISSUE_SCALES)
@pytest.mark.parametrize("library", LIBRARIES)
def test_reported_output_weights_whose_sum_overflows(library: str, scale: float) -> None:
    """``multioutput=[c, c]`` is ``multioutput=[1, 1]``: value 1 and gradient 1/2, for any c."""
    outputs, truth = ic.to_library(np.ones((2, 2)), library), ic.to_library(np.zeros((2, 2)), library)
    with recorded() as records:
        got = mseplug.mse(truth, outputs, multioutput=ic.to_library(np.full(2, scale), library))
        slope = mseplug.grad("mse", truth, outputs, multioutput=ic.to_library(np.full(2, scale), library))
    assert_close(got, 1.0, RTOL, f"{library}: output weights [{scale}, {scale}]")
    assert_close(slope, np.full((2, 2), 0.5), RTOL, f"{library}: gradient, output weights {scale}")
    assert_quiet(records, 1.0, f"{library}: output weights {scale}")


@pytest.mark.parametrize("library", LIBRARIES)
def test_reported_sums_that_overflow(library: str) -> None:
    """A sum whose true value exceeds float64 is inf with LossOverflowWarning (sample weights
    1e308, or output weights 1e308 on sums near 1e308): never NaN, never another number."""
    truth, prediction = np.zeros((3, 2)), np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 4.0]])
    calls = {"sample weights 1e308": {"sample_weight": np.full(3, 1e308)},
             "output weights 1e308": {"multioutput": np.full(2, 1e308)}}
    for name, keywords in calls.items():
        converted = {key: ic.to_library(value, library) for key, value in keywords.items()}
        with recorded() as records:
            got = to_numpy(mseplug.mse(ic.to_library(truth, library), ic.to_library(prediction, library),
                                       reduction="sum", **converted))
        assert np.isposinf(got), f"{library}, {name}: the sum is {got}, not inf"
        assert any(issubclass(r.category, mseplug.LossOverflowWarning) for r in records), (
            f"{library}, {name}: inf without LossOverflowWarning "
            f"({[str(r.message) for r in records]})")


# =================================================================================================
# 4. Dtypes
# =================================================================================================
FLOATS = ("float16", "bfloat16", "float32", "float64")
TYPED = (*FLOATS, "int32", "int64", "bool")


def default_float(library: str) -> str:
    if library == "torch":
        import torch

        return str(torch.get_default_dtype()).removeprefix("torch.")
    return "float64"  # NumPy; JAX with jax_enable_x64 (tests/conftest.py); the Array API default


def wider(a: str, b: str) -> str:
    """The wider float dtype; float16 and bfloat16 hold neither each other: float32."""
    if a == b:
        return a
    if {a, b} == {"float16", "bfloat16"}:
        return "float32"
    order = ("float16", "bfloat16", "float32", "float64")
    return max(a, b, key=order.index)


def expected_result_dtype(true_library: str, true_dtype: str, pred_library: str, pred_dtype: str) -> str:
    """The one rule: a list or Python scalar takes y_pred's float dtype; typed arrays promote to
    the wider, whatever their libraries; integers and bools are y_pred's library's default float."""
    def as_float(dtype: str) -> str:
        return dtype if dtype in FLOATS else default_float(pred_library)

    if true_library in ("list", "scalar"):
        return as_float(pred_dtype)
    return wider(as_float(true_dtype), as_float(pred_dtype))


def holds(library: str, dtype: str) -> bool:
    if dtype == "bfloat16":
        return library in ("torch", "jax")
    if dtype == "float16":
        return library != "array_api_strict"
    return True


def typed(x: np.ndarray, library: str, dtype: str) -> Any:
    if dtype in FLOATS:
        return ic.to_library(x, library, dtype)
    values = np.asarray(x).astype(dtype)
    if library == "torch":
        import torch

        return torch.asarray(values)
    if library == "jax":
        import jax.numpy as jnp

        return jnp.asarray(values)
    return values


DTYPE_LIBRARIES = tuple(lib for lib in ("numpy", "torch", "jax") if lib in LIBRARIES)


def dtype_rule_case(data: st.DataObject, true_dtypes: tuple[str, ...], pred_dtypes: tuple[str, ...]
                    ) -> None:
    """Draw y_true and y_pred (libraries and dtypes), call, and check the result's library,
    dtype and value."""
    loss = data.draw(st.sampled_from(NAMES), label="loss")
    pred_library = data.draw(st.sampled_from(DTYPE_LIBRARIES), label="y_pred library")
    pred_dtype = data.draw(st.sampled_from([d for d in pred_dtypes if holds(pred_library, d)]),
                           label="y_pred dtype")
    true_library = data.draw(st.sampled_from([*DTYPE_LIBRARIES, "list", "scalar"]), label="y_true library")
    true_dtype = "float64"
    if true_library not in ("list", "scalar"):
        true_dtype = data.draw(st.sampled_from([d for d in true_dtypes if holds(true_library, d)]),
                               label="y_true dtype")
    shape = () if true_library == "scalar" else (4,)
    rng = np.random.default_rng(data.draw(st.integers(0, 1000), label="seed"))
    bools = "bool" in (true_dtype, pred_dtype)
    bounds = mseplug.get_loss(loss).loss.bounds(tuple(ic.example_params(loss).values()))
    assume(not (bools and bounds))  # 0 and 1 are not inside every domain
    truth = rng.integers(0, 2, shape) if bools else rng.integers(-3, 4, shape).astype(float)
    prediction = rng.integers(0, 2, shape) if bools else rng.integers(-3, 4, shape).astype(float)
    if bounds:  # small integers inside the domain: exact in every dtype still
        shift = max(math.floor(bound.low) + 1 for bound in bounds.values())
        truth, prediction = shift + np.abs(truth), shift + np.abs(prediction)
    if not mseplug.get_loss(loss).loss.residual:  # a relative error divides by the truth: a
        truth = np.where(truth == 0, 1, truth)      # zero makes it ~1e16, beyond float16
    if true_library == "scalar":
        t: Any = float(truth)
    elif true_library == "list":
        t = truth.tolist()
    else:
        t = typed(truth, true_library, true_dtype)
    p = typed(prediction, pred_library, pred_dtype)
    params = ic.example_params(loss)
    got = loss_function(loss)(t, p, **params)
    want_dtype = expected_result_dtype(true_library, true_dtype, pred_library, pred_dtype)
    assert ic.library_of(got) == pred_library, f"the result is {type(got)}, not {pred_library}'s"
    assert ic.dtype_name(got) == want_dtype, (
        f"{loss}(y_true {true_library} {true_dtype}, y_pred {pred_library} {pred_dtype}) is "
        f"{ic.dtype_name(got)}; the rule gives {want_dtype}")
    # The inputs are small integers: exact in every dtype, so the value is the reference's
    # rounded once to the result dtype (and the mean's few roundings): 4 eps.
    reference = loss_value(loss, np.asarray(truth, float), np.asarray(prediction, float), **params)
    assert_close(got, reference, 4 * ic.float_eps(want_dtype) if want_dtype != "float64" else RTOL,
                 "the value")


@budget(40)
@given(data=st.data())
def test_result_dtype_follows_one_rule(data: st.DataObject) -> None:
    """Result library = y_pred's; float dtypes promote to the wider (float16 with bfloat16:
    float32) whatever the libraries; a list or a Python scalar takes y_pred's dtype."""
    dtype_rule_case(data, FLOATS, FLOATS)


@budget(25)
@given(data=st.data())
def test_integers_and_bools_become_the_default_float(data: st.DataObject) -> None:
    """An integer or bool input is first the default float of y_pred's library (NumPy and JAX
    with x64: float64; torch: torch.get_default_dtype()), then the float rule applies: int32
    with float16 NumPy is float64 (as NumPy's own promotion and scikit-learn), not float16."""
    integers = ("int32", "int64", "bool")
    if data.draw(st.booleans(), label="integer y_pred"):
        dtype_rule_case(data, TYPED, integers)
    else:
        dtype_rule_case(data, integers, TYPED)


def dtype_tolerance(dtype: str, n: int, k: int, loss: str = "mse", library: str = "numpy") -> float:
    """How far a loss of inputs in ``dtype`` may be from the float64 value of the same rounded inputs.

    Every built-in term is nonnegative, so the relative error of a sum is at most the largest
    relative error of a term plus one rounding per addition. With u the unit roundoff of the
    dtype (eps/2) and U that of the accumulation (float32 for float16, bfloat16 and float32 --
    a float32 input may be summed in float32 -- and float64 for float64):
    - a term: the residual rounds once (u), the elementwise formula rounds a few times (at most 4u
      for r*r, |r|, the two pieces of Huber and pinball; log_cosh's a + log1p(exp(-2a)) - log 2
      can cancel by a factor 3 at a ~ log 2: at most 6u), the weight product once (u) -> 8u;
    - the sum of n terms in any order: (n - 1) U; the mean over k outputs: k U; the divisions
      by the weights: 2 U; the root and the final cast to the dtype: 2u.
    So 10u + (n + k + 2) U. Summing float16 in float16 is off by ~n u (stagnation from n ~ 2000
    on) and overflows above 65504: the n drawn below reach 2000, well past this bound.
    A loss of the pair forms its terms with more operations (two logs and a division for msle,
    a division and a 16-term series of x - log1p(x) for the Poisson deviance), and x - log1p(x)
    just above |x| = 0.1 (where the series hands over) amplifies the error of log1p about
    20-fold: a term may be off by up to 200u there. XLA's own log1p (JAX on CPU) is 2.7e-14
    off in float64 near x = -0.41 (about 250u, where x - log1p(x) amplifies it 4-fold): 1100u
    for JAX. (A correction such as Goldberg's, log(u)·x/(u - 1), does not survive jit: XLA
    simplifies (1 + x) - 1 to x.)
    """
    u = ic.float_eps(dtype) / 2
    big_u = (ic.float_eps("float64") if dtype == "float64" else ic.float_eps("float32")) / 2
    residual = mseplug.get_loss(loss).loss.residual
    term = 10 if residual else (1102 if library == "jax" and dtype == "float64" else 202)
    return term * u + (n + k + 2) * big_u


def subnormal_tolerance(dtype: str) -> float:
    """Below the smallest normal number, rounding is absolute: half the subnormal spacing per
    operation; a term takes at most 8 such roundings (dtype_tolerance)."""
    return 8 * ic.smallest_subnormal(dtype) if dtype != "float64" else 0.0


@pytest.mark.parametrize("loss", NAMES)
@budget(10)
@given(data=st.data())
def test_every_dtype_agrees_with_float64(loss: str, data: st.DataObject) -> None:
    """float16/bfloat16/float32/float64 on every backend: the float64 value of the same rounded
    inputs, within dtype_tolerance (so backends agree within twice that)."""
    # Not yet for statistics of their own (R², max_error): their streaming, merging and
    # precision are in tests/streaming/test_accumulator_statistics.py
    skip_if_refused(loss, elementwise=True)
    dtype = data.draw(st.sampled_from(FLOATS if ic.BFLOAT_LIBRARIES else FLOATS[::2]), label="dtype")
    library = data.draw(st.sampled_from([lib for lib in LIBRARIES if holds(lib, dtype)]), label="library")
    # Magnitudes whose squares and sums fit the dtype: range is the business of other tests.
    magnitudes = [1.0, 1e-3, 1e3] if dtype in ("float32", "float64") else [1.0, 0.05, 20.0]
    spec = data.draw(ic.specs(loss, dtypes=(dtype,), rows=st.one_of(st.integers(1, 12), st.sampled_from(
        [300, 2000])), scales=False, nans=False, exact=False, magnitudes=magnitudes), label="spec")
    case = spec.build()
    n = spec.n
    reductions = ("mean",) if case.root or refusal(loss, reduction="sum") else ("mean", "sum", "none")
    reduction = data.draw(st.sampled_from(reductions), label="reduction")
    weight = None if case.sample_weight is None else ic.to_library(case.sample_weight, library)
    options = reduction_keywords(case, reduction)
    with recorded() as records:
        got = loss_function(loss)(ic.to_library(case.y_true, library, dtype),
                                  ic.to_library(case.y_pred, library, dtype),
                                  **case.keywords(sample_weight=weight, **options))
    reference = loss_value(loss, case.y_true, case.y_pred, **case.keywords(**options))
    assert ic.dtype_name(got) == dtype
    if np.all(np.abs(reference) < 0.5 * ic.largest(dtype)):
        assert_close(got, reference, dtype_tolerance(dtype, n, case.k, loss, library),
                     f"{library} {dtype} reduction={reduction}", atol=subnormal_tolerance(dtype))
        assert_quiet(records, reference, f"{library} {dtype}")


# =================================================================================================
# 5. Backends agree (float64): values, gradients, Hessians, conventions
# =================================================================================================
def gradient_difference(got: Any, want: np.ndarray, *, scale: float = 0.0) -> float:
    """The largest difference, relative to the largest entry of ``want`` (or ``scale``, if
    larger); ``inf`` for another shape or NaN elsewhere."""
    got = to_numpy(got)
    if got.shape != want.shape or not np.array_equal(np.isnan(got), np.isnan(want)):
        return math.inf
    scale = max(float(np.max(np.abs(np.nan_to_num(want)), initial=0.0)), scale,
                np.finfo(np.float64).tiny)
    return float(np.max(np.abs(np.nan_to_num(got - want)), initial=0.0)) / scale


AGREE_LIBRARIES = (*LIBRARIES, "matrix")


@pytest.mark.parametrize("loss", NAMES)
@budget(12)
@given(data=st.data())
def test_backends_agree_in_float64(loss: str, data: st.DataObject) -> None:
    """Every backend (and np.matrix): value, reduction, gradient = the float64 reference to 1e-12,
    zero residuals and |r| == delta included (MAE subgradient 0, RMSE gradient 0 at a perfect fit)."""
    # Not yet for statistics of their own (R², max_error): their streaming, merging and
    # precision are in tests/streaming/test_accumulator_statistics.py
    skip_if_refused(loss, elementwise=True)
    library = data.draw(st.sampled_from(AGREE_LIBRARIES), label="library")
    outputs = st.sampled_from([(3,), (2,)]) if library == "matrix" else None
    # magnitude 0: a perfect fit (y_pred == y_true == 0, but for |r| == delta rows)
    spec = data.draw(ic.specs(loss, scales=False, exact=True, outputs=outputs,
                              magnitudes=[1.0, 1e-3, 1e3, 0.0]), label="spec")
    case = spec.build()
    note(describe(case))
    reductions = ("mean",) if case.root or refusal(loss, reduction="sum") else ("mean", "sum", "none")
    reduction = data.draw(st.sampled_from(reductions), label="reduction")
    t, p = ic.to_library(case.y_true, library), ic.to_library(case.y_pred, library)
    w = None if case.sample_weight is None else ic.to_library(
        case.sample_weight, "numpy" if library == "matrix" else library)
    options = reduction_keywords(case, reduction)
    got = loss_function(loss)(t, p, **case.keywords(sample_weight=w, **options))
    want = loss_value(loss, case.y_true, case.y_pred, **case.keywords(**options))
    assert_close(got, want, RTOL, f"{library}: value, reduction={reduction!r}")
    if reduction == "none" or (case.nan_policy == "propagate" and np.isnan(want).any()):
        return
    multioutput = scalar_multioutput(case)
    keywords = case.keywords(sample_weight=w, multioutput=multioutput, reduction=reduction)
    value, slope = mseplug.value_and_grad(loss, t, p, **keywords)
    want_slope = loss_grad(loss, case.y_true, case.y_pred,
                           **case.keywords(multioutput=multioutput, reduction=reduction))
    difference = gradient_difference(slope, want_slope)
    assert difference <= RTOL, (f"{library}: gradient {to_numpy(slope)!r} against the reference "
                                f"{want_slope!r} ({difference:.3g})")
    assert_close(value, loss_value(loss, case.y_true, case.y_pred, **case.keywords(
                     multioutput=multioutput, reduction=reduction)), RTOL, f"{library}: value_and_grad")


HESSIAN_LIBRARIES = tuple(lib for lib in ("torch", "jax") if lib in LIBRARIES)


_jax_hessians: dict[tuple[str, bool], Any] = {}


def jax_hessian(loss: str, weighted: bool) -> Any:
    """``jax.jit(jax.hessian(...))`` of a loss, compiled once per loss (params are traced)."""
    key = (loss, weighted)
    if key not in _jax_hessians:
        import jax

        function = loss_function(loss)

        def value(q: Any, t: Any, w: Any, params: dict[str, Any]) -> Any:
            return function(t, q, sample_weight=w if weighted else None, **params)

        _jax_hessians[key] = jax.jit(jax.hessian(value))
    return _jax_hessians[key]


def hessian(library: str, loss: str, y_true: np.ndarray, y_pred: np.ndarray, weight: Any,
            params: dict[str, float]) -> np.ndarray:
    function = loss_function(loss)
    if library == "torch":
        import torch

        t = torch.asarray(y_true)
        w = None if weight is None else torch.asarray(weight)
        return to_numpy(torch.autograd.functional.hessian(
            lambda q: function(t, q, sample_weight=w, **params), torch.asarray(y_pred)))
    import jax.numpy as jnp

    w = jnp.ones(len(y_true)) if weight is None else jnp.asarray(weight)
    traced = {name: jnp.asarray(value) for name, value in params.items()}
    compiled = jax_hessian(loss, weight is not None)
    return to_numpy(compiled(jnp.asarray(y_pred), jnp.asarray(y_true), w, traced))


@pytest.mark.skipif(not HESSIAN_LIBRARIES, reason="neither torch nor JAX is installed")
@pytest.mark.parametrize("loss", NAMES)
@budget(6)
@given(data=st.data())
def test_hessians_agree_at_the_kinks(loss: str, data: st.DataObject) -> None:
    """torch.autograd.functional.hessian and jax.hessian equal the reference, at zero residuals
    and at |r| == delta too (Huber's second derivative there is 1).

    To 1e-12 of the Hessian's scale: its largest entry, or the loss's curvature at a perfect
    fit if that is larger. Far from 0, log-cosh's second derivative ``sech(r)²`` is below
    float64's rounding of 1 (``1e-16`` at ``|r| = 19``), and torch and JAX differentiate
    ``tanh`` as ``1 - tanh(r)²``, which has an absolute error of about ``1e-16`` there. The
    anchors do no better (at ``r = 18.45``, where ``sech(r)²`` is 3.7e-16, the second
    derivative of ``optax.log_cosh`` under JAX is 3.0e-16 and of ``log(cosh(r))`` under torch
    4.4e-16), so such an entry is held to the curvature's scale, not to its own.
    """
    # Not yet for statistics of their own (R², max_error): their streaming, merging and
    # precision are in tests/streaming/test_accumulator_statistics.py
    skip_if_refused(loss, elementwise=True)
    spec = data.draw(ic.specs(loss, rows=st.just(6), scales=False, nans=False, multioutput=False,
                              outputs=st.just(()), exact="always"), label="spec")  # one JAX compilation
    case = spec.build()
    note(describe(case))
    residual = case.y_pred - case.y_true
    if case.root and loss_value(loss, case.y_true, case.y_pred, sample_weight=case.sample_weight,
                                **case.params) == 0:
        return  # RMSE at a perfect fit (of the rows that weigh) has no Hessian
    want = loss_hessian(loss, case.y_true, case.y_pred, sample_weight=case.sample_weight, **case.params)
    at_fit = 0.0 if case.root else float(np.max(np.abs(loss_hessian(
        loss, case.y_true, case.y_true, sample_weight=case.sample_weight, **case.params))))
    for library in HESSIAN_LIBRARIES:
        got = hessian(library, loss, case.y_true, case.y_pred, case.sample_weight, case.params)
        difference = gradient_difference(got, want, scale=at_fit)
        assert difference <= RTOL, (f"{library}: Hessian {got!r} against the reference {want!r} "
                                    f"(residuals {residual!r})")


# =================================================================================================
# 6. Ranks and devices (one spawn per backend, every case in it)
# =================================================================================================
#: Weight scales of the distributed cases: none, ordinary, and the extremes (1e308: sums overflow).
DISTRIBUTED_SCALES = (None, 1.0, 1e4, 1e-300, 1e300, 1e308)


#: Losses of (S, W) statistics: the workers sum those (statistics of their own, as R²'s, combine
#: by their record: tests/streaming/test_accumulator_statistics.py, test_jax_sharded.py).
ELEMENTWISE = tuple(name for name in NAMES if not refusal(name, elementwise=True))


def distributed_specs(dtypes: tuple[str, ...], rows_multiple: int, per_loss: int) -> list[Spec]:
    """A fixed seed list of cases: every loss, the weight scales, dtypes and options in turn."""
    found = []
    for index in range(per_loss * len(ELEMENTWISE)):
        rng = np.random.default_rng(1700 + index)
        loss, turn = ELEMENTWISE[index % len(ELEMENTWISE)], index // len(ELEMENTWISE) + index
        nan_policy = ("propagate", "omit")[turn % 2]
        found.append(Spec(
            loss=loss, params=ic.example_params(loss), n=rows_multiple * int(rng.integers(1, 9)),
            outputs=((), (3,), (2, 2))[int(rng.integers(3))], dtype=dtypes[(turn // 2) % len(dtypes)],
            magnitude=(1.0, 1e3, 1e-3)[int(rng.integers(3))],
            weight_scale=DISTRIBUTED_SCALES[turn % len(DISTRIBUTED_SCALES)],
            zero_weights=bool(rng.integers(2)),
            multioutput=("uniform_average", "raw_values", "weights")[turn % 3],
            output_scale=(1.0, 1e300, 1e-300)[int(rng.integers(3))], nan_policy=nan_policy,
            nans=nan_policy == "omit", exact_rows=bool(rng.integers(2)), seed=int(rng.integers(2**31))))
    return found


def rank_updates(spec: Spec, index: int) -> list[list[list[int]]]:
    """Each rank's rows, in one to three updates; every third case leaves one rank without data."""
    rng = np.random.default_rng(4200 + index)
    order = rng.permutation(spec.n)
    cut = int(rng.integers(0, spec.n + 1))
    if index % 3 == 0:
        cut = (0, spec.n)[index % 2]  # a rank with no data at all
    updates = []
    for rows in (order[:cut], order[cut:]):
        pieces = int(rng.integers(1, 4))
        bounds = np.sort(rng.integers(0, len(rows) + 1, size=pieces - 1))
        updates.append([piece.tolist() for piece in np.split(rows, bounds)])
    return updates


def case_json(case: Case, **extra: Any) -> dict[str, Any]:
    multioutput = case.multioutput
    if not isinstance(multioutput, str):
        multioutput = np.ravel(multioutput).tolist()
    return {"loss": case.loss, "params": case.params, "y_true": case.y_true.tolist(),
            "y_pred": case.y_pred.tolist(), "dtype": case.dtype, "multioutput": multioutput,
            "nan_policy": case.nan_policy, "sample_weight": None if case.sample_weight is None
            else case.sample_weight.tolist(), **extra}


TORCH_SPECS = distributed_specs(("float64", "float32"), 1, 4) if "torch" in LIBRARIES else []
JAX_SPECS = distributed_specs(("float64", "float32"), 4, 2) if "jax" in LIBRARIES else []


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, Any]]]:
    """Two gloo ranks (tests/distributed_torch_worker.py's launcher), spawned once for every case."""
    import distributed_torch_worker
    import invariants_workers
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    folder = tmp_path_factory.mktemp("invariant_ranks")
    cases = [case_json(spec.build(), updates=rank_updates(spec, index))
             for index, spec in enumerate(TORCH_SPECS)]
    Path(folder, "cases.json").write_text(json.dumps(cases))
    found: list[list[dict[str, Any]]] = distributed_torch_worker.launch(
        folder, world=2, work=invariants_workers.torch_ranks)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(TORCH_SPECS)),
                         ids=[f"{spec.loss}-{index}" for index, spec in enumerate(TORCH_SPECS)])
def test_ranks_all_reduce_to_the_one_call_loss(ranks: list[list[dict[str, Any]]], index: int) -> None:
    """Per-rank Accumulators over a random split (a rank may hold nothing; weights up to 1e308;
    float32 batches), ``mseplug.torch.all_reduce``: the one call on every rank, to 1e-12."""
    spec = TORCH_SPECS[index]
    case = spec.build()
    expected = case.one_shot()
    for rank, found in enumerate(ranks):
        result = found[index]
        where = f"rank {rank}, {spec}, rows {rank_updates(spec, index)}"
        assert "error" not in result, f"{where}: {result}"
        assert_close(result["value"], expected, RTOL, where)
        assert result["count"] == spec.n


@pytest.fixture(scope="module")
def devices(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """JAX on 4 forced host devices, in one subprocess for every case."""
    folder = tmp_path_factory.mktemp("invariant_devices")
    cases = []
    for index, spec in enumerate(JAX_SPECS):
        case = spec.build()
        if index % 2 and case.sample_weight is not None:  # the last device's rows all weigh 0
            case.sample_weight[-spec.n // 4:] = 0.0
        cases.append(case_json(case))
    Path(folder, "cases.json").write_text(json.dumps(cases))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    worker = Path(__file__).parents[1] / "support" / "invariants_workers.py"
    result = subprocess.run([sys.executable, str(worker), "jax", str(Path(folder, "cases.json"))],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    found: list[dict[str, Any]] = json.loads(result.stdout.strip().splitlines()[-1])
    assert found[0] == {"devices": 4}
    return [{**item, "case": case} for item, case in zip(found[1:], cases)]


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(JAX_SPECS)),
                         ids=[f"{spec.loss}-{index}" for index, spec in enumerate(JAX_SPECS)])
def test_devices_psum_statistics_to_the_one_call_loss(devices: list[dict[str, Any]], index: int) -> None:
    """``sufficient_statistics`` under ``shard_map`` on 4 devices, ``jax.lax.psum``, then
    ``loss_from_statistics``: the one call, to 1e-12 (float32 shards); where the weights' sums
    near the float64 limit may overflow (under jit they cannot be read to be scaled), the one
    call or no finite number at all."""
    spec, found = JAX_SPECS[index], devices[index]
    case = found["case"]
    expected = loss_function(spec.loss)(np.asarray(case["y_true"]), np.asarray(case["y_pred"]),
                                        sample_weight=None if case["sample_weight"] is None
                                        else np.asarray(case["sample_weight"]),
                                        multioutput=case["multioutput"], nan_policy=case["nan_policy"],
                                        **case["params"])
    assert "error" not in found, f"{spec}: {found['error']}"
    weights = case["sample_weight"]
    with np.errstate(over="ignore"):
        total_weight = 4.0 * len(case["y_true"]) if weights is None else float(np.sum(weights))
    if total_weight < 1e300:
        assert_close(np.ravel(found["value"]), np.ravel(to_numpy(expected)), RTOL, f"{spec}")
    else:  # statistics beyond float64 (under jit the weights cannot be read to be scaled):
        value = np.ravel(np.asarray(found["value"], np.float64))  # the one call, or no finite number
        if np.isfinite(value).all():
            assert_close(value, np.ravel(to_numpy(expected)), RTOL, f"{spec}")
        else:
            assert not np.isfinite(value).any(), f"{spec}: {value}: some outputs finite, some not"


# =================================================================================================
# 7. Fast paths against the engine, bit for bit
# =================================================================================================
#: Libraries with fast paths count twice (the others' fast_value must say None).
FAST_LIBRARIES = tuple(lib for lib in LIBRARIES for _ in range(2 if lib in ("numpy", "torch", "jax") else 1)
                       if lib != "dask")


@st.composite
def fast_calls(draw: st.DrawFn) -> dict[str, Any]:
    """Calls the fast paths take: 1-D and 2-D float32/float64 arrays of one library, small and
    large, mostly default options; sometimes weights (at scales the fast paths must hand to
    the engine too), a sum, raw values, a NaN. (Statistics of their own take no fast path.)"""
    loss = draw(st.sampled_from(ELEMENTWISE))
    root = mseplug.get_loss(loss).loss.root
    plain = draw(st.integers(0, 2)) > 0  # two calls in three: what the fast paths are for
    if plain:
        columns, weights, reduction, multioutput, nan = None, None, "mean", "uniform_average", False
        columns = draw(st.sampled_from([None, None, None, 1, 3]))
        weights = draw(st.sampled_from([None, None, None, 1.0]))
    else:
        columns = draw(st.sampled_from([None, 1, 3]))
        weights = draw(st.sampled_from([None, 1.0, 1e-12, 1e12]))
        reduction = draw(st.sampled_from(["mean"] + ([] if root else ["sum", "none"])))
        multioutput = draw(st.sampled_from(["uniform_average", "raw_values"]))
        nan = draw(st.booleans())
    return {
        "loss": loss, "library": draw(st.sampled_from(FAST_LIBRARIES)),
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "n": draw(st.one_of(st.integers(1, 20), st.sampled_from([1000, 4099, 65536, 300000]))),
        "columns": columns, "weights": weights, "reduction": reduction, "multioutput": multioutput,
        "nan": nan, "seed": draw(st.integers(0, 2**16)),
    }


def fast_inputs(call: dict[str, Any]) -> tuple[Any, ...]:
    rng = np.random.default_rng(call["seed"])
    shape = (call["n"],) if call["columns"] is None else (call["n"], call["columns"])
    t, p = in_domain(call["loss"], rng.normal(size=shape), rng.normal(size=shape))
    if call["nan"]:
        p.reshape(-1)[int(rng.integers(p.size))] = np.nan
    w = None if call["weights"] is None else rng.uniform(0.0, 2.0, size=call["n"]) * call["weights"]
    lib, dtype = call["library"], call["dtype"]
    return (ic.to_library(t, lib, dtype), ic.to_library(p, lib, dtype),
            None if w is None else ic.to_library(w, lib, dtype))


def assert_same_bits(fast: Any, engine: Any, what: str) -> None:
    assert ic.dtype_name(fast) == ic.dtype_name(engine), (
        f"{what}: the fast path gives {ic.dtype_name(fast)}, the engine {ic.dtype_name(engine)}")
    assert_identical(fast, engine, what)


@budget(80)
@given(call=fast_calls())
def test_fast_paths_are_the_engine_bit_for_bit(call: dict[str, Any]) -> None:
    """Whenever a backend's fast path answers, it is the engine's answer bit for bit (value, and
    value and gradient), same dtype, NaN at the same places."""
    t, p, w = fast_inputs(call)
    backend = mseplug.get_backend(t, p)
    options = make_options(
        mseplug.get_loss(call["loss"]).loss, reduction=call["reduction"],
        multioutput=call["multioutput"], nan_policy="propagate",
        params=ic.example_params(call["loss"]))
    with recorded():
        fast = backend.fast_value(options, t, p, w)
        if fast is not None:
            event("fast_value answered")
            assert_same_bits(fast, pipeline.engine_value(backend, options, t, p, w), f"value {call}")
        scalar = call["reduction"] != "none" and (call["multioutput"] != "raw_values"
                                                  or call["columns"] in (None, 1))
        pair = backend.fast_value_and_grad(options, t, p, w) if scalar else None
        if pair is not None:
            event("fast_value_and_grad answered")
            engine = pipeline.engine_value_and_grad(backend, options, t, p, w)
            assert_same_bits(pair[0], engine[0], f"value of value_and_grad {call}")
            assert_same_bits(pair[1], engine[1], f"gradient of value_and_grad {call}")


def test_fast_rmse_at_300000_rows_is_the_engine() -> None:
    """The reported case: the NumPy shortcut's root (``** 0.5``) and the engine's (``sqrt``)."""
    rng = np.random.default_rng(3)
    t, p = rng.normal(size=300_000), rng.normal(size=300_000)
    backend = mseplug.get_backend(t, p)
    options = make_options(mseplug.get_loss("rmse").loss)
    fast = backend.fast_value(options, t, p, None)
    assert fast is not None, "the commonest call takes no fast path"
    assert_same_bits(fast, pipeline.engine_value(backend, options, t, p, None), "rmse at n = 300000")
    assert_same_bits(mseplug.rmse(t, p), pipeline.engine_value(backend, options, t, p, None), "mseplug.rmse")


def test_fast_rmse_takes_the_engines_root_where_a_power_of_one_half_differs() -> None:
    """Means whose ``m ** 0.5`` (libm's ``pow``) is not ``sqrt(m)``, one in a few thousand: the
    fast path's RMSE is the engine's ``sqrt``, bit for bit (the report's ``** 0.5`` root would
    differ by one ulp on each). Two predictions against zeros: the mean is ``(a² + b²) / 2``."""
    rng = np.random.default_rng(8)
    pairs = rng.uniform(0.5, 4.0, (200_000, 2))
    means = (pairs[:, 0] * pairs[:, 0] + pairs[:, 1] * pairs[:, 1]) / 2
    differ = [i for i, m in enumerate(means.tolist()) if m ** 0.5 != math.sqrt(m)][:20]
    # (a libm whose pow is correctly rounded has none: then the first pairs still hold the rule)
    backend = mseplug.get_backend(np.zeros(2))
    options = make_options(mseplug.get_loss("rmse").loss)
    for i in differ or range(20):
        t, p = np.zeros(2), pairs[i].copy()
        fast = backend.fast_value(options, t, p, None)
        assert fast is not None, "two float64 predictions take no fast path"
        assert_same_bits(fast, np.sqrt(means[i]), f"fast rmse of {p!r}")
        assert_same_bits(fast, pipeline.engine_value(backend, options, t, p, None), f"engine {p!r}")
