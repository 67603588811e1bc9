"""The NumPy backend's own statistics for losses with statistics of their own (r2,
explained_variance, max_error): blocked, one read, threaded for large inputs. They equal the
generic definition (``moments.part_statistics`` on whole columns) to rounding, and are the same
bit for bit whatever the number of threads."""

from __future__ import annotations

import numpy as np
import pytest

import mseplug
from mseplug.backend.numpy import statistics as fast
from mseplug.backend.numpy import walk
from mseplug.backend.numpy.backend import NumpyBackend
from mseplug.engine import kernels, moments
from mseplug.loss.options import Options, make_options
from mseplug.loss.statistics import Centred, Maximum, Statistics, Sum

NAMES = ["r2", "explained_variance", "max_error"]


def _options(name: str, omit: bool) -> Options:
    return make_options(mseplug.get_loss(name).loss, nan_policy="omit" if omit else "propagate")


def _columns(y: np.ndarray, p: np.ndarray, w: np.ndarray | None):
    return kernels.columns(NumpyBackend(), y, p, w, wide=True)


def _data(n: int, k: int, dtype, nan: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    shape = (n,) if k == 1 else (n, k)
    y = (3.0 + rng.standard_normal(shape)).astype(dtype)
    p = (y + 0.3 * rng.standard_normal(shape)).astype(dtype)
    if nan:
        y[rng.random(shape) < 0.05] = np.nan
        p[rng.random(shape) < 0.05] = np.nan
    w = rng.uniform(0.1, 2.0, size=n).astype(dtype) * 2.0**-40  # scaled weights, as the engine's
    return y, p, w


def _compare(got: dict, want: dict) -> None:
    """Equal to 1e-13 relative; with several outputs to 1e-12: the generic definition sums each
    column of an ``(n, K)`` array row after row (NumPy's pairwise sum runs along the last axis
    only), about ten times less exact than the blocks' sums (see the test against fsum)."""
    assert set(got) == set(want)
    for key in want:
        a, b = np.asarray(got[key]), np.asarray(want[key])
        assert a.shape == b.shape and a.dtype == np.float64, key
        if key.endswith(".shift") or key == "absolute_residual":  # data points: exactly
            assert a.tobytes() == b.tobytes(), key
        rtol = 1e-13 if a.shape == (1,) else 1e-12
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, err_msg=key)


#: (name, outputs, weighted): max_error takes one output and no weights.
CASES = [(name, k, weighted) for name in NAMES for k in (1, 3) for weighted in (False, True)
         if name != "max_error" or (k == 1 and not weighted)]


@pytest.mark.parametrize("omit", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 1000, 3 * fast.BLOCK + 17])
@pytest.mark.parametrize(("name", "k", "weighted"), CASES)
def test_numpy_statistics_equal_the_generic_definition(name, k, weighted, n, dtype, omit) -> None:
    spec = mseplug.get_loss(name).loss.statistics
    y, p, w = _data(n, k, dtype, nan=omit)
    c = _columns(y, p, w if weighted else None)
    keep = kernels.kept(c, _options(name, omit)) if omit else None
    got = fast.part_statistics(spec, c, keep)
    want = moments.part_statistics(np, _options(name, omit), c, keep)
    _compare(got, want)


def test_large_inputs_over_threads_equal_the_generic_definition(monkeypatch) -> None:
    """Sizes past the threading threshold (lowered here), weighted, several outputs, omitted NaN."""
    monkeypatch.setattr(fast, "PARALLEL_MIN", 1 << 14)
    monkeypatch.setenv("MSEPLUG_NUM_THREADS", "3")
    for name in ("r2", "explained_variance"):
        spec = mseplug.get_loss(name).loss.statistics
        for omit in (False, True):
            y, p, w = _data(5 * fast.BLOCK + 3, 3, np.float64, nan=omit, seed=1)
            c = _columns(y, p, w)
            keep = kernels.kept(c, _options(name, omit)) if omit else None
            _compare(fast.part_statistics(spec, c, keep),
                     moments.part_statistics(np, _options(name, omit), c, keep))


