"""`karena agent` / `karena export` through the real local LLM server: exit codes and JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from agent_replies import CORRECT, JUDGE, JUDGE_KEY, NO_CODE, TASK, WRONG_REPLY, memo_evaluate, memo_prefilter
from llm_server import LLMServer

from kernelarena.cli import main

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(autouse=True)
def _memo(monkeypatch: pytest.MonkeyPatch) -> None:
    from kernelarena.agent import loop

    monkeypatch.setattr(loop, "evaluate", memo_evaluate)


def _agent(server: LLMServer, tmp_path: Path, *extra: str) -> list[str]:
    return ["agent", str(TASK), "--model", "m", "--api-base", server.base_url, "--json", "--seeds", "1",
            "--budget", "0.3", "--db", str(tmp_path / "k.db"), "--run-dir", str(tmp_path / "run"), *extra]  # fmt: skip


def _last_json(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out.strip().splitlines()[-1])


def test_cli_agent_found_exit_0_and_export(
    llm_server: LLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.script([JUDGE], when=JUDGE_KEY)
    llm_server.script([WRONG_REPLY, CORRECT])
    rc = main(_agent(llm_server, tmp_path, "--rounds", "2", "--run-id", "cli1"))
    out = _last_json(capsys.readouterr().out)
    assert rc == 0
    assert out["best_speedup"] > 0 and out["best_solution"] == str(tmp_path / "run" / "round_2.py")
    assert out["rounds"] == [{"round": 1, "verdict": "fail", "speedup": None},
                             {"round": 2, "verdict": "pass", "speedup": out["best_speedup"]}]  # fmt: skip
    assert out["llm_calls"] == 3
    # export: the verified solution; the rejected one only on request, labelled
    rc = main(
        ["export", "--format", "jsonl", "--out", str(tmp_path / "e.jsonl"), "--db", str(tmp_path / "k.db")]
    )
    recs = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert (
        rc == 0 and [r["label"] for r in recs] == ["verified"] and recs[0]["speedup"] == out["best_speedup"]
    )
    main(
        ["export", "--out", str(tmp_path / "all.jsonl"), "--db", str(tmp_path / "k.db"), "--include-rejected"]
    )
    labels = sorted(json.loads(x)["label"] for x in (tmp_path / "all.jsonl").read_text().splitlines())
    assert labels == ["rejected", "verified"]


def test_cli_agent_none_found_exit_1(
    llm_server: LLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.script([NO_CODE])
    rc = main(_agent(llm_server, tmp_path, "--rounds", "1"))
    out = _last_json(capsys.readouterr().out)
    assert rc == 1 and out["best_speedup"] is None and out["best_solution"] is None
    assert out["rounds"] == [{"round": 1, "verdict": "no-code", "speedup": None}] and out["llm_calls"] == 1


def test_cli_agent_unreachable_server_process_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KARENA_LLM", "OPENAI", "ANTHROPIC"))}
    env.update(PYTHONPATH=str(SRC), KARENA_LLM_CONFIG=str(tmp_path / "none.toml"), KARENA_HOME=str(tmp_path))
    p = subprocess.run(
        [sys.executable, "-m", "kernelarena.cli", "agent", str(TASK), "--model", "m", "--api-base",
         "http://127.0.0.1:9/v1", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0], p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["error"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "no API key"),
        (["--provider", "replay", "--replay", "/nonexistent.jsonl"], "replay"),
        (["--provider", "anthropic"], "no API key"),
    ],
)
def test_cli_agent_cannot_run_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["agent", str(TASK), "--model", "m", "--db", str(tmp_path / "k.db"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err


def test_cli_agent_bad_task_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agent", str(tmp_path / "missing.py"), "--model", "m"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task does not load" in err[0]


def test_cli_agent_evolve_json_contract(
    llm_server: LLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kernelarena.agent import evolve

    monkeypatch.setattr(evolve, "prefilter", memo_prefilter)
    llm_server.script([WRONG_REPLY, CORRECT])  # generation 0
    llm_server.script([CORRECT, CORRECT], when=evolve.EVOLVE_KEY)  # generation 1: duplicates
    rc = main(_agent(llm_server, tmp_path, "--strategy", "evolve", "--population", "2", "--generations", "2"))
    out = _last_json(capsys.readouterr().out)
    assert rc == 0 and out["llm_calls"] == 4 and out["stopped"] == "generations"
    assert out["best_solution"] == str(tmp_path / "run" / "gen0_cand1.py") and out["best_speedup"] > 0
    assert out["rounds"] == [{"round": 0, "verdict": "pass", "speedup": out["best_speedup"]},
                             {"round": 1, "verdict": "pass", "speedup": out["best_speedup"]}]  # fmt: skip
    assert main(_agent(llm_server, tmp_path, "--strategy", "evolve", "--population", "0")) == 2


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "mini_suite"
    suite.mkdir()
    for name in ("tanh_a", "tanh_b"):
        (suite / f"{name}.py").write_text(TASK.read_text())
    return suite


def test_cli_agent_suite_resumes_and_shares_the_budget(
    llm_server: LLMServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`karena agent suite DIR`: one run per task; the same command again resumes without a new paid
    call; a token budget is shared by the whole suite (spent by the first task, the second stops)."""
    llm_server.script([NO_CODE] * 4)
    args = ["agent", "suite", str(_suite(tmp_path)), "--model", "m", "--api-base", llm_server.base_url, "--json",
            "--strategy", "plain", "--rounds", "1", "--db", str(tmp_path / "k.db")]  # fmt: skip
    rc = main(args)
    out = _last_json(capsys.readouterr().out)
    assert rc == 1 and out["solved"] == 0 and out["llm_calls"] == 2
    assert sorted(t["task"] for t in out["tasks"]) == ["tanh_a", "tanh_b"]
    assert len(llm_server.completions) == 2
    rc = main(args)  # the same command: the recorded replies are served from the store
    again = _last_json(capsys.readouterr().out)
    assert rc == 1 and again["run_id"] == out["run_id"] and len(llm_server.completions) == 2
    # a shared token budget: the first call spends it, so the suite makes no second paid call
    rc = main([*args, "--run-id", "budgeted", "--budget-tokens", "1", "--jobs", "1"])
    spent = _last_json(capsys.readouterr().out)
    assert len(llm_server.completions) == 3
    assert sorted(t["stopped"].split(":")[0] for t in spent["tasks"]) == ["budget", "rounds"]
