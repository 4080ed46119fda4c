"""``config``: list the configured deployments; ``config check``: validate the whole file."""

from __future__ import annotations

from typing import Any

import click

from watcher.cli._common import CONTEXT_SETTINGS, echo, json_option, note
from watcher.cli._core import global_options, state_of
from watcher.cli.output import Column, dumps_json, render_table


def _safe_url(url: object) -> str:
    from watcher.redact import redact_url

    return redact_url(str(url or ""))


def _deployment_rows(settings: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in sorted(settings.deployments):
        dep = settings.deployments[name]
        rows.append(
            {
                "name": name,
                "url": _safe_url(dep.url),
                "auth": str(dep.auth_kind),
                "tenant": getattr(dep, "tenant_id", None) or None,
            }
        )
    return rows


@click.group(
    context_settings=CONTEXT_SETTINGS,
    invoke_without_command=True,
)
@json_option
@global_options
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """List the configured deployments: name, URL (credentials removed) and auth kind.

    Secrets are never shown. Run `config check` to validate the whole file.

    \b
    Examples:
      pyrowatch config
      pyroscope-config --json
      pyrowatch config check ~/.config/pyrowatch/config.toml
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = state_of(ctx).settings()
    rows = _deployment_rows(settings)
    path = str(settings.path) if settings.path else None
    if as_json:
        echo(dumps_json({"path": path, "deployments": rows}))
        return
    if not rows:
        where = path or "no config file found"
        note(f"no deployments configured ({where}); add a [pyroscope.deployments.NAME] table")
        return
    pal = state_of(ctx).palette()
    if path and pal.enabled:
        echo(pal.dim(f"# {path}"))
    has_tenant = any(r["tenant"] for r in rows)
    columns = [Column("NAME", "<"), Column("AUTH", "<")]
    if has_tenant:
        columns.append(Column("TENANT", "<"))
    columns.append(Column("URL", "<"))
    body = []
    for r in rows:
        cells = [r["name"], r["auth"]]
        if has_tenant:
            cells.append(r["tenant"] or "-")
        cells.append(r["url"])
        body.append(cells)
    for line in render_table(columns, body, palette=pal):
        echo(line)


@config.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@global_options
@click.pass_context
def check(ctx: click.Context, file: str | None) -> None:
    """Validate the config file (deployments, watches, alert channels); exit 1 on problems.

    FILE defaults to --config, then the usual search order.
    """
    from watcher.config import load_settings

    state = state_of(ctx)
    settings = load_settings(file or state.config)
    state.use_settings(settings)
    if settings.path is None:
        raise click.ClickException(
            "no config file found: pass FILE or --config, or set PYROWATCH_CONFIG"
        )
    watcher = settings.watcher
    echo(
        f"{settings.path}: ok: {len(settings.deployments)} deployments, "
        f"{len(watcher.watch)} watches, {len(watcher.alert)} alert channels"
    )
    for watch in watcher.watch:
        for warning in watch.warnings:
            note(f"warning: {warning}")
