"""The types of mseplug's signatures, in one place.

Arrays are "any library's array", so they are ``Any`` to the type checker;
the aliases below say which role a value plays.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

#: An array of one backend's library (NumPy, torch, JAX, an Array API library), or a tracer.
Array: TypeAlias = Any
#: Anything a backend can turn into an array: arrays of any library, lists, scalars.
ArrayLike: TypeAlias = Any
#: An Array API namespace (``array_api_compat.numpy``, ``jax.numpy``, ...).
Namespace: TypeAlias = Any
#: A dtype of any library.
DType: TypeAlias = Any
#: A registered loss's name, its function (``mseplug.mse``) or its ``Loss`` record.
LossLike: TypeAlias = Any
#: A backend's name (``"numpy"``, ``"torch"``, ...) or a ``Backend`` (instance or class).
BackendLike: TypeAlias = Any

Reduction = Literal["mean", "sum", "none"]
NanPolicy = Literal["propagate", "raise", "omit"]
MultioutputMode = Literal["uniform_average", "raw_values"]
#: ``"uniform_average"``, ``"raw_values"`` or an array of output weights.
Multioutput: TypeAlias = MultioutputMode | ArrayLike

REDUCTIONS: tuple[Reduction, ...] = ("mean", "sum", "none")
NAN_POLICIES: tuple[NanPolicy, ...] = ("propagate", "raise", "omit")
MULTIOUTPUT_MODES: tuple[MultioutputMode, ...] = ("uniform_average", "raw_values")
