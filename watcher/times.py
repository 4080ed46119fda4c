"""Durations, points in time and query ranges: the one parser every command uses.

Accepted forms
==============

Durations (:func:`parse_duration`)
    One or more ``<number><unit>`` parts, largest first by convention: ``30s``, ``10m``,
    ``1h``, ``24h``, ``7d``, ``1w``, ``1h30m``, ``500ms``, ``1.5h``. Units: ``ms``, ``s``,
    ``m``, ``h``, ``d``, ``w`` (also ``us``/``µs`` for round trips of
    :func:`format_duration`). A unit is required; a bare number is rejected because it is
    ambiguous.

Points in time (:func:`parse_time`)
    ``now``; ``now-1h`` / ``now+15m``; ``-2h`` (that long before now); ISO 8601 with or
    without a zone (``2024-05-01T12:00:00Z``, ``2024-05-01T14:00:00+02:00``; no zone means
    UTC); a bare date ``YYYY-MM-DD`` (midnight UTC); unix time as digits, read by length:
    up to 10 digits are seconds (a fraction is allowed), 11-13 milliseconds, 14-16
    microseconds, 17-19 nanoseconds.

Ranges (:func:`resolve_range`)
    At most two of ``range``, ``start``, ``end``. ``end`` alone means the range of the
    default length ends there; ``start`` alone runs to now; neither gives the last
    ``default``. The start must be before the end.

Everything returned is a timezone-aware :class:`~datetime.datetime` in UTC or a
:class:`~datetime.timedelta`. Bad input raises :class:`~watcher.errors.TimeSpecError`
with a one-line message naming the accepted forms.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from watcher.errors import TimeSpecError

__all__ = [
    "DURATION_FORMS",
    "TIME_FORMS",
    "TimeRange",
    "format_duration",
    "from_ms",
    "parse_duration",
    "parse_offset",
    "parse_time",
    "resolve_range",
    "to_ms",
    "utcnow",
]

#: The accepted duration forms, as quoted in error messages.
DURATION_FORMS = "a duration such as 30s, 10m, 1h, 1h30m, 7d, 1w or 500ms"
#: The accepted time forms, as quoted in error messages.
TIME_FORMS = (
    "now, now-1h, -2h, an ISO 8601 time (2024-05-01T12:00:00Z; no zone means UTC), "
    "a date YYYY-MM-DD, or unix seconds/milliseconds"
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_UNIT_US: dict[str, int] = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(ms|us|µs|s|m|h|d|w)")
_DURATION = re.compile(rf"(?:{_PART.pattern})+")
_RELATIVE = re.compile(r"now\s*(?:([+-])\s*(\S.*))?")
_UNIX = re.compile(r"(\d{1,19})(?:\.(\d+))?")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _quote(text: str) -> str:
    """``repr`` of user input, shortened, so a message always stays on one line."""
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (exact integer arithmetic; naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The UTC datetime of ``ms`` milliseconds since the epoch."""
    return EPOCH + timedelta(milliseconds=ms)


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``10m``, ``1h30m``, ``7d``, ``1w``, ``500ms`` ... into a timedelta.

    The result is never negative (see :func:`parse_offset` for signed offsets).

    :raises TimeSpecError: for anything else, naming the accepted forms.
    """
    raw = text if isinstance(text, str) else str(text)
    spec = raw.strip()
    if not spec or _DURATION.fullmatch(spec) is None:
        hint = ""
        if spec.lstrip("+-").replace(".", "", 1).isdigit():
            hint = " (a unit is required)"
        raise TimeSpecError(f"invalid duration {_quote(raw)}{hint}: expected {DURATION_FORMS}")
    micros = 0.0
    for number, unit in _PART.findall(spec):
        micros += float(number) * _UNIT_US[unit]
    try:
        return timedelta(microseconds=round(micros))
    except OverflowError as exc:
        raise TimeSpecError(f"duration {_quote(raw)} is too large") from exc


def parse_offset(text: str) -> timedelta:
    """A signed duration: ``-1d`` is one day back, ``+2h`` or ``2h`` two hours forward."""
    spec = text.strip()
    sign = 1
    if spec and spec[0] in "+-":
        sign = -1 if spec[0] == "-" else 1
        spec = spec[1:].lstrip()
    try:
        return sign * parse_duration(spec)
    except TimeSpecError:
        raise TimeSpecError(
            f"invalid offset {_quote(text)}: expected a signed duration such as -1d, -7d or -1h"
        ) from None


def format_duration(td: timedelta) -> str:
    """The shortest :func:`parse_duration` spelling of ``td``: ``1h30m``, ``7d``, ``0s``.

    Weeks are written as days (``14d``); a negative value gets a leading ``-``.
    """
    micros = td // timedelta(microseconds=1)
    if micros == 0:
        return "0s"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms", "us"):
        size = _UNIT_US[unit]
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def _aware_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_time(text: str, *, now: datetime) -> datetime:
    """Parse a point in time (see the module docstring for the forms) relative to ``now``.

    :raises TimeSpecError: naming the accepted forms.
    """
    raw = text if isinstance(text, str) else str(text)
    spec = raw.strip()
    now = _aware_utc(now)
    if not spec:
        raise TimeSpecError(f"invalid time {_quote(raw)}: expected {TIME_FORMS}")
    lowered = spec.lower()

    relative = _RELATIVE.fullmatch(lowered)
    if relative is not None:
        sign, amount = relative.groups()
        if sign is None:
            return now
        try:
            delta = parse_duration(amount)
        except TimeSpecError:
            raise TimeSpecError(f"invalid time {_quote(raw)}: expected {TIME_FORMS}") from None
        return _shift(now, delta if sign == "+" else -delta, f"invalid time {_quote(raw)}")

    if lowered[0] in "+-":
        try:
            delta = parse_duration(lowered[1:])
        except TimeSpecError:
            raise TimeSpecError(f"invalid time {_quote(raw)}: expected {TIME_FORMS}") from None
        return _shift(now, -delta if lowered[0] == "-" else delta, f"invalid time {_quote(raw)}")

    unix = _UNIX.fullmatch(spec)
    if unix is not None:
        return _parse_unix(raw, unix.group(1), unix.group(2))

    try:
        if _DATE_ONLY.fullmatch(spec):
            day = date.fromisoformat(spec)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return _aware_utc(datetime.fromisoformat(spec))
    except (ValueError, OverflowError):
        raise TimeSpecError(f"invalid time {_quote(raw)}: expected {TIME_FORMS}") from None


def _shift(moment: datetime, delta: timedelta, what: str) -> datetime:
    """``moment + delta``, or a TimeSpecError when that is before year 1 or after 9999."""
    try:
        return moment + delta
    except OverflowError:
        raise TimeSpecError(f"{what}: out of range (years 1 to 9999)") from None


def _parse_unix(raw: str, digits: str, fraction: str | None) -> datetime:
    width = len(digits.lstrip("0") or "0")
    if fraction is not None and width > 10:
        raise TimeSpecError(
            f"invalid time {_quote(raw)}: a fraction is only allowed on unix seconds"
        )
    value = int(digits)
    try:
        if width <= 10:
            seconds = timedelta(seconds=value)
            if fraction:
                seconds += timedelta(microseconds=round(float("0." + fraction) * 1e6))
            return EPOCH + seconds
        if width <= 13:
            return EPOCH + timedelta(milliseconds=value)
        if width <= 16:
            return EPOCH + timedelta(microseconds=value)
        return EPOCH + timedelta(microseconds=value // 1000)
    except OverflowError:
        raise TimeSpecError(f"invalid time {_quote(raw)}: out of range") from None


class TimeRange:
    """A half-open query window ``[start, end]`` in UTC; read-only, equal and hashable by
    its two ends.

    Naive datetimes are taken as UTC; aware ones are converted to UTC. ``start`` must not
    be after ``end``.
    """

    __slots__ = ("_start", "_end")

    def __init__(self, start: datetime, end: datetime) -> None:
        start = _aware_utc(start)
        end = _aware_utc(end)
        if start > end:
            raise TimeSpecError(f"time range start {_iso(start)} is after its end {_iso(end)}")
        self._start = start
        self._end = end

    @property
    def start(self) -> datetime:
        """The first moment of the window (aware, UTC)."""
        return self._start

    @property
    def end(self) -> datetime:
        """The end of the window (aware, UTC)."""
        return self._end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeRange):
            return NotImplemented
        return self._start == other._start and self._end == other._end

    def __hash__(self) -> int:
        return hash((self._start, self._end))

    def __repr__(self) -> str:
        return f"TimeRange(start={self._start!r}, end={self._end!r})"

    @classmethod
    def last(cls, duration: timedelta, now: datetime | None = None) -> TimeRange:
        """The ``duration`` ending at ``now`` (default: the current time)."""
        end = _aware_utc(now) if now is not None else utcnow()
        try:
            return cls(end - duration, end)
        except OverflowError:
            raise TimeSpecError(
                f"the {format_duration(duration)} before {_iso(end)}: out of range "
                "(years 1 to 9999)"
            ) from None

    @classmethod
    def from_ms(cls, start_ms: int, end_ms: int) -> TimeRange:
        """A range from two epoch-millisecond values."""
        return cls(from_ms(start_ms), from_ms(end_ms))

    @property
    def start_ms(self) -> int:
        """``start`` in milliseconds since the epoch."""
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        """``end`` in milliseconds since the epoch."""
        return to_ms(self.end)

    @property
    def duration(self) -> timedelta:
        """``end - start``."""
        return self.end - self.start

    @property
    def seconds(self) -> float:
        """The length of the range in seconds."""
        return self.duration.total_seconds()

    def shifted(self, delta: timedelta) -> TimeRange:
        """The same window moved by ``delta`` (negative: into the past)."""
        try:
            return TimeRange(self.start + delta, self.end + delta)
        except OverflowError:
            raise TimeSpecError(
                f"the window {self} moved by {format_duration(delta)}: out of range "
                "(years 1 to 9999)"
            ) from None

    def __str__(self) -> str:
        return f"{_iso(self.start)} .. {_iso(self.end)} ({format_duration(self.duration)})"


def _iso(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


def resolve_range(
    range_: str | timedelta | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    *,
    now: datetime,
    default: timedelta = timedelta(hours=1),
) -> TimeRange:
    """Turn ``--range``, ``--start`` and ``--end`` into one :class:`TimeRange`.

    ======================  ==========================================
    given                   window
    ======================  ==========================================
    nothing                 the last ``default`` before ``now``
    range                   the last ``range`` before ``now``
    start                   ``start`` .. ``now``
    end                     ``end - default`` .. ``end``
    range + end             ``end - range`` .. ``end``
    range + start           ``start`` .. ``start + range``
    start + end             ``start`` .. ``end``
    ======================  ==========================================

    Strings are parsed with :func:`parse_duration`/:func:`parse_time` against ``now``; a
    range may be written with a leading ``-`` (``-1h``).

    :raises TimeSpecError: all three given, a bad value, or a start not before the end.
    """
    now = _aware_utc(now)
    if range_ is not None and start is not None and end is not None:
        raise TimeSpecError("give at most two of range, start and end")
    length: timedelta | None
    if isinstance(range_, str):
        length = parse_duration(range_.strip().removeprefix("-"))
    else:
        length = range_
    if length is not None and length <= timedelta(0):
        raise TimeSpecError(f"the range must be longer than 0s, got {format_duration(length)}")
    start_dt = parse_time(start, now=now) if isinstance(start, str) else start
    end_dt = parse_time(end, now=now) if isinstance(end, str) else end
    if start_dt is not None:
        start_dt = _aware_utc(start_dt)
    if end_dt is not None:
        end_dt = _aware_utc(end_dt)

    if start_dt is not None and end_dt is not None:
        first, last = start_dt, end_dt
    elif start_dt is not None:
        first = start_dt
        last = (
            _shift(start_dt, length, f"the {format_duration(length)} after {_iso(start_dt)}")
            if length is not None
            else now
        )
    else:
        last = end_dt if end_dt is not None else now
        length = length if length is not None else default
        first = _shift(last, -length, f"the {format_duration(length)} before {_iso(last)}")
    if first >= last:
        raise TimeSpecError(f"the start {_iso(first)} must be before the end {_iso(last)}")
    return TimeRange(first, last)
