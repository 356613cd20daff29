"""A two-node Ray cluster on this machine: the render stage runs where its resource is.

The second node offers a custom resource `fake_gpu` standing in for a GPU; the recipe
makes the render stage require it. The driver is its own process (`datapipe run
--address`), as on a real cluster. The cluster has its own temp dir, so its processes
are found and stopped without touching the test session's own Ray.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_recipe
from helpers import RAY_EXECUTION

from datapipe.verify import verify

psutil = pytest.importorskip("psutil")
pytest.importorskip("ray")
pytestmark = pytest.mark.timeout(900)

RENDER_ON_FAKE_GPU = {
    "image": {"long_side": 320},
    "block_size": 3,
    "execution": {
        "stages": {
            **RAY_EXECUTION["stages"],
            "render": {"cpus": 0.25, "resources": {"fake_gpu": 1}},
        }
    },
}
LOST_LIMIT = 12
"""Four blocks of three: the GPU node is lost after the second, two are left to the rerun."""
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli(*args: str) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray, *args], check=True, env=ENV, timeout=180, capture_output=True)


def kill_tree(process: psutil.Process) -> None:
    for proc in [*process.children(recursive=True), process]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


class Cluster:
    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = temp_dir
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"

    def start_head(self) -> None:
        ray_cli(
            "start", "--head", f"--port={self.port}", "--num-cpus=2",
            "--object-store-memory=200000000", "--include-dashboard=false",
            "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
        )  # fmt: skip

    def start_gpu_node(self) -> None:
        ray_cli(
            "start", f"--address={self.address}", "--num-cpus=1",
            '--resources={"fake_gpu": 1}', "--object-store-memory=150000000",
            "--disable-usage-stats", f"--temp-dir={self.temp_dir}",
        )  # fmt: skip

    def processes(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            if any(str(self.temp_dir) in arg for arg in proc.info["cmdline"] or []):
                found.append(proc)
        return found

    def gpu_raylet(self) -> psutil.Process:
        (raylet,) = [
            p
            for p in self.processes()
            if "raylet" in p.info["cmdline"][0]
            and any("fake_gpu" in arg for arg in p.info["cmdline"])
        ]
        return raylet

    def gpu_node_id(self) -> str:
        for arg in self.gpu_raylet().info["cmdline"]:
            if "--node-id=" in arg:
                return arg.split("--node-id=")[1].split()[0]
        raise AssertionError("the second node's raylet names no node id")

    def kill_gpu_node(self) -> None:
        kill_tree(self.gpu_raylet())

    def stop(self) -> None:
        for proc in self.processes():
            kill_tree(proc)


@pytest.fixture(scope="module")
def cluster():
    temp_dir = Path("/tmp") / f"dpr-{uuid.uuid4().hex[:8]}"  # unix socket paths must stay short
    cluster = Cluster(temp_dir)
    cluster.start_head()
    cluster.start_gpu_node()
    yield cluster
    cluster.stop()


def run_cli(recipe: Path, out: Path, address: str, limit: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "datapipe.cli", "run", str(recipe), "--out", str(out),
        "--address", address, "--limit", str(limit), "-q",
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def test_render_stage_runs_on_the_node_with_the_resource(tmp_path, cluster):
    recipe = write_recipe(tmp_path, RENDER_ON_FAKE_GPU)
    process = run_cli(recipe, tmp_path / "out", cluster.address, limit=3)  # one block
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    stages = json.loads((tmp_path / "out" / "run.json").read_text())["summary"]["stages"]
    assert stages["render"]["nodes"] == [cluster.gpu_node_id()]
    assert stages["render"]["items"] > 0
    assert all(not check.faults for check in verify(tmp_path / "out"))


def test_losing_the_gpu_node_mid_run_completes_on_rerun(tmp_path, cluster):
    recipe = write_recipe(tmp_path, RENDER_ON_FAKE_GPU)
    out = tmp_path / "out"
    process = run_cli(recipe, out, cluster.address, limit=LOST_LIMIT)
    deadline = time.monotonic() + 300
    while not (out / "blocks" / "block-000001.json").is_file():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no block was committed"
        time.sleep(0.05)
    cluster.kill_gpu_node()
    try:
        process.wait(timeout=5)  # the run may finish or fail by itself ...
    except subprocess.TimeoutExpired:
        process.kill()  # ... or wait forever for a resource that is gone
        process.wait(timeout=30)
    committed = sum(pq.read_metadata(p).num_rows for p in (out / "candidates").glob("*.parquet"))
    finished = process.returncode == 0

    if not finished:
        cluster.start_gpu_node()
        rerun = run_cli(recipe, out, cluster.address, limit=LOST_LIMIT)
        _, stderr = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, stderr
        summary = json.loads((out / "run.json").read_text())["summary"]
        assert summary["rendered_this_run"] == summary["renders"] - committed
    summary = json.loads((out / "run.json").read_text())["summary"]
    assert summary["groups"] == LOST_LIMIT
    assert all(not check.faults for check in verify(out))
