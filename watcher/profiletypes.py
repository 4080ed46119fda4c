"""Profile type aliases and IDs.

A Pyroscope profile type ID has five colon-separated parts, optionally a sixth::

    <name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>[:delta]
    process_cpu:cpu:nanoseconds:cpu:nanoseconds

Users type short aliases (``cpu``, ``alloc``, ``goroutines``, ...); :func:`resolve_profile_type`
turns them into full IDs and lets anything containing ``:`` through after checking its shape,
so IDs this module does not know (``wall:sample:count:wall:microseconds``) still work.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

from watcher.errors import ProfileTypeError

__all__ = [
    "ALIASES",
    "ProfileTypeID",
    "UnitKind",
    "alias_for",
    "describe",
    "is_bytes",
    "is_count",
    "is_time",
    "resolve_profile_type",
    "unit_kind",
]

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
INUSE_SPACE = "memory:inuse_space:bytes:space:bytes"
ALLOC_SPACE = "memory:alloc_space:bytes:space:bytes"
ALLOC_OBJECTS = "memory:alloc_objects:count:space:bytes"
INUSE_OBJECTS = "memory:inuse_objects:count:space:bytes"
GOROUTINES = "goroutines:goroutine:count:goroutine:count"
MUTEX = "mutex:delay:nanoseconds:contentions:count"
BLOCK = "block:delay:nanoseconds:contentions:count"
WALL = "wall:wall:nanoseconds:wall:nanoseconds"

#: Alias -> full profile type ID. Lookups are case-insensitive.
ALIASES: dict[str, str] = {
    "cpu": CPU,
    "memory": INUSE_SPACE,
    "mem": INUSE_SPACE,
    "inuse": INUSE_SPACE,
    "inuse_space": INUSE_SPACE,
    "alloc": ALLOC_SPACE,
    "alloc_space": ALLOC_SPACE,
    "alloc_objects": ALLOC_OBJECTS,
    "inuse_objects": INUSE_OBJECTS,
    "goroutine": GOROUTINES,
    "goroutines": GOROUTINES,
    "mutex": MUTEX,
    "block": BLOCK,
    "wall": WALL,
}

# The alias shown for an ID (the first alias listed for it wins).
_PREFERRED: dict[str, str] = {}
for _alias, _id in ALIASES.items():
    _PREFERRED.setdefault(_id, _alias)

_DESCRIPTIONS: dict[str, str] = {
    CPU: "CPU time",
    INUSE_SPACE: "in-use memory",
    ALLOC_SPACE: "allocated memory",
    ALLOC_OBJECTS: "allocated objects",
    INUSE_OBJECTS: "in-use objects",
    GOROUTINES: "goroutines",
    MUTEX: "mutex wait time",
    BLOCK: "blocking time",
    WALL: "wall-clock time",
}

UnitKind = Literal["nanoseconds", "microseconds", "milliseconds", "bytes", "count"]

_UNIT_KINDS: dict[str, UnitKind] = {
    "nanoseconds": "nanoseconds",
    "nanosecond": "nanoseconds",
    "ns": "nanoseconds",
    "microseconds": "microseconds",
    "microsecond": "microseconds",
    "us": "microseconds",
    "µs": "microseconds",
    "milliseconds": "milliseconds",
    "millisecond": "milliseconds",
    "ms": "milliseconds",
    "bytes": "bytes",
    "byte": "bytes",
}

_FORM = "<name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>[:delta]"


def _known() -> str:
    return ", ".join(ALIASES)


class ProfileTypeID(NamedTuple):
    """The parts of a profile type ID."""

    name: str
    sample_type: str
    sample_unit: str
    period_type: str
    period_unit: str
    delta: bool = False

    @classmethod
    def parse(cls, text: str) -> ProfileTypeID:
        """Parse a full ID or an alias.

        :raises ProfileTypeError: for an unknown alias (listing the known ones) or an ID
            without 5 or 6 parts.
        """
        parts = resolve_profile_type(text).split(":")
        name, sample_type, sample_unit, period_type, period_unit = parts[:5]
        return cls(name, sample_type, sample_unit, period_type, period_unit, len(parts) == 6)

    @property
    def id(self) -> str:
        """The full ID, as the server spells it."""
        parts = [self.name, self.sample_type, self.sample_unit, self.period_type, self.period_unit]
        if self.delta:
            parts.append("delta")
        return ":".join(parts)

    @property
    def unit_kind(self) -> UnitKind:
        """What the sample values measure (see :func:`unit_kind`)."""
        return _UNIT_KINDS.get(self.sample_unit.lower(), "count")

    def __str__(self) -> str:
        return self.id


def resolve_profile_type(text: str) -> str:
    """The full profile type ID for an alias; an ID (containing ``:``) passes through.

    :raises ProfileTypeError: for an unknown alias or a malformed ID.
    """
    spec = text.strip()
    if ":" not in spec:
        full = ALIASES.get(spec.lower())
        if full is None:
            raise ProfileTypeError(
                f"unknown profile type {spec!r}: expected one of {_known()}, or a full ID {_FORM}"
            )
        return full
    parts = spec.split(":")
    if len(parts) not in (5, 6):
        raise ProfileTypeError(
            f"invalid profile type ID {spec!r}: expected {_FORM} (5 or 6 parts), "
            f"got {len(parts)} parts"
        )
    if not parts[0] or not parts[1]:
        raise ProfileTypeError(
            f"invalid profile type ID {spec!r}: the name and the sample type must not be empty"
        )
    if len(parts) == 6 and parts[5] != "delta":
        raise ProfileTypeError(
            f"invalid profile type ID {spec!r}: the sixth part can only be 'delta'"
        )
    if any(p != p.strip() for p in parts):
        raise ProfileTypeError(f"invalid profile type ID {spec!r}: parts must not hold spaces")
    return spec


def alias_for(profile_type: str) -> str | None:
    """The preferred alias of a full ID (``cpu`` for the CPU ID), or ``None``."""
    return _PREFERRED.get(profile_type)


def describe(profile_type: str) -> str:
    """A short human name: ``CPU time (cpu)``, or ``wall sample (count)`` for unknown IDs."""
    pt = ProfileTypeID.parse(profile_type)
    known = _DESCRIPTIONS.get(pt.id)
    if known is not None:
        return f"{known} ({_PREFERRED[pt.id]})"
    return f"{pt.name} {pt.sample_type} ({pt.sample_unit or 'no unit'})"


def unit_kind(profile_type: str) -> UnitKind:
    """``nanoseconds``, ``microseconds``, ``milliseconds``, ``bytes`` or ``count``.

    Any sample unit that is not a time or byte unit (``count``, ``samples``, ``objects``,
    empty) counts as ``count``.
    """
    return ProfileTypeID.parse(profile_type).unit_kind


def is_time(profile_type: str) -> bool:
    """True when sample values are durations (ns, µs or ms): CPU, wall, mutex, block."""
    return unit_kind(profile_type) in ("nanoseconds", "microseconds", "milliseconds")


def is_bytes(profile_type: str) -> bool:
    """True when sample values are bytes (in-use or allocated space)."""
    return unit_kind(profile_type) == "bytes"


def is_count(profile_type: str) -> bool:
    """True when sample values are plain counts (objects, goroutines, samples)."""
    return unit_kind(profile_type) == "count"
