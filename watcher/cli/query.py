"""Discovery and raw commands: ``services``, ``profiles``, ``labels``, ``series``, ``query``."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from watcher.cli import _adapt
from watcher.cli._common import (
    CONTEXT_SETTINGS,
    DURATION,
    deployment_argument,
    echo,
    json_option,
    label_option,
    note,
    open_session,
    range_options,
    resolve_window,
    service_selector,
    type_option,
    window_json,
    window_text,
)
from watcher.cli._core import global_options, state_of
from watcher.cli.output import (
    Column,
    dumps_json,
    human_value,
    render_table,
    short_duration,
    sparkline,
    terminal_width,
    unit_kind_of,
    utc_iso,
)

if TYPE_CHECKING:
    from watcher.selectors import Matcher
    from watcher.times import TimeRange


def _positional_range(
    positional: str | None, range_: timedelta | None, start: str | None, end: str | None
) -> TimeRange:
    if positional is not None:
        if range_ is not None:
            raise click.UsageError("the range is given twice (positional and --range)")
        range_ = DURATION.convert(positional, None, click.get_current_context())
    return resolve_window(range_, start, end)


# --------------------------------------------------------------------------- services


@click.command(context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("range_arg", metavar="[RANGE]", required=False)
@range_options
@json_option
@global_options
@click.pass_context
def services(
    ctx: click.Context,
    deployment: str,
    range_arg: str | None,
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    as_json: bool,
) -> None:
    """Services with profiles in the window (default: the last hour), sorted.

    \b
    Examples:
      pyrowatch services prod
      pyrowatch services prod 24h
      pyroscope-services prod --range 6h
    """
    rng = _positional_range(range_arg, range_, start, end)
    with open_session(ctx, deployment) as s, s.progress("listing services"):
        names = sorted(s.client.label_values("service_name", rng, []))
    if not names:
        note(f"no services with data in {deployment} for {window_text(rng)}")
        if not as_json:
            return
    if as_json:
        echo(dumps_json({"deployment": deployment, "window": window_json(rng), "services": names}))
        return
    for name in names:
        echo(name)


# --------------------------------------------------------------------------- profiles


@click.command(context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("range_arg", metavar="[RANGE]", required=False)
@range_options
@json_option
@global_options
@click.pass_context
def profiles(
    ctx: click.Context,
    deployment: str,
    range_arg: str | None,
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    as_json: bool,
) -> None:
    """Profile types with data in the window, with their aliases and meaning.

    \b
    Examples:
      pyrowatch profiles prod
      pyroscope-profiles prod --range 24h
    """
    from watcher.profiletypes import alias_for

    rng = _positional_range(range_arg, range_, start, end)
    with open_session(ctx, deployment) as s, s.progress("listing profile types"):
        types = s.client.profile_types(rng)
    rows = []
    for pt in types:
        type_id = _adapt.profile_type_id(pt)
        alias = alias_for(type_id) or ""
        meaning = _adapt.describe(type_id).removesuffix(f" ({alias})")
        rows.append(
            {
                "id": type_id,
                "name": _adapt.profile_type_name(pt),
                "alias": alias,
                "description": meaning,
            }
        )
    rows.sort(key=lambda r: r["id"])
    if not rows:
        note(f"no profiles in {deployment} for {window_text(rng)}")
        if not as_json:
            return
    if as_json:
        echo(dumps_json({"deployment": deployment, "window": window_json(rng), "types": rows}))
        return
    pal = state_of(ctx).palette()
    table = render_table(
        [Column("TYPE ID", "<"), Column("NAME", "<"), Column("ALIAS", "<"), Column("MEANING", "<")],
        [[r["id"], r["name"], r["alias"] or "-", r["description"]] for r in rows],
        palette=pal,
    )
    for line in table:
        echo(line)


# --------------------------------------------------------------------------- labels


@click.command(context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("label", required=False)
@range_options
@click.option(
    "--selector",
    "-s",
    metavar="SELECTOR",
    help="Only series matching this selector, e.g. '{service_name=\"checkout\"}'.",
)
@click.option("--service", metavar="NAME", help="Shortcut for a service_name matcher.")
@json_option
@global_options
@click.pass_context
def labels(
    ctx: click.Context,
    deployment: str,
    label: str | None,
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    selector: str | None,
    service: str | None,
    as_json: bool,
) -> None:
    """Label names, or the values of LABEL, in the window (default: the last hour).

    \b
    Examples:
      pyrowatch labels prod
      pyrowatch labels prod pod --selector '{service_name="checkout"}'
      pyroscope-labels prod service_name --range 24h
    """
    from watcher.selectors import Matcher, format_selector, parse_selector

    rng = resolve_window(range_, start, end)
    matchers: list[Matcher] = []
    if selector:
        matchers.extend(parse_selector(selector))
    if service:
        matchers.append(Matcher("service_name", "=", service))
    selectors = [format_selector(matchers)] if matchers else []
    with open_session(ctx, deployment) as s, s.progress("listing labels"):
        if label:
            values = sorted(s.client.label_values(label, rng, selectors))
        else:
            values = sorted(s.client.label_names(rng, selectors))
    if not values:
        what = f"values for label {label!r}" if label else "labels"
        note(f"no {what} in {deployment} for {window_text(rng)}")
        if not as_json:
            return
    if as_json:
        key = "values" if label else "names"
        out = {"deployment": deployment, "window": window_json(rng), key: values}
        if label:
            out["label"] = label
        echo(dumps_json(out))
        return
    for value in values:
        echo(value)


# --------------------------------------------------------------------------- series


@click.command(context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("service")
@range_options
@type_option
@label_option
@click.option(
    "--step",
    type=DURATION,
    help="Bucket width (default: the window split into about 60 points, at least 10s).",
)
@click.option(
    "--group-by", "-g", multiple=True, metavar="LABEL", help="Split series by label (repeatable)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Keep only the top N series.")
@json_option
@global_options
@click.pass_context
def series(
    ctx: click.Context,
    deployment: str,
    service: str,
    range_: timedelta | None,
    start: str | None,
    end: str | None,
    profile_type: str | None,
    labels: tuple[Matcher, ...],
    step: timedelta | None,
    group_by: tuple[str, ...],
    limit: int | None,
    as_json: bool,
) -> None:
    """A service's profile total over time (SelectSeries), as a table, JSON, or sparkline.

    \b
    Examples:
      pyrowatch series prod checkout --range 6h --step 5m
      pyrowatch series prod checkout --type memory --group-by pod
    """
    from watcher.profiletypes import resolve_profile_type

    ptype = profile_type or resolve_profile_type("cpu")
    rng = resolve_window(range_, start, end)
    if step is None:
        step = timedelta(seconds=max(10, round(rng.seconds / 60)))
    selector = service_selector(service, labels)
    with open_session(ctx, deployment) as s, s.progress("fetching series"):
        result = s.client.select_series(
            ptype, selector, rng, step.total_seconds(), list(group_by), limit
        )
    kind = unit_kind_of(_adapt.sample_unit(ptype))
    items = sorted((_adapt.series_item(x) for x in result), key=lambda i: sorted(i[0].items()))
    if not any(pts for _, pts in items):
        note(f"no data for {service} ({ptype}) in {deployment} for {window_text(rng)}")
        if not as_json:
            return
    if as_json:
        echo(
            dumps_json(
                {
                    "deployment": deployment,
                    "service": service,
                    "profile_type": ptype,
                    "window": window_json(rng),
                    "step_seconds": step.total_seconds(),
                    "unit": _adapt.sample_unit(ptype),
                    "series": [
                        {
                            "labels": lbls,
                            "points": [
                                {"timestamp": utc_iso(_adapt.from_ms(t)), "value": v}
                                for t, v in pts
                            ],
                        }
                        for lbls, pts in items
                    ],
                }
            )
        )
        return
    state = state_of(ctx)
    pal = state.palette()
    tty = terminal_width(sys.stdout) is not None
    echo(
        pal.dim(
            f"{deployment} · {service} · {ptype} · {window_text(rng)} "
            f"· step {short_duration(step.total_seconds())}"
        )
    )
    for lbls, pts in items:
        name = ", ".join(f"{k}={v}" for k, v in sorted(lbls.items())) or service
        values = [v for _, v in pts]
        if tty:
            echo(f"{pal.bold(name)}  {sparkline(values)}  max {human_value(max(values), kind)}")
        else:
            echo(name)
        rows = [[utc_iso(_adapt.from_ms(t)), human_value(v, kind)] for t, v in pts]
        for line in render_table([Column("TIME", "<"), Column("VALUE")], rows, palette=pal):
            echo(f"  {line}")


# --------------------------------------------------------------------------- query


@click.command(context_settings=CONTEXT_SETTINGS)
@deployment_argument
@click.argument("method")
@click.argument("body", required=False)
@global_options
@click.pass_context
def query(ctx: click.Context, deployment: str, method: str, body: str | None) -> None:
    """Call a Querier API METHOD with a JSON BODY (default {}), exactly as given.

    METHOD is a QuerierService method (SelectMergeStacktraces, LabelNames, ...) or a full
    path such as querier.v1.QuerierService/ProfileTypes. Prints the response as pretty JSON;
    exits 1 on a Connect error, showing its code and message.

    \b
    Examples:
      pyrowatch query prod ProfileTypes
      pyroscope-query prod LabelNames '{"start":"1714557600000","end":"1714561200000"}'
    """
    import json

    text = "{}" if body is None else body
    if text == "-":
        text = sys.stdin.read()
    try:
        json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"not JSON ({exc}); quote the body in single quotes", param_hint="BODY"
        ) from None
    with open_session(ctx, deployment) as s, s.progress(f"calling {method}"):
        response = _adapt.raw_call(s.client, method, text)
    echo(dumps_json(response))
