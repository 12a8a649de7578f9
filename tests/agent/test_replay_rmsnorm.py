"""The shipped replay: `karena agent rmsnorm --provider replay` runs the loop with no LLM at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelarena.agent import bundled_replay
from kernelarena.cli import main

pytestmark = [pytest.mark.cpu]


def test_shipped_recording_is_well_formed() -> None:
    rec = bundled_replay("rmsnorm")
    assert rec is not None
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    assert [x["role"] for x in lines] == ["coder", "judge", "coder", "judge", "coder"]
    assert all("```python" in x["text"] for x in lines if x["role"] == "coder")
    assert "class Model(nn.Module)" in lines[0]["messages"][1]["content"]  # the reference code was shown


@pytest.mark.timeout(300)
def test_replay_round_one_no_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["agent", "rmsnorm", "--provider", "replay", "--rounds", "1", "--json", "--seeds", "1",
               "--max-bytes", "4M", "--db", str(tmp_path / "k.db"), "--run-dir", str(tmp_path / "run")])  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 1 and out["rounds"] == [{"round": 1, "verdict": "fail", "speedup": None}]  # the wrong kernel
    assert out["llm_calls"] == 1 and out["paid_calls"] == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_replay_whole_run_finds_faster_kernel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["agent", "rmsnorm", "--provider", "replay", "--rounds", "3", "--json", "--seeds", "1",
               "--max-bytes", "4M", "--budget", "0.5", "--db", str(tmp_path / "k.db"),
               "--run-dir", str(tmp_path / "run")])  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0
    assert [r["verdict"] for r in out["rounds"]] == ["fail", "pass", "pass"]
    assert out["best_solution"] and out["best_speedup"] == max(r["speedup"] for r in out["rounds"][1:])
    assert out["llm_calls"] == 5 and out["paid_calls"] == 0
