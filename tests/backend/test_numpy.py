"""The NumPy kernels on large inputs: exact to the dtype, split over workers, the same from any
thread (no BLAS threading inside a worker, whatever the calling thread)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mseplug
from mseplug.backend.numpy import kernels
from mseplug.backend.numpy import walk as blocks


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
        assert blocks.small_total(kernel.scalar, a, b, (0.7,)) == \
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
