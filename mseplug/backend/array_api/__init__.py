"""The generic backend for any Array API library, and Dask's chunk-by-chunk graphs
(:mod:`.dask`)."""
