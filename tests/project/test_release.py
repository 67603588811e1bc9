"""The release: ``python -m build`` makes a wheel and an sdist that install and work.

Both are built from this checkout, their contents and metadata are checked
(the license ships in both), and each is installed into a fresh virtual
environment that holds nothing but the dependencies the wheel declares (NumPy,
array-api-compat, ...; no extras), installed with pip from the
configured index (the local one on CI: nothing leaves the machine). A smoke
test then runs there, in a process that has never seen this checkout.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SMOKE = """
import sys
import mseplug

assert mseplug.__version__ == sys.argv[1], mseplug.__version__
assert mseplug.__file__.startswith(sys.prefix), mseplug.__file__  # the installed copy
assert float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0])) == 4e8
assert mseplug.grad("mae", [1.0, 2.0], [1.0, 4.0]).tolist() == [0.0, 0.5]
assert mseplug.losses()[:6] == ("mse", "mae", "rmse", "huber", "pinball", "log_cosh")
acc = mseplug.Accumulator("rmse")
acc.update([0.0, 0.0], [3.0, 4.0])
assert abs(float(acc.compute()) - 12.5 ** 0.5) < 1e-15
assert mseplug.backends()[0] == "numpy"
for framework in ("torch", "jax", "sklearn"):
    assert framework not in sys.modules, framework
print("smoke ok")
"""


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT)
    return out


@pytest.fixture(scope="module")
def version() -> str:
    import mseplug

    return mseplug.__version__


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory, dist: Path, version: str) -> Path:
    """A new venv holding the wheel's declared dependencies only, from the configured index."""
    with zipfile.ZipFile(next(dist.glob(f"mseplug-{version}-*.whl"))) as archive:
        metadata = archive.read(f"mseplug-{version}.dist-info/METADATA").decode()
    dependencies = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
                    if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any(d.startswith("numpy") for d in dependencies), dependencies
    where = tmp_path_factory.mktemp("venv") / "env"
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *dependencies)
    return python


def test_wheel_ships_the_package_license_and_metadata(dist: Path, version: str) -> None:
    wheel = next(dist.glob(f"mseplug-{version}-py3-none-any.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"mseplug-{version}.dist-info/METADATA").decode()
        entry_points = archive.read(f"mseplug-{version}.dist-info/entry_points.txt").decode()
        license_text = archive.read(f"mseplug-{version}.dist-info/licenses/LICENSE").decode()
    assert {"mseplug/__init__.py", "mseplug/py.typed", "mseplug/backend/numpy/backend.py",
            "mseplug/loss/builtin.py", "mseplug/cli/main.py"} <= names
    assert not any(name.startswith(("tests/", "docs/", "benchmarks/")) for name in names)
    assert license_text == (ROOT / "LICENSE").read_text()
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert "Project-URL: Documentation, https://mseplug.readthedocs.io/" in metadata
    assert "mseplug = mseplug.cli.main:main" in entry_points


def test_sdist_ships_sources_docs_tests_and_license(dist: Path, version: str) -> None:
    sdist = next(dist.glob(f"mseplug-{version}.tar.gz"))
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    expected = {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "mkdocs.yml",
                "mseplug/__init__.py", "tests/project/test_docs.py", "docs/formula.md"}
    assert expected <= names, expected - names
    assert not any(name.startswith((".venv/", "site/", "docs/generated/")) for name in names)


def test_wheel_and_sdist_install_into_a_fresh_venv_and_work(
    dist: Path, version: str, fresh_python: Path, tmp_path: Path
) -> None:
    for artifact in (f"mseplug-{version}-py3-none-any.whl", f"mseplug-{version}.tar.gz"):
        _run(fresh_python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--force-reinstall", dist / artifact)
        smoke = _run(fresh_python, "-c", SMOKE, version, cwd=tmp_path)  # not this checkout's cwd
        assert smoke.stdout.strip() == "smoke ok", artifact
        demo = _run(fresh_python.parent / "mseplug", "demo", cwd=tmp_path)  # the console script
        assert "house prices" in demo.stdout and "numpy" in demo.stdout
