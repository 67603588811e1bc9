"""The ``mseplug`` command line (:mod:`.main`): ``score`` prediction files in one streamed pass
(:mod:`.score`, reading :mod:`.files` through :mod:`.sources`, the losses it computes and their
domains from :mod:`.metrics`), ``bench`` (:mod:`.bench`) and ``demo`` (:mod:`.demo`). Never
imported by ``import mseplug``."""
