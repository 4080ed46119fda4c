"""Benchmark: what the client adds to a ``pyrowatch flamegraph`` call, and which wire format
and JSON parser to use for ``SelectMergeStacktraces``.

An in-process :class:`~watcher.sandbox.Sandbox` holds one service's CPU profile whose merged
flame graph has a known number of nodes. The sandbox times every request itself, from its
parsed headers until the answer, encoded and compressed, is handed to the socket (the
sandbox logs a request then). Three parts:

1. **End to end.** ``pyrowatch flamegraph local checkout`` runs as a subprocess ``--runs``
   times per flame graph size. Client time = the subprocess's wall time minus the sandbox's
   own time for the requests of that run; it includes interpreter start, imports, config,
   the HTTP client, decoding and rendering. Median and fastest run are shown.
2. **Where the client time goes**, measured in one fresh interpreter per run with the
   library calls the command's fast path makes, in order.
3. **Wire format and parser.** One ``SelectMergeStacktraces`` per size as Connect JSON and as
   ``application/proto``: bytes on the wire, the sandbox's time, and the client's time to
   parse and decode it (stdlib ``json``, ``orjson``, ``msgspec``; protobuf with the upb runtime
   and with a pure-Python reader), plus the one-off cost of loading the protobuf runtime.

Run: ``python bench/client_overhead.py [--runs 11] [--sizes 1024,16384,65536]
[--baseline DIR] [--wait-load 1.5]``; ``--baseline`` also times another version of the
package (a directory holding its ``watcher/``), alternating with this one.
Goal (issue 7, goal 1): the client adds no more than 100 ms to the server's own time.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from watcher.flamegraph import (
    Node,
    Tree,
    decode_flamegraph,
    decode_flamegraph_json,
    decoder_implementation,
    loads_flamegraph,
)
from watcher.querier._wire import encode_select_merge_profile_request
from watcher.sandbox import Sandbox

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SERVICE = "checkout"
GOAL_MS = 100.0
SMS = "/querier.v1.QuerierService/SelectMergeStacktraces"


# --------------------------------------------------------------------------- the profile


def synthetic_tree(n_nodes: int, seed: int = 11) -> Tree:
    """A tree of exactly ``n_nodes`` nodes below the root, deep and with some recursion."""
    rng = random.Random(seed)
    names = [f"pkg{i % 61}/mod{i % 7}.func_{i}" for i in range(max(n_nodes // 3, 64))]
    tree = Tree()
    nodes: list[Node] = [tree.root]
    while len(nodes) <= n_nodes:
        if rng.random() < 0.8:
            parent = nodes[len(nodes) - 1 - min(int(rng.expovariate(1 / 5)), len(nodes) - 1)]
        else:
            parent = nodes[rng.randrange(len(nodes))]
        name = names[int(rng.paretovariate(1.1)) % len(names)]
        if name in parent.children:
            continue
        child = Node(name, rng.randint(0, 40) * 10_000_000)
        parent.children[name] = child
        nodes.append(child)
    for node in nodes[1:]:
        if not node.children and node.self == 0:
            node.self = 10_000_000
    return tree


def stacks_of(tree: Tree) -> dict[tuple[str, ...], int]:
    """Root-first stacks with their self values (what a profile holds)."""
    out: dict[tuple[str, ...], int] = {}
    todo: list[tuple[Node, tuple[str, ...]]] = [(c, (c.name,)) for c in tree.root.children.values()]
    while todo:
        node, path = todo.pop()
        if node.self:
            out[path] = node.self
        todo.extend((c, (*path, c.name)) for c in node.children.values())
    return out


class TimedSandbox(Sandbox):
    """The sandbox, keeping its own duration of every request it answered (the time from
    logging the request to finishing its log entry, just before the answer is sent)."""

    def __init__(self) -> None:
        super().__init__(request_log_size=10_000)
        self.durations: list[tuple[str, float]] = []
        self._durations_lock = threading.Lock()

    def _finish_request(self, entry: Any) -> None:
        with self._durations_lock:
            self.durations.append((entry.rpc, time.time() - entry.time))
        super()._finish_request(entry)

    def take(self) -> list[tuple[str, float]]:
        with self._durations_lock:
            taken, self.durations = self.durations, []
        return taken


def start(size: int) -> tuple[TimedSandbox, int]:
    """A sandbox whose merged profile of ``checkout`` has ``size`` nodes; and that count."""
    tree = synthetic_tree(size)
    sandbox = TimedSandbox()
    sandbox.start()
    sandbox.store.add({"service_name": SERVICE}, CPU, sandbox.now_ms() - 60_000, stacks_of(tree))
    return sandbox, tree.node_count()


# --------------------------------------------------------------------------- 1. end to end


def end_to_end(
    script: Path,
    sizes: Sequence[int],
    runs: int,
    env: dict[str, str],
    baseline: str | None = None,
    wheel_script: Path | None = None,
) -> list[dict[str, Any]]:
    """Rows per flame graph size (and per variant: this tree, then ``baseline`` if given).

    With a baseline (a directory holding another version of the ``watcher`` package, put
    first on ``PYTHONPATH``), the two variants run alternately, so both see the same load;
    likewise ``wheel_script``, the ``pyrowatch`` script of a regular (wheel) install.
    """
    variants = {"this tree": dict(env)}
    if baseline is not None:
        variants["baseline"] = {**env, "PYTHONPATH": baseline}
    scripts = {name: script for name in variants}
    if baseline is not None:
        # its own console script: an older package may name its entry point otherwise
        launcher = Path(env["HOME"]) / "pyrowatch-baseline"
        launcher.write_text(
            f"#!{sys.executable}\nimport sys\n"
            "try:\n    from watcher.cli import console as main\n"
            "except ImportError:\n    from watcher.cli import run as main\n"
            "sys.exit(main())\n"
        )
        launcher.chmod(0o755)
        scripts["baseline"] = launcher
    if wheel_script is not None:
        variants["wheel install"] = dict(env)
        scripts["wheel install"] = wheel_script
    home = env["HOME"]  # not the repository: a wheel install must not import ./watcher
    rows = []
    for size in sizes:
        sandbox, nodes = start(size)
        try:
            config = Path(env["HOME"]) / "config.toml"
            config.write_text(f'[pyroscope.deployments.local]\nurl = "{sandbox.url}"\n')
            for variant in variants.values():
                variant["PYROWATCH_CONFIG"] = str(config)
            max_nodes = str(max(size, 16_384))
            args = ["flamegraph", "local", SERVICE, "--max-nodes", max_nodes]
            args += ["--start", "now-1h", "--end", "now"]
            samples: dict[str, dict[str, list[float]]] = {
                name: {"wall": [], "server": [], "client": [], "cpu": []} for name in variants
            }
            for i in range(runs + 1):
                for name, variant_env in variants.items():
                    sandbox.take()
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    argv = [str(scripts[name]), *args]
                    proc = subprocess.run(argv, env=variant_env, capture_output=True, cwd=home)
                    wall = time.perf_counter() - t0
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                    if proc.returncode != 0 or b"func_" not in proc.stdout:
                        raise SystemExit(f"flamegraph failed: {proc.stderr.decode()[-500:]}")
                    server = sum(d for _, d in sandbox.take())
                    if i == 0:
                        continue  # warm-up: page cache, bytecode caches
                    got = samples[name]
                    got["wall"].append(wall * 1000)
                    got["server"].append(server * 1000)
                    got["client"].append((wall - server) * 1000)
                    got["cpu"].append(cpu * 1000)
            for name, got in samples.items():
                rows.append(
                    {
                        "variant": name,
                        "nodes": nodes,
                        "wall": statistics.median(got["wall"]),
                        "server": statistics.median(got["server"]),
                        "client": statistics.median(got["client"]),
                        "client_min": min(got["client"]),
                        "cpu": statistics.median(got["cpu"]),
                    }
                )
        finally:
            sandbox.stop()
    return rows


def wheel_install(workdir: Path) -> Path:
    """Build this repository's wheel and install it, without dependencies, into a new
    virtualenv under ``workdir`` that sees this environment's packages through a path
    file; returns its ``pyrowatch`` script. An editable install (the development setup)
    runs an import hook at start-up and on every import; users of a release do not."""
    repo = Path(__file__).resolve().parent.parent
    wheels = workdir / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(repo)],
        check=True,
    )
    venv = workdir / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (wheel,) = wheels.glob("*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            site_dir,
            str(wheel),
        ],
        check=True,
    )
    import sysconfig

    here = sysconfig.get_paths()["purelib"]
    (Path(site_dir) / "zz_dependencies.pth").write_text(here + "\n")
    # pip --target writes scripts with this interpreter's shebang: write the venv's own.
    script = venv / "bin" / "pyrowatch"
    script.write_text(f"#!{python}\nimport sys\nfrom watcher.cli import run\nsys.exit(run())\n")
    script.chmod(0o755)
    return script


# --------------------------------------------------------------------------- 2. breakdown

PHASES = textwrap.dedent(
    """
    import time
    t = [time.perf_counter()]
    from watcher.cli import fastpath, flamegraph_report, _adapt, _session
    t.append(time.perf_counter())
    import sys
    call = fastpath.parse(["local", "checkout"], "flamegraph")
    state = _session.CliState()
    with _session.open_session(state, "local") as s:
        t.append(time.perf_counter())
        rng = _session.resolve_window(None, "now-1h", "now")
        sel = _session.service_selector("checkout", [])
        cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
        graph = _adapt.fetch_flamegraph(s.client, cpu, sel, rng, int(sys.argv[1]))
        t.append(time.perf_counter())
    table = _adapt.function_table(graph)
    rows = flamegraph_report.ranked(table, "self", 20)
    t.append(time.perf_counter())
    print(" ".join(f"{(b - a) * 1000:.3f}" for a, b in zip(t, t[1:])))
    """
)


def breakdown(size: int, runs: int, env: dict[str, str], python_floor: float) -> list[str]:
    sandbox, nodes = start(size)
    try:
        config = Path(env["HOME"]) / "config.toml"
        config.write_text(f'[pyroscope.deployments.local]\nurl = "{sandbox.url}"\n')
        env["PYROWATCH_CONFIG"] = str(config)
        samples: list[list[float]] = []
        servers: list[float] = []
        for i in range(runs + 1):
            sandbox.take()
            proc = subprocess.run(
                [sys.executable, "-c", PHASES, str(max(size, 16_384))],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise SystemExit(f"breakdown failed: {proc.stderr[-800:]}")
            server = sum(d for _, d in sandbox.take()) * 1000
            if i == 0:
                continue
            samples.append([float(x) for x in proc.stdout.split()])
            servers.append(server)
    finally:
        sandbox.stop()
    med = [statistics.median(col) for col in zip(*samples, strict=True)]
    server = statistics.median(servers)
    return [
        f"\n### Where the client time goes ({nodes:,} nodes, median of {runs} fresh processes)\n",
        "| phase | ms |",
        "|---|---:|",
        f"| interpreter start (`python -c pass`) | {python_floor:.1f} |",
        f"| import the fast path's modules (no click) | {med[0]:.1f} |",
        f"| load the config, open the HTTP client (socket transport) | {med[1]:.1f} |",
        f"| SelectMergeStacktraces: request, read, parse, decode | {med[2]:.1f} |",
        f"| ... of which the sandbox's own time | {server:.1f} |",
        f"| function table and top 20 | {med[3]:.1f} |",
    ]


# --------------------------------------------------------------------------- 3. wire formats


def best_ms(fn: Callable[[], Any], repeat: int = 7) -> float:
    """Least CPU time of ``repeat`` runs, in ms: other load on the machine inflates it least."""
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        times.append((time.process_time() - t0) * 1000)
    return min(times)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _packed(buf: bytes, pos: int, end: int, out: list[int]) -> None:
    append = out.append
    while pos < end:
        byte = buf[pos]
        pos += 1
        if byte < 0x80:
            append(byte)
            continue
        result, shift = byte & 0x7F, 7
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        append(result)


def pure_python_flamegraph(buf: bytes) -> dict[str, Any]:
    """``SelectMergeStacktracesResponse.flamegraph`` read by hand (a comparison point)."""
    names: list[str] = []
    levels: list[list[int]] = []
    scalars = {3: 0, 4: 0}
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        length, pos = _varint(buf, pos)
        if key != (1 << 3 | 2):
            pos += length
            continue
        stop = pos + length
        while pos < stop:
            key, pos = _varint(buf, pos)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = _varint(buf, pos)
                scalars[field] = value
                continue
            size, pos = _varint(buf, pos)
            if field == 1:
                names.append(buf[pos : pos + size].decode())
            elif field == 2:
                values: list[int] = []
                inner, inner_end = pos, pos + size
                while inner < inner_end:
                    _, inner = _varint(buf, inner)
                    n, inner = _varint(buf, inner)
                    _packed(buf, inner, inner + n, values)
                    inner += n
                levels.append(values)
            pos += size
    return {"names": names, "levels": levels, "total": scalars[3], "maxSelf": scalars[4]}


PROTO_LOAD = (
    "import time; t = time.perf_counter(); from watcher.proto import messages; "
    "messages().querier.SelectMergeStacktracesResponse; "
    "print((time.perf_counter() - t) * 1000)"
)


def proto_load_ms(env: dict[str, str], runs: int = 5) -> float:
    """Loading the protobuf runtime and building the message classes, in a fresh process."""
    times = []
    for _ in range(runs + 1):
        out = subprocess.run(
            [sys.executable, "-c", PROTO_LOAD], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout))
    return statistics.median(times[1:])


def wire_formats(sizes: Sequence[int], env: dict[str, str]) -> list[str]:
    from watcher.proto import messages

    # orjson and msgspec are optional (the bench extra): rows for a missing one are skipped.
    have_orjson = importlib.util.find_spec("orjson") is not None
    have_msgspec = importlib.util.find_spec("msgspec") is not None
    response_cls = messages().querier.SelectMergeStacktracesResponse
    load_ms = proto_load_ms(env)
    parsers: list[tuple[str, Callable[[bytes], Any]]] = [("json", json.loads)]
    if have_orjson:
        import orjson

        parsers.append(("orjson", orjson.loads))
    if have_msgspec:
        import msgspec

        parsers.append(("msgspec", msgspec.json.decode))

    def upb(body: bytes) -> dict[str, Any]:
        fg = response_cls.FromString(body).flamegraph
        return {
            "names": list(fg.names),
            "levels": [list(level.values) for level in fg.levels],
            "total": fg.total,
            "maxSelf": fg.max_self,
        }

    lines = [
        "\n### SelectMergeStacktraces: Connect JSON against application/proto\n",
        "Parse = bytes to Python lists; + decode = then `decode_flamegraph` (checks and",
        "layout). The client reads the levels from the bytes (`decode_flamegraph_json`, its",
        "C module where built); the other JSON rows parse the whole body with a JSON parser",
        "first. Both in CPU ms, the least of 11 runs. Server ms = the",
        "sandbox's own time for the request (median of 5), with its encoding and gzip.",
        "Bytes: uncompressed / gzipped.\n",
        "| nodes | format | bytes | gzipped | server ms | parser | parse ms | parse + decode ms |",
        "|---:|---|---:|---:|---:|---|---:|---:|",
    ]
    for size in sizes:
        sandbox, nodes = start(size)
        try:
            end_ms = sandbox.now_ms()
            body = {
                "profileTypeID": CPU,
                "labelSelector": f'{{service_name="{SERVICE}"}}',
                "start": str(end_ms - 3_600_000),
                "end": str(end_ms),
                "maxNodes": str(max(size, 16_384)),
            }
            proto_req = encode_select_merge_profile_request(
                CPU, body["labelSelector"], end_ms - 3_600_000, end_ms, max(size, 16_384)
            )
            headers = {"Connect-Protocol-Version": "1", "Accept-Encoding": "gzip"}
            with httpx.Client(base_url=sandbox.url, headers=headers, timeout=60) as http:
                variants = {
                    "JSON": (json.dumps(body).encode(), "application/json"),
                    "proto": (proto_req, "application/proto"),
                }
                results: dict[str, tuple[bytes, float]] = {}
                for label, (content, ctype) in variants.items():
                    server: list[float] = []
                    data = b""
                    for _ in range(5):
                        sandbox.take()
                        r = http.post(SMS, content=content, headers={"Content-Type": ctype})
                        r.raise_for_status()
                        data = r.content
                        server.append(sum(d for _, d in sandbox.take()) * 1000)
                    results[label] = (data, statistics.median(server))
        finally:
            sandbox.stop()
        json_body, json_server = results["JSON"]
        proto_body, proto_server = results["proto"]
        reference = decode_flamegraph(json.loads(json_body)["flamegraph"])
        assert decode_flamegraph(upb(proto_body)).to_tree() == reference.to_tree()
        assert decode_flamegraph(pure_python_flamegraph(proto_body)).to_tree() == (
            reference.to_tree()
        )
        jz, pz = len(gzip.compress(json_body, 6)), len(gzip.compress(proto_body, 6))
        # What the client does: the levels read from the bytes (in C where the module is
        # built), the rest of the body by json.
        only = best_ms(lambda b=json_body: loads_flamegraph(b), 11)
        ms = best_ms(lambda b=json_body: decode_flamegraph_json(b), 11)
        lines.append(
            f"| {nodes:,} | JSON | {len(json_body):,} | {jz:,} | {json_server:.1f} "
            f"| **levels from the bytes ({decoder_implementation()})** | {only:.1f} "
            f"| **{ms:.1f}** |"
        )
        for name, parse in parsers:
            only = best_ms(lambda p=parse, b=json_body: p(b), 11)
            ms = best_ms(lambda p=parse, b=json_body: decode_flamegraph(p(b)["flamegraph"]), 11)
            lines.append(
                f"| {nodes:,} | JSON | {len(json_body):,} | {jz:,} | {json_server:.1f} "
                f"| {name} | {only:.1f} | {ms:.1f} |"
            )
        only = best_ms(lambda b=proto_body: upb(b), 11)
        ms = best_ms(lambda b=proto_body: decode_flamegraph(upb(b)), 11)
        lines.append(
            f"| {nodes:,} | proto | {len(proto_body):,} | {pz:,} | {proto_server:.1f} "
            f"| protobuf (upb) | {only:.1f} | {ms:.1f} |"
        )
        only = best_ms(lambda b=proto_body: pure_python_flamegraph(b), 3)
        ms = best_ms(lambda b=proto_body: decode_flamegraph(pure_python_flamegraph(b)), 3)
        lines.append(f"| {nodes:,} | proto | | | | pure Python | {only:.1f} | {ms:.1f} |")
    lines.append(
        f"\nLoading the protobuf runtime and building the message classes once: "
        f"{load_ms:.1f} ms in a fresh process (paid once, by its first proto call)."
    )
    return lines


# --------------------------------------------------------------------------- main


def wait_for_quiet(limit: float | None, max_wait: float = 900.0) -> None:
    """On a shared machine, wait (up to ``max_wait`` s) for the 1-minute load average to
    drop below ``limit`` before measuring; print the load either way."""
    if limit is not None:
        deadline = time.monotonic() + max_wait
        while os.getloadavg()[0] >= limit and time.monotonic() < deadline:
            time.sleep(5)
    print(f"Load average (1 min) at start: {os.getloadavg()[0]:.2f}.\n")


def python_floor(runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times[1:])


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--sizes", default="1024,16384,65536")
    parser.add_argument("--skip-wire", action="store_true")
    parser.add_argument(
        "--baseline", help="a directory with another version of the watcher package to compare"
    )
    parser.add_argument("--wait-load", type=float, help="wait for a load average below this")
    parser.add_argument(
        "--wheel",
        action="store_true",
        help="also time a regular (wheel) install of this tree, alternating with it",
    )
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    script = Path(sys.executable).parent / "pyrowatch"
    wait_for_quiet(args.wait_load)
    with tempfile.TemporaryDirectory() as home:
        # As bench/startup.py: no user config, bytecode caches on but outside the tree.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYROWATCH_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            HOME=home,
            NO_COLOR="1",
            COLUMNS="120",
            PYTHONPYCACHEPREFIX=str(Path(home) / "pycache"),
        )
        floor = python_floor(args.runs, env)
        wheel_script = wheel_install(Path(home) / "wheel") if args.wheel else None
        rows = end_to_end(script, sizes, args.runs, env, args.baseline, wheel_script)
        print("## `pyrowatch flamegraph` against the sandbox\n")
        print(f"Median of {args.runs} runs after a warm-up. Client = wall - the sandbox's time;")
        print("client CPU = user + system time of the command's process, which waiting for the")
        print("server does not add to and other load on the machine inflates much less.")
        if args.baseline:
            print("Baseline rows: the same runs, alternating, with another version of the")
            print("package first on PYTHONPATH (`--baseline`).")
        print(
            "\n| code | nodes | wall ms | server ms | client ms | fastest client ms "
            "| client CPU ms | goal ≤ 100 ms |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            over = r["client"] - GOAL_MS
            verdict = "PASS" if over <= 0 else f"MISS by {over:.0f} ms"
            if r["variant"] == "baseline":
                verdict = ""
            print(
                f"| {r['variant']} | {r['nodes']:,} | {r['wall']:.1f} | {r['server']:.1f} "
                f"| **{r['client']:.1f}** | {r['client_min']:.1f} | {r['cpu']:.1f} | {verdict} |"
            )
        for line in breakdown(16_384 if 16_384 in sizes else sizes[0], args.runs, env, floor):
            print(line)
        if not args.skip_wire:
            for line in wire_formats(sizes, env):
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
