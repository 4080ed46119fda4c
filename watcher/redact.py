"""Take credentials out of text before it reaches a message, a log line or a terminal.

:func:`redact` replaces every known secret value, the userinfo and query string of every URL,
and the value of credential-bearing headers (``Authorization``, ``Cookie``,
``CF-Access-Client-Secret``, ``X-API-Key``) that a wrapper such as ``curl -v`` may echo.
:func:`redact_url` does the URL part for one URL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Protocol

__all__ = ["MASK", "SecretLike", "redact", "redact_url", "secret_values"]

#: What a removed secret is replaced with.
MASK = "[REDACTED]"


class SecretLike(Protocol):
    """Anything with ``get_secret_value()``, such as pydantic's ``SecretStr``."""

    def get_secret_value(self) -> str: ...


@functools.cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """URLs, auth headers and bearer/basic credentials, compiled on first use (a command
    that never redacts does not pay for them)."""
    url = re.compile(
        r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/?#@'\"<>]*@)?([^\s?#'\"<>]*)(\?[^\s#'\"<>]*)?"
        r"(#[^\s'\"<>]*)?"
    )
    header = re.compile(
        r"(?im)\b(authorization|proxy-authorization|cookie|set-cookie|cf-access-client-secret|"
        r"x-api-key|x-auth-token)(\s*[:=]\s*)([^\r\n'\"]+)"
    )
    bearer = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{8,})")
    return url, header, bearer


def secret_values(secrets: Iterable[str | SecretLike | None]) -> list[str]:
    """The non-empty plain strings of ``secrets``, longest first."""
    values: set[str] = set()
    for secret in secrets:
        if secret is None:
            continue
        text = secret if isinstance(secret, str) else secret.get_secret_value()
        if text:
            values.add(text)
    return sorted(values, key=lambda s: (-len(s), s))


def redact_url(url: str) -> str:
    """``url`` without userinfo, query string and fragment: ``https://host/path``."""
    return _patterns()[0].sub(_url_repl, url)


def _url_repl(match: re.Match[str]) -> str:
    scheme, _userinfo, rest, _query, _fragment = match.groups()
    return f"{scheme}{rest}"


def redact(text: str, secrets: Iterable[str | SecretLike | None] = ()) -> str:
    """``text`` with every secret value, URL credential, query string and auth header masked.

    Secrets are replaced longest first, so a secret that contains another one is masked
    whole. URL userinfo and query strings are dropped rather than masked, which keeps the
    host and path readable.
    """
    for value in secret_values(secrets):
        text = text.replace(value, MASK)
    url, header, bearer = _patterns()
    text = url.sub(_url_repl, text)
    text = header.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return bearer.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
