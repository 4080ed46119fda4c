"""Helpers shared by the watcher commands (``run``, ``check``, ``regressions``, ``snapshots``,
``alerts``, ``db``, ``demo``): opening the app, logging, and rendering findings.

Library modules are imported inside functions: this module is loaded to show ``--help``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from watcher.cli._core import state_of
from watcher.cli.output import Column, render_table, signed_percent, terminal_width, utc_iso

if TYPE_CHECKING:
    from watcher.daemon.app import App
    from watcher.findings import Finding


def setup_logging(ctx: click.Context, *, level: str = "warning", json: bool | None = None) -> None:
    """Daemon logs to stderr: JSON off a terminal, warnings and up unless ``--debug``."""
    from watcher.log import configure_logging

    configure_logging(json=json, level="debug" if state_of(ctx).debug else level)


def open_app(ctx: click.Context, *, check_schema: bool = True, **kwargs: Any) -> App:
    """The :class:`~watcher.daemon.app.App` of the loaded configuration.

    :raises SchemaOutOfDate: the database is not at head (the message names the fix).
    """
    from watcher.daemon.app import App

    app = App(state_of(ctx).settings(), **kwargs)
    if check_schema:
        try:
            app.check_schema()
        except BaseException:
            app.stop(timeout=0)
            raise
    return app


def short_type(profile_type: str) -> str:
    """``cpu`` for the CPU profile type ID; the ID itself when it has no alias."""
    from watcher.profiletypes import alias_for

    return alias_for(profile_type) or profile_type


def share_text(value: float) -> str:
    """A share as a percentage with enough digits for small functions."""
    pct = value * 100
    if pct == 0:
        return "0%"
    if abs(pct) < 1:
        return f"{pct:.2f}%"
    return f"{pct:.1f}%"


def impact_text(value: float, unit: str) -> str:
    """``+0.052 cores``, ``+1.2 MiB/s``: the finding's impact in its unit per second."""
    from watcher.cli.output import format_cores, human_bytes

    sign = "+" if value >= 0 else "-"
    magnitude = abs(value)
    if unit == "cores":
        return f"{sign}{format_cores(magnitude)} cores"
    if unit.startswith("bytes"):
        return f"{sign}{human_bytes(magnitude)}/s"
    return f"{sign}{magnitude:.3g} {unit}"


def p_text(value: float) -> str:
    """A p-value: ``<1e-300`` when it underflows."""
    if value <= 0 or not math.isfinite(value):
        return "<1e-300"
    if value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}"


def ci_text(low: float, high: float) -> str:
    """A confidence interval of a relative change: ``+40.1%..+60.2%``."""
    return f"{signed_percent(low)}..{signed_percent(high)}"


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as JSON (times in ISO 8601 UTC)."""
    return {
        "service": finding.service,
        "profile_type": finding.profile_type,
        "function": finding.function,
        "kind": finding.kind,
        "severity": finding.severity,
        "baseline_share": finding.baseline_share,
        "current_share": finding.current_share,
        "relative_change": finding.relative_change,
        "absolute_change": finding.absolute_change,
        "impact_per_second": finding.impact_per_second,
        "impact_unit": finding.impact_unit,
        "p_value": finding.p_value,
        "ci_low": finding.ci_low,
        "ci_high": finding.ci_high,
        "mde": finding.mde,
        "window_start": utc_iso(finding.window_start),
        "window_end": utc_iso(finding.window_end),
        "baseline_starts": [utc_iso(t) for t in finding.baseline_starts],
        "callers": list(finding.callers),
        "version_change": list(finding.version_change) if finding.version_change else None,
        "persistent": finding.persistent,
        "fingerprint": finding.fingerprint,
    }


def findings_table(findings: Sequence[Finding], *, stream: Any = None) -> list[str]:
    """Findings as aligned lines: service, type, change, shares, impact, p, CI, function."""
    import sys

    columns = [
        Column("SERVICE", "<"),
        Column("TYPE", "<"),
        Column("KIND", "<"),
        Column("SEVERITY", "<"),
        Column("CHANGE"),
        Column("SHARE", "<"),
        Column("IMPACT"),
        Column("P-VALUE"),
        Column("95% CI", "<"),
        Column("FUNCTION", "<"),
    ]
    rows = [
        [
            f.service,
            short_type(f.profile_type),
            f.kind,
            f.severity,
            signed_percent(f.relative_change),
            f"{share_text(f.baseline_share)} -> {share_text(f.current_share)}",
            impact_text(f.impact_per_second, f.impact_unit),
            p_text(f.p_value),
            ci_text(f.ci_low, f.ci_high),
            f.function,
        ]
        for f in findings
    ]
    return render_table(columns, rows, max_width=terminal_width(stream or sys.stdout))


def echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)
