"""The bottom layer: a loss as a record (:class:`Loss`), its options, and the built-in losses.

Nothing here imports the rest of mseplug: the engine, the backends and every
integration derive from these records.
"""

from mseplug.loss.options import Options, make_options
from mseplug.loss.record import Bound, Domain, Loss, Param

__all__ = ["Bound", "Domain", "Loss", "Options", "Param", "make_options"]
