"""TuningSession: the search's evaluator on the check/bench pipeline (real workers, real kernels)."""

from pathlib import Path

import pytest

from kernelarena.api import TuningSession
from kernelarena.types import TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]


def test_session_screens_configs(data: Path) -> None:
    with TuningSession(data / "tasks/scaled_tanh.py", timing_options=TimingOptions(budget_s=0.2)) as s:
        assert s.baseline_ms > 0 and s.shape_id
        good = s.evaluate((data / "solutions/scaled_tanh_c.py").read_text())
        assert good.ok and good.median_ms and good.ci_ms, good.reason
        assert good.median_ms > 0 and good.ci_ms[0] <= good.median_ms <= good.ci_ms[1]
        # the final ranking's measurement: interleaved with the baseline, a speedup with its CI
        ranked = s.rank((data / "solutions/scaled_tanh_c.py").read_text())
        assert ranked.ok and ranked.speedup and ranked.speedup_ci and ranked.baseline_ms
        assert ranked.speedup_ci[0] <= ranked.speedup <= ranked.speedup_ci[1]
        wrong = s.evaluate((data / "solutions/wrong_ignores_weight.py").read_text())
        assert not wrong.ok and "outside tolerance" in (wrong.reason or "")
        crash = s.evaluate((data / "solutions/crash_segfault.py").read_text())
        assert not crash.ok and "SIGSEGV" in (crash.reason or "")
        again = s.evaluate(
            (data / "solutions/scaled_tanh_c.py").read_text()
        )  # a fresh worker after the crash
        assert again.ok
        cheat = s.evaluate("import torch\ntorch.allclose = lambda *a, **k: True\n")
        assert not cheat.ok and (cheat.reason or "").startswith("static:")
