"""Run a callback right after a given module is first imported (a post-import hook).

``torch.compile`` cannot trace the backend registry's first look at a tensor
type: it takes a lock and imports mseplug's torch backend. ``import mseplug``
therefore detects the types of frameworks already imported; for a framework
imported *after* mseplug (``import mseplug`` sorts before ``import torch``),
this finder does the same as soon as the framework's own import has finished,
then removes itself. It never imports anything itself, and a failing callback
never breaks the user's import.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any


class _AfterImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of each awaited module so ``callback`` runs once it has executed."""

    def __init__(self, names: Sequence[str], callback: Callable[[], None]) -> None:
        self._waiting = set(names)
        self._callback = callback
        self._finding = threading.local()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        if fullname not in self._waiting or getattr(self._finding, "active", False):
            return None
        self._finding.active = True
        try:  # the spec the other finders give (this finder declines while they look)
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding.active = False
        loader = None if spec is None else spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            self._done(fullname)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def _done(self, fullname: str) -> None:
        self._waiting.discard(fullname)
        if not self._waiting and self in sys.meta_path:
            sys.meta_path.remove(self)
        try:
            self._callback()
        except Exception:  # pragma: no cover - an optimisation; the lazy path still works
            pass


def after_import(names: Sequence[str], callback: Callable[[], None]) -> None:
    """Call ``callback`` after each of ``names`` (top-level modules not yet imported) is."""
    missing = [name for name in names if name not in sys.modules]
    if missing:
        sys.meta_path.insert(0, _AfterImport(missing, callback))
