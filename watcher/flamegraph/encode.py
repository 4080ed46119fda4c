"""Encoders: Tree → ``FlameGraph``, ``FlameGraphDiff`` and ``PROFILE_FORMAT_TREE`` bytes.

Each encoder reproduces the server's output exactly (querier spec §3.2–§3.5): the same
name indices, the same node order, the same truncation. The dicts use Python ints and
plain lists (``levels`` is a ``list[list[int]]``); :func:`to_connect_json` turns one into
the Connect JSON shape the server sends (int64 as strings, zero values omitted).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Any

from watcher.errors import DecodeError
from watcher.flamegraph.tree import OTHER, Node, Tree

__all__ = ["encode_diff", "encode_flamegraph", "encode_tree_bytes", "to_connect_json"]

_ROOT_NAME = "total"

# A node being emitted: (name, self, total, children or None, x, depth).
_Item = tuple[str, int, int, "dict[str, Node] | None", int, int]


def _flatten_single(rows: list[tuple[int, int, int, int]]) -> list[int]:
    """Flatten one level's rows (in visit order, so right to left) into increasing-x order
    with the x column delta-encoded."""
    flat: list[int] = []
    end = 0
    for x, total, self_value, name in reversed(rows):
        flat += (x - end, total, self_value, name)
        end = x + total
    return flat


def _flatten_diff(rows: list[tuple[int, int, int, int, int, int, int]]) -> list[int]:
    """As :func:`_flatten_single` for 7-tuples; both x columns are delta-encoded."""
    flat: list[int] = []
    lend = rend = 0
    for lx, lt, ls, rx, rt, rs, name in reversed(rows):
        flat += (lx - lend, lt, ls, rx - rend, rt, rs, name)
        lend = lx + lt
        rend = rx + rt
    return flat


def encode_flamegraph(tree: Tree, max_nodes: int = 0) -> dict[str, Any]:
    """The ``FlameGraph`` message the server renders for ``tree`` (``NewFlameGraph``).

    Returns ``{"names", "levels", "total", "maxSelf"}`` with int values. ``max_nodes <= 0``
    means no truncation. Truncation follows the FlameGraph rule of §3.3: children with
    ``total >= minVal`` and a name other than ``"other"`` are kept; the rest are summed into
    one synthetic ``"other"`` child placed right-most.
    """
    root = tree.root
    total = sum(child.total for child in root.children.values())
    min_val = tree.min_value(max_nodes)

    names: list[str] = []
    index: dict[str, int] = {}
    rows_by_level: list[list[tuple[int, int, int, int]]] = []
    max_self = 0

    todo: list[_Item] = [("", 0, total, root.children, 0, 0)]
    while todo:
        name, self_value, node_total, children, x, depth = todo.pop()
        if self_value > max_self:
            max_self = self_value
        i = index.get(name)
        if i is None:
            i = len(names)
            if i == 0:
                name = _ROOT_NAME
            index[name] = i
            names.append(name)
        if depth == len(rows_by_level):
            rows_by_level.append([])
        rows_by_level[depth].append((x, node_total, self_value, i))
        if not children:
            continue
        x += self_value
        other = 0
        child_depth = depth + 1
        for child_name in sorted(children):
            child = children[child_name]
            if child.total >= min_val and child_name != OTHER:
                todo.append((child_name, child.self, child.total, child.children, x, child_depth))
                x += child.total
            else:
                other += child.total
        if other != 0:
            todo.append((OTHER, other, other, None, x, child_depth))

    levels = [_flatten_single(rows) for rows in rows_by_level]
    return {"names": names, "levels": levels, "total": total, "maxSelf": max_self}


# -- FlameGraphDiff (§3.5) ------------------------------------------------------------------------

_NO_CHILDREN: dict[str, Node] = {}


def _children_of(node: Node | None) -> dict[str, Node]:
    return _NO_CHILDREN if node is None else node.children


def _aligned(left: Node | None, right: Node | None) -> list[tuple[str, Node | None, Node | None]]:
    """The two child lists merged by name; a missing side is ``None`` (a placeholder)."""
    lc = _children_of(left)
    rc = _children_of(right)
    if not rc:
        return [(name, lc[name], None) for name in sorted(lc)]
    if not lc:
        return [(name, None, rc[name]) for name in sorted(rc)]
    return [(name, lc.get(name), rc.get(name)) for name in sorted(lc.keys() | rc.keys())]


def _check_positive(tree: Tree, side: str) -> None:
    todo = [tree.root]
    while todo:
        node = todo.pop()
        for child in node.children.values():
            if child.self < 0 or child.total < 0:
                raise DecodeError(f"{side} tree has a negative value at {child.name!r}")
            if child.children:
                todo.append(child)


def _diff_min_value(left: Node, right: Node, max_nodes: int) -> int:
    """``max_nodes``-th largest ``max(left.total, right.total)`` over the aligned tree,
    fake root included; 0 when the aligned tree is not larger than ``max_nodes``."""
    if max_nodes < 1:
        return 0
    values = [max(left.total, right.total)]
    todo: list[tuple[Node | None, Node | None]] = [(left, right)]
    while todo:
        lnode, rnode = todo.pop()
        for _, lc, rc in _aligned(lnode, rnode):
            lt = 0 if lc is None else lc.total
            rt = 0 if rc is None else rc.total
            values.append(lt if lt > rt else rt)
            if (lc is not None and lc.children) or (rc is not None and rc.children):
                todo.append((lc, rc))
    if len(values) <= max_nodes:
        return 0
    return heapq.nlargest(max_nodes, values)[-1]


def encode_diff(left: Tree, right: Tree, max_nodes: int = 0) -> dict[str, Any]:
    """The ``FlameGraphDiff`` message the server renders (``NewFlamegraphDiff``).

    Returns ``{"names", "levels", "total", "maxSelf", "leftTicks", "rightTicks"}``; each
    node is ``[x_left, left_total, left_self, x_right, right_total, right_self, name]``
    with both x columns delta-encoded. A node on one side only appears with zeros on the
    other. Raises :class:`DecodeError` when either tree holds a negative value.
    """
    _check_positive(left, "left")
    _check_positive(right, "right")
    left_total = sum(c.total for c in left.root.children.values())
    right_total = sum(c.total for c in right.root.children.values())
    left_root = Node("", 0, left_total, left.root.children)
    right_root = Node("", 0, right_total, right.root.children)
    min_val = _diff_min_value(left_root, right_root, max_nodes)

    names: list[str] = []
    index: dict[str, int] = {}
    rows_by_level: list[list[tuple[int, int, int, int, int, int, int]]] = []
    max_self = 0

    # (name, left node, right node, left x, right x, depth); a synthetic "other" pair is
    # carried as detached Nodes without children.
    todo: list[tuple[str, Node | None, Node | None, int, int, int]] = [
        ("", left_root, right_root, 0, 0, 0)
    ]
    while todo:
        name, lnode, rnode, lx, rx, depth = todo.pop()
        lt, ls = (0, 0) if lnode is None else (lnode.total, lnode.self)
        rt, rs = (0, 0) if rnode is None else (rnode.total, rnode.self)
        if not (lt >= min_val or rt >= min_val or name == OTHER):
            continue
        i = index.get(name)
        if i is None:
            i = len(names)
            index[name] = i
            names.append(_ROOT_NAME if i == 0 else name)
        if depth == len(rows_by_level):
            rows_by_level.append([])
        rows_by_level[depth].append((lx, lt, ls, rx, rt, rs, i))
        if ls > max_self:
            max_self = ls
        if rs > max_self:
            max_self = rs
        lx += ls
        rx += rs
        other_left = other_right = 0
        child_depth = depth + 1
        for child_name, lc, rc in _aligned(lnode, rnode):
            clt = 0 if lc is None else lc.total
            crt = 0 if rc is None else rc.total
            if clt >= min_val or crt >= min_val:
                todo.append((child_name, lc, rc, lx, rx, child_depth))
                lx += clt
                rx += crt
            else:
                other_left += clt
                other_right += crt
        if other_left != 0 or other_right != 0:
            todo.append(
                (
                    OTHER,
                    Node(OTHER, other_left, other_left),
                    Node(OTHER, other_right, other_right),
                    lx,
                    rx,
                    child_depth,
                )
            )

    levels = [_flatten_diff(rows) for rows in rows_by_level]
    return {
        "names": names,
        "levels": levels,
        "total": left_total + right_total,
        "maxSelf": max_self,
        "leftTicks": left_total,
        "rightTicks": right_total,
    }


# -- PROFILE_FORMAT_TREE bytes (§3.4) -------------------------------------------------------------


def _put_uvarint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def encode_tree_bytes(tree: Tree, max_nodes: int = 0) -> bytes:
    """``PROFILE_FORMAT_TREE`` bytes (``Tree.Bytes``): pre-order, last child (by name)
    first, truncated with the tree-bytes rule of §3.3. An empty tree is ``b""``."""
    if not tree.root.children:
        return b""
    if max_nodes > 0:
        tree = tree.truncated(max_nodes)
    out = bytearray()
    put = _put_uvarint
    # The virtual root: empty name, self 0.
    todo: list[Node] = [Node("", 0, 0, tree.root.children)]
    while todo:
        node = todo.pop()
        name = node.name.encode()
        put(out, len(name))
        out += name
        put(out, node.self)
        children = node.children
        put(out, len(children))
        if children:
            todo.extend(children[n] for n in sorted(children))
    return bytes(out)


# -- Connect JSON ---------------------------------------------------------------------------------


def to_connect_json(message: Mapping[str, Any]) -> dict[str, Any]:
    """A ``FlameGraph``/``FlameGraphDiff`` dict in the server's Connect JSON form.

    int64 scalars and level values become decimal strings, levels become
    ``{"values": [...]}`` (levels already in that shape are accepted), and zero or empty
    fields are omitted, as protojson does.
    """
    out: dict[str, Any] = {}
    for key, value in message.items():
        if key == "names":
            if value:
                out[key] = list(value)
        elif key == "levels":
            if value:
                out[key] = [_connect_level(level) for level in value]
        elif value:
            out[key] = str(value)
    return out


def _connect_level(level: Any) -> dict[str, list[str]]:
    values = level.get("values") or [] if isinstance(level, Mapping) else level
    return {"values": list(map(str, values))} if len(values) else {}
