"""Selector parsing, formatting and matching (Prometheus metric-selector semantics)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watcher.errors import SelectorError
from watcher.selectors import (
    Matcher,
    format_selector,
    parse_label_arg,
    parse_selector,
)


def test_empty_braces_match_everything() -> None:
    assert parse_selector("{}") == []
    assert parse_selector("  { }  ") == []


def test_all_operators_and_trailing_comma() -> None:
    got = parse_selector('{a="1", b!="2", c=~"x.*", d!~"y|z",}')
    assert got == [
        Matcher("a", "=", "1"),
        Matcher("b", "!=", "2"),
        Matcher("c", "=~", "x.*"),
        Matcher("d", "!~", "y|z"),
    ]


def test_metric_name_becomes_name_matcher() -> None:
    assert parse_selector('process_cpu{service_name="api"}') == [
        Matcher("__name__", "=", "process_cpu"),
        Matcher("service_name", "=", "api"),
    ]
    assert parse_selector("memory") == [Matcher("__name__", "=", "memory")]
    # Prometheus metric names may contain colons.
    assert parse_selector("a:b_c{}") == [Matcher("__name__", "=", "a:b_c")]


def test_metric_name_twice_is_an_error() -> None:
    with pytest.raises(SelectorError, match="metric name must not be set twice"):
        parse_selector('foo{__name__="bar"}')


def test_quoted_utf8_label_names_and_lone_string_metric_name() -> None:
    assert parse_selector('{"otel.scope.name"="x", "sérvice"!="é"}') == [
        Matcher("otel.scope.name", "=", "x"),
        Matcher("sérvice", "!=", "é"),
    ]
    assert parse_selector('{"my.metric", a="b"}') == [
        Matcher("__name__", "=", "my.metric"),
        Matcher("a", "=", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (r'{a="q\"uote"}', 'q"uote'),
        (r'{a="back\\slash"}', "back\\slash"),
        (r'{a="new\nline"}', "new\nline"),
        (r'{a="tab\tx\u00e9\x41\101"}', "tab\txéAA"),
        (r"{a='single \' quote'}", "single ' quote"),
        ('{a=`raw \\n "x"`}', 'raw \\n "x"'),
        ("{a=`multi\nline`}", "multi\nline"),
        (r'{a="\U0001F600"}', "\U0001f600"),
    ],
)
def test_string_quotes_and_escapes(text: str, value: str) -> None:
    assert parse_selector(text) == [Matcher("a", "=", value)]


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("", "1:1", "expected a metric name"),
        ("{a}", "1:3", "expected label matching operator"),
        ("{a=}", "1:4", "expected string"),
        ('{a="b" c="d"}', "1:8", 'expected "," or "}"'),
        ('{a="b"', "1:7", "end of input inside braces"),
        ('{a="b', "1:4", "unterminated quoted string"),
        ("{a=`b", "1:4", "unterminated raw string"),
        ('{a="b\nc"}', "1:4", "unterminated quoted string"),
        ('{a="\\q"}', "1:5", "unknown escape sequence"),
        ('{a=~"("}', "1:3", "error parsing regexp"),
        ('{a="b"} x', "1:9", "expected end of input"),
        ('{"" = "x"}', "1:2", "label name must not be empty"),
        ('{\n  a="b",\n  c}', "3:4", "expected label matching operator"),
        ("{a:b='x'}", "1:3", "in label matching"),
    ],
)
def test_errors_name_position_and_expectation(text: str, position: str, expected: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    message = str(info.value)
    assert message.startswith(f"{position}: parse error: "), message
    assert expected in message


def test_regex_is_fully_anchored_and_dotall() -> None:
    m = Matcher("env", "=~", "prod")
    assert m.matches({"env": "prod"})
    assert not m.matches({"env": "production"})
    assert not m.matches({"env": "preprod"})
    assert Matcher("env", "=~", "prod.*").matches({"env": "production"})
    assert Matcher("x", "=~", "a.b").matches({"x": "a\nb"})
    assert Matcher("x", "=~", "(?i)ABC").matches({"x": "abc"})
    assert Matcher("env", "!~", "prod|staging").matches({"env": "dev"})
    assert not Matcher("env", "!~", "prod|staging").matches({"env": "staging"})


def test_absent_label_matches_as_empty_string() -> None:
    assert Matcher("env", "=", "").matches({})
    assert Matcher("env", "!=", "prod").matches({})
    assert not Matcher("env", "=~", ".+").matches({})
    assert Matcher("env", "!~", ".+").matches({"other": "x"})
    assert not Matcher("env", "=", "prod").matches({"service_name": "api"})


def test_regex_compiled_once_and_matchers_compare_by_value() -> None:
    m = Matcher("a", "=~", "x+")
    assert m._regex is not None and m._regex is m._regex
    assert m == Matcher("a", "=~", "x+")
    assert hash(m) == hash(Matcher("a", "=~", "x+"))


def test_bad_matcher_construction() -> None:
    with pytest.raises(SelectorError):
        Matcher("a", "==", "x")
    with pytest.raises(SelectorError):
        Matcher("", "=", "x")
    with pytest.raises(SelectorError, match="error parsing regexp"):
        Matcher("a", "=~", "[")


def test_format_selector() -> None:
    assert format_selector([]) == "{}"
    text = format_selector(
        [
            Matcher("service_name", "=", 'a "b" \\c\nd'),
            Matcher("otel.scope.name", "!~", "x|y"),
        ]
    )
    assert text == '{service_name="a \\"b\\" \\\\c\\nd","otel.scope.name"!~"x|y"}'
    assert str(Matcher("a", "=~", "v")) == 'a=~"v"'


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("env=prod", Matcher("env", "=", "prod")),
        ("env!=prod", Matcher("env", "!=", "prod")),
        ("env=~prod.*", Matcher("env", "=~", "prod.*")),
        ("env!~dev|test", Matcher("env", "!~", "dev|test")),
        ("version=a=b", Matcher("version", "=", "a=b")),
        ("k=", Matcher("k", "=", "")),
        ('k="quoted value"', Matcher("k", "=", "quoted value")),
        (" otel.scope.name = x", Matcher("otel.scope.name", "=", " x")),
        ("expr=!x", Matcher("expr", "=", "!x")),
    ],
)
def test_parse_label_arg(arg: str, expected: Matcher) -> None:
    assert parse_label_arg(arg) == expected


@pytest.mark.parametrize("arg", ["novalue", "=x", "a=~(", "!x"])
def test_parse_label_arg_errors(arg: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_arg(arg)


_names = st.one_of(
    st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,12}", fullmatch=True),
    st.text(min_size=1, max_size=12),
)
_values = st.text(max_size=30) | st.sampled_from(['"', "\\", "\n", '\\"', "\\n", "`", "'"])


@given(st.lists(st.tuples(_names, st.sampled_from(["=", "!="]), _values), max_size=6))
def test_round_trip_format_then_parse(items: list[tuple[str, str, str]]) -> None:
    matchers = [Matcher(name, op, value) for name, op, value in items]
    # A quoted "__name__"-free set round-trips exactly; a lone "=" on __name__ is fine too.
    assert parse_selector(format_selector(matchers)) == matchers


@given(_values)
def test_round_trip_regex_values(value: str) -> None:
    import re

    try:
        re.compile(value)
    except re.error:
        return
    matchers = [Matcher("a", "=~", value), Matcher("b", "!~", value)]
    assert parse_selector(format_selector(matchers)) == matchers


@given(st.text(max_size=40))
def test_parser_never_crashes(text: str) -> None:
    try:
        parse_selector(text)
    except SelectorError:
        pass
