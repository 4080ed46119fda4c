"""The webhook sink itself: recording, modes switched in-process and over its control API."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime

import httpx
import pytest

from watcher.sandbox.sink import WebhookSink


def test_records_path_headers_json_and_arrival_time(
    sink: WebhookSink, client: httpx.Client
) -> None:
    """Every POST is recorded in order with what the sink answered."""
    before = datetime.now(UTC)
    first = client.post(sink.url + "/hook/a", json={"n": 1}, headers={"X-Test": "yes"})
    second = client.post(sink.url + "/hook/b", content=b"not json")

    assert (first.status_code, first.text) == (200, "ok")
    assert second.status_code == 200
    one, two = sink.wait_for(2)
    assert (one.method, one.path, one.json, one.headers["x-test"]) == (
        "POST",
        "/hook/a",
        {"n": 1},
        "yes",
    )
    assert (one.mode, one.answered) == ("ok", 200)
    assert (two.path, two.json, two.body) == ("/hook/b", None, b"not json")
    assert before <= one.received_at <= two.received_at


def test_failure_modes_answer_what_was_asked(sink: WebhookSink, client: httpx.Client) -> None:
    """status N with a body, 429 with Retry-After, then back to ok."""
    sink.fail(400, body="invalid_token")
    refused = client.post(sink.url, json={})
    sink.rate_limit(retry_after=3)
    limited = client.post(sink.url, json={})
    sink.ok()
    accepted = client.post(sink.url, json={})

    assert (refused.status_code, refused.text) == (400, "invalid_token")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert accepted.status_code == 200
    assert [r.answered for r in sink.wait_for(3)] == [400, 429, 200]


def test_hang_holds_requests_until_released(sink: WebhookSink, client: httpx.Client) -> None:
    """A held request is answered 200 on release; the sink is back to ok afterwards."""
    sink.hang()
    answers: list[int] = []

    def post() -> None:
        answers.append(client.post(sink.url, json={"held": True}).status_code)

    poster = threading.Thread(target=post)
    poster.start()
    (held,) = sink.wait_for(1)
    assert (held.mode, held.answered) == ("hang", None)
    assert answers == [], "nothing is answered while held"

    sink.release()
    poster.join()

    assert answers == [200]
    assert client.post(sink.url, json={}).status_code == 200


def test_hang_outlasts_a_client_timeout(sink: WebhookSink, client: httpx.Client) -> None:
    """A held request makes the client time out, not the sink answer."""
    sink.hang()
    try:
        with pytest.raises(httpx.ReadTimeout):
            client.post(sink.url, json={}, timeout=0.2)
    finally:
        sink.release()


def test_down_refuses_connections_and_up_returns_on_the_same_port(
    sink: WebhookSink, client: httpx.Client
) -> None:
    """``down`` stops listening; ``up`` listens again at the same URL."""
    url, port = sink.url, sink.port
    sink.down()

    with pytest.raises(httpx.ConnectError):
        client.post(url, json={})

    assert sink.up() == url
    assert sink.port == port
    assert client.post(url, json={}).status_code == 200


def test_stop_drops_held_requests_without_answering(client: httpx.Client) -> None:
    """Stopping while a request is held closes its connection."""
    sink = WebhookSink()
    sink.start()
    sink.hang()
    errors: list[BaseException] = []

    def post() -> None:
        try:
            client.post(sink.url, json={})
        except httpx.HTTPError as exc:
            errors.append(exc)

    poster = threading.Thread(target=post)
    poster.start()
    sink.wait_for(1)
    sink.stop()
    poster.join()

    assert len(errors) == 1
    assert isinstance(errors[0], httpx.RemoteProtocolError | httpx.ReadError)


def test_wait_for_times_out_with_the_count_received(sink: WebhookSink) -> None:
    """Too few requests: a TimeoutError that says how many came."""
    with pytest.raises(TimeoutError, match="received 0 of 1 requests"):
        sink.wait_for(1, timeout=0.05)


def test_control_api_switches_modes_and_lists_requests(
    sink: WebhookSink, client: httpx.Client
) -> None:
    """Another process drives the sink over ``/_sink/``; control calls are not recorded."""
    assert client.post(sink.url + "/_sink/mode", json={"mode": "status", "status": 503}).is_success
    assert client.post(sink.url + "/hook", json={"a": 1}).status_code == 503
    client.post(sink.url + "/_sink/mode", json={"mode": "rate_limit", "retry_after": 9})
    limited = client.post(sink.url + "/hook", json={"a": 2})

    listed = client.get(sink.url + "/_sink/received").json()

    assert (limited.status_code, limited.headers["retry-after"]) == (429, "9")
    assert [(r["path"], r["json"], r["answered"]) for r in listed] == [
        ("/hook", {"a": 1}, 503),
        ("/hook", {"a": 2}, 429),
    ]
    assert client.post(sink.url + "/_sink/reset").is_success
    assert client.get(sink.url + "/_sink/received").json() == []
    assert client.post(sink.url + "/hook", json={}).status_code == 200


def test_control_api_down_comes_back_by_itself(sink: WebhookSink, client: httpx.Client) -> None:
    """``{"mode": "down", "seconds": s}`` goes down, then up on the same port."""
    response = client.post(sink.url + "/_sink/mode", json={"mode": "down", "seconds": 0.3})
    assert response.is_success

    sink.wait_until_down()
    with pytest.raises(httpx.ConnectError):
        client.post(sink.url, json={})
    sink.wait_until_up()
    assert client.post(sink.url, json={}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "explode"}, "mode 'explode': use one of"),
        ({"mode": "down", "seconds": 0}, "down needs 0 < seconds <= 600"),
        ({"mode": "status", "status": 99}, "status 99: must be an HTTP status"),
    ],
)
def test_control_api_refuses_bad_requests(
    sink: WebhookSink, client: httpx.Client, body: dict[str, object], message: str
) -> None:
    """Bad control requests get a 400 that says why, and change nothing."""
    response = client.post(sink.url + "/_sink/mode", json=body)

    assert response.status_code == 400
    assert message in response.text
    assert client.post(sink.url, json={}).status_code == 200


def test_get_outside_the_control_api_is_refused(sink: WebhookSink, client: httpx.Client) -> None:
    """The sink records POSTs only."""
    assert client.get(sink.url + "/hook").status_code == 405
    assert sink.received == []


def test_url_before_start_is_an_error() -> None:
    """There is no URL before the first start."""
    with pytest.raises(RuntimeError, match="not been started"):
        _ = WebhookSink().url


def test_standalone_sink_serves_another_process_and_stops_on_sigterm(
    client: httpx.Client,
) -> None:
    """``python -m watcher.sandbox.sink`` prints its URL, obeys the control API, exits 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher.sandbox.sink"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        client.post(url + "/_sink/mode", json={"mode": "status", "status": 500})
        assert client.post(url + "/hook", json={"x": 1}).status_code == 500
        listed = client.get(url + "/_sink/received").json()
        assert [(r["path"], r["answered"]) for r in listed] == [("/hook", 500)]
    finally:
        process.terminate()
        returncode = process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert returncode == 0
