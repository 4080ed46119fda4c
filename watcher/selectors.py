"""Prometheus-style label selectors: parse, format and evaluate.

The grammar is the one Pyroscope accepts through the Prometheus parser
(``ParseMetricSelector``)::

    selector  := [metric_name] ["{" [matcher ("," matcher)* [","]] "}"]
    matcher   := label_name op string | string        (a lone string is the metric name)
    label_name:= [a-zA-Z_][a-zA-Z0-9_]* | string       (quoted names may hold any UTF-8)
    op        := "=" | "!=" | "=~" | "!~"
    string    := "..." | '...' | `...`                 (Go escapes in the first two)

A leading metric name becomes a ``__name__="..."`` matcher. Regular expressions are fully
anchored, as Prometheus anchors them (``^(?s:re)$``), and are compiled once per matcher.
Python's ``re`` stands in for RE2; the common syntax is the same.

Errors raise :class:`~watcher.errors.SelectorError` with a Prometheus-like message that names
the ``line:column`` and what was expected there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from watcher.errors import SelectorError

__all__ = [
    "OPS",
    "Matcher",
    "format_selector",
    "is_legacy_label_name",
    "parse_label_arg",
    "parse_selector",
    "quote",
]

OPS = ("=", "!=", "=~", "!~")
METRIC_NAME = "__name__"

_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_METRIC_START = _IDENT_START | {":"}
_METRIC_CHARS = _IDENT_CHARS | {":"}
_SPACE = frozenset(" \t\r\n")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def is_legacy_label_name(name: str) -> bool:
    """True for names that need no quotes: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    return _LEGACY_LABEL.fullmatch(name) is not None


class Matcher:
    """One label matcher. ``op`` is one of ``=``, ``!=``, ``=~``, ``!~``.

    An absent label matches as the empty string, as in Prometheus: ``{env=""}`` selects
    series without ``env`` and ``{env!~".+"}`` does too. Read-only; equal and hashable by
    name, op and value.
    """

    __slots__ = ("_name", "_op", "_value", "_regex")

    def __init__(self, name: str, op: str, value: str) -> None:
        if op not in OPS:
            raise SelectorError(f"unknown label matching operator {op!r}: use one of {OPS}")
        if not name:
            raise SelectorError("label name must not be empty")
        self._name = name
        self._op = op
        self._value = value
        self._regex = compile_regex(value) if op in ("=~", "!~") else None

    @property
    def name(self) -> str:
        return self._name

    @property
    def op(self) -> str:
        return self._op

    @property
    def value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Matcher):
            return NotImplemented
        return (self._name, self._op, self._value) == (other._name, other._op, other._value)

    def __hash__(self) -> int:
        return hash((self._name, self._op, self._value))

    def __repr__(self) -> str:
        return f"Matcher(name={self._name!r}, op={self._op!r}, value={self._value!r})"

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a label set satisfies this matcher (absent label = ``""``)."""
        actual = labels.get(self._name, "")
        op = self._op
        if op == "=":
            return actual == self._value
        if op == "!=":
            return actual != self._value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if op == "=~" else not hit

    def matches_value(self, actual: str) -> bool:
        """Whether one label value (``""`` when absent) satisfies this matcher."""
        return self.matches({self.name: actual})

    def __str__(self) -> str:
        return f"{_format_name(self.name)}{self.op}{quote(self.value)}"


def compile_regex(value: str) -> re.Pattern[str]:
    """Compile a matcher regex: anchored by ``fullmatch``, ``.`` matching newlines."""
    try:
        return re.compile(value, re.DOTALL)
    except re.error as exc:
        raise SelectorError(f"error parsing regexp: {exc}: `{value}`") from None


def quote(value: str) -> str:
    """Double-quote a string, escaping backslashes, double quotes and newlines."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _format_name(name: str) -> str:
    return name if is_legacy_label_name(name) else quote(name)


def format_selector(matchers: Iterable[Matcher]) -> str:
    """Format matchers as ``{a="b",c=~"d"}``; no matchers gives ``{}``.

    ``parse_selector(format_selector(ms))`` gives ``ms`` back for any names and values.
    """
    return "{" + ",".join(str(m) for m in matchers) + "}"


# --------------------------------------------------------------------------- parsing


