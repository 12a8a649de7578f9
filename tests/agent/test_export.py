"""JSONL export of verified kernels: de-duplicated, rejected attempts only when asked and labelled."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer

from kernelarena.agent.export import export
from kernelarena.agent.providers import Message, make_provider
from kernelarena.agent.records import AgentStore, RecordingProvider
from kernelarena.errors import UsageError
from kernelarena.store.sqlite import Store

pytestmark = [pytest.mark.unit, pytest.mark.timeout(40)]

FAST = "class ModelNew:\n    fast = True\n"
SLOW = "class ModelNew:\n    slow = True\n"
CHEAT = "class ModelNew:\n    def forward(self, x):\n        return torch.rms_norm(x)\n"


def _fill(db: Path, server: LLMServer) -> None:
    """Two runs with a coder/judge conversation through the local server and their attempts."""
    server.script(["kernel 1", "vectorize the inner loop", "kernel 2", "kernel 3"])
    store = AgentStore(db)
    store.start_run("r1", "rmsnorm", {"model": "m", "machine": "cpu:test-box", "backend": "c"})
    inner = make_provider("openai", model="m", api_base=server.base_url, max_retries=0)
    coder = RecordingProvider(inner, store, "r1", "coder")
    judge = RecordingProvider(inner, store, "r1", "judge")
    coder.complete([Message("user", "write")])
    store.record_attempt("r1", 1, 0, FAST, None, {"verdict": "pass"}, 1.2, (1.1, 1.3), True, None)
    judge.complete([Message("user", "judge round 1")])
    coder.complete([Message("user", "revise")])
    # the same kernel again, only whitespace differs, measured faster this time: one record, 1.5
    store.record_attempt(
        "r1", 2, 0, FAST.replace("\n", "  \r\n"), None, {"verdict": "pass"}, 1.5, (1.4, 1.6), True, None
    )
    store.record_attempt(
        "r1", 3, 0, CHEAT, None, {"verdict": "fail"}, None, None, False, "torch op in forward"
    )
    store.record_attempt(
        "r1", 4, 0, CHEAT, None, {"verdict": "fail"}, None, None, False, "torch op in forward"
    )
    store.record_attempt(
        "r1", 5, 0, FAST, None, {"verdict": "fail"}, None, None, False, "flaky"
    )  # also passed
    store.record_attempt("r1", 6, 0, None, None, None, None, None, False, "no code in the reply")
    store.finish_run("r1", {"best_speedup": 1.5})

    store.start_run("r2", "my_op", {"model": "m2", "task_source": "class Model: pass  # my op"})
    RecordingProvider(inner, store, "r2").complete([Message("user", "write my op")])
    store.record_attempt("r2", 1, 0, SLOW, "/sols/slow.py", {"verdict": "pass"}, 0.9, (0.8, 1.0), True, None)
    store.close()
    with Store(db) as main:  # the main store measured /sols/slow.py on another machine
        main.put("k", "bench", {"task": "my_op", "task_hash": "h", "solution": "/sols/slow.py",
                                "device": "cpu:bench-box", "toolchain": {}}, {"verdict": "pass"})  # fmt: skip


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_verified_deduplicated(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    _fill(db, llm_server)
    out = tmp_path / "out" / "kernels.jsonl"
    assert export(db, out) == 2
    recs = _read(out)
    assert [(r["task"], r["label"], r["speedup"]) for r in recs] == [
        ("my_op", "verified", 0.9),
        ("rmsnorm", "verified", 1.5),
    ]
    slow, fast = recs
    assert fast["solution"].replace(" ", "").replace("\r", "") == FAST.replace(" ", "")
    assert fast["speedup_ci"] == [1.4, 1.6] and fast["round"] == 2 and fast["verdict"] == {"verdict": "pass"}
    assert "class Model" in fast["task_source"] and "rms" in fast["task_source"].lower()  # the built-in task
    assert (fast["machine"], fast["model"], fast["provider"], fast["backend"]) == (
        "cpu:test-box",
        "m",
        "openai",
        "c",
    )
    assert fast["trace"] == ["vectorize the inner loop"]  # the judge's feedback before round 2
    assert slow["task_source"] == "class Model: pass  # my op" and slow["machine"] == "cpu:bench-box"
    assert slow["model"] == "m2" and slow["trace"] == []
    assert all("reason" not in r for r in recs)


def test_export_with_rejected(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    _fill(db, llm_server)
    buf = io.StringIO()
    assert export(db, buf, include_rejected=True, with_trace=False) == 3
    recs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["label"] for r in recs] == ["verified", "verified", "rejected"]
    rejected = recs[-1]
    # one record for the cheat tried twice; the kernel that also passed is not a negative example
    assert rejected["solution"] == CHEAT and rejected["reason"] == "torch op in forward"
    assert rejected["speedup"] is None and "trace" not in rejected


def test_export_json_and_bad_input(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    _fill(db, llm_server)
    out = tmp_path / "kernels.json"
    assert export(AgentStore(db), out, fmt="json") == 2
    assert len(json.loads(out.read_text())) == 2
    with pytest.raises(UsageError, match="unknown export format 'csv'"):
        export(db, out, fmt="csv")
    with pytest.raises(UsageError, match="no store at"):
        export(tmp_path / "missing.db", out)
    assert not (tmp_path / "missing.db").exists()


def test_export_empty_store(tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    Store(db).close()
    out = tmp_path / "k.jsonl"
    assert export(db, out, include_rejected=True) == 0
    assert out.read_text() == ""
