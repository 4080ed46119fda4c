"""Collapsed ("folded") stacks: one ``frame1;frame2;...;frameN <count>`` line per stack.

This is the text format of Brendan Gregg's flame graph tools and of the ``/ingest``
``format=folded`` body. Frames are root first. A function name containing ``;`` or a line
break cannot be represented, and leading or trailing white space of a line is dropped;
:func:`to_folded` writes such names as they are.
"""

from __future__ import annotations

from watcher.errors import DecodeError
from watcher.flamegraph.tree import Tree

__all__ = ["parse_folded", "to_folded"]

_MAX_INT64 = (1 << 63) - 1


def to_folded(tree: Tree) -> str:
    """Every stack with ``self > 0`` as a folded line, in name-sorted pre-order, each line
    ending with a newline (an empty tree gives ``""``)."""
    return "".join(f"{';'.join(stack)} {value}\n" for stack, value in tree.stacks())


def parse_folded(text: str) -> Tree:
    """Build a tree from folded lines.

    Blank lines are skipped, a trailing ``\\r`` is tolerated, and repeated stacks add up.
    The count after the last space must be a non-negative decimal integer; a count of 0
    adds nothing. Anything else raises :class:`DecodeError` naming the line.
    """
    tree = Tree()
    add = tree.add
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        stack_text, sep, count_text = line.rpartition(" ")
        if not sep:
            raise DecodeError(f"folded line {lineno}: no count after the stack: {line[:80]!r}")
        stack_text = stack_text.rstrip()
        if not count_text.isascii() or not count_text.isdigit():
            raise DecodeError(f"folded line {lineno}: count {count_text[:40]!r} is not an integer")
        if len(count_text) > 19 or int(count_text) > _MAX_INT64:
            raise DecodeError(f"folded line {lineno}: count {count_text[:40]} is out of range")
        if not stack_text:
            raise DecodeError(f"folded line {lineno}: empty stack")
        add(stack_text.split(";"), int(count_text))
    return tree
