"""watcher.profiletypes: aliases, ID parsing and units."""

from __future__ import annotations

import pytest

from watcher.errors import ProfileTypeError
from watcher.profiletypes import (
    ALIASES,
    ProfileTypeID,
    alias_for,
    describe,
    is_bytes,
    is_count,
    is_time,
    resolve_profile_type,
    unit_kind,
)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("cpu", "process_cpu:cpu:nanoseconds:cpu:nanoseconds"),
        ("memory", "memory:inuse_space:bytes:space:bytes"),
        ("mem", "memory:inuse_space:bytes:space:bytes"),
        ("inuse", "memory:inuse_space:bytes:space:bytes"),
        ("alloc", "memory:alloc_space:bytes:space:bytes"),
        ("alloc_objects", "memory:alloc_objects:count:space:bytes"),
        ("inuse_objects", "memory:inuse_objects:count:space:bytes"),
        ("goroutine", "goroutines:goroutine:count:goroutine:count"),
        ("goroutines", "goroutines:goroutine:count:goroutine:count"),
        ("mutex", "mutex:delay:nanoseconds:contentions:count"),
        ("block", "block:delay:nanoseconds:contentions:count"),
        ("wall", "wall:wall:nanoseconds:wall:nanoseconds"),
    ],
)
def test_every_alias_maps_to_its_full_id(alias: str, expected: str) -> None:
    """The documented aliases resolve to the documented IDs, case-insensitively."""
    assert resolve_profile_type(alias) == expected
    assert resolve_profile_type(alias.upper()) == expected
    assert ALIASES[alias] == expected


@pytest.mark.parametrize(
    "full",
    [
        "wall:sample:count:wall:microseconds",
        "process_cpu:samples:count::milliseconds",
        "memory:alloc_space:bytes:space:bytes:delta",
    ],
)
def test_ids_with_colons_pass_through(full: str) -> None:
    """Anything with ``:`` and 5 or 6 parts passes unchanged, even unknown IDs."""
    assert resolve_profile_type(full) == full
    assert resolve_profile_type(f"  {full} ") == full


def test_unknown_alias_lists_the_known_ones() -> None:
    """An unknown alias names every known alias and the ID form, on one line."""
    with pytest.raises(ProfileTypeError) as info:
        resolve_profile_type("heap")
    message = str(info.value)
    assert "'heap'" in message
    for alias in ("cpu", "memory", "mem", "inuse", "alloc", "goroutines", "mutex", "block", "wall"):
        assert alias in message
    assert "<name>:<sample-type>:<sample-unit>:<period-type>:<period-unit>" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a:b:c:d", "got 4 parts"),
        ("a:b:c:d:e:f:g", "got 7 parts"),
        ("a:b:c:d:e:cumulative", "only be 'delta'"),
        (":cpu:nanoseconds:cpu:nanoseconds", "must not be empty"),
        ("process_cpu: cpu:nanoseconds:cpu:nanoseconds", "spaces"),
    ],
)
def test_malformed_ids_are_rejected(text: str, match: str) -> None:
    """A colon form with the wrong shape is a ProfileTypeError naming the rule."""
    with pytest.raises(ProfileTypeError, match=match):
        resolve_profile_type(text)


def test_profile_type_id_parse_splits_the_parts() -> None:
    """parse returns the five parts, the delta flag and the ID back."""
    pt = ProfileTypeID.parse("cpu")
    assert pt == ProfileTypeID("process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds")
    assert pt.id == "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    assert str(pt) == pt.id
    delta = ProfileTypeID.parse("memory:alloc_space:bytes:space:bytes:delta")
    assert delta.delta is True
    assert delta.id.endswith(":delta")


@pytest.mark.parametrize(
    ("profile_type", "kind"),
    [
        ("cpu", "nanoseconds"),
        ("wall", "nanoseconds"),
        ("mutex", "nanoseconds"),
        ("wall:wall:microseconds:wall:microseconds", "microseconds"),
        ("process_cpu:samples:count::milliseconds", "count"),
        ("process_cpu:cpu:milliseconds::milliseconds", "milliseconds"),
        ("memory", "bytes"),
        ("alloc", "bytes"),
        ("alloc_objects", "count"),
        ("goroutines", "count"),
    ],
)
def test_unit_kind(profile_type: str, kind: str) -> None:
    """unit_kind reads the sample unit; anything not time or bytes is a count."""
    assert unit_kind(profile_type) == kind


def test_unit_predicates() -> None:
    """is_time/is_bytes/is_count agree with unit_kind."""
    assert is_time("cpu") and not is_bytes("cpu") and not is_count("cpu")
    assert is_time("wall:wall:microseconds:wall:microseconds")
    assert is_bytes("memory") and not is_time("memory")
    assert is_count("goroutines") and not is_time("goroutines")


def test_describe_and_alias_for() -> None:
    """Known IDs get a human name and their alias; unknown ones their parts."""
    assert describe("cpu") == "CPU time (cpu)"
    assert describe("memory:alloc_space:bytes:space:bytes") == "allocated memory (alloc)"
    assert describe("wall:sample:count:wall:microseconds") == "wall sample (count)"
    assert alias_for("memory:inuse_space:bytes:space:bytes") == "memory"
    assert alias_for("wall:sample:count:wall:microseconds") is None
