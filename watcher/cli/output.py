"""Plain-text output for the CLI: human units, aligned tables, colour and sparklines.

Nothing here imports anything heavy: this module is loaded for every command, including
``--help``. Colour is decided once per stream by :func:`use_color` and passed around as a
:class:`Palette`; a disabled palette returns its input unchanged, so output to a pipe never
carries escape codes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, Literal, NamedTuple

UnitKind = Literal["nanoseconds", "microseconds", "milliseconds", "bytes", "count"]

_NS_PER_UNIT: dict[str, int] = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000}


# --------------------------------------------------------------------------- units


def unit_kind_of(unit: str) -> UnitKind:
    """Map a pprof sample unit (``nanoseconds``, ``bytes``, ``count``, ...) to a unit kind."""
    u = unit.lower()
    if u in ("nanoseconds", "nanosecond", "ns"):
        return "nanoseconds"
    if u in ("microseconds", "microsecond", "us"):
        return "microseconds"
    if u in ("milliseconds", "millisecond", "ms"):
        return "milliseconds"
    if u in ("bytes", "byte"):
        return "bytes"
    return "count"


def is_time(kind: str) -> bool:
    """True for the time unit kinds."""
    return kind in _NS_PER_UNIT


def to_seconds(value: float, kind: str) -> float:
    """A value of a time unit kind in seconds."""
    return value * _NS_PER_UNIT[kind] / 1e9


def _fixed(x: float) -> str:
    """Three significant digits without an exponent: 1.23, 12.3, 123, 12,345."""
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def human_seconds(seconds: float) -> str:
    """``0.00042`` → ``420 µs``, ``3.5`` → ``3.50 s``."""
    a = abs(seconds)
    if a == 0:
        return "0 s"
    if a < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if a < 1e-3:
        return f"{_fixed(seconds * 1e6)} µs"
    if a < 1:
        return f"{_fixed(seconds * 1e3)} ms"
    return f"{_fixed(seconds)} s"


def human_bytes(value: float) -> str:
    """``1536`` → ``1.50 KiB``."""
    a = abs(value)
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if a >= size:
            return f"{_fixed(value / size)} {unit}"
    return f"{value:.0f} B"


def human_count(value: float) -> str:
    """``9876`` → ``9,876``; ``12345`` → ``12.3k``; ``4.5e6`` → ``4.50M``."""
    a = abs(value)
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if a >= size and a >= 10_000:
            return f"{_fixed(value / size)}{unit}"
    if value == int(value):
        return f"{int(value):,}"
    return _fixed(value)


def human_value(value: float, kind: str) -> str:
    """A value in the profile's own unit, made human."""
    if is_time(kind):
        return human_seconds(to_seconds(value, kind))
    if kind == "bytes":
        return human_bytes(value)
    return human_count(value)


def human_rate(value_per_second: float, kind: str, *, cpu: bool = False) -> str:
    """A rate in the profile's unit per second: cores for CPU, ``MiB/s``, ``/s`` otherwise."""
    if is_time(kind):
        cores = to_seconds(value_per_second, kind)
        return f"{format_cores(cores)} {'cores' if cpu else 's/s'}"
    if kind == "bytes":
        return f"{human_bytes(value_per_second)}/s"
    return f"{human_count(value_per_second)}/s"


def format_cores(cores: float) -> str:
    """Average cores with three significant digits: ``0.00833``, ``0.0123``, ``1.23``."""
    a = abs(cores)
    if a == 0:
        return "0"
    if a < 1:
        digits = 2 - math.floor(math.log10(a))
        return f"{cores:.{digits}f}"
    return _fixed(cores)


def percent(fraction: float) -> str:
    """``0.1234`` → ``12.3%``; small shares keep two decimals."""
    p = fraction * 100
    if p == 0:
        return "0%"
    if abs(p) < 0.1:
        return f"{p:.2f}%"
    return f"{p:.1f}%"


def signed_percent(fraction: float) -> str:
    """A change as ``+12.3%``/``-4.0%``; infinite growth as ``new``."""
    if math.isinf(fraction):
        return "new" if fraction > 0 else "gone"
    text = percent(fraction)
    return text if text.startswith("-") or text == "0%" else f"+{text}"


def signed_pp(delta: float) -> str:
    """A change of share in percentage points: ``+1.25pp``."""
    pp = delta * 100
    if pp == 0:
        return "0pp"
    digits = 2 if abs(pp) < 10 else 1
    return f"{pp:+.{digits}f}pp"


