"""The generic backend: any array library that array-api-compat knows (Dask, CuPy, strict, ...).

Every computation goes through the array's Array API namespace, except for
Dask: its arrays (and the columns of Dask DataFrames) stay lazy, and the
engine's kernels run on each chunk (:mod:`mseplug.backend.array_api.dask`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mseplug.backend.array_api import dask as dask_blocks
from mseplug.engine import overflow
from mseplug.engine.backend import Backend
from mseplug.engine.checks import Checked
from mseplug.engine.finalize import ScaledStatistics
from mseplug.loss.options import Options


class ArrayAPIBackend(Backend):
    """Fallback for arrays with an Array API namespace that no other backend claims."""

    name = "array_api"
    library = "array_api_compat"

    @classmethod
    def owns(cls, x: object) -> bool:
        import array_api_compat

        if isinstance(x, (np.ndarray, np.generic)):  # NumPy's are the NumPy backend's
            return False
        return bool(array_api_compat.is_array_api_obj(x)) or dask_blocks.is_dask_frame(x)

    def same_library(self, x: Any, like: Any) -> bool:
        return self.namespace(x) is self.namespace(like)

    def convert(self, x: Any, name: str, like: Any = None) -> Any:
        if dask_blocks.is_dask_frame(x):
            x = dask_blocks.as_array(x)
        return super().convert(x, name, like)

    def to_numpy(self, x: Any) -> Any:
        compute = getattr(x, "compute", None)  # Dask: materialise first
        x = compute() if callable(compute) else x
        try:
            return np.asarray(x)
        except (TypeError, ValueError, RuntimeError):
            return np.from_dlpack(x)

    # -- Dask: nothing is read before the caller computes --------------------------------
    def readable(self, x: Any) -> bool:
        return not dask_blocks.is_dask_array(x)

    def run(self, kernel: Any, options: Any, *arrays: Any) -> Any:
        if dask_blocks.is_dask_array(arrays[1]):
            return dask_blocks.run(self, kernel, options, *arrays)
        # An overflow is inf (finish warns at the caller's line); a library computing with NumPy
        # (array-api-strict) would add NumPy's own warning from inside mseplug.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return super().run(kernel, options, *arrays)

    def statistics(self, options: Options, checked: Checked) -> ScaledStatistics:
        if dask_blocks.is_dask_array(checked.y_pred):
            return dask_blocks.statistics(self, options, checked.y_true, checked.y_pred,
                                          checked.sample_weight)
        return super().statistics(options, checked)

    def times_power_of_two(self, x: Any, exponent: Any) -> Any:
        if dask_blocks.is_dask_array(x):
            return dask_blocks.ldexp(x, exponent)
        return super().times_power_of_two(x, exponent)

    def unscaled_statistics(self, statistics: ScaledStatistics) -> tuple[Any, Any]:
        """Dask's lazily, warning when computed if they exceed float64 from finite inputs."""
        if not dask_blocks.is_dask_array(statistics.total):
            return super().unscaled_statistics(statistics)
        return dask_blocks.unscaled(statistics)

    def finish(self, value: Any, checked: Checked) -> Any:
        """A LossOverflowWarning when an eager value is inf although its inputs are finite (a
        lazy Dask value warns when it is computed)."""
        if dask_blocks.is_dask_array(value):
            return value
        xp = self.namespace(value)
        if bool(xp.any(xp.isinf(value))) and not any(bool(xp.any(xp.isinf(x)))
                                                     for x in (checked.y_true, checked.y_pred)):
            overflow.warn(value.dtype)
        return value

    def fetch(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not any(dask_blocks.is_dask_array(value) for value in values):
            return super().fetch(values)
        import dask

        return tuple(np.asarray(value) for value in dask.compute(*values))

    def rows(self, checked: Checked) -> Any:
        if dask_blocks.is_dask_array(checked.y_pred):
            return dask_blocks.rows(checked.y_pred)
        return super().rows(checked)
