"""Shared fixtures: the ``backend`` fixture over installed backends, float64 references, tolerances.

``MSEPLUG_TEST_BACKENDS=numpy,torch`` narrows the backends under test.
JAX runs with ``jax_enable_x64`` on so float64 can be compared everywhere.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest

if importlib.util.find_spec("jax") is not None:
    import jax

    jax.config.update("jax_enable_x64", True)

if importlib.util.find_spec("hypothesis") is not None:
    from hypothesis import settings

    # CI (CI=true) draws the same cases every run, so a landing never hangs on luck;
    # elsewhere every run explores new ones (reproduce with --hypothesis-seed=N).
    settings.register_profile("ci", derandomize=True, database=None)
    if os.environ.get("CI"):
        settings.load_profile("ci")

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


@pytest.fixture(params=installed_backends())
def backend(request: pytest.FixtureRequest) -> Lib:
    """Each installed array library in turn (numpy, torch, jax, array_api_strict)."""
    return Lib(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
