"""`flamegraph` / `pyroscope-flamegraph` end to end against the sandbox."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from .support import CPU, INUSE, SECOND, Env, aligned_window, iso

# A service whose CPU splits 60/30/10 between three leaves under main;handler.
STACKS = {
    ("main", "handler", "json.Marshal"): 6 * SECOND,
    ("main", "handler", "db.Query"): 3 * SECOND,
    ("main", "runtime.gcBgMarkWorker"): 1 * SECOND,
}


def _rows(out: str) -> list[list[str]]:
    """The table rows (after the header line starting with '#'), split on runs of spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("#"))
    return [line.split() for line in lines[start + 1 :] if line.strip()]


def test_table_ranks_functions_by_self_with_exact_shares_and_header(env: Env) -> None:
    """The hottest self function comes first; shares, cores, window and 'other' are exact."""
    at, start, end = aligned_window()
    env.seed("checkout", STACKS, at=at)
    r = env.run(
        "pyrowatch", "flamegraph", "prod", "checkout", "--start", iso(start), "--end", iso(end)
    )
    assert r.code == 0, r
    lines = r.out.splitlines()
    assert lines[0].startswith(f"prod · checkout · {CPU}")
    assert lines[1] == f"window {iso(start)} .. {iso(end)} (20m)"
    assert lines[2] == "total 10.0 s = 0.00833 cores on average"
    assert lines[3] == "other: 0% (nothing truncated)"
    rows = _rows(r.out)
    assert [row[-1] for row in rows] == ["json.Marshal", "db.Query", "runtime.gcBgMarkWorker"]
    # rank, self, self%, cores, total, total%, function
    assert rows[0] == ["1", "6.00", "s", "60.0%", "0.00500", "6.00", "s", "60.0%", "json.Marshal"]
    assert rows[1][3] == "30.0%"
    assert rows[2][3] == "10.0%"
    assert r.err == ""


def test_seed_form_with_positional_range(env: Env) -> None:
    """`pyroscope-flamegraph prod svc 30m` works as the toolkit's did."""
    env.seed("checkout", STACKS)
    r = env.run("pyroscope-flamegraph", "prod", "checkout", "30m")
    assert r.code == 0, r
    assert _rows(r.out)[0][-1] == "json.Marshal"
    assert "(30m)" in r.out.splitlines()[1]


def test_seed_form_with_positional_range_and_profile_type(env: Env) -> None:
    """`... 1h memory:inuse_space:bytes:space:bytes` selects the memory profile, in bytes."""
    env.seed("checkout", STACKS)  # CPU data must not leak into the memory answer
    env.seed(
        "checkout",
        {("main", "cache.Fill"): 48 * 2**20, ("main", "buf.Grow"): 16 * 2**20},
        profile_type=INUSE,
    )
    r = env.run("pyroscope-flamegraph", "prod", "checkout", "1h", INUSE)
    assert r.code == 0, r
    rows = _rows(r.out)
    assert [row[-1] for row in rows] == ["cache.Fill", "buf.Grow"]
    assert rows[0][1:4] == ["48.0", "MiB", "75.0%"]
    assert "total 64.0 MiB" in r.out
    assert "cores" not in r.out


def test_type_alias_and_end_alone(env: Env) -> None:
    """`--type memory` is an alias; `--end` alone makes the default hour end there."""
    at, _start, end = aligned_window()
    env.seed("checkout", {("main", "cache.Fill"): 1024}, profile_type=INUSE, at=at)
    r = env.run(
        "pyrowatch", "flamegraph", "prod", "checkout", "--type", "memory", "--end", iso(end)
    )
    assert r.code == 0, r
    assert r.out.splitlines()[1].endswith(f".. {iso(end)} (1h)")
    assert _rows(r.out)[0][-1] == "cache.Fill"


