"""The NumPy kernels on large inputs: exact to the dtype, split over workers, the same from any
thread (no BLAS threading inside a worker, whatever the calling thread)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mseplug
from mseplug.backend.numpy import deviances, kernels
from mseplug.backend.numpy import walk as blocks
from mseplug.loss import builtin


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_large_inputs_are_exact_to_the_dtype(dtype, loss) -> None:
    rng = np.random.default_rng(21)
    n = blocks.PARALLEL_MIN + 12_345  # large blocks, two workers, a ragged last block
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    r = b.astype(np.float64) - a.astype(np.float64)
    e = {"mse": r * r, "mae": np.abs(r),
         "huber": np.where(np.abs(r) <= 1, 0.5 * r * r, np.abs(r) - 0.5)}[loss]
    exact = math.fsum(e.tolist()) / n
    got = float(mseplug.get_loss(loss)(a, b))
    assert got == pytest.approx(exact, rel=1e-6 if dtype == np.float32 else 1e-12)


def test_dot_products_stay_below_blas_threading(monkeypatch) -> None:
    """Every BLAS dot covers at most DOT elements, whether by np.dot or by np.vecdot's rows."""
    sizes = []
    real_dot, real_vecdot = np.dot, kernels._VECDOT

    def counting_dot(x, y):
        sizes.append(x.shape[-1])
        return real_dot(x, y)

    def counting_vecdot(x, y):
        sizes.extend([x.shape[-1]] * x.shape[0])
        return real_vecdot(x, y)

    monkeypatch.setattr(kernels.np, "dot", counting_dot)
    if real_vecdot is not None:
        monkeypatch.setattr(kernels, "_VECDOT", counting_vecdot)
    d = np.random.default_rng(1).standard_normal(blocks.BLOCKS[8] + 5)
    assert kernels.dot(d, d) == pytest.approx(float(real_dot(d, d)), rel=1e-14)
    assert max(sizes) <= kernels.DOT[8] and sum(sizes) == d.shape[0]


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 15, 16])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_a_few_elements_in_python_floats_equal_numpys_sums_bit_for_bit(n, dtype) -> None:
    rng = np.random.default_rng(n)
    for kernel in (kernels.SQUARED, kernels.ABSOLUTE, kernels.HUBER):
        a, b = rng.standard_normal(n).astype(dtype), (3 * rng.standard_normal(n)).astype(dtype)
        assert blocks.flat_total(kernel, a, b, a.dtype, (0.7,)) == \
            blocks._single_block_total(kernel, a, b, (0.7,))
    values = rng.standard_normal(n * 8)
    assert blocks.pairwise_sum(values.tolist()) == float(np.add.reduce(values))


@pytest.mark.parametrize("loss", ["mse", "mae", "huber", "log_cosh"])
def test_the_total_is_the_same_bit_for_bit_whatever_the_number_of_threads(loss, monkeypatch) -> None:
    """Threads take blocks as they come, but block sums are added in block order."""
    rng = np.random.default_rng(5)
    n = 3 * blocks.PARALLEL_MIN + 777
    a, b = rng.standard_normal(n), rng.standard_normal(n) * 3
    function = mseplug.get_loss(loss)
    totals = set()
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("MSEPLUG_NUM_THREADS", threads)
        totals.add(float(function(a, b)))
    assert len(totals) == 1


# -- the deviances' native kernels -------------------------------------------------------------
DEVIANCES = [("poisson_deviance", ()), ("gamma_deviance", ())] + [
    ("tweedie_deviance", (power,)) for power in (0.0, 1.0, 1.5, 2.0, 3.0, -1.0, -0.5, 2.5, 4.0,
                                                 1.0 + 2.0 ** -30, 2 - 2.0 ** -30, 1, 2)]


