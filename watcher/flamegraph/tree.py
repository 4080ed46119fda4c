"""The function-name tree: Pyroscope's internal model of a merged profile (querier spec §3.1).

A :class:`Tree` holds a virtual root (name ``""``) whose children are the top-level frames.
Every node knows its ``self`` value (samples that ended in it) and its ``total`` value (its
own plus everything below it). Children are kept in a dict keyed by name; the encoders sort
them by name (byte-wise UTF-8 order, which equals code point order) whenever order matters.

All walks are iterative, so stacks thousands of frames deep are fine.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence

__all__ = ["OTHER", "Node", "Stack", "Tree"]

#: A root-first stack of function names.
Stack = tuple[str, ...]

#: Name of the synthetic node that truncation sums small children into.
OTHER = "other"


class Node:
    """One frame in the tree.

    ``Node("main", self=3, total=5)``. ``children`` maps a child's name to the child.
    """

    __slots__ = ("children", "name", "self", "total")

    # The instance parameter is positional-only and not called ``self`` so that ``self``
    # can be the keyword for the node's self value, the name the wire format uses.
    def __init__(
        node,
        /,
        name: str,
        self: int = 0,
        total: int = 0,
        children: dict[str, Node] | None = None,
    ) -> None:
        node.name = name
        node.self = self
        node.total = total
        node.children: dict[str, Node] = {} if children is None else children

    def __repr__(self) -> str:
        return (
            f"Node({self.name!r}, self={self.self}, total={self.total}, "
            f"children={len(self.children)})"
        )

    def sorted_children(self) -> list[Node]:
        """Children in name order (the order every encoder uses)."""
        children = self.children
        return [children[name] for name in sorted(children)]


class Tree:
    """A merged profile as a tree of function names.

    Build it with :meth:`from_stacks` or :meth:`add`; values are ints in the profile's unit.
    """

    __slots__ = ("root",)

    def __init__(self, root: Node | None = None) -> None:
        self.root = Node("") if root is None else root

    # -- building -------------------------------------------------------------------------

    @classmethod
    def from_stacks(cls, stacks: Iterable[tuple[Sequence[str], int]]) -> Tree:
        """A tree holding every ``(stack, value)`` pair; see :meth:`add`."""
        tree = cls()
        add = tree.add
        for stack, value in stacks:
            add(stack, value)
        return tree

    def add(self, stack: Sequence[str], value: int) -> None:
        """Insert one root-first stack with ``value``.

        Like the server, a value that is not positive is ignored. An empty stack carries
        no frame to charge, so it is ignored as well.
        """
        if value <= 0 or not stack:
            return
        node = self.root
        node.total += value
        for name in stack:
            children = node.children
            child = children.get(name)
            if child is None:
                child = Node(name)
                children[name] = child
            child.total += value
            node = child
        node.self += value

    def copy(self) -> Tree:
        """A deep copy (new nodes, same values)."""
        src_root = self.root
        new_root = Node(src_root.name, src_root.self, src_root.total)
        todo = [(src_root, new_root)]
        while todo:
            src, dst = todo.pop()
            dst_children = dst.children
            for name, child in src.children.items():
                copied = Node(name, child.self, child.total)
                dst_children[name] = copied
                if child.children:
                    todo.append((child, copied))
        return Tree(new_root)

    # -- reading --------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Sum of every sample value (the root's total)."""
        return self.root.total

    def node_count(self) -> int:
        """Number of real nodes; the virtual root is not counted."""
        count = 0
        todo = [self.root]
        while todo:
            node = todo.pop()
            children = node.children
            if children:
                count += len(children)
                todo.extend(children.values())
        return count

    def stacks(self) -> Iterator[tuple[Stack, int]]:
        """Every ``(stack, self)`` with ``self > 0``, in name-sorted pre-order."""
        path: list[str] = []
        todo: list[tuple[Node, int]] = [(c, 0) for c in reversed(self.root.sorted_children())]
        while todo:
            node, depth = todo.pop()
            del path[depth:]
            path.append(node.name)
            if node.self > 0:
                yield tuple(path), node.self
            if node.children:
                depth += 1
                todo.extend((c, depth) for c in reversed(node.sorted_children()))

    def callers(self) -> dict[str, set[str]]:
        """``function -> the functions that call it directly``, over every node with a
        value; top-level frames map to an empty set, and a function calling itself is left
        out. The same as ``parents_from_stacks`` (:mod:`watcher.analysis.tables`) over
        :meth:`stacks`, in one pass over the nodes instead of one over every stack's
        frames."""
        parents: dict[str, set[str]] = {}
        todo: list[tuple[str, Node]] = [("", c) for c in self.root.children.values()]
        pop = todo.pop
        push = todo.extend
        while todo:
            caller, node = pop()
            if node.total <= 0:
                continue
            name = node.name
            found = parents.get(name)
            if found is None:
                found = parents[name] = set()
            if caller and caller != name:
                found.add(caller)
            if node.children:
                push([(name, child) for child in node.children.values()])
        return parents

    def walk(self) -> Iterator[tuple[Node, int]]:
        """Every real node with its depth (1 for top-level frames), pre-order, any order
        among siblings."""
        todo = [(c, 1) for c in self.root.children.values()]
        while todo:
            node, depth = todo.pop()
            yield node, depth
            if node.children:
                todo.extend((c, depth + 1) for c in node.children.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return NotImplemented
        return _same_nodes(self.root, other.root)

    def __repr__(self) -> str:
        return f"Tree(total={self.total}, nodes={self.node_count()})"

    # -- truncation (spec §3.3) -----------------------------------------------------------

    def min_value(self, max_nodes: int) -> int:
        """The truncation threshold ``minVal`` for ``max_nodes``.

        0 (no truncation) when ``max_nodes < 1`` or the tree has at most ``max_nodes`` real
        nodes; otherwise the ``max_nodes``-th largest ``total`` over all real nodes,
        duplicates counted.
        """
        if max_nodes < 1:
            return 0
        totals: list[int] = []
        todo = [self.root]
        while todo:
            node = todo.pop()
            for child in node.children.values():
                totals.append(child.total)
                if child.children:
                    todo.append(child)
        if len(totals) <= max_nodes:
            return 0
        return heapq.nlargest(max_nodes, totals)[-1]

    def truncated(self, max_nodes: int) -> Tree:
        """A new tree truncated the way ``PROFILE_FORMAT_TREE`` bytes are (spec §3.3).

        Children with ``total >= minVal`` or named ``"other"`` are kept; the rest of each
        node's children are summed into an ``"other"`` child (added to an existing one).
        With no truncation this is a plain copy. The receiver is not modified.
        """
        min_val = self.min_value(max_nodes)
        if min_val == 0:
            return self.copy()
        src_root = self.root
        new_root = Node(src_root.name, src_root.self, src_root.total)
        todo = [(src_root, new_root)]
        while todo:
            src, dst = todo.pop()
            dst_children = dst.children
            other = 0
            for name, child in src.children.items():
                if child.total >= min_val or name == OTHER:
                    kept = Node(name, child.self, child.total)
                    dst_children[name] = kept
                    if child.children:
                        todo.append((child, kept))
                else:
                    other += child.total
            if other > 0:
                existing = dst_children.get(OTHER)
                if existing is None:
                    dst_children[OTHER] = Node(OTHER, other, other)
                else:
                    existing.self += other
                    existing.total += other
        return Tree(new_root)


def _same_nodes(a: Node, b: Node) -> bool:
    todo = [(a, b)]
    while todo:
        x, y = todo.pop()
        if x.self != y.self or x.total != y.total or x.children.keys() != y.children.keys():
            return False
        yc = y.children
        todo.extend((child, yc[name]) for name, child in x.children.items())
    return True
