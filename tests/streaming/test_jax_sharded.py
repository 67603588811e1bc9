"""JAX over 4 devices: shard_map + psum of sufficient statistics is exact, value and gradient.

The devices are forced host devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``,
which must be set before JAX starts), so tests/distributed_jax_worker.py runs in a
subprocess and reports what it measured as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import distributed_cases as cases
import pytest

import mseplug

pytest.importorskip("jax")
pytestmark = pytest.mark.slow  # one subprocess compiling every case for 4 devices

ALL_LOSSES = (*mseplug.losses(), cases.CAUCHY)
WORKER = Path(__file__).parents[1] / "support" / "distributed_jax_worker.py"


@pytest.fixture(scope="module")
def measured() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run([sys.executable, str(WORKER)], capture_output=True, text=True,
                            timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("option", cases.OPTIONS)
@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_shard_map_psum_of_statistics_is_exact(measured, loss, option) -> None:
    if loss in mseplug.losses() and not cases.applies(loss, option):
        pytest.skip(f"{loss} does not take the inputs of {option!r} in parts (a property of "
                    "its record)")
    assert measured["devices"] == 4
    found = measured[f"{loss}/{option}"]
    assert found["value"] < 1e-12, found
    assert found["gradient"] < 1e-12, found
    assert found["finite_gradient"] and found["sharded_gradient"] == 4


def test_pmap_psum_is_exact_and_a_naive_mean_is_not(measured) -> None:
    assert measured["pmap"] < 1e-12
    assert measured["naive_pmean_rmse"] > 0.01  # what the statistics are for
