"""Turn ingest requests into :class:`ProfileRecord` values (parsing only, no HTTP).

Two entry points, one per ingest API of the Pyroscope server:

- :func:`records_from_push` for ``push.v1.PusherService/Push`` (Connect, ``application/proto``
  or ``application/json``, optionally gzipped as a whole; each raw profile gzipped or not).
- :func:`records_from_ingest` for the legacy ``POST /ingest`` (pprof, raw or in a
  ``multipart/form-data`` upload with a sample-type config; folded and lines text).

Every sample type of a pprof becomes one record whose profile type ID is
``<__name__>:<sample type>:<sample unit>:<period type>:<period unit>``. Failures raise
:class:`IngestError` carrying the HTTP status and Connect code the server would answer with:
Push answers 400 ``invalid_argument`` for a bad profile; ``/ingest`` answers 400 for bad
parameters and 422 ``unknown`` when the profile cannot be ingested.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from watcher.errors import DecodeError, WatcherError
from watcher.pprof import (
    GZIP_MAGIC,
    FrameNamer,
    PprofFunction,
    PprofLine,
    PprofProfile,
    PprofSample,
    gunzip_if_needed,
    parse_pprof,
)
from watcher.sandbox.records import ProfileRecord, Stack

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "DEFAULT_SAMPLE_TYPE_CONFIG",
    "IngestError",
    "parse_app_name",
    "parse_time_param",
    "records_from_ingest",
    "records_from_push",
]

#: ``/ingest`` sample rate (Hz) when the parameter is absent or invalid.
DEFAULT_SAMPLE_RATE = 100
#: The service name the server gives a pushed series without one.
UNKNOWN_SERVICE = "unknown_service"

#: Display names the server assumes for pprof sample types when an ``/ingest`` upload carries
#: no ``sample_type_config`` (only ``display-name`` matters for the ``__name__`` guess).
DEFAULT_SAMPLE_TYPE_CONFIG: dict[str, dict[str, Any]] = {
    "samples": {"display-name": "cpu", "units": "samples", "sampled": True},
    "inuse_objects": {"units": "objects", "aggregation": "average"},
    "alloc_objects": {"units": "objects", "cumulative": True},
    "inuse_space": {"units": "bytes", "aggregation": "average"},
    "alloc_space": {"units": "bytes", "cumulative": True},
    "goroutine": {"display-name": "goroutines", "units": "goroutines", "aggregation": "average"},
    "contentions": {"display-name": "mutex_count", "units": "lock_samples", "cumulative": True},
    "delay": {"display-name": "mutex_duration", "units": "lock_nanoseconds", "cumulative": True},
}

# Labels a client may send that never become series labels: ingest hints the server strips
# and labels the store derives from the profile type itself.
_DROPPED_LABELS = frozenset(
    {
        "__delta__",
        "__order__",
        "__profile_type__",
        "__type__",
        "__unit__",
        "__period_type__",
        "__period_unit__",
        "__service_name__",
    }
)
# The one private label the legacy ``name`` parameter may set.
_ALLOWED_PRIVATE = frozenset({"__session_id__"})
_SCRIPTING_SPIES = frozenset({"pyspy", "rbspy", "scripting"})
# Sample labels that stay per sample even when the others are promoted to series labels.
_SPAN_SAMPLE_LABELS = frozenset({"span_id", "trace_id", "profile_id"})
# A pprof time before 1971 is a client that wrote micro- or milliseconds into time_nanos.
_PLAUSIBLE_TIME_NANOS = 365 * 86_400 * 1_000_000_000

_UNSUPPORTED_CLIENT = (
    "unsupported client version. "
    "Please update github.com/grafana/pyroscope-go to the latest version"
)


class IngestError(WatcherError):
    """An ingest request the server refuses: HTTP ``status``, Connect ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


def _bad_request(message: str) -> IngestError:
    return IngestError(400, "invalid_argument", message)


