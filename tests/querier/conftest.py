"""Fixtures for the Querier client tests: a recording HTTP server and clients pointed at it.

Every test using ``make_client`` runs once per socket transport (``httpx``, the daemon's;
``socket``, the command line's for ``http://``; and ``stdlib``, its ``http.client`` for
``https://``): all must behave the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.recording_server import RecordingServer

from watcher.config import Deployment
from watcher.querier import QuerierClient, RetryEvent, RetryPolicy
from watcher.querier.transport import HttpKind

#: The socket transports a client can use.
TRANSPORTS: tuple[HttpKind, ...] = ("httpx", "stdlib", "socket")


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    """A recording server on 127.0.0.1 (answers ``{}`` unless scripted)."""
    with RecordingServer() as srv:
        yield srv


class Recorder:
    """Collects what the client would have slept and the retry events it reported."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.events: list[RetryEvent] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(event)


@pytest.fixture
def recorder() -> Recorder:
    """Injected sleep and on_retry: nothing really waits."""
    return Recorder()


@pytest.fixture(params=TRANSPORTS)
def http(request: pytest.FixtureRequest) -> HttpKind:
    """The socket transport under test (every test using it runs with each)."""
    kind: HttpKind = request.param
    return kind


@pytest.fixture
def make_client(
    server: RecordingServer, recorder: Recorder, http: HttpKind
) -> Iterator[Callable[..., QuerierClient]]:
    """Build clients for the recording server; extra keywords go to the Deployment."""
    clients: list[QuerierClient] = []

    def _make(
        retry: RetryPolicy | None = None, gzip_threshold: int | None = 1024, **kw: Any
    ) -> QuerierClient:
        kw.setdefault("url", server.url)
        deployment = Deployment(name="test", **kw)
        client = QuerierClient(
            deployment,
            retry=retry or RetryPolicy(jitter=0.0),
            on_retry=recorder.on_retry,
            sleep=recorder.sleep,
            gzip_threshold=gzip_threshold,
            http=http,
        )
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()
