"""watcher.config: file search order, validation messages, environment overrides, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from watcher.config import (
    Settings,
    Thresholds,
    default_database_url,
    find_config_file,
    load_settings,
    normalize_cron,
)
from watcher.errors import ConfigError

SECRET = "s3cr3t-value-42"

FULL = f"""
[axiom]
token = "belongs to another tool"

[pyroscope.deployments.prod]
url = "https://pyroscope.example.com/"
token = "{SECRET}"
tenant_id = "team-a"
timeout = 12.5
verify_tls = false
max_response_bytes = 1048576

[pyroscope.deployments.prod-eu]
url = "https://eu.example.com"
username = "12345"
password = "{SECRET}"

[watcher]
database_url = "postgresql://pyro:{SECRET}@db/pyro"
listen = "[::1]:9000"
public_url = "https://pyrowatch.example.com/"
concurrency = 4
retention = "14d"
sample_rate_hz = 97
max_nodes = 131072
pyroscope_ui_url = "https://grafana.example.com"

[[watcher.watch]]
name = "checkout-cpu"
deployment = "prod"
services = ["checkout", "api-*"]
profile_types = ["cpu", "alloc"]
selector = '{{namespace="prod"}}'
schedule = "*/15 * * * *"
window = "1h"
baselines = ["-1d", "-7d"]
min_relative_increase = 0.1
min_share_increase = 0.002
min_samples = 200
alpha = 0.05
alerts = ["oncall"]

