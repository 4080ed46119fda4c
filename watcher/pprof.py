"""Read and write pprof profiles (google.v1 ``Profile``, the format Pyroscope ingests and serves).

:func:`parse_pprof` turns pprof bytes (gzipped or not) into a :class:`PprofProfile` with the
string table resolved. :meth:`PprofProfile.stacks` gives the function-name stacks of one
sample type, built the way the Pyroscope server builds its trees:

- a sample's ``location_id`` list is leaf-first, so it is reversed to get a root-first stack;
- a location's ``line`` list has the innermost inlined callee first, so it is reversed too;
- a location without lines is named by its address in lower-case hex without ``0x``;
- samples whose value is 0 are skipped, equal stacks are summed.

:func:`build_pprof` writes a small valid pprof (one sample type) from stacks.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol

from watcher.errors import DecodeError

Stack = tuple[str, ...]

GZIP_MAGIC = b"\x1f\x8b"

__all__ = [
    "GZIP_MAGIC",
    "FrameNamer",
    "HasItems",
    "HasStacks",
    "InvalidUTF8Error",
    "PprofFunction",
    "PprofLine",
    "PprofLocation",
    "PprofProfile",
    "PprofSample",
    "Stack",
    "StacksLike",
    "build_pprof",
    "gunzip_if_needed",
    "parse_pprof",
]


class InvalidUTF8Error(DecodeError):
    """A pprof string-table entry is not valid UTF-8 (the server refuses such profiles)."""

    def __init__(self, index: int, raw: bytes) -> None:
        self.index = index
        self.raw = raw
        shown = raw[:64].hex() + ("..." if len(raw) > 64 else "")
        super().__init__(f"invalid utf8 string hex: {shown}")


@dataclass(frozen=True, slots=True)
class PprofFunction:
    """A pprof ``Function`` with its strings resolved."""

    id: int
    name: str
    system_name: str = ""
    filename: str = ""
    start_line: int = 0


@dataclass(frozen=True, slots=True)
class PprofLine:
    """One (possibly inlined) frame of a location."""

    function_id: int
    line: int = 0


@dataclass(frozen=True, slots=True)
class PprofLocation:
    """A pprof ``Location``; ``lines[0]`` is the innermost inlined callee."""

    id: int
    address: int = 0
    mapping_id: int = 0
    lines: tuple[PprofLine, ...] = ()


@dataclass(frozen=True, slots=True)
class PprofSample:
    """A pprof ``Sample``: leaf-first location ids, one value per sample type, labels."""

    location_ids: tuple[int, ...]
    values: tuple[int, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    num_labels: Mapping[str, tuple[int, str]] = field(default_factory=dict)


#: Names a frame from its function and line; the default uses the function name.
FrameNamer = Callable[[PprofFunction, PprofLine], str]


class PprofProfile:
    """A parsed pprof profile with resolved strings.

    ``sample_types`` are ``(type, unit)`` pairs in file order; ``period_type`` is a
    ``(type, unit)`` pair (``("", "")`` when absent).
    """

    def __init__(
        self,
        *,
        sample_types: list[tuple[str, str]],
        period_type: tuple[str, str],
        period: int,
        time_nanos: int,
        duration_nanos: int,
        samples: list[PprofSample],
        locations: list[PprofLocation],
        functions: list[PprofFunction],
        strings: list[str],
        comments: list[str] | None = None,
        default_sample_type: str = "",
        raw: bytes = b"",
    ) -> None:
        self.sample_types = sample_types
        self.period_type = period_type
        self.period = period
        self.time_nanos = time_nanos
        self.duration_nanos = duration_nanos
        self.samples = samples
        self.location_list = locations
        self.function_list = functions
        self.strings = strings
        self.comments = comments or []
        self.default_sample_type = default_sample_type
        #: The uncompressed pprof bytes this profile was parsed from (empty if built in code).
        self.raw = raw
        self.locations: dict[int, PprofLocation] = {loc.id: loc for loc in locations}
        self.functions: dict[int, PprofFunction] = {fn.id: fn for fn in functions}

    def __repr__(self) -> str:
        types = ",".join(f"{t}/{u}" for t, u in self.sample_types)
        return (
            f"PprofProfile(sample_types=[{types}], samples={len(self.samples)}, "
            f"locations={len(self.location_list)}, functions={len(self.function_list)})"
        )

    def with_functions(self, functions: list[PprofFunction]) -> PprofProfile:
        """A copy of this profile with another function table (locations and samples shared)."""
        return PprofProfile(
            sample_types=list(self.sample_types),
            period_type=self.period_type,
            period=self.period,
            time_nanos=self.time_nanos,
            duration_nanos=self.duration_nanos,
            samples=self.samples,
            locations=self.location_list,
            functions=functions,
            strings=self.strings,
            comments=self.comments,
            default_sample_type=self.default_sample_type,
            raw=self.raw,
        )

    def sample_type_index(self, sample_type: str) -> int:
        """Index of the first sample type named ``sample_type`` (``DecodeError`` if absent)."""
        for index, (name, _unit) in enumerate(self.sample_types):
            if name == sample_type:
                return index
        known = ", ".join(name for name, _ in self.sample_types)
        raise DecodeError(f"profile has no sample type {sample_type!r} (it has: {known})")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < len(self.sample_types):
            raise DecodeError(
                f"sample type index {index} out of range: "
                f"the profile has {len(self.sample_types)} sample types"
            )

    def _frames_of(self, location_id: int, namer: FrameNamer | None) -> Stack:
        location = self.locations.get(location_id)
        if location is None:
            raise DecodeError(f"a sample references location id {location_id}, which is missing")
        if not location.lines:
            return (format(location.address, "x"),)
        names: list[str] = []
        for line in reversed(location.lines):
            function = self.functions.get(line.function_id)
            if function is None:
                # No symbol for this frame: name it like a line-less location.
                names.append(format(location.address, "x"))
            elif namer is None:
                names.append(function.name)
            else:
                names.append(namer(function, line))
        return tuple(names)

    def iter_stacks(
        self,
        index: int,
        *,
        namer: FrameNamer | None = None,
        samples: Iterable[PprofSample] | None = None,
    ) -> Iterator[tuple[Stack, int, PprofSample]]:
        """Samples with a non-zero value at ``index``: ``(root-first stack, value, sample)``.

        ``samples`` restricts the walk to some of this profile's samples.
        """
        self._check_index(index)
        cache: dict[int, Stack] = {}
        for sample in self.samples if samples is None else samples:
            if index >= len(sample.values):
                raise DecodeError(
                    f"a sample has {len(sample.values)} values but the profile has "
                    f"{len(self.sample_types)} sample types"
                )
            value = sample.values[index]
            if value == 0:
                continue
            stack: list[str] = []
            for location_id in reversed(sample.location_ids):
                frames = cache.get(location_id)
                if frames is None:
                    frames = cache[location_id] = self._frames_of(location_id, namer)
                stack.extend(frames)
            yield tuple(stack), value, sample

    def stacks(
        self,
        index: int,
        *,
        namer: FrameNamer | None = None,
        samples: Iterable[PprofSample] | None = None,
    ) -> dict[Stack, int]:
        """Root-first function-name stacks → summed value of sample type ``index``.

        Samples with value 0 are skipped; ``namer`` may rename frames (for example to
        ``"file name"`` for scripting languages); ``samples`` restricts to some samples.
        """
        result: dict[Stack, int] = {}
        for stack, value, _sample in self.iter_stacks(index, namer=namer, samples=samples):
            result[stack] = result.get(stack, 0) + value
        return result

    def stack_labels(
        self,
        index: int,
        *,
        namer: FrameNamer | None = None,
        samples: Iterable[PprofSample] | None = None,
    ) -> dict[Stack, dict[str, str]]:
        """Per stack, the string sample labels that every sample of that stack carries.

        Stacks whose samples share no label are left out. Samples with value 0 are ignored.
        """
        common: dict[Stack, dict[str, str]] = {}
        for stack, _value, sample in self.iter_stacks(index, namer=namer, samples=samples):
            if stack not in common:
                common[stack] = dict(sample.labels)
            else:
                current = common[stack]
                for key in [k for k, v in current.items() if sample.labels.get(k) != v]:
                    del current[key]
        return {stack: labels for stack, labels in common.items() if labels}

    def to_message(self) -> Any:
        """The profile as a ``google.v1.Profile`` message (from the parsed bytes)."""
        from watcher.proto import from_binary, messages

        return from_binary(self.raw, messages().google.Profile)


def gunzip_if_needed(data: bytes, *, max_bytes: int | None = None) -> bytes:
    """``data`` uncompressed when it starts with the gzip magic, else unchanged.

    Raises :class:`DecodeError` on a broken gzip stream or when the result would exceed
    ``max_bytes``.
    """
    if not data.startswith(GZIP_MAGIC):
        return data
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            out = stream.read() if max_bytes is None else stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DecodeError(f"invalid gzip data: {exc}") from exc
    if max_bytes is not None and len(out) > max_bytes:
        raise DecodeError(f"uncompressed payload exceeds the limit of {max_bytes} bytes")
    return out


def parse_pprof(data: bytes, *, max_bytes: int | None = None) -> PprofProfile:
    """Parse pprof bytes, gunzipping first when the gzip magic is present.

    Raises :class:`DecodeError` for a malformed profile and :class:`InvalidUTF8Error` (a
    ``DecodeError``) when a string-table entry is not valid UTF-8.
    """
    from watcher.proto import from_binary, messages

    raw = gunzip_if_needed(data, max_bytes=max_bytes)
    try:
        msg = from_binary(raw, messages().raw_profile)
    except DecodeError as exc:
        raise DecodeError("malformed pprof: the bytes are not a valid google.v1.Profile") from exc
    strings: list[str] = []
    for i, entry in enumerate(msg.string_table):
        try:
            strings.append(entry.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidUTF8Error(i, bytes(entry)) from None

    def s(index: int, what: str) -> str:
        if 0 <= index < len(strings):
            return strings[index]
        if index == 0:  # an empty string table: every index 0 means ""
            return ""
        raise DecodeError(f"{what} string index {index} out of range ({len(strings)} strings)")

    sample_types = [
        (s(vt.type, "sample type"), s(vt.unit, "sample unit")) for vt in msg.sample_type
    ]
    period_type = ("", "")
    if msg.HasField("period_type"):
        period_type = (
            s(msg.period_type.type, "period type"),
            s(msg.period_type.unit, "period unit"),
        )
    functions = [
        PprofFunction(
            id=fn.id,
            name=s(fn.name, "function name"),
            system_name=s(fn.system_name, "function system name"),
            filename=s(fn.filename, "function filename"),
            start_line=fn.start_line,
        )
        for fn in msg.function
    ]
    locations = [
        PprofLocation(
            id=loc.id,
            address=loc.address,
            mapping_id=loc.mapping_id,
            lines=tuple(PprofLine(ln.function_id, ln.line) for ln in loc.line),
        )
        for loc in msg.location
    ]
    samples: list[PprofSample] = []
    for sample in msg.sample:
        labels: dict[str, str] = {}
        num_labels: dict[str, tuple[int, str]] = {}
        for label in sample.label:
            key = s(label.key, "label key")
            if label.str:
                labels[key] = s(label.str, "label value")
            else:
                num_labels[key] = (label.num, s(label.num_unit, "label unit"))
        samples.append(
            PprofSample(
                location_ids=tuple(sample.location_id),
                values=tuple(sample.value),
                labels=labels,
                num_labels=num_labels,
            )
        )
    return PprofProfile(
        sample_types=sample_types,
        period_type=period_type,
        period=msg.period,
        time_nanos=msg.time_nanos,
        duration_nanos=msg.duration_nanos,
        samples=samples,
        locations=locations,
        functions=functions,
        strings=strings,
        comments=[s(c, "comment") for c in msg.comment],
        default_sample_type=s(msg.default_sample_type, "default sample type"),
        raw=raw,
    )


class HasStacks(Protocol):
    """Anything with ``stacks()`` yielding ``(stack, value)`` pairs, like a flame-graph tree."""

    def stacks(self) -> Iterable[tuple[Sequence[str], int]]: ...


class HasItems(Protocol):
    """A mapping-like ``stack → value`` (anything with ``items()``, e.g. a dict)."""

    def items(self) -> AbstractSet[tuple[Sequence[str], int]]: ...


#: What :func:`build_pprof` accepts as stacks.
StacksLike = HasItems | HasStacks | Iterable[tuple[Sequence[str], int]]


def _stack_items(stacks: StacksLike) -> dict[Stack, int]:
    pairs: Iterable[tuple[Sequence[str], int]]
    if hasattr(stacks, "stacks"):
        pairs = stacks.stacks()
    elif hasattr(stacks, "items"):
        pairs = stacks.items()
    else:
        pairs = stacks
    merged: dict[Stack, int] = {}
    for stack, value in pairs:
        key = tuple(stack)
        merged[key] = merged.get(key, 0) + int(value)
    return merged


def build_pprof(
    stacks: StacksLike,
    *,
    sample_type: str,
    sample_unit: str,
    period_type: str = "",
    period_unit: str = "",
    period: int = 0,
    time_nanos: int = 0,
    duration_nanos: int = 0,
    sample_labels: Mapping[Stack, Mapping[str, str]] | None = None,
) -> bytes:
    """Uncompressed pprof bytes holding ``stacks`` (root-first) under one sample type.

    Accepts a mapping ``stack → value``, an iterable of ``(stack, value)`` pairs (equal stacks
    are summed) or an object with ``.stacks()``. Stacks whose total is 0 are left out.
    Functions, locations and strings are deduplicated; ``string_table[0]`` is ``""``; every
    location has one line and lives in one synthetic mapping. ``sample_labels`` adds string
    labels to the sample of a stack. Gzip is left to the caller.
    """
    from watcher.proto import messages

    profile = messages().google.Profile()
    string_ids: dict[str, int] = {}

    def sid(text: str) -> int:
        found = string_ids.get(text)
        if found is None:
            found = string_ids[text] = len(string_ids)
            profile.string_table.append(text)
        return found

    sid("")
    profile.sample_type.add(type=sid(sample_type), unit=sid(sample_unit))
    if period_type or period_unit:
        profile.period_type.type = sid(period_type)
        profile.period_type.unit = sid(period_unit)
    profile.period = period
    profile.time_nanos = time_nanos
    profile.duration_nanos = duration_nanos
    profile.mapping.add(id=1, has_functions=True)

    function_ids: dict[str, int] = {}

    def location_of(name: str) -> int:
        found = function_ids.get(name)
        if found is None:
            found = function_ids[name] = len(function_ids) + 1
            name_id = sid(name)
            profile.function.add(id=found, name=name_id, system_name=name_id)
            location = profile.location.add(id=found, mapping_id=1)
            location.line.add(function_id=found)
        return found

    labels_of = sample_labels or {}
    for stack, value in _stack_items(stacks).items():
        if value == 0:
            continue
        sample = profile.sample.add()
        sample.location_id.extend(location_of(name) for name in reversed(stack))
        sample.value.append(value)
        for key, text in sorted(labels_of.get(stack, {}).items()):
            sample.label.add(key=sid(key), str=sid(text))
    data: bytes = profile.SerializeToString()
    return data
