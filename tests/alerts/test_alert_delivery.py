"""Delivery over real HTTP against the webhook sink: success and every failure class."""

from __future__ import annotations

import json
import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watcher.alerts import (
    AlertmanagerNotifier,
    DeliveryError,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    build_notifier,
)
from watcher.alerts.base import parse_retry_after
from watcher.errors import NotifierError
from watcher.sandbox.sink import WebhookSink

SECRET_TOKEN = "xoxSECRETtoken1234567890"
NOW = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def _assert_secret_free(error: BaseException, secret_url: str) -> None:
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), rendered):
        assert SECRET_TOKEN not in text
        assert secret_url not in text
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def _deliver_error(notifier: Notifier, group: Any, client: httpx.Client) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        notifier.send(group, client, now=NOW)
    return info.value


@pytest.mark.parametrize("kind", ["slack", "webhook", "alertmanager"])
def test_accepted_delivery_posts_the_payload(
    kind: str,
    sink: WebhookSink,
    secret_url: str,
    client: httpx.Client,
    make_group: Any,
    make_channel: Any,
) -> None:
    """A 2xx answer returns the status and duration; the sink got exactly the payload."""
    notifier = build_notifier(make_channel(kind, secret_url))
    group = make_group()

    result = notifier.send(group, client, now=NOW)

    assert result.status_code == 200
    assert result.duration >= timedelta(0)
    (received,) = sink.wait_for(1)
    assert received.method == "POST"
    expected_path = "/services/T0SECRET/B0SECRET/" + SECRET_TOKEN
    if kind == "alertmanager":
        expected_path += "/api/v2/alerts"
    assert received.path == expected_path
    assert received.json == notifier.payload(group, now=NOW)
    assert received.headers["content-type"] == "application/json; charset=utf-8"
    assert received.headers["user-agent"].startswith("pyrowatch/")


def test_a_payload_rendered_earlier_is_sent_unchanged(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_channel: Any
) -> None:
    """``send`` takes a stored payload as well as a group."""
    notifier = WebhookNotifier(make_channel("webhook", secret_url))
    stored = {"version": "4", "alerts": [], "note": "ünïcode"}

    result = notifier.send(stored, client)

    assert result.status_code == 200
    (received,) = sink.wait_for(1)
    assert received.json == stored


