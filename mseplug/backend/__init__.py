"""The backends: one subpackage per array library, each a :class:`mseplug.Backend` of hooks.

``numpy``, ``torch`` and ``jax`` import their library only when the registry
finds it already imported (:mod:`mseplug.api.backends`); ``array_api`` takes
any other Array API library, Dask included. A backend receives the loss
record it computes and registers its native kernels by the record's
function; it never looks a loss up.
"""
