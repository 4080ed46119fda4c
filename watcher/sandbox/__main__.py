"""Run the sandbox in the foreground: ``python -m watcher.sandbox [--port N] [--data FILE...]``.

:func:`serve` is what ``pyrowatch sandbox`` calls. Data files are loaded before the URL is
printed:

- ``*.json``: a fleet spec (see :mod:`watcher.sandbox.fleet`);
- folded stacks (``a;b;c 10`` per line; ``*.txt``, ``*.folded``, ``*.collapsed``): one CPU
  profile through the legacy ``/ingest`` path;
- anything else: a pprof file (raw or gzipped) through the ``/ingest`` path, one series per
  sample type, named after the file.

Profiles from files are stamped with the current time, so the default query window (the
last hour) shows them, whatever time the file itself records.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from watcher.errors import WatcherError

__all__ = ["load_data_file", "main", "serve"]

_FOLDED_SUFFIXES = (".txt", ".folded", ".collapsed")


def _app_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".pb", ".pprof", ".prof", *_FOLDED_SUFFIXES):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")
    return cleaned or "sandbox-data"


def load_data_file(sandbox: Any, path: str | Path, *, now_ms: int | None = None) -> int:
    """Load one file into a running or stopped :class:`Sandbox`; returns the profile count."""
    from watcher.sandbox.control import _load_fleet
    from watcher.sandbox.ingest import IngestError, records_from_ingest

    p = Path(path)
    data = p.read_bytes()
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if p.suffix == ".json":
        try:
            spec = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WatcherError(f"{p}: not a JSON fleet spec: {exc}") from exc
        return _load_fleet(sandbox, spec)
    fmt = "folded" if p.suffix in _FOLDED_SUFFIXES else "pprof"
    params = {
        "name": _app_name(p),
        "format": fmt,
        "from": str(now // 1000 - 10),
        "until": str(now // 1000),
        "spyName": "unknown",
    }
    try:
        records = records_from_ingest(params, data, "", now_ms=now)
    except IngestError as exc:
        raise WatcherError(f"{p}: the sandbox refused this file: {exc.message}") from exc
    # Stamp every profile with the load time so the default window shows it.
    for record in records:
        record.timestamp_ms = now
    return int(sandbox.ingest_records(records))


def serve(
    host: str = "127.0.0.1",
    port: int = 4040,
    *,
    fleet: Mapping[str, Any] | Any | None = None,
    data_paths: Iterable[str | Path] = (),
    data: Sequence[str | Path] | None = None,
    out: TextIO | None = None,
) -> None:
    """Start a sandbox, load ``fleet`` and the data files, print the URL and serve until
    Ctrl-C or SIGTERM. ``data`` is an alias of ``data_paths``.

    Both signals get a handler of their own while serving (on the main thread), so the
    sandbox stops cleanly even where it was started with SIGINT ignored, as a shell does
    for a command it runs in the background, and under ``docker stop``.
    """
    from watcher.sandbox.control import _load_fleet
    from watcher.sandbox.server import Sandbox

    stream = out if out is not None else sys.stdout
    sandbox = Sandbox()
    if fleet is not None:
        count = _load_fleet(sandbox, fleet)
        stream.write(f"loaded a synthetic fleet: {count} profiles\n")
    for path in [*data_paths, *(data or ())]:
        count = load_data_file(sandbox, path)
        stream.write(f"loaded {path}: {count} profiles\n")
    previous: dict[signal.Signals, Any] = {}
    try:
        url = sandbox.start(host, port)  # (start() re-arms serve_forever: handlers after it)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: sandbox.interrupt())
        stream.write(f"Pyroscope sandbox listening on {url}  (Ctrl-C to stop)\n")
        stream.flush()
        sandbox.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m watcher.sandbox", description="Run the Pyroscope-compatible sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4040)
    parser.add_argument("--data", nargs="*", default=[], help="pprof, folded or fleet-spec files")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, data_paths=args.data)
    except (WatcherError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
