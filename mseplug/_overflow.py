"""What happens when squares or sums exceed the dtype's range: inf, and a warning.

The policy (docs/conventions.md): a loss is never a finite wrong number.
NumPy accumulates in float64, so its result is exact whenever it fits the
result dtype; otherwise, and on torch and JAX whenever an eager CPU result
overflowed from finite inputs, the result is ``inf`` and
:class:`LossOverflowWarning` says why.
"""

from __future__ import annotations

import sys
import warnings


class LossOverflowWarning(RuntimeWarning):
    """The loss overflowed its dtype to ``inf`` although every input was finite."""


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside mseplug: the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("mseplug"):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def warn(dtype: object) -> None:
    """Warn, at the user's call, that a loss over finite inputs came out ``inf`` in ``dtype``."""
    warnings.warn(
        f"mseplug: the loss overflowed to inf in {dtype} although every input is finite "
        "(the squares or their sum exceed the dtype's range); cast the inputs to float64 "
        "for a finite value",
        LossOverflowWarning,
        stacklevel=_user_stacklevel(),
    )
