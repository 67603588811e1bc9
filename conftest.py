"""Root conftest: skip doctests of modules whose optional library is not installed."""

import importlib.util

collect_ignore = [
    f"mseplug/{path}"
    for path, library in {
        "torch.py": "torch",
        "backends/torch.py": "torch",
        "backends/torch_autograd.py": "torch",
        "backends/jax.py": "jax",
        "backends/jax_kernels.py": "jax",
        "sklearn.py": "sklearn",
    }.items()
    if importlib.util.find_spec(library) is None
]
