"""Evaluate suite pairs on a Ray cluster (or Ray on this machine): one Ray task per pair.

Each Ray task runs ``kernelarena.suite.evaluate_pair`` in a Ray worker process, which starts the
usual sandboxed reference and candidate workers there; results come back as plain dicts and are
stored by the driver, so the store stays one SQLite file on the driver's machine. Timing on a
cluster is only comparable within a node: each result records the node it ran on.

Example::

    karena suite run llm --solutions builtin --executor ray --ray-address auto
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


def _evaluate(pair: Any, baseline: str | None, copts: Any, topts: Any) -> dict[str, Any]:
    import socket

    from kernelarena.suite import evaluate_pair

    res = evaluate_pair(pair, baseline, copts, topts, store=None, fresh=True, timing_lock=None)
    res["node"] = socket.gethostname()
    return res


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
