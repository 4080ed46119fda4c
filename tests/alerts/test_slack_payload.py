"""Slack Block Kit payloads: exact shape, Slack's limits, fallback text, escaping, secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.alerts import AlertLinks, SlackNotifier, build_links, validate_slack_payload
from watcher.alerts.slack import PAYLOAD_BUDGET, slack_payload

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DIFF = "https://pyroscope.example/ui/comparison-diff?x=1"
FLAME = "https://pyroscope.example/ui/?x=1"


def _size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def _all_text(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_single_finding_message_has_the_documented_shape(make_group: Any) -> None:
    """One finding: header, fields, the finding, statistics context and links, exactly."""
    group = make_group(links=AlertLinks(diff=DIFF, flamegraph=FLAME))

    payload = slack_payload(group)

    assert payload == {
        "text": "[FIRING] checkout: +34% self CPU in pkg.Foo (0.8%→1.1% of checkout, +0.9 cores)",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":large_orange_circle: checkout: +34% self CPU in pkg.Foo",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Service*\ncheckout"},
                    {"type": "mrkdwn", "text": f"*Profile type*\n{CPU}"},
                    {"type": "mrkdwn", "text": "*Window*\n2024-05-01 12:00–13:00 UTC"},
                    {"type": "mrkdwn", "text": "*Impact*\n+0.9 cores"},
                    {"type": "mrkdwn", "text": "*Deployment*\nprod"},
                    {"type": "mrkdwn", "text": "*Run*\n42"},
                ],
            },
            {"type": "divider"},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":large_orange_circle: *+34% self CPU* in `pkg.Foo`\n"
                    "0.8%→1.1% of checkout · +0.9 cores · p = 2.1e-07 · 95% CI +20% to +48%",
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Baselines from 2024-04-30 12:00 UTC"},
                    {
                        "type": "mrkdwn",
                        "text": "One-sided rate test on shares of the profile total; "
                        "smallest p = 2.1e-07",
                    },
                    {"type": "mrkdwn", "text": "Watch checkout-cpu"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"<{DIFF}|Compare in Pyroscope> · <{FLAME}|Flame graph>",
                },
            },
        ],
    }
    assert validate_slack_payload(payload) == []


def test_two_hundred_long_named_findings_stay_within_every_limit(
    make_group: Any, make_finding: Any
) -> None:
    """200 findings with 400-character names: valid, truncated with an exact "+N more"."""
    findings = [
        make_finding(
            "github.com/example/" + "very_long_package_name/" * 16 + f"Function{i:03d}",
            impact_per_second=0.01 * (i + 1),
        )
        for i in range(200)
    ]
    group = make_group(findings)

    payload = slack_payload(group, max_findings=200)

    assert validate_slack_payload(payload) == []
    assert len(payload["blocks"]) <= 50
    assert _size(payload) <= PAYLOAD_BUDGET
    shown = [
        name
        for name in (f"Function{i:03d}" for i in range(200))
        if name in json.dumps(payload["blocks"])
    ]
    assert shown, "at least the worst finding is listed"
    assert shown[-1] == "Function199", "the findings with the largest impact come first"
    more = payload["blocks"][-3]
    assert more == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f"+{200 - len(shown)} more findings not shown"}],
    }
    assert payload["text"].startswith("[FIRING] checkout: +34% self CPU in github.com/example/")
    assert payload["text"].endswith(" and 199 more")


def test_max_findings_caps_the_list_and_counts_the_rest(make_group: Any, make_finding: Any) -> None:
    """With max_findings=3, three findings are listed and the other seven counted."""
    group = make_group([make_finding(f"pkg.F{i}") for i in range(10)])

    payload = slack_payload(group, max_findings=3)

    listed = sum(f"`pkg.F{i}`" in _all_text(payload) for i in range(10))
    assert listed == 3
    assert "+7 more findings not shown" in _all_text(payload)
    assert validate_slack_payload(payload) == []


@pytest.mark.parametrize("status", ["firing", "resolved"])
@pytest.mark.parametrize("count", [1, 2, 200])
@pytest.mark.parametrize("name", ["pkg.Foo", "a<b>&c `x` *y* _z_", "x" * 5000])
def test_top_level_text_is_always_set(
    make_group: Any, make_finding: Any, status: str, count: int, name: str
) -> None:
    """Every message has a non-empty fallback ``text`` and passes validation."""
    group = make_group(
        [make_finding(f"{name}{i}") for i in range(count)],
        status=status,
        resolved_at=T0 + 3 * HOUR if status == "resolved" else None,
    )

    payload = slack_payload(group)

    assert isinstance(payload["text"], str) and payload["text"].strip()
    assert validate_slack_payload(payload) == []


def test_header_of_a_huge_function_name_is_cut_to_150_characters(
    make_group: Any, make_finding: Any
) -> None:
    """A 5,000-character function name is cut in the middle; the header keeps its end."""
    payload = slack_payload(make_group([make_finding("pkg/" + "f" * 5000 + ".Tail")]))

    header = payload["blocks"][0]["text"]["text"]
    assert len(header) == 150
    assert header.startswith(":large_orange_circle: checkout: +34% self CPU in pkg/fff")
    assert "…" in header
    assert header.endswith("ff.Tail")


def test_function_names_are_escaped_for_mrkdwn(make_group: Any, make_finding: Any) -> None:
    """``<``, ``>`` and ``&`` are escaped and backticks cannot close the code span."""
    payload = slack_payload(make_group([make_finding("operator<<&`evil`")]))

    entry = payload["blocks"][3]["text"]["text"]
    assert "`operator&lt;&lt;&amp;'evil'`" in entry
    assert "<<" not in payload["text"]


def test_resolved_message_names_the_functions_back_at_baseline(
    make_group: Any, make_finding: Any
) -> None:
    """Resolved: a check-mark header, the resolution time, and one line per function."""
    group = make_group(
        [make_finding("pkg.Foo"), make_finding("pkg.Bar", relative_change=0.12)],
        status="resolved",
        resolved_at=T0 + 5 * HOUR,
    )

    payload = slack_payload(group)

    assert payload["text"] == (
        "[RESOLVED] checkout CPU: 2 regressions back to baseline (pkg.Foo, pkg.Bar)"
    )
    header = payload["blocks"][0]["text"]["text"]
    assert header == ":white_check_mark: Resolved: checkout CPU regressions"
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert "*Resolved*\n2024-05-01 17:00 UTC" in fields
    entries = payload["blocks"][3]["text"]["text"]
    assert entries == (
        ":white_check_mark: `pkg.Foo`: was +34% self (0.8%→1.1%)\n\n"
        ":white_check_mark: `pkg.Bar`: was +12% self (0.8%→1.1%)"
    )
    assert validate_slack_payload(payload) == []


def test_links_never_carry_credentials_or_the_webhook_url(
    make_group: Any, make_channel: Any
) -> None:
    """Credentials in the UI base URL and the secret webhook URL stay out of the payload."""
    links = build_links(
        "https://admin:hunter2@pyroscope.example/ui?api_key=SEKRIT#frag",
        service="checkout",
        profile_type=CPU,
        current=(T0, T0 + HOUR),
        baseline=(T0 - HOUR, T0),
    )
    webhook = "https://hooks.slack.com/services/T0/B0/xoxSECRETtoken"
    notifier = SlackNotifier(make_channel("slack", webhook))

    text = _all_text(notifier.payload(make_group(links=links)))

    for secret in ("admin", "hunter2", "SEKRIT", "api_key", "xoxSECRETtoken", webhook):
        assert secret not in text
    assert "https://pyroscope.example/ui/comparison-diff?" in text


def test_overlong_links_are_left_out_rather_than_breaking_the_message(make_group: Any) -> None:
    """A link longer than Slack's 3,000-character URL limit is dropped."""
    long_link = "https://pyroscope.example/?q=" + "x" * 3000
    payload = slack_payload(make_group(links=AlertLinks(diff=long_link, flamegraph=FLAME)))

    text = _all_text(payload)
    assert long_link not in text
    assert f"<{FLAME}|Flame graph>" in text
    assert validate_slack_payload(payload) == []