def test_label_filter_selects_only_matching_series(env: Env) -> None:
    """`--label profile_id=debug-x` keeps only that series' stacks."""
    env.seed("checkout", STACKS)
    env.seed("checkout", {("main", "debug.Only"): SECOND}, labels={"profile_id": "debug-x"})
    r = env.run("pyroscope-flamegraph", "prod", "checkout", "--label", "profile_id=debug-x")
    assert r.code == 0, r
    assert [row[-1] for row in _rows(r.out)] == ["debug.Only"]


def test_label_operators_and_regex(env: Env) -> None:
    """`!=`, `=~` and `!~` matchers reach the server as Prometheus matchers."""
    env.seed("checkout", {("main", "pod1.Work"): SECOND}, labels={"pod": "checkout-1"})
    env.seed("checkout", {("main", "pod2.Work"): SECOND}, labels={"pod": "checkout-2"})
    env.seed("checkout", {("main", "other.Work"): SECOND}, labels={"pod": "api-1"})

    def names(*labels: str) -> set[str]:
        args = [a for lbl in labels for a in ("-l", lbl)]
        r = env.run("pyrowatch", "flamegraph", "prod", "checkout", *args)
        assert r.code == 0, r
        return {row[-1] for row in _rows(r.out)} if r.out else set()

    assert names("pod=~checkout-.*") == {"pod1.Work", "pod2.Work"}
    assert names("pod!~checkout-.*") == {"other.Work"}
    assert names("pod!=checkout-1", "pod=~checkout-.*") == {"pod2.Work"}


def test_label_values_with_quotes_and_backslashes_are_escaped(env: Env) -> None:
    """A value holding `"` and `\\` is escaped into the selector and matches exactly."""
    odd = 'say "hi" \\o/ C:\\tmp'
    env.seed("checkout", {("main", "odd.Match"): SECOND}, labels={"note": odd})
    env.seed("checkout", {("main", "plain.Match"): SECOND}, labels={"note": "say hi"})
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "--label", f"note={odd}")
    assert r.code == 0, r
    assert [row[-1] for row in _rows(r.out)] == ["odd.Match"]
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "--label", f"note!={odd}")
    assert [row[-1] for row in _rows(r.out)] == ["plain.Match"]


def test_json_is_valid_with_shares_and_window(env: Env) -> None:
    """`--json` prints one JSON document on stdout and nothing else."""
    at, start, end = aligned_window()
    env.seed("checkout", STACKS, at=at)
    r = env.run(
        "pyrowatch",
        "flamegraph",
        "prod",
        "checkout",
        "--start",
        iso(start),
        "--end",
        iso(end),
        "--json",
        "--top",
        "2",
    )
    assert r.code == 0, r
    data = json.loads(r.out)
    assert data["window"] == {"start": iso(start), "end": iso(end), "seconds": 1200.0}
    assert data["total"] == 10 * SECOND
    assert data["other_share"] == 0
    assert data["function_count"] == 3
    assert [f["name"] for f in data["functions"]] == ["json.Marshal", "db.Query"]
    assert data["functions"][0]["self_share"] == 0.6
    assert data["functions"][0]["self_cores"] == 6 / 1200


def test_tree_shows_hot_paths_pruned_at_min_share(env: Env) -> None:
    """`--format tree` nests paths by total and hides those under --min-share."""
    env.seed("checkout", {**STACKS, ("main", "tiny.Func"): SECOND // 1000})
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "-f", "tree", "--min-share", "5")
    assert r.code == 0, r
    body = r.out.split("\n\n", 1)[1]
    lines = body.splitlines()
    assert lines[0].split()[0] == "100.0%"
    assert lines[1].endswith("└─ main")
    assert "handler" in lines[2] and "90.0%" in lines[2]
    assert "tiny.Func" not in r.out
    assert "below 5.0%" in r.out


def test_folded_output_is_collapsed_stacks(env: Env) -> None:
    """`--format folded` prints one `a;b;c value` line per stack, for flamegraph.pl."""
    env.seed("checkout", STACKS)
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "--format", "folded")
    assert r.code == 0, r
    assert sorted(r.out.splitlines()) == sorted(
        f"{';'.join(stack)} {value}" for stack, value in STACKS.items()
    )


