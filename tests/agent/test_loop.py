"""The coder/judge loop end to end through the real local LLM server and the real verifier."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_replies import (
    CHEAT_REPLY,
    CHECK,
    CORRECT,
    FASTER,
    JUDGE,
    JUDGE_KEY,
    NO_CODE,
    TASK,
    TIMING,
    WRONG_REPLY,
    memo_evaluate,
)
from llm_server import LLMServer

from kernelarena.agent import ProviderError, run
from kernelarena.agent.records import AgentStore
from kernelarena.types import CheckOptions, TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(400)]


def _run(server: LLMServer, tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    args = {
        "model": "test-coder",
        "provider": "openai",
        "api_base": server.base_url,
        "rounds": 5,
        "patience": 10,
        "db": tmp_path / "k.db",
        "run_dir": tmp_path / "run",
        "check_options": CheckOptions(**CHECK),
        "timing_options": TimingOptions(**TIMING),
        "evaluator": memo_evaluate,
        "max_retries": 0,
        "retrieval": False,
    }
    args.update(kw)
    return run(TASK, **args)


def _script_all(server: LLMServer) -> None:
    server.script([JUDGE] * 4, when=JUDGE_KEY)
    server.script([CORRECT, WRONG_REPLY, CHEAT_REPLY, NO_CODE, FASTER])


def test_loop_keeps_verified_fastest_and_never_a_cheat(llm_server: LLMServer, tmp_path: Path) -> None:
    _script_all(llm_server)
    res = _run(llm_server, tmp_path, run_id="r1")
    verdicts = [r.verdict for r in res.rounds]
    assert verdicts == ["pass", "fail", "cheat", "no-code", "pass"], [
        (r.verdict, r.reasons) for r in res.rounds
    ]
    passing = [r for r in res.rounds if r.verdict == "pass"]
    assert all(r.speedup is not None for r in passing)
    # the slow correct kernel recomputes every row 40 times: the second one is measurably faster
    assert res.best_round == 5 and res.best_speedup == max(r.speedup for r in passing)  # type: ignore[type-var]
    assert res.best_solution == str(tmp_path / "run" / "round_5.py")
    assert Path(res.best_solution).read_text().count("ModelNew") == 1
    assert res.rounds[2].solution and res.best_solution != res.rounds[2].solution
    assert res.llm_calls == 9 and res.paid_calls == 9 and len(llm_server.completions) == 9
    # the cheat was fed back as such to the judge and to the coder of the next round
    judge_prompts = [r.last_user for r in llm_server.completions if JUDGE_KEY in r.last_user]
    assert len(judge_prompts) == 4 and "REJECTED this as a cheat" in judge_prompts[2]
    coder4 = [r for r in llm_server.completions if JUDGE_KEY not in r.last_user][3].last_user
    assert "status: cheat" in coder4 and JUDGE in coder4
    # the judge got gcc's vectorization report of the C source
    assert "gcc -fopt-info-vec-missed" in judge_prompts[0]
    with AgentStore(tmp_path / "k.db") as st:
        att = st.attempts("r1")
        assert [a["passed"] for a in att] == [True, False, False, False, True]
        assert att[3]["code"] is None and att[3]["reason"]
        assert len(st.calls("r1")) == 9
        cfg = st.run("r1")["config"]  # type: ignore[index]
        assert {"machine", "model", "backend", "task_path"} <= set(cfg)


def test_budget_stops_the_run(llm_server: LLMServer, tmp_path: Path) -> None:
    _script_all(llm_server)
    res = _run(llm_server, tmp_path, budget_tokens=50)
    assert res.stopped.startswith("budget")
    assert len(llm_server.completions) == 1 and [r.verdict for r in res.rounds] == ["pass"]


def test_killed_run_resumes_without_repeating_paid_calls(llm_server: LLMServer, tmp_path: Path) -> None:
    _script_all(llm_server)
    calls = {"n": 0}

    def dies_in_round_3(task, path, opts):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the process is interrupted while verifying round 3
        return memo_evaluate(task, path, opts)

    with pytest.raises(KeyboardInterrupt):
        _run(llm_server, tmp_path, run_id="rk", evaluator=dies_in_round_3)
    first = len(llm_server.completions)
    assert first == 5  # coder 1, judge 1, coder 2, judge 2, coder 3
    res = _run(llm_server, tmp_path, run_id="rk")
    assert len(llm_server.completions) == 9  # only the 4 calls never made before were sent
    assert res.llm_calls == 9 and res.paid_calls == 4
    assert [r.verdict for r in res.rounds] == ["pass", "fail", "cheat", "no-code", "pass"]
    sent = [r.body["messages"] for r in llm_server.completions]  # type: ignore[index]
    assert len({repr(m) for m in sent}) == len(sent)  # no prompt was paid for twice


def test_unreachable_server_raises_before_any_round(tmp_path: Path) -> None:
    with pytest.raises(ProviderError):
        run(TASK, model="m", api_base="http://127.0.0.1:9/v1", db=tmp_path / "k.db", max_retries=0, rounds=1)


def test_retrieval_offers_past_verified_solutions(llm_server: LLMServer, tmp_path: Path) -> None:
    llm_server.script([CORRECT, CHEAT_REPLY, CORRECT])
    _run(llm_server, tmp_path, rounds=2, run_id="past", strategy="plain")  # pass, then a cheat
    _run(llm_server, tmp_path, rounds=1, run_id="new", retrieval=True)
    prompts = [r.last_user for r in llm_server.completions]
    assert "A verified past solution" in prompts[2] and "for (int rep = 0; rep < 40" in prompts[2]
    assert "torch.tanh(x * self.weight) * self.alpha  # a torch fallback" not in prompts[2]  # never a cheat
    llm_server.script([CORRECT])
    _run(llm_server, tmp_path, rounds=1, run_id="off", retrieval=False)
    assert "A verified past solution" not in llm_server.completions[-1].last_user
