"""Reading a response's bytes with the int64 strings of its levels parsed as ints.

:func:`loads_flamegraph` must give exactly ``json.loads`` (level values as ints), or
``None`` so that the caller uses ``json.loads``; and decoding what it gives must give the
same graph, or the same error, as decoding what ``json.loads`` gives.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from watcher.errors import DecodeError
from watcher.flamegraph import (
    Tree,
    decode_diff,
    decode_diff_json,
    decode_flamegraph,
    decode_flamegraph_json,
    encode_diff,
    encode_flamegraph,
    loads_flamegraph,
    to_connect_json,
)

WORKED = [(("main", "a", "b"), 3), (("main", "a"), 1), (("main", "c"), 2)]
# The worked example of the spec as the server writes it.
WORKED_BODY = (
    b'{"flamegraph":{"names":["total","main","c","a","b"],"levels":[{"values":["0","6","0","0"]},'
    b'{"values":["0","6","0","1"]},{"values":["0","4","1","3","0","2","2","2"]},'
    b'{"values":["1","3","3","4"]}],"total":"6","maxSelf":"3"}}'
)


def _ints(msg: Any) -> Any:
    """``msg`` with the digit strings of its levels' values turned into ints, as the fast
    reading gives them."""
    if not isinstance(msg, dict):
        return msg
    out = dict(msg)
    for key, value in msg.items():
        if key == "flamegraph":
            out[key] = _ints(value)
        elif key == "levels" and isinstance(value, list):
            out[key] = [_level_ints(level) for level in value]
    return out


def _level_ints(level: Any) -> Any:
    if not isinstance(level, dict) or not isinstance(level.get("values"), list):
        return level
    values = [
        int(v) if isinstance(v, str) and v.isascii() and v.isdigit() else v for v in level["values"]
    ]
    return {**level, "values": values}


def _outcome(decode: Any, msg: Any) -> tuple[str, Any]:
    try:
        return "ok", decode(msg).to_dict()
    except DecodeError as exc:
        return "error", str(exc)


def check(body: bytes, *, fast: bool | None = None) -> None:
    """The fast reading of ``body`` agrees with ``json.loads`` + the decoders; ``fast``
    says whether it must (True) or must not (False) apply."""
    got = loads_flamegraph(body)
    if fast is not None:
        assert (got is not None) == fast, body[:300]
    try:
        expected = json.loads(body)
    except ValueError:
        assert got is None, body[:300]
        for decode in (decode_flamegraph_json, decode_diff_json):
            with pytest.raises(DecodeError, match="the response is not JSON"):
                decode(body)
        return
    if got is None:
        return
    assert got == _ints(expected), body[:300]
    for decode in (decode_flamegraph, decode_diff):
        inner = expected.get("flamegraph", expected) if isinstance(expected, dict) else expected
        fast_inner = got.get("flamegraph", got) if isinstance(got, dict) else got
        assert _outcome(decode, fast_inner) == _outcome(decode, inner), body[:300]
        assert _outcome(decode, got) == _outcome(decode, expected), body[:300]


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- the shared test data -------------------------------------------------------------------------


@pytest.mark.shared
def test_golden_vectors(testdata: Path) -> None:
    """Every golden vector, as protojson writes it (strings) and with bare numbers."""
    vectors = json.loads((testdata / "generated/flamegraph_golden_vectors.json").read_text())
    for case in vectors["single"]:
        message = case["flamegraph"]
        check(_compact({"flamegraph": message}))  # bare numbers: read the usual way
        check(_compact({"flamegraph": to_connect_json(_plain(message))}), fast=bool(message))
        expected = decode_flamegraph(message)
        body = _compact({"flamegraph": to_connect_json(_plain(message))})
        assert decode_flamegraph_json(body).to_dict() == expected.to_dict()
    for case in vectors["diff"]:
        message = case["flamegraph_diff"]
        check(_compact({"flamegraph": message}))
        body = _compact({"flamegraph": to_connect_json(_plain(message))})
        check(body, fast=True)
        assert decode_diff_json(body).to_dict() == decode_diff(message).to_dict()


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    return {**message, "levels": [level.get("values", []) for level in message["levels"]]}


@pytest.mark.shared
def test_ui_fixture(testdata: Path) -> None:
    """The real server response of the UI fixtures reads the fast way, to the same graph."""
    path = testdata / "ui/e2e/fixtures/flamegraph.json"
    if not path.is_file():
        pytest.skip(f"{path.name} is not in the shared test data")
    body = path.read_bytes()
    check(body, fast=True)
    assert decode_flamegraph_json(body).to_dict() == decode_flamegraph(json.loads(body)).to_dict()


# -- generated bodies -----------------------------------------------------------------------------


def _random_tree(rng: random.Random, n: int) -> Tree:
    names = ["main", "a", "b", "c", "other", "total", "f;g", "ü", '"levels":[', "x\\"]
    stacks = []
    for _ in range(n):
        depth = rng.randint(1, 7)
        stack = tuple(rng.choice(names) for _ in range(depth))
        stacks.append((stack, rng.choice([1, 7, 10**9, 10**12, rng.randint(0, 10**6)])))
    return Tree.from_stacks(stacks)


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_and_diffs(seed: int) -> None:
    rng = random.Random(seed)
    left, right = _random_tree(rng, rng.randint(0, 40)), _random_tree(rng, rng.randint(0, 40))
    graph = to_connect_json(encode_flamegraph(left, rng.choice([0, 5, 20])))
    diff = to_connect_json(encode_diff(left, right, rng.choice([0, 5, 20])))
    for message, decode in ((graph, decode_flamegraph_json), (diff, decode_diff_json)):
        for body in (
            _compact({"flamegraph": message}),
            json.dumps({"flamegraph": message}, separators=(", ", ":")).encode(),  # Go's spaces
            json.dumps({"flamegraph": message}).encode(),
            json.dumps({"flamegraph": message}, ensure_ascii=False).encode(),
            _compact(message),  # a bare message
        ):
            check(body, fast=len(message["levels"]) > 0)
        assert decode(_compact(message)).to_dict() == decode(body).to_dict()


def _tokens(obj: Any) -> list[str]:
    """``obj`` as a list of JSON tokens."""
    if isinstance(obj, dict):
        out = ["{"]
        for i, (key, value) in enumerate(obj.items()):
            out += [",", json.dumps(key), ":"] if i else [json.dumps(key), ":"]
            out += _tokens(value)
        return [*out, "}"]
    if isinstance(obj, list):
        out = ["["]
        for i, value in enumerate(obj):
            out += [","] if i else []
            out += _tokens(value)
        return [*out, "]"]
    return [json.dumps(obj)]


@pytest.mark.parametrize("seed", range(30))
def test_random_whitespace_between_tokens(seed: int) -> None:
    """Whitespace anywhere between tokens: the same result, read fast only when it is the
    one space after a comma or colon that Go may add."""
    rng = random.Random(seed)
    tree = _random_tree(rng, 12)
    message = {"flamegraph": to_connect_json(encode_flamegraph(tree))}
    tokens = _tokens(message)
    for _ in range(10):
        chosen = rng.choice([" ", "\n", "\t", "\r\n ", "  "])
        rate = rng.choice([0.05, 0.5, 1.0])
        body = "".join(t + (chosen if rng.random() < rate else "") for t in tokens).encode()
        check(body)
    spaced = "".join(t + (" " if t in ",:" else "") for t in tokens).encode()
    check(spaced, fast=True)


# -- odd but valid bodies -------------------------------------------------------------------------

ODD = {
    "empty levels": b'{"flamegraph":{"names":[],"levels":[]}}',
    "empty level": (
        b'{"flamegraph":{"names":["total"],"levels":[{"values":["0","0","0","0"]},{}]}}'
    ),
    "empty values": (
        b'{"flamegraph":{"names":["total"],"levels":[{"values":["0","0","0","0"]},{"values":[]}]}}'
    ),
    "bare numbers": WORKED_BODY.replace(b'"6"', b"6"),
    "leading zeros": WORKED_BODY.replace(b'"6"', b'"06"'),
    "spaces in a value": WORKED_BODY.replace(b'"6"', b'" 6 "'),
    "a name with levels text": WORKED_BODY.replace(
        b'"main"', b'"\\"levels\\":[{\\"values\\":[\\"1\\"]}]"'
    ),
    "a key ending in levels first": WORKED_BODY.replace(
        b'{"flamegraph":', b'{"x\\"levels":[{"values":["1"]}],"flamegraph":'
    ),
    "levels twice": WORKED_BODY.replace(b',"total"', b',"levels":null,"total"'),
    "levels twice, null first": WORKED_BODY.replace(b'"levels":', b'"levels":null,"levels":'),
    "levels outside": WORKED_BODY.replace(b'{"flamegraph":', b'{"levels":[{}],"flamegraph":'),
    "escaped key": WORKED_BODY.replace(b'"levels"', b'"lev\\u0065ls"'),
    "another NaN": WORKED_BODY.replace(b'"maxSelf":"3"', b'"maxSelf":NaN'),
    "Infinity elsewhere": WORKED_BODY.replace(b'"total":"6"', b'"total":"6","x":-Infinity'),
    "other key in a level": WORKED_BODY.replace(b'{"values":["1"', b'{"x":"1","values":["1"'),
    "values null": WORKED_BODY.replace(b'{"values":["1","3","3","4"]}', b'{"values":null}'),
    "values as text": WORKED_BODY.replace(b'["1","3","3","4"]', b'"values"'),
    "a string values": WORKED_BODY.replace(b'"3","4"]', b'"3","values"]'),
    "nested values": WORKED_BODY.replace(b'["1","3","3","4"]', b'[["1"],"3","3","4"]'),
    "list levels": b'{"flamegraph":{"names":["total"],"levels":[["0","0","0","0"]]}}',
    "huge value": WORKED_BODY.replace(b'"6"', b'"' + b"9" * 30 + b'"'),
    "too long for int": WORKED_BODY.replace(b'"6"', b'"' + b"9" * 5000 + b'"'),
    "negative": WORKED_BODY.replace(b'"6"', b'"-6"'),
    "float": WORKED_BODY.replace(b'"6"', b"6.0"),
    "byte order mark": b"\xef\xbb\xbf" + WORKED_BODY,
    "utf-16": WORKED_BODY.decode().encode("utf-16-le"),
    "not an object": b"[" + WORKED_BODY + b"]",
    "flamegraph not an object": b'{"flamegraph":[' + WORKED_BODY + b"]}",
    "levels after the rest": (
        b'{"flamegraph":{"names":["total","main","c","a","b"],"total":"6","maxSelf":"3",'
        b'"levels":[{"values":["0","6","0","0"]},{"values":["0","6","0","1"]},'
        b'{"values":["0","4","1","3","0","2","2","2"]},{"values":["1","3","3","4"]}]}}'
    ),
    "a later list of objects": WORKED_BODY.replace(b',"total"', b',"x":[{"a":1}],"total"'),
}


@pytest.mark.parametrize("name", ODD)
def test_odd_bodies(name: str) -> None:
    check(ODD[name])


def test_worked_example_reads_fast() -> None:
    assert loads_flamegraph(WORKED_BODY) is not None
    assert sorted(decode_flamegraph_json(WORKED_BODY).stacks()) == sorted(WORKED)
    assert loads_flamegraph(ODD["levels after the rest"]) is not None
    assert loads_flamegraph(ODD["a name with levels text"]) is not None


@pytest.mark.parametrize(
    "name",
    [
        "bare numbers",
        "leading zeros",
        "spaces in a value",
        "escaped key",
        "another NaN",
        "levels twice",
        "levels outside",
        "a key ending in levels first",
        "negative",
        "byte order mark",
        "utf-16",
        "nested values",
        "list levels",
    ],
)
def test_doubtful_bodies_are_left_to_json_loads(name: str) -> None:
    assert loads_flamegraph(ODD[name]) is None


# -- malformed bodies -----------------------------------------------------------------------------

SMALL = (
    b'{"flamegraph":{"names":["total","a"],"levels":[{"values":["0","5","0","0"]},'
    b'{"values":["0","5","5","1"]},{}],"total":"5"}}'
)


def test_every_cut_of_a_body() -> None:
    """Every truncation of a small body is read as json.loads reads it."""
    for end in range(len(SMALL) + 1):
        check(SMALL[:end])


@pytest.mark.parametrize("op", ["insert", "replace", "delete"])
def test_every_one_byte_change(op: str) -> None:
    """Every one-byte insertion, replacement and deletion (with the bytes that matter to
    the fast reading) gives exactly what json.loads and the decoders give."""
    alphabet = b'"0 1,[]{}:\\-\nxe'
    for i in range(len(SMALL) + (op == "insert")):
        if op == "delete":
            check(SMALL[:i] + SMALL[i + 1 :])
            continue
        for byte in alphabet:
            rest = SMALL[i:] if op == "insert" else SMALL[i + 1 :]
            check(SMALL[:i] + bytes([byte]) + rest)


def test_errors_are_the_decoders() -> None:
    """A body that reads fast but is a bad graph raises what decode_flamegraph raises."""
    body = WORKED_BODY.replace(b'{"values":["1","3","3","4"]}', b'{"values":["1","3","4","4"]}')
    assert loads_flamegraph(body) is not None
    with pytest.raises(DecodeError, match="level 3 node 0: self 4 > total 3"):
        decode_flamegraph_json(body)
    with pytest.raises(DecodeError, match="flame graph: the response is not JSON"):
        decode_flamegraph_json(b"<html>")
    with pytest.raises(DecodeError, match="flame graph diff: expected a JSON object, got list"):
        decode_diff_json(b"[]")