class _Parser:
    """A small hand-written lexer/parser over the selector text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- helpers ---------------------------------------------------------------------

    def where(self, pos: int) -> str:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return f"{line}:{col}"

    def fail(self, pos: int, message: str) -> SelectorError:
        return SelectorError(f"{self.where(pos)}: parse error: {message}")

    def describe(self, pos: int) -> str:
        """Name the token at ``pos`` the way Prometheus names tokens in its errors."""
        text = self.text
        if pos >= len(text):
            return "end of input"
        ch = text[pos]
        if ch in _IDENT_START:
            end = pos
            while end < len(text) and text[end] in _METRIC_CHARS:
                end += 1
            return f'identifier "{text[pos:end]}"'
        if ch in "\"'`":
            return "string"
        for tok in ("!=", "=~", "!~"):
            if text.startswith(tok, pos):
                return f'"{tok}"'
        return f'"{ch}"'

    def unexpected(self, context: str, expected: str) -> SelectorError:
        pos = self.pos
        what = self.describe(pos)
        if pos >= len(self.text) and context == "label matching":
            return self.fail(pos, f"unexpected end of input inside braces, expected {expected}")
        return self.fail(pos, f"unexpected {what} in {context}, expected {expected}")

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text) and text[self.pos] in _SPACE:
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- tokens ----------------------------------------------------------------------

    def identifier(self, start_chars: frozenset[str], chars: frozenset[str]) -> str | None:
        text = self.text
        if self.pos >= len(text) or text[self.pos] not in start_chars:
            return None
        start = self.pos
        self.pos += 1
        while self.pos < len(text) and text[self.pos] in chars:
            self.pos += 1
        return text[start : self.pos]

    def string(self) -> str:
        """Read one quoted string at ``pos`` (which holds the opening quote)."""
        text = self.text
        start = self.pos
        q = text[start]
        i = start + 1
        if q == "`":
            end = text.find("`", i)
            if end < 0:
                raise self.fail(start, "unterminated raw string")
            self.pos = end + 1
            return text[i:end]
        out: list[str] = []
        pending: bytearray = bytearray()  # \x and octal escapes produce raw bytes

        def flush() -> None:
            if pending:
                try:
                    out.append(pending.decode("utf-8"))
                except UnicodeDecodeError:
                    raise self.fail(start, "invalid UTF-8 in escaped bytes") from None
                pending.clear()

        n = len(text)
        while True:
            if i >= n:
                raise self.fail(start, "unterminated quoted string")
            ch = text[i]
            if ch == q:
                flush()
                self.pos = i + 1
                return "".join(out)
            if ch == "\n":
                raise self.fail(start, "unterminated quoted string")
            if ch != "\\":
                flush()
                out.append(ch)
                i += 1
                continue
            # escape sequence
            if i + 1 >= n:
                raise self.fail(start, "unterminated quoted string")
            e = text[i + 1]
            if e in _SIMPLE_ESCAPES:
                flush()
                out.append(_SIMPLE_ESCAPES[e])
                i += 2
            elif e == q:
                flush()
                out.append(q)
                i += 2
            elif e == "x":
                digits = text[i + 2 : i + 4]
                if len(digits) != 2 or not _is_hex(digits):
                    raise self.fail(i, "invalid escape sequence: \\x needs two hex digits")
                pending.append(int(digits, 16))
                i += 4
            elif e in "01234567":
                digits = text[i + 1 : i + 4]
                if len(digits) != 3 or any(c not in "01234567" for c in digits):
                    raise self.fail(i, "invalid escape sequence: octal needs three digits")
                value = int(digits, 8)
                if value > 255:
                    raise self.fail(i, "invalid escape sequence: octal value over 255")
                pending.append(value)
                i += 4
            elif e in "uU":
                width = 4 if e == "u" else 8
                digits = text[i + 2 : i + 2 + width]
                if len(digits) != width or not _is_hex(digits):
                    raise self.fail(i, f"invalid escape sequence: \\{e} needs {width} hex digits")
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise self.fail(i, "invalid escape sequence: not a Unicode code point")
                flush()
                out.append(chr(code))
                i += 2 + width
            else:
                raise self.fail(i, f"unknown escape sequence \\{e}")

    def op(self) -> str | None:
        text = self.text
        for tok in ("=~", "!~", "!=", "="):
            if text.startswith(tok, self.pos):
                self.pos += len(tok)
                return tok
        return None

    # -- grammar ---------------------------------------------------------------------

    def parse(self) -> list[Matcher]:
        self.skip_space()
        if self.pos >= len(self.text):
            raise self.fail(self.pos, 'unexpected end of input, expected a metric name or "{"')
        matchers: list[Matcher] = []
        metric: str | None = None
        name_pos = self.pos
        ident = self.identifier(_METRIC_START, _METRIC_CHARS)
        if ident is not None:
            metric = ident
            self.skip_space()
        if self.peek() == "{":
            self.pos += 1
            matchers = self.matchers()
        elif metric is None:
            raise self.fail(
                self.pos, f'unexpected {self.describe(self.pos)}, expected a metric name or "{{"'
            )
        self.skip_space()
        if self.pos < len(self.text):
            raise self.fail(
                self.pos, f"unexpected {self.describe(self.pos)}, expected end of input"
            )
        names = [m for m in matchers if m.name == METRIC_NAME and m.op == "="]
        if metric is not None:
            if names:
                raise self.fail(
                    name_pos,
                    f'metric name must not be set twice: "{metric}" or "{names[0].value}"',
                )
            matchers.insert(0, Matcher(METRIC_NAME, "=", metric))
        return matchers

    def matchers(self) -> list[Matcher]:
        """Parse after ``{`` up to and including ``}``."""
        out: list[Matcher] = []
        while True:
            self.skip_space()
            ch = self.peek()
            if ch == "}":
                self.pos += 1
                return out
            if ch == "":
                raise self.fail(self.pos, "unexpected end of input inside braces")
            out.append(self.matcher())
            self.skip_space()
            ch = self.peek()
            if ch == ",":
                self.pos += 1
                continue
            if ch == "}":
                self.pos += 1
                return out
            raise self.unexpected("label matching", '"," or "}"')

    def matcher(self) -> Matcher:
        start = self.pos
        ch = self.peek()
        quoted = False
        if ch in ('"', "'", "`"):
            name = self.string()
            quoted = True
        else:
            ident = self.identifier(_IDENT_START, _IDENT_CHARS)
            if ident is None:
                raise self.unexpected("label matching", 'label name or "}"')
            name = ident
        self.skip_space()
        op_pos = self.pos
        op = self.op()
        if op is None:
            if quoted and self.peek() in (",", "}"):
                # Prometheus 3: a lone quoted string is the metric name.
                return self._matcher(start, METRIC_NAME, "=", name)
            raise self.unexpected("label matching", "label matching operator")
        self.skip_space()
        if self.peek() not in ('"', "'", "`"):
            raise self.unexpected("label matching", "string")
        value = self.string()
        if not name:
            raise self.fail(start, "label name must not be empty")
        return self._matcher(op_pos, name, op, value)

    def _matcher(self, pos: int, name: str, op: str, value: str) -> Matcher:
        try:
            return Matcher(name, op, value)
        except SelectorError as exc:
            raise self.fail(pos, str(exc)) from None


def _is_hex(digits: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in digits)


def parse_selector(text: str) -> list[Matcher]:
    """Parse a selector such as ``process_cpu{service_name="api",env=~"prod.*"}``.

    ``{}`` gives no matchers (everything); an empty string is an error, as on the server.
    """
    return _Parser(text).parse()


def parse_label_arg(text: str) -> Matcher:
    """Parse a CLI ``--label`` argument: ``k=v``, ``k!=v``, ``k=~re`` or ``k!~re``.

    The name is everything before the first operator (surrounding spaces ignored); the value
    is the rest, taken literally. A value written as a quoted string (``k="a b"``) is
    unquoted with the selector rules.
    """
    for i, ch in enumerate(text):
        if ch not in "=!":
            continue
        if ch == "!":
            nxt = text[i + 1 : i + 2]
            if nxt not in ("=", "~"):
                continue
            op = "!" + nxt
        else:
            op = "=~" if text[i + 1 : i + 2] == "~" else "="
        name = text[:i].strip()
        value = text[i + len(op) :]
        break
    else:
        raise SelectorError(
            f"invalid label matcher {text!r}: expected name=value, name!=value, "
            "name=~regex or name!~regex"
        )
    if not name:
        raise SelectorError(f"invalid label matcher {text!r}: the label name is empty")
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'`":
        name = _Parser(name).string()
    stripped = value.strip()
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'`":
        parser = _Parser(stripped)
        try:
            unquoted = parser.string()
        except SelectorError:
            unquoted = None
        if unquoted is not None and parser.pos == len(stripped):
            value = unquoted
    try:
        return Matcher(name, op, value)
    except SelectorError as exc:
        raise SelectorError(f"invalid label matcher {text!r}: {exc}") from None