def _same_bits(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """Equal bit for bit (the sign of a zero too), NaN where the other is NaN."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    nan = np.isnan(ours) & np.isnan(theirs)
    bits = ours.view(f"i{ours.dtype.itemsize}") == theirs.view(f"i{theirs.dtype.itemsize}")
    return bool(np.all(nan | bits))


def _deviance_data(loss: str, params: tuple, n: int, seed: int, dtype: type, special: bool,
                   *, share: float = 0.5, near: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Targets in the loss's domain, predictions close to them (``share`` of them, with
    |ŷ/y - 1| < ``near``: the series) or far; zeros in y where the domain has them, negative
    y below power 0; with ``special`` infinities, NaN, tiny and huge values here and there
    (blocks the kernels leave to the record)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.01, 5.0, n) * np.exp(rng.normal(0.0, 1.0, n))
    close = rng.random(n) < share
    p = np.where(close, y * rng.uniform(1 - near, 1 + near, n),
                 y * np.exp(rng.normal(0.0, 2.0, n)))
    power = params[0] if params else (1.0 if loss == "poisson_deviance" else 2.0)
    if power < 2:
        y[rng.random(n) < 0.05] = 0.0
    if power <= 0:
        y[rng.random(n) < 0.05] *= -1
        p[rng.random(n) < 0.02] = 1.0
        p[rng.random(n) < 0.01] = 1e-3
    same = rng.random(n) < 0.01  # ŷ = y exactly
    p[same] = np.where(y[same] > 0, y[same], p[same])
    if special:
        k = rng.integers(0, n, 8)
        p[k[0]], y[k[1]], p[k[2]], y[k[3]] = np.inf, np.inf, 1e-300, 1e300
        p[k[4]], y[k[5]], p[k[6]], y[k[7]] = 1e300, 1e-300, np.nan, np.nan
    with np.errstate(over="ignore"):
        return y.astype(dtype), p.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("loss", "params"), DEVIANCES)
def test_deviance_kernels_are_the_record_element_by_element(loss, params, dtype) -> None:
    """The native kernel of a deviance gives each element the record's loss bit for bit: the
    series only where it is taken, the direct form elsewhere, the record on blocks with
    infinities or NaN."""
    record = mseplug.get_loss(loss).loss
    native = kernels.kernel_for(record)
    assert native is kernels.NATIVE[record.elementwise] and native.pair is not None
    for seed, share in ((0, 0.5), (1, 0.5), (2, 0.5), (3, 0.97)):  # (0.97: the whole block's series)
        for special in (False, True):
            y, p = _deviance_data(loss, params, 20_000, seed, dtype, special, share=share,
                                  near=0.1 if share < 0.9 else 0.005)
            for start, stop in ((0, 20_000), (3, 11), (7, 8200)):  # and short, odd blocks
                t, q = y[start:stop], p[start:stop]
                with np.errstate(all="ignore"):
                    expected = np.asarray(record.pointwise(kernels.NAMESPACE, t, q, params))
                ours = native.pair(t, q, dtype, params)
                assert _same_bits(ours, expected), (loss, params, seed, special, start)
    # Strided inputs (a column of a table)
    y, p = _deviance_data(loss, params, 9_000, 7, np.float64, False)
    table = np.stack([y, p], axis=1)
    with np.errstate(all="ignore"):
        expected = np.asarray(record.pointwise(kernels.NAMESPACE, y, p, params))
    assert _same_bits(native.pair(table[:, 0], table[:, 1], np.float64, params), expected)
    # Rows of several outputs (the blocks of column_totals)
    ours = native.pair(y.reshape(-1, 3), p.reshape(-1, 3), np.float64, params)
    assert ours.shape == (3_000, 3) and _same_bits(ours.reshape(-1), expected)


def _native_totals_are_the_generic_ones(native: kernels.BlockKernel, generic: kernels.BlockKernel,
                                        y: np.ndarray, p: np.ndarray, params: tuple[float, ...],
                                        monkeypatch: pytest.MonkeyPatch) -> float:
    """The native kernel's totals are the generic kernel's bit for bit: one block and several,
    float64 and float32, weighted, and over threads (more than PARALLEL_MIN elements, the sum
    still in order); returns the threaded total."""
    for n in (kernels.GENERIC_BLOCK + 1, kernels.PIECED_BLOCK - 5, y.shape[0]):
        for dtype in (np.float64, np.float32):
            with np.errstate(all="ignore"):
                t, q = y[:n].astype(dtype), p[:n].astype(dtype)
                ours = blocks.flat_total(native, t, q, dtype, params)
                theirs = blocks.flat_total(generic, t, q, dtype, params)
            assert ours == theirs or (math.isnan(ours) and math.isnan(theirs)), (n, dtype)
    w = np.random.default_rng(2).uniform(0.0, 2.0, y.shape[0])
    with np.errstate(all="ignore"):
        ours_w = blocks.weighted_flat_totals(native, y, p, w, np.float64, params)
        theirs_w = blocks.weighted_flat_totals(generic, y, p, w, np.float64, params)
    assert _same_bits(ours_w[0], theirs_w[0]) and _same_bits(ours_w[1], theirs_w[1])
    # More than PARALLEL_MIN elements: threads take the blocks, the sum is still in order
    big_y = np.tile(y, blocks.PARALLEL_MIN // y.shape[0] + 1)
    big_p = np.tile(p, blocks.PARALLEL_MIN // p.shape[0] + 1)
    monkeypatch.setenv("MSEPLUG_NUM_THREADS", "2")
    with np.errstate(all="ignore"):
        ours = blocks.parallel_total(native, big_y, big_p, np.float64, params)
        theirs = blocks.parallel_total(generic, big_y, big_p, np.float64, params)
    assert ours == theirs or (math.isnan(ours) and math.isnan(theirs))
    return ours


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize(("loss", "params"), DEVIANCES)
def test_deviance_kernels_total_the_generic_sum_bit_for_bit(loss, params, special, monkeypatch
                                                            ) -> None:
    """Over many blocks (and threads) the native kernel's total is the generic kernel's, the
    record block by block, bit for bit: the same losses summed in the same pieces and order;
    so are the weighted totals."""
    record = mseplug.get_loss(loss).loss
    native, generic = kernels.kernel_for(record), kernels.generic_kernel(record)
    y, p = _deviance_data(loss, params, 3 * kernels.PIECED_BLOCK + 1_234, 11, np.float64,
                          special)
    _native_totals_are_the_generic_ones(native, generic, y, p, params, monkeypatch)


@pytest.mark.parametrize(("loss", "params"), [("poisson_deviance", {}), ("gamma_deviance", {}),
                                              ("tweedie_deviance", {"power": 1.5}),
                                              ("tweedie_deviance", {"power": 3.0}),
                                              ("msle", {})])
def test_the_fast_path_checks_a_domain_from_the_blocks_least_values(loss, params) -> None:
    """A loss with a domain takes the NumPy fast path, which checks the domain from the least
    value of each block it reads: the engine's value bit for bit inside the domain; a value
    outside it (or a NaN) leaves the call to the engine, which names it (or propagates it)."""
    from mseplug.engine import pipeline
    from mseplug.loss.options import make_options

    function = mseplug.get_loss(loss)
    options = make_options(function.loss, params=params)
    backend = mseplug.get_backend(np.ones(3))
    rng = np.random.default_rng(4)
    for n in (100, kernels.PIECED_BLOCK - 3, 3 * kernels.PIECED_BLOCK + 5):
        y = rng.uniform(0.5, 5.0, n)
        p = y * rng.uniform(0.7, 1.3, n)
        if loss != "gamma_deviance" and params.get("power", 1.0) < 2:
            y[n // 3] = 0.0  # the least value allowed, inclusive bound
        fast = backend.fast_value(options, y, p, None)
        assert isinstance(fast, np.ndarray)  # the fast path took the call (None: the engine)
        assert _same_bits(fast, pipeline.engine_value(backend, options, y, p, None))
        assert _same_bits(function(y, p, **params), fast)
        outside = p.copy()
        outside[n - 2] = -1.0
        assert backend.fast_value(options, y, outside, None) is None
        with pytest.raises(ValueError, match=rf"y_pred\[{n - 2}\] is -1"):
            function(y, outside, **params)
        missing = y.copy()
        missing[n // 2] = np.nan
        assert backend.fast_value(options, missing, p, None) is None
        assert math.isnan(float(function(missing, p, **params)))


# -- the relative errors' native kernels (MSLE, RMSLE, MAPE) -----------------------------------
RELATIVE = [("msle", ()), ("rmsle", ()), ("mape", (2.0 ** -52,)), ("mape", (0.1,)),
            ("mape", (1e-300,)), ("mape", (np.float64(0.5),))]  # (a NumPy scalar: the record)


def _relative_data(loss: str, n: int, seed: int, dtype: type, special: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Targets and predictions of every size (MSLE's just above -1 too, MAPE's zeros and
    negative values); with ``special`` infinities, NaN, ±0, tiny and huge values and values
    outside MSLE's domain here and there (the kernels have no branch: the record's losses)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(-0.99, 5.0, n) * np.exp(rng.normal(0.0, 2.0, n))
    p = np.where(rng.random(n) < 0.5, y * rng.uniform(0.9, 1.1, n),
                 np.exp(rng.normal(0.0, 3.0, n)) - 0.5)
    if loss == "mape":
        y[rng.random(n) < 0.05] = 0.0
        y[rng.random(n) < 0.3] *= -1
    else:
        y = np.maximum(y, -1 + 2.0 ** -20 * rng.random(n))
        near = rng.random(n) < 0.03
        y[near] = -1 + 2.0 ** -rng.integers(1, 53, near.sum())
        p = np.maximum(p, -1 + 2.0 ** -30)
    same = rng.random(n) < 0.01  # ŷ = y exactly
    p[same] = y[same]
    if special:
        k = rng.integers(0, n, 12)
        p[k[0]], y[k[1]], p[k[2]], y[k[3]] = np.inf, np.inf, 1e-300, 1e300
        p[k[4]], y[k[5]], p[k[6]], y[k[7]] = 1e300, 5e-324, np.nan, np.nan
        p[k[8]], y[k[9]], p[k[10]], y[k[11]] = -np.inf, -0.0, -1.0, -3.0
    with np.errstate(over="ignore"):
        return y.astype(dtype), p.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("loss", "params"), RELATIVE)
def test_relative_kernels_are_the_record_element_by_element(loss, params, dtype) -> None:
    """The native kernel of MSLE (RMSLE's too) and MAPE gives each element the record's loss
    bit for bit, on any values: inside and outside the domain, NaN, infinities, ±0."""
    record = mseplug.get_loss(loss).loss
    native = kernels.kernel_for(record)
    assert native is kernels.NATIVE[record.elementwise] and native.pair is not None
    assert native.block > kernels.GENERIC_BLOCK and native.piece == kernels.GENERIC_BLOCK
    for seed in range(3):
        for special in (False, True):
            y, p = _relative_data(loss, 20_000, seed, dtype, special)
            for start, stop in ((0, 20_000), (3, 11), (7, 8200), (5, 6)):
                t, q = y[start:stop], p[start:stop]
                with np.errstate(all="ignore"):
                    expected = np.asarray(record.pointwise(kernels.NAMESPACE, t, q, params))
                ours = native.pair(t, q, dtype, params)
                assert _same_bits(ours, expected), (loss, params, seed, special, start)
    y, p = _relative_data(loss, 9_000, 7, np.float64, True)
    table = np.stack([y, p], axis=1)  # strided inputs: a column of a table
    with np.errstate(all="ignore"):
        expected = np.asarray(record.pointwise(kernels.NAMESPACE, y, p, params))
    assert _same_bits(native.pair(table[:, 0], table[:, 1], np.float64, params), expected)
    ours = native.pair(y.reshape(-1, 3), p.reshape(-1, 3), np.float64, params)  # rows of outputs
    assert ours.shape == (3_000, 3) and _same_bits(ours.reshape(-1), expected)
    # float16 inputs in the float32 work dtype, as the walk hands them over
    with np.errstate(all="ignore"):
        t16, p16 = y[:500].astype(np.float16), p[:500].astype(np.float16)
        expected = np.asarray(record.pointwise(kernels.NAMESPACE, t16.astype(np.float32),
                                               p16.astype(np.float32), params))
    assert _same_bits(native.pair(t16, p16, np.float32, params), expected)


@pytest.mark.parametrize("special", [False, True])
@pytest.mark.parametrize(("loss", "params"), RELATIVE)
def test_relative_kernels_total_the_generic_sum_bit_for_bit(loss, params, special, monkeypatch
                                                            ) -> None:
    """Over many blocks (and threads) the native kernel's total is the generic kernel's bit for
    bit, weighted too; and a call's value is the engine's (the generic path)."""
    record = mseplug.get_loss(loss).loss
    native, generic = kernels.kernel_for(record), kernels.generic_kernel(record)
    y, p = _relative_data(loss, 3 * kernels.PIECED_BLOCK + 1_234, 11, np.float64, special)
    ours = _native_totals_are_the_generic_ones(native, generic, y, p, params, monkeypatch)
    assert math.isfinite(ours) != special  # (the special values make it inf or NaN)


@pytest.mark.parametrize("loss", ["msle", "rmsle", "mape"])
def test_relative_calls_are_the_engines_value_bit_for_bit(loss) -> None:
    """The fast path (native kernel, MSLE's domain from the blocks' least values) and the
    engine's general path give one value, for a long input and a short one."""
    from mseplug.engine import pipeline
    from mseplug.loss.options import make_options

    function = mseplug.get_loss(loss)
    options = make_options(function.loss, params={})
    backend = mseplug.get_backend(np.ones(3))
    for n in (50, 5 * kernels.PIECED_BLOCK + 3):
        y, p = _relative_data(loss, n, n, np.float64, False)
        fast = backend.fast_value(options, y, p, None)
        assert isinstance(fast, np.ndarray)
        engine = pipeline.engine_value(backend, options, y, p, None)
        assert _same_bits(fast, engine) and _same_bits(function(y, p), fast)
        assert _same_bits(function(y.reshape(-1, 1), p.reshape(-1, 1)), fast)  # one column


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_relative_kernels_are_the_record_on_any_floats(data) -> None:
    """Any floats (NaN, infinities, subnormals) of either dtype and any epsilon: the record."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    loss = data.draw(st.sampled_from(["msle", "mape"]))
    n = data.draw(st.integers(1, 40))
    values = hnp.arrays(dtype, n, elements=hnp.from_dtype(np.dtype(dtype)))
    y, p = data.draw(values), data.draw(values)
    params = (data.draw(st.floats(1e-300, 1e300)),) if loss == "mape" else ()
    record = mseplug.get_loss(loss).loss
    with np.errstate(all="ignore"):
        expected = np.asarray(record.pointwise(kernels.NAMESPACE, y, p, params))
    ours = kernels.kernel_for(record).pair(y, p, dtype, params)
    assert _same_bits(ours, expected)


# -- the pinball loss's native kernel -----------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("alpha", [0.5, 0.1, 0.9, 1.0, np.float64(0.3)])
def test_pinball_kernel_is_the_record_element_by_element(alpha, dtype) -> None:
    """max(-α·r, (1 - α)·r) in place gives each element the record's loss bit for bit: NaN,
    infinities and signed zeros too, rows of several outputs, and a NumPy α (not a weak scalar:
    the record's own function, whose float32 residuals become float64)."""
    rng = np.random.default_rng(8)
    r = (rng.standard_normal(5_000) * np.exp(rng.normal(0, 5, 5_000))).astype(dtype)
    r[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, np.finfo(dtype).max]
    params = (alpha,)
    with np.errstate(all="ignore"):
        expected = np.asarray(builtin.pinball(kernels.NAMESPACE, r, alpha))
        ours = kernels.PINBALL.block_losses(r.copy(), params)
        rows = kernels.PINBALL.block_losses(r.reshape(-1, 2).copy(), params)
    assert _same_bits(ours, expected) and _same_bits(rows.reshape(-1), expected)
    assert ours.dtype == (np.float64 if type(alpha) is not float else dtype)
    assert kernels.kernel_for(mseplug.get_loss("pinball").loss) is kernels.PINBALL


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_pinball_kernel_totals_the_generic_sum_bit_for_bit(alpha, monkeypatch) -> None:
    """Blocks of PIECED_BLOCK summed in GENERIC_BLOCK pieces: the generic kernel's total bit for
    bit (one block, several, float32, weighted, over threads), and a call's value is it."""
    record = mseplug.get_loss("pinball").loss
    rng = np.random.default_rng(13)
    n = 3 * kernels.PIECED_BLOCK + 1_234
    y = rng.standard_normal(n)
    p = y + rng.standard_normal(n) * np.exp(rng.normal(0.0, 3.0, n))
    total = _native_totals_are_the_generic_ones(kernels.PINBALL, kernels.generic_kernel(record),
                                                y, p, (alpha,), monkeypatch)
    copies = blocks.PARALLEL_MIN // n + 1  # (the threaded total's input: the data tiled)
    exact = math.fsum(builtin.pinball(np, np.tile(p - y, copies), alpha).tolist())
    assert total == pytest.approx(exact, rel=1e-13)
    value = float(mseplug.pinball(y, p, alpha=alpha))
    generic = blocks.flat_total(kernels.generic_kernel(record), y, p, np.float64, (alpha,)) / n
    assert value == generic


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("share", [0.0, 0.3, 0.6, 0.9, 1.0])
def test_x_minus_log1p_is_the_records_whatever_the_share_of_its_series(share, dtype) -> None:
    """The series gathered (a few elements take it), the direct form gathered (most do) or the
    series of the whole block (nearly all do): the record's ``x - log1p(x)`` bit for bit."""
    rng = np.random.default_rng(int(10 * share))
    n = 10_000
    below = deviances._SERIES_BELOW  # (the switch itself takes the direct form)
    x = np.where(rng.random(n) < share, rng.uniform(-below, below, n),
                 rng.choice([-1.0, 1.0], n) * rng.uniform(below, 1e3, n)).clip(-0.999, None)
    x[:4] = [0.0, -0.0, 1e30, -below] if share < 1 else [0.0, -0.0, 1e-30, 0.999 * below]
    x = x.astype(dtype)
    small = np.abs(x) < deviances._SERIES_BELOW
    assert np.count_nonzero(small) == pytest.approx(share * n, abs=0.02 * n)
    with np.errstate(all="ignore"):  # (as the kernels run: the far elements' series overflow)
        ours = deviances._x_minus_log1p(x, np.empty_like(x), np.abs(x), np.empty(n, bool))
        assert _same_bits(ours, np.asarray(builtin.x_minus_log1p(np, x)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("coefficients", [
    deviances._SERIES, deviances._tweedie_series(1.5), deviances._tweedie_series(3.0),
    (0.0, 0.0, 2.0, 0.0, -1.0, 0.0, 0.5), (0.0, 0.0, 0.0), (0.0, 0.0, 3.0), (1.0, -2.0, 0.0),
    (0.0, 1e-50, 0.0, 1.0)])
def test_horner_is_the_records_loop_bit_for_bit(coefficients, dtype) -> None:
    """The kernels' Horner (zero coefficients not added, leading ones skipped) is the record's
    ``series = 0·s; series = c + s·series`` bit for bit, the sign of a zero too."""
    rng = np.random.default_rng(3)
    s = (rng.uniform(-0.2, 0.2, 4_000) * 10.0 ** rng.integers(-30, 1, 4_000)).astype(dtype)
    s[:6] = [0.0, -0.0, 1e-45, -1e-45, 0.1, -0.1]
    expected = 0 * s
    for coefficient in coefficients:
        expected = coefficient + s * expected
    assert _same_bits(deviances._horner(s, coefficients).copy(), expected)
