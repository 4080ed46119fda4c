"""The sandbox control API, for tests that drive the CLI or daemon in another process.

All bodies are JSON; every answer is JSON. Credentials and faults never apply here.

- ``POST /_sandbox/faults``: replace the fault plan, e.g.
  ``{"SelectMergeStacktraces": {"status": 503, "retry_after": 1, "count": 2}}``;
  ``{}`` clears it. ``GET /_sandbox/faults`` shows the plan and hit counts.
- ``POST /_sandbox/reset``: forget data, faults and the request log; a body such as
  ``{"faults": false}`` keeps a part.
- ``POST /_sandbox/load``: a fleet spec (see :mod:`watcher.sandbox.fleet`) → ``load_fleet``;
  answers ``{"profiles": N}``.
- ``POST /_sandbox/stacks``: add profiles given as folded text:
  ``{"records": [{"labels": {"service_name": "api"}, "profile_type": "process_cpu:cpu:...",
  "timestamp_ms": 1700000000000, "stacks": "main;work 10\\nmain;io 5"}]}`` (a single record
  object or a list works too); answers ``{"profiles": N}``.
- ``GET /_sandbox/requests``: the recent request log (header names only, whether the
  credentials matched, never a secret); ``?clear=1`` empties it after reading.
- ``GET /_sandbox/stats``: store sizes and the oldest/newest profile times.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from watcher.errors import WatcherError
from watcher.sandbox.records import ProfileRecord, Stack

if TYPE_CHECKING:
    from watcher.sandbox.server import Sandbox

__all__ = ["handle_control", "parse_folded_text", "records_from_json"]


class _BadRequest(Exception):
    pass


def parse_folded_text(text: str) -> dict[Stack, int]:
    """Collapsed stacks (``a;b;c 10`` per line) as root-first stacks → summed values."""
    stacks: dict[Stack, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        frames, _, count = line.rpartition(" ")
        try:
            value = int(count)
        except ValueError:
            raise _BadRequest(f"stacks line {number}: expected 'frame;frame <count>'") from None
        if not frames:
            raise _BadRequest(f"stacks line {number}: no frames before the count")
        stack = tuple(frames.split(";"))
        stacks[stack] = stacks.get(stack, 0) + value
    return stacks


def records_from_json(payload: Any) -> list[ProfileRecord]:
    """Records from the ``/_sandbox/stacks`` body (see the module docstring)."""
    if isinstance(payload, Mapping) and "records" in payload:
        payload = payload["records"]
    items = payload if isinstance(payload, list) else [payload]
    records = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise _BadRequest(f"record {i}: expected an object")
        try:
            labels = {str(k): str(v) for k, v in dict(item.get("labels") or {}).items()}
            profile_type = str(item["profile_type"])
            timestamp_ms = int(item["timestamp_ms"])
            raw_stacks = item.get("stacks", "")
        except (KeyError, TypeError, ValueError) as exc:
            raise _BadRequest(
                f"record {i}: needs labels, profile_type, timestamp_ms and stacks ({exc})"
            ) from None
        if isinstance(raw_stacks, str):
            stacks = parse_folded_text(raw_stacks)
        elif isinstance(raw_stacks, Mapping):
            stacks = {tuple(str(k).split(";")): int(v) for k, v in raw_stacks.items()}
        else:
            raise _BadRequest(f"record {i}: stacks must be folded text or an object")
        records.append(ProfileRecord(labels, profile_type, timestamp_ms, stacks))
    return records


def _load_fleet(sandbox: Sandbox, spec: Any) -> int:
    from watcher.sandbox import fleet

    spec_cls = getattr(fleet, "FleetSpec", None)
    parsed: Any = spec
    if spec_cls is not None and isinstance(spec, Mapping):
        for name in ("from_dict", "from_json", "model_validate"):
            builder = getattr(spec_cls, name, None)
            if builder is not None:
                parsed = builder(spec)
                break
    before = len(sandbox.store)
    result = fleet.load_fleet(sandbox.store, parsed)
    return int(result) if isinstance(result, int) else len(sandbox.store) - before


def handle_control(
    sandbox: Sandbox, method: str, target: str, body: bytes
) -> tuple[int, dict[str, Any]]:
    """Run one control request; returns (HTTP status, JSON payload)."""
    split = urlsplit(target)
    action = split.path[len("/_sandbox/") :].strip("/")
    query = parse_qs(split.query)
    try:
        payload: Any = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return 400, {"code": "invalid_argument", "message": f"invalid JSON body: {exc}"}
    try:
        if action == "faults":
            if method == "GET":
                return 200, {"faults": sandbox.faults.to_dict(), "hits": sandbox.faults.hits()}
            if method != "POST":
                return 405, {"code": "unimplemented", "message": "use GET or POST"}
            if not isinstance(payload, Mapping):
                raise _BadRequest("the fault plan must be an object")
            plan = payload.get("faults", payload)
            sandbox.faults.replace_from_dict(plan)
            return 200, {"faults": sandbox.faults.to_dict()}
        if action == "reset" and method == "POST":
            options = payload if isinstance(payload, Mapping) else {}
            sandbox.reset(
                store=bool(options.get("store", True)),
                faults=bool(options.get("faults", True)),
                requests=bool(options.get("requests", True)),
            )
            return 200, {}
        if action == "load" and method == "POST":
            return 200, {"profiles": _load_fleet(sandbox, payload)}
        if action == "stacks" and method == "POST":
            records = records_from_json(payload)
            return 200, {"profiles": sandbox.ingest_records(records)}
        if action == "requests" and method == "GET":
            entries = [e.to_dict() for e in sandbox.requests() if e.path != "/_sandbox/requests"]
            if query.get("clear", ["0"])[0] not in ("", "0", "false"):
                sandbox.reset(store=False, faults=False, requests=True)
            return 200, {"requests": entries}
        if action == "stats" and method == "GET":
            stats = sandbox.store.stats()
            return 200, {
                "data_ingested": stats.data_ingested,
                "oldest_ms": stats.oldest_ms,
                "newest_ms": stats.newest_ms,
                "profiles": stats.profiles,
                "series": stats.series,
                "stacks": stats.stacks,
            }
    except (_BadRequest, ValueError, TypeError, WatcherError) as exc:
        return 400, {"code": "invalid_argument", "message": str(exc)}
    return 404, {"code": "not_found", "message": f"no control action {method} /_sandbox/{action}"}
