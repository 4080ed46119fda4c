"""docs/cli.md is generated from --help and must not go stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from watcher.cli import COMMANDS

REPO = Path(__file__).resolve().parents[2]


def test_cli_reference_is_up_to_date() -> None:
    """Regenerating the reference gives exactly the checked-in file."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_cli_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_every_command_is_documented_with_help() -> None:
    """Each registered command has a section and a help text in the reference."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for name, entry in COMMANDS.items():
        assert f"### `pyrowatch {name}`" in text
        assert entry.help
