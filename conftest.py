"""Root conftest: skip doctests of modules whose optional library is not installed."""

import importlib.util

collect_ignore = [
    f"mseplug/{path}"
    for path, library in {
        "torch": "torch",
        "backends/torch": "torch",
        "backends/jax": "jax",
        "sklearn": "sklearn",
        "cli/files.py": "pyarrow",
    }.items()
    if importlib.util.find_spec(library) is None
]
