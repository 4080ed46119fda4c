"""Pure formatting helpers of the CLI: units, tables, colour, sparklines."""

from __future__ import annotations

import io
import math

import pytest

from watcher.cli.output import (
    Cell,
    Column,
    Palette,
    dumps_json,
    format_cores,
    human_bytes,
    human_count,
    human_seconds,
    human_value,
    percent,
    render_table,
    signed_percent,
    signed_pp,
    sparkline,
    use_color,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (4.2e-8, "42 ns"),
        (4.2e-4, "420 µs"),
        (0.0123, "12.3 ms"),
        (3.5, "3.50 s"),
        (1234.4, "1,234 s"),
    ],
)
def test_human_seconds_picks_a_readable_unit(seconds: float, text: str) -> None:
    """Durations get ns, µs, ms or s with three significant digits."""
    assert human_seconds(seconds) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(512, "512 B"), (1536, "1.50 KiB"), (5 * 2**20, "5.00 MiB"), (3 * 2**30, "3.00 GiB")],
)
def test_human_bytes_uses_binary_units(value: int, text: str) -> None:
    """Bytes use KiB, MiB and GiB."""
    assert human_bytes(value) == text


def test_human_count_abbreviates_large_counts() -> None:
    """Small counts are exact; large ones get k/M/G."""
    assert human_count(9876) == "9,876"
    assert human_count(12345) == "12.3k"
    assert human_count(4_560_000) == "4.56M"


def test_human_value_dispatches_on_unit_kind() -> None:
    """The profile's unit decides the rendering."""
    assert human_value(2_500_000_000, "nanoseconds") == "2.50 s"
    assert human_value(2_500, "microseconds") == "2.50 ms"
    assert human_value(2048, "bytes") == "2.00 KiB"
    assert human_value(7, "count") == "7"


def test_percentages_and_changes() -> None:
    """Shares are percentages; changes carry a sign; growth from zero is 'new'."""
    assert percent(0.1234) == "12.3%"
    assert percent(0.0005) == "0.05%"
    assert percent(0) == "0%"
    assert signed_percent(0.25) == "+25.0%"
    assert signed_percent(-0.04) == "-4.0%"
    assert signed_percent(math.inf) == "new"
    assert signed_pp(0.0125) == "+1.25pp"
    assert format_cores(0.0123) == "0.0123"
    assert format_cores(0.00833) == "0.00833"
    assert format_cores(2.5) == "2.50"


def test_render_table_aligns_numbers_right_and_names_left() -> None:
    """Numbers line up on the right, the last column is not padded."""
    lines = render_table(
        [Column("#"), Column("SELF"), Column("FUNCTION", "<")],
        [["1", "10.0 s", "main"], ["2", "1.00 s", "a.very.long.function"]],
    )
    assert lines == [
        "#    SELF  FUNCTION",
        "1  10.0 s  main",
        "2  1.00 s  a.very.long.function",
    ]


def test_render_table_fits_the_last_column_to_a_width() -> None:
    """On a terminal the function name is cut from the left, keeping its end."""
    lines = render_table(
        [Column("N"), Column("FUNCTION", "<")],
        [["1", "github.com/org/repo/pkg.(*Type).Method"]],
        max_width=20,
    )
    assert lines[1].endswith(".Method")
    assert lines[1].split("  ", 1)[1].startswith("…")


def test_colour_is_applied_after_alignment_and_only_when_enabled() -> None:
    """Escape codes never shift columns; a disabled palette adds none."""
    rows = [[Cell("12.0%", ("red",)), "f"]]
    plain = render_table([Column("SHARE"), Column("F", "<")], rows)
    coloured = render_table([Column("SHARE"), Column("F", "<")], rows, palette=Palette(True))
    assert "\x1b[" not in "".join(plain)
    assert "\x1b[31m12.0%\x1b[0m" in coloured[1]
    assert coloured[1].replace("\x1b[31m", "").replace("\x1b[0m", "") == plain[1]


def test_use_color_needs_a_terminal_and_respects_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pipes and NO_COLOR turn colour off."""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_color(Tty())
    assert not use_color(io.StringIO())
    assert not use_color(Tty(), no_color=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert not use_color(Tty())


def test_sparkline_scales_between_min_and_max() -> None:
    """The lowest value is the lowest bar and the highest the highest."""
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([]) == ""
    assert len(sparkline([3, 3, 3])) == 3


def test_dumps_json_writes_non_finite_numbers_as_strings() -> None:
    """Output stays valid JSON even with infinite relative changes."""
    assert dumps_json({"x": math.inf}) == '{\n  "x": "Infinity"\n}'


def test_progress_draws_on_a_terminal_and_erases_itself() -> None:
    """A spinner line appears on a terminal's stderr and is cleared when the query ends."""
    import threading

    from watcher.cli.output import progress

    class Terminal(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.drawn = threading.Event()

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            if "fetching" in text:
                self.drawn.set()
            return super().write(text)

    term = Terminal()
    with progress("fetching flame graph", stream=term, delay=0):
        assert term.drawn.wait(timeout=60)
    assert "fetching flame graph" in term.getvalue()
    assert term.getvalue().endswith("\r\x1b[K")


def test_progress_writes_nothing_to_a_pipe() -> None:
    """No spinner when stderr is not a terminal."""
    from watcher.cli.output import progress

    pipe = io.StringIO()
    with progress("fetching", stream=pipe, delay=0):
        pass
    assert pipe.getvalue() == ""
