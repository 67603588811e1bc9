"""Backend detection, plugins (in-process and entry points) and import hygiene."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import mseplug
from mseplug.api import backends as _registry


def run_python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env_path = [str(path)] if path else []
    prefix = f"import sys; sys.path[:0] = {env_path!r}\n"
    return subprocess.run([sys.executable, "-c", prefix + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_import_mseplug_imports_numpy_only() -> None:
    result = run_python("""
        import sys, mseplug
        mseplug.mse([1.0, 2.0], [1.0, 3.0])
        mseplug.Accumulator("mse").update([1.0], [2.0])
        heavy = ("torch", "jax", "jaxlib", "sklearn", "dask", "scipy", "pandas", "pyarrow")
        print(sorted(m for m in heavy if m in sys.modules))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_backends_lists_installed_and_get_backend_follows_y_pred() -> None:
    names = mseplug.backends()
    assert names[0] == "numpy" and "array_api" in names
    assert mseplug.get_backend(np.zeros(2), np.zeros(2)).name == "numpy"
    assert mseplug.get_backend([1.0], [2.0]).name == "numpy"
    xps = pytest.importorskip("array_api_strict")
    assert mseplug.get_backend(np.zeros(2), xps.zeros(2)).name == "array_api"
    assert mseplug.get_backend(xps.zeros(2), np.zeros(2)).name == "numpy"
    assert mseplug.get_backend([1.0, 2.0], xps.zeros(2)).name == "array_api"


def test_mixed_libraries_follow_y_pred() -> None:
    xps = pytest.importorskip("array_api_strict")
    value = mseplug.mse(np.array([1.0, 2.0]), xps.asarray([1.0, 4.0]))
    assert type(value).__module__.startswith("array_api_strict") and float(value) == 2.0
    value = mseplug.mse(xps.asarray([1.0, 2.0]), np.array([1.0, 4.0]))
    assert isinstance(value, np.ndarray) and float(value) == 2.0


def test_forced_backend_converts_inputs() -> None:
    pytest.importorskip("array_api_strict")
    value = mseplug.mse(np.array([0.0, 0.0]), np.array([1.0, 3.0]), backend="array_api")
    assert float(value) == 5.0
    with pytest.raises(TypeError, match="backend"):
        mseplug.mse([0.0], [1.0], backend=3)


class Boxed:
    """A toy array type that no built-in backend knows."""

    def __init__(self, values) -> None:
        self.values = np.asarray(values, dtype=np.float64)


class BoxedBackend(mseplug.Backend):
    name = "boxed"

    @classmethod
    def array_types(cls):
        return (Boxed,)

    def namespace(self, x):
        import array_api_compat.numpy

        return array_api_compat.numpy

    def convert(self, x, name, like=None):
        return x.values if isinstance(x, Boxed) else np.asarray(x, dtype=np.float64)

    def to_numpy(self, x):
        return x.values


def test_register_backend_in_process() -> None:
    with pytest.raises(TypeError, match="backend_cls"):
        mseplug.register_backend(object)  # type: ignore[arg-type]
    backend = mseplug.register_backend(BoxedBackend)
    try:
        assert mseplug.get_backend(Boxed([1.0]), Boxed([2.0])) is backend
        assert "boxed" in mseplug.backends()
        assert float(mseplug.mae(Boxed([0.0, 0.0]), Boxed([1.0, 3.0]))) == 2.0
        assert float(mseplug.mae([0.0, 0.0], [1.0, 3.0], backend="boxed")) == 2.0
    finally:
        _registry._registered[:] = [b for b in _registry._registered if b.name != "boxed"]
        _registry._by_type.clear()


def test_entry_point_plugins_load_and_a_broken_one_warns(tmp_path: Path) -> None:
    dist = tmp_path / "mseplug_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mseplug-toy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[mseplug.backends]\ntoy = toy_plugin:ToyBackend\nbroken = no_such_module:Backend\n"
    )
    (tmp_path / "toy_plugin.py").write_text(textwrap.dedent("""
        import numpy as np, mseplug

        class Toy:
            def __init__(self, values):
                self.values = np.asarray(values, dtype=float)

        class ToyBackend(mseplug.Backend):
            name = "toy"

            @classmethod
            def array_types(cls):
                return (Toy,)

            def namespace(self, x):
                import array_api_compat.numpy
                return array_api_compat.numpy

            def convert(self, x, name, like=None):
                return x.values if isinstance(x, Toy) else np.asarray(x, dtype=float)
    """))
    result = run_python("""
        import warnings, mseplug
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            names = mseplug.backends()
            again = mseplug.backends()
        from toy_plugin import Toy
        print(names == again, "toy" in names, "broken" in names)
        print(float(mseplug.mse(Toy([0.0, 0.0]), Toy([2.0, 2.0]))))
        print(len(caught), "broken" in str(caught[0].message))
    """, path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["True True False", "4.0", "1 True"]


def test_registry_is_safe_under_concurrent_first_use() -> None:
    result = run_python("""
        import threading, numpy as np, mseplug
        out, barrier = [], threading.Barrier(8)
        def work(i):
            barrier.wait()
            out.append((mseplug.get_backend(np.zeros(1), np.zeros(1)).name,
                        float(mseplug.mse(np.zeros(3), np.full(3, float(i))))))
        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print(sorted(out) == [("numpy", float(i * i)) for i in range(8)])
    """)
    assert result.stdout.strip() == "True", result.stderr


def test_concurrent_calls_equal_serial_calls(rng) -> None:
    arrays = [(rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))) for _ in range(8)]
    serial = [float(mseplug.huber(t, p, multioutput=[1.0, 3.0])) for t, p in arrays]
    results: list[float | None] = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        results[i] = float(mseplug.huber(*arrays[i], multioutput=[1.0, 3.0]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == serial
