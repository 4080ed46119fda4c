"""Benchmark: decoding flame graphs as the server sends them, and tabulating functions.

Builds synthetic flame graphs of 16k, 65k, 262k and 1M nodes, serializes each as the
server does (compact Connect JSON, int64 values as strings), then times: the client's
path from the response bytes (``decode_flamegraph_json``, which reads the levels' strings
as ints in C, + ``FunctionTable.from_flamegraph``) against the previous one (``json.loads``
+ ``decode_flamegraph`` + the table); JSON parsing alone (stdlib json, and orjson, msgspec
and msgspec with a schema that turns the strings into ints, when installed: the ``bench``
extra); ``decode_flamegraph`` and the table from the parsed message; and for comparison
``FlameGraph.to_tree`` + ``FunctionTable.from_tree``. Then ``FlameGraphDiff`` decoding and
tabulation at about 65k and 262k nodes, the same two ways. Last, what the watcher daemon
does with each window it fetches (up to 262k nodes): the tree-bytes path it used before
against the flame graph path it uses now. Prints markdown tables.
Timings are the best CPU time of several runs, so other load on the machine inflates them
less.

Run: ``python bench/decode.py [--quick] [--zipf-names]`` (``--quick`` stops at 65k nodes;
``--zipf-names`` draws function names as real profiles have them, see
:func:`synthetic_tree`).
Goals: 65k-node decode + table < 100 ms, 65k diff < 150 ms, linear growth.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import accumulate
from typing import Any

from watcher.flamegraph import (
    DiffTable,
    FlameGraph,
    FunctionTable,
    Node,
    Tree,
    decode_diff,
    decode_diff_json,
    decode_flamegraph,
    decode_flamegraph_json,
    decode_tree_bytes,
    decoder_implementation,
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    to_connect_json,
)
from watcher.flamegraph import decode as decode_module

try:  # optional: pip install -e '.[bench]'
    import msgspec
except ImportError:
    msgspec = None
try:
    import orjson
except ImportError:
    orjson = None

SIZES = (16_384, 65_536, 262_144, 1_048_576)
# The diff's left side; with the renamed subtrees the aligned diff has about 65,536 and
# 262,144 nodes.
DIFF_SIZES = (62_500, 250_000)
RENAME_RATE = 0.002
TOP = 20  # rows a command shows by default
ZIPF_NAMES = "--zipf-names" in sys.argv
SEED = 20240601


def synthetic_tree(n_nodes: int, seed: int = SEED, n_names: int = 20_000) -> Tree:
    """A tree with exactly ``n_nodes`` real nodes, realistic depth and some recursion.

    Names are drawn from a Pareto(1.1) distribution, which makes one name the name of 41 %
    of the nodes of a 65k-node tree (and the top 20 by self of 83 %); with ``--zipf-names``
    from a Zipf(1) distribution instead (9 % and 34 %: closer to real profiles,
    where the shared Go heap profile has 7 % and 12 %).
    """
    rng = random.Random(seed)
    names = [f"pkg{i % 97}/module{i % 13}.function_{i}" for i in range(n_names)]
    zipf = list(accumulate(1 / (k + 1) for k in range(n_names))) if ZIPF_NAMES else None
    tree = Tree()
    nodes: list[Node] = [tree.root]
    parents: list[Node | None] = [None]
    while len(nodes) <= n_nodes:
        count = len(nodes)
        # Prefer recent nodes as parents so stacks get deep, sometimes branch anywhere.
        if rng.random() < 0.8:
            pi = count - 1 - min(int(rng.expovariate(1 / 6)), count - 1)
        else:
            pi = rng.randrange(count)
        parent = nodes[pi]
        if zipf is None:
            name = names[int(rng.paretovariate(1.1)) % n_names]
        else:
            name = rng.choices(names, cum_weights=zipf)[0]
        if name in parent.children:
            name = rng.choice(names)
            if name in parent.children:
                continue
        child = Node(name, rng.randint(0, 50) * 10_000_000)
        parent.children[name] = child
        nodes.append(child)
        parents.append(parent)
    # Leaves must carry samples or the node would not exist in a real profile.
    for node in nodes[1:]:
        if not node.children and node.self == 0:
            node.self = 10_000_000
    for node in nodes:
        node.total = node.self
    for node, parent in zip(reversed(nodes), reversed(parents), strict=True):
        if parent is not None:
            parent.total += node.total
    return tree


def perturbed(tree: Tree, seed: int) -> Tree:
    """A copy of ``tree`` with self values scaled randomly and some subtrees renamed."""
    rng = random.Random(seed)
    copy = tree.copy()
    for node, _ in copy.walk():
        scaled = int(node.self * rng.uniform(0.5, 1.6))
        node.self = max(scaled, 1) if not node.children else scaled
    todo = [copy.root]
    while todo:
        node = todo.pop()
        renamed = {}
        for name, child in node.children.items():
            new = name + "_v2" if rng.random() < RENAME_RATE else name
            child.name = new
            renamed[new] = child
            todo.append(child)
        node.children = renamed
    # Rebuild totals from the new selfs.
    stack = [copy.root]
    order = []
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(node.children.values())
    for node in reversed(order):
        node.total = node.self + sum(c.total for c in node.children.values())
    return copy


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best CPU time of this process in milliseconds over ``repeat`` runs, and the last
    result. CPU time rather than wall time, so other work on a shared machine does not
    count; the best run is the one least disturbed."""
    times = []
    result = None
    for _ in range(repeat):
        result = None
        gc.collect()
        start = time.process_time()
        result = fn()
        times.append((time.process_time() - start) * 1000)
    return min(times), result


