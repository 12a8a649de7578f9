"""The evolutionary strategy end to end through the real local LLM server and the real verifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_replies import (
    _C_FAST,
    CHEAT_REPLY,
    CHECK,
    CORRECT,
    FASTER,
    TASK,
    TIMING,
    WRONG_REPLY,
    memo_evaluate,
    memo_prefilter,
    reply,
)
from llm_server import LLMServer

from kernelarena.agent import run
from kernelarena.agent.evolve import EVOLVE_KEY, NEGATIVE_KEY
from kernelarena.agent.records import AgentStore
from kernelarena.types import CheckOptions, TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]

# a C syntax error (missing ';'): the pre-filter's compile step must stop it
_BROKEN_CODE = _C_FAST.replace("* w[c]) * alpha;", "* w[c]) * alpha")
assert _BROKEN_CODE != _C_FAST
BROKEN = reply(_BROKEN_CODE, "An even faster version.")

BENCHED: list[str] = []  # paths given to the full evaluation (memoized or not)


def bench_spy(task, path, opts):  # type: ignore[no-untyped-def]
    BENCHED.append(Path(path).name)
    return memo_evaluate(task, path, opts)


def _run(server: LLMServer, tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {
        "model": "test-coder", "provider": "openai", "api_base": server.base_url, "strategy": "evolve",
        "population": 3, "generations": 3, "db": tmp_path / "k.db", "run_dir": tmp_path / "run",
        "check_options": CheckOptions(**CHECK), "timing_options": TimingOptions(**TIMING),
        "evaluator": bench_spy, "prefilter": memo_prefilter, "max_retries": 0, "retrieval": False,
    }  # fmt: skip
    args.update(kw)
    return run(TASK, **args)


def _script(server: LLMServer) -> None:
    server.script([CORRECT, WRONG_REPLY, CHEAT_REPLY])  # generation 0: coder prompts
    # generations 1 and 2: mutation / crossover prompts; duplicates are evaluated once
    server.script([FASTER, BROKEN, CORRECT, FASTER, CORRECT, FASTER], when=EVOLVE_KEY)


def test_evolve_selects_verified_fastest_and_never_a_cheat(llm_server: LLMServer, tmp_path: Path) -> None:
    _script(llm_server)
    BENCHED.clear()
    res = _run(llm_server, tmp_path, run_id="e1")
    with AgentStore(tmp_path / "k.db") as st:
        att = {(a["round"], a["candidate"]): a for a in st.attempts("e1")}
    assert len(att) == 9
    status = {k: a["extra"]["status"] for k, a in att.items()}
    stage = {k: a["extra"]["stage"] for k, a in att.items()}
    assert [status[(0, i)] for i in range(3)] == ["pass", "fail", "cheat"], status
    assert [status[(1, i)] for i in range(3)] == ["pass", "fail", "pass"], status
    # the pre-filter stopped the wrong, the cheating and the broken programs: never benched
    assert stage[(0, 1)] == stage[(0, 2)] == stage[(1, 1)] == "prefilter"
    assert (
        "gen0_cand1.py" not in BENCHED and "gen0_cand2.py" not in BENCHED and "gen1_cand1.py" not in BENCHED
    )
    assert stage[(0, 0)] == stage[(1, 0)] == "bench"
    # identical code is evaluated once: only the first slow and the first fast program were benched
    assert BENCHED == ["gen0_cand0.py", "gen1_cand0.py"]
    assert att[(1, 2)]["extra"]["ev"].get("duplicate") is True

    slow, fast = att[(0, 0)]["speedup"], att[(1, 0)]["speedup"]
    assert fast > slow  # the slow kernel recomputes every row 40 times
    assert res.best_speedup == fast and res.best_solution == str(tmp_path / "run" / "gen1_cand0.py")
    assert res.best_round == 1
    assert [(r.round, r.verdict, r.speedup) for r in res.rounds] == [(0, "pass", slow), (1, "pass", fast),
                                                                      (2, "pass", fast)]  # fmt: skip
    assert res.llm_calls == 9 and res.paid_calls == 9 and len(llm_server.completions) == 9

    # parents are verified programs only (a wrong program or a cheat is never selected)
    passed = {f"g{a['round']}c{a['candidate']}" for a in att.values() if a["passed"]}
    for (g, _), a in att.items():
        ex = a["extra"]
        if g == 0:
            assert ex["op"] == "init" and ex["parents"] == []
        else:
            assert ex["op"] in ("mutation", "crossover") and ex["parents"]
            assert set(ex["parents"]) <= passed, ex["parents"]
    assert any(att[(2, i)]["extra"]["op"] == "crossover" for i in range(3)) or all(
        len(att[(2, i)]["extra"]["parents"]) == 1 for i in range(3)
    )

    # contrastive prompts: the parents with their measured speedups, faster and slower ones;
    # the wrong program and the cheat only ever appear after the negative-example label
    evo = [r.last_user for r in llm_server.completions if EVOLVE_KEY in r.last_user]
    assert len(evo) == 6
    for p in evo[:3]:
        assert f"Parent A ({slow:.2f}x, verified)" in p
    for p in evo[3:]:
        assert f"{slow:.2f}x" in p and f"{fast:.2f}x" in p
    for p in evo:
        head = p.split(NEGATIVE_KEY)[0]
        assert "a torch fallback, not a kernel" not in head and "tanhf(x[i]) * a" not in head
    assert any(NEGATIVE_KEY in p and "status: cheat" in p for p in evo)

    # a resumed run (same id) replays every recorded call: nothing is paid, nothing re-benched
    res2 = _run(llm_server, tmp_path, run_id="e1")
    assert len(llm_server.completions) == 9 and res2.paid_calls == 0 and res2.llm_calls == 9
    assert res2.best_speedup == res.best_speedup and BENCHED == ["gen0_cand0.py", "gen1_cand0.py"]


def test_evolve_budget_stops_the_run(llm_server: LLMServer, tmp_path: Path) -> None:
    _script(llm_server)
    res = _run(llm_server, tmp_path, budget_tokens=50)
    assert res.stopped.startswith("budget")
    assert len(llm_server.completions) == 1 and [r.verdict for r in res.rounds] == ["pass"]
    assert res.to_json()["rounds"] == [{"round": 0, "verdict": "pass", "speedup": res.best_speedup}]
