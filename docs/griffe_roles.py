"""A griffe extension for the API reference: Sphinx roles in docstrings become cross-references.

mseplug's docstrings are numpydoc, read by both ``help()`` and this site, and
use Sphinx roles such as ``:func:`mse``` and ``:class:`~mseplug.Loss```.
mkdocstrings does not know these roles, so before rendering this extension
turns each into an *optional* autorefs link: a link when the target is on the
site, plain code otherwise (never a broken link). Relative names are resolved
in the docstring owner's scope, as Sphinx does.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj):`(?P<tilde>~?)(?P<target>[\w.]+)`")


def _resolve(obj: Any, target: str) -> str:
    if target.startswith("mseplug"):
        return target
    head, _, tail = target.partition(".")
    scopes = [obj] if obj.is_module or obj.is_class else []
    scopes.append(obj.parent)
    for scope in scopes:
        if scope is None:
            continue
        try:
            found = scope.resolve(head)
        except Exception:  # griffe's NameResolutionError and friends: try the next scope
            continue
        return f"{found}.{tail}" if tail else found
    return target


def _rewrite(obj: Any, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        target = match["target"]
        title = target.rsplit(".", 1)[-1] if match["tilde"] else target
        return f'<autoref identifier="{_resolve(obj, target)}" optional><code>{title}</code></autoref>'

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles of every docstring once the package is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = _rewrite(obj, obj.docstring.value)