[[watcher.alert]]
name = "oncall"
kind = "slack"
url = "https://hooks.slack.com/services/{SECRET}"
repeat_interval = "2h"
send_resolved = false
"""

MINIMAL = """
[pyroscope.deployments.prod]
url = "https://pyroscope.example.com"
"""


@pytest.fixture
def home() -> Path:
    """The temporary HOME the autouse fixture of conftest.py set."""
    return Path(os.environ["HOME"])


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a config file under tmp_path and return its path."""

    def _write(text: str, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _deployment_file(path: Path, url: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[pyroscope.deployments.here]\nurl = "{url}"\n')
    return path


# --------------------------------------------------------------------------- search order


def test_search_order_first_existing_file_wins(home: Path, tmp_path: Path) -> None:
    """--config, $PYROWATCH_CONFIG, ~/.config/pyrowatch, $SRE_CONFIG, $SRE_CONFIG_DIR: in order."""
    explicit = _deployment_file(tmp_path / "explicit.toml", "http://explicit")
    env_file = _deployment_file(tmp_path / "env.toml", "http://pyrowatch-config")
    user_file = _deployment_file(home / ".config/pyrowatch/config.toml", "http://user")
    sre_file = _deployment_file(tmp_path / "sre.toml", "http://sre-config")
    sre_dir_file = _deployment_file(tmp_path / "sre-dir/config.toml", "http://sre-dir")
    env = _env(
        PYROWATCH_CONFIG=str(env_file),
        SRE_CONFIG=str(sre_file),
        SRE_CONFIG_DIR=str(tmp_path / "sre-dir"),
    )

    def url(explicit_path: str | None = None) -> str:
        settings = load_settings(explicit_path, env=env)
        return settings.deployment("here").url

    assert url(str(explicit)) == "http://explicit"
    assert load_settings(str(explicit), env=env).path == explicit
    assert url() == "http://pyrowatch-config"
    env_file.unlink()
    assert url() == "http://user"
    user_file.unlink()
    assert url() == "http://sre-config"
    sre_file.unlink()
    assert url() == "http://sre-dir"
    sre_dir_file.unlink()
    assert load_settings(env=env).deployments == {}
    assert find_config_file(None, env) is None


def test_sre_config_dir_defaults_to_axiom_sre(home: Path) -> None:
    """Without $SRE_CONFIG_DIR the last place is ~/.config/axiom-sre/config.toml."""
    path = _deployment_file(home / ".config/axiom-sre/config.toml", "http://axiom")
    assert find_config_file(None, _env()) == path
    assert load_settings().deployment("here").url == "http://axiom"


def test_explicit_path_must_exist(tmp_path: Path) -> None:
    """A --config path that does not exist is an error naming it."""
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(str(missing))
    assert str(info.value) == f"{missing}: config file not found (given with --config)"


def test_missing_env_paths_are_skipped(home: Path, tmp_path: Path) -> None:
    """$PYROWATCH_CONFIG and $SRE_CONFIG pointing nowhere fall through to the next place."""
    user_file = _deployment_file(home / ".config/pyrowatch/config.toml", "http://user")
    env = _env(PYROWATCH_CONFIG=str(tmp_path / "gone.toml"), SRE_CONFIG=str(tmp_path / "x"))
    assert find_config_file(None, env) == user_file


def test_tilde_in_paths_uses_home(home: Path) -> None:
    """``~/`` in --config and the variables expands to $HOME."""
    path = _deployment_file(home / "cfg/p.toml", "http://tilde")
    assert find_config_file("~/cfg/p.toml", _env()) == path
    assert find_config_file(None, _env(SRE_CONFIG="~/cfg/p.toml")) == path


def test_settings_constructor_reads_the_process_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Settings() and load_settings() without env use os.environ and the search order."""
    path = _deployment_file(tmp_path / "c.toml", "http://from-env-var")
    monkeypatch.setenv("PYROWATCH_CONFIG", str(path))
    monkeypatch.setenv("PYROWATCH_DEPLOYMENTS__HERE__TIMEOUT", "3")
    assert Settings().deployment("here").timeout == 3
    assert load_settings().path == path


# --------------------------------------------------------------------------- contents


def test_full_example_parses(write: Callable[..., Path]) -> None:
    """Every documented key is read, normalised and typed."""
    settings = load_settings(str(write(FULL)), env={"HOME": os.environ["HOME"]})
    prod = settings.deployment("prod")
    assert prod.url == "https://pyroscope.example.com"
    assert prod.token is not None and prod.token.get_secret_value() == SECRET
    assert prod.tenant_id == "team-a"
    assert (prod.timeout, prod.verify_tls, prod.max_response_bytes) == (12.5, False, 1048576)
    assert prod.auth_kind == "bearer"
    assert settings.deployment("prod-eu").auth_kind == "basic"

    w = settings.watcher
    assert w.database_url.get_secret_value() == f"postgresql://pyro:{SECRET}@db/pyro"
    assert (w.listen_host, w.listen_port) == ("::1", 9000)
    assert w.public_url == "https://pyrowatch.example.com"
    assert (w.concurrency, w.retention, w.sample_rate_hz, w.max_nodes) == (
        4,
        timedelta(days=14),
        97.0,
        131072,
    )
    watch = w.watch[0]
    assert watch.profile_types == [
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        "memory:alloc_space:bytes:space:bytes",
    ]
    assert watch.services == ["checkout", "api-*"]
    assert watch.selector == '{namespace="prod"}'
    assert watch.window == timedelta(hours=1)
    assert watch.baselines == [timedelta(days=-1), timedelta(days=-7)]
    assert watch.thresholds == Thresholds(
        min_relative_increase=0.1, min_share_increase=0.002, min_samples=200, alpha=0.05
    )
    alert = w.alert[0]
    assert alert.kind == "slack"
    assert alert.repeat_interval == timedelta(hours=2)
    assert alert.send_resolved is False


def test_defaults(write: Callable[..., Path], home: Path) -> None:
    """Unset keys take the documented defaults; the database lives under XDG_DATA_HOME."""
    text = (
        MINIMAL
        + """
[[watcher.watch]]
name = "w"
deployment = "prod"
services = ["svc"]
"""
    )
    settings = load_settings(str(write(text)))
    prod = settings.deployment("prod")
    assert (prod.timeout, prod.verify_tls, prod.max_response_bytes) == (30.0, True, 256 << 20)
    assert prod.auth_kind == "none"
    w = settings.watcher
    data_home = os.environ["XDG_DATA_HOME"]
    assert w.database_url.get_secret_value() == f"sqlite:///{data_home}/pyrowatch/pyrowatch.db"
    assert (w.listen, w.concurrency, w.retention) == ("127.0.0.1:9465", 32, timedelta(days=30))
    assert (w.sample_rate_hz, w.max_nodes, w.public_url) == (100.0, 65536, None)
    watch = w.watch[0]
    assert watch.profile_types == ["process_cpu:cpu:nanoseconds:cpu:nanoseconds"]
    assert (watch.schedule, watch.window) == ("*/15 * * * *", timedelta(hours=1))
    # -7d would reach past Pyroscope's default one-week query lookback and come back empty.
    assert watch.baselines == [timedelta(days=-1), timedelta(days=-6)]
    assert watch.warnings == []
    assert watch.thresholds == Thresholds()
    assert watch.alerts == []


@pytest.mark.parametrize(
    ("window", "baselines", "warned", "longest"),
    [
        ("1h", '["-1d", "-7d"]', ["-7d"], "-6d22h"),
        ("1h", '["-6d22h"]', [], "-6d22h"),
        ("1h", '["-6d23h"]', ["-6d23h"], "-6d22h"),
        ("1d", '["-5d", "-1d"]', [], "-5d"),
        ("1d", '["-6d", "-14d"]', ["-6d", "-14d"], "-5d"),
    ],
)
def test_baselines_past_pyroscope_default_lookback_warn(
    write: Callable[..., Path], window: str, baselines: str, warned: list[str], longest: str
) -> None:
    """A baseline whose window, or the previous window's (persistence), starts more than a
    week back is named, with the longest offset that works."""
    text = (
        MINIMAL
        + f"""
[[watcher.watch]]
name = "w"
deployment = "prod"
services = ["svc"]
window = "{window}"
baselines = {baselines}
"""
    )
    warnings = load_settings(str(write(text))).watcher.watch[0].warnings
    assert [w.split(" baseline ")[0].rsplit(" ", 1)[1] for w in warnings] == warned
    for warning in warnings:
        assert "max-query-lookback" in warning and f"{longest} or less" in warning


def test_default_database_url_without_xdg(home: Path) -> None:
    """Without $XDG_DATA_HOME the database is under ~/.local/share."""
    url = default_database_url({"HOME": str(home)})
    assert url == f"sqlite:///{home}/.local/share/pyrowatch/pyrowatch.db"


def test_ca_file_is_relative_to_the_config_file(write: Callable[..., Path], tmp_path: Path) -> None:
    """A relative ca_file is looked up beside the config file, not in the working directory."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf/ca.pem").write_text("pem")
    path = write(MINIMAL + 'ca_file = "ca.pem"\n', "conf/config.toml")
    assert load_settings(str(path)).deployment("prod").ca_file == tmp_path / "conf/ca.pem"


def test_empty_file_gives_empty_settings(write: Callable[..., Path]) -> None:
    """A file without [pyroscope] or [watcher] is valid and empty."""
    settings = load_settings(str(write("")))
    assert settings.deployments == {}
    assert settings.watcher.watch == []


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        ("", "none"),
        (f'token = "{SECRET}"', "bearer"),
        (f'username = "u"\npassword = "{SECRET}"', "basic"),
        (f'username = "u"\npassword = "p"\ntoken = "{SECRET}"', "basic"),
        (f'password = "{SECRET}"', "basic"),
        (f'cf_access_client_id = "id.access"\ncf_access_client_secret = "{SECRET}"', "cf-access"),
        (
            f'cf_access_client_id = "id.access"\ncf_access_client_secret = "x"\ntoken = "{SECRET}"',
            "bearer",
        ),
        ('access_command = "cloudflared access curl"', "access-command"),
    ],
)
def test_auth_kind(write: Callable[..., Path], keys: str, kind: str) -> None:
    """Basic wins over token; CF Access alone is cf-access; access_command is its own kind."""
    settings = load_settings(str(write(MINIMAL + keys + "\n")))
    assert settings.deployment("prod").auth_kind == kind


