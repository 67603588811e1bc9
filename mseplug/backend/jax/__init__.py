"""The JAX backend: the engine's kernels compiled by ``jax.jit``, custom JVP rules from the
losses' derivatives (:mod:`.kernels`). Imported only once JAX is."""
