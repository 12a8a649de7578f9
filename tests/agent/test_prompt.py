"""Coder and judge prompts: everything the coder needs, the rules, no implicit measurement."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_replies import TASK

from kernelarena.agent.prompt import c_sources, coder_prompt, judge_prompt, machine_text, vectorization_report
from kernelarena.tasks.loader import load_task

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(60)]

C_SOL = (TASK.parents[1] / "solutions" / "scaled_tanh_c.py").read_text()


def test_coder_prompt_has_reference_shapes_contract_rules() -> None:
    t = load_task(TASK)
    sys_msg, user = coder_prompt(t, "c")
    text = user.content
    assert sys_msg.role == "system" and user.role == "user"
    assert "class Model(nn.Module)" in text and "torch.tanh(x * self.weight)" in text  # the reference code
    for v in ("rows=64, cols=300", "rows=1, cols=77", "rows=13, cols=1001"):
        assert v in text
    assert "load_library" in text and "class ModelNew" in text  # the contract's example
    assert "elementwise" in text  # category hint of "activation"
    assert "REJECTED" in text and "caching" in text  # the verifier's rules
    assert "numba.njit" in coder_prompt(t, "numba")[1].content


def test_machine_profile_is_only_read_never_measured(tmp_path: Path) -> None:
    assert machine_text(tmp_path / "absent.db") is None
    assert not (tmp_path / "absent.db").exists()


def test_judge_prompt_with_vectorization_report() -> None:
    t = load_task(TASK)
    assert c_sources(C_SOL) and "tanhf" in c_sources(C_SOL)[0]
    rep = vectorization_report(C_SOL)
    assert rep is not None and "vectorized loops:" in rep
    ev = {"status": "pass", "speedup": 1.5, "speedup_ci": [1.4, 1.6], "roofline": 12.0}
    text = judge_prompt(t, C_SOL, ev, profile=rep)[1].content
    assert "1.50x (95% CI 1.40-1.60)" in text and "% of roofline: 12.0" in text
    assert "ONE concrete" in text and rep in text
    assert "gcc failed" in (vectorization_report('_S = r"""void f(float* x) { syntax error }"""') or "")
