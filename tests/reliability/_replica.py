"""One replica of the watcher in a process of its own, for the replica tests.

``python _replica.py CONFIG SCHEDULED_AT OWNER`` does what ``pyrowatch run`` does at one
fire time of its first watch: claim and evaluate the pairs (``run_watch``), then a delivery
pass. The tests kill it with SIGKILL while it holds its claims.
"""

from __future__ import annotations

import sys
from datetime import datetime

from watcher.config import load_settings
from watcher.daemon.app import App
from watcher.daemon.delivery import drain
from watcher.daemon.jobs import run_watch


def main(argv: list[str]) -> int:
    config, scheduled_at, owner = argv
    settings = load_settings(config)
    app = App(settings, owner=owner)
    try:
        run_watch(app, settings.watcher.watch[0], scheduled_at=datetime.fromisoformat(scheduled_at))
        drain(app)
    finally:
        app.stop(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
