"""The watcher commands as subprocesses: db, check, regressions, snapshots, alerts, demo.

Every command runs as the installed ``pyrowatch`` console script against the sandbox and
the webhook sink of the test process, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from .support import CPU, SECRET, T0, T1, ConfigWriter, cli

AT_T0 = T0.strftime("%Y-%m-%dT%H:%M:%SZ")
AT_T1 = T1.strftime("%Y-%m-%dT%H:%M:%SZ")


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


def test_check_finds_stores_and_alerts_once_then_resolves(
    config: ConfigWriter, sink: Any, regressed: str
) -> None:
    """check --at T0 finds the function and alerts once; again: nothing new; T1: resolved."""
    path = config.write()

    first = cli("check", "--at", AT_T0, "--json", config=path)
    assert first.code == 0, first
    data = first.json()
    (run,) = data["runs"]
    assert [(f["service"], f["function"], f["kind"]) for f in run["findings"]] == [
        ("checkout", regressed, "self")
    ]
    assert run["snapshots"] == 2 and run["enqueued"] == 1
    assert data["delivery"]["sent"] == 1
    (received,) = sink.received
    assert received.json["status"] == "firing"
    assert [a["labels"]["function"] for a in received.json["alerts"]] == [regressed]

    second = cli("check", "--at", AT_T0, config=path)
    assert second.code == 0, second
    assert regressed in second.out  # the table shows it again
    assert "0 notifications queued" in second.err
    assert len(sink.received) == 1

    third = cli("check", "--at", AT_T1, config=path)
    assert third.code == 0, third
    assert "1 resolved" in third.err
    assert "no regressions found" in third.err
    assert [r.json["status"] for r in sink.received] == ["firing", "resolved"]
    _no_secret(first.out, first.err, second.out, second.err, third.out, third.err)

    listed = cli("regressions", "--json", config=path)
    assert listed.code == 0, listed
    (regression,) = listed.json()["regressions"]
    assert (regression["function"], regression["state"]) == (regressed, "resolved")
    table = cli("regressions", config=path)
    assert table.code == 0 and regressed in table.out and "resolved" in table.out
    still_open = cli("regressions", "--open", config=path)
    assert still_open.code == 0 and still_open.out == ""
    assert "no open regressions" in still_open.err

    snaps = cli("snapshots", "checkout", "--type", "cpu", "--json", config=path)
    assert snaps.code == 0, snaps
    windows = [s["window_end"] for s in snaps.json()["snapshots"]]
    assert windows == ["2025-03-01T15:00:00Z", "2025-03-01T12:00:00Z", "2025-03-01T12:00:00Z"]
    assert all(s["profile_type"] == CPU for s in snaps.json()["snapshots"])
    shown = cli("snapshots", "checkout", "--top", "3", config=path)
    assert shown.code == 0 and "top 3 functions by self" in shown.out


def test_check_dry_run_prints_the_finding_and_needs_no_database(
    config: ConfigWriter, sink: Any, regressed: str, tmp_path: Any
) -> None:
    """--dry-run detects and prints; it touches no database (not even an empty one)."""
    config.database_url = f"sqlite:///{tmp_path / 'never' / 'created.db'}"
    path = config.write()

    result = cli("check", "--at", AT_T0, "--dry-run", config=path)

    assert result.code == 0, result
    assert "SERVICE" in result.out and regressed in result.out and "checkout" in result.out
    assert not (tmp_path / "never" / "created.db").exists()
    assert sink.received == []


def test_a_database_not_at_head_is_refused_with_the_fix(
    config: ConfigWriter, empty_database_url: str
) -> None:
    """check, run and regressions refuse an unmigrated database: one line naming the fix."""
    config.database_url = empty_database_url
    path = config.write()
    for args in (("check", "--at", AT_T0), ("run",), ("regressions",)):
        result = cli(*args, config=path)
        assert result.code == 1, result
        lines = result.err.strip().splitlines()
        assert lines[-1].startswith("error: ") and "pyrowatch db upgrade" in lines[-1], result
        assert "Traceback" not in result.err

    upgraded = cli("db", "upgrade", config=path)
    assert upgraded.code == 0, upgraded
    assert "(head)" in upgraded.out
    assert "upgraded from an empty database" in upgraded.out
    again = cli("db", "upgrade", config=path)
    assert again.code == 0 and "already at revision" in again.out
    current = cli("db", "current", config=path)
    assert current.code == 0 and "(head)" in current.out
    _no_secret(upgraded.out, current.out)
    if "@" in empty_database_url:  # a PostgreSQL URL with a password
        password = empty_database_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
        assert password not in upgraded.out + upgraded.err + current.out


def test_alerts_test_sends_once_and_reports_a_refusal_in_one_line(
    config: ConfigWriter, sink: Any
) -> None:
    """alerts test: one POST, no retries; a 404 is one error line without the URL."""
    path = config.write()

    ok = cli("alerts", "test", "hook", config=path)
    assert ok.code == 0, ok
    assert "sent a test notification to webhook channel 'hook' (127.0.0.1)" in ok.out
    (received,) = sink.received
    assert received.json["alerts"][0]["labels"]["service_name"] == "pyrowatch-test"

    sink.fail(404, body="no such hook")
    refused = cli("alerts", "test", "hook", config=path)
    assert refused.code == 1, refused
    assert len(sink.received) == 2  # one attempt, no retry
    (line,) = refused.err.strip().splitlines()
    assert line.startswith("error: ") and "HTTP 404" in line
    _no_secret(ok.out, refused.err)

    unknown = cli("alerts", "test", "nope", config=path)
    assert unknown.code == 2 and "unknown alert channel 'nope'" in unknown.err

    listed = cli("alerts", "list", config=path)
    assert listed.code == 0 and "hook" in listed.out and "ok" in listed.out
    _no_secret(listed.out)


@pytest.mark.slow
def test_demo_runs_with_no_configuration(tmp_path: Any) -> None:
    """pyrowatch demo exits 0 and shows the injected function, its finding and the alert."""
    result = cli("demo", config=None)

    assert result.code == 0, result
    injected = [line for line in result.out.splitlines() if line.strip().startswith("injected")]
    (line,) = injected
    function = line.split(": ", 1)[1].rsplit(", since", 1)[0]
    assert "Found 2 regressions" in result.out
    assert result.out.count(function) >= 3  # injected line, findings table, payload
    assert '"alertname": "ProfileRegression"' in result.out
    assert "self" in result.out and "cores" in result.out