# --------------------------------------------------------------------------- errors

DEPLOYMENT_ERRORS = [
    ('timeout = "abc"', "timeout", "expected a number, got 'abc'"),
    ("timeout = -1", "timeout", "expected a value greater than 0, got -1"),
    ('verify_tls = "maybe"', "verify_tls", "expected true or false, got 'maybe'"),
    ("max_response_bytes = 1.5", "max_response_bytes", "expected an integer, got 1.5"),
    ("tenant_id = 42", "tenant_id", "expected a string, got 42"),
    ('ca_file = "/no/such/ca.pem"', "ca_file", "expected an existing CA bundle file"),
    (f'tokn = "{SECRET}"', "tokn", "unknown key 'tokn' (did you mean 'token'?)"),
    (
        f'cf_access_client_secret = "{SECRET}"',
        "cf_access_client_secret",
        "needs both cf_access_client_id and cf_access_client_secret; "
        "cf_access_client_id is not set",
    ),
    (
        'cf_access_client_id = "id.access"',
        "cf_access_client_id",
        "cf_access_client_secret is not set",
    ),
    (
        f'access_command = "wrap"\ntoken = "{SECRET}"',
        "access_command",
        "access_command cannot be combined with token",
    ),
    (
        f'access_command = "wrap --key \'{SECRET}"',
        "access_command",
        "expected a command line that splits like a shell's",
    ),
    (f'token = "{SECRET}\\n"', "token", "must not contain control characters"),
    (f'password = ["{SECRET}"]', "password", "expected a string"),
]