def _unprocessable(message: str) -> IngestError:
    # The legacy handler derives the code from the status; 422 maps to "unknown".
    return IngestError(422, "unknown", message)


def _now_ms(now_ms: int | None) -> int:
    return int(time.time() * 1000) if now_ms is None else now_ms


# --- Push ---------------------------------------------------------------------------------------


def records_from_push(
    body: bytes,
    content_type: str,
    content_encoding: str | None = None,
    *,
    now_ms: int | None = None,
    split_sample_labels: bool = False,
) -> list[ProfileRecord]:
    """Records of a ``PushRequest`` body, one per series sample and sample type.

    ``content_type`` is ``application/proto`` or ``application/json``; ``content_encoding``
    ``gzip`` (the whole body) or none. The request is taken or refused as a whole.
    ``now_ms`` stamps profiles without a usable ``time_nanos``. With ``split_sample_labels``
    the samples are also split by their string pprof labels, which become series labels as
    the Pyroscope server does (``span_id``, ``trace_id`` and ``profile_id`` stay per sample).
    """
    from watcher.proto import from_binary, from_json, messages

    encoding = (content_encoding or "").strip().lower()
    if encoding == "gzip":
        if body and not body.startswith(GZIP_MAGIC):
            raise _bad_request("failed to decompress request body: not gzip data")
        try:
            body = gunzip_if_needed(body)
        except DecodeError as exc:
            raise _bad_request(f"failed to decompress request body: {exc}") from exc
    elif encoding not in ("", "identity"):
        raise IngestError(
            501,
            "unimplemented",
            f'unknown compression "{encoding}": supported encodings are [gzip]',
        )

    media_type, _params = _media_type(content_type)
    cls = messages().push.PushRequest
    try:
        if media_type == "application/proto":
            request = from_binary(body, cls)
        elif media_type == "application/json":
            request = from_json(body, cls)
        else:
            raise IngestError(
                415,
                "unknown",
                f"unsupported content type {content_type!r}: "
                "use application/proto or application/json",
            )
    except DecodeError as exc:
        raise _bad_request(str(exc)) from exc

    now = _now_ms(now_ms)
    records: list[ProfileRecord] = []
    received = 0
    for series in request.series:
        labels = _push_labels([(pair.name, pair.value) for pair in series.labels])
        for sample in series.samples:
            received += 1
            try:
                profile = parse_pprof(sample.raw_profile)
            except DecodeError as exc:
                raise _bad_request(str(exc)) from exc
            problem = _profile_problem(profile)
            if problem:
                raise _bad_request(problem)
            name = labels.get("__name__", "")
            if not name:
                raise _bad_request(
                    f"invalid labels '{_labels_text(labels)}' with error: invalid metric name"
                )
            records.extend(
                _pprof_records(profile, labels, name, fallback_ms=now, split=split_sample_labels)
            )
    if received == 0:
        raise _bad_request("no profiles received")
    return records


