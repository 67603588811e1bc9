"""MkDocs hooks: pages that list what the loss registry holds are written from it.

``docs/reference/losses.md`` holds one marker where the built-in losses go;
this hook replaces it with a ``::: mseplug.<name>`` directive per built-in
loss, in the registry's order, so a new loss appears in the API reference
without an edit here (``docs/griffe_registry.py`` gives mkdocstrings the
functions themselves). ``docs/family.md`` holds a marker for the table of
names: each built-in loss and what scikit-learn, torch, torchmetrics, Keras and
optax call it, from the records' ``anchors``.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

#: ``<!-- the built-in losses ... -->``: where the directives go.
MARKER = re.compile(r"^<!-- the built-in losses\b.*?-->$", flags=re.MULTILINE)
#: ``<!-- the names table ... -->``: where the table of other libraries' names goes.
NAMES_MARKER = re.compile(r"^<!-- the names table\b.*?-->$", flags=re.MULTILINE)
#: The libraries of the table, in its column order: the ``anchors`` keys and their headings.
LIBRARIES = {"sklearn": "scikit-learn (`sklearn.metrics`)", "torch": "torch",
             "torchmetrics": "torchmetrics", "keras": "Keras (`keras.losses`)", "optax": "optax"}


def loss_directives() -> str:
    """One ``::: mseplug.<name>`` directive per built-in loss, separated by blank lines."""
    registry = importlib.import_module("mseplug.api.registry")
    importlib.import_module("mseplug")  # registers the built-ins
    return "\n\n".join(f"::: mseplug.{name}" for name in registry.builtins())


def names_table() -> str:
    """A Markdown table: one row per built-in loss, its name in each library of its anchors
    (with the scikit-learn scorer name where scikit-learn has one), "—" where none has it."""
    registry = importlib.import_module("mseplug.api.registry")
    mseplug = importlib.import_module("mseplug")
    # each loss's scikit-learn scorer name (neg_<function>, a score's own, or its record's
    # "sklearn_scorer"), where scikit-learn has one
    scorers = {loss: scorer for scorer, loss
               in importlib.import_module("mseplug.sklearn")._sklearn_names().items()}
    lines = ["| mseplug | " + " | ".join(LIBRARIES.values()) + " |",
             "|---" * (len(LIBRARIES) + 1) + "|"]
    for name in registry.builtins():
        anchors = mseplug.get_loss(name).loss.anchors
        cells = []
        for library in LIBRARIES:
            anchor = anchors.get(library)
            cell = f"`{anchor}`" if anchor else "—"
            if library == "sklearn" and name in scorers and scorers[name] != anchor:
                cell += f" · `{scorers[name]}`"
            cells.append(cell)
        lines.append(f"| [`{name}`](reference/losses.md#mseplug.{name}) | " + " | ".join(cells)
                     + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Write the registry's lists into the page's markers."""
    markdown = NAMES_MARKER.sub(lambda _: names_table(), markdown)
    return MARKER.sub(lambda _: loss_directives(), markdown)