@pytest.mark.parametrize(("line", "key", "expected"), DEPLOYMENT_ERRORS)
def test_malformed_deployment_values(
    write: Callable[..., Path], line: str, key: str, expected: str
) -> None:
    """One line: the file, the dotted key, what is expected; never the secret."""
    path = write(MINIMAL + line + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: pyroscope.deployments.prod.{key}: ")
    assert expected in message
    assert SECRET not in message
    assert "\n" not in message
    assert info.value.path == str(path)
    assert info.value.key == f"pyroscope.deployments.prod.{key}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://files.example.com", "expected an http:// or https:// URL, got 'ftp://"),
        (f"https://user:{SECRET}@pyro.example.com", "without credentials"),
        (f"https://pyro.example.com/?token={SECRET}", "without a query string"),
        ("pyro.example.com", "expected an http:// or https:// URL"),
    ],
)
def test_malformed_deployment_url(write: Callable[..., Path], url: str, expected: str) -> None:
    """URLs must be http(s), without credentials or query; credentials are not echoed."""
    path = write(f'[pyroscope.deployments.prod]\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: pyroscope.deployments.prod.url: ")
    assert expected in message
    assert SECRET not in message


def test_missing_url_is_named(write: Callable[..., Path]) -> None:
    """A deployment without url says the key is required."""
    path = write(f'[pyroscope.deployments.prod]\ntoken = "{SECRET}"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    assert str(info.value) == f"{path}: pyroscope.deployments.prod.url: required key is missing"


WATCH = """
[[watcher.watch]]
name = "w"
deployment = "prod"
services = ["svc"]
"""

WATCHER_ERRORS = [
    ('[watcher]\nlisten = "nope"', "watcher.listen", "expected HOST:PORT"),
    ('[watcher]\nlisten = "127.0.0.1:99999"', "watcher.listen", "expected HOST:PORT"),
    ("[watcher]\nconcurrency = 0", "watcher.concurrency", "expected a value of at least 1, got 0"),
    ('[watcher]\nretention = "forever"', "watcher.retention", "invalid duration 'forever'"),
    ("[watcher]\nretention = 30", "watcher.retention", "as a string"),
    (f'[watcher]\ndatabase_url = "{SECRET}"', "watcher.database_url", "SQLAlchemy URL"),
    ('[watcher]\npublic_url = "example.com"', "watcher.public_url", "http:// or https://"),
    ("[watcher]\nsample_rate_hz = 0", "watcher.sample_rate_hz", "greater than 0"),
    ("[watcher]\nconcurency = 4", "watcher.concurency", "did you mean 'concurrency'?"),
    (WATCH + 'window = "1x"', "watcher.watch[0].window", "invalid duration '1x'"),
    (WATCH + 'schedule = "*/61 * * * *"', "watcher.watch[0].schedule", "minute step 61"),
    (WATCH + 'schedule = "* * *"', "watcher.watch[0].schedule", "got 3 fields"),
    (WATCH + 'baselines = ["1d"]', "watcher.watch[0].baselines[0]", "past offset"),
    (WATCH + "baselines = []", "watcher.watch[0].baselines", "at least 1 item"),
    (WATCH + 'profile_types = ["cpu", "heap"]', "watcher.watch[0].profile_types[1]", "'heap'"),
    (
        WATCH + "selector = '{namespace=}'",
        "watcher.watch[0].selector",
        'expected a label selector such as {namespace="prod"}: ',
    ),
    (WATCH + "alpha = 2", "watcher.watch[0].alpha", "expected a value less than 1, got 2"),
    (WATCH + "min_samples = -1", "watcher.watch[0].min_samples", "at least 0"),
    (WATCH + 'alerts = ["nope"]', "watcher.watch[0].alerts[0]", "unknown alert channel 'nope'"),
    (WATCH + 'windw = "1h"', "watcher.watch[0].windw", "did you mean 'window'?"),
    (
        WATCH.replace('"prod"', '"staging"'),
        "watcher.watch[0].deployment",
        "unknown deployment 'staging'; [pyroscope.deployments] names: prod",
    ),
    (
        WATCH.replace('services = ["svc"]', "services = []"),
        "watcher.watch[0].services",
        "at least 1 item",
    ),
    (
        WATCH.replace('services = ["svc"]', ""),
        "watcher.watch[0].services",
        "required key is missing",
    ),
    (WATCH + WATCH, "watcher.watch[1].name", "duplicate watch name 'w'"),
    (
        WATCH.replace('name = "w"', 'name = "has space"'),
        "watcher.watch[0].name",
        "expected a watch name",
    ),
    (
        f'[[watcher.alert]]\nname = "a"\nkind = "email"\nurl = "https://x/{SECRET}"',
        "watcher.alert[0].kind",
        "expected one of 'slack', 'webhook' or 'alertmanager', got 'email'",
    ),
    (
        f'[[watcher.alert]]\nname = "a"\nkind = "slack"\nurl = "hooks/{SECRET}"',
        "watcher.alert[0].url",
        "expected an http:// or https:// URL",
    ),
    (
        '[[watcher.alert]]\nname = "a"\nkind = "slack"\nurl = "https://x"\nrepeat_interval = "0s"',
        "watcher.alert[0].repeat_interval",
        "longer than 0s",
    ),
    (
        '[[watcher.alert]]\nname = "a"\nkind = "slack"\nurl = "https://x"\n'
        'send_resolved = "perhaps"',
        "watcher.alert[0].send_resolved",
        "expected true or false",
    ),
]


@pytest.mark.parametrize(("text", "key", "expected"), WATCHER_ERRORS)
def test_malformed_watcher_values(
    write: Callable[..., Path], text: str, key: str, expected: str
) -> None:
    """Every [watcher] problem names the file, the dotted key and the expectation."""
    path = write(MINIMAL + text + "\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: "), message
    assert expected in message
    assert SECRET not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[pyroscope\n", "not valid TOML: "),
        ("[watchr]\nlisten = '1:2'\n", "watchr: unknown table (did you mean [watcher]?)"),
        ("[pyroscope]\ndeployment = 1\n", "pyroscope.deployment: unknown key 'deployment'"),
        ("[pyroscope]\ndeployments = 1\n", "pyroscope.deployments: expected tables"),
        ('[pyroscope.deployments]\nprod = "x"\n', "pyroscope.deployments.prod: expected a table"),
        (
            MINIMAL + 'name = "other"\n',
            "pyroscope.deployments.prod.name: unknown key: the deployment's name is the table name",
        ),
        ('[pyroscope.deployments."bad name"]\nurl = "http://x"\n', "expected a deployment name"),
    ],
)
def test_malformed_files(write: Callable[..., Path], text: str, expected: str) -> None:
    """Syntax errors and misplaced tables name the file and the table."""
    path = write(text)
    with pytest.raises(ConfigError) as info:
        load_settings(str(path))
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)