def protojson(message: dict[str, Any]) -> bytes:
    """A response as the server writes it: compact, int64 as strings."""
    return json.dumps({"flamegraph": to_connect_json(message)}, separators=(",", ":")).encode()


if msgspec is not None:

    class _Level(msgspec.Struct):
        values: list[int] = []

    class _FlameGraph(msgspec.Struct, rename="camel"):
        names: list[str] = []
        levels: list[_Level] = []
        total: int = 0
        max_self: int = 0

    class _Response(msgspec.Struct):
        flamegraph: _FlameGraph = msgspec.field(default_factory=_FlameGraph)


def typed_parse(body: bytes) -> Any:
    """msgspec with a schema: int64 strings become ints while parsing."""
    return msgspec.to_builtins(msgspec.json.decode(body, type=_Response, strict=False))


def optional(fn: Callable[[], Any] | None, repeat: int) -> float | None:
    return None if fn is None else best(fn, repeat)[0]


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


@contextmanager
def pure_python() -> Iterator[None]:
    """Decode without the C module (as where it was not built)."""
    saved = decode_module._speedups
    decode_module._speedups = None
    try:
        yield
    finally:
        decode_module._speedups = saved


def shown(graph: FlameGraph) -> FunctionTable:
    """The table of ``graph`` with its top 20 by self read (the command's default view:
    only those totals are computed)."""
    table = FunctionTable.from_flamegraph(graph)
    table.top(TOP)
    return table


def every_total(graph: FlameGraph) -> FunctionTable:
    """The table of ``graph`` with every function's total computed."""
    table = FunctionTable.from_flamegraph(graph)
    table.total_values  # noqa: B018 - computes them
    return table


