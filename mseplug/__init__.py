"""mseplug: regression losses with one interface across NumPy, PyTorch, JAX and the Array API.

Every registered loss is a function here: ``mseplug.mse``, ``mseplug.huber``, ...
(:func:`losses` lists them; a plugin's appear once it is installed or registered).

Examples
--------
>>> import mseplug
>>> float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
400000000.0
"""

from __future__ import annotations

from mseplug.api.backends import backends, get_backend, register_backend
from mseplug.api.backends import warm_loaded as _warm_loaded
from mseplug.api.functions import grad, value_and_grad
from mseplug.api.import_hook import after_import as _after_import
from mseplug.api.registry import LossFunction, get_loss, losses, register_loss
from mseplug.api.registry import register_builtins as _register_builtins
from mseplug.engine.backend import Backend
from mseplug.engine.overflow import EmptyOutputWarning, LossOverflowWarning
from mseplug.loss.record import Bound, Loss, Param
from mseplug.streaming.accumulator import Accumulator
from mseplug.streaming.statistics import (
    combine_statistics,
    loss_from_statistics,
    sufficient_statistics,
)

__version__ = "0.1.0"

_BUILTINS = _register_builtins()
globals().update(_BUILTINS)  # mseplug.mse, mseplug.mae, ...: the built-in losses' functions

_warm_loaded()  # frameworks imported before mseplug; torch imported after it, once it is:
_after_import(("torch",), _warm_loaded)  # torch.compile cannot trace a first detection

_SUBMODULES = ("torch", "sklearn")


def __getattr__(name: str) -> LossFunction:
    """``mseplug.torch`` and ``mseplug.sklearn`` (imported on first use, with their framework),
    and the function of any loss registered after import (a plugin's)."""
    if name in _SUBMODULES:
        import importlib

        module: LossFunction = importlib.import_module(f"mseplug.{name}")
        return module
    if not name.startswith("_") and name in losses():
        return get_loss(name)
    raise AttributeError(f"module 'mseplug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(losses()) | set(_SUBMODULES))


__all__ = [
    "Accumulator",
    "Backend",
    "Bound",
    "EmptyOutputWarning",
    "Loss",
    "LossFunction",
    "LossOverflowWarning",
    "Param",
    "backends",
    "get_backend",
    "get_loss",
    "grad",
    "combine_statistics",
    "loss_from_statistics",
    "losses",
    "register_backend",
    "register_loss",
    "sufficient_statistics",
    "value_and_grad",
    *_BUILTINS,
]