def test_other_tools_tables_are_ignored(write: Callable[..., Path]) -> None:
    """A shared SRE config may hold other tables; only near-misses of ours are errors."""
    text = '[axiom]\ntoken = "x"\n[grafana.prod]\nurl = "y"\n' + MINIMAL
    assert list(load_settings(str(write(text))).deployments) == ["prod"]


def test_only_the_first_problem_is_reported_with_a_count(write: Callable[..., Path]) -> None:
    """Several problems give one line about the first and a count of the rest."""
    path = write(MINIMAL + 'timeout = "x"\nverify_tls = "maybe"\n')
    with pytest.raises(ConfigError, match=r"timeout: expected a number.*\(and 1 more problem\)$"):
        load_settings(str(path))


# --------------------------------------------------------------------------- environment


def test_env_overrides_deployment_keys(write: Callable[..., Path]) -> None:
    """PYROWATCH_DEPLOYMENTS__<NAME>__<KEY> wins over the file."""
    path = write(FULL)
    env = _env(
        PYROWATCH_DEPLOYMENTS__PROD__TIMEOUT="5",
        PYROWATCH_DEPLOYMENTS__PROD__TOKEN="from-env",
        PYROWATCH_DEPLOYMENTS__PROD_EU__VERIFY_TLS="false",
        PYROWATCH_DEPLOYMENTS__Staging__URL="http://staging:4040",
    )
    settings = load_settings(str(path), env=env)
    prod = settings.deployment("prod")
    assert prod.timeout == 5.0
    assert prod.token is not None and prod.token.get_secret_value() == "from-env"
    assert prod.tenant_id == "team-a"  # untouched keys keep the file's values
    assert settings.deployment("prod-eu").verify_tls is False
    assert settings.deployment("staging").url == "http://staging:4040"


