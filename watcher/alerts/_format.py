"""Human wording shared by every channel: summaries, numbers, times and label values.

Pure functions of a :class:`~watcher.findings.Finding`; no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from watcher.findings import Finding

#: Longest ``function`` label value sent to Alertmanager-style receivers.
FUNCTION_LABEL_MAX = 200
_HASH_CHARS = 10

_RESOURCES = {
    "cpu": "CPU",
    "samples": "CPU",
    "wall": "wall time",
    "alloc_space": "allocated memory",
    "alloc_objects": "allocations",
    "alloc_in_new_tlab_bytes": "allocated memory",
    "alloc_in_new_tlab_objects": "allocations",
    "inuse_space": "in-use memory",
    "inuse_objects": "in-use objects",
    "contentions": "lock contentions",
    "lock_count": "lock contentions",
    "delay": "lock wait time",
    "lock_time": "lock wait time",
    "block_count": "blocking events",
    "block_time": "blocking time",
    "goroutine": "goroutines",
    "goroutines": "goroutines",
    "exception": "exceptions",
    "exceptions": "exceptions",
}

_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def resource_name(profile_type: str) -> str:
    """What a profile type measures, for people: ``process_cpu:cpu:...`` -> ``CPU``."""
    parts = profile_type.split(":")
    sample_type = parts[1] if len(parts) >= 2 else parts[0]
    return _RESOURCES.get(sample_type, sample_type.replace("_", " ") or profile_type)


def function_label(function: str, limit: int = FUNCTION_LABEL_MAX) -> str:
    """``function`` as a label value of at most ``limit`` characters.

    Longer names keep their start and end with ``~`` and the first ten hex digits of the
    name's SHA-256, so two long names with a common prefix stay distinct and stable.
    """
    if len(function) <= limit:
        return function
    digest = hashlib.sha256(function.encode()).hexdigest()[:_HASH_CHARS]
    return function[: limit - _HASH_CHARS - 1] + "~" + digest


def shorten(text: str, limit: int, *, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``ellipsis`` when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ellipsis))] + ellipsis


def shorten_middle(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters by removing its middle, for function names
    whose package path is long but whose last part says what they are."""
    if len(text) <= limit:
        return text
    if limit < 3:
        return text[:limit]
    tail = (limit - 1) * 3 // 5
    head = limit - 1 - tail
    return text[:head] + "…" + text[len(text) - tail :]


def percent_change(relative: float) -> str:
    """``0.34`` -> ``+34%``, ``0.053`` -> ``+5.3%`` (one decimal below 10 %)."""
    pct = relative * 100
    if abs(pct) >= 10:
        return f"{pct:+.0f}%"
    return f"{pct:+.1f}%"


def share(value: float) -> str:
    """A share of the profile total: ``0.0107`` -> ``1.1%``, ``0.00052`` -> ``0.052%``."""
    pct = value * 100
    if pct >= 10:
        return f"{pct:.0f}%"
    if pct >= 0.1 or pct == 0:
        return f"{pct:.1f}%"
    return f"{pct:.2g}%"


_BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def impact(value: float, unit: str) -> str:
    """Impact per second in the profile's unit: ``+0.9 cores``, ``+1.2 MiB/s``."""
    if unit in ("bytes/s", "B/s"):
        magnitude = abs(value)
        index = 0
        while magnitude >= 1024 and index < len(_BYTE_UNITS) - 1:
            magnitude /= 1024
            index += 1
        sign = "-" if value < 0 else "+"
        return f"{sign}{_number(magnitude)} {_BYTE_UNITS[index]}/s"
    sign = "-" if value < 0 else "+"
    return f"{sign}{_number(abs(value))} {unit}".rstrip()


def _number(value: float) -> str:
    if value >= 10:
        return f"{value:.0f}"
    if value >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def p_relation(value: float) -> str:
    """``<`` when the p-value is below what a double can hold, ``=`` otherwise."""
    return "<" if value < 1e-300 else "="


def p_value(value: float) -> str:
    """``2.1e-07`` style for small p-values, two decimals otherwise."""
    if value < 1e-300:
        return "1e-300"  # below double precision: shown as an upper bound by callers
    if value < 0.001:
        return f"{value:.1e}"
    return f"{value:.3f}"


def kind_word(finding: Finding) -> str:
    """``self``, ``total`` or ``cost-shift`` as used in summaries."""
    return "cost-shift" if finding.kind == "cost_shift" else finding.kind


def summary(finding: Finding, *, function_max: int | None = None) -> str:
    """One line: ``+34% self CPU in pkg.Foo (0.8%→1.1% of checkout, +0.9 cores)``.

    ``function_max`` shortens a long function name by cutting out its middle.
    """
    function = finding.function
    if function_max is not None:
        function = shorten_middle(function, function_max)
    return (
        f"{percent_change(finding.relative_change)} {kind_word(finding)} "
        f"{resource_name(finding.profile_type)} in {function} "
        f"({share(finding.baseline_share)}→{share(finding.current_share)} of "
        f"{finding.service}, {impact(finding.impact_per_second, finding.impact_unit)})"
    )


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with a ``Z``, milliseconds only when present (Go's encoding)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: times must be timezone-aware")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


def clock(moment: datetime) -> str:
    """``2024-05-01 12:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def span(start: datetime, end: datetime) -> str:
    """``2024-05-01 12:00–13:00 UTC``, or both full dates when they differ."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    if s.date() == e.date():
        return f"{s:%Y-%m-%d %H:%M}–{e:%H:%M} UTC"
    return f"{s:%Y-%m-%d %H:%M} – {e:%Y-%m-%d %H:%M} UTC"


def description(finding: Finding) -> str:
    """Several sentences: the change, its statistics, baselines, callers and versions."""
    parts = [
        f"{kind_word(finding).capitalize()} share of {finding.function} in {finding.service} "
        f"rose from {share(finding.baseline_share)} to {share(finding.current_share)} "
        f"({percent_change(finding.relative_change)}, 95% CI "
        f"{percent_change(finding.ci_low)} to {percent_change(finding.ci_high)}, "
        f"p {p_relation(finding.p_value)} {p_value(finding.p_value)}) "
        f"in {span(finding.window_start, finding.window_end)}.",
        f"Impact {impact(finding.impact_per_second, finding.impact_unit)}; "
        f"smallest detectable change {percent_change(finding.mde).lstrip('+')}.",
    ]
    if finding.baseline_starts:
        starts = ", ".join(clock(b) for b in finding.baseline_starts)
        parts.append(f"Baseline windows start {starts}.")
    if finding.change_time is not None:
        parts.append(f"Estimated change at {clock(finding.change_time)}.")
    if finding.version_change is not None:
        old, new = finding.version_change
        parts.append(f"Version changed {old} → {new}.")
    else:
        parts.append("No deploy detected.")
    if finding.callers:
        parts.append("Callers: " + " ← ".join(finding.callers) + ".")
    if finding.kind == "cost_shift":
        parts.append("Cost shift: the parent's total did not change significantly.")
    return " ".join(parts)


def severity_rank(severity: str) -> int:
    """Order of severities, higher is worse; unknown values rank as ``warning``."""
    return _SEVERITY_RANK.get(severity, 1)


def ranked(findings: Iterable[Finding]) -> list[Finding]:
    """Findings by severity, then absolute impact, then relative change, worst first."""
    return sorted(
        findings,
        key=lambda f: (
            -severity_rank(f.severity),
            -abs(f.impact_per_second),
            -f.relative_change,
            f.function,
        ),
    )
