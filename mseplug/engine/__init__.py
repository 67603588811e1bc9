"""The engine: one call's checks, kernels and final step, written once for every backend.

:mod:`~mseplug.engine.pipeline` drives a call through the hooks a backend offers
(:class:`~mseplug.engine.protocol.Hooks`, implemented by
:class:`~mseplug.engine.backend.Backend`, the base class of every backend):
inputs checked once (:mod:`~mseplug.engine.checks`), a pure kernel
(:mod:`~mseplug.engine.kernels`), sufficient statistics, then the one final step
(:mod:`~mseplug.engine.finalize`). The engine imports the loss records below it
and nothing above: no backend, no integration.
"""