def test_env_overrides_watcher_keys(write: Callable[..., Path]) -> None:
    """PYROWATCH_WATCHER__<KEY> sets [watcher] keys; WATCH/ALERT take JSON."""
    env = _env(
        PYROWATCH_WATCHER__CONCURRENCY="2",
        PYROWATCH_WATCHER__DATABASE_URL="sqlite:////tmp/x.db",
        PYROWATCH_WATCHER__WATCH='[{"name": "j", "deployment": "prod", "services": ["a"]}]',
    )
    settings = load_settings(str(write(MINIMAL)), env=env)
    assert settings.watcher.concurrency == 2
    assert settings.watcher.database_url.get_secret_value() == "sqlite:////tmp/x.db"
    assert [w.name for w in settings.watcher.watch] == ["j"]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "PYROWATCH_DEPLOYMENTS__PROD__TIMEOUT",
            "soon",
            "PYROWATCH_DEPLOYMENTS__PROD__TIMEOUT: expected a number, got 'soon'",
        ),
        (
            "PYROWATCH_DEPLOYMENTS__PROD__TOKN",
            SECRET,
            "PYROWATCH_DEPLOYMENTS__PROD__TOKN: unknown key 'tokn' (did you mean 'token'?)",
        ),
        (
            "PYROWATCH_DEPLOYMENTS__PROD__CF_ACCESS_CLIENT_SECRET",
            SECRET,
            "PYROWATCH_DEPLOYMENTS__PROD__CF_ACCESS_CLIENT_SECRET: Cloudflare Access needs both",
        ),
        (
            "PYROWATCH_DEPLOYMENTS__PROD",
            SECRET,
            "PYROWATCH_DEPLOYMENTS__PROD: expected PYROWATCH_DEPLOYMENTS__<NAME>__<KEY>",
        ),
        (
            "PYROWATCH_WATCHER__WATCH",
            "[{",
            "PYROWATCH_WATCHER__WATCH: expected a JSON list of tables",
        ),
        (
            "PYROWATCH_WATCHER__LISTEN",
            "here",
            "PYROWATCH_WATCHER__LISTEN: expected HOST:PORT such as 127.0.0.1:9465, got 'here'",
        ),
        (
            "PYROWATCH_WATCHER__A__B",
            "1",
            "PYROWATCH_WATCHER__A__B: expected PYROWATCH_WATCHER__<KEY>",
        ),
    ],
)
def test_env_errors_name_the_variable(
    write: Callable[..., Path], var: str, value: str, expected: str
) -> None:
    """A bad override names the environment variable, not the file, and hides secrets."""
    with pytest.raises(ConfigError) as info:
        load_settings(str(write(MINIMAL)), env=_env(**{var: value}))
    message = str(info.value)
    assert message.startswith(expected)
    assert SECRET not in message


def test_env_only_deployment_needs_a_url() -> None:
    """Without a file, the environment alone can define a deployment."""
    env = _env(PYROWATCH_DEPLOYMENTS__LOCAL__URL="http://127.0.0.1:4040")
    assert load_settings(env=env).deployment("local").url == "http://127.0.0.1:4040"
    with pytest.raises(ConfigError, match="^PYROWATCH_DEPLOYMENTS__LOCAL__URL: required key"):
        load_settings(env=_env(PYROWATCH_DEPLOYMENTS__LOCAL__TOKEN=SECRET))


def test_unrelated_pyrowatch_variables_are_ignored(write: Callable[..., Path]) -> None:
    """Only the two override prefixes are read (PYROWATCH_CONFIG etc. are not keys)."""
    env = _env(PYROWATCH_SHARED_DIR="/x", PYROWATCH_SOMETHING="y")
    assert list(load_settings(str(write(MINIMAL)), env=env).deployments) == ["prod"]


# --------------------------------------------------------------------------- secrets and lookup


