"""The house rules, checked on the source: layers that import only from below, no import cycle
(``TYPE_CHECKING`` blocks included), no list of loss names outside the records, and
``import mseplug`` that imports NumPy and array-api-compat only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import mseplug
from mseplug.api.registry import builtins

PACKAGE = Path(mseplug.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))

#: The layers, bottom up: a module may import its own layer's modules and any lower layer's.
#: The integrations (torch, sklearn, the command line) may also use the public package
#: ``mseplug`` itself, as users do; nothing below them may.
LAYERS = (
    ("mseplug._typing",),
    ("mseplug.loss",),
    ("mseplug.engine",),
    ("mseplug.backend",),
    ("mseplug.api",),
    ("mseplug.streaming",),
    ("mseplug.torch", "mseplug.sklearn", "mseplug.cli"),
    ("mseplug", "mseplug.__main__"),
)
INTEGRATIONS = LAYERS[-2]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


NAMES = {module_name(path) for path in MODULES}


def imported_modules(path: Path) -> set[str]:
    """The mseplug modules ``path`` imports, at any depth, ``TYPE_CHECKING`` blocks included."""
    tree = ast.parse(path.read_text())
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if base.startswith("mseplug"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mseplug"))
    return {name for name in found if name in NAMES} - {module_name(path)}


GRAPH = {module_name(path): imported_modules(path) for path in MODULES}


def layer(module: str) -> int:
    """The index of the layer ``module`` belongs to (its longest matching prefix)."""
    best, depth = len(LAYERS) - 1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    return best


def test_there_is_no_import_cycle_at_all() -> None:
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [])


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_each_module_imports_only_from_its_layer_or_below(module: str) -> None:
    mine = layer(module)
    upward = []
    for imported in sorted(GRAPH[module]):
        theirs = layer(imported)
        public = imported == "mseplug" and mine == len(LAYERS) - 2  # an integration's facade use
        if theirs > mine and not public:
            upward.append(f"{imported} (layer {theirs} > {mine})")
    assert upward == [], f"{module} imports from above: {upward}"


def test_the_engine_imports_no_backend_and_no_integration() -> None:
    engine = [name for name in GRAPH if layer(name) <= layer("mseplug.engine")]
    offending = {name: sorted(i for i in GRAPH[name] if layer(i) > layer("mseplug.engine"))
                 for name in engine}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_records_name_no_backend() -> None:
    for path in (PACKAGE / "losses").rglob("*.py"):
        text = path.read_text()
        for word in ("mseplug.backends", "mseplug._backends", "native"):
            assert word not in text, f"{path.name} mentions {word!r}"


def test_import_mseplug_imports_numpy_and_array_api_compat_only() -> None:
    """No framework, no scikit-learn, no command line: those load when their arrays or
    subpackages are used."""
    code = (
        "import sys; import mseplug; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'jax', 'jaxlib', "
        "'sklearn', 'dask', 'pyarrow', 'pandas', 'scipy', 'array_api_strict', 'tqdm') "
        "or m.startswith('mseplug.cli') or m.startswith('mseplug.backend.torch') "
        "or m.startswith('mseplug.backend.jax') "
        "or m in ('mseplug.torch', 'mseplug.sklearn', 'mseplug.streaming.torch_state')); "
        "print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            found.add(id(body[0].value))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_code_names_a_builtin_loss_outside_its_record(path: Path) -> None:
    """Loss names live in the records: no tuple of names, no ``name == "huber"`` branch."""
    if path == PACKAGE / "losses" / "builtin.py":  # the records themselves
        return
    names = frozenset(builtins())
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    offences = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and side.value in names:
                    offences.append(f"line {node.lineno}: compares with {side.value!r}")
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            listed = [e.value for e in node.elts if isinstance(e, ast.Constant)
                      and e.value in names and id(e) not in docstrings]
            if len(listed) >= 2:
                offences.append(f"line {node.lineno}: lists {listed}")
    assert offences == []


def test_layers_cover_every_module() -> None:
    """Every module belongs to a declared layer (a new subpackage needs a place in LAYERS)."""
    unplaced = [name for name in NAMES if layer(name) == len(LAYERS) - 1
                and name not in ("mseplug", "mseplug.__main__")]
    assert unplaced == []
