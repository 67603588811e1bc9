"""Hold BLAS to one thread while mseplug's own workers run their dot products.

OpenBLAS starts threads for a single dot product above about 10⁴ float64
elements; inside mseplug's worker threads that oversubscribes the cores and
costs far more than the dot itself, which capped the NumPy kernels' block
size. Held to one thread (through ``threadpoolctl``), blocks can be as large
as L2 allows. Holds nest and overlap safely: the first one in sets one
thread, the last one out restores the library's own setting. A hold that
did not take (no ``threadpoolctl``, or OpenBLAS controlled from another
Python thread, which threadpoolctl leaves alone) yields ``False``, and the
kernels keep small blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_libraries: list[Any] | None = None
_holders = 0
_saved: list[int] = []


def _blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the loaded BLAS libraries (read once), or []."""
    global _libraries
    if _libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _libraries = []
        else:
            _libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _libraries


@contextmanager
def one_blas_thread() -> Iterator[bool]:
    """Hold every BLAS library to one thread inside the block; yields whether it could."""
    global _holders, _saved
    libraries = _blas_libraries()
    if not libraries:
        yield False
        return
    with _lock:
        if _holders == 0:
            _saved = [library.get_num_threads() for library in libraries]
            for library in libraries:
                library.set_num_threads(1)
        _holders += 1
    try:
        yield all(library.get_num_threads() == 1 for library in libraries)
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                for library, threads in zip(libraries, _saved):
                    library.set_num_threads(threads)