def test_secrets_never_show_in_reprs(write: Callable[..., Path]) -> None:
    """repr/str of the settings and their parts hide every secret, access_command included."""
    text = (
        FULL
        + f"""
[pyroscope.deployments.wrapped]
url = "https://w.example.com"
access_command = "wrapper --key {SECRET}"
"""
    )
    settings = load_settings(str(write(text)))
    for thing in (
        settings,
        *settings.deployments.values(),
        settings.watcher,
        *settings.watcher.alert,
    ):
        assert SECRET not in repr(thing)
        assert SECRET not in str(thing)
    assert SECRET in settings.secret_values()[0] or SECRET in "".join(settings.secret_values())
    assert settings.deployment("prod").secret_values() == [SECRET]


def test_alert_url_paths_are_secrets_only_when_token_like(write: Callable[..., Path]) -> None:
    """A Slack-style path is masked on its own; /api/v2/alerts or /a would garble messages."""
    token_path = "/services/T000/B000/abcdefghijklmnopqrstuvwx"
    text = (
        MINIMAL
        + f"""
[[watcher.alert]]
name = "slack"
kind = "slack"
url = "https://hooks.example.com{token_path}"

[[watcher.alert]]
name = "am"
kind = "alertmanager"
url = "https://am.example.com/api/v2/alerts"

[[watcher.alert]]
name = "short"
kind = "webhook"
url = "https://bot.example.com/a"
"""
    )
    values = load_settings(str(write(text))).secret_values()
    assert token_path in values
    assert "/api/v2/alerts" not in values and "/a" not in values
    assert "https://am.example.com/api/v2/alerts" in values  # whole URLs stay secret


def test_deployment_lookup_lists_the_configured_names(write: Callable[..., Path]) -> None:
    """An unknown deployment name lists the known ones and suggests a near miss."""
    path = write(FULL)
    settings = load_settings(str(path))
    with pytest.raises(ConfigError) as info:
        settings.deployment("prd")
    assert str(info.value) == (
        f"{path}: unknown deployment 'prd' (did you mean 'prod'?); configured: prod, prod-eu"
    )


def test_deployment_lookup_without_any_config() -> None:
    """With no file at all the error says where to create one."""
    with pytest.raises(ConfigError, match=r"no config file found; create ~/.config/pyrowatch"):
        load_settings().deployment("prod")


# --------------------------------------------------------------------------- cron


@pytest.mark.parametrize(
    ("expr", "normal"),
    [
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 9 * * 1-5", "0 9 * * mon-fri"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("0 0 * * 0", "0 0 * * sun"),
        ("0 0 * * 7", "0 0 * * sun"),
        ("0 0 * * 0-6", "0 0 * * *"),
        ("0 0 * * */2", "0 0 * * tue,thu,sat,sun"),
        ("0 0 * * 1,3,5-7", "0 0 * * mon,wed,fri-sat,sun"),
        ("5,35 1-23/2 1 jan,jul *", "5,35 1-23/2 1 jan,jul *"),
        ("  0   12 * * *  ", "0 12 * * *"),
    ],
)
def test_normalize_cron_accepts_crontab_and_names_weekdays(expr: str, normal: str) -> None:
    """Valid expressions pass; numeric weekdays become names (crontab's Sunday is 0)."""
    assert normalize_cron(expr) == normal


@pytest.mark.parametrize(
    ("expr", "match"),
    [
        ("@hourly", "got 1 fields"),
        ("60 * * * *", "minute value 60 is outside 0-59"),
        ("* 24 * * *", "hour value 24 is outside 0-23"),
        ("* * 0 * *", "day of month value 0 is outside 1-31"),
        ("* * * 13 *", "month value 13 is outside 1-12"),
        ("* * * * 8", "day of week value 8 is outside 0-7"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step 0"),
        ("a * * * *", "not a number or a known name"),
        ("*-5 * * * *", "cannot start a range"),
        ("1,,2 * * * *", "invalid part"),
    ],
)
def test_normalize_cron_rejects_bad_fields(expr: str, match: str) -> None:
    """Each field is checked against its range, quoting the bad part."""
    with pytest.raises(ValueError, match=match):
        normalize_cron(expr)


def test_config_check_prints_lookback_warnings_and_succeeds(
    write: Callable[..., Path], home: Path
) -> None:
    """`config check` exits 0 on a file that loads, with one warning line per doubtful baseline."""
    path = write(
        MINIMAL
        + """
[[watcher.watch]]
name = "weekly"
deployment = "prod"
services = ["svc"]
baselines = ["-1d", "-7d"]
"""
    )
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "config", "check", str(path)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "ok: 1 deployments, 1 watches" in done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: watch 'weekly': the -7d baseline")
