"""A griffe extension for the API reference: the names the loss registry makes, as Python sees them.

``mseplug.mse``, ``mseplug.torch.MSELoss``, ``mseplug.sklearn.mse_scorer``
and their kin are not written one by one in the source: each public module
makes them from the registered ``Loss`` records when it is imported (the record
is the single source of truth), with real signatures and numpydoc docstrings.
Static analysis sees only ``globals().update(...)``. So once griffe has read
the package, this extension imports each public module, inspects the names of
its ``__all__`` that the source does not spell out, and adds them with the
signature and the docstring ``help()`` shows. The API reference lists the
built-in losses' functions with the directives the site's hook
(``docs/hooks.py``) writes from the registry.
"""

from __future__ import annotations

import importlib
from typing import Any

import griffe

#: The public modules whose ``__all__`` holds names made from the registry.
PUBLIC_MODULES = ("mseplug", "mseplug.torch", "mseplug.sklearn")


def _scorer(name: str, parent: griffe.Module) -> griffe.Attribute:
    """A ``<loss>_scorer`` (a scikit-learn scorer object, which griffe cannot inspect)."""
    loss = name.removesuffix("_scorer")
    made = griffe.Attribute(name, value=f'make_scorer("{loss}")', parent=parent)
    made.docstring = griffe.Docstring(
        f"The scikit-learn scorer of :func:`mseplug.{loss}`: ``make_scorer(\"{loss}\")``, "
        f"the negated loss (greater is better), scored as ``\"neg_{loss}\"``.", parent=made)
    return made


def add_made_names(package: griffe.Module) -> dict[str, list[str]]:
    """Add to ``package`` (griffe's ``mseplug``) every public name made at import; their names."""
    added: dict[str, list[str]] = {}
    for module_name in PUBLIC_MODULES:
        runtime = importlib.import_module(module_name)
        target = package if module_name == "mseplug" else package[module_name.split(".", 1)[1]]
        missing = [name for name in runtime.__all__ if name not in target.members]
        if not missing:
            continue
        inspected = griffe.inspect(module_name.rsplit(".", 1)[-1], parent=target.parent,
                                   modules_collection=griffe.ModulesCollection())
        for name in missing:
            member = inspected.members.get(name)
            if member is None or member.is_alias:  # an object griffe reads as an import
                member = _scorer(name, target)
            elif member.is_class:  # a class made by type(): drop what type() adds
                for inner in [n for n in member.members if n.startswith("_") and n != "__init__"]:
                    member.del_member(inner)
            target.set_member(name, member)
        target.exports = list(runtime.__all__)
        added[module_name] = missing
    return added


class RegisteredLosses(griffe.Extension):
    """Add the names made from the loss registry to the ``mseplug`` package griffe has read."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name == "mseplug":
            add_made_names(pkg)