def utc_iso(dt: datetime) -> str:
    """``2024-05-01T10:00:00Z`` (milliseconds shown only when present)."""
    dt = dt.astimezone(UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def short_duration(seconds: float) -> str:
    """``5400`` → ``1h30m``; ``90`` → ``1m30s``; ``0.5`` → ``500ms``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    total = int(round(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts) or "0s"


# --------------------------------------------------------------------------- colour


_ANSI = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def use_color(stream: IO[str], *, no_color: bool = False) -> bool:
    """Colour only on a terminal, never with ``--no-color``, ``NO_COLOR`` or ``TERM=dumb``."""
    if no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Palette:
    """Colour helpers; with ``enabled=False`` every method returns its text unchanged.

    Treat it as read-only once built.
    """

    __slots__ = ("enabled",)

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled

    def __repr__(self) -> str:
        return f"Palette(enabled={self.enabled!r})"

    def style(self, text: str, *names: str) -> str:
        if not self.enabled or not names or not text:
            return text
        codes = ";".join(_ANSI[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def bold(self, text: str) -> str:
        return self.style(text, "bold")

    def dim(self, text: str) -> str:
        return self.style(text, "dim")

    def red(self, text: str) -> str:
        return self.style(text, "red")

    def green(self, text: str) -> str:
        return self.style(text, "green")

    def yellow(self, text: str) -> str:
        return self.style(text, "yellow")


# --------------------------------------------------------------------------- tables


class Column(NamedTuple):
    """A table column: header text and alignment (``<`` left, ``>`` right)."""

    header: str
    align: Literal["<", ">"] = ">"


class Cell(NamedTuple):
    """A cell with optional colour names applied after alignment."""

    text: str
    styles: tuple[str, ...] = ()


CellLike = str | Cell


def _truncate_left(text: str, width: int) -> str:
    """Keep the end of a long name (the informative part of a function path)."""
    if width <= 1 or len(text) <= width:
        return text[:width] if width >= 0 else text
    return "…" + text[-(width - 1) :]


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[CellLike]],
    *,
    palette: Palette | None = None,
    max_width: int | None = None,
    gap: str = "  ",
) -> list[str]:
    """Align ``rows`` under ``columns``; returns the lines without newlines.

    The last column is never padded; with ``max_width`` it is cut from the left so that
    each line fits a terminal.
    """
    pal = palette or Palette(False)
    cells = [[c if isinstance(c, Cell) else Cell(c) for c in row] for row in rows]
    widths = [len(col.header) for col in columns]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell.text))
    last_width: int | None = None
    if max_width is not None and columns:
        used = sum(widths[:-1]) + len(gap) * (len(columns) - 1)
        last_width = max(max_width - used, 12)

    def line(row: Sequence[Cell], header: bool) -> str:
        out: list[str] = []
        for i, cell in enumerate(row):
            col = columns[i]
            text = cell.text
            last = i == len(columns) - 1
            if last and last_width is not None:
                text = _truncate_left(text, last_width)
            padded = text if last and col.align == "<" else f"{text:{col.align}{widths[i]}}"
            styles = ("bold",) if header else cell.styles
            if styles:
                stripped = padded.strip()
                start = padded.find(stripped) if stripped else 0
                padded = (
                    padded[:start] + pal.style(stripped, *styles) + padded[start + len(stripped) :]
                )
            out.append(padded)
        return gap.join(out).rstrip()

    lines = [line([Cell(c.header) for c in columns], True)]
    lines.extend(line(row, False) for row in cells)
    return lines


def terminal_width(stream: IO[str]) -> int | None:
    """The width to fit output to, or ``None`` when ``stream`` is not a terminal."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    # As shutil.get_terminal_size, without importing shutil (and the archive modules it
    # loads) on every command: $COLUMNS, then the terminal, then 100.
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 100


# --------------------------------------------------------------------------- sparkline

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float]) -> str:
    """One unicode bar per value, scaled between the minimum and the maximum."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        return _BARS[len(_BARS) // 2 if hi else 0] * len(values)
    span = hi - lo
    return "".join(_BARS[min(int((v - lo) / span * (len(_BARS) - 1) + 0.5), 7)] for v in values)


# --------------------------------------------------------------------------- JSON and progress


def dumps_json(data: Any) -> str:
    """Pretty, stable JSON for stdout (non-finite floats become strings)."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, float) and not math.isfinite(obj):
            return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
        if isinstance(obj, dict):
            return {str(k): clean(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [clean(v) for v in obj]
        if isinstance(obj, datetime):
            return utc_iso(obj)
        return obj

    return json.dumps(clean(data), indent=2, ensure_ascii=False, allow_nan=False)


_SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@contextmanager
def progress(message: str, *, stream: IO[str] | None = None, delay: float = 0.3) -> Iterator[None]:
    """Show a spinner with elapsed time on a terminal's stderr while a query runs.

    Nothing is written when ``stream`` is not a terminal, or when the block ends within
    ``delay`` seconds; the spinner line is erased when the block ends.
    """
    out = stream if stream is not None else sys.stderr
    isatty = getattr(out, "isatty", None)
    if not (isatty and isatty()):
        yield
        return
    import threading

    done = threading.Event()
    shown = threading.Event()
    started = time.monotonic()

    def spin() -> None:
        if done.wait(delay):
            return
        i = 0
        while not done.is_set():
            elapsed = time.monotonic() - started
            out.write(f"\r{_SPIN[i % len(_SPIN)]} {message} ({elapsed:.1f}s)\x1b[K")
            out.flush()
            shown.set()
            i += 1
            done.wait(0.1)

    thread = threading.Thread(target=spin, name="pyrowatch-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        if shown.is_set():
            out.write("\r\x1b[K")
            out.flush()
