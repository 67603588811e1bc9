"""MkDocs hooks: list the distributed guides in the navigation when their pages exist.

``docs/guides/distributed-*.md`` pages are written on their own schedule. A
nav entry for a missing page would fail ``mkdocs build --strict``, and a page
missing from the nav would be hidden, so each page found is added to the
"Guides" section after "Streaming", unless the nav lists it already.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _listed(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_listed(value) for value in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_listed(item) for item in nav)) if nav else set()
    return set()


def on_config(config: Any, **kwargs: Any) -> Any:
    docs = Path(config["docs_dir"])
    found = sorted(p.relative_to(docs).as_posix() for p in docs.glob("guides/distributed-*.md"))
    missing = [page for page in found if page not in _listed(config["nav"])]
    if not missing:
        return config
    for section in config["nav"]:
        if isinstance(section, dict) and "Guides" in section:
            guides = section["Guides"]
            after = next((i + 1 for i, item in enumerate(guides)
                          if "guides/streaming.md" in _listed(item)), len(guides))
            guides[after:after] = missing
            break
    return config
