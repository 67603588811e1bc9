"""The Array API namespace the NumPy backend computes through (its kernels and the records)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _namespace() -> Any:
    """NumPy 2 is an Array API namespace itself (and the cheapest to call); 1.x needs the shim."""
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np
    import array_api_compat.numpy  # pragma: no cover - NumPy 1.x

    return array_api_compat.numpy  # pragma: no cover


#: The namespace the NumPy backend computes through.
NAMESPACE: Any = _namespace()
