"""Checks on options, shapes, dtypes and weights, with the messages users see.

Everything here is backend-agnostic: it looks at ``.shape`` tuples, dtype
*kinds* (one letter, as NumPy's ``dtype.kind``) and Python values, never at a
framework. The backends call these helpers after converting their inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

# Dtype kinds (numpy's ``dtype.kind`` letters) that a loss accepts.
NUMERIC_KINDS = frozenset("fiub")
_KIND_NAMES = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "void",
               "M": "datetime", "m": "timedelta", "T": "string"}


class ComplexDataError(ValueError, TypeError):
    """Complex inputs: a ``ValueError`` as scikit-learn raises ("Complex data not supported"),
    and a ``TypeError`` as for every other non-real dtype, so either ``except`` catches it."""


def check_input_present(name: str, value: object) -> None:
    """``None`` and strings are never arrays."""
    if value is None:
        raise TypeError(f"{name} is None; expected an array of numbers")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} is a {type(value).__name__}; expected an array of numbers")


def check_not_iterator(name: str, value: object) -> None:
    """One-pass iterators (generators, ``map``, ...) are not arrays: NumPy makes them objects."""
    if isinstance(value, Iterator):
        raise TypeError(
            f"{name} is a {type(value).__name__}, an iterator that can be read only once; "
            f"materialise it first, e.g. np.fromiter({name}, float) or list({name})"
        )


def check_kind(name: str, kind: str, dtype: object) -> None:
    """Reject complex, object, string and other non-real dtypes."""
    if kind == "c":
        raise ComplexDataError(
            f"Complex data not supported: {name} has complex dtype {dtype}; losses are defined for "
            "real numbers (take the real part or the absolute value first)"
        )
    if kind not in NUMERIC_KINDS:
        what = _KIND_NAMES.get(kind, "non-numeric")
        raise TypeError(
            f"{name} has {what} dtype {dtype}; losses are defined for real numbers "
            "(cast to a float dtype first)"
        )


def unknown(size: Any) -> bool:
    """Whether an axis length is unknown until the data exist (``None`` in the Array API
    standard, NaN in Dask); such a length matches any other, and the backend checks it later."""
    return size is None or (isinstance(size, float) and math.isnan(size))


def _same(a: Any, b: Any) -> bool:
    return a == b or unknown(a) or unknown(b)


def _same_shape(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))


def _shown(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("?" if unknown(d) else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


def common_shape(
    true_shape: tuple[int, ...], pred_shape: tuple[int, ...], *, allow_empty: bool = False
) -> tuple[int, ...]:
    """The shape both inputs are treated as; never a broadcast.

    Equal shapes pass; ``(n,)`` against ``(n, 1)`` (either way round) is
    treated as ``(n,)``; a 0-d pair is one sample, ``(1,)``. Anything else,
    and an empty input unless ``allow_empty`` (a part of the data, such as a
    shard with no rows), is a ``ValueError`` naming both shapes. A length
    that is not known yet (see :func:`unknown`) matches any length.
    """
    t, p = tuple(true_shape), tuple(pred_shape)
    if not _same_shape(t, p):
        if len(t) == 1 and _same_shape(t + (1,), p):
            p = t
        elif len(p) == 1 and _same_shape(p + (1,), t):
            t = p
        else:
            raise ValueError(
                f"y_true {_shown(t)} vs y_pred {_shown(p)}: shapes differ. mseplug never "
                "broadcasts; reshape one of them so both have the same shape"
            )
    if 0 in t[1:]:
        raise ValueError(
            f"y_true and y_pred have no outputs (shape {_shown(t)}); a loss needs at least one "
            "value per sample: drop the empty trailing axis or give data"
        )
    if t and t[0] == 0 and not allow_empty:
        raise ValueError(f"y_true and y_pred are empty (shape {_shown(t)}); a loss needs at least "
                         "one sample")
    if not t:
        return (1,)
    return tuple(b if unknown(a) else a for a, b in zip(t, p)) if len(t) == len(p) else t


def check_weight_shape(shape: tuple[int, ...], n_samples: int) -> None:
    """``sample_weight`` is one number per sample, shape ``(n_samples,)``."""
    shape = tuple(shape)
    if not ((len(shape) == 1 and _same(shape[0], n_samples)) or (shape == () and n_samples == 1)):
        n = "?" if unknown(n_samples) else n_samples
        raise ValueError(
            f"sample_weight {_shown(shape)} vs {n} samples: sample_weight needs shape "
            f"({n},), one weight per sample (axis 0)"
        )


def check_weight_values(total: float, minimum: float, all_finite: bool, *,
                        positive_sum: bool = True) -> None:
    """Finite, non-negative and (unless ``positive_sum`` is off, for a part of the data) a
    positive sum: checked from three reductions the backend computed."""
    if not all_finite:
        raise ValueError("sample_weight has NaN or infinite values; weights must be finite")
    if minimum < 0:
        raise ValueError(f"sample_weight has negative values (min {minimum}); weights must be >= 0")
    if positive_sum and not total > 0:
        raise ValueError("sample_weight sums to 0; at least one weight must be positive")


def check_output_weights(weights: Any, output_shape: tuple[int, ...] | None = None) -> Any:
    """Validate ``multioutput`` given as output weights; return them as a float64 NumPy array.

    With ``output_shape`` their shape is checked too and they come back as a flat vector;
    without (an Accumulator, before its first batch) they keep their shape.
    """
    import numpy as np

    try:
        vector = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            "multioutput must be 'uniform_average', 'raw_values' or an array of output weights; "
            f"got {type(weights).__name__}"
        ) from None
    if output_shape is not None:
        check_output_weights_shape(vector.shape, output_shape)
    if not np.all(np.isfinite(vector)) or np.any(vector < 0) or not np.any(vector > 0):
        raise output_weights_error(np.array2string(vector, threshold=8, separator=", "))
    return vector if output_shape is None else vector.reshape(-1)


def check_output_weights_shape(shape: tuple[int, ...], output_shape: tuple[int, ...]) -> None:
    """One output weight per output (flat, or in the outputs' own shape)."""
    size, n_outputs = math.prod(shape), math.prod(output_shape)
    if size != n_outputs or len(shape) > max(1, len(output_shape)):
        raise ValueError(
            f"multioutput has {size} weights (shape {tuple(shape)}) but the inputs have "
            f"{n_outputs} outputs (shape {output_shape}); give one weight per output"
        )


def output_weights_error(seen: str) -> ValueError:
    return ValueError(f"multioutput weights must be finite, >= 0 and not all zero; got {seen}")


def nonscalar_error(output_shape: tuple[int, ...]) -> ValueError:
    """``grad`` of ``multioutput="raw_values"`` over several outputs: no scalar to differentiate."""
    return ValueError(
        f"grad needs a scalar loss; multioutput='raw_values' gave shape {tuple(output_shape)}"
    )


def nan_error(name: str) -> ValueError:
    return ValueError(
        f"{name} contains NaN and nan_policy='raise'; use nan_policy='omit' to drop those "
        "samples or 'propagate' to get NaN"
    )
