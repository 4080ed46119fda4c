"""Typed results of the Querier API (plain dataclasses: cheap to import and to build).

Each ``from_json`` reads the Connect JSON form: int64 fields may be strings or numbers, and
zero values are absent, so every key has a default. Malformed shapes raise
:class:`~watcher.errors.DecodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from watcher.errors import DecodeError
from watcher.times import TimeRange, from_ms

__all__ = [
    "Exemplar",
    "ProfileStats",
    "ProfileType",
    "RetryEvent",
    "Series",
    "SeriesPoint",
    "StacktraceQuery",
    "labels_from_json",
]

_INT64_MAX = 9223372036854775807
_INT64_MIN = -9223372036854775808


def _int(value: object, what: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool):
        raise DecodeError(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise DecodeError(f"{what}: expected an integer, got {str(value)[:40]!r}")


def _float(value: object, what: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)  # "NaN", "Infinity", "-Infinity" as protojson writes them
        except ValueError:
            pass
    raise DecodeError(f"{what}: expected a number, got {str(value)[:40]!r}")


def _str(value: object, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DecodeError(f"{what}: expected a string, got {type(value).__name__}")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected a list, got {type(value).__name__}")
    return value


def _obj(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what}: expected an object, got {type(value).__name__}")
    return value


def labels_from_json(value: object, what: str = "labels") -> dict[str, str]:
    """``[{"name": k, "value": v}, ...]`` (a ``LabelPair`` list) as a dict."""
    labels: dict[str, str] = {}
    for index, pair in enumerate(_list(value, what)):
        item = _obj(pair, f"{what}[{index}]")
        labels[_str(item.get("name"), f"{what}[{index}].name")] = _str(
            item.get("value"), f"{what}[{index}].value"
        )
    return labels


@dataclass(frozen=True, slots=True)
class ProfileType:
    """One entry of ``ProfileTypes``: the full ``id`` and its parts."""

    id: str
    name: str
    sample_type: str
    sample_unit: str
    period_type: str
    period_unit: str

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> ProfileType:
        """Read a ``types.v1.ProfileType`` message; missing parts come from the ID."""
        pid = _str(msg.get("ID", msg.get("id")), "profileType.ID")
        parts = (pid.split(":") + [""] * 5)[:5]
        return cls(
            id=pid,
            name=_str(msg.get("name"), "profileType.name") or parts[0],
            sample_type=_str(msg.get("sampleType"), "profileType.sampleType") or parts[1],
            sample_unit=_str(msg.get("sampleUnit"), "profileType.sampleUnit") or parts[2],
            period_type=_str(msg.get("periodType"), "profileType.periodType") or parts[3],
            period_unit=_str(msg.get("periodUnit"), "profileType.periodUnit") or parts[4],
        )


@dataclass(frozen=True, slots=True)
class Exemplar:
    """The profile behind a point (``exemplarType`` INDIVIDUAL)."""

    timestamp_ms: int
    profile_id: str
    span_id: str
    trace_id: str
    value: int
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> Exemplar:
        """Read a ``types.v1.Exemplar`` message."""
        return cls(
            timestamp_ms=_int(msg.get("timestamp"), "exemplar.timestamp"),
            profile_id=_str(msg.get("profileId"), "exemplar.profileId"),
            span_id=_str(msg.get("spanId"), "exemplar.spanId"),
            trace_id=_str(msg.get("traceId"), "exemplar.traceId"),
            value=_int(msg.get("value"), "exemplar.value"),
            labels=labels_from_json(msg.get("labels"), "exemplar.labels"),
        )


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One point of a ``SelectSeries`` series: the sum over ``(t - step, t]``."""

    timestamp_ms: int
    value: float
    exemplars: tuple[Exemplar, ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()

    @property
    def timestamp(self) -> datetime:
        """``timestamp_ms`` as a UTC datetime."""
        return from_ms(self.timestamp_ms)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> SeriesPoint:
        """Read a ``types.v1.Point`` message."""
        annotations = tuple(
            (_str(a.get("key"), "annotation.key"), _str(a.get("value"), "annotation.value"))
            for a in (_obj(x, "annotation") for x in _list(msg.get("annotations"), "annotations"))
        )
        return cls(
            timestamp_ms=_int(msg.get("timestamp"), "point.timestamp"),
            value=_float(msg.get("value"), "point.value"),
            exemplars=tuple(
                Exemplar.from_json(_obj(e, "exemplar"))
                for e in _list(msg.get("exemplars"), "point.exemplars")
            ),
            annotations=annotations,
        )


@dataclass(frozen=True, slots=True)
class Series:
    """A labelled time series (labels are the ``groupBy`` labels only)."""

    labels: dict[str, str]
    points: list[SeriesPoint]

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> Series:
        """Read a ``types.v1.Series`` message."""
        return cls(
            labels=labels_from_json(msg.get("labels"), "series.labels"),
            points=[
                SeriesPoint.from_json(_obj(p, "point"))
                for p in _list(msg.get("points"), "series.points")
            ],
        )

    @property
    def total(self) -> float:
        """The sum of the point values."""
        return sum(p.value for p in self.points)


@dataclass(frozen=True, slots=True)
class ProfileStats:
    """``GetProfileStats``: whether anything was ingested and the time span of the data.

    The "nothing ingested" sentinels of the v1 read path (int64 max/min) become ``None``.
    """

    data_ingested: bool
    oldest_profile_ms: int | None
    newest_profile_ms: int | None

    @property
    def oldest_profile_time(self) -> datetime | None:
        """The oldest profile as a UTC datetime."""
        return None if self.oldest_profile_ms is None else from_ms(self.oldest_profile_ms)

    @property
    def newest_profile_time(self) -> datetime | None:
        """The newest profile as a UTC datetime."""
        return None if self.newest_profile_ms is None else from_ms(self.newest_profile_ms)

    @classmethod
    def from_json(cls, msg: Mapping[str, Any]) -> ProfileStats:
        """Read a ``GetProfileStatsResponse``."""
        oldest = _int(msg.get("oldestProfileTime"), "oldestProfileTime")
        newest = _int(msg.get("newestProfileTime"), "newestProfileTime")
        ingested = msg.get("dataIngested", False)
        if not isinstance(ingested, bool):
            raise DecodeError("dataIngested: expected true or false")
        return cls(
            data_ingested=ingested,
            oldest_profile_ms=None if oldest in (0, _INT64_MAX) else oldest,
            newest_profile_ms=None if newest in (0, _INT64_MIN) else newest,
        )


@dataclass(frozen=True, slots=True)
class StacktraceQuery:
    """One side of a ``Diff`` (a ``SelectMergeStacktracesRequest``).

    ``profile_type`` may be an alias; ``selector`` ``None`` means ``{}`` (everything);
    ``call_site`` is a root-first function-name prefix (``stackTraceSelector.callSite``).
    """

    profile_type: str
    selector: str | None
    range: TimeRange
    max_nodes: int | None = None
    call_site: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """What :class:`~watcher.querier.client.QuerierClient` tells ``on_retry`` before it waits.

    ``attempt`` is the attempt that failed (1-based); ``reason`` is e.g. ``503 unavailable``
    or ``connection refused``.
    """

    method: str
    attempt: int
    attempts: int
    delay: float
    reason: str
    status: int | None = None

    def __str__(self) -> str:
        return (
            f"{self.method}: {self.reason}; attempt {self.attempt + 1} of {self.attempts} "
            f"in {self.delay:.1f}s"
        )
