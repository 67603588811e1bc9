"""``python -m mseplug``: the same command line as the ``mseplug`` script."""

from mseplug.cli import main

raise SystemExit(main())
