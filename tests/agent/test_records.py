"""Agent records: resume without paying twice, attempts, replay recordings; all through the local server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, Step

from kernelarena.agent.providers import Budget, BudgetExceeded, Message, ProviderError, make_provider
from kernelarena.agent.records import AgentStore, RecordingProvider, ReplayProvider
from kernelarena.store.sqlite import Store

pytestmark = [pytest.mark.unit, pytest.mark.timeout(40)]


def _prompt(text: str) -> list[Message]:
    return [Message("system", "you write kernels"), Message("user", text)]


def _inner(server: LLMServer, **kw: Any) -> Any:
    return make_provider("openai", model="m", api_base=server.base_url, max_retries=0, **kw)


def _session(db: Path, server: LLMServer, run_id: str = "run-1", **kw: Any) -> tuple[AgentStore, Any, Any]:
    store = AgentStore(db)
    store.start_run(run_id, "rmsnorm", {"model": "m", "rounds": 3})
    inner = _inner(server, **kw)
    return (
        store,
        RecordingProvider(inner, store, run_id, "coder"),
        RecordingProvider(inner, store, run_id, "judge"),
    )


def test_resume_replays_recorded_calls_without_new_requests(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    llm_server.script(["kernel v1", "make it vectorized", "kernel v2"])
    store, coder, judge = _session(db, llm_server)
    first = [
        coder.complete(_prompt("write")),
        judge.complete(_prompt("judge v1")),
        coder.complete(_prompt("fix")),
    ]
    assert [c.text for c in first] == ["kernel v1", "make it vectorized", "kernel v2"]
    assert not any(c.cached for c in first) and len(llm_server.completions) == 3
    store.close()

    # a second process with the same run_id: the same prompts are served from the store
    store, coder, judge = _session(db, llm_server)
    again = [
        coder.complete(_prompt("write")),
        judge.complete(_prompt("judge v1")),
        coder.complete(_prompt("fix")),
    ]
    assert [c.text for c in again] == [c.text for c in first]
    assert all(c.cached and c.cost_usd == 0.0 for c in again)
    assert len(llm_server.completions) == 3  # not one new paid request

    llm_server.script(["kernel v3"])  # the run goes on past where it was killed
    assert coder.complete(_prompt("faster")).text == "kernel v3"
    assert len(llm_server.completions) == 4
    calls = store.calls("run-1")
    assert [(c["seq"], c["role"]) for c in calls] == [(0, "coder"), (1, "judge"), (2, "coder"), (3, "coder")]
    assert calls[1]["messages"][1] == {"role": "user", "content": "judge v1"}
    info = store.run("run-1")
    assert info is not None and info["llm_calls"] == 4 and info["task"] == "rmsnorm"


def test_other_run_or_changed_prompt_is_not_served_from_the_store(
    llm_server: LLMServer, tmp_path: Path
) -> None:
    db = tmp_path / "karena.db"
    llm_server.script(["a", "b", "c"])
    _, coder, _ = _session(db, llm_server, "run-1")
    coder.complete(_prompt("write"))
    _, other, _ = _session(db, llm_server, "run-2")
    assert not other.complete(_prompt("write")).cached  # another run pays for its own calls
    _, coder, _ = _session(db, llm_server, "run-1")
    assert not coder.complete(_prompt("write, but differently")).cached
    assert len(llm_server.completions) == 3


def test_identical_prompts_get_distinct_replies_and_resume_in_order(
    llm_server: LLMServer, tmp_path: Path
) -> None:
    # evolution samples one mutation prompt several times: each sample is a paid call of its own
    db = tmp_path / "karena.db"
    llm_server.script(["child 1", "child 2"])
    _, coder, _ = _session(db, llm_server)
    assert [coder.complete(_prompt("mutate")).text for _ in range(2)] == ["child 1", "child 2"]
    _, coder, _ = _session(db, llm_server)
    assert [coder.complete(_prompt("mutate")).text for _ in range(2)] == ["child 1", "child 2"]
    assert len(llm_server.completions) == 2


def test_killed_process_resumes_without_repeating_paid_calls(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    llm_server.script(["one", "two", Step(text="never delivered", delay_s=5.0)])
    child = (
        "import sys\n"
        "from kernelarena.agent.providers import Message, make_provider\n"
        "from kernelarena.agent.records import AgentStore, RecordingProvider\n"
        "store = AgentStore(sys.argv[1]); store.start_run('r', 'rmsnorm', {})\n"
        "p = RecordingProvider(make_provider('openai', model='m', api_base=sys.argv[2]), store, 'r')\n"
        "for q in ('q1', 'q2', 'q3'):\n"
        "    p.complete([Message('user', q)])\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", child, str(db), llm_server.base_url], env=os.environ.copy()
    )
    deadline = time.monotonic() + 30
    while len(llm_server.completions) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert len(llm_server.completions) == 3, "the child did not reach its third call"
    proc.send_signal(signal.SIGKILL)  # killed while waiting for the third reply
    proc.wait()

    llm_server.script(["three"])
    store = AgentStore(db)
    store.start_run("r", "rmsnorm", {})
    p = RecordingProvider(_inner(llm_server), store, "r")
    replies = [p.complete([Message("user", q)]) for q in ("q1", "q2", "q3")]
    assert [c.text for c in replies] == ["one", "two", "three"]
    assert [c.cached for c in replies] == [True, True, False]
    assert [r.last_user for r in llm_server.completions] == ["q1", "q2", "q3", "q3"]  # only q3 paid again


def test_budget_charged_once_and_not_for_cached_replies(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    llm_server.script(["a b", "c d"])
    budget = Budget(max_tokens=10)
    store = AgentStore(db)
    store.start_run("r", "t", {})
    p = RecordingProvider(_inner(llm_server), store, "r", budget=budget)
    p.complete(_prompt("x"))  # 4 prompt words + 2 reply words
    assert budget.spent_tokens == 6
    inner = _inner(llm_server, budget=budget)  # the inner provider's own budget: not charged twice
    q = RecordingProvider(inner, store, "r", budget=budget)
    q.complete(_prompt("y"))
    assert budget.spent_tokens == 12
    with pytest.raises(BudgetExceeded):
        p.complete(_prompt("z"))
    store.start_run("r", "t", {})  # resume: recorded replies are free even with the budget spent
    assert p.complete(_prompt("x")).cached and budget.spent_tokens == 12
    assert len(llm_server.completions) == 2


def test_the_key_is_never_stored(llm_server: LLMServer, tmp_path: Path) -> None:
    secret = "sk-live-never-store-me-1234"
    db = tmp_path / "karena.db"
    llm_server.script(["reply", 401])
    store = AgentStore(db)
    store.start_run("r", "t", {"model": "m", "api_base": llm_server.base_url})
    inner = make_provider("openai", model="m", api_base=llm_server.base_url, api_key=secret, max_retries=0)
    p = RecordingProvider(inner, store, "r")
    p.complete(_prompt("x"))
    with pytest.raises(ProviderError) as e:
        p.complete(_prompt("y"))  # the server echoes the key in its 401 body
    assert secret not in str(e.value)
    assert llm_server.completions[0].headers["authorization"] == f"Bearer {secret}"  # it was really used
    store.export_replay("r", tmp_path / "r.jsonl")
    store.close()
    for f in [*tmp_path.glob("karena.db*"), tmp_path / "r.jsonl"]:
        assert secret.encode() not in f.read_bytes(), f


def test_attempts_and_runs(tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    Store(db).close()  # the agent tables live beside the main store's tables in one file
    store = AgentStore(db)
    store.start_run("r1", "rmsnorm", {"model": "m"})
    store.start_run("r2", "softmax", {"model": "m"})
    store.start_run("r1", "rmsnorm", {"model": "changed"})  # idempotent: a resume keeps the first
    verdict = {"verdict": "pass", "reasons": []}
    store.record_attempt(
        "r1", 1, 0, "code a", "/s/a.py", verdict, 1.5, (1.4, 1.6), True, None, {"backend": "c"}
    )
    store.record_attempt(
        "r1", 2, 0, "code b", None, {"verdict": "fail"}, None, None, False, "torch op in forward"
    )
    store.record_attempt("r2", 1, 0, None, None, None, None, None, False, "no code in the reply")
    assert [a["code"] for a in store.attempts("r1")] == ["code a", "code b"]
    first = store.attempts("r1", passed=True)[0]
    assert (
        first["speedup_ci"] == [1.4, 1.6]
        and first["verdict"] == verdict
        and first["extra"] == {"backend": "c"}
    )
    assert first["task"] == "rmsnorm" and first["code_hash"] and first["passed"] is True
    assert [a["reason"] for a in store.attempts(task="softmax")] == ["no code in the reply"]
    assert len(store.attempts(passed=False)) == 2
    run = store.run("r1")
    assert run is not None and run["config"] == {"model": "m"} and run["finished_at"] is None
    store.finish_run("r1", {"best_speedup": 1.5})
    run = store.run("r1")
    assert run is not None and run["summary"] == {"best_speedup": 1.5} and run["finished_at"]
    assert [r["run_id"] for r in store.runs()] == ["r1", "r2"]
    assert [r["run_id"] for r in store.runs("softmax")] == ["r2"]
    assert store.run("nope") is None
    # a resumed run redoing round 2 replaces its attempt instead of adding a second one
    store.record_attempt("r1", 2, 0, "code b2", None, {"verdict": "pass"}, 1.1, (1.0, 1.2), True, None)
    assert [(a["round"], a["code"]) for a in store.attempts("r1")] == [(1, "code a"), (2, "code b2")]
    with Store(db) as main:  # the main store still works on the shared file
        assert list(main.records()) == []


def test_replay_plays_back_an_exported_recording(llm_server: LLMServer, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    llm_server.script(["kernel v1", "use AVX2", "kernel v2"])
    store, coder, judge = _session(db, llm_server)
    coder.complete(_prompt("write"))
    judge.complete(_prompt("judge"))
    coder.complete(_prompt("fix"))
    path = tmp_path / "rec" / "run-1.jsonl"
    store.export_replay("run-1", path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["seq"], x["role"], x["text"]) for x in lines] == [
        (0, "coder", "kernel v1"), (1, "judge", "use AVX2"), (2, "coder", "kernel v2"),
    ]  # fmt: skip
    assert all(x["task"] == "rmsnorm" and x["format"] == "kernelarena-replay/1" for x in lines)

    replay = make_provider("replay", model="", replay=path)
    assert replay.name == "replay" and replay.model == "m"
    # the same prompts get their own replies; a prompt that differs (another machine's profile)
    # gets the next recorded reply in order
    assert replay.complete(_prompt("judge")).text == "use AVX2"
    c = replay.complete(_prompt("write, on another machine"))
    assert (c.text, c.provider, c.cached, c.cost_usd) == ("kernel v1", "replay", True, 0.0)
    assert replay.complete(_prompt("anything")).text == "kernel v2"
    with pytest.raises(ProviderError, match="has no step 4: it holds 3 calls"):
        replay.complete(_prompt("one more"))
    assert len(llm_server.completions) == 3  # playback made no request

    coder_only = ReplayProvider(path, role="coder")
    assert [coder_only.complete(_prompt("?")).text for _ in range(2)] == ["kernel v1", "kernel v2"]

    # a replayed run recorded again resumes like any other
    store.start_run("run-2", "rmsnorm", {})
    rec = RecordingProvider(ReplayProvider(path), store, "run-2")
    assert rec.complete(_prompt("write")).text == "kernel v1"
    assert store.calls("run-2")[0]["cached"] is True


def test_replay_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="cannot read the replay recording"):
        make_provider("replay", model="m", replay=tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "prompt_hash": "x"}\n{not json\n')
    with pytest.raises(ProviderError, match="damaged at line 2"):
        ReplayProvider(bad)
    with pytest.raises(ProviderError, match="needs a recording"):
        make_provider("replay", model="m")
    with pytest.raises(ValueError, match="no agent run"):
        AgentStore(tmp_path / "k.db").export_replay("nope", tmp_path / "x.jsonl")
