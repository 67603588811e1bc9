"""mseplug: MSE, MAE, RMSE and Huber with one interface across NumPy, PyTorch, JAX and the Array API.

Examples
--------
>>> import mseplug
>>> float(mseplug.mse([120_000.0, 60_000.0], [100_000.0, 80_000.0]))
400000000.0
"""

from mseplug._accumulate import Accumulator
from mseplug._api import grad, huber, mae, mse, rmse, value_and_grad
from mseplug._backend import Backend
from mseplug._overflow import LossOverflowWarning
from mseplug._registry import backends, get_backend, register_backend

__version__ = "0.1.0"

__all__ = [
    "Accumulator",
    "Backend",
    "LossOverflowWarning",
    "backends",
    "get_backend",
    "grad",
    "huber",
    "mae",
    "mse",
    "register_backend",
    "rmse",
    "value_and_grad",
]
