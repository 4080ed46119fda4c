"""Running the flame graph decoders with and without their optional C module.

``watcher.flamegraph._speedups`` (built from ``_speedups.c`` by ``pip install -e .`` where a
C compiler is found) replaces three hot loops of :mod:`watcher.flamegraph.decode`; with
``decode._speedups`` set to ``None`` the pure-Python code runs instead. The module may only
change the speed, never a result or an error, so the decoders' tests run both ways:

- ``decoder_impl`` is an autouse fixture that by itself changes nothing and returns which
  implementation runs (``"c"`` or ``"python"``). :func:`pytest_generate_tests`
  parametrizes it as ``["c", "python"]`` for every test of this directory that names it as
  an argument, and for every test of the example-based modules in :data:`BOTH_WAYS`: a
  second pass of those costs about a second in all. Its ``"c"`` case is skipped, saying
  why, where the module is not built.
- Left at one pass: ``test_flamegraph_properties.py`` (hypothesis, ~8 s a pass, so a second
  pass would add a quarter to the suite's ~30 s; ``test_speedups.py`` runs its kinds of
  random graphs through both implementations, comparing every output of the same
  example), tests marked ``slow`` (the million-node graph, ~15 s a pass),
  ``test_flamegraph_tree_folded.py`` (trees, tree bytes and folded text: no code the
  module replaces), and ``test_speedups.py`` itself, whose tests switch the module within
  each example.

``speedups`` gives the module itself, skipping the test where it is not built.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

from watcher.flamegraph import decode

MODULE = "watcher.flamegraph._speedups"

try:
    SPEEDUPS: ModuleType | None = importlib.import_module(MODULE)
except ImportError:  # pragma: no cover - where no C compiler was found at install
    SPEEDUPS = None

NOT_BUILT = f"{MODULE} is not built (no C compiler at install?); only the Python path runs"

# The modules whose every (not slow) test runs with and without the C module.
BOTH_WAYS = frozenset(
    {
        "test_flamegraph_bytes",
        "test_flamegraph_decode_errors",
        "test_flamegraph_functions",
        "test_flamegraph_golden",
        "test_flamegraph_spec",
        "test_flamegraph_tables",
    }
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "decoder_impl" not in metafunc.fixturenames:
        return
    asked = "decoder_impl" in inspect.signature(metafunc.function).parameters
    module = metafunc.module.__name__.rpartition(".")[2]
    doubled = module in BOTH_WAYS and metafunc.definition.get_closest_marker("slow") is None
    if asked or doubled:
        metafunc.parametrize("decoder_impl", ["c", "python"], indirect=True)


@pytest.fixture(autouse=True)
def decoder_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``"c"`` or ``"python"``: the implementation the decoders use in this test (see the
    module docstring for where it is parametrized; elsewhere it leaves the default)."""
    impl: str | None = getattr(request, "param", None)
    if impl is None:
        return "python" if decode._speedups is None else "c"
    if impl == "c":
        if SPEEDUPS is None:
            pytest.skip(NOT_BUILT)
        monkeypatch.setattr(decode, "_speedups", SPEEDUPS)
    else:
        monkeypatch.setattr(decode, "_speedups", None)
    return impl


@pytest.fixture(scope="session")
def speedups() -> ModuleType:
    """The C module; skips the test where it is not built."""
    if SPEEDUPS is None:
        pytest.skip(NOT_BUILT)
    return SPEEDUPS
