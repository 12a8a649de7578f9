"""Evaluate suite pairs on a Ray cluster (or Ray on this machine): one Ray task per pair.

Each Ray task runs ``kernelarena.suite.evaluate_pair`` in a Ray worker process, which starts the
usual sandboxed reference and candidate workers there; results come back as plain dicts and are
stored by the driver, so the store stays one SQLite file on the driver's machine. Timing on a
cluster is only comparable within a node: each result records the node it ran on.

Example::

    karena suite run llm --solutions builtin --executor ray --ray-address auto

Each Ray task keeps its records in a node-local store and brings them back; the driver stores them
under keys that carry the node id, with ``result.node`` (host/short node id) and
``result.machine_profile`` (machine id, device, the node's stored hardware profile if any).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def node_info() -> dict[str, Any]:
    """Where this Ray task runs: the Ray node, its host and the machine's identity and profile.

    ``label`` (host/short node id) is what records and reports show as the node; the hardware
    profile is the one stored on that node (``karena hw``), if any: measuring it here would cost
    tens of seconds per task.
    """
    import socket

    import ray

    from kernelarena import settings
    from kernelarena.hw import cpu_machine_id
    from kernelarena.hw.store import stored_profile
    from kernelarena.store.keys import device_id

    ctx = ray.get_runtime_context()
    node_id = ctx.get_node_id()
    machine_id = cpu_machine_id()
    profile = None
    db = settings.db_path()
    if db.exists():
        found = stored_profile(db, machine_id, "cpu", settings.num_threads())
        if found is not None:
            profile = {"mem_bw_bytes_per_s": found.mem_bw_bytes_per_s, "peak_flops_fp32": found.peak_flops_fp32,
                       "measured_at": found.measured_at}  # fmt: skip
    host = socket.gethostname()
    return {
        "node_id": node_id,
        "node_ip": ray.util.get_node_ip_address(),
        "host": host,
        "label": f"{host}/{node_id[:8]}",
        "machine_profile": {"machine_id": machine_id, "device": device_id("cpu"), "profile": profile},
    }


def _node_records(db: Path, node: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a pair wrote into its node-local store, marked with the node."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT key, kind, task, task_hash, solution, solution_hash, baseline, device, toolchain, payload"
            " FROM records"
        ).fetchall()
    out = []
    for key, kind, task, th, sol, sh, base, device, tc, payload in rows:
        data = json.loads(payload)
        if isinstance(data.get("result"), dict):
            data["result"]["node"] = node["label"]
            data["result"]["machine_profile"] = node["machine_profile"]
        out.append({"key": key, "kind": kind, "payload": data,
                    "meta": {"task": task, "task_hash": th, "solution": sol, "solution_hash": sh, "baseline": base,
                             "device": device, "toolchain": json.loads(tc)}})  # fmt: skip
    return out


def _evaluate(pair: Any, baseline: str | None, copts: Any, topts: Any) -> dict[str, Any]:
    from kernelarena.store.sqlite import Store
    from kernelarena.suite import evaluate_pair

    node = node_info()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "node.db"
        with Store(db) as store:  # node-local: the driver's store is not reachable from here
            res = evaluate_pair(pair, baseline, copts, topts, store=store, fresh=True, timing_lock=None)
        res["records"] = _node_records(db, node)
    res["node"] = node["label"]
    res["node_info"] = node
    return res


def store_remote_records(store: Any, res: dict[str, Any]) -> None:
    """Put the records a Ray task brought back into the driver's store, one per node: the key gets
    the node id, so the same pair measured on two nodes keeps both (timings compare only within a
    node) and a remote result is never reused as this machine's cached one."""
    for rec in res.pop("records", None) or []:
        node_id = ((res.get("node_info") or {}).get("node_id")) or "unknown"
        store.put(f"{rec['key']}@{node_id}", rec["kind"], rec["meta"], rec["payload"])


def run_on_ray(
    pairs: list[Any],
    baseline: str | None,
    copts: Any,
    topts: Any,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield results as Ray tasks finish. Timing tasks ask for every CPU of a node so two
    measurements never share a machine; verification-only tasks ask for one."""
    import ray

    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
        started = True
    try:
        node_cpus = max(1, int(min(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"])))
        cpus = 1 if baseline is None else node_cpus
        remote: Any = ray.remote(num_cpus=cpus, max_retries=0)(_evaluate)
        pending = {remote.remote(p, baseline, copts, topts): p for p in pairs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            pair = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # a lost node or a crashed Ray worker is one failed pair
                yield {"task": pair.name, "status": "error", "verdict": "fail", "speedup": None,
                       "reasons": [f"ray: {type(exc).__name__}: {exc}"]}  # fmt: skip
    finally:
        if started:
            ray.shutdown()
