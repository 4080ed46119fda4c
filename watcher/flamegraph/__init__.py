"""The flame graph codec: pure, no I/O, linear time.

- :mod:`~watcher.flamegraph.tree`: the function-name tree (:class:`Tree`, :class:`Node`).
- :mod:`~watcher.flamegraph.encode`: Tree → ``FlameGraph`` / ``FlameGraphDiff`` / tree bytes.
- :mod:`~watcher.flamegraph.decode`: the reverse, with strict checks (also straight from
  a response's bytes).
- :mod:`~watcher.flamegraph.functions`: per-function tables and comparisons.
- :mod:`~watcher.flamegraph.folded`: collapsed-stack text.
"""

from watcher.flamegraph.decode import (
    FlameGraph,
    FlameGraphDiff,
    decode_diff,
    decode_diff_json,
    decode_flamegraph,
    decode_flamegraph_json,
    decode_tree_bytes,
    decoder_implementation,
    loads_flamegraph,
)
from watcher.flamegraph.encode import (
    encode_diff,
    encode_flamegraph,
    encode_tree_bytes,
    to_connect_json,
)
from watcher.flamegraph.folded import parse_folded, to_folded
from watcher.flamegraph.functions import (
    DiffTable,
    FunctionDiff,
    FunctionStats,
    FunctionTable,
    ValueKind,
)
from watcher.flamegraph.tree import OTHER, Node, Stack, Tree

__all__ = [
    "OTHER",
    "DiffTable",
    "FlameGraph",
    "FlameGraphDiff",
    "FunctionDiff",
    "FunctionStats",
    "FunctionTable",
    "Node",
    "Stack",
    "Tree",
    "ValueKind",
    "decode_diff",
    "decode_diff_json",
    "decode_flamegraph",
    "decode_flamegraph_json",
    "decode_tree_bytes",
    "decoder_implementation",
    "encode_diff",
    "encode_flamegraph",
    "encode_tree_bytes",
    "loads_flamegraph",
    "parse_folded",
    "to_connect_json",
    "to_folded",
]
