"""``Columns``: one call's inputs inside a kernel, as ``(n, K)`` arrays."""

from __future__ import annotations

import math
from typing import NamedTuple

from mseplug._typing import Array, DType, Namespace


class Columns(NamedTuple):
    """Inputs inside a kernel: ``(n, K)`` arrays in the working dtype."""

    xp: Namespace
    y_true: Array
    y_pred: Array
    weight: Array | None  # (n,)
    shape: tuple[int, ...]  # the common shape
    pred_shape: tuple[int, ...]  # y_pred's own shape: the shape of "none" results and gradients
    dtype: DType  # promoted input dtype: the dtype of results
    work: DType  # the dtype the losses are computed in (the accumulation dtype, or the widest)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def outputs(self) -> int:
        return math.prod(self.shape[1:])
