"""Helpers shared by the store tests (imported by module name; tests/store has no package)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

#: A fixed "now" for tests; the store never reads the clock when given one.
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same instant by a barrier; return results.

    No sleeps: the barrier lines the threads up, the database decides the race.
    """
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def worker(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


PG_ENV = "PYROWATCH_TEST_PG_URL"


def require_pg_url() -> str:
    """The harness PostgreSQL URL; skips without it, or fails under CI (CI must test both)."""
    url = os.environ.get(PG_ENV)
    if url:
        return url
    reason = f'{PG_ENV} is not set; start PostgreSQL with: eval "$(scripts/pg start)"'
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL store tests: {reason}", pytrace=False)
    pytest.skip(reason)
