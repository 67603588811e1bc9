"""The NumPy backend: blocked float64 sums over threads (:mod:`.walk`) of the losses' block
kernels (:mod:`.kernels`)."""
