"""The generic backend: any array library that array-api-compat knows (Dask, CuPy, strict, ...).

It adds nothing to the :class:`~mseplug.Backend` engine but the detection:
every computation goes through the array's Array API namespace.
"""

from __future__ import annotations

from typing import Any

from mseplug._engine import Backend


class ArrayAPIBackend(Backend):
    """Fallback for arrays with an Array API namespace that no other backend claims."""

    name = "array_api"
    library = "array_api_compat"

    @classmethod
    def owns(cls, x: object) -> bool:
        import array_api_compat

        return bool(array_api_compat.is_array_api_obj(x))

    def same_library(self, x: Any, like: Any) -> bool:
        return self.namespace(x) is self.namespace(like)

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        compute = getattr(x, "compute", None)  # Dask: materialise first
        x = compute() if callable(compute) else x
        try:
            return np.asarray(x)
        except (TypeError, ValueError, RuntimeError):
            return np.from_dlpack(x)
