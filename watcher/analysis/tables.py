"""A minimal function table built straight from stacks, and the caller graph of a profile.

:func:`watcher.analysis.detect.detect` accepts any object with ``total_value`` and
``functions`` (name -> object with ``self`` and ``total``), such as the ``FunctionTable`` of
``watcher.flamegraph.functions``. :class:`StackTable` is the same shape for callers that
hold raw ``(stack, value)`` pairs (the synthetic fleet, benchmarks, tests), and
:func:`parents_from_stacks` gives the ``function -> direct callers`` mapping detection uses
for cost shifts and call-chain merging.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["FunctionValues", "StackTable", "parents_from_stacks"]


@dataclass(frozen=True, slots=True)
class FunctionValues:
    """A function's ``self`` value (samples that ended in it) and ``total`` value.

    ``total`` counts each sample at most once, however often the function recurses.
    """

    self: int
    total: int


@dataclass(frozen=True, slots=True)
class StackTable:
    """Per-function self and total values of one profile, with its total and caller graph."""

    total_value: int
    functions: Mapping[str, FunctionValues]
    parents: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_stacks(cls, stacks: Iterable[tuple[Sequence[str], int]]) -> StackTable:
        """Aggregate root-first ``(stack, value)`` pairs, skipping empty stacks and zeros."""
        self_values: dict[str, int] = {}
        total_values: dict[str, int] = {}
        parents: dict[str, set[str]] = {}
        grand = 0
        for stack, value in stacks:
            if not stack or value == 0:
                continue
            grand += value
            leaf = stack[-1]
            self_values[leaf] = self_values.get(leaf, 0) + value
            seen: set[str] = set()
            caller = ""
            for name in stack:
                if name not in seen:
                    seen.add(name)
                    total_values[name] = total_values.get(name, 0) + value
                callers = parents.setdefault(name, set())
                if caller and caller != name:
                    callers.add(caller)
                caller = name
        functions = {
            name: FunctionValues(self_values.get(name, 0), total)
            for name, total in total_values.items()
        }
        return cls(grand, functions, {k: frozenset(v) for k, v in parents.items()})

    def share(self, name: str, kind: str = "self") -> float:
        """``name``'s self or total value as a fraction of the profile total (0 when absent)."""
        values = self.functions.get(name)
        if values is None or self.total_value <= 0:
            return 0.0
        return (values.self if kind == "self" else values.total) / self.total_value


def parents_from_stacks(stacks: Iterable[Sequence[str]]) -> dict[str, set[str]]:
    """``function -> set of functions that call it directly`` over root-first stacks.

    Top-level frames map to an empty set. Pass ``(stack for stack, _ in tree.stacks())`` for
    a tree. Direct recursion (a function calling itself) is left out.
    """
    parents: dict[str, set[str]] = {}
    for stack in stacks:
        caller = ""
        for name in stack:
            callers = parents.setdefault(name, set())
            if caller and caller != name:
                callers.add(caller)
            caller = name
    return parents