def test_pprof_is_written_gzipped_to_a_file(env: Env, tmp_path: Path) -> None:
    """`--format pprof -o FILE` writes a gzipped pprof holding the functions."""
    from watcher.pprof import parse_pprof

    env.seed("checkout", STACKS)
    out = tmp_path / "cpu.pb.gz"
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "-f", "pprof", "-o", str(out))
    assert r.code == 0, r
    data = out.read_bytes()
    assert data[:2] == b"\x1f\x8b"
    profile = parse_pprof(gzip.decompress(data))
    assert profile.stacks(0) == STACKS
    assert "go tool pprof" in r.err


def test_output_file_for_the_table(env: Env, tmp_path: Path) -> None:
    """`-o FILE` writes the table to the file and says so on stderr."""
    env.seed("checkout", STACKS)
    out = tmp_path / "top.txt"
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "-o", str(out))
    assert r.code == 0, r
    assert r.out == ""
    assert "json.Marshal" in out.read_text()
    assert str(out) in r.err


def test_empty_result_exits_zero_with_one_line(env: Env) -> None:
    """No data: exit 0, nothing on stdout, one line on stderr that names the next step."""
    r = env.run("pyroscope-flamegraph", "prod", "nosuchservice", "30m")
    assert r.code == 0, r
    assert r.out == ""
    assert len(r.err.splitlines()) == 1
    assert "no " in r.err and "nosuchservice" in r.err and "pyrowatch services prod" in r.err


def test_truncation_share_is_reported(env: Env) -> None:
    """With a small --max-nodes the header says how much went to 'other'."""
    stacks = {("main", f"f{i:02d}"): (i + 1) * SECOND for i in range(30)}
    env.seed("checkout", stacks)
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "--max-nodes", "5", "--json")
    assert r.code == 0, r
    data = json.loads(r.out)
    assert 0 < data["other_share"] < 1
    r = env.run("pyrowatch", "flamegraph", "prod", "checkout", "--max-nodes", "5")
    assert "truncated into 'other'" in r.out and "--max-nodes" in r.out


def test_ranking_by_self_reads_few_totals_and_matches_a_full_sort() -> None:
    """The table ranks by self, ties by total then name; with only the totals of the rows
    shown computed, every cut of the ranking is that of sorting every function."""
    from watcher.cli.flamegraph_report import ranked
    from watcher.flamegraph import FunctionTable, Tree, decode_flamegraph, encode_flamegraph

    # Many ties of self; equal selfs with different totals; recursion; a real 'other'.
    stacks = [((f"r{i % 3}", f"f{i}"), 10 * (1 + i % 4)) for i in range(40)]
    stacks += [(("r0", f"f{i}", "leaf"), 10) for i in range(0, 40, 7)]
    stacks += [(("r1", "rec", "x", "rec"), 20), (("r2", "other"), 30)]
    graph = decode_flamegraph(encode_flamegraph(Tree.from_stacks(stacks), 30))
    full = FunctionTable.from_tree(graph.to_tree())
    everything = sorted(
        ((f.name, f.self, f.total) for f in full if f.self > 0 and f.name != "other"),
        key=lambda r: (-r[1], -r[2], r[0]),
    )
    for top in (0, 1, 2, 5, 9, 10, 11, 20, len(everything), len(everything) + 3):
        table = FunctionTable.from_flamegraph(graph)
        rows, count = ranked(table, "self", top)
        assert (rows, count) == (everything[:top], len(everything))
        assert table.other_value == full.other_value > 0
    by_total = ranked(FunctionTable.from_flamegraph(graph), "total", 7)
    assert (
        by_total[0]
        == sorted(
            ((f.name, f.self, f.total) for f in full if f.name != "other"),
            key=lambda r: (-r[2], -r[1], r[0]),
        )[:7]
    )
