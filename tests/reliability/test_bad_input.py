"""Bad input: every configuration key with a wrong type or value, hostile ``access_command``
values, label values with quotes and backslashes, and fuzzing of everything that parses
text or bytes from outside. Each gives a clear error (a ``WatcherError`` subclass, one
line) or a correct result; never a raw exception.

What other suites already prove is not repeated here:

- ``tests/test_config.py``: the documented error messages (malformed deployment and
  watcher values, malformed files, unknown tables and keys with suggestions, bad cron
  fields, environment overrides);
- ``tests/flamegraph/test_flamegraph_properties.py``: hypothesis on garbage and mutated
  flame graphs, diffs, tree bytes and folded text;
- ``tests/test_selectors.py::test_parser_never_crashes`` and the round trips;
- ``tests/cli/test_flamegraph.py::test_label_values_with_quotes_and_backslashes_are_escaped``;
- ``tests/test_times.py``: the documented time and duration forms and their errors.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon.support import T0, Clock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.config import load_settings, normalize_cron
from watcher.errors import ConfigError, DecodeError, TimeSpecError, WatcherError

from .support import MINUTE, YEARLY, Config, Processes, assert_one_line_error, toml_value

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------- config

#: A valid configuration, as TOML literals per section; each case changes one key.
BASE: dict[str, dict[str, str]] = {
    "deployment": {"url": '"http://127.0.0.1:9"'},
    "watcher": {},
    "watch": {"name": '"w"', "deployment": '"prod"', "services": '["svc"]'},
    "alert": {"name": '"a"', "kind": '"webhook"', "url": '"https://hooks.example.com/x"'},
}
HEADERS = {
    "deployment": "[pyroscope.deployments.prod]",
    "watcher": "[watcher]",
    "watch": "[[watcher.watch]]",
    "alert": "[[watcher.alert]]",
}


#: (section, line, dotted key, words of the message). Gaps left by tests/test_config.py.
BAD_VALUES = [
    ("deployment", "url = 42", "pyroscope.deployments.prod.url", "expected a string"),
    ("deployment", "token = 42", "pyroscope.deployments.prod.token", "expected a string"),
    ("deployment", "username = []", "pyroscope.deployments.prod.username", "expected a string"),
    ("deployment", "access_command = 7", "pyroscope.deployments.prod.access_command", "string"),
    ("deployment", "cf_access_client_id = {a = 1}", "pyroscope.deployments.prod", "string"),
    ("deployment", 'tenant_id = "a\\nb"', "pyroscope.deployments.prod.tenant_id", "control"),
    ("deployment", 'timeout = "30s"', "pyroscope.deployments.prod.timeout", "expected a number"),
    ("deployment", "timeout = nan", "pyroscope.deployments.prod.timeout", "expected a number"),
    ("deployment", "timeout = inf", "pyroscope.deployments.prod.timeout", "expected a number"),
    ("deployment", "timeout = 1e12", "pyroscope.deployments.prod.timeout", "at most 86400"),
    ("deployment", 'token = "t\u00f6ken"', "pyroscope.deployments.prod.token", "ASCII"),
    ("deployment", 'tenant_id = "\u00e9quipe"', "pyroscope.deployments.prod.tenant_id", "ASCII"),
    ("deployment", "verify_tls = 2", "pyroscope.deployments.prod.verify_tls", "true or false"),
    ("deployment", "ca_file = 5", "pyroscope.deployments.prod.ca_file", "file path"),
    ("deployment", "max_response_bytes = 0", "pyroscope.deployments.prod.max_response_bytes", "0"),
    ("deployment", 'max_response_bytes = "1MB"', "pyroscope.deployments.prod", "integer"),
    ("deployment", "urls = []", "pyroscope.deployments.prod.urls", "did you mean 'url'?"),
    ("watcher", "database_url = 5", "watcher.database_url", "expected a string"),
    ("watcher", "listen = 9465", "watcher.listen", "expected a string"),
    ("watcher", 'listen = "[::1"', "watcher.listen", "HOST:PORT"),
    ("watcher", "public_url = 5", "watcher.public_url", "expected a string"),
    ("watcher", 'pyroscope_ui_url = "ftp://x"', "watcher.pyroscope_ui_url", "http://"),
    ("watcher", 'concurrency = "eight"', "watcher.concurrency", "expected an integer"),
    ("watcher", "concurrency = 1.5", "watcher.concurrency", "expected an integer"),
    ("watcher", 'retention = "-1d"', "watcher.retention", "invalid duration"),
    ("watcher", 'retention = "0s"', "watcher.retention", "longer than 0s"),
    ("watcher", 'sample_rate_hz = "fast"', "watcher.sample_rate_hz", "expected a number"),
    ("watcher", "sample_rate_hz = inf", "watcher.sample_rate_hz", "expected a number"),
    ("watcher", "max_nodes = 0", "watcher.max_nodes", "at least 1"),
    ("watcher", 'watch = "x"', "watcher.watch", "expected a list"),
    ("watcher", "alert = 1", "watcher.alert", "expected a list"),
    ("watch", "name = 1", "watcher.watch[0].name", "expected a string"),
    ("watch", 'services = "svc"', "watcher.watch[0].services", "expected a list"),
    ("watch", "services = [1]", "watcher.watch[0].services[0]", "expected a string"),
    ("watch", 'services = ["  "]', "watcher.watch[0].services[0]", "empty string"),
    ("watch", 'profile_types = "cpu"', "watcher.watch[0].profile_types", "expected a list"),
    ("watch", 'profile_types = ["a:b"]', "watcher.watch[0].profile_types[0]", "a:b"),
    ("watch", "selector = 1", "watcher.watch[0].selector", "expected a string"),
    ("watch", "selector = '{a=\"unterminated}'", "watcher.watch[0].selector", "selector"),
    ("watch", "selector = 'namespace=\"prod\"'", "watcher.watch[0].selector", "selector"),
    ("watch", "schedule = 5", "watcher.watch[0].schedule", "expected a string"),
    ("watch", 'schedule = "60 * * * *"', "watcher.watch[0].schedule", "outside 0-59"),
    ("watch", 'schedule = "* * * * * *"', "watcher.watch[0].schedule", "got 6 fields"),
    ("watch", 'schedule = "@hourly"', "watcher.watch[0].schedule", "5 cron fields"),
    ("watch", 'schedule = "* * 32 * *"', "watcher.watch[0].schedule", "outside 1-31"),
    ("watch", 'schedule = "* * * 13 *"', "watcher.watch[0].schedule", "outside 1-12"),
    ("watch", 'schedule = "* * * * 8"', "watcher.watch[0].schedule", "outside 0-7"),
    ("watch", 'schedule = "5-1 * * * *"', "watcher.watch[0].schedule", "runs backwards"),
    ("watch", 'schedule = "* * * foo *"', "watcher.watch[0].schedule", "'foo'"),
    ("watch", "window = 3600", "watcher.watch[0].window", "as a string"),
    ("watch", 'window = "0s"', "watcher.watch[0].window", "longer than 0s"),
    ("watch", 'window = "1 hour"', "watcher.watch[0].window", "invalid duration"),
    ("watch", 'baselines = "-1d"', "watcher.watch[0].baselines", "expected a list"),
    ("watch", "baselines = [-1]", "watcher.watch[0].baselines[0]", "as a string"),
    ("watch", 'baselines = ["0s"]', "watcher.watch[0].baselines[0]", "past offset"),
    ("watch", "min_relative_increase = -0.1", "watcher.watch[0].min_relative_increase", "0"),
    ("watch", "min_share_increase = 1.5", "watcher.watch[0].min_share_increase", "at most 1"),
    ("watch", "alpha = 0", "watcher.watch[0].alpha", "greater than 0"),
    ("watch", 'alerts = "a"', "watcher.watch[0].alerts", "expected a list"),
    ("watch", 'servics = ["x"]', "watcher.watch[0].servics", "did you mean 'services'?"),
    ("alert", "name = 1", "watcher.alert[0].name", "expected a string"),
    ("alert", 'kind = "Slack"', "watcher.alert[0].kind", "expected one of"),
    ("alert", "url = 5", "watcher.alert[0].url", "expected a string"),
    ("alert", "repeat_interval = 60", "watcher.alert[0].repeat_interval", "as a string"),
    ("alert", 'repeat_interval = "soon"', "watcher.alert[0].repeat_interval", "invalid duration"),
    ("alert", 'urll = "https://x"', "watcher.alert[0].urll", "did you mean 'url'?"),
]


def _file(section: str, line: str) -> str:
    """The valid configuration with ``line`` (``key = literal``) set in ``section``."""
    tables = {name: dict(keys) for name, keys in BASE.items()}
    if line:
        key, _, literal = line.partition(" = ")
        tables[section][key] = literal
        if section == "watcher" and key in ("watch", "alert"):
            del tables[key]  # the [[watcher.KEY]] tables would redefine it
    return "".join(
        HEADERS[name] + "\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
        for name, keys in tables.items()
    )


@pytest.mark.parametrize(("section", "line", "key", "words"), BAD_VALUES)
def test_every_key_with_a_wrong_type_or_value_is_one_clear_line(
    tmp_path: Path, section: str, line: str, key: str, words: str
) -> None:
    """The file, the dotted key and what is expected, on one line; nothing else raised."""
    path = tmp_path / "config.toml"
    path.write_text(_file(section, line), encoding="utf-8")

    with pytest.raises(ConfigError) as info:
        load_settings(str(path), env={})

    message = str(info.value)
    assert message.startswith(f"{path}: {key}"), message
    assert words in message, message
    assert "\n" not in message


def test_the_base_file_of_those_cases_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(_file("watch", ""), encoding="utf-8")
    assert load_settings(str(path), env={}).watcher.watch[0].name == "w"


def test_config_check_reports_a_bad_file_in_one_line(processes: Processes, tmp_path: Path) -> None:
    """``pyrowatch config check`` and a query command, as processes, on three bad files."""
    cases = {
        "cron": _file("watch", 'schedule = "*/0 * * * *"'),
        "duration": _file("watch", 'window = "an hour"'),
        "selector": _file("watch", "selector = '{env=~\"(\"}'"),
    }
    commands = []
    for name, text_ in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text_, encoding="utf-8")
        commands += [(["config", "check"], path), (["services", "prod"], path)]

    procs = processes.run_all(commands)

    for proc in procs:
        line = assert_one_line_error(proc, code=1)
        assert "watcher.watch[0]." in line, proc


#: Values a deployment used to accept and then crash on ("unexpected OverflowError",
#: "unexpected UnicodeEncodeError") when the first request was built.
UNSENDABLE = {
    "timeout": "1e12",
    "token": '"t\u00f6ken"',
    "tenant_id": '"\u00e9quipe"',
    "cf_access_client_id": '"\u00e9"\ncf_access_client_secret = "s"',
}


def _deployment_file(path: Path, key: str, literal: str, *, watcher: bool) -> Path:
    text_ = f'[pyroscope.deployments.prod]\nurl = "http://127.0.0.1:9"\n{key} = {literal}\n'
    path.write_text(text_ + ("[watcher]\n" if watcher else ""), encoding="utf-8")
    return path


def test_values_no_request_can_carry_are_refused_when_the_config_is_validated(
    processes: Processes, tmp_path: Path
) -> None:
    """``config check`` and a query with a full configuration: one line naming the key."""
    commands = []
    for key, literal in UNSENDABLE.items():
        path = _deployment_file(tmp_path / f"{key}.toml", key, literal, watcher=True)
        commands += [(["config", "check"], path), (["services", "prod"], path)]

    procs = processes.run_all(commands)

    for proc, key in zip(procs, [k for k in UNSENDABLE for _ in (0, 1)], strict=True):
        line = assert_one_line_error(proc, code=1)
        assert f"pyroscope.deployments.prod.{key}" in line and "unexpected" not in line, proc


def test_query_commands_on_a_plain_config_refuse_them_too(
    processes: Processes, tmp_path: Path
) -> None:
    """The same values in a deployments-only file (read by the quick path)."""
    commands = [
        (["services", "prod"], _deployment_file(tmp_path / f"{k}.toml", k, v, watcher=False))
        for k, v in UNSENDABLE.items()
    ]

    procs = processes.run_all(commands)

    for proc, key in zip(procs, UNSENDABLE, strict=True):
        line = assert_one_line_error(proc, code=1)
        assert f"pyroscope.deployments.prod.{key}" in line and "unexpected" not in line, proc


# A value of any TOML type, including the awkward ones.
_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(
        ["", " ", "0", "-1", "1h", "-1d", "*/5 * * * *", "{}", '{a="b"}', "http://x", "cpu"]
    ),
)
_values = st.one_of(
    _scalars, st.lists(_scalars, max_size=3), st.dictionaries(st.sampled_from("ab"), _scalars)
)
_KEYS = {
    "deployment": [
        "url", "token", "username", "password", "access_command", "cf_access_client_id",
        "cf_access_client_secret", "tenant_id", "timeout", "verify_tls", "ca_file",
        "max_response_bytes", "nonsense",
    ],
    "watcher": [
        "database_url", "listen", "public_url", "pyroscope_ui_url", "concurrency", "retention",
        "sample_rate_hz", "max_nodes", "nonsense",
    ],
    "watch": [
        "name", "deployment", "services", "profile_types", "selector", "schedule", "window",
        "baselines", "min_relative_increase", "min_share_increase", "min_samples", "alpha",
        "alerts", "nonsense",
    ],
    "alert": ["name", "kind", "url", "repeat_interval", "send_resolved", "nonsense"],
}  # fmt: skip


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value) if isinstance(value, str) else str(value)


@FUZZ
@given(st.sampled_from(sorted(_KEYS)), st.data(), _values)
def test_fuzzed_config_values_load_or_fail_with_one_config_error(
    tmp_path_factory: pytest.TempPathFactory, section: str, data: st.DataObject, value: Any
) -> None:
    """Any key set to any value: a ConfigError naming a key, on one line, or settings that
    work. A deployment that loads must be usable: a query against a closed port fails
    with a WatcherError, never with something raw."""
    from watcher.querier import QuerierClient, RetryPolicy
    from watcher.times import TimeRange

    key = data.draw(st.sampled_from(_KEYS[section]))
    path = tmp_path_factory.mktemp("fuzz") / "config.toml"
    path.write_text(_file(section, f"{key} = {_toml(value)}"), encoding="utf-8")
    try:
        loaded = load_settings(str(path), env={})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message, message
        return
    deployment = loaded.deployment("prod")
    if deployment.access_command is not None or key == "url" or key == "ca_file":
        return  # a wrapper or another host: nothing safe to run
    with QuerierClient(deployment, retry=RetryPolicy(attempts=1)) as client:
        with pytest.raises(WatcherError):
            client.label_names(TimeRange.last(timedelta(hours=1), now=T0))


_cron_field = st.one_of(
    st.just("*"),
    st.from_regex(r"\A(\*|\d{1,2}|[a-z]{3})(-(\d{1,2}|[a-z]{3}))?(/\d{1,2})?\Z"),
    st.text(alphabet="0123456789*/,-", min_size=1, max_size=6),
)


@FUZZ
@given(st.lists(_cron_field, min_size=4, max_size=6).map(" ".join) | st.text(max_size=20))
def test_every_schedule_config_accepts_is_one_the_scheduler_accepts(expr: str) -> None:
    """``normalize_cron`` rejects with a ValueError, or returns an expression APScheduler
    turns into a trigger with a next fire time (``pyrowatch run`` cannot fail at start)."""
    from watcher.daemon.scheduler import cron_trigger

    try:
        normal = normalize_cron(expr)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    trigger = cron_trigger(normal)
    assert trigger.get_next_fire_time(None, T0) is not None


# ---------------------------------------------------------------------------- times

_time_text = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A(now)?[+-]?\d{0,12}(\.\d{1,3})?(ms|us|s|m|h|d|w){0,2}\Z"),
    st.from_regex(r"\A\d{1,5}-\d{1,2}-\d{1,2}(T\d{1,2}:\d{2}(:\d{2})?)?(Z|[+-]\d{2}:\d{2})?\Z"),
    st.from_regex(r"\A\d{1,22}(\.\d{0,9})?\Z"),
)
NOW = datetime(2025, 3, 1, 12, tzinfo=UTC)


@FUZZ
@given(_time_text)
def test_time_parser_gives_an_aware_time_or_a_time_spec_error(text_: str) -> None:
    from watcher.times import parse_time

    try:
        moment = parse_time(text_, now=NOW)
    except TimeSpecError as exc:
        assert "\n" not in str(exc)
        return
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


@FUZZ
@given(_time_text)
def test_duration_and_offset_parsers_give_a_timedelta_or_a_time_spec_error(text_: str) -> None:
    from watcher.times import parse_duration, parse_offset

    for parse in (parse_duration, parse_offset):
        try:
            value = parse(text_)
        except TimeSpecError:
            continue
        assert isinstance(value, timedelta)


@FUZZ
@given(st.one_of(st.none(), _time_text), st.one_of(st.none(), _time_text), st.none() | _time_text)
def test_resolve_range_gives_a_range_or_a_time_spec_error(
    range_: str | None, start: str | None, end: str | None
) -> None:
    """The --range/--start/--end resolution every query command does."""
    from watcher.times import resolve_range

    try:
        rng = resolve_range(range_, start, end, now=NOW)
    except TimeSpecError as exc:
        assert "\n" not in str(exc)
        return
    assert rng.start < rng.end
    assert rng.start_ms <= rng.end_ms


# ---------------------------------------------------------------------------- wire


def _tree_bytes() -> bytes:
    from watcher.flamegraph import Tree, encode_tree_bytes

    tree = Tree.from_stacks(
        [(("main", "a", "b"), 5), (("main", "a", "c"), 3), (("main", "d"), 7), (("x",), 1)]
    )
    return encode_tree_bytes(tree)


@FUZZ
@given(st.data())
def test_mutated_tree_bytes_decode_or_raise_decode_error(data: st.DataObject) -> None:
    """Real tree bytes with bytes flipped, cut or appended (longer than the 64 random bytes
    of the flamegraph suite)."""
    from watcher.flamegraph import FunctionTable, decode_tree_bytes

    raw = bytearray(_tree_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(0, len(raw)))] + data.draw(st.binary(max_size=8))
    try:
        tree = decode_tree_bytes(bytes(raw))
    except DecodeError:
        return
    FunctionTable.from_tree(tree)
    assert tree.total == sum(value for _stack, value in tree.stacks())


def _pprof_bytes() -> bytes:
    from watcher.flamegraph import Tree
    from watcher.pprof import build_pprof

    tree = Tree.from_stacks([(("main", "a", "b"), 5), (("main", "c"), 3)])
    return build_pprof(tree, sample_type="cpu", sample_unit="nanoseconds")


@FUZZ
@given(st.data())
def test_garbage_and_mutated_pprof_parse_or_raise_decode_error(data: st.DataObject) -> None:
    from watcher.pprof import parse_pprof

    raw = bytearray(_pprof_bytes())
    if data.draw(st.booleans()):
        raw = bytearray(data.draw(st.binary(max_size=200)))
    else:
        for _ in range(data.draw(st.integers(1, 6))):
            if raw:
                raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = bytearray(gzip.compress(bytes(raw)))
    try:
        profile = parse_pprof(bytes(raw), max_bytes=1 << 20)
        for index in range(len(profile.sample_types)):
            list(profile.stacks(index))
    except DecodeError:
        return


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_shaped = st.fixed_dictionaries(
    {},
    optional={
        "names": _json,
        "labelsSet": _json,
        "profileTypes": _json,
        "series": _json,
        "flamegraph": _json,
        "tree": _json | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
        "dataIngested": _json,
        "oldestProfileTime": _json,
        "newestProfileTime": _json,
    },
)


_METHODS = [
    "LabelValues",
    "Series",
    "ProfileTypes",
    "SelectMergeStacktraces",
    "tree",
    "SelectSeries",
    "GetProfileStats",
    "LabelNames",
]


@FUZZ
@given(st.one_of(_json, _shaped), st.sampled_from(_METHODS))
def test_any_server_answer_is_a_result_or_a_watcher_error(body: Any, method: str) -> None:
    """Whatever JSON a Pyroscope-looking server answers, every client method returns a
    result or raises a WatcherError (DecodeError for shapes it cannot read)."""
    from watcher.querier import QuerierClient, RetryPolicy
    from watcher.times import TimeRange

    payload = json.dumps(body).encode()
    transport = httpx.MockTransport(lambda _request: httpx.Response(200, content=payload))
    rng = TimeRange.last(timedelta(hours=1), now=NOW)
    calls: dict[str, Callable[[QuerierClient], Any]] = {
        "LabelValues": lambda c: c.label_values("service_name", rng),
        "LabelNames": lambda c: c.label_names(rng),
        "Series": lambda c: c.series(rng),
        "ProfileTypes": lambda c: c.profile_types(rng),
        "SelectMergeStacktraces": lambda c: c.select_merge_stacktraces("cpu", None, rng),
        "tree": lambda c: c.select_merge_stacktraces("cpu", None, rng, fmt="tree"),
        "SelectSeries": lambda c: c.select_series("cpu", None, rng, step=60),
        "GetProfileStats": lambda c: c.get_profile_stats(),
    }
    with QuerierClient("http://pyroscope.invalid", transport=transport, retry=RetryPolicy(1)) as c:
        try:
            calls[method](c)
        except WatcherError as exc:
            assert "\n" not in str(exc) or isinstance(exc, DecodeError)


# ---------------------------------------------------------------------------- processes


def _recording_wrapper(tmp_path: Path) -> tuple[Path, Path]:
    """A curl stand-in that writes its argument vector to a file and answers an empty
    flame graph (or a service list), so the query completes."""
    record = tmp_path / "argv.json"
    wrapper = tmp_path / "record-args"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "url = next(a for a in sys.argv if a.startswith('http'))\n"
        "if url.endswith('LabelValues'):\n"
        "    print(json.dumps({'names': ['svc']}))\n"
        "else:\n"
        "    print(json.dumps({'flamegraph': {'names': ['total'], 'levels': [],"
        " 'total': '0', 'maxSelf': '0'}}))\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return wrapper, record


def test_hostile_access_command_metacharacters_are_arguments_never_a_shell(
    processes: Processes, tmp_path: Path
) -> None:
    """``; touch``, ``&&``, pipes, ``$( )``, backticks and redirections in access_command
    reach the wrapper as literal arguments: no file is created, the query completes. A
    label value with quotes and backslashes reaches the server escaped, intact."""
    wrapper, record = _recording_wrapper(tmp_path)
    marks = [tmp_path / f"pwned-{n}" for n in range(6)]
    hostile = (
        f"{wrapper} --flag ; touch {marks[0]} && touch {marks[1]} | touch {marks[2]} "
        f"$(touch {marks[3]}) `touch {marks[4]}` > {marks[5]}"
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[pyroscope.deployments.prod]\nurl = "http://127.0.0.1:9"\n'
        f"access_command = {toml_value(hostile)}\n",
        encoding="utf-8",
    )
    odd = 'say "hi" \\o/ C:\\tmp'

    services = processes.run("services", "prod", config=config)
    services_argv = json.loads(record.read_text())
    graph = processes.run(
        "flamegraph", "prod", 'we"ird\\svc', "--label", f"note={odd}", "--range", "1h",
        config=config,
    )  # fmt: skip
    graph_argv = json.loads(record.read_text())

    assert services.popen.returncode == 0 and services.out.split() == ["svc"], services
    assert graph.popen.returncode == 0, graph
    for mark in marks:
        assert not mark.exists(), f"{mark.name} was created: the command went through a shell"
    for token in (";", "&&", "|", "$(touch", "`touch", ">", str(marks[5])):
        assert token in services_argv, (token, services_argv)
    body = json.loads(graph_argv[graph_argv.index("-d") + 1])
    from watcher.selectors import parse_selector

    matchers = {m.name: m.value for m in parse_selector(body["labelSelector"])}
    assert matchers == {"service_name": 'we"ird\\svc', "note": odd}


def test_quotes_and_backslashes_in_watch_services_and_selectors(
    tmp_path: Path, database_url: str, make_app: Callable[..., Any]
) -> None:
    """A service named with quotes and a backslash, a watch selector with the same: the
    daemon queries exactly that series and stores the escaped selector."""
    from watcher.daemon.jobs import run_watch
    from watcher.sandbox.server import Sandbox
    from watcher.sandbox.store import ProfileStore
    from watcher.selectors import parse_selector

    weird = 'we"ird\\svc'
    env_value = 'a"b\\c'
    cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    store = ProfileStore()
    for minutes in range(0, 120, 10):
        at = int((T0 - timedelta(minutes=minutes + 5)).timestamp() * 1000)
        store.add({"service_name": weird, "env": env_value}, cpu, at, {("main", "odd"): 10**9})
        store.add({"service_name": weird, "env": "plain"}, cpu, at, {("main", "even"): 10**9})
    moment = (T0 + MINUTE).timestamp()
    with Sandbox(store, clock=lambda: moment) as server:
        config = Config(
            path=tmp_path / "config.toml", sandbox_url=server.url, database_url=database_url
        )
        path = config.write(services=[weird], schedule=YEARLY)
        selector = '{env="a\\"b\\\\c"}'
        text_ = path.read_text(encoding="utf-8").replace(
            'window = "1h"', f'window = "1h"\nselector = {toml_value(selector)}'
        )
        path.write_text(text_, encoding="utf-8")
        settings = load_settings(str(path), env={})
        app = make_app(settings, clock=Clock(T0 + MINUTE))

        result = run_watch(app, settings.watcher.watch[0], scheduled_at=T0)

    (pair,) = result.pairs
    assert (pair.service, pair.status) == (weird, "ok"), pair
    (snapshot,) = app.repo.snapshots(weird, with_functions=True)
    assert {m.name: m.value for m in parse_selector(snapshot.selector)} == {
        "service_name": weird,
        "env": env_value,
    }
    assert {f.function for f in snapshot.functions} == {"main", "odd"}
