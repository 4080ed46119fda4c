"""Slack incoming-webhook notifications in Block Kit, kept within Slack's limits.

One message per alert group (a service's findings in one run). Layout::

    header     ":red_circle: checkout: 3 CPU regressions"            (<= 150 chars)
    section    fields: service, profile type, window, impact, deployment, run
    divider
    section*   the worst findings, several per section               (<= 3,000 chars each)
    context    "+N more findings not shown ..." when some did not fit
    context    baselines, statistics, watch
    section    links: diff in Grafana (Drilldown), diff in Pyroscope, flame graph,
               runbook, silence

The top-level ``text`` is always set: mobile push notifications show only it. The whole
payload stays under :data:`PAYLOAD_BUDGET` characters of JSON (Slack refuses messages
whose blocks total about 13 k characters with ``msg_blocks_too_long``), so findings that
do not fit are counted in a "+N more" line rather than sent. :func:`validate_slack_payload`
checks every limit and is what the tests hold payloads to.

Webhooks cannot thread replies, so a resolved notification is a new message naming the
functions that went back to baseline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from watcher.findings import Finding

from . import _format
from .base import AlertGroup, Notifier

# Limits from Slack's Block Kit reference (messages) and observed aggregate limits.
MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
URL_MAX = 3000
BLOCK_ID_MAX = 255
TEXT_MAX = 40_000
#: Characters of JSON a whole payload may take (Slack starts refusing near 13.2 k).
PAYLOAD_BUDGET = 12_000

#: How many findings a message lists at most before "+N more".
DEFAULT_MAX_FINDINGS = 15

_FIELD_VALUE_MAX = 200
_CONTEXT_ELEMENT_MAX = 300
_FALLBACK_TEXT_MAX = 800
_FUNCTION_MAX = 300
_DOCS = "https://api.slack.com/messaging/webhooks#handling_errors"

_SEVERITY_ICON = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":large_blue_circle:",
}
_RESOLVED_ICON = ":white_check_mark:"

# Error codes Slack answers with (incoming webhooks as plain text, Web API as JSON).
_PERMANENT_CODES = {
    "invalid_token": "the webhook's token was revoked; create a new webhook URL",
    "token_revoked": "the token was revoked; create a new webhook URL",
    "invalid_auth": "the credentials were refused",
    "not_authed": "no credentials were sent",
    "account_inactive": "the installing account is inactive",
    "no_service": "the incoming webhook is disabled or was removed",
    "no_active_hooks": "the incoming webhook is disabled",
    "no_team": "the Slack workspace is gone",
    "team_disabled": "the Slack workspace is disabled",
    "channel_not_found": "the channel was deleted or the webhook lost access to it",
    "channel_is_archived": "the channel is archived",
    "user_not_found": "the user the webhook posts to is gone",
    "action_prohibited": "an administrator restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel",
    "invalid_payload": "Slack refused the payload as malformed",
    "invalid_blocks": "Slack refused the blocks",
    "invalid_blocks_format": "Slack refused the blocks",
    "msg_blocks_too_long": "Slack refused the blocks as too long",
    "no_text": "Slack refused a message without text",
    "missing_text_or_fallback_or_attachments": "Slack refused a message without text",
    "too_many_attachments": "Slack refused the attachments",
}
_RETRYABLE_CODES = {
    "rollup_error",
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """Inline code for a function name: escaped, backticks replaced, length capped."""
    name = _format.shorten_middle(text, _FUNCTION_MAX).replace("`", "'")
    return f"`{escape(name)}`"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _json_len(payload: Mapping[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


# -- building blocks ------------------------------------------------------------------


def _header(group: AlertGroup) -> dict[str, Any]:
    findings = group.ranked_findings
    resource = _format.resource_name(group.profile_type)
    if group.status == "resolved":
        text = f"{_RESOLVED_ICON} Resolved: {group.service} {resource} " + (
            "regression" if len(findings) == 1 else "regressions"
        )
    elif len(findings) == 1:
        top = findings[0]
        text = (
            f"{_SEVERITY_ICON.get(group.severity, '')} {group.service}: "
            f"{_format.percent_change(top.relative_change)} {_format.kind_word(top)} "
            f"{resource} in "
        )
        text += _format.shorten_middle(top.function, max(20, HEADER_MAX - len(text)))
    else:
        text = (
            f"{_SEVERITY_ICON.get(group.severity, '')} {group.service}: "
            f"{_plural(len(findings), resource + ' regression')}"
        )
    text = _format.shorten(" ".join(text.split()), HEADER_MAX)
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(f"*{label}*\n{escape(_format.shorten(value, _FIELD_VALUE_MAX))}")


def _impact_total(findings: Sequence[Finding]) -> str:
    units = {f.impact_unit for f in findings}
    if len(units) != 1:
        return "see findings"
    total = sum(f.impact_per_second for f in findings)
    across = "" if len(findings) == 1 else f" across {len(findings)} functions"
    return _format.impact(total, units.pop()) + across


def _fields(group: AlertGroup) -> dict[str, Any]:
    fields = [
        _field("Service", group.service),
        _field("Profile type", group.profile_type),
        _field("Window", _format.span(group.window_start, group.window_end)),
    ]
    if group.status == "resolved":
        when = group.resolved_at or group.window_end
        fields.append(_field("Resolved", _format.clock(when)))
    else:
        fields.append(_field("Impact", _impact_total(group.findings)))
    if group.deployment:
        fields.append(_field("Deployment", group.deployment))
    fields.append(_field("Run", str(group.run_id)))
    return {"type": "section", "fields": fields[:FIELDS_MAX]}


def _finding_entry(finding: Finding) -> str:
    icon = _SEVERITY_ICON.get(finding.severity, "")
    resource = _format.resource_name(finding.profile_type)
    lines = [
        f"{icon} *{_format.percent_change(finding.relative_change)} "
        f"{_format.kind_word(finding)} {escape(resource)}* in {_code(finding.function)}",
        escape(
            f"{_format.share(finding.baseline_share)}→{_format.share(finding.current_share)} "
            f"of {_format.shorten(finding.service, 100)} · "
            f"{_format.impact(finding.impact_per_second, finding.impact_unit)} · "
            f"p {_format.p_relation(finding.p_value)} {_format.p_value(finding.p_value)} · 95% CI "
            f"{_format.percent_change(finding.ci_low)} to {_format.percent_change(finding.ci_high)}"
        ),
    ]
    extra = []
    if finding.version_change is not None:
        old, new = finding.version_change
        extra.append(f"version {old} → {new}")
    if finding.callers:
        extra.append("called from " + " ← ".join(finding.callers))
    if finding.kind == "cost_shift":
        extra.append("cost shift (parent total unchanged)")
    if extra:
        lines.append("_" + escape(_format.shorten("; ".join(extra), 400)) + "_")
    return "\n".join(lines)


def _resolved_entry(finding: Finding) -> str:
    return f"{_RESOLVED_ICON} {_code(finding.function)}: was " + escape(
        f"{_format.percent_change(finding.relative_change)} {_format.kind_word(finding)} "
        f"({_format.share(finding.baseline_share)}→{_format.share(finding.current_share)})"
    )


def _pack(entries: Sequence[str]) -> list[dict[str, Any]]:
    """Entries joined into as few sections as fit ``SECTION_TEXT_MAX`` each."""
    sections: list[dict[str, Any]] = []
    current = ""
    for entry in entries:
        entry = _format.shorten(entry, SECTION_TEXT_MAX)
        candidate = f"{current}\n\n{entry}" if current else entry
        if len(candidate) <= SECTION_TEXT_MAX:
            current = candidate
            continue
        sections.append({"type": "section", "text": _mrkdwn(current)})
        current = entry
    if current:
        sections.append({"type": "section", "text": _mrkdwn(current)})
    return sections


def _more(hidden: int) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [
            _mrkdwn(f"+{hidden} more " + ("finding" if hidden == 1 else "findings") + " not shown")
        ],
    }


def _context(group: AlertGroup) -> dict[str, Any] | None:
    elements: list[dict[str, Any]] = []
    starts = sorted({b for f in group.findings for b in f.baseline_starts})
    if starts:
        text = "Baselines from " + ", ".join(_format.clock(b) for b in starts[:4])
        if len(starts) > 4:
            text += f" and {len(starts) - 4} more"
        elements.append(_mrkdwn(escape(_format.shorten(text, _CONTEXT_ELEMENT_MAX))))
    if group.status == "firing":
        worst = min(f.p_value for f in group.findings)
        text = (
            f"One-sided rate test on shares of the profile total; "
            f"smallest p {_format.p_relation(worst)} {_format.p_value(worst)}"
        )
        elements.append(_mrkdwn(escape(_format.shorten(text, _CONTEXT_ELEMENT_MAX))))
    if group.watch:
        text = f"Watch {group.watch}"
        elements.append(_mrkdwn(escape(_format.shorten(text, _CONTEXT_ELEMENT_MAX))))
    if not elements:
        return None
    return {"type": "context", "elements": elements[:CONTEXT_ELEMENTS_MAX]}


def _links(group: AlertGroup) -> dict[str, Any] | None:
    candidates = [
        (group.links.drilldown, "Compare in Grafana"),
        (group.links.diff, "Compare in Pyroscope"),
        (group.links.flamegraph, "Flame graph"),
        (group.links.runbook, "Runbook"),
        (group.links.silence, "Silence"),
    ]
    parts: list[str] = []
    for url, label in candidates:
        if not url or len(url) > URL_MAX or any(c in url for c in "<>| \n"):
            continue
        part = f"<{url}|{label}>"
        if len(" · ".join([*parts, part])) > SECTION_TEXT_MAX:
            continue
        parts.append(part)
    if not parts:
        return None
    return {"type": "section", "text": _mrkdwn(" · ".join(parts))}


def _fallback_text(group: AlertGroup) -> str:
    findings = group.ranked_findings
    resource = _format.resource_name(group.profile_type)
    if group.status == "resolved":
        names = ", ".join(_format.shorten_middle(f.function, 120) for f in findings[:3])
        more = f" and {len(findings) - 3} more" if len(findings) > 3 else ""
        text = (
            f"[RESOLVED] {group.service} {resource}: "
            f"{_plural(len(findings), 'regression')} back to baseline ({names}{more})"
        )
    else:
        text = f"[FIRING] {group.service}: {_format.summary(findings[0], function_max=300)}"
        if len(findings) > 1:
            text += f" and {len(findings) - 1} more"
    return escape(_format.shorten(text, _FALLBACK_TEXT_MAX))


def slack_payload(
    group: AlertGroup,
    *,
    max_findings: int = DEFAULT_MAX_FINDINGS,
    budget: int = PAYLOAD_BUDGET,
) -> dict[str, Any]:
    """The incoming-webhook body for ``group``: ``text`` plus Block Kit ``blocks``.

    Lists the worst ``max_findings`` findings that fit in ``budget`` characters of JSON and
    50 blocks; the rest are counted in a "+N more findings not shown" context line.
    """
    findings = group.ranked_findings
    make_entry = _resolved_entry if group.status == "resolved" else _finding_entry
    head = [_header(group), _fields(group), {"type": "divider"}]
    tail = [block for block in (_context(group), _links(group)) if block is not None]
    text = _fallback_text(group)

    def assemble(entries: list[str]) -> dict[str, Any]:
        hidden = len(findings) - len(entries)
        middle = _pack(entries)
        if hidden:
            middle.append(_more(hidden))
        return {"text": text, "blocks": [*head, *middle, *tail]}

    shown: list[str] = []
    payload = assemble(shown)
    for finding in findings[: max(0, max_findings)]:
        candidate = assemble([*shown, make_entry(finding)])
        if len(candidate["blocks"]) > MAX_BLOCKS or _json_len(candidate) > budget:
            break
        shown.append(make_entry(finding))
        payload = candidate
    return payload


def validate_slack_payload(payload: Mapping[str, Any]) -> list[str]:
    """Every way ``payload`` breaks a Slack message limit; empty when it is within them."""
    problems: list[str] = []
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("text: the top-level fallback text is missing or empty")
    elif len(text) > TEXT_MAX:
        problems.append(f"text: {len(text)} characters, more than {TEXT_MAX}")
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return [*problems, "blocks: not a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"blocks: {len(blocks)} blocks, more than {MAX_BLOCKS}")
    for index, block in enumerate(blocks):
        problems.extend(_validate_block(index, block))
    size = _json_len(payload)
    if size > PAYLOAD_BUDGET:
        problems.append(f"payload: {size} characters of JSON, more than {PAYLOAD_BUDGET}")
    return problems


def _text_of(obj: Any) -> str | None:
    if isinstance(obj, Mapping) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


def _validate_block(index: int, block: Any) -> list[str]:
    if not isinstance(block, Mapping):
        return [f"blocks[{index}]: not an object"]
    kind = block.get("type")
    where = f"blocks[{index}] ({kind})"
    problems: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None and (not isinstance(block_id, str) or len(block_id) > BLOCK_ID_MAX):
        problems.append(f"{where}: block_id longer than {BLOCK_ID_MAX}")
    if kind == "header":
        text_obj = block.get("text")
        text = _text_of(text_obj)
        if text is None or not text.strip():
            problems.append(f"{where}: header without text")
        elif len(text) > HEADER_MAX:
            problems.append(f"{where}: header text {len(text)} characters, more than {HEADER_MAX}")
        if isinstance(text_obj, Mapping) and text_obj.get("type") != "plain_text":
            problems.append(f"{where}: header text must be plain_text")
    elif kind == "section":
        text = _text_of(block.get("text"))
        fields = block.get("fields")
        if text is None and not fields:
            problems.append(f"{where}: section needs text or fields")
        if text is not None:
            if not text.strip():
                problems.append(f"{where}: empty section text")
            elif len(text) > SECTION_TEXT_MAX:
                problems.append(
                    f"{where}: section text {len(text)} characters, more than {SECTION_TEXT_MAX}"
                )
        if fields is not None:
            if not isinstance(fields, list):
                problems.append(f"{where}: fields is not a list")
            else:
                if len(fields) > FIELDS_MAX:
                    problems.append(f"{where}: {len(fields)} fields, more than {FIELDS_MAX}")
                for number, item in enumerate(fields):
                    value = _text_of(item)
                    if value is None or not value.strip():
                        problems.append(f"{where}: fields[{number}] without text")
                    elif len(value) > FIELD_TEXT_MAX:
                        problems.append(
                            f"{where}: fields[{number}] {len(value)} characters, "
                            f"more than {FIELD_TEXT_MAX}"
                        )
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            problems.append(f"{where}: context needs 1 to {CONTEXT_ELEMENTS_MAX} elements")
        else:
            if len(elements) > CONTEXT_ELEMENTS_MAX:
                problems.append(
                    f"{where}: {len(elements)} elements, more than {CONTEXT_ELEMENTS_MAX}"
                )
            for number, element in enumerate(elements):
                value = _text_of(element)
                if value is not None and len(value) > CONTEXT_TEXT_MAX:
                    problems.append(
                        f"{where}: elements[{number}] {len(value)} characters, "
                        f"more than {CONTEXT_TEXT_MAX}"
                    )
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            problems.append(f"{where}: actions needs 1 to {ACTIONS_ELEMENTS_MAX} elements")
        else:
            if len(elements) > ACTIONS_ELEMENTS_MAX:
                problems.append(
                    f"{where}: {len(elements)} elements, more than {ACTIONS_ELEMENTS_MAX}"
                )
            for number, element in enumerate(elements):
                label = _text_of(element.get("text")) if isinstance(element, Mapping) else None
                if label is not None and len(label) > BUTTON_TEXT_MAX:
                    problems.append(
                        f"{where}: elements[{number}] text longer than {BUTTON_TEXT_MAX}"
                    )
                url = element.get("url") if isinstance(element, Mapping) else None
                if isinstance(url, str) and len(url) > URL_MAX:
                    problems.append(f"{where}: elements[{number}] url longer than {URL_MAX}")
    elif kind != "divider":
        problems.append(f"{where}: block type not used in pyrowatch messages")
    return problems


def _slack_code(response: httpx.Response) -> str | None:
    try:
        text = response.text.strip()
    except (UnicodeDecodeError, LookupError):
        return None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            return None
        if isinstance(body, dict) and body.get("ok") is False:
            error = body.get("error")
            return str(error) if error else "unknown_error"
        return None
    if text and text != "ok" and len(text) <= 64 and all(c.islower() or c == "_" for c in text):
        return text
    return None


class SlackNotifier(Notifier):
    """A Slack incoming webhook (``kind = "slack"``).

    Optional channel attribute ``max_findings`` caps the findings listed per message.
    """

    kind: ClassVar[str] = "slack"

    def payload(self, group: AlertGroup, *, now: datetime | None = None) -> dict[str, Any]:
        """Block Kit message for ``group``; see :func:`slack_payload`."""
        max_findings = getattr(self.channel, "max_findings", None)
        if not isinstance(max_findings, int) or max_findings <= 0:
            max_findings = DEFAULT_MAX_FINDINGS
        return slack_payload(group, max_findings=max_findings)

    def check_response(self, response: httpx.Response, *, duration: timedelta) -> None:
        """Slack's error codes decide before the status: ``invalid_token`` is permanent
        even on a 500, ``rollup_error`` retryable; 429 keeps its ``Retry-After``."""
        code = _slack_code(response)
        status = response.status_code
        if code is None or status == 429:
            super().check_response(response, duration=duration)
            return
        if code in _PERMANENT_CODES:
            raise self._error(
                f"HTTP {status} {code}: {_PERMANENT_CODES[code]} (see {_DOCS})",
                reason=code,
                status_code=status,
                permanent=True,
                duration=duration,
            )
        if 200 <= status < 300 and code not in _RETRYABLE_CODES:
            raise self._error(
                f"HTTP {status} {code}: Slack did not post the message",
                reason=code,
                status_code=status,
                permanent=True,
                duration=duration,
            )
        if code in _RETRYABLE_CODES and status < 500:
            raise self._error(
                f"HTTP {status} {code}",
                reason=code,
                status_code=status,
                duration=duration,
            )
        super().check_response(response, duration=duration)
