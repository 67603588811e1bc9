"""The house rules a newcomer relies on, checked on the source: no import cycles, small modules,
no list of loss names outside the registry, and mseplug.torch on public names only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mseplug

PACKAGE = Path(mseplug.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob("*.py"))
BUILTIN_NAMES = frozenset(mseplug.losses()[:6])


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """mseplug modules imported by ``path`` (at any depth, except under ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    skipped = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
               and getattr(block.test, "id", "") == "TYPE_CHECKING"
               for node in ast.walk(block)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mseplug"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("mseplug"))
    names = {module_name(p) for p in MODULES}
    return {name for name in found if name in names} - {module_name(path)}


def test_no_import_cycles() -> None:
    graph = {module_name(path): imported_modules(path) for path in MODULES}
    graph["mseplug"] = set()  # the package's __init__ imports everything: not an edge back
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def test_torch_integration_uses_public_names_only() -> None:
    tree = ast.parse((PACKAGE / "torch.py").read_text())
    # Its own implementation modules (mseplug._torch_*) are part of the integration.
    private = [node.module for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module
               and node.module.startswith("mseplug._")
               and not node.module.startswith("mseplug._torch_")]
    private += [f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == "mseplug" and node.attr.startswith("_")]
    assert private == []


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
    """Loss names live in the registry: no tuple of names, no ``name == "huber"`` branch."""
    if path.name in ("_losses.py", "_api.py"):  # the records and their documented functions
        return
    tree = ast.parse(path.read_text())
    docstrings = _docstrings(tree)
    exports = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
               and any(getattr(target, "id", "") == "__all__" for target in node.targets)}
    offences = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Constant) and side.value in BUILTIN_NAMES:
                    offences.append(f"line {node.lineno}: compares with {side.value!r}")
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and id(node) not in exports:
            names = [e.value for e in node.elts if isinstance(e, ast.Constant)
                     and e.value in BUILTIN_NAMES and id(e) not in docstrings]
            if len(names) >= 2:
                offences.append(f"line {node.lineno}: lists {names}")
    assert offences == []
