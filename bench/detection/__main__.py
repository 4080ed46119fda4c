"""``python -m bench.detection``: see :mod:`bench.detection.run`."""

from bench.detection.run import main

raise SystemExit(main())
