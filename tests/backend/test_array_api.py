"""The generic Array API backend is as exact as the others, and keeps every array on its device."""

from __future__ import annotations

import numpy as np
import pytest

import mseplug
from mseplug.engine import pipeline
from mseplug.loss import make_options

xps = pytest.importorskip("array_api_strict")


def test_float32_columns_accumulate_in_float64() -> None:
    """(5e6, 2) float32 per-output sums: float32 accumulation was 5e-3 off; float64 is 1e-8."""
    rng = np.random.default_rng(11)
    a = rng.random((5_000_000, 2), dtype=np.float32)
    b = rng.random((5_000_000, 2), dtype=np.float32)
    exact = ((a.astype(np.float64) - b) ** 2).mean(axis=0)
    got = mseplug.mse(xps.asarray(a), xps.asarray(b), multioutput="raw_values")
    assert got.dtype == xps.float32
    np.testing.assert_allclose(np.asarray(got._array, np.float64), exact, rtol=1e-6)
    stats, _ = pipeline.statistics(mseplug.get_backend(xps.asarray(a)),
                                   make_options(mseplug.get_loss("mae").loss),
                                   xps.asarray(a), xps.asarray(b))
    assert stats[0].dtype == xps.float64
    exact_abs = np.abs(a.astype(np.float64) - b).sum(axis=0)
    np.testing.assert_allclose(np.asarray(stats[0]._array), exact_abs, rtol=1e-12)


@pytest.mark.parametrize("loss", mseplug.losses()[:6])
def test_arrays_on_another_device_stay_there(loss) -> None:
    device = xps.Device("device1")
    rng = np.random.default_rng(12)
    y_true, y_pred, w = rng.normal(size=(10, 2)), rng.normal(size=(10, 2)), rng.uniform(size=10)
    t, p = xps.asarray(y_true, device=device), xps.asarray(y_pred, device=device)
    sw = xps.asarray(w, device=device)
    function = mseplug.get_loss(loss)
    for multioutput in ([0.3, 0.7], xps.asarray([0.3, 0.7], device=device), "raw_values"):
        got = function(t, p, sample_weight=sw, multioutput=multioutput)
        assert got.device == device
        expected = function(y_true, y_pred, sample_weight=w,
                            multioutput=multioutput if isinstance(multioutput, (str, list))
                            else [0.3, 0.7])
        np.testing.assert_allclose(np.asarray(got._array), expected, rtol=1e-12)
    grad = mseplug.grad(loss, t, p, sample_weight=sw, multioutput=[0.3, 0.7])
    assert grad.device == device
    np.testing.assert_allclose(np.asarray(grad._array),
                               mseplug.grad(loss, y_true, y_pred, sample_weight=w,
                                            multioutput=[0.3, 0.7]), rtol=1e-12)
    with pytest.raises(ValueError, match="multioutput weights must be finite, >= 0"):
        function(t, p, multioutput=xps.asarray([0.3, -0.7], device=device))
