"""End to end: a real pyroscope-io agent pushes CPU profiles into the sandbox.

A child Python process runs a small CPU-bound workload with distinctive function names under
the pyroscope-io 1.x agent (pyroscope-rs: gzipped ``application/proto`` Push). The agent's
upload interval is set to one second. The test waits for the ingest on the store's condition
variable (no sleeping), stops the workload, and reads the flame graph back over HTTP.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from watcher.sandbox import Sandbox
from watcher.selectors import Matcher

pytest.importorskip("pyroscope")

APP = "pyrowatch-e2e"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
LEAF = "pyrowatch_busy_leaf"
PARENT = "pyrowatch_busy_parent"

WORKLOAD = f"""
import os
import sys
import time

import pyroscope

url, stop_file = sys.argv[1], sys.argv[2]
pyroscope.configure(
    application_name="{APP}",
    server_address=url,
    upload_interval=1,
    tags={{"suite": "e2e"}},
)


def {LEAF}():
    total = 0
    for i in range(20000):
        total += i * i
    return total


def {PARENT}():
    for _ in range(10):
        {LEAF}()


deadline = time.monotonic() + 120
while not os.path.exists(stop_file) and time.monotonic() < deadline:
    {PARENT}()
pyroscope.shutdown()
"""


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def test_pyroscope_io_agent_push_reads_back(sandbox: Sandbox, tmp_path: Path) -> None:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    stop_file = tmp_path / "stop"
    proc = subprocess.Popen(
        [sys.executable, str(script), sandbox.url, str(stop_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    app = [Matcher("service_name", "=", APP)]

    def leaf_seen() -> bool:
        stacks = sandbox.store.select(app, 0, 2**62)
        return any(LEAF in stack for stack in stacks)

    try:
        seen = sandbox.store.wait_for(leaf_seen, timeout=90)
    finally:
        stop_file.touch()
        output, _ = proc.communicate(timeout=60)
    assert seen, f"no profile with {LEAF} arrived; agent output:\n{output.decode(errors='replace')}"
    assert proc.returncode == 0, output.decode(errors="replace")

    pushes = [e for e in sandbox.requests() if e.rpc == "Push"]
    assert pushes and all(e.status == 200 for e in pushes)
    assert pushes[0].content_type == "application/proto"
    assert pushes[0].content_encoding == "gzip"
    assert pushes[0].user_agent.startswith("pyroscope-rs/")

    now = int(time.time() * 1000)
    with httpx.Client(base_url=sandbox.url, timeout=30) as client:
        types = client.post(
            "/querier.v1.QuerierService/ProfileTypes", json={"start": now - 3_600_000, "end": now}
        ).json()
        assert CPU in [t["ID"] for t in types["profileTypes"]]
        response = client.post(
            "/querier.v1.QuerierService/SelectMergeStacktraces",
            json={
                "profileTypeID": CPU,
                "labelSelector": f'{{service_name="{APP}", suite="e2e"}}',
                "start": now - 3_600_000,
                "end": now + 60_000,
            },
        )
    assert response.status_code == 200, response.text
    flamegraph = response.json()["flamegraph"]
    assert LEAF in flamegraph["names"]
    assert PARENT in flamegraph["names"]
    assert int(flamegraph["total"]) > 0
    # The leaf sits directly under its parent in the graph.
    leaf = flamegraph["names"].index(LEAF)
    parent = flamegraph["names"].index(PARENT)
    depths = {
        name_index: depth
        for depth, level in enumerate(flamegraph["levels"])
        for name_index in [int(v) for v in level.get("values", [])[3::4]]
    }
    assert depths[leaf] == depths[parent] + 1
