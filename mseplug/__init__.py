"""mseplug: regression losses with one interface across NumPy, PyTorch, JAX and the Array API.

Examples
--------
>>> import mseplug
>>> float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
400000000.0
"""

from mseplug._accumulate import Accumulator
from mseplug._api import grad, huber, log_cosh, mae, mse, pinball, rmse, value_and_grad
from mseplug._backend_registry import backends, get_backend, register_backend
from mseplug._backend_registry import warm_loaded as _warm_loaded
from mseplug._distributed import loss_from_statistics, sufficient_statistics
from mseplug._engine import Backend
from mseplug._import_hook import after_import as _after_import
from mseplug._loss import Loss, Param
from mseplug._loss_registry import get_loss, losses, register_loss
from mseplug._overflow import EmptyOutputWarning, LossOverflowWarning

__version__ = "0.1.0"

_warm_loaded()  # frameworks imported before mseplug; torch imported after it, once it is:
_after_import(("torch",), _warm_loaded)  # torch.compile cannot trace a first detection

_SUBMODULES = ("torch", "sklearn")


def __getattr__(name: str) -> object:
    """``mseplug.torch`` and ``mseplug.sklearn`` import their framework on first use only."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"mseplug.{name}")
    raise AttributeError(f"module 'mseplug' has no attribute {name!r}")

__all__ = [
    "Accumulator",
    "Backend",
    "EmptyOutputWarning",
    "Loss",
    "LossOverflowWarning",
    "Param",
    "backends",
    "get_backend",
    "get_loss",
    "grad",
    "huber",
    "log_cosh",
    "loss_from_statistics",
    "losses",
    "mae",
    "mse",
    "pinball",
    "register_backend",
    "register_loss",
    "rmse",
    "sufficient_statistics",
    "value_and_grad",
]
