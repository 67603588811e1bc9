"""Shared fixtures: the ``backend`` fixture over installed backends, and a seeded ``rng``.

``MSEPLUG_TEST_BACKENDS=numpy,torch`` narrows the backends under test.
JAX runs with ``jax_enable_x64`` on so float64 can be compared everywhere.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from libraries import Lib, installed_backends

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


@pytest.fixture(params=installed_backends())
def backend(request: pytest.FixtureRequest) -> Lib:
    """Each installed array library in turn (numpy, torch, jax, array_api_strict)."""
    return Lib(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)

collect_ignore_glob = ["support/*"]  # shared helpers, not tests (nor doctests)