def _valid() -> dict[str, Any]:
    return {"text": "hello", "blocks": [{"type": "divider"}]}


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"blocks": []}, "text: the top-level fallback text is missing or empty"),
        ({"text": "  ", "blocks": []}, "text: the top-level fallback text is missing or empty"),
        ({"text": "x" * 40_001}, "text: 40001 characters, more than 40000"),
        ({"text": "t", "blocks": [{"type": "divider"}] * 51}, "blocks: 51 blocks, more than 50"),
        (
            {
                "text": "t",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "blocks[0] (header): header text 151 characters, more than 150",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
            },
            "blocks[0] (header): header text must be plain_text",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}],
            },
            "blocks[0] (section): section text 3001 characters, more than 3000",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}],
            },
            "blocks[0] (section): 11 fields, more than 10",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
            },
            "blocks[0] (section): fields[0] 2001 characters, more than 2000",
        ),
        (
            {"text": "t", "blocks": [{"type": "section"}]},
            "blocks[0] (section): section needs text or fields",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}],
            },
            "blocks[0] (context): 11 elements, more than 10",
        ),
        (
            {"text": "t", "blocks": [{"type": "divider", "block_id": "b" * 256}]},
            "blocks[0] (divider): block_id longer than 255",
        ),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b" * 76},
                                "url": "https://x.example/",
                            }
                        ],
                    }
                ],
            },
            "blocks[0] (actions): elements[0] text longer than 75",
        ),
        (
            {"text": "t" * 12_001, "blocks": []},
            "payload: 12024 characters of JSON, more than 12000",
        ),
    ],
)
def test_validator_reports_each_broken_limit(payload: dict[str, Any], problem: str) -> None:
    """Each limit has its own, precise message."""
    assert problem in validate_slack_payload(payload)


def test_validator_accepts_a_minimal_message() -> None:
    """A divider and a text are a valid message."""
    assert validate_slack_payload(_valid()) == []
