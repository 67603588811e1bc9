"""Losses over data that comes in parts: the :class:`~mseplug.Accumulator` (:mod:`.accumulator`)
and sufficient statistics for distributed data (:mod:`.statistics`)."""
