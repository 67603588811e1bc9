"""The ``mseplug`` command line (:mod:`.main`): ``score`` prediction files in one streamed pass
(:mod:`.score`, reading :mod:`.files` through :mod:`.sources`), ``bench`` (:mod:`.bench`) and
``demo`` (:mod:`.demo`). Never imported by ``import mseplug``."""
