"""watcher.times: durations, points in time, ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from watcher.errors import TimeSpecError
from watcher.times import (
    TimeRange,
    format_duration,
    parse_duration,
    parse_offset,
    parse_time,
    resolve_range,
    to_ms,
    utcnow,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("6h", timedelta(hours=6)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("1w", timedelta(weeks=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        (" 2h ", timedelta(hours=2)),
        ("0s", timedelta(0)),
        ("250us", timedelta(microseconds=250)),
    ],
)
def test_parse_duration_accepts_the_documented_forms(text: str, expected: timedelta) -> None:
    """Every documented duration spelling parses to its timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1", "h", "1x", "-1h", "1h-", "1 h", "1H", "one hour", "1h\n2m"]
)
def test_parse_duration_rejects_bad_input_naming_the_forms(text: str) -> None:
    """Bad durations raise one line that quotes the input and lists the accepted forms."""
    with pytest.raises(TimeSpecError) as info:
        parse_duration(text)
    message = str(info.value)
    assert "30s, 10m, 1h, 1h30m, 7d, 1w or 500ms" in message
    assert "\n" not in message
    assert repr(text)[:20] in message


def test_parse_duration_says_a_unit_is_required_for_bare_numbers() -> None:
    """A bare number is ambiguous, and the message says so."""
    with pytest.raises(TimeSpecError, match="a unit is required"):
        parse_duration("90")


@pytest.mark.parametrize(
    "td",
    [
        timedelta(0),
        timedelta(seconds=30),
        timedelta(hours=1, minutes=30),
        timedelta(days=14),
        timedelta(milliseconds=1500),
        timedelta(microseconds=7),
        timedelta(days=-1),
    ],
)
def test_format_duration_round_trips(td: timedelta) -> None:
    """format_duration writes what parse_duration/parse_offset read back."""
    text = format_duration(td)
    assert (parse_offset(text) if td < timedelta(0) else parse_duration(text)) == td


def test_format_duration_is_short() -> None:
    """The shortest spelling, largest units first; weeks are written as days."""
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(weeks=1)) == "7d"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(hours=-2)) == "-2h"


