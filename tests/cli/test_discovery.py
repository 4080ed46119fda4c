"""`config`, `services`, `profiles`, `labels`, `series`, `query` and `sandbox` end to end."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta

from .support import CPU, INUSE, SECOND, Env, run, script


def test_config_lists_deployments_without_secrets(env: Env) -> None:
    """Name, auth kind and URL; the token never appears."""
    env.write_config(
        {
            "prod": {"url": env.url, "token": "tok-CONFIG-LISTING-7f3a"},
            "eu": {
                "url": "https://eu.example.com/pyroscope",
                "username": "u",
                "password": "pw-CONFIG-LISTING-91c2",
                "tenant_id": "team-a",
            },
        }
    )
    r = env.run("pyroscope-config")
    assert r.code == 0, r
    assert r.out.splitlines() == [
        "NAME  AUTH    TENANT  URL",
        "eu    basic   team-a  https://eu.example.com/pyroscope",
        f"prod  bearer  -       {env.url}",
    ]
    data = json.loads(env.run("pyrowatch", "config", "--json").out)
    assert [d["auth"] for d in data["deployments"]] == ["basic", "bearer"]
    for text in (r.out, r.err, json.dumps(data)):
        assert "CONFIG-LISTING" not in text


def test_config_check_summarises_and_fails_on_problems(env: Env) -> None:
    """`config check` counts deployments, watches and channels; a bad file exits 1."""
    env.write_config(
        {"prod": {"url": env.url}},
        extra='[[watcher.watch]]\nname = "w"\ndeployment = "prod"\nservices = ["checkout"]\n'
        'alerts = ["oncall"]\n\n[[watcher.alert]]\nname = "oncall"\nkind = "webhook"\n'
        'url = "https://hooks.example.com/SECRET-HOOK-PATH-55"\n',
    )
    r = env.run("pyrowatch", "config", "check")
    assert r.code == 0, r
    assert r.out == f"{env.config}: ok: 1 deployments, 1 watches, 1 alert channels\n"
    bad = env.tmp / "bad.toml"
    bad.write_text('[pyroscope.deployments.prod]\nurl = "http://x"\ntimeout = "soon"\n')
    r = env.run("pyrowatch", "config", "check", str(bad))
    assert r.code == 1, r
    assert r.out == ""
    assert r.err.startswith("error: ") and "timeout" in r.err
    assert len(r.err.splitlines()) == 1


def test_services_sorted_with_positional_and_option_range(env: Env) -> None:
    """Services with data in the range, sorted; `[range]` and `--range` both work."""
    now = datetime.now(UTC)
    for name in ("payments", "api", "checkout"):
        env.seed(name, {("main",): SECOND})
    env.seed("old-batch", {("main",): SECOND}, at=now - timedelta(hours=5))
    assert env.run("pyroscope-services", "prod").out.split() == ["api", "checkout", "payments"]
    r = env.run("pyrowatch", "services", "prod", "6h")
    assert r.out.split() == ["api", "checkout", "old-batch", "payments"]
    assert env.run("pyrowatch", "services", "prod", "--range", "6h").out == r.out


def test_services_empty_says_so(env: Env) -> None:
    """No data: exit 0 and one line on stderr."""
    r = env.run("pyroscope-services", "prod")
    assert (r.code, r.out) == (0, "")
    assert len(r.err.splitlines()) == 1 and r.err.startswith("no services")


def test_profiles_lists_type_ids_with_names_aligned(env: Env) -> None:
    """Profile type IDs, their names and aliases, in aligned columns."""
    env.seed("checkout", {("main",): SECOND})
    env.seed("checkout", {("main",): 1024}, profile_type=INUSE)
    r = env.run("pyroscope-profiles", "prod")
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0].split() == ["TYPE", "ID", "NAME", "ALIAS", "MEANING"]
    assert lines[1].split() == [INUSE, "memory", "memory", "in-use", "memory"]
    assert lines[2].split() == [CPU, "process_cpu", "cpu", "CPU", "time"]
    assert lines[1].index(" memory ") == lines[2].index(" process_cpu ")
    data = json.loads(env.run("pyrowatch", "profiles", "prod", "--json").out)
    assert [t["id"] for t in data["types"]] == [INUSE, CPU]
    assert data["types"][1]["alias"] == "cpu"


def test_labels_names_values_and_selector(env: Env) -> None:
    """Label names; values of one label; narrowed by --selector."""
    env.seed("checkout", {("main",): SECOND}, labels={"pod": "c-1", "region": "eu"})
    env.seed("api", {("main",): SECOND}, labels={"pod": "a-1"})
    names = env.run("pyroscope-labels", "prod").out.split()
    assert {"pod", "region", "service_name"} <= set(names)
    assert names == sorted(names)
    assert env.run("pyroscope-labels", "prod", "pod").out.split() == ["a-1", "c-1"]
    r = env.run("pyrowatch", "labels", "prod", "pod", "--selector", '{service_name="api"}')
    assert r.out.split() == ["a-1"]
    r = env.run("pyrowatch", "labels", "prod", "pod", "--selector", "{service_name=")
    assert r.code == 2 and r.err.startswith("error: ")


def test_series_table_and_json(env: Env) -> None:
    """SelectSeries totals over time, grouped by a label."""
    now = datetime.now(UTC)
    env.seed(
        "checkout", {("main",): 2 * SECOND}, at=now - timedelta(minutes=20), labels={"pod": "p1"}
    )
    env.seed(
        "checkout", {("main",): 3 * SECOND}, at=now - timedelta(minutes=5), labels={"pod": "p2"}
    )
    r = env.run("pyrowatch", "series", "prod", "checkout", "--step", "1m", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    values = [p["value"] for s in data["series"] for p in s["points"]]
    assert sorted(values) == [2 * SECOND, 3 * SECOND]
    r = env.run(
        "pyrowatch", "series", "prod", "checkout", "--step", "1m", "--group-by", "pod", "--json"
    )
    labels = sorted(s["labels"]["pod"] for s in json.loads(r.out)["series"])
    assert labels == ["p1", "p2"]
    r = env.run("pyrowatch", "series", "prod", "checkout", "--step", "1m")
    assert r.code == 0, r
    assert "2.00 s" in r.out and "3.00 s" in r.out
    assert "▁" not in r.out  # no sparkline into a pipe


def test_query_sends_the_body_as_given_and_pretty_prints(env: Env) -> None:
    """A raw call returns pretty JSON; a missing body is `{}`."""
    env.seed("checkout", {("main",): SECOND})
    r = env.run("pyroscope-query", "prod", "ProfileTypes")
    assert r.code == 0, r
    assert json.loads(r.out)["profileTypes"][0]["ID"] == CPU
    assert r.out.startswith("{\n  ")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    body = json.dumps(
        {"name": "service_name", "start": str(now_ms - 3_600_000), "end": str(now_ms)}
    )
    r = env.run("pyrowatch", "query", "prod", "LabelValues", body)
    assert json.loads(r.out) == {"names": ["checkout"]}


def test_query_connect_error_exits_one_with_code_and_message(env: Env) -> None:
    """A Connect error shows its code and message on one line, exit 1."""
    r = env.run("pyroscope-query", "prod", "LabelValues", "{}")
    assert r.code == 1, r
    assert r.out == ""
    assert len(r.err.splitlines()) == 1
    assert "invalid_argument" in r.err


def test_query_rejects_a_body_that_is_not_json(env: Env) -> None:
    """A body that is not JSON is a usage error."""
    r = env.run("pyrowatch", "query", "prod", "ProfileTypes", "{start: 1")
    assert r.code == 2, r
    assert r.err.startswith("error: ") and "not JSON" in r.err


def test_sandbox_command_serves_until_interrupted(env: Env) -> None:
    """`pyrowatch sandbox --port 0` prints its URL, answers queries, stops on Ctrl-C."""
    proc = subprocess.Popen(
        [script("pyrowatch"), "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        url = line.split("listening on ", 1)[1].split()[0]
        cfg = env.tmp / "local.toml"
        cfg.write_text(f'[pyroscope.deployments.local]\nurl = "{url}"\n')
        r = run(["pyrowatch", "--config", str(cfg), "services", "local"])
        assert r.code == 0, r
        assert r.err.startswith("no services")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_shell_completion_of_commands_and_deployments(env: Env) -> None:
    """click's completion protocol completes command names and deployment names."""
    words = {"_PYROWATCH_COMPLETE": "bash_complete"}
    r = env.run("pyrowatch", env={**words, "COMP_WORDS": "pyrowatch fl", "COMP_CWORD": "1"})
    assert r.code == 0, r
    assert "flamegraph" in r.out
    r = env.run(
        "pyrowatch", env={**words, "COMP_WORDS": "pyrowatch services st", "COMP_CWORD": "2"}
    )
    assert r.out.split() == ["plain,staging"]
