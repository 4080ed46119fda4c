"""Pyroscope wire messages (google.v1 pprof, types.v1, push.v1, querier.v1) as protobuf classes.

The classes are built from descriptors this project writes itself (:mod:`watcher.proto._schema`),
in a private descriptor pool, the first time :func:`messages` is called. Importing this package
does not import protobuf, so the CLI stays quick to start.

Generated classes are dynamic; they are typed ``type[Any]`` here and instances are ``Any``.

JSON follows the protojson rules the Pyroscope server uses: output has lowerCamelCase names
(``profileTypeID``, ``ID``, ``leftTicks``), 64-bit integers as strings, enums as names, and
leaves out zero values; input accepts JSON or proto names, numbers or strings for 64-bit
integers, and ignores unknown fields.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from watcher.errors import DecodeError, WatcherError

if TYPE_CHECKING:
    from google.protobuf.descriptor_pool import DescriptorPool

__all__ = [
    "QUERIER_METHODS",
    "Messages",
    "Package",
    "from_binary",
    "from_json",
    "message_for",
    "messages",
    "to_binary",
    "to_json",
    "to_json_dict",
]

MessageClass = type[Any]


class Package:
    """The message classes of one proto package, by short name (``messages().querier.Level``)."""

    def __init__(self, name: str, classes: Mapping[str, MessageClass]) -> None:
        self._name = name
        self._classes = dict(classes)

    def __getattr__(self, short_name: str) -> MessageClass:
        try:
            return self._classes[short_name]
        except KeyError:
            raise AttributeError(f"{self._name} has no message {short_name!r}") from None

    def __dir__(self) -> list[str]:
        return sorted(self._classes)

    @property
    def names(self) -> tuple[str, ...]:
        """Short names of the messages in this package."""
        return tuple(self._classes)


class Messages:
    """Every message class, by package (``.google``, ``.types``, ``.push``, ``.querier``),
    by full name (:meth:`get`), or by short name when that is unambiguous
    (``messages().PushRequest``; ``Location`` exists in google.v1 and types.v1, so ask the
    package for it).
    """

    def __init__(self, pool: DescriptorPool, classes: Mapping[str, MessageClass]) -> None:
        self.pool = pool
        self._by_full_name = dict(classes)
        by_package: dict[str, dict[str, MessageClass]] = {}
        short: dict[str, list[MessageClass]] = {}
        for full_name, cls in self._by_full_name.items():
            package, _, name = full_name.rpartition(".")
            by_package.setdefault(package, {})[name] = cls
            short.setdefault(name, []).append(cls)
        self._short = {name: found[0] for name, found in short.items() if len(found) == 1}
        self._ambiguous = {name for name, found in short.items() if len(found) > 1}
        self.google = Package("google.v1", by_package.get("google.v1", {}))
        self.types = Package("types.v1", by_package.get("types.v1", {}))
        self.push = Package("push.v1", by_package.get("push.v1", {}))
        self.querier = Package("querier.v1", by_package.get("querier.v1", {}))
        self.raw_profile: MessageClass = _raw_class(pool)

    def get(self, full_name: str) -> MessageClass:
        """The class of a message by full name, e.g. ``"querier.v1.FlameGraph"``."""
        try:
            return self._by_full_name[full_name.lstrip(".")]
        except KeyError:
            raise WatcherError(f"unknown protobuf message {full_name!r}") from None

    def full_names(self) -> tuple[str, ...]:
        """Full names of every public message."""
        return tuple(self._by_full_name)

    def enum_values(self, full_name: str) -> dict[str, int]:
        """Name → number of an enum, e.g. ``enum_values("querier.v1.ProfileFormat")``."""
        try:
            enum = self.pool.FindEnumTypeByName(full_name.lstrip("."))
        except KeyError:
            raise WatcherError(f"unknown protobuf enum {full_name!r}") from None
        return {value.name: value.number for value in enum.values}

    def __getattr__(self, short_name: str) -> MessageClass:
        if short_name.startswith("_"):
            raise AttributeError(short_name)
        if short_name in self._ambiguous:
            raise AttributeError(
                f"message name {short_name!r} is in more than one package; "
                "use messages().<package>.<name> or messages().get(full_name)"
            )
        try:
            return self._short[short_name]
        except KeyError:
            raise AttributeError(f"no message named {short_name!r}") from None


def _raw_class(pool: DescriptorPool) -> MessageClass:
    """The private pprof variant whose string table is ``bytes`` (see :mod:`watcher.pprof`)."""
    from google.protobuf import message_factory

    from watcher.proto import _schema

    return message_factory.GetMessageClass(pool.FindMessageTypeByName(_schema.RAW_PROFILE))


_LOCK = threading.Lock()
_MESSAGES: Messages | None = None


def messages() -> Messages:
    """Build (once, thread-safely) and return every message class."""
    global _MESSAGES
    if _MESSAGES is not None:
        return _MESSAGES
    with _LOCK:
        if _MESSAGES is None:
            _MESSAGES = _build()
        return _MESSAGES


def _build() -> Messages:
    from google.protobuf import descriptor_pool, message_factory

    from watcher.proto import _schema

    pool = descriptor_pool.DescriptorPool()
    for fdp in _schema.file_descriptors():
        pool.Add(fdp)
    classes: dict[str, MessageClass] = {}
    for package, names in _schema.PACKAGES.items():
        for name in names:
            descriptor = pool.FindMessageTypeByName(f"{package}.{name}")
            classes[f"{package}.{name}"] = message_factory.GetMessageClass(descriptor)
    return Messages(pool, classes)


# --- RPC method → message ------------------------------------------------------------------------

#: Querier RPC name → (request, response) full message names.
QUERIER_METHODS: dict[str, tuple[str, str]] = {
    "ProfileTypes": ("querier.v1.ProfileTypesRequest", "querier.v1.ProfileTypesResponse"),
    "LabelValues": ("types.v1.LabelValuesRequest", "types.v1.LabelValuesResponse"),
    "LabelNames": ("types.v1.LabelNamesRequest", "types.v1.LabelNamesResponse"),
    "Series": ("querier.v1.SeriesRequest", "querier.v1.SeriesResponse"),
    "SelectMergeStacktraces": (
        "querier.v1.SelectMergeStacktracesRequest",
        "querier.v1.SelectMergeStacktracesResponse",
    ),
    "SelectMergeSpanProfile": (
        "querier.v1.SelectMergeSpanProfileRequest",
        "querier.v1.SelectMergeSpanProfileResponse",
    ),
    "SelectMergeProfile": ("querier.v1.SelectMergeProfileRequest", "google.v1.Profile"),
    "SelectSeries": ("querier.v1.SelectSeriesRequest", "querier.v1.SelectSeriesResponse"),
    "SelectHeatmap": ("querier.v1.SelectHeatmapRequest", "querier.v1.SelectHeatmapResponse"),
    "Diff": ("querier.v1.DiffRequest", "querier.v1.DiffResponse"),
    "GetProfileStats": ("types.v1.GetProfileStatsRequest", "types.v1.GetProfileStatsResponse"),
    "AnalyzeQuery": ("querier.v1.AnalyzeQueryRequest", "querier.v1.AnalyzeQueryResponse"),
}

_SERVICES: dict[str, dict[str, tuple[str, str]]] = {
    "querier.v1.QuerierService": QUERIER_METHODS,
    "push.v1.PusherService": {"Push": ("push.v1.PushRequest", "push.v1.PushResponse")},
}


def message_for(method: str, request: bool) -> MessageClass:
    """The request (``request=True``) or response class of an RPC.

    ``method`` is a querier method name (``"SelectMergeStacktraces"``) or a full procedure
    path (``"/querier.v1.QuerierService/Diff"``, ``"push.v1.PusherService/Push"``).
    """
    name = method.strip("/")
    table: Mapping[str, tuple[str, str]] = QUERIER_METHODS
    if "/" in name:
        service, _, name = name.partition("/")
        table = _SERVICES.get(service, {})
    elif name == "Push":
        table = _SERVICES["push.v1.PusherService"]
    try:
        request_name, response_name = table[name]
    except KeyError:
        known = ", ".join(sorted(QUERIER_METHODS))
        raise WatcherError(f"unknown RPC method {method!r}; querier methods: {known}") from None
    return messages().get(request_name if request else response_name)


# --- encoding helpers ---------------------------------------------------------------------------


def to_json_dict(msg: Any) -> dict[str, Any]:
    """protojson as a dict: JSON names, int64 as strings, enum names, zero values left out."""
    from google.protobuf import json_format

    result: dict[str, Any] = json_format.MessageToDict(msg)
    return result


def to_json(msg: Any) -> bytes:
    """protojson as compact UTF-8 bytes."""
    return json.dumps(to_json_dict(msg), separators=(",", ":"), ensure_ascii=False).encode()


def from_json(data: bytes | str | Mapping[str, Any], cls: MessageClass) -> Any:
    """Parse protojson into a new ``cls`` message; malformed input raises :class:`DecodeError`.

    Accepts JSON or proto field names, int64 as numbers or strings, enum names or numbers,
    standard or URL-safe base64; unknown fields are ignored.
    """
    from google.protobuf import json_format

    if isinstance(data, bytes | str):
        if not data:
            raise DecodeError("zero-length payload is not a valid JSON object")
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DecodeError(f"invalid JSON for {_name_of(cls)}: {exc}") from exc
    else:
        parsed = data
    if not isinstance(parsed, Mapping):
        raise DecodeError(
            f"invalid JSON for {_name_of(cls)}: expected an object, got {type(parsed).__name__}"
        )
    msg = cls()
    try:
        json_format.ParseDict(dict(parsed), msg, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise DecodeError(f"invalid JSON for {_name_of(cls)}: {exc}") from exc
    return msg


def to_binary(msg: Any) -> bytes:
    """The protobuf wire encoding of ``msg``."""
    data: bytes = msg.SerializeToString()
    return data


def from_binary(data: bytes, cls: MessageClass) -> Any:
    """Parse protobuf wire bytes into a new ``cls`` message (:class:`DecodeError` if malformed)."""
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    msg = cls()
    try:
        msg.ParseFromString(data)
    except ProtobufDecodeError as exc:
        raise DecodeError(f"malformed protobuf {_name_of(cls)}: {exc}") from exc
    return msg


def _name_of(cls: MessageClass) -> str:
    descriptor = getattr(cls, "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", getattr(cls, "__name__", "message")))
