"""MkDocs hooks: pages that list what the loss registry holds are written from it.

``docs/reference/losses.md`` holds one marker where the built-in losses go;
this hook replaces it with a ``::: mseplug.<name>`` directive per built-in
loss, in the registry's order, so a new loss appears in the API reference
without an edit here (``docs/griffe_registry.py`` gives mkdocstrings the
functions themselves).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

#: ``<!-- the built-in losses ... -->``: where the directives go.
MARKER = re.compile(r"^<!-- the built-in losses\b.*?-->$", flags=re.MULTILINE)


def loss_directives() -> str:
    """One ``::: mseplug.<name>`` directive per built-in loss, separated by blank lines."""
    registry = importlib.import_module("mseplug.api.registry")
    importlib.import_module("mseplug")  # registers the built-ins
    return "\n\n".join(f"::: mseplug.{name}" for name in registry.builtins())


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Write the registry's lists into the page's markers."""
    return MARKER.sub(lambda _: loss_directives(), markdown)
