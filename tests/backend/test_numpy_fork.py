"""Fork safety: a process forked after mseplug used its NumPy worker pool computes the same losses.

Inputs of ``PARALLEL_MIN`` (2**20) elements or more are summed over a pool of
threads that lives for the whole process. ``fork`` copies the pool object but
not its threads, so a child that used the parent's pool would wait forever;
the child must make its own. Each test runs in a fresh interpreter that
imports only NumPy and mseplug (the pytest process may hold torch or JAX
threads, and forking after JAX warns), and every wait is bounded, so a
regression fails with a message instead of hanging.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork on Windows")

#: Seconds a child may take for its losses (they take well under one).
CHILD_TIMEOUT = 60

_COMMON = f"""
import json, multiprocessing, sys
import numpy as np
import mseplug
from mseplug.backend.numpy import walk as numpy_blocks

N = 2 * numpy_blocks.PARALLEL_MIN + 12345  # > 2**21: several blocks over the threads
rng = np.random.default_rng(11)
DATA = {{dtype: (a.astype(dtype), b.astype(dtype))
        for dtype in ("float64", "float32")
        for a, b in [(rng.normal(size=N), rng.normal(size=N) * 3)]}}
LOSSES = ("mse", "mae", "huber", "log_cosh")


def losses(_=None):
    # Each large loss of the cases, as the exact float64 bits (float.hex).
    found = {{}}
    for dtype, (a, b) in DATA.items():
        for loss in LOSSES:
            found[f"{{loss}}/{{dtype}}"] = float(mseplug.get_loss(loss)(a, b)).hex()
    return found


def in_children():
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        return pool.map_async(losses, range(4)).get(timeout={CHILD_TIMEOUT})
    except multiprocessing.TimeoutError:
        return "timeout"
    finally:
        pool.terminate()
        pool.join()
"""


def _run(body: str) -> dict:
    code = _COMMON + textwrap.dedent(body) + textwrap.dedent("""
        for name in ("torch", "jax", "dask"):
            assert name not in sys.modules, name  # nothing else starts threads
        print(json.dumps(result))
    """)
    # The interpreter's default warning filters, whatever PYTHONWARNINGS the session has.
    env = {name: value for name, value in os.environ.items() if name != "PYTHONWARNINGS"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=4 * CHILD_TIMEOUT, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no warning either
    return json.loads(done.stdout)


def test_forked_children_compute_large_losses_as_the_parent() -> None:
    result = _run("""
        if __name__ == "__main__":
            parent = losses()  # the parent's pool now has threads
            assert numpy_blocks._pool is not None
            result = {"parent": parent, "children": in_children(), "parent_after": losses()}
    """)
    assert result["children"] != "timeout", "a forked child hung on the parent's thread pool"
    assert len(result["children"]) == 4
    for child in result["children"]:
        assert child == result["parent"]  # bit for bit
    assert result["parent_after"] == result["parent"]  # the parent's pool still works


def test_a_fork_while_the_pool_is_being_created_leaves_the_child_a_usable_lock() -> None:
    """Another thread of the parent may hold the pool's lock at the moment of the fork."""
    result = _run("""
        if __name__ == "__main__":
            assert numpy_blocks._pool is None
            with numpy_blocks._pool_lock:  # as a thread creating the pool would
                pool = multiprocessing.get_context("fork").Pool(2)  # forks its workers now
            try:
                children = pool.map_async(losses, range(2)).get(timeout=60)
            except multiprocessing.TimeoutError:
                children = "timeout"
            finally:
                pool.terminate()
                pool.join()
            result = {"parent": losses(), "children": children}
    """)
    assert result["children"] != "timeout", "a forked child waited for its parent's lock"
    for child in result["children"]:
        assert child == result["parent"]