def bench_single(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        tree = synthetic_tree(n)
        body = protojson(encode_flamegraph(tree))
        repeat = 7 if n <= 65_536 else 3
        t_json, parsed = best(lambda b=body: json.loads(b), repeat)
        t_orjson = optional(orjson and (lambda b=body: orjson.loads(b)), repeat)
        t_msgspec = optional(msgspec and (lambda b=body: msgspec.json.decode(b)), repeat)
        typed = typed_parse(body) if msgspec else None
        t_typed = optional(msgspec and (lambda b=body: typed_parse(b)), repeat)
        t_decode, fg = best(lambda p=parsed: decode_flamegraph(p), repeat)
        t_table, table = best(lambda g=fg: FunctionTable.from_flamegraph(g), repeat)
        t_all, _ = best(
            lambda p=parsed: FunctionTable.from_flamegraph(decode_flamegraph(p)), repeat
        )
        t_all_typed = optional(
            typed and (lambda p=typed: FunctionTable.from_flamegraph(decode_flamegraph(p))),
            repeat,
        )
        # From the response bytes, parsing included: before, and now; the top 20 read, as
        # the command shows them (self and total of each), or every total.
        t_old, _ = best(lambda b=body: shown(decode_flamegraph(json.loads(b))), repeat)
        t_new, fast = best(lambda b=body: shown(decode_flamegraph_json(b)), repeat)
        t_every, _ = best(lambda b=body: every_total(decode_flamegraph_json(b)), repeat)
        with pure_python():
            t_pure, pure = best(lambda b=body: shown(decode_flamegraph_json(b)), repeat)
            assert pure.total_values == fast.total_values, "the Python path differs"
        t_tree, decoded = best(fg.to_tree, repeat)
        t_from_tree, via_tree = best(lambda d=decoded: FunctionTable.from_tree(d), repeat)
        assert decoded == tree, "decode round trip changed the tree"
        assert via_tree.total_values == table.total_values, "the two tables differ"
        assert fast.total_values == table.total_values, "the bytes path differs"
        assert fast.self_values == table.self_values, "the bytes path differs"
        rows.append(
            {
                "nodes": fg.node_count,
                "MB": len(body) / 1e6,
                "json": t_json,
                "orjson": t_orjson,
                "msgspec": t_msgspec,
                "typed": t_typed,
                "decode": t_decode,
                "table": t_table,
                "all": t_all,
                "all_typed": t_all_typed,
                "old": t_old,
                "new": t_new,
                "pure": t_pure,
                "every": t_every,
                "to_tree": t_tree,
                "from_tree": t_from_tree,
                "ns/node": t_new * 1e6 / fg.node_count,
                "functions": len(table),
            }
        )
    return rows


def bench_diff(n: int) -> dict[str, Any]:
    left = synthetic_tree(n, seed=SEED + 1)
    right = perturbed(left, seed=SEED + 2)
    body = protojson(encode_diff(left, right))
    repeat = 7 if n <= 65_536 else 3
    t_json, parsed = best(lambda: json.loads(body), repeat)
    t_orjson = optional(orjson and (lambda: orjson.loads(body)), repeat)
    t_decode, diff = best(lambda: decode_diff(parsed), repeat)

    def tables(decoded: Any) -> DiffTable:
        """Both tables and their comparison by self, the top 20 rows read."""
        base, current = FunctionTable.from_diff(decoded)
        table = DiffTable(base, current, "self")
        table.top(TOP)
        return table

    def everything(decoded: Any) -> DiffTable:
        """The same with every row built and every total of both sides computed."""
        base, current = FunctionTable.from_diff(decoded)
        table = DiffTable(base, current, "self")
        table.rows  # noqa: B018 - builds them
        base.total_values  # noqa: B018
        current.total_values  # noqa: B018
        return table

    def run_trees() -> DiffTable:
        lt, rt = decode_diff(parsed).to_trees()
        table = DiffTable(FunctionTable.from_tree(lt), FunctionTable.from_tree(rt), "self")
        table.top(TOP)
        return table

    # The message with ints instead of int64 strings, as a typed or protobuf parser gives.
    body_ints = parsed["flamegraph"]
    ints = {
        **body_ints,
        "levels": [list(map(int, lv.get("values", ()))) for lv in body_ints["levels"]],
    }

    t_all, table = best(lambda: tables(decode_diff(parsed)), repeat)
    t_ints, _ = best(lambda: tables(decode_diff(ints)), repeat)
    t_old, _ = best(lambda: tables(decode_diff(json.loads(body))), repeat)
    t_new, fast = best(lambda: tables(decode_diff_json(body)), repeat)
    with pure_python():
        t_pure, pure = best(lambda: tables(decode_diff_json(body)), repeat)
        assert pure.rows == fast.rows, "the Python path differs"
    t_every, _ = best(lambda: everything(decode_diff_json(body)), repeat)
    t_trees, _ = best(run_trees, min(repeat, 5))
    lt, rt = diff.to_trees()
    assert lt == left and rt == right, "diff round trip changed a tree"
    assert fast.rows == table.rows, "the bytes path differs"
    return {
        "nodes": diff.node_count,
        "MB": len(body) / 1e6,
        "json": t_json,
        "orjson": t_orjson,
        "decode": t_decode,
        "all": t_all,
        "ints": t_ints,
        "old": t_old,
        "new": t_new,
        "pure": t_pure,
        "every": t_every,
        "ns/node": t_new * 1e6 / diff.node_count,
        "trees": t_trees,
        "rows": len(table),
    }


def bench_daemon(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """What the watcher daemon does with one fetched window, before and now.

    Before: ``PROFILE_FORMAT_TREE`` bytes (base64 in the JSON answer) -> tree -> table, and
    for the current window the callers from every stack. Now: the flame graph's bytes ->
    table with every total (detection reads them all), and the callers from the levels.
    """
    from watcher.analysis.tables import parents_from_stacks

    rows = []
    for n in sizes:
        tree = synthetic_tree(n)
        tree_body = json.dumps(
            {"tree": base64.b64encode(encode_tree_bytes(tree)).decode()}, separators=(",", ":")
        ).encode()
        graph_body = protojson(encode_flamegraph(tree))
        repeat = 5 if n <= 65_536 else 3

        def tree_window(body: bytes = tree_body) -> tuple[Tree, FunctionTable]:
            decoded = decode_tree_bytes(base64.b64decode(json.loads(body)["tree"]))
            return decoded, FunctionTable.from_tree(decoded)

        def graph_window(body: bytes = graph_body) -> tuple[FlameGraph, FunctionTable]:
            decoded = decode_flamegraph_json(body)
            return decoded, every_total(decoded)

        t_tree, (old_tree, old_table) = best(tree_window, repeat)
        t_stacks, old_callers = best(
            lambda t=old_tree: parents_from_stacks(s for s, _ in t.stacks()), repeat
        )
        t_graph, (graph, table) = best(graph_window, repeat)
        t_callers, callers = best(graph.callers, repeat)
        assert table.total_values == old_table.total_values, "the two tables differ"
        assert callers == old_callers, "the callers differ"
        rows.append(
            {
                "nodes": graph.node_count,
                "tree": t_tree,
                "stacks": t_stacks,
                "graph": t_graph,
                "callers": t_callers,
            }
        )
    return rows


def main() -> None:
    sizes = SIZES[:2] if "--quick" in sys.argv else SIZES
    load = f"{os.getloadavg()[0]:.1f}"
    rows = bench_single(sizes)
    print(f"Python {sys.version.split()[0]}, load {load}; best of 3-7 runs; CPU ms.")
    print(f"Decoder: {decoder_implementation()}; the Python columns decode without the C module.")
    if orjson is None or msgspec is None:
        print("orjson and/or msgspec are not installed (the bench extra): their columns are n/a.")
    print("bytes -> table = decode_flamegraph_json + FunctionTable.from_flamegraph + the top")
    print(f"{TOP} by self (with their totals) from the response bytes (the client's path);")
    print("every total = the same with every function's total computed; before =")
    print("json.loads + decode_flamegraph + the table + the top. decode+table = the same")
    print("from the json.loads result (parsing excluded), or from msgspec typed parsing (ints).\n")
    print(
        "| nodes | JSON MB | **bytes -> table** | Python | ns/node | every total | before "
        "| json.loads "
        "| orjson | msgspec | msgspec typed | decode | table | decode+table "
        "| decode+table (typed) | to_tree | table from tree |"
    )
    print("|---:" * 17 + "|")
    for r in rows:
        print(
            f"| {r['nodes']:,} | {r['MB']:.1f} | **{r['new']:.1f}** | {r['pure']:.1f} "
            f"| {r['ns/node']:.0f} "
            f"| {r['every']:.1f} "
            f"| {r['old']:.1f} | {r['json']:.1f} | {ms(r['orjson'])} | {ms(r['msgspec'])} "
            f"| {ms(r['typed'])} | {r['decode']:.1f} | {r['table']:.1f} | {r['all']:.1f} "
            f"| {ms(r['all_typed'])} | {r['to_tree']:.1f} | {r['from_tree']:.1f} |"
        )
    diff_sizes = DIFF_SIZES[:1] if "--quick" in sys.argv else DIFF_SIZES
    diffs = [bench_diff(n) for n in diff_sizes]
    print("\nbytes -> diff = decode_diff_json + FunctionTable.from_diff + DiffTable by self")
    print(f"+ its top {TOP} rows from the response bytes; everything = the same with every")
    print("row built and every total of both sides computed; before = the same as bytes ->")
    print("diff after json.loads; diff = from the json.loads result (parsing excluded);")
    print("diff (ints) = from levels of ints.\n")
    print(
        "| diff nodes | JSON MB | **bytes -> diff** | Python | ns/node | everything | before "
        "| json.loads | orjson | decode_diff | diff | diff (ints) | via to_trees | rows |"
    )
    print("|---:" * 14 + "|")
    for d in diffs:
        print(
            f"| {d['nodes']:,} | {d['MB']:.1f} | **{d['new']:.1f}** | {d['pure']:.1f} "
            f"| {d['ns/node']:.0f} "
            f"| {d['every']:.1f} | {d['old']:.1f} | {d['json']:.1f} | {ms(d['orjson'])} "
            f"| {d['decode']:.1f} "
            f"| {d['all']:.1f} | {d['ints']:.1f} | {d['trees']:.1f} | {d['rows']:,} |"
        )
    print("\nThe daemon's window: before = tree bytes (base64 in JSON) -> tree -> table, and")
    print("for the current window the callers from every stack; now = flame graph bytes ->")
    print("table with every total, and the callers from the levels. Per pair: three")
    print("windows, one of them the current.\n")
    print(
        "| nodes | before: window | before: callers | now: window | now: callers "
        "| quiet pair before | quiet pair now |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for w in bench_daemon(sizes[:3]):
        before = 3 * w["tree"] + w["stacks"]
        now = 3 * w["graph"] + w["callers"]
        print(
            f"| {w['nodes']:,} | {w['tree']:.1f} | {w['stacks']:.1f} | **{w['graph']:.1f}** "
            f"| **{w['callers']:.1f}** | {before:.1f} | **{now:.1f}** |"
        )
    print(f"\nload average after the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