def _push_labels(pairs: list[tuple[str, str]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name, value in pairs:
        if not name:
            raise _bad_request(
                f"invalid labels '{_labels_text(dict(pairs))}' with error: invalid label name ''"
            )
        if name in labels:
            raise _bad_request(
                f"profile with labels '{_labels_text(dict(pairs))}' has duplicate label name: "
                f"'{name}'"
            )
        labels[name] = value
    if not labels.get("service_name"):
        labels["service_name"] = UNKNOWN_SERVICE
    return {k: v for k, v in labels.items() if k not in _DROPPED_LABELS}


# --- legacy /ingest -----------------------------------------------------------------------------


def records_from_ingest(
    params: Mapping[str, str],
    body: bytes,
    content_type: str = "",
    *,
    now_ms: int | None = None,
    split_sample_labels: bool = False,
) -> list[ProfileRecord]:
    """Records of a legacy ``/ingest`` request.

    ``params`` are the query parameters (``name``, ``from``, ``until``, ``format``,
    ``sampleRate``, ``spyName``, ...). A ``multipart/form-data`` body is a pprof upload
    (fields ``profile``, ``sample_type_config``); otherwise ``format`` picks ``pprof``,
    ``lines`` or ``folded`` (the default, also for unknown values). ``now_ms`` is the default
    for ``from``/``until``; ``split_sample_labels`` as in :func:`records_from_push`.
    """
    now = _now_ms(now_ms)
    try:
        app_name, user_labels = parse_app_name(params.get("name", ""))
    except ValueError as exc:
        raise _bad_request(f"name: {exc}") from exc
    from_ms = _time_param(params, "from", now)
    until_ms = _time_param(params, "until", now)
    spy = params.get("spyName") or "unknown"
    sample_rate = _sample_rate(params.get("sampleRate"))
    fmt = params.get("format", "")
    media_type, _ = _media_type(content_type)

    if fmt in ("jfr", "speedscope", "trie", "tree"):
        raise _unprocessable(f"format {fmt!r} is not supported by this server")
    if fmt == "pprof" or media_type == "multipart/form-data":
        return _ingest_pprof(
            body,
            content_type,
            app_name=app_name,
            user_labels=user_labels,
            spy=spy,
            from_ms=from_ms,
            until_ms=until_ms,
            split=split_sample_labels,
        )
    stacks = _parse_lines(body) if fmt == "lines" else _parse_folded(body)
    return _folded_records(
        stacks,
        app_name=app_name,
        user_labels=user_labels,
        spy=spy,
        sample_rate=sample_rate,
        from_ms=from_ms,
        until_ms=until_ms,
    )


_SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9_./-]+")
_LABEL_NAME_RE = re.compile(r"[A-Za-z0-9_.]+")


def parse_app_name(name: str) -> tuple[str, dict[str, str]]:
    """Split a legacy ``name`` parameter, ``app.kind{k=v,...}``, into the app name and labels.

    Raises ``ValueError`` for an empty or invalid app name or label name. Labels after the
    closing brace are ignored; a key without ``=`` is dropped.
    """
    app, brace, rest = name.partition("{")
    app = app.strip()
    if not app:
        raise ValueError("service name is required")
    if not _SERVICE_NAME_RE.fullmatch(app):
        bad = next(ch for ch in app if not _SERVICE_NAME_RE.fullmatch(ch))
        raise ValueError(f"invalid service name: {app}: character is not allowed: {bad!r}")
    labels: dict[str, str] = {}
    if brace:
        body = rest.split("}", 1)[0]
        for item in body.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                continue
            key = key.strip()
            if key != "__name__":
                if not key:
                    raise ValueError("label name is required")
                if not _LABEL_NAME_RE.fullmatch(key):
                    bad = next(ch for ch in key if not _LABEL_NAME_RE.fullmatch(ch))
                    raise ValueError(
                        f"invalid label name: {key}: character is not allowed: {bad!r}"
                    )
            labels[key] = value.strip()
    return app, labels


_DURATION_PART = re.compile(r"(\d+)([a-z]+)")
_UNIT_SECONDS = {
    "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600,
    "d": 86_400, "day": 86_400, "w": 604_800, "week": 604_800, "y": 31_536_000, "year": 31_536_000,
}  # fmt: skip


def parse_time_param(text: str, *, now_ms: int) -> int:
    """Milliseconds since the epoch of a legacy ``from``/``until`` value.

    Digits only: ``YYYYMMDD`` (8 digits forming a date), else unix milliseconds (13 digits),
    microseconds (16), nanoseconds (19) or seconds (any other length). Otherwise ``now`` with
    an optional offset: ``now-1h``, ``now-1h30m``, ``now+5m``. Raises ``ValueError``.
    """
    s = text.strip().replace("_", "").replace(",", "").replace(" ", "")
    if s.isdigit():
        if len(s) == 8:
            from datetime import UTC, datetime

            try:
                day = datetime.strptime(s, "%Y%m%d").replace(tzinfo=UTC)
            except ValueError:
                pass
            else:
                return int(day.timestamp() * 1000)
        value = int(s)
        if len(s) == 13:
            return value
        if len(s) == 16:
            return value // 1_000
        if len(s) == 19:
            return value // 1_000_000
        return value * 1_000
    lowered = s.lower()
    if not lowered.startswith("now"):
        raise ValueError(f"cannot parse time {text!r}: use unix seconds/ms/ns, YYYYMMDD or now-1h")
    offset = lowered[3:]
    if not offset:
        return now_ms
    sign = -1 if offset[0] == "-" else 1
    if offset[0] not in "+-":
        raise ValueError(f"cannot parse time {text!r}")
    spec = offset[1:]
    parts = _DURATION_PART.findall(spec)
    if not parts or "".join(n + u for n, u in parts) != spec:
        raise ValueError(f"cannot parse time offset in {text!r}")
    seconds = 0
    for number, unit in parts:
        if unit not in _UNIT_SECONDS:
            raise ValueError(f"unknown time unit {unit!r} in {text!r}")
        seconds += int(number) * _UNIT_SECONDS[unit]
    return now_ms + sign * seconds * 1000


def _time_param(params: Mapping[str, str], key: str, now_ms: int) -> int:
    text = params.get(key, "")
    if not text:
        return now_ms
    try:
        return parse_time_param(text, now_ms=now_ms)
    except ValueError as exc:
        raise _bad_request(f"{key}: {exc}") from exc


def _sample_rate(text: str | None) -> int:
    if not text:
        return DEFAULT_SAMPLE_RATE
    try:
        rate = int(text)
    except ValueError:
        return DEFAULT_SAMPLE_RATE
    return DEFAULT_SAMPLE_RATE if rate < 0 else rate


def _allowed_user_labels(labels: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if not k.startswith("__") or k in _ALLOWED_PRIVATE}


# --- /ingest: pprof -----------------------------------------------------------------------------


def _ingest_pprof(
    body: bytes,
    content_type: str,
    *,
    app_name: str,
    user_labels: Mapping[str, str],
    spy: str,
    from_ms: int,
    until_ms: int,
    split: bool,
) -> list[ProfileRecord]:
    media_type, ct_params = _media_type(content_type)
    config: dict[str, Any] | None = None
    if media_type == "multipart/form-data":
        fields = _multipart_fields(body, ct_params.get("boundary", ""))
        if "prev_profile" in fields:
            raise _unprocessable(_UNSUPPORTED_CLIENT)
        raw = fields.get("profile", b"")
        if "sample_type_config" in fields:
            config = _sample_type_config(fields["sample_type_config"])
    else:
        raw = body
    if not raw:
        return []
    try:
        profile = parse_pprof(raw)
    except DecodeError as exc:
        raise _unprocessable(f"failed to parse pprof: {exc}") from exc

    sample_types = config if config is not None else DEFAULT_SAMPLE_TYPE_CONFIG
    namer: FrameNamer | None = _scripting_namer(spy) if spy in _SCRIPTING_SPIES else None
    if spy == "dotnetspy" or (spy == "unknown" and "inuse-space" in sample_types):
        profile = _fix_dotnet(profile)

    problem = _profile_problem(profile)
    if problem:
        raise _unprocessable(problem)

    name = _guess_metric_name(profile, sample_types)
    labels: dict[str, str] = {"__name__": name, "pyroscope_spy": spy}
    allowed = _allowed_user_labels(user_labels)
    if "service_name" not in allowed:
        labels["service_name"] = app_name
    labels.update(allowed)
    labels = {k: v for k, v in labels.items() if k not in _DROPPED_LABELS}
    if not name:
        raise _unprocessable(
            f"invalid labels '{_labels_text(labels)}' with error: invalid metric name"
        )
    fallback = from_ms
    duration_ms = max(0, until_ms - from_ms)
    return _pprof_records(
        profile,
        labels,
        name,
        fallback_ms=fallback,
        namer=namer,
        duration_ms=duration_ms,
        split=split,
        error=_unprocessable,
    )


def _scripting_namer(spy: str) -> FrameNamer:
    """Frame names ``"<file> <function>"`` as the server rewrites them for scripting spies
    (py-spy frames from absolute paths keep their name)."""

    def name(function: PprofFunction, _line: PprofLine) -> str:
        if spy == "pyspy" and function.filename.startswith("/"):
            return function.name
        return f"{function.filename} {function.name}"

    return name


def _fix_dotnet(profile: PprofProfile) -> PprofProfile:
    """Repair what old .NET profilers send: function ids all 0 (given the ids of the
    locations, in order, when the counts match) and ``-`` in sample type names."""
    functions = profile.function_list
    if all(fn.id == 0 for fn in functions) and len(functions) == len(profile.location_list):
        functions = [
            replace(fn, id=loc.id) for fn, loc in zip(functions, profile.location_list, strict=True)
        ]
    fixed = profile.with_functions(functions)
    fixed.sample_types = [(t.replace("-", "_"), u) for t, u in profile.sample_types]
    return fixed


def _guess_metric_name(profile: PprofProfile, config: Mapping[str, Any]) -> str:
    """The ``__name__`` the server gives an ``/ingest`` pprof, guessed from its sample types."""
    names = [sample_type for sample_type, _unit in profile.sample_types]
    if "wall" in names:
        return "wall"
    guess = ""
    for sample_type in names:
        entry = config.get(sample_type)
        display = entry.get("display-name") if isinstance(entry, Mapping) else None
        guess = display if isinstance(display, str) and display else sample_type
        if "cpu" in guess:
            return "process_cpu"
        if "alloc_" in guess or "inuse_" in guess or guess in ("space", "objects"):
            return "memory"
        if "mutex_" in guess:
            return "mutex"
        if "block_" in guess:
            return "block"
        if "goroutines" in guess:
            return "goroutines"
    return guess


def _sample_type_config(data: bytes) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _unprocessable(f"invalid sample_type_config: {exc}") from exc
    if not isinstance(config, dict) or not all(
        isinstance(v, dict) or v is None for v in config.values()
    ):
        raise _unprocessable("invalid sample_type_config: expected an object of objects")
    return {k: v for k, v in config.items() if v is not None}


# --- shared pprof → records ---------------------------------------------------------------------


def _profile_problem(profile: PprofProfile) -> str | None:
    """The first reason the server's profile validation would refuse ``profile``, if any."""
    if not profile.sample_types:
        return "empty profile"
    if any(loc.id == 0 for loc in profile.location_list):
        return "location id is 0"
    if any(fn.id == 0 for fn in profile.function_list):
        return "function id is 0"
    width = len(profile.sample_types)
    if any(len(sample.values) != width for sample in profile.samples):
        return "sample value length mismatch"
    if any("-" in sample_type for sample_type, _unit in profile.sample_types):
        return "sample type contains -"
    return None


def _pprof_records(
    profile: PprofProfile,
    labels: Mapping[str, str],
    name: str,
    *,
    fallback_ms: int,
    namer: FrameNamer | None = None,
    duration_ms: int | None = None,
    split: bool = False,
    error: Callable[[str], IngestError] = _bad_request,
) -> list[ProfileRecord]:
    if not any(any(sample.values) for sample in profile.samples):
        return []  # nothing left to store once zero samples are dropped
    if profile.time_nanos >= _PLAUSIBLE_TIME_NANOS:
        timestamp_ms = profile.time_nanos // 1_000_000
    else:
        timestamp_ms = fallback_ms
    if profile.duration_nanos > 0 or duration_ms is None:
        duration_ms = profile.duration_nanos // 1_000_000
    period_type, period_unit = profile.period_type
    groups: list[tuple[dict[str, str], list[PprofSample] | None]]
    groups = _label_groups(profile, labels) if split else [(dict(labels), None)]
    records: list[ProfileRecord] = []
    try:
        for group_labels, samples in groups:
            series_labels = dict(sorted(group_labels.items()))
            for index, (sample_type, sample_unit) in enumerate(profile.sample_types):
                records.append(
                    ProfileRecord(
                        labels=dict(series_labels),
                        profile_type=(
                            f"{name}:{sample_type}:{sample_unit}:{period_type}:{period_unit}"
                        ),
                        timestamp_ms=timestamp_ms,
                        stacks=profile.stacks(index, namer=namer, samples=samples),
                        duration_ms=duration_ms,
                        sample_labels=profile.stack_labels(index, namer=namer, samples=samples),
                    )
                )
    except DecodeError as exc:
        raise error(str(exc)) from exc
    return records


def _label_groups(
    profile: PprofProfile, labels: Mapping[str, str]
) -> list[tuple[dict[str, str], list[PprofSample] | None]]:
    """Samples grouped by their string labels (span, trace and profile ids aside), each
    group with its series labels: the sample labels added where the series has none."""
    by_key: dict[tuple[tuple[str, str], ...], list[PprofSample]] = {}
    for sample in profile.samples:
        key = tuple(
            sorted((k, v) for k, v in sample.labels.items() if k not in _SPAN_SAMPLE_LABELS and v)
        )
        by_key.setdefault(key, []).append(sample)
    if not any(by_key):  # no sample carries a label to promote
        return [(dict(labels), None)]
    groups: list[tuple[dict[str, str], list[PprofSample] | None]] = []
    for key in sorted(by_key):
        merged = dict(labels)
        for label_name, value in key:
            merged.setdefault(label_name, value)
        groups.append((merged, by_key[key]))
    return groups


# --- /ingest: folded and lines ------------------------------------------------------------------

# kind suffix of the app name → (__name__, sample type, sample unit); None keeps the kind.
_KINDS: dict[str, tuple[str, str | None, str]] = {
    "cpu": ("process_cpu", "samples", "count"),
    "itimer": ("process_cpu", "samples", "count"),
    "wall": ("wall", "samples", "count"),
    "inuse_objects": ("memory", None, "count"),
    "inuse_space": ("memory", None, "bytes"),
    "alloc_objects": ("memory", None, "count"),
    "alloc_space": ("memory", None, "bytes"),
    "goroutines": ("goroutine", None, "count"),
    "mutex_count": ("mutex", "contentions", "count"),
    "mutex_duration": ("mutex", "delay", "nanoseconds"),
    "block_count": ("block", "contentions", "count"),
    "block_duration": ("block", "delay", "nanoseconds"),
    "lock_count": ("block", "contentions", "count"),
    "lock_duration": ("block", "delay", "nanoseconds"),
    "alloc_in_new_tlab_objects": ("memory", None, "count"),
    "alloc_in_new_tlab_bytes": ("memory", None, "bytes"),
    "alloc_outside_tlab_objects": ("memory", None, "count"),
    "alloc_outside_tlab_bytes": ("memory", None, "bytes"),
    "live": ("memory", None, "count"),
    "exceptions": ("exceptions", "samples", "count"),
    "seconds": ("wall", "samples", "count"),
    "nanoseconds": ("wall", "samples", "count"),
    "microseconds": ("wall", "samples", "count"),
    "milliseconds": ("wall", "samples", "count"),
    "bytes": ("memory", "samples", "bytes"),
}


def _parse_folded(body: bytes) -> dict[Stack, int]:
    """``frame;frame;frame <count>`` per line; lines without a space are skipped."""
    stacks: dict[Stack, int] = {}
    for number, line in enumerate(_text(body).splitlines(), start=1):
        head, space, count = line.rpartition(" ")
        if not space:
            continue
        try:
            value = int(count)
        except ValueError:
            raise _unprocessable(f"line {number}: invalid count {count!r}") from None
        if value < 0:
            raise _unprocessable(f"line {number}: negative count {value}")
        if value and head:
            stack = tuple(head.split(";"))
            stacks[stack] = stacks.get(stack, 0) + value
    return stacks


def _parse_lines(body: bytes) -> dict[Stack, int]:
    """One stack per line, each counting 1."""
    stacks: dict[Stack, int] = {}
    for line in _text(body).splitlines():
        if line:
            stack = tuple(line.split(";"))
            stacks[stack] = stacks.get(stack, 0) + 1
    return stacks


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _unprocessable(f"body is not valid UTF-8: {exc}") from exc


def _folded_records(
    stacks: dict[Stack, int],
    *,
    app_name: str,
    user_labels: Mapping[str, str],
    spy: str,
    sample_rate: int,
    from_ms: int,
    until_ms: int,
) -> list[ProfileRecord]:
    if user_labels.get("profile_id"):
        return []  # the server ignores legacy uploads tagged with a profile id
    service, dot, kind = app_name.rpartition(".")
    if not dot:
        service, kind = app_name, "cpu"
    if kind not in _KINDS:
        raise _bad_request(
            f"pyroscopeIngesterAdapter failed to convert metadata: unknown profile type: {kind}"
        )
    name, sample_type, unit = _KINDS[kind]
    sample_type = sample_type or kind
    period_type = period_unit = ""
    if sample_rate and name in ("process_cpu", "wall"):
        period = 1_000_000_000 // sample_rate
        sample_type = "wall" if name == "wall" else "cpu"
        unit = "nanoseconds"
        period_type, period_unit = "cpu", "nanoseconds"
        stacks = {stack: value * period for stack, value in stacks.items()}
    if not stacks:
        return []
    labels: dict[str, str] = {"__name__": name, "pyroscope_spy": spy}
    allowed = _allowed_user_labels(user_labels)
    labels.update(allowed)
    if "service_name" not in allowed:
        labels["service_name"] = service
    elif "app_name" not in allowed:
        labels["app_name"] = service
    labels = {k: v for k, v in sorted(labels.items()) if k not in _DROPPED_LABELS}
    return [
        ProfileRecord(
            labels=labels,
            profile_type=f"{name}:{sample_type}:{unit}:{period_type}:{period_unit}",
            timestamp_ms=from_ms,
            stacks=stacks,
            duration_ms=max(0, until_ms - from_ms),
        )
    ]


# --- small helpers ------------------------------------------------------------------------------


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``"multipart/form-data; boundary=x"`` → ``("multipart/form-data", {"boundary": "x"})``."""
    head, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, eq, value = item.strip().partition("=")
        if eq:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            params[key.strip().lower()] = value
    return head.strip().lower(), params


def _multipart_fields(body: bytes, boundary: str) -> dict[str, bytes]:
    """Form fields of a ``multipart/form-data`` body by name (the first of each name wins)."""
    if not boundary:
        raise _unprocessable("failed to parse pprof /ingest multipart form: no boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        raise _unprocessable("failed to parse pprof /ingest multipart form: no parts")
    fields: dict[str, bytes] = {}
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            break
        _padding, newline, part = chunk.partition(b"\r\n")
        if not newline:
            raise _unprocessable("failed to parse pprof /ingest multipart form: malformed part")
        if part.startswith(b"\r\n"):
            header_block, content = b"", part[2:]
        else:
            header_block, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                raise _unprocessable(
                    "failed to parse pprof /ingest multipart form: part without headers end"
                )
        name = _form_field_name(header_block)
        if name is not None and name not in fields:
            fields[name] = content
    if not closed:
        raise _unprocessable("failed to parse pprof /ingest multipart form: unexpected end")
    return fields


def _form_field_name(header_block: bytes) -> str | None:
    for raw_line in header_block.split(b"\r\n"):
        key, colon, value = raw_line.decode("utf-8", "replace").partition(":")
        if colon and key.strip().lower() == "content-disposition":
            _disposition, params = _media_type(value)
            return params.get("name")
    return None


def _labels_text(labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"
