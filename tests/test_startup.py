"""What the command line loads to start, and the quick config path that keeps queries light.

Structure only, never timing (timings are in bench/startup.py and bench/client_overhead.py):

- ``--help`` and the query commands import none of the daemon's libraries; a query over a
  plain config does not import pydantic either, nor the protobuf runtime, nor httpx (a
  command speaks HTTP over a plain socket, or ``http.client`` for https), nor click's
  optional parts; a plain ``flamegraph`` query to an ``http://`` deployment imports neither
  click (the fast path answers it) nor ``http.client``, ``ssl`` or ``email``, nor
  ``dataclasses`` (and so ``inspect``, ``ast``, ``dis``, ``tokenize``);
- the quick deployment reader (``watcher.cli._quickconfig.quick_deployment``) either declines or
  gives exactly what ``watcher.config.load_settings`` gives, secrets included;
- a client of an ``http://`` deployment loads no CA bundle.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from watcher.cli._quickconfig import QUICK_KEYS, QuickDeployment, quick_deployment
from watcher.config import Deployment, load_settings
from watcher.errors import ConfigError

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

#: Never imported by a query command or by ``--help``.
DAEMON_ONLY = ("sqlalchemy", "alembic", "apscheduler", "prometheus_client", "structlog")
#: Also not imported by a query over a plain config (deployments only).
VALIDATION = ("pydantic", "pydantic_core", "pydantic_settings", "google")
#: The daemon's HTTP stack: a command talks through ``http.client`` instead.
HTTPX = ("httpx", "httpcore", "h11", "anyio", "sniffio", "certifi")
#: Parts of click a query never needs (test runner, pager and progress bar, Windows console).
CLICK_EXTRAS = ("click.testing", "click._termui_impl", "click._winconsole", "click._textwrap")
#: Environment variables that would make a command use httpx (it honours proxies).
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")

#: What a flame graph query over plain http:// must not import: click (the fast path
#: answers it), and http.client with the ssl and email packages it imports (the socket
#: transport speaks HTTP).
FAST_PATH_FREE = ("click", "http", "ssl", "_ssl", "email")
#: Nor these: ``dataclasses`` builds each class by generating and running code (about 1 ms a
#: class) and its import loads ``inspect`` (with ``ast``, ``dis`` and ``tokenize``): ~10 ms.
CLASS_BUILDERS = ("dataclasses", "inspect")
#: Nor what only a rarer turn needs: gzip (writing pprof), random (a retry's jitter),
#: base64 (basic auth), threading (the progress spinner, on a terminal only).
ON_DEMAND = ("gzip", "random", "base64", "threading")

_PROBE = """
import json, sys
from watcher.cli import run
try:
    run({argv!r}, prog_name="pyrowatch")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
tops = {{m.split(".")[0] for m in sys.modules}}
tops |= {{m for m in sys.modules if m.startswith(("click.", "http.", "watcher."))}}
print("\\n" + json.dumps({{"code": code, "modules": sorted(tops)}}))
"""


def _probe(argv: list[str], env: Mapping[str, str] | None = None) -> tuple[int, set[str], str]:
    """Run ``pyrowatch ARGV`` in a fresh interpreter, through the console script's function;
    its exit code and top-level modules (plus those of click, http and watcher)."""
    import os

    environ = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_VARIABLES}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(report["code"] or 0), set(report["modules"]), proc.stdout + proc.stderr


def _uses_dataclasses(module: str) -> bool:
    """Whether ``module``'s source imports dataclasses (read, not run)."""
    spec = importlib.util.find_spec(module)
    origin = spec.origin if spec is not None else None
    if origin is None or not origin.endswith(".py"):
        return False
    source = Path(origin).read_text(encoding="utf-8")
    return "from dataclasses import" in source or "import dataclasses" in source


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sandbox_url() -> Iterator[str]:
    """A sandbox with one CPU profile of ``checkout`` in the last hour."""
    import time

    from watcher.sandbox import Sandbox

    with Sandbox() as sandbox:
        now_ms = int(time.time() * 1000)
        stacks = {("main", "handle", "parse"): 30, ("main", "handle", "render"): 20}
        sandbox.store.add({"service_name": "checkout"}, CPU, now_ms - 60_000, stacks)
        yield sandbox.url


