"""The array libraries under test: which are installed (``MSEPLUG_TEST_BACKENDS`` narrows them),
how to make arrays of each from NumPy and read them back, and tolerances per dtype."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import numpy as np

ALL_BACKENDS = ("numpy", "torch", "jax", "array_api_strict")


def installed_backends() -> tuple[str, ...]:
    wanted = os.environ.get("MSEPLUG_TEST_BACKENDS")
    names = tuple(n.strip() for n in wanted.split(",")) if wanted else ALL_BACKENDS
    return tuple(n for n in names if importlib.util.find_spec(n) is not None)


#: Relative tolerance of a loss value, by dtype name.
RTOL = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 2e-5, "float64": 1e-12}


class Lib:
    """Make arrays of one backend's library from NumPy, and read them back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.module: Any = importlib.import_module(name)

    def asarray(self, x: Any, dtype: str = "float64") -> Any:
        x = np.asarray(x)
        if self.name == "numpy":
            return x.astype(dtype)
        if self.name == "torch":
            return self.module.asarray(x).to(getattr(self.module, dtype))
        if self.name == "jax":
            import jax.numpy as jnp

            return jnp.asarray(x, dtype=getattr(jnp, dtype))
        return self.module.asarray(x.astype(dtype))

    def to_numpy(self, x: Any) -> np.ndarray:
        if self.name == "torch":
            return x.detach().to(self.module.float64).cpu().numpy()
        if self.name == "array_api_strict":
            return np.asarray(x._array) if hasattr(x, "_array") else np.from_dlpack(x)
        return np.asarray(x, dtype=np.float64)


def as_library(library: str, x: Any, *, chunks: int) -> Any:
    """``x`` (NumPy, kept in its dtype) as an array of ``library``: a backend's, or a Dask array
    in row chunks of ``chunks``."""
    x = np.asarray(x)
    if library == "numpy":
        return x
    if library == "torch":
        import torch

        return torch.tensor(x)
    if library == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    if library == "array_api_strict":
        import array_api_strict

        return array_api_strict.asarray(x)
    if library == "dask":
        import dask.array as da

        return da.from_array(x, chunks=chunks)
    raise AssertionError(library)


def as_numpy(value: Any) -> np.ndarray:
    """A result of any library (a Dask one computed, a torch one detached) in float64 NumPy."""
    value = value.compute() if hasattr(value, "compute") else value
    return np.asarray(value.detach() if hasattr(value, "detach") else value, np.float64)
