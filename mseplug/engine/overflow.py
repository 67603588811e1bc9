"""Non-finite results from finite inputs, and the warnings that say why.

The policy (docs/conventions.md): a loss is never a finite wrong number.
NumPy accumulates in float64, so its result is exact whenever it fits the
result dtype; otherwise, and on torch and JAX whenever an eager CPU result
overflowed from finite inputs, the result is ``inf`` and
:class:`LossOverflowWarning` says why, with advice that fits the dtype.
Under ``nan_policy="omit"``, an output whose every element was dropped has no
data: its mean is NaN, and :class:`EmptyOutputWarning` says which.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence


class LossOverflowWarning(RuntimeWarning):
    """The loss overflowed its dtype to ``inf`` although every input was finite."""


class EmptyOutputWarning(RuntimeWarning):
    """An output had no weight left after ``nan_policy="omit"``: its value is NaN."""


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside mseplug: the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("mseplug"):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def advice(dtype: object) -> str:
    """What to do about an overflow in ``dtype``: a wider dtype, else smaller numbers.

    Examples
    --------
    >>> advice("float32")
    'cast the inputs to float64 for a finite value'
    >>> advice("torch.float64").split(":")[0]
    'float64 is the widest dtype'
    """
    name = str(dtype)
    if "64" in name or "128" in name or "longdouble" in name:
        return ("float64 is the widest dtype: rescale y_true and y_pred "
                "(MSE scales with the square of a common factor)")
    return "cast the inputs to float64 for a finite value"


def warn(dtype: object) -> None:
    """Warn, at the user's call, that a loss over finite inputs came out ``inf`` in ``dtype``."""
    warnings.warn(
        f"mseplug: the loss overflowed to inf in {dtype} although every input is finite "
        f"(the losses or their sum exceed the dtype's range); {advice(dtype)}",
        LossOverflowWarning,
        stacklevel=_user_stacklevel(),
    )


def warn_statistics() -> None:
    """Warn, at the user's call, that sufficient statistics exceed float64 (weights so large
    that their sums do), so they are ``inf``."""
    warnings.warn(
        "mseplug: the sufficient statistics overflowed float64 to inf: the sample weights (or "
        "the weighted losses) sum beyond float64's range; divide sample_weight by a constant "
        "(every mean loss is unchanged by it) before computing statistics",
        LossOverflowWarning,
        stacklevel=_user_stacklevel(),
    )


def warn_empty(outputs: Sequence[int], n_outputs: int) -> None:
    """Warn, at the user's call, that ``outputs`` kept no weight under ``nan_policy="omit"``."""
    which = "the output" if n_outputs == 1 else f"output(s) {list(outputs)} of {n_outputs}"
    warnings.warn(
        f"mseplug: nan_policy='omit' dropped every element of {which} (NaN in y_true or y_pred, "
        "or the remaining sample weights are 0), so its mean has no data and is NaN",
        EmptyOutputWarning,
        stacklevel=_user_stacklevel(),
    )