@pytest.fixture
def plain_config(tmp_path: Path, sandbox_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[pyroscope.deployments.local]\nurl = "{sandbox_url}"\ntoken = "s3cret-token"\n',
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- imports


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["flamegraph", "--help"],
        ["diff", "--help"],
    ],
)
def test_help_imports_no_daemon_or_validation_library(argv: list[str]) -> None:
    code, modules, output = _probe(argv)
    assert code == 0, output
    assert "Usage:" in output
    assert not modules & set(DAEMON_ONLY + VALIDATION), output


QUERIES = [
    ["flamegraph", "local", "checkout", "--range", "1h"],
    ["flamegraph", "local", "checkout", "--range", "1h", "--json"],
    ["services", "local"],
    ["profiles", "local"],
    ["labels", "local"],
    ["series", "local", "checkout", "--range", "1h"],
    ["diff", "local", "checkout", "--vs", "30m", "--range", "30m"],
    ["query", "local", "GetProfileStats", "{}"],
]


@pytest.mark.parametrize("argv", QUERIES, ids=lambda a: " ".join(a[:1] + a[3:4]))
def test_query_over_a_plain_config_loads_no_validation_models(
    argv: list[str], plain_config: Path
) -> None:
    """A query whose config holds deployment tables only never imports pydantic, httpx or
    click's optional parts."""
    code, modules, output = _probe(argv, {"PYROWATCH_CONFIG": str(plain_config)})
    assert code == 0, output
    assert not modules & set(DAEMON_ONLY), output
    assert not modules & set(VALIDATION), output
    assert not modules & set(HTTPX), output
    assert not modules & set(CLICK_EXTRAS), output
    # it did talk to the sandbox, over a plain socket (the deployment is http://)
    assert "watcher.querier.socket_transport" in modules
    assert not modules & {"http.client", "ssl", "email"}, output
    assert "s3cret-token" not in output


PLAIN_FLAMEGRAPH_QUERIES = [
    ["flamegraph", "local", "checkout"],
    ["flamegraph", "local", "checkout", "30m", "cpu", "--json", "-n", "5"],
    ["--no-color", "flamegraph", "local", "checkout", "--range", "1h", "-l", "pod!=x"],
]


@pytest.mark.parametrize("argv", PLAIN_FLAMEGRAPH_QUERIES, ids=lambda a: " ".join(a))
def test_a_plain_flamegraph_query_imports_no_click_nor_http_client(
    argv: list[str], plain_config: Path
) -> None:
    """The fast path answers it: no click; the socket transport: no http.client, ssl, email;
    no module on the path builds classes with dataclasses."""
    code, modules, output = _probe(argv, {"PYROWATCH_CONFIG": str(plain_config)})
    assert code == 0, output
    assert "main" in output and "parse" in output  # the profile's functions were printed
    assert not modules & set(FAST_PATH_FREE), sorted(modules & set(FAST_PATH_FREE))
    assert not modules & set(DAEMON_ONLY + VALIDATION + HTTPX), output
    assert "watcher.querier.socket_transport" in modules
    ours = {m for m in modules if m.startswith("watcher.")}
    users = sorted(m for m in ours if _uses_dataclasses(m))
    assert not users, f"fast-path modules importing dataclasses: {users}"


@pytest.mark.parametrize("argv", PLAIN_FLAMEGRAPH_QUERIES, ids=lambda a: " ".join(a))
def test_a_plain_flamegraph_query_imports_no_dataclasses_nor_inspect(
    argv: list[str], plain_config: Path
) -> None:
    """Not even through a library: the whole path builds its classes without dataclasses."""
    code, modules, output = _probe(argv, {"PYROWATCH_CONFIG": str(plain_config)})
    assert code == 0, output
    assert "main" in output and "parse" in output
    assert not modules & set(CLASS_BUILDERS), sorted(modules & set(CLASS_BUILDERS))
    assert not modules & set(ON_DEMAND), sorted(modules & set(ON_DEMAND))


