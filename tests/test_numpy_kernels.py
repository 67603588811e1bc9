"""The NumPy kernels' machinery: BLAS held to one thread while blocks are large, and results
that do not depend on block sizes, threads or whether BLAS could be held."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import mseplug
from mseplug._backends import blas_threads
from mseplug._backends import numpy_kernels as kernels

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads_now() -> list[int]:
    return [info["num_threads"] for info in threadpoolctl.threadpool_info()
            if info["user_api"] == "blas"]


def test_holds_nest_and_overlap_then_restore() -> None:
    before = blas_threads_now()
    assert before, "NumPy's BLAS is visible to threadpoolctl"
    with blas_threads.one_blas_thread() as held:
        assert held and blas_threads_now() == [1] * len(before)
        with blas_threads.one_blas_thread():
            assert blas_threads_now() == [1] * len(before)
        assert blas_threads_now() == [1] * len(before)  # the outer hold is still on
    assert blas_threads_now() == before

    # From other Python threads a hold may not take (threadpoolctl lets one thread control
    # OpenBLAS); it then says so, and the kernels keep small blocks. Either way nothing leaks.
    seen = []
    barrier = threading.Barrier(4)

    def hold() -> None:
        with blas_threads.one_blas_thread() as held:
            barrier.wait()
            seen.append((held, blas_threads_now()))
            barrier.wait()

    workers = [threading.Thread(target=hold) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(held == (threads == [1] * len(before)) for held, threads in seen)
    assert blas_threads_now() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_large_inputs_agree_with_and_without_held_blas(monkeypatch, dtype, loss) -> None:
    rng = np.random.default_rng(21)
    n = kernels.PARALLEL_MIN + 12_345  # large blocks, two workers, a ragged last block
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    r = b.astype(np.float64) - a.astype(np.float64)
    e = {"mse": r * r, "mae": np.abs(r),
         "huber": np.where(np.abs(r) <= 1, 0.5 * r * r, np.abs(r) - 0.5)}[loss]
    exact = math.fsum(e.tolist()) / n
    held = float(mseplug.get_loss(loss)(a, b))
    monkeypatch.setattr(blas_threads, "_libraries", [])  # as without threadpoolctl
    unheld = float(mseplug.get_loss(loss)(a, b))
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    assert held == pytest.approx(exact, rel=tolerance)
    assert unheld == pytest.approx(exact, rel=tolerance)
