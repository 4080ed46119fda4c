"""Each auth mode end to end, and that no secret ever reaches the output."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from .support import SECOND, Env, Result

TOKEN = "tok-BEARER-d41d8cd98f00b204"
PASSWORD = "pw-BASIC-9e107d9d372bb682"
CF_SECRET = "cf-SECRET-e4d909c290d0fb1c"
WRAPPED_TOKEN = "tok-WRAPPED-45c48cce2e2d7fbd"
SECRETS = (TOKEN, PASSWORD, CF_SECRET, WRAPPED_TOKEN)


def _no_secret(*results: Result) -> None:
    for r in results:
        for secret in SECRETS:
            assert secret not in r.out, r
            assert secret not in r.err, r


def _flamegraph(env: Env, *extra: str) -> Result:
    return env.run("pyrowatch", *extra, "flamegraph", "prod", "checkout")


def _last_query(env: Env) -> Any:
    return [e for e in env.sandbox.requests() if e.rpc == "SelectMergeStacktraces"][-1]


def test_bearer_token(env: Env) -> None:
    """`token` is sent as a bearer token; a wrong one is a one-line 401 without the token."""
    from watcher.sandbox import AuthConfig

    env.seed("checkout", {("main", "hot"): SECOND})
    env.sandbox.auth = AuthConfig(bearer_token=TOKEN)
    env.write_config({"prod": {"url": env.url, "token": TOKEN}})
    ok = _flamegraph(env)
    assert ok.code == 0, ok
    assert "hot" in ok.out
    entry = _last_query(env)
    assert (entry.auth, entry.auth_scheme) == ("ok", "Bearer")

    env.sandbox.auth = AuthConfig(bearer_token=TOKEN + "-other")
    denied = _flamegraph(env)
    debug = _flamegraph(env, "--debug")
    assert denied.code == 1 and "unauthenticated" in denied.err
    assert len(denied.err.splitlines()) == 1
    _no_secret(
        ok, denied, debug, env.run("pyrowatch", "config"), env.run("pyrowatch", "config", "--json")
    )


def test_basic_auth(env: Env) -> None:
    """`username`/`password` are sent as HTTP basic auth."""
    from watcher.sandbox import AuthConfig

    env.seed("checkout", {("main", "hot"): SECOND})
    env.sandbox.auth = AuthConfig(basic=("12345", PASSWORD))
    env.write_config({"prod": {"url": env.url, "username": "12345", "password": PASSWORD}})
    ok = _flamegraph(env)
    assert ok.code == 0, ok
    assert (_last_query(env).auth, _last_query(env).auth_scheme) == ("ok", "Basic")
    env.write_config({"prod": {"url": env.url, "username": "12345", "password": PASSWORD + "x"}})
    denied = _flamegraph(env, "--debug")
    assert denied.code == 1
    _no_secret(ok, denied)


def test_cloudflare_access_service_token(env: Env) -> None:
    """Both CF-Access headers are sent."""
    from watcher.sandbox import AuthConfig

    env.seed("checkout", {("main", "hot"): SECOND})
    env.sandbox.auth = AuthConfig(cf_access=("client.access", CF_SECRET))
    env.write_config(
        {
            "prod": {
                "url": env.url,
                "cf_access_client_id": "client.access",
                "cf_access_client_secret": CF_SECRET,
            }
        }
    )
    ok = _flamegraph(env)
    assert ok.code == 0, ok
    entry = _last_query(env)
    assert entry.auth == "ok" and entry.cf_access
    _no_secret(ok, env.run("pyroscope-config"))


def test_tenant_header(env: Env) -> None:
    """`tenant_id` goes out as X-Scope-OrgID; without it a multi-tenant server says no org id."""
    env.sandbox.tenants = True
    env.seed("checkout", {("main", "hot"): SECOND})
    env.write_config({"prod": {"url": env.url}})
    missing = _flamegraph(env)
    assert missing.code == 1
    assert "unauthenticated" in missing.err and "no org id" in missing.err
    env.write_config({"prod": {"url": env.url, "tenant_id": "anonymous"}})
    ok = _flamegraph(env)
    assert ok.code == 0, ok
    assert _last_query(env).tenant == "anonymous"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_access_command_wrapper_forwards_with_curl(env: Env, tmp_path: Path) -> None:
    """`access_command` runs a curl-compatible wrapper; its credentials reach the server."""
    from watcher.sandbox import AuthConfig

    token_file = tmp_path / "token"
    token_file.write_text(WRAPPED_TOKEN)
    wrapper = tmp_path / "pyro-curl"
    wrapper.write_text(
        "#!/bin/sh\n"
        "# a stand-in for `cloudflared access curl`: add a credential, forward with curl\n"
        f'exec curl -sS -H "Authorization: Bearer $(cat \'{token_file}\')" "$@"\n'
    )
    wrapper.chmod(0o755)
    env.seed("checkout", {("main", "wrapped.Hot"): SECOND})
    env.sandbox.auth = AuthConfig(bearer_token=WRAPPED_TOKEN)
    env.write_config({"prod": {"url": env.url, "access_command": str(wrapper)}})
    ok = _flamegraph(env)
    assert ok.code == 0, ok
    assert "wrapped.Hot" in ok.out
    entry = _last_query(env)
    assert entry.auth == "ok" and "curl" in entry.user_agent.lower()
    services = env.run("pyroscope-services", "prod")
    assert services.out.split() == ["checkout"]

    token_file.write_text("wrong")
    denied = _flamegraph(env)
    assert denied.code == 1
    assert len(denied.err.splitlines()) == 1
    _no_secret(ok, services, denied)
