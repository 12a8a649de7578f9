"""`bench`: interleaved timing with a CI; an A/A comparison's statistics; offline/server modes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.types import CheckOptions, TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]

QUICK = CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False)


def test_bench_reports_speedup_with_ci(data: Path) -> None:
    b = api.bench(data / "tasks/scaled_tanh.py", data / "solutions/scaled_tanh_c.py", check_options=QUICK,
                  timing_options=TimingOptions(budget_s=1.0, min_rounds=4, max_rounds=8))  # fmt: skip
    assert b.passed, (b.verdict.reasons, b.reasons)
    lo, hi = b.speedup_ci
    assert lo <= b.speedup <= hi and b.speedup > 0
    assert b.candidate.rounds == b.baseline.rounds >= 4
    assert b.candidate.cache == "cold" and b.candidate.threads >= 1


def test_aa_comparison_statistics(data: Path, tmp_path: Path) -> None:
    """A solution against itself: the CI reaches 1 (within 1%); a stable run's median ratio is within
    3% of 1 (or its CI's half-width when wider).

    One thread and a ~1 ms call, so that the comparison measures the timer, not OpenMP barriers
    waiting for a descheduled thread on a shared 2-core machine."""
    src = (data / "tasks/scaled_tanh.py").read_text()
    task = tmp_path / "scaled_tanh_big.py"
    task.write_text(
        src.replace('VARIANTS = [{"rows": 64, "cols": 300}', 'VARIANTS = [{"rows": 512, "cols": 2048}')
    )
    sol = data / "solutions/scaled_tanh_c.py"
    one = CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False, threads=1)
    b = api.bench(task, sol, baseline=str(sol), check_options=one,
                  timing_options=TimingOptions(budget_s=2.0, min_rounds=10, max_rounds=40, cache="warm"))  # fmt: skip
    assert b.passed
    lo, hi = b.speedup_ci
    # The CI reaches 1 within 1%: two processes running the same code can differ for real by a
    # fraction of a percent (memory placement), which a quiet run's 0.1%-wide CI resolves (seen:
    # 0.9988x [0.9965, 0.9995]). A bias of more than 1% fails.
    assert lo <= 1.01 and hi >= 0.99, (b.speedup, b.speedup_ci)
    if b.unstable:
        # A shared machine can be too noisy for a 10%-wide CI in 40 rounds: the bench must say
        # so (flag) and still bracket 1 (above); the 3% point-estimate claim needs a stable run.
        assert any("unstable" in f for f in b.flags), b.flags
    else:
        # Stable means a CI under 10% wide, and the point estimate lies inside it: within 3% of 1,
        # or within the CI's own half-width (+1%) when that is wider (seen on a quiet run: 0.957x with
        # a CI reaching 0.99; the unbiasedness claim is the CI bracketing 1, above).
        half = (hi - lo) / 2
        assert abs(b.speedup - 1.0) < max(0.03, half + 0.01), (b.speedup, b.speedup_ci)


def test_failed_check_is_not_timed(data: Path) -> None:
    b = api.bench(
        data / "tasks/scaled_tanh.py", data / "solutions/wrong_ignores_weight.py", check_options=QUICK
    )
    assert not b.passed and b.candidate is None and b.speedup is None


def test_cli_bench_both_modes(data: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelarena.cli",
            "bench",
            str(data / "tasks/scaled_tanh.py"),
            str(data / "solutions/scaled_tanh_c.py"),
            "--json",
            "--quick",
            "--mode",
            "both",
            "--budget",
            "0.5",
            "--fresh",  # measured again, but the session's store keeps the hardware profile (~6 s)
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert {"speedup", "speedup_ci", "candidate_ms", "baseline_ms"} <= set(out)
    assert set(out["modes"]) == {"offline", "server"}
    assert out["candidate"]["mode"] == "offline"