def test_a_flamegraph_query_the_fast_path_declines_still_works(plain_config: Path) -> None:
    """``-f tree`` goes to click, which gives the same socket transport."""
    code, modules, output = _probe(
        ["flamegraph", "local", "checkout", "-f", "tree"], {"PYROWATCH_CONFIG": str(plain_config)}
    )
    assert code == 0, output
    assert "click" in modules
    assert "watcher.querier.socket_transport" in modules
    assert not modules & {"http.client", "ssl", "email"}, output


def test_a_query_to_an_https_deployment_uses_http_client(tmp_path: Path) -> None:
    """https:// keeps the standard library's http.client (and its TLS)."""
    path = tmp_path / "config.toml"
    path.write_text('[pyroscope.deployments.tls]\nurl = "https://127.0.0.1:1"\n', encoding="utf-8")
    code, modules, output = _probe(
        ["flamegraph", "tls", "checkout"], {"PYROWATCH_CONFIG": str(path)}
    )
    assert code == 1, output
    assert "cannot connect to https://127.0.0.1:1" in output
    assert "watcher.querier.stdlib_transport" in modules
    assert "click" not in modules


def test_a_query_through_a_proxy_uses_httpx(plain_config: Path) -> None:
    """With a proxy set in the environment a command uses httpx, which honours it."""
    code, modules, output = _probe(
        ["flamegraph", "local", "checkout", "--range", "1h"],
        {
            "PYROWATCH_CONFIG": str(plain_config),
            "HTTP_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "*",  # honoured by httpx: the request still goes straight to the sandbox
        },
    )
    assert code == 0, output
    assert "httpx" in modules


def test_query_with_a_watcher_table_validates_fully_but_loads_no_daemon_library(
    tmp_path: Path, sandbox_url: str
) -> None:
    """A [watcher] table hands the load to the full validation; still no daemon library."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[pyroscope.deployments.local]\nurl = "{sandbox_url}"\n\n'
        '[watcher]\nconcurrency = 2\nretention = "7d"\n',
        encoding="utf-8",
    )
    code, modules, output = _probe(
        ["flamegraph", "local", "checkout", "--range", "1h"], {"PYROWATCH_CONFIG": str(path)}
    )
    assert code == 0, output
    assert "pydantic" in modules
    assert not modules & set(DAEMON_ONLY), output


def test_a_bad_watcher_table_still_fails_a_query_with_the_full_message(
    tmp_path: Path, sandbox_url: str
) -> None:
    """Problems anywhere in the file are reported as before, by the full validation."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[pyroscope.deployments.local]\nurl = "{sandbox_url}"\n\n[watcher]\nconcurency = 2\n',
        encoding="utf-8",
    )
    code, _, output = _probe(
        ["flamegraph", "local", "checkout", "--range", "1h"], {"PYROWATCH_CONFIG": str(path)}
    )
    assert code == 1
    assert "watcher.concurency" in output and "did you mean 'concurrency'" in output


# --------------------------------------------------------------------------- quick config


