"""A re-entrant lock that a forked child gets anew: the registries' one lock each.

After ``fork`` only the forking thread lives on in the child; had another
thread of the parent held a plain lock at that moment, no thread in the child
would ever release it, and the child's first registry lookup would hang.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any


class ForkSafeLock:
    """``threading.RLock`` for ``with`` blocks, replaced by a fresh one in a forked child.

    Examples
    --------
    >>> from mseplug.api.fork_safe import ForkSafeLock
    >>> lock = ForkSafeLock()
    >>> with lock:
    ...     with lock:  # re-entrant
    ...         pass
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        _LOCKS.add(self)

    def __enter__(self) -> bool:
        return self._lock.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        self._lock.__exit__(*exc_info)


_LOCKS: weakref.WeakSet[ForkSafeLock] = weakref.WeakSet()


def _renew_in_child() -> None:
    for lock in list(_LOCKS):
        lock._lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_renew_in_child)
