"""Typed results, redaction and the package surface of watcher.querier."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import SecretStr

import watcher.querier
from watcher.errors import DecodeError
from watcher.querier.models import ProfileStats, ProfileType, RetryEvent, Series, SeriesPoint
from watcher.redact import MASK, redact, redact_url


def test_profile_type_fills_missing_parts_from_the_id() -> None:
    """Omitted (zero-valued) parts are taken from the ID."""
    pt = ProfileType.from_json({"ID": "process_cpu:samples:count::milliseconds"})
    assert (pt.name, pt.sample_type, pt.sample_unit, pt.period_type, pt.period_unit) == (
        "process_cpu",
        "samples",
        "count",
        "",
        "milliseconds",
    )


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        ({"points": [{"timestamp": "soon"}]}, "point.timestamp: expected an integer"),
        ({"points": [{"value": "lots"}]}, "point.value: expected a number"),
        ({"points": {}}, "series.points: expected a list"),
        ({"labels": [{"name": 1}]}, r"series.labels\[0\].name: expected a string"),
        ({"points": [{"timestamp": True}]}, "expected an integer"),
    ],
)
def test_series_shape_errors_are_decode_errors(msg: dict[str, object], match: str) -> None:
    """Wrong shapes raise DecodeError naming the field."""
    with pytest.raises(DecodeError, match=match):
        Series.from_json(msg)


def test_series_points_accept_protojson_specials() -> None:
    """Doubles may be "NaN"/"Infinity" strings; int64 may be numbers or strings."""
    series = Series.from_json(
        {"points": [{"value": "Infinity", "timestamp": 5}, {"value": 2, "timestamp": "6"}]}
    )
    assert series.points[0] == SeriesPoint(5, float("inf"))
    assert series.total == float("inf")
    assert Series.from_json({"points": [{"value": 2}, {"value": 3.5}]}).total == 5.5


def test_profile_stats_rejects_non_boolean_flag() -> None:
    """dataIngested must be a JSON boolean."""
    with pytest.raises(DecodeError, match="dataIngested"):
        ProfileStats.from_json({"dataIngested": "yes"})


def test_retry_event_reads_well() -> None:
    """The event's text is one line for a progress message."""
    event = RetryEvent("Diff", 2, 3, 1.25, "connection refused")
    assert str(event) == "Diff: connection refused; attempt 3 of 3 in 1.2s"


# --------------------------------------------------------------------------- redaction


def test_redact_masks_secrets_longest_first() -> None:
    """A secret containing another is masked whole; SecretStr and None are accepted."""
    text = "token abcdef123456 and abcdef"
    assert redact(text, ["abcdef", SecretStr("abcdef123456"), None]) == f"token {MASK} and {MASK}"


def test_redact_strips_url_credentials_and_queries() -> None:
    """Userinfo, query strings and fragments go; host and path stay."""
    text = "GET https://bob:hunter2@host.example.com:8443/a/b?sig=xyz&x=1#frag failed"
    assert redact(text) == "GET https://host.example.com:8443/a/b failed"
    assert redact_url("http://u@h/p?q=1") == "http://h/p"
    assert redact_url("http://h/p") == "http://h/p"


@pytest.mark.parametrize(
    "line",
    [
        "Authorization: Bearer abc.def.ghi",
        "authorization=Basic dXNlcjpwYXNz",
        "CF-Access-Client-Secret: 0123456789abcdef",
        "Cookie: CF_Authorization=eyJhbGc",
        "sent Bearer eyJhbGciOiJIUzI1NiJ9.payload",
    ],
)
def test_redact_masks_credential_headers(line: str) -> None:
    """Header values that carry credentials are masked even when the secret is unknown."""
    result = redact(line)
    assert MASK in result
    for fragment in ("abc.def", "dXNlcjpw", "0123456789", "eyJhbGc"):
        assert fragment not in result


# --------------------------------------------------------------------------- package surface


def test_package_exports_are_sorted_and_complete() -> None:
    """__all__ is sorted and every name resolves."""
    names = watcher.querier.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(watcher.querier, name) is not None
    with pytest.raises(AttributeError):
        watcher.querier.Nope  # noqa: B018


def test_models_import_without_httpx_or_pydantic() -> None:
    """Importing the models (and the package) loads neither httpx nor pydantic."""
    code = (
        "import sys, watcher.querier, watcher.querier.models;"
        "print(sorted(m for m in ('httpx', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_client_module_does_not_import_pydantic() -> None:
    """The client module needs httpx only; config (pydantic) loads when a URL string is given."""
    code = (
        "import sys, watcher.querier.client;"
        "print(sorted(m for m in ('pydantic', 'watcher.config', 'watcher.flamegraph')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