def test_quick_keys_are_the_deployment_fields() -> None:
    """A new Deployment field must be taught to the quick path (or it would decline it)."""
    assert set(Deployment.model_fields) - {"name"} == QUICK_KEYS


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _as_fields(dep: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        get = getattr(value, "get_secret_value", None)
        return ("secret", get()) if callable(get) else value

    fields = {key: plain(getattr(dep, key)) for key in sorted(QUICK_KEYS | {"name"})}
    fields["auth_kind"] = dep.auth_kind
    fields["secret_values"] = dep.secret_values()
    return fields


def _agree(path: Path | None, name: str, env: Mapping[str, str]) -> QuickDeployment | None:
    """The quick result, after checking it against the full load (or that the quick one
    declined)."""
    explicit = str(path) if path is not None else None
    quick = quick_deployment(explicit, name, env)
    try:
        settings = load_settings(explicit, env=env)
        full = settings.deployment(name)
    except ConfigError:
        assert quick is None, "the quick path accepted a configuration the full load rejects"
        return None
    if quick is not None:
        dep, secrets = quick
        assert _as_fields(dep) == _as_fields(full)
        assert secrets == settings.secret_values()
        assert "s3cret" not in repr(dep)
        return dep
    return None


ACCEPTED = {
    "minimal": """
        [pyroscope.deployments.prod]
        url = "https://pyroscope.example.com/"
    """,
    "everything": """
        [pyroscope.deployments.prod]
        url = "  http://127.0.0.1:4040/prefix/ "
        username = "12345"
        password = "s3cret-pass"
        cf_access_client_id = "id.access"
        cf_access_client_secret = "s3cret-cf"
        tenant_id = "team-a"
        timeout = 5
        verify_tls = false
        ca_file = "ca.pem"
        max_response_bytes = 1000

        [pyroscope.deployments."other.one"]
        url = "http://other:4040"
        token = "s3cret-other"
        username = "   "
    """,
    "wrapper": """
        [pyroscope.deployments.prod]
        url = "https://pyroscope.example.com"
        access_command = "cloudflared access curl --token 's3cret x'"
        token = ""
    """,
    "shared file": """
        [grafana]
        url = "https://grafana.example.com"

        [axiom]
        dataset = "logs"

        [pyroscope.deployments.prod]
        url = "https://pyroscope.example.com"
        timeout = 2.5
    """,
}

DECLINED = {
    "watcher table": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        [watcher]
        concurrency = 2
    """,
    "near-miss table": """
        [pyroscop.deployments.prod]
        url = "https://p.example.com"
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
    """,
    "unknown key": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        tokn = "x"
    """,
    "name key": """
        [pyroscope.deployments.prod]
        name = "prod"
        url = "https://p.example.com"
    """,
    "bad name": """
        [pyroscope.deployments."-prod"]
        url = "https://p.example.com"
    """,
    "not http": """
        [pyroscope.deployments.prod]
        url = "ftp://p.example.com"
    """,
    "credentials in url": """
        [pyroscope.deployments.prod]
        url = "https://user:pw@p.example.com"
    """,
    "query in url": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com/?a=1"
    """,
    "timeout as string": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        timeout = "30"
    """,
    "timeout zero": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        timeout = 0
    """,
    "timeout nan": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        timeout = nan
    """,
    "verify_tls as string": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        verify_tls = "yes"
    """,
    "missing ca file": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        ca_file = "missing.pem"
    """,
    "control character": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        token = "a\\nb"
    """,
    "half cf access": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        cf_access_client_id = "id"
    """,
    "wrapper and token": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        access_command = "curl-wrapper"
        token = "t"
    """,
    "unbalanced quote in wrapper": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        access_command = "wrapper 'open"
    """,
    "a bad second deployment": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        [pyroscope.deployments.staging]
        url = "p.example.com"
    """,
    "bad size": """
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
        max_response_bytes = 1.5
    """,
    "not toml": """
        [pyroscope.deployments.prod
    """,
    "no deployments": """
        [pyroscope]
    """,
    "extra pyroscope key": """
        [pyroscope]
        default = "prod"
        [pyroscope.deployments.prod]
        url = "https://p.example.com"
    """,
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_quick_path_reads_plain_configs_as_the_full_load_does(case: str, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not really a certificate\n", encoding="utf-8")
    path = _write(tmp_path, ACCEPTED[case])
    env = {"HOME": str(tmp_path)}
    assert _agree(path, "prod", env) is not None


@pytest.mark.parametrize("case", sorted(DECLINED))
def test_quick_path_declines_what_it_cannot_read_with_certainty(case: str, tmp_path: Path) -> None:
    path = _write(tmp_path, DECLINED[case])
    env = {"HOME": str(tmp_path)}
    assert quick_deployment(str(path), "prod", env) is None
    _agree(path, "prod", env)


def test_quick_path_declines_unknown_deployments_and_missing_files(tmp_path: Path) -> None:
    """The full load words those errors (it lists the configured names, or the file)."""
    path = _write(tmp_path, ACCEPTED["minimal"])
    env = {"HOME": str(tmp_path)}
    assert quick_deployment(str(path), "staging", env) is None
    assert quick_deployment(str(tmp_path / "missing.toml"), "prod", env) is None
    assert quick_deployment(None, "prod", env) is None  # no file anywhere
    _agree(path, "staging", env)


@pytest.mark.parametrize(
    "variable", ["PYROWATCH_DEPLOYMENTS__PROD__TOKEN", "pyrowatch_watcher__concurrency"]
)
def test_quick_path_leaves_environment_overrides_to_the_full_load(
    variable: str, tmp_path: Path
) -> None:
    path = _write(tmp_path, ACCEPTED["minimal"])
    env = {"HOME": str(tmp_path), variable: "4"}
    assert quick_deployment(str(path), "prod", env) is None


@pytest.mark.parametrize(
    "where",
    ["PYROWATCH_CONFIG", "home", "SRE_CONFIG", "SRE_CONFIG_DIR", "default toolkit dir"],
)
def test_quick_path_follows_the_search_order(where: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"HOME": str(home)}
    targets = {
        "PYROWATCH_CONFIG": tmp_path / "a.toml",
        "home": home / ".config" / "pyrowatch" / "config.toml",
        "SRE_CONFIG": tmp_path / "sre.toml",
        "SRE_CONFIG_DIR": tmp_path / "sre" / "config.toml",
        "default toolkit dir": home / ".config" / "axiom-sre" / "config.toml",
    }
    target = targets[where]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text('[pyroscope.deployments.prod]\nurl = "http://found:1"\n', encoding="utf-8")
    if where == "PYROWATCH_CONFIG":
        env["PYROWATCH_CONFIG"] = str(target)
    elif where == "SRE_CONFIG":
        env["SRE_CONFIG"] = str(target)
    elif where == "SRE_CONFIG_DIR":
        env["SRE_CONFIG_DIR"] = str(target.parent)
    dep = _agree(None, "prod", env)
    assert dep is not None and dep.url == "http://found:1"


# --------------------------------------------------------------------------- TLS


@pytest.mark.parametrize("http", ["httpx", "socket", "stdlib"])
def test_plain_http_client_loads_no_ca_bundle(monkeypatch: pytest.MonkeyPatch, http: str) -> None:
    """Only an https:// deployment builds the (expensive) verifying TLS context; the
    command line's transport builds it only when it connects."""
    from watcher.querier import QuerierClient
    from watcher.querier import transport as transport_module

    built: list[tuple[bool, str | None]] = []
    real = transport_module.tls_context

    def spy(verify: bool, ca_file: str | None) -> Any:
        built.append((verify, ca_file))
        return real(verify, ca_file)

    from watcher.querier import httpx_transport, stdlib_transport

    for module in (transport_module, httpx_transport, stdlib_transport):
        monkeypatch.setattr(module, "tls_context", spy)
    plain = QuickDeployment(name="local", url="http://127.0.0.1:4040")
    with QuerierClient(plain, http=http):  # type: ignore[arg-type]
        pass
    assert built == []
    secure = QuickDeployment(name="prod", url="https://pyroscope.example.com")
    with QuerierClient(secure, http=http):  # type: ignore[arg-type]
        pass
    assert built == ([(True, None)] if http == "httpx" else [])
    context = transport_module.no_tls_context()
    assert context.get_ca_certs() == []
    assert context.check_hostname