def test_parse_offset_is_signed() -> None:
    """Baseline offsets keep their sign; no sign means forward."""
    assert parse_offset("-1d") == timedelta(days=-1)
    assert parse_offset("+2h") == timedelta(hours=2)
    assert parse_offset("2h") == timedelta(hours=2)
    with pytest.raises(TimeSpecError, match="-7d"):
        parse_offset("-x")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("now-1h", NOW - timedelta(hours=1)),
        ("now - 1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("now+15m", NOW + timedelta(minutes=15)),
        ("-2h", NOW - timedelta(hours=2)),
        ("-7d", NOW - timedelta(days=7)),
        ("2024-04-30T10:00:00Z", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30T12:00:00+02:00", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30T10:00:00", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30 10:00", datetime(2024, 4, 30, 10, tzinfo=UTC)),
        ("2024-04-30T10:00:00.250Z", datetime(2024, 4, 30, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2024-04-30", datetime(2024, 4, 30, tzinfo=UTC)),
        ("1714557600", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("1714557600.5", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("1714557600123", datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("1714557600123456", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("1714557600123456789", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("0", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_time_accepts_the_documented_forms(text: str, expected: datetime) -> None:
    """Relative, ISO, date and unix forms all give an aware UTC datetime."""
    result = parse_time(text, now=NOW)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "now-",
        "now-1",
        "now*2h",
        "-2x",
        "2024-13-01",
        "12345678901234567890",
        "1714557600123.5",
    ],
)
def test_parse_time_rejects_bad_input_naming_the_forms(text: str) -> None:
    """Bad times raise a one-line TimeSpecError."""
    with pytest.raises(TimeSpecError) as info:
        parse_time(text, now=NOW)
    message = str(info.value)
    assert "\n" not in message
    if text != "1714557600123.5":
        assert "now-1h" in message and "YYYY-MM-DD" in message and "unix" in message


def test_parse_time_treats_a_naive_now_as_utc() -> None:
    """A naive ``now`` is taken as UTC rather than local time."""
    assert parse_time("now-1h", now=NOW.replace(tzinfo=None)) == NOW - timedelta(hours=1)


def test_time_range_exposes_milliseconds_and_seconds() -> None:
    """start_ms/end_ms are exact integers; seconds is the length."""
    rng = TimeRange(
        datetime(2024, 5, 1, 10, tzinfo=UTC), datetime(2024, 5, 1, 11, 0, 0, 1000, tzinfo=UTC)
    )
    assert rng.start_ms == 1714557600000
    assert rng.end_ms == 1714561200001
    assert rng.seconds == pytest.approx(3600.001)
    assert rng.duration == timedelta(hours=1, milliseconds=1)


def test_time_range_normalises_zones_to_utc() -> None:
    """Naive means UTC; other zones are converted."""
    plus2 = timezone(timedelta(hours=2))
    rng = TimeRange(datetime(2024, 5, 1, 10), datetime(2024, 5, 1, 14, tzinfo=plus2))
    assert rng.start == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert rng.end == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert rng.end.tzinfo is UTC


def test_time_range_shifted_last_and_from_ms() -> None:
    """shifted moves both ends; last ends at now; from_ms inverts start_ms/end_ms."""
    rng = TimeRange.last(timedelta(hours=1), now=NOW)
    assert rng == TimeRange(NOW - timedelta(hours=1), NOW)
    week_ago = rng.shifted(timedelta(days=-7))
    assert week_ago.end == NOW - timedelta(days=7)
    assert week_ago.duration == timedelta(hours=1)
    assert TimeRange.from_ms(rng.start_ms, rng.end_ms) == rng
    assert str(rng) == "2024-05-01T11:00:00Z .. 2024-05-01T12:00:00Z (1h)"


def test_time_range_is_frozen_and_refuses_an_inverted_range() -> None:
    """A start after the end is an error; a TimeRange cannot be mutated."""
    with pytest.raises(TimeSpecError, match="after its end"):
        TimeRange(NOW, NOW - timedelta(seconds=1))
    rng = TimeRange(NOW, NOW)
    with pytest.raises(AttributeError):
        rng.start = NOW  # type: ignore[misc]


@pytest.mark.parametrize(
    ("range_", "start", "end", "expected"),
    [
        (None, None, None, (NOW - timedelta(hours=1), NOW)),
        ("6h", None, None, (NOW - timedelta(hours=6), NOW)),
        (timedelta(hours=6), None, None, (NOW - timedelta(hours=6), NOW)),
        ("-6h", None, None, (NOW - timedelta(hours=6), NOW)),
        (None, "-3h", None, (NOW - timedelta(hours=3), NOW)),
        (None, None, "-1d", (NOW - timedelta(days=1, hours=1), NOW - timedelta(days=1))),
        (
            "30m",
            None,
            "2024-05-01T06:00:00Z",
            (datetime(2024, 5, 1, 5, 30, tzinfo=UTC), datetime(2024, 5, 1, 6, tzinfo=UTC)),
        ),
        (
            "30m",
            "2024-05-01T06:00:00Z",
            None,
            (datetime(2024, 5, 1, 6, tzinfo=UTC), datetime(2024, 5, 1, 6, 30, tzinfo=UTC)),
        ),
        (
            None,
            "2024-04-30",
            "2024-05-01",
            (datetime(2024, 4, 30, tzinfo=UTC), datetime(2024, 5, 1, tzinfo=UTC)),
        ),
        (
            None,
            NOW - timedelta(hours=2),
            NOW - timedelta(hours=1),
            (NOW - timedelta(hours=2), NOW - timedelta(hours=1)),
        ),
    ],
)
def test_resolve_range_combinations(
    range_: str | timedelta | None,
    start: str | datetime | None,
    end: str | datetime | None,
    expected: tuple[datetime, datetime],
) -> None:
    """Each combination of range/start/end gives the documented window."""
    rng = resolve_range(range_, start, end, now=NOW)
    assert (rng.start, rng.end) == expected


def test_resolve_range_uses_the_given_default() -> None:
    """Without a range, ``default`` sets the length."""
    rng = resolve_range(now=NOW, default=timedelta(minutes=5))
    assert rng.duration == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("range_", "start", "end", "match"),
    [
        (None, "-1h", "-2h", "must be before the end"),
        (None, "now", "now", "must be before the end"),
        ("1h", "-3h", "-1h", "at most two"),
        ("0s", None, None, "longer than 0s"),
        ("1x", None, None, "invalid duration"),
        (None, "soon", None, "invalid time"),
    ],
)
def test_resolve_range_errors(
    range_: str | None, start: str | None, end: str | None, match: str
) -> None:
    """Inverted, over-specified, empty and unparsable ranges are TimeSpecErrors."""
    with pytest.raises(TimeSpecError, match=match):
        resolve_range(range_, start, end, now=NOW)


def test_utcnow_and_to_ms() -> None:
    """utcnow is aware UTC; to_ms treats naive datetimes as UTC."""
    assert utcnow().tzinfo is UTC
    assert to_ms(datetime(1970, 1, 1, 0, 0, 1)) == 1000
