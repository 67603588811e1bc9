"""``python -m mseplug``: the same command line as the ``mseplug`` script."""

from mseplug.cli.main import main

raise SystemExit(main())
