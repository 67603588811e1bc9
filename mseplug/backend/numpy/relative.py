"""The NumPy backend's kernels of the relative errors: the squared log error and the absolute
percentage error (MSLE, RMSLE, MAPE).

Their records (:mod:`mseplug.loss.builtin`) are a few operations with no
choice of forms: ``d = log1p((ŷ - y) / (1 + y))``, ``d·d``; and
``|ŷ - y| / clip(|y|, ε)``. Applied to a block they make a fresh temporary
per operation; here each block goes through the same operations, in the same
order, in buffers each thread reuses (:mod:`~mseplug.backend.numpy.pairs`),
so each loss is the record's bit for bit (NaN and infinities included: there
is no branch to take apart) at a fraction of the memory traffic, and the
blocks can be larger than the record's (summed in its pieces, as the
deviances' are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mseplug.backend.numpy.pairs import Params, block_kernel, buffer, record
from mseplug.loss import builtin


@block_kernel
def squared_log_error(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params) -> np.ndarray:
    """``builtin.squared_log_error`` of one block: ``d·d``, ``d = log1p((ŷ - y) / (1 + y))``."""
    n = t.shape[0]
    one_plus = np.add(t, 1, out=buffer("x", n, dtype))  # the record's 1 + y
    d = np.subtract(p, t, out=buffer("out", n, dtype))
    d /= one_plus
    np.log1p(d, out=d)
    d *= d
    return d


@block_kernel
def absolute_percentage_error(t: np.ndarray, p: np.ndarray, dtype: Any, params: Params
                              ) -> np.ndarray:
    """``builtin.absolute_percentage_error`` of one block (``params``: ``(epsilon,)``):
    ``|ŷ - y| / clip(|y|, ε)``."""
    epsilon = params[0]
    if type(epsilon) is not float:  # a NumPy scalar (not a weak Python float), a traced value
        return record(builtin.absolute_percentage_error, t, p, params)
    n = t.shape[0]
    scale = np.abs(t, out=buffer("x", n, dtype))
    np.clip(scale, epsilon, None, out=scale)  # the record's clip (NumPy's maximum)
    out = np.subtract(p, t, out=buffer("out", n, dtype))
    np.abs(out, out=out)
    out /= scale
    return out
