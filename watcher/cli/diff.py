"""``diff``: which functions grew between a baseline and a comparison window."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from watcher.cli import _adapt
from watcher.cli._common import (
    CONTEXT_SETTINGS,
    DURATION,
    TIME,
    DashArgsCommand,
    deployment_argument,
    echo,
    json_option,
    label_option,
    note,
    open_session,
    service_selector,
    type_option,
    window_json,
    window_text,
)
from watcher.cli._core import global_options, state_of
from watcher.cli.output import (
    Cell,
    Column,
    Palette,
    dumps_json,
    human_rate,
    human_value,
    percent,
    render_table,
    signed_percent,
    signed_pp,
    terminal_width,
    unit_kind_of,
)

if TYPE_CHECKING:
    from watcher.flamegraph.tree import Tree
    from watcher.selectors import Matcher
    from watcher.times import TimeRange

#: Family-wise error rate of the significance mark (Bonferroni over eligible functions).
ALPHA = 0.01
#: Fewest samples a function needs in each window to be tested.
MIN_SAMPLES = 100


@dataclass(frozen=True, slots=True)
class Row:
    """One function in both windows."""

    name: str
    base_self: int
    cmp_self: int
    base_share: float
    cmp_share: float
    base_rate: float
    cmp_rate: float
    p_value: float | None
    status: str  # "new", "gone", "" (in both)
    significance: str  # "yes", "no", "few" (too few samples to test)

    @property
    def change(self) -> float:
        return self.cmp_share - self.base_share

    @property
    def relative(self) -> float:
        if self.base_share == 0:
            return math.inf if self.cmp_share > 0 else 0.0
        return self.cmp_share / self.base_share - 1


@dataclass(frozen=True, slots=True)
class DiffResult:
    """Both windows' totals and every function's row, largest increase in share first."""

    base_total: int
    cmp_total: int
    base_window: TimeRange
    cmp_window: TimeRange
    rows: list[Row]
    tested: int

    @property
    def base_rate(self) -> float:
        return self.base_total / self.base_window.seconds if self.base_window.seconds else 0.0

    @property
    def cmp_rate(self) -> float:
        return self.cmp_total / self.cmp_window.seconds if self.cmp_window.seconds else 0.0


def compare(
    base: Tree,
    cmp: Tree,
    base_window: TimeRange,
    cmp_window: TimeRange,
    *,
    profile_type: str,
    sample_rate: float,
    dispersion: float,
) -> DiffResult:
    """Per-function self shares and rates in both windows, with a significance mark.

    Values become sample counts through the profile type's sample model (CPU and wall time
    at ``sample_rate`` Hz; other types on a nominal scale). A function is tested when, if
    nothing had changed, each window would hold at least :data:`MIN_SAMPLES` samples of it
    (divided by ``dispersion`` for types whose values are not Poisson counts).
    """
    base_ft = _adapt.function_table(base)
    cmp_ft = _adapt.function_table(cmp)
    base_self = {n: s for n, s in base_ft.self_values.items() if s > 0 and n != "other"}
    cmp_self = {n: s for n, s in cmp_ft.self_values.items() if s > 0 and n != "other"}
    t0, t1 = base.total, cmp.total
    s0, s1 = base_window.seconds or 1.0, cmp_window.seconds or 1.0
    k, poisson = _adapt.samples_per_unit(profile_type, sample_rate)
    scale = 1.0 if poisson else dispersion

    eligible: dict[str, float] = {}
    if t0 > 0 and t1 > 0:
        n0_total, n1_total = t0 * k, t1 * k
        for name in set(base_self) | set(cmp_self):
            x0, x1 = base_self.get(name, 0) * k, cmp_self.get(name, 0) * k
            pooled = (x0 + x1) / (n0_total + n1_total)
            if min(pooled * n0_total, pooled * n1_total) / scale < MIN_SAMPLES:
                continue
            eligible[name] = _adapt.rate_test_p(x1, n1_total, x0, n0_total, phi=dispersion)
    tested = len(eligible)
    cutoff = ALPHA / tested if tested else 0.0

    rows: list[Row] = []
    for name in set(base_self) | set(cmp_self):
        b, c = base_self.get(name, 0), cmp_self.get(name, 0)
        status = "new" if b == 0 else ("gone" if c == 0 else "")
        p = eligible.get(name)
        sig = "few" if p is None else ("yes" if p < cutoff else "no")
        rows.append(
            Row(
                name=name,
                base_self=b,
                cmp_self=c,
                base_share=b / t0 if t0 else 0.0,
                cmp_share=c / t1 if t1 else 0.0,
                base_rate=b / s0,
                cmp_rate=c / s1,
                p_value=p,
                status=status,
                significance=sig,
            )
        )
    rows.sort(key=lambda r: (-r.change, -(r.cmp_rate - r.base_rate), r.name))
    return DiffResult(t0, t1, base_window, cmp_window, rows, tested)


def _windows(
    ctx: click.Context,
    times: tuple[str, ...],
    vs: timedelta | None,
    range_: timedelta | None,
    end: str | None,
) -> tuple[TimeRange, TimeRange]:
    from watcher.times import TimeRange, parse_time, resolve_range, utcnow

    now = utcnow().replace(microsecond=0)
    if times and vs is not None:
        raise click.UsageError("give either four times or --vs, not both", ctx)
    if vs is not None:
        cmp = resolve_range(range_, None, parse_time(end, now=now) if end else None, now=now)
        return cmp.shifted(-vs), cmp
    if range_ is not None or end is not None:
        raise click.UsageError("--range and --end go with --vs", ctx)
    if len(times) != 4:
        raise click.UsageError(
            "give four times (BASELINE_START BASELINE_END COMPARISON_START COMPARISON_END), "
            "e.g. -2h -1h -30m now, or a preset such as --vs 1d",
            ctx,
        )
    b0, b1, c0, c1 = (parse_time(TIME.convert(t.strip(), None, ctx), now=now) for t in times)
    for label, a, b in (("baseline", b0, b1), ("comparison", c0, c1)):
        if a >= b:
            raise click.UsageError(f"the {label} window must start before it ends", ctx)
    return TimeRange(b0, b1), TimeRange(c0, c1)


@click.command(cls=DashArgsCommand, context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("service")
@click.argument(
    "times", nargs=-1, metavar="[BASELINE_START BASELINE_END COMPARISON_START COMPARISON_END]"
)
@click.option(
    "--vs",
    type=DURATION,
    metavar="1h|1d|1w",
    help="Compare the last --range with the same window this long before.",
)
@click.option(
    "--range", "range_", type=DURATION, help="With --vs: the comparison window (default 1h)."
)
@click.option("--end", type=TIME, help="With --vs: when the comparison window ends (default now).")
@type_option
@label_option
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=16384,
    show_default=True,
    help="Node budget per window; the rest is summed into 'other'.",
)
@click.option(
    "--top", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="Rows to show."
)
@click.option(
    "--dispersion",
    type=click.FloatRange(min=1),
    help="Variance inflation phi of the rate test (default: the library's conservative "
    "default, as two windows cannot estimate it).",
)
@click.option(
    "--sample-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    help="Sampling rate (Hz) of time profiles, to turn nanoseconds into sample counts.",
)
@json_option
@global_options
@click.pass_context
def diff(
    ctx: click.Context,
    deployment: str,
    service: str,
    times: tuple[str, ...],
    vs: timedelta | None,
    range_: timedelta | None,
    end: str | None,
    profile_type: str | None,
    labels: tuple[Matcher, ...],
    max_nodes: int,
    top: int,
    sample_rate: float,
    dispersion: float | None,
    as_json: bool,
) -> None:
    """Functions whose share of the profile grew from a baseline to a comparison window.

    Shares are self value / window total, so windows of different lengths and traffic
    compare fairly; rates are per second. Rows are sorted by the increase in self share.
    SIG is a one-sided quasi-binomial rate test on sample counts (CPU time at --sample-rate
    Hz), Bonferroni over the tested functions, family-wise alpha 0.01: yes, no, or few
    (under 100 expected samples in a window).

    \b
    Examples:
      pyroscope-diff prod checkout -2h -1h -30m now
      pyroscope-diff prod checkout 2024-05-01T09:00 2024-05-01T10:00 2024-05-02T09:00 now
      pyroscope-diff prod checkout 1714554000 1714557600 1714640400 1714644000
      pyrowatch diff prod checkout --vs 1d --range 1h --label profile_id=debug-x
    """
    from watcher.profiletypes import resolve_profile_type

    base_window, cmp_window = _windows(ctx, times, vs, range_, end)
    ptype = profile_type or resolve_profile_type("cpu")
    selector = service_selector(service, labels)
    with open_session(ctx, deployment) as s, s.progress("fetching both windows"):
        base = _adapt.fetch_tree(s.client, ptype, selector, base_window, max_nodes)
        cmp = _adapt.fetch_tree(s.client, ptype, selector, cmp_window, max_nodes)
    unit = _adapt.sample_unit(ptype)
    kind = unit_kind_of(unit)
    phi = dispersion if dispersion is not None else _adapt.default_dispersion()
    result = compare(
        base,
        cmp,
        base_window,
        cmp_window,
        profile_type=ptype,
        sample_rate=sample_rate,
        dispersion=phi,
    )
    cpu = _adapt.is_cpu(ptype)
    if as_json:
        echo(dumps_json(_json(deployment, service, ptype, selector, unit, result, top)))
    elif result.base_total or result.cmp_total:
        pal = state_of(ctx).palette()
        for line in _lines(deployment, service, ptype, kind, cpu, result, top, pal):
            echo(line)
    if not result.base_total and not result.cmp_total:
        note(
            f"no {ptype} profiles for service {service!r} in {deployment} in either window "
            f"(see: pyrowatch services {deployment})"
        )


def _rate(value: float, kind: str, cpu: bool) -> str:
    return human_rate(value, kind, cpu=cpu)


def _lines(
    deployment: str,
    service: str,
    ptype: str,
    kind: str,
    cpu: bool,
    result: DiffResult,
    top: int,
    pal: Palette,
) -> list[str]:
    lines = [
        pal.bold(f"{deployment} · {service} · {ptype}"),
        f"baseline   {window_text(result.base_window)}  total "
        f"{human_value(result.base_total, kind)} = {_rate(result.base_rate, kind, cpu)}",
        f"comparison {window_text(result.cmp_window)}  total "
        f"{human_value(result.cmp_total, kind)} = {_rate(result.cmp_rate, kind, cpu)}",
    ]
    if not result.base_total:
        lines.append(pal.yellow("baseline window has no data: every function shows as new"))
    if not result.cmp_total:
        lines.append(pal.yellow("comparison window has no data: every function shows as gone"))
    lines.append("")
    columns = [
        Column("#"),
        Column("BASE%"),
        Column("CMP%"),
        Column("CHANGE"),
        Column("REL"),
        Column("BASE/s"),
        Column("CMP/s"),
        Column("SIG", "<"),
        Column("FUNCTION", "<"),
    ]
    body: list[list[str | Cell]] = []
    for i, r in enumerate(result.rows[:top], 1):
        up = r.change > 0
        change_style = ("red",) if up and r.significance == "yes" else ()
        mark = {"new": "  [new]", "gone": "  [gone]"}.get(r.status, "")
        body.append(
            [
                str(i),
                percent(r.base_share),
                percent(r.cmp_share),
                Cell(signed_pp(r.change), change_style),
                signed_percent(r.relative),
                _rate(r.base_rate, kind, cpu).split(" ")[0],
                _rate(r.cmp_rate, kind, cpu).split(" ")[0],
                Cell(r.significance, ("bold",) if r.significance == "yes" else ()),
                Cell(r.name + mark, ("bold",) if r.status == "new" else ()),
            ]
        )
    width = terminal_width(sys.stdout)
    lines += render_table(columns, body, palette=pal, max_width=width)
    if len(result.rows) > top:
        lines.append(pal.dim(f"… {len(result.rows) - top} more functions (--top to see more)"))
    rate_unit = _rate(0, kind, cpu).split(" ", 1)[1] if " " in _rate(0, kind, cpu) else ""
    lines.append(pal.dim(f"rates in {rate_unit or 'per second'}; {result.tested} functions tested"))
    lines.append(_summary(result, kind, cpu))
    return lines


def _summary(result: DiffResult, kind: str, cpu: bool) -> str:
    delta = result.cmp_rate - result.base_rate
    rel = (result.cmp_rate / result.base_rate - 1) if result.base_rate else math.inf
    sign = "+" if delta >= 0 else "-"
    return (
        f"total change: {sign}{_rate(abs(delta), kind, cpu)} "
        f"({_rate(result.base_rate, kind, cpu)} -> {_rate(result.cmp_rate, kind, cpu)}, "
        f"{signed_percent(rel)})"
    )


def _json(
    deployment: str,
    service: str,
    ptype: str,
    selector: str,
    unit: str,
    result: DiffResult,
    top: int,
) -> dict[str, Any]:
    def num(x: float) -> float | None:
        return x if math.isfinite(x) else None

    return {
        "deployment": deployment,
        "service": service,
        "profile_type": ptype,
        "selector": selector,
        "unit": unit,
        "baseline": {
            **window_json(result.base_window),
            "total": result.base_total,
            "total_per_second": result.base_rate,
        },
        "comparison": {
            **window_json(result.cmp_window),
            "total": result.cmp_total,
            "total_per_second": result.cmp_rate,
        },
        "total_change_per_second": result.cmp_rate - result.base_rate,
        "alpha": ALPHA,
        "tested": result.tested,
        "function_count": len(result.rows),
        "functions": [
            {
                "rank": i,
                "name": r.name,
                "status": r.status or "both",
                "baseline_self": r.base_self,
                "comparison_self": r.cmp_self,
                "baseline_share": r.base_share,
                "comparison_share": r.cmp_share,
                "change": r.change,
                "relative_change": num(r.relative),
                "baseline_per_second": r.base_rate,
                "comparison_per_second": r.cmp_rate,
                "p_value": r.p_value,
                "significant": r.significance,
            }
            for i, r in enumerate(result.rows[:top], 1)
        ],
    }
