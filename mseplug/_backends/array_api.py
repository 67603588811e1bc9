"""The generic backend: any array library that array-api-compat knows (Dask, CuPy, strict, ...).

Every computation goes through the array's Array API namespace, except for
Dask: its arrays (and the columns of Dask DataFrames) stay lazy, and the
engine's kernels run on each chunk (:mod:`mseplug._backends.dask_blocks`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mseplug._backends import dask_blocks
from mseplug._engine import Backend, Checked


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
        return super().run(kernel, options, *arrays)

    def statistics(self, options: Any, y_true: Any, y_pred: Any, sample_weight: Any = None, *,
                   partial: bool = False) -> Any:
        if not (dask_blocks.is_dask_array(y_pred) or dask_blocks.is_dask_frame(y_pred)):
            return super().statistics(options, y_true, y_pred, sample_weight, partial=partial)
        c = self.check(options, y_true, y_pred, sample_weight, partial=partial)
        return dask_blocks.statistics(options, c.y_true, c.y_pred, c.sample_weight), c

    def unscaled_statistics(self, statistics: Any) -> tuple[Any, Any]:
        if dask_blocks.is_dask_array(statistics.total):
            return dask_blocks.unscaled(statistics)
        return super().unscaled_statistics(statistics)

    def fetch(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not any(dask_blocks.is_dask_array(value) for value in values):
            return super().fetch(values)
        import dask

        return tuple(np.asarray(value) for value in dask.compute(*values))

    def rows(self, checked: Checked) -> Any:
        if dask_blocks.is_dask_array(checked.y_pred):
            return dask_blocks.rows(checked.y_pred)
        return super().rows(checked)
