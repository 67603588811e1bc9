"""Root conftest: skip doctests of modules whose optional library is not installed."""

import importlib.util

collect_ignore = [
    f"mseplug/{path}"
    for path, library in {
        "torch.py": "torch",
        "_backends/torch.py": "torch",
        "_backends/torch_kernels.py": "torch",
        "_backends/jax.py": "jax",
        "_backends/jax_kernels.py": "jax",
        "sklearn.py": "sklearn",
    }.items()
    if importlib.util.find_spec(library) is None
]
