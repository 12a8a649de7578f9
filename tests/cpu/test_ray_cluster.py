"""A real cluster run: the Ray executor on a local multi-process Ray cluster.

The test starts a head and a worker node (`ray start --block`, one CPU each, on the loopback
address, each in its own process group so that teardown ends exactly the processes it started),
runs `karena suite run` on two tiny tasks against the cluster's address, and checks that the
driver's store holds records carrying the Ray node and the machine profile, and that the report
treats each node as its own machine and says timings compare only within a node.

Ray's token authentication is switched off for this private loopback cluster (RAY_AUTH_MODE).
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelarena.store.sqlite import Store

pytestmark = [pytest.mark.cpu, pytest.mark.slow, pytest.mark.timeout(600)]  # ~2-3 min on 2 busy cores

ROOT = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(log: Path, proc: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if "block forever" in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    pytest.fail(f"ray {what} did not start: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    pytest.importorskip("ray")
    if not RAY.exists():
        pytest.skip("the ray command is not installed beside this Python")
    tmp = Path(tempfile.mkdtemp(prefix="kray", dir="/tmp"))  # short: Ray's unix socket paths are limited
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = _free_port()
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--object-store-memory=100000000", "--block",
              "--disable-usage-stats"]  # fmt: skip
    procs: list[subprocess.Popen] = []
    try:
        head_log = tmp / "head.log"
        procs.append(subprocess.Popen([str(RAY), "start", "--head", f"--port={port}", "--include-dashboard=false",
                                       f"--temp-dir={tmp / 'r'}", *common], env=env, start_new_session=True,
                                      stdout=head_log.open("w"), stderr=subprocess.STDOUT))  # fmt: skip
        _wait_for(head_log, procs[0], "head")
        worker_log = tmp / "worker.log"
        procs.append(subprocess.Popen([str(RAY), "start", f"--address=127.0.0.1:{port}", *common], env=env,
                                      start_new_session=True, stdout=worker_log.open("w"),
                                      stderr=subprocess.STDOUT))  # fmt: skip
        _wait_for(worker_log, procs[1], "worker node")
        yield f"127.0.0.1:{port}", env
    finally:
        # only the two process groups started here: SIGTERM (Ray drains), then SIGKILL what is left
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=8)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def _node_ids(address: str, env: dict[str, str]) -> set[str]:
    code = (f"import json, ray; ray.init(address={address!r}, include_dashboard=False, log_to_driver=False); "
            "print(json.dumps([n['NodeID'] for n in ray.nodes() if n['Alive']])); ray.shutdown()")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_suite_run_on_a_two_node_ray_cluster(
    cluster: tuple[str, dict[str, str]], data: Path, tmp_path: Path
) -> None:
    address, env = cluster
    nodes = _node_ids(address, env)
    assert len(nodes) == 2  # a head and a worker node
    suite, sols = tmp_path / "suite", tmp_path / "solutions"
    suite.mkdir()
    sols.mkdir()
    for name in ("tiny_a", "tiny_b"):  # two tiny tasks (64x300 tanh) with their C solution
        shutil.copy(data / "tasks" / "scaled_tanh.py", suite / f"{name}.py")
        shutil.copy(data / "solutions" / "scaled_tanh_c.py", sols / f"{name}.py")
    db = tmp_path / "k.db"
    proc = subprocess.run(
        [sys.executable, "-m", "kernelarena.cli", "suite", "run", str(suite), "--solutions", str(sols),
         "--executor", "ray", "--ray-address", address, "--db", str(db), "--quick", "--budget", "0.3", "--json"],
        env=env, capture_output=True, text=True, timeout=500,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["verdict"] for r in summary["results"]] == ["pass", "pass"], summary["results"]
    assert all(r["node_info"]["node_id"] in nodes for r in summary["results"])
    with Store(db) as store:
        bench = list(store.records(kind="bench"))
        checks = list(store.records(kind="check"))
    assert {r["task"] for r in bench} == {"tiny_a", "tiny_b"} and len(checks) == 2
    for r in bench + checks:
        res = r["payload"]["result"]
        node_id = res["node"].split("/")[1]
        assert any(n.startswith(node_id) for n in nodes), res["node"]
        prof = res["machine_profile"]
        assert prof["machine_id"] and prof["device"] == r["device"]
    # the report: one machine per node, and the note that timings compare only within a node
    rep = subprocess.run([sys.executable, "-m", "kernelarena.cli", "report", "--db", str(db), "--json"],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rep.returncode == 0, rep.stderr[-2000:]
    data_ = json.loads(rep.stdout)
    assert all(" @ " in row["machine"] for row in data_["records"])
    assert any("Ray cluster nodes" in n and "only within" not in n for n in data_["notes"])
    assert any(
        "comparable only within one machine (and, on a cluster, one node)" in n for n in data_["notes"]
    )