def test_a_term_of_its_own_is_applied_block_by_block() -> None:
    """A record's term without a NumPy form of its own: its definition on each block."""
    spec = Statistics((Sum("cube", lambda xp, t, p: (t - p) ** 3),
                       Centred("half", lambda xp, t, p: t / 2),
                       Maximum("top", lambda xp, t, p: xp.abs(p))), lambda xp, s: s["cube"])
    loss = mseplug.Loss("stats_cube_example", None, statistics=spec)
    for k in (1, 3):
        y, p, w = _data(2 * fast.BLOCK + 5, k, np.float64, nan=False, seed=2)
        c = _columns(y, p, w)
        _compare(fast.part_statistics(spec, c, None),
                 moments.part_statistics(np, make_options(loss), c, None))


@pytest.mark.parametrize("name", NAMES)
def test_the_statistics_are_the_same_bit_for_bit_whatever_the_number_of_threads(
        name, monkeypatch) -> None:
    """Threads take blocks as they come, but block statistics are combined in block order."""
    rng = np.random.default_rng(5)
    n = 3 * walk.PARALLEL_MIN + 777
    y = rng.standard_normal(n)
    p = y + rng.standard_normal(n) * 0.3
    w = None if name == "max_error" else rng.uniform(0.5, 2.0, n)
    spec = mseplug.get_loss(name).loss.statistics
    c = _columns(y, p, w)
    seen = set()
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("MSEPLUG_NUM_THREADS", threads)
        stats = fast.part_statistics(spec, c, None)
        seen.add(tuple((key, value.tobytes()) for key, value in sorted(stats.items())))
    assert len(seen) == 1


@pytest.mark.parametrize("k", [1, 3])
def test_the_blocked_sums_are_exact_to_1e_13(k) -> None:
    """Against math.fsum of the float64 terms, per output, several blocks."""
    import math

    y, p, w = _data(3 * fast.BLOCK + 17, k, np.float32, nan=False, seed=4)
    spec = mseplug.r2.loss.statistics
    got = fast.part_statistics(spec, _columns(y, p, w), None)
    t = y.astype(np.float64).reshape(-1, k)
    r = t - p.astype(np.float64).reshape(-1, k)
    w64 = w.astype(np.float64)
    for j in range(k):
        d = t[:, j] - t[0, j]
        exact = {"squared_residual": math.fsum((w64 * r[:, j] * r[:, j]).tolist()),
                 "target.sum": math.fsum((w64 * d).tolist()),
                 "target.squares": math.fsum((w64 * d * d).tolist())}
        for key, value in exact.items():
            assert got[key][j] == pytest.approx(value, rel=1e-13), (key, j)


def test_float32_targets_far_from_zero_keep_their_digits() -> None:
    """float32 targets of mean 1e6 over several blocks: computed in float64 block by block."""
    rng = np.random.default_rng(7)
    n = 3 * fast.BLOCK + 11
    y = (1e6 + rng.normal(size=n)).astype(np.float32)
    p = (y.astype(np.float64) + 0.3 * rng.normal(size=n)).astype(np.float32)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y64, p64 = y.astype(np.float64), p.astype(np.float64)
    for name, reference in (("r2", sklearn_metrics.r2_score),
                            ("explained_variance", sklearn_metrics.explained_variance_score)):
        stats = mseplug.sufficient_statistics(name, y, p)  # float64 statistics
        value = float(mseplug.loss_from_statistics(name, stats))
        assert value == pytest.approx(reference(y64, p64), rel=1e-12)
        got = mseplug.get_loss(name)(y, p)  # a float32 value: the float64 one rounded
        assert got.dtype == np.float32 and float(got) == pytest.approx(value, rel=2**-24)
