"""Adversarial suite: cheating solutions must be rejected for the right reason, correct ones must pass.

Every file in ``cases/`` is a complete solution (``class ModelNew``) whose module docstring starts
with a header (one field per line)::

    EXPLOIT: what the solution models (and which published harness it fooled, if any)
    EXPECT: pass | <reason substring> [&& <another, in the same reason>] [|| <alternative>]
            | flag <flag substring>   (a weak task: the verdict may pass, but only with this flag)
    TASK: task file, relative to the repository root
    CLASS: loophole class 1-10 (see README.md), 0 for a correct solution
    EXPECT_STAGE: bench                (optional: judged by ``api.bench`` instead of ``api.check``)
    THREADS: n                         (optional: worker threads for this case)
    GAP: what the harness gets wrong   (optional: a known hole; the test is xfail(strict=True))

A rejection for another reason than the expected one fails the test: a cheat must be caught by
the guard that targets it, or the guard is not tested. A GAP case starts passing (XPASS, which
strict mode turns into a failure) once the harness is fixed: then delete its GAP line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.types import CheckOptions, TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(180)]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CASES_DIR = HERE / "cases"
KEYS = ("EXPLOIT", "EXPECT", "TASK", "CLASS", "EXPECT_STAGE", "THREADS", "GAP")
DISTRIBUTIONS = CheckOptions().distributions  # the defaults: as-given, signed, scaled, outliers
# warm: a cold-cache flush per call makes tiny kernels take ~100x the budget (see README)
TIMING = TimingOptions(budget_s=0.5, min_rounds=3, max_rounds=6, cache="warm")


@dataclass(frozen=True)
class Case:
    path: Path
    exploit: str
    expect: str
    task: str
    klass: int
    stage: str = "check"
    threads: int | None = None
    gap: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def flag(self) -> str | None:
        return self.expect.removeprefix("flag ") if self.expect.startswith("flag ") else None

    def matches(self, reasons: tuple[str, ...] | list[str]) -> bool:
        """Whether one reason contains every ``&&``-joined substring of one ``||`` alternative."""
        alternatives = [[s.strip() for s in alt.split("&&")] for alt in self.expect.split("||")]
        return any(all(s in r for s in alt) for alt in alternatives for r in reasons)

    def options(self) -> CheckOptions:
        # Checks verify with 4 MiB of inputs: those exploits do not depend on size, and the one
        # large task (the shared softmax example, 16 MiB) is scaled down instead of comparing 4M
        # elements per case. Timing-stage cases keep their task's size: the physical-floor case
        # needs its 64 MiB for its time to be implausible at all.
        return CheckOptions(
            seeds=1,
            distributions=DISTRIBUTIONS,
            repeat_determinism=True,
            threads=self.threads,
            max_bytes=(4 << 20) if self.stage == "check" else -1,
        )


def parse_case(path: Path) -> Case:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    lines = doc.splitlines()
    if len(lines) < 2 or not lines[0].startswith("EXPLOIT:") or not lines[1].startswith("EXPECT:"):
        raise ValueError(f"{path.name}: the docstring must start with the EXPLOIT and EXPECT lines")
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep or key.strip() not in KEYS:
            break  # the header is over: free text follows
        fields[key.strip()] = value.strip()
    missing = [k for k in ("TASK", "CLASS") if k not in fields]
    if missing:
        raise ValueError(f"{path.name}: header lacks {', '.join(missing)}")
    stage = fields.get("EXPECT_STAGE", "check")
    if stage not in ("check", "bench"):
        raise ValueError(f"{path.name}: EXPECT_STAGE must be check or bench, not {stage!r}")
    return Case(
        path=path,
        exploit=fields["EXPLOIT"],
        expect=fields["EXPECT"],
        task=fields["TASK"],
        klass=int(fields["CLASS"]),
        stage=stage,
        threads=int(fields["THREADS"]) if "THREADS" in fields else None,
        gap=fields.get("GAP"),
    )


def discover() -> list[Case]:
    return [parse_case(p) for p in sorted(CASES_DIR.glob("*.py")) if not p.name.startswith("_")]


CASES = discover()


def params(stage: str) -> list[object]:
    out = []
    for c in CASES:
        if c.stage != stage:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=f"harness gap: {c.gap}")] if c.gap else []
        out.append(pytest.param(c, id=c.name, marks=marks))
    return out


def task_path(case: Case) -> Path:
    path = (ROOT / case.task).resolve()
    if not path.is_file():
        pytest.skip(f"task file {case.task} not present")
    return path


def judge(case: Case, passed: bool, reasons: tuple[str, ...], flags: tuple[str, ...]) -> None:
    if case.expect == "pass":
        assert passed, f"{case.name}: a correct solution was rejected: {list(reasons)}"
    elif case.flag is not None:
        assert not passed or any(case.flag in f for f in flags), (
            f"{case.name}: passed without the {case.flag!r} flag; flags: {list(flags)}"
        )
    else:
        assert not passed, f"{case.name}: a cheat passed ({case.exploit})"
        assert case.matches(reasons), (
            f"{case.name}: rejected, but not for the expected reason {case.expect!r}: {list(reasons)}"
        )


def test_case_headers_are_complete() -> None:
    """The suite's own contract: enough cases of each kind, every task file present."""
    cheats = [c for c in CASES if c.expect != "pass"]
    correct = [c for c in CASES if c.expect == "pass"]
    assert len(cheats) >= 25 and len(correct) >= 10, (len(cheats), len(correct))
    assert {c.klass for c in cheats} >= set(range(1, 11))
    assert all(c.klass == 0 for c in correct)
    for c in CASES:
        assert (ROOT / c.task).resolve().is_file() or c.task.startswith("../"), c.task


@pytest.mark.parametrize("case", params("check"))
def test_check(case: Case) -> None:
    verdict = api.check(task_path(case), case.path, case.options())
    judge(case, verdict.passed, verdict.reasons, verdict.flags)


@pytest.mark.parametrize("case", params("bench"))
def test_bench(case: Case) -> None:
    """Timing-stage cheats: correct when verified, caught (or not) while being timed."""
    result = api.bench(task_path(case), case.path, check_options=case.options(), timing_options=TIMING)
    reasons = result.verdict.reasons + result.reasons
    judge(case, result.passed, reasons, result.verdict.flags + result.flags)
