"""Dtype kinds through the Array API, for backends that define no faster rule."""

from __future__ import annotations

from mseplug._typing import DType, Namespace

_GROUPS = (("b", "bool"), ("i", "signed integer"), ("u", "unsigned integer"),
           ("f", "real floating"), ("c", "complex floating"))


def namespace_kind(xp: Namespace, dtype: DType) -> str:
    """NumPy-style kind letter of ``dtype`` by ``xp.isdtype``: 'f', 'i', 'u', 'b', 'c' or 'O'.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> namespace_kind(xp, xp.float32), namespace_kind(xp, xp.uint8)
    ('f', 'u')
    """
    for kind, group in _GROUPS:
        if xp.isdtype(dtype, group):
            return kind
    return "O"