def test_configured_headers_are_sent_and_secret_ones_revealed(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """Channel headers reach the receiver; secret header values are unwrapped for the wire."""
    channel = make_channel(
        "webhook",
        secret_url,
        headers={"Authorization": SecretStr("Bearer HEADERsecret"), "X-Team": "perf"},
    )
    notifier = WebhookNotifier(channel)

    notifier.send(make_group(), client)

    (received,) = sink.wait_for(1)
    assert received.headers["authorization"] == "Bearer HEADERsecret"
    assert received.headers["x-team"] == "perf"
    assert "HEADERsecret" not in repr(notifier)


def test_an_echoed_secret_header_is_redacted_from_errors(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """A receiver that echoes our credentials back does not put them in the error."""
    sink.fail(401, body="bad credentials: HEADERsecret")
    channel = make_channel("webhook", secret_url, headers={"X-Key": SecretStr("HEADERsecret")})

    error = _deliver_error(WebhookNotifier(channel), make_group(), client)

    assert "bad credentials: [REDACTED]" in str(error)
    assert error.permanent is True


def test_429_is_retryable_and_surfaces_retry_after(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """Rate limited: retryable, ``retry_after`` from the header, named in the message."""
    sink.rate_limit(retry_after=7)
    notifier = SlackNotifier(make_channel("slack", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert isinstance(error, NotifierError)
    assert (error.permanent, error.retry_after, error.status_code) == (False, 7.0, 429)
    assert error.reason == "http_429"
    assert "rate limited (HTTP 429); retry after 7s" in str(error)
    assert str(error).startswith("slack channel 'oncall' (127.0.0.1): ")
    _assert_secret_free(error, secret_url)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(
    status: int,
    sink: WebhookSink,
    secret_url: str,
    client: httpx.Client,
    make_group: Any,
    make_channel: Any,
) -> None:
    """5xx answers may succeed later."""
    sink.fail(status, body="upstream sad")
    notifier = WebhookNotifier(make_channel("webhook", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert (error.permanent, error.status_code, error.reason) == (False, status, f"http_{status}")
    assert f"HTTP {status}: upstream sad [retryable]" in str(error)
    _assert_secret_free(error, secret_url)


def test_503_with_retry_after_passes_the_wait_on(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """A Retry-After on a 5xx is surfaced too."""
    sink.fail(503, headers={"Retry-After": "30"})
    notifier = AlertmanagerNotifier(make_channel("alertmanager", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert (error.permanent, error.retry_after) == (False, 30.0)


@pytest.mark.parametrize("status", [302, 400, 401, 403, 404, 410, 413, 422])
def test_client_errors_are_permanent(
    status: int,
    sink: WebhookSink,
    secret_url: str,
    client: httpx.Client,
    make_group: Any,
    make_channel: Any,
) -> None:
    """Retrying a refused request cannot help."""
    sink.fail(status, body=f"refused; you posted to {secret_url}")
    notifier = WebhookNotifier(make_channel("webhook", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert (error.permanent, error.status_code) == (True, status)
    assert "[permanent]" in str(error)
    assert "refused; you posted to [REDACTED]" in str(error), "the echoed URL is scrubbed"
    _assert_secret_free(error, secret_url)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (403, "invalid_token", "invalid_token"),
        (400, "invalid_token", "invalid_token"),
        (404, "channel_not_found", "channel_not_found"),
        (404, "no_service", "no_service"),
        (410, "channel_is_archived", "channel_is_archived"),
        (500, "invalid_token", "invalid_token"),
        (200, '{"ok": false, "error": "channel_not_found"}', "channel_not_found"),
    ],
)
def test_slack_refusals_are_permanent_whatever_the_status(
    status: int,
    body: str,
    reason: str,
    sink: WebhookSink,
    secret_url: str,
    client: httpx.Client,
    make_group: Any,
    make_channel: Any,
) -> None:
    """Slack's error codes decide: a revoked or removed webhook is never retried."""
    sink.fail(status, body=body)
    notifier = SlackNotifier(make_channel("slack", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert (error.permanent, error.reason, error.status_code) == (True, reason, status)
    assert f"HTTP {status} {reason}: " in str(error)
    _assert_secret_free(error, secret_url)


def test_slack_rollup_error_is_retryable(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """Slack's transient ``rollup_error`` may succeed later."""
    sink.fail(500, body="rollup_error")
    notifier = SlackNotifier(make_channel("slack", secret_url))

    error = _deliver_error(notifier, make_group(), client)

    assert (error.permanent, error.reason) == (False, "http_500")


def test_a_hanging_receiver_times_out_as_retryable(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """The channel's timeout bounds the attempt; the error is retryable."""
    sink.hang()
    notifier = WebhookNotifier(make_channel("webhook", secret_url, timeout=0.2))
    try:
        error = _deliver_error(notifier, make_group(), client)
    finally:
        sink.release()

    assert (error.permanent, error.reason, error.status_code) == (False, "timeout", None)
    assert "timed out (ReadTimeout)" in str(error)
    assert sink.received[0].answered is None, "the sink held the request"
    _assert_secret_free(error, secret_url)


def test_a_per_call_timeout_overrides_the_channels(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """``send(timeout=...)`` wins over the channel's (here: none, the client's 10 s)."""
    sink.hang()
    notifier = SlackNotifier(make_channel("slack", secret_url))
    try:
        with pytest.raises(DeliveryError, match="timed out") as info:
            notifier.send(make_group(), client, timeout=timedelta(milliseconds=200))
    finally:
        sink.release()
    assert info.value.permanent is False


def test_a_down_receiver_is_retryable_and_the_retry_succeeds(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """Connection refused is retryable; once the sink is back on its port delivery works."""
    notifier = SlackNotifier(make_channel("slack", secret_url))
    group = make_group()
    sink.down()

    error = _deliver_error(notifier, group, client)

    assert (error.permanent, error.reason, error.status_code) == (False, "connection", None)
    assert "connection failed (ConnectError" in str(error)
    _assert_secret_free(error, secret_url)
    assert sink.received == []

    sink.up()
    assert notifier.send(group, client).status_code == 200
    assert len(sink.wait_for(1)) == 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    """Both forms of Retry-After; garbage and the past give sensible values."""
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


def test_sent_body_is_the_json_of_the_payload(
    sink: WebhookSink, secret_url: str, client: httpx.Client, make_group: Any, make_channel: Any
) -> None:
    """The body is UTF-8 JSON that decodes to the payload (non-ASCII kept as is)."""
    notifier = SlackNotifier(make_channel("slack", secret_url))
    group = make_group()

    notifier.send(group, client)

    (received,) = sink.wait_for(1)
    assert json.loads(received.body.decode("utf-8")) == notifier.payload(group)
    assert "→".encode() in received.body
