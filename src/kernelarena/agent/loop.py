"""The coder/judge loop (CudaForge): the coder writes or revises a solution each round, the
verifier and the timer judge it in sandboxed workers, the judge LLM reads their words and asks
for ONE fix or ONE optimization, which goes to the next round.

Candidate code is untrusted: it is written to ``<run_dir>/round_<k>.py`` and evaluated ONLY
through :func:`kernelarena.api.check` / :func:`kernelarena.api.bench` (fresh worker processes);
this process never imports it. A candidate the verifier rejects is fed back as such and never
becomes the best. Every call and attempt is recorded; a killed run resumes with the same run id:
recorded replies are served from the store (nothing paid twice) and recorded evaluations of the
same code are reused, so the prompts, hence the lookups, stay identical.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena.agent.extract import extract_code
from kernelarena.agent.prompt import (
    coder_prompt,
    judge_prompt,
    machine_text,
    reference_source,
    revise_prompt,
    vectorization_report,
)
from kernelarena.agent.providers import BudgetExceeded, Completion, Message, Provider, ProviderError
from kernelarena.agent.records import AgentStore, code_hash
from kernelarena.types import CheckOptions, Task, TimingOptions, to_jsonable

log = logging.getLogger(__name__)

# words of the verifier's reasons that mean "broke the rules" rather than "computed wrongly"
_CHEAT_WORDS = re.compile(
    r"policy|forbidden|disallowed|not allowed|torch (compute )?op|fallback|tamper|patch|monkey|"
    r"implausib|cach|frame|reference model|static",
    re.I,
)


@dataclass
class RoundResult:
    round: int
    verdict: str  # "pass" | "fail" (wrong/crash) | "cheat" (rejected by the rules) | "no-code" | "error"
    speedup: float | None = None
    speedup_ci: tuple[float, float] | None = None
    solution: str | None = None  # path of round_<k>.py
    reasons: tuple[str, ...] = ()
    feedback: str | None = None  # the judge's advice given after this round

    def summary(self) -> dict[str, Any]:
        return {"round": self.round, "verdict": self.verdict, "speedup": self.speedup}


@dataclass
class AgentResult:
    run_id: str
    task: str
    best_speedup: float | None
    best_solution: str | None
    best_round: int | None
    rounds: list[RoundResult] = field(default_factory=list)
    llm_calls: int = 0  # calls answered (paid or served from the store on resume)
    paid_calls: int = 0  # calls that reached a provider
    stopped: str = "rounds"  # rounds | budget | plateau | provider error: ...
    verifier_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "best_speedup": self.best_speedup,
            "best_solution": self.best_solution,
            "best_round": self.best_round,
            "rounds": [r.summary() for r in self.rounds],
            "llm_calls": self.llm_calls,
            "paid_calls": self.paid_calls,
            "stopped": self.stopped,
            "verifier_s": round(self.verifier_s, 3),
        }


@dataclass
class LoopOptions:
    rounds: int = 10
    backend: str = "c"
    patience: int = 3  # rounds without a >= min_gain improvement of the best (once one exists)
    min_gain: float = 0.02
    check_options: CheckOptions = field(default_factory=CheckOptions)
    timing_options: TimingOptions = field(default_factory=lambda: TimingOptions(budget_s=1.0))
    temperature: float = 0.2
    max_tokens: int = 4096
    judge: bool = True  # False: the coder gets the verifier's words only


# a compiler's message quotes paths (~/.cache/...) and source text: it is never a rules verdict
_COMPILE_ERROR = re.compile(r"CompileError|gcc failed|compil(e|ation) (error|failed)", re.I)


def classify(reasons: tuple[str, ...] | list[str], timing_rejected: bool = False) -> str:
    rules = [r for r in reasons if not _COMPILE_ERROR.search(r)]
    if timing_rejected or any(_CHEAT_WORDS.search(r) for r in rules):
        return "cheat"
    return "fail"


def evaluate(task: Task, path: Path, opts: LoopOptions) -> dict[str, Any]:
    """Verify with the full guards, then time when it passes, in sandboxed workers; plain data.

    One :func:`kernelarena.api.bench` call: it runs the same verification as ``api.check`` (same
    guards, same options) in the worker pair it then times with, which saves starting a second
    pair of workers per candidate; a failing candidate is never timed.
    """
    from kernelarena import api

    t0 = time.perf_counter()
    b = api.bench(task, path, check_options=opts.check_options, timing_options=opts.timing_options)
    v = b.verdict
    ev: dict[str, Any] = {"reasons": list(v.reasons), "verdict": to_jsonable(v)}
    if not v.passed:
        ev["status"] = classify(v.reasons)
    elif b.reasons or not b.passed:
        ev["status"] = classify(tuple(b.reasons), timing_rejected=bool(b.reasons))
        ev["reasons"] = list(b.reasons) or list(v.reasons)
    else:
        ev["status"] = "pass"
        ev["speedup"] = b.speedup
        ev["speedup_ci"] = list(b.speedup_ci) if b.speedup_ci else None
        ev["roofline"] = b.percent_of_roofline
        ev["flags"] = list(b.flags)
    ev["verifier_s"] = time.perf_counter() - t0
    return ev


class _Counted:
    """Counts the calls through a provider (all, and those that were paid)."""

    def __init__(self, inner: Provider):
        self.inner, self.name, self.model = inner, inner.name, inner.model
        self.calls = 0
        self.paid = 0

    def complete(
        self, messages: list[Message], *, temperature: float = 0.2, max_tokens: int = 4096
    ) -> Completion:
        c = self.inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        self.calls += 1
        self.paid += 0 if c.cached else 1
        return c


def coder_judge_loop(
    task: Task,
    coder: Provider,
    judge: Provider | None,
    *,
    store: AgentStore,
    run_id: str,
    run_dir: Path,
    opts: LoopOptions,
    db_path: Path | None = None,
    examples: list[tuple[str, float]] | None = None,
    progress: Callable[[str], None] | None = None,
    evaluator: Callable[[Task, Path, LoopOptions], dict[str, Any]] | None = None,
) -> AgentResult:
    """Run the loop; providers should be :class:`RecordingProvider` s sharing ``run_id``.

    ``evaluator`` defaults to :func:`evaluate` (looked up at call time).
    """
    evaluator = evaluator or globals()["evaluate"]
    run_dir.mkdir(parents=True, exist_ok=True)
    cdr, jdg = _Counted(coder), _Counted(judge) if judge is not None else None
    recorded = {a["round"]: a for a in store.attempts(run_id) if a["candidate"] == 0}
    first = coder_prompt(task, opts.backend, machine=machine_text(db_path), examples=examples or [])
    result = AgentResult(
        run_id=run_id, task=task.name, best_speedup=None, best_solution=None, best_round=None
    )
    best_code: str | None = None
    since_gain = 0
    last_reply: str | None = None
    last_ev: dict[str, Any] = {}
    feedback: str | None = None
    say = progress or (lambda s: None)

    for k in range(1, opts.rounds + 1):
        msgs = first if last_reply is None else revise_prompt(first, last_reply, last_ev, feedback, best_code)
        try:
            reply = cdr.complete(msgs, temperature=opts.temperature, max_tokens=opts.max_tokens).text
        except BudgetExceeded as e:
            result.stopped = f"budget: {e}"
            break
        except ProviderError as e:
            if cdr.calls == 0:
                raise
            result.stopped = f"provider error: {e}"
            break
        code = extract_code(reply)
        rr = RoundResult(round=k, verdict="no-code")
        ev: dict[str, Any]
        if code is None:
            ev = {"status": "no-code", "reasons": ["the reply contained no usable solution (no ModelNew)"]}
            path = None
        else:
            path = run_dir / f"round_{k}.py"
            path.write_text(code)
            prev = recorded.get(k)
            prev_ev = (prev.get("extra") or {}).get("ev") if prev else None
            if prev and prev["code_hash"] == code_hash(code) and isinstance(prev_ev, dict):
                ev = prev_ev  # resumed: the same code was evaluated already
            else:
                try:
                    ev = evaluator(task, path, opts)
                except Exception as e:  # a harness failure on this candidate is a failed round
                    log.warning("round %d: evaluation failed: %s", k, e)
                    ev = {"status": "error", "reasons": [f"{type(e).__name__}: {e}"]}
            rr.solution = str(path)
        result.verifier_s += float(ev.get("verifier_s") or 0.0)
        rr.verdict = ev["status"]
        rr.reasons = tuple(ev.get("reasons") or ())
        if ev["status"] == "pass":
            rr.speedup = ev.get("speedup")
            ci = ev.get("speedup_ci")
            rr.speedup_ci = (float(ci[0]), float(ci[1])) if ci else None
        gained = False
        if (
            rr.verdict == "pass"
            and rr.speedup is not None
            and (result.best_speedup is None or rr.speedup > result.best_speedup)
        ):
            gained = result.best_speedup is None or rr.speedup >= result.best_speedup * (1 + opts.min_gain)
            result.best_speedup, result.best_solution, result.best_round = rr.speedup, rr.solution, k
            best_code = code
        since_gain = 0 if gained else since_gain + 1
        ev_shown = {**ev, "best_speedup": result.best_speedup}
        store.record_attempt(
            run_id, k, 0, code, str(path) if path else None, ev.get("verdict"), rr.speedup, rr.speedup_ci,
            rr.verdict == "pass", None if rr.verdict == "pass" else "; ".join(rr.reasons)[:2000] or rr.verdict,
            extra={"status": rr.verdict, "ev": ev, "backend": opts.backend, "task_path": str(task.path),
                   "task_source": reference_source(task), "roofline": ev.get("roofline")},
        )  # fmt: skip
        result.rounds.append(rr)
        say(f"round {k}: {rr.verdict}" + (f" {rr.speedup:.2f}x" if rr.speedup is not None else ""))
        last_reply, last_ev = reply, ev_shown
        if k == opts.rounds:
            break
        if result.best_speedup is not None and since_gain >= opts.patience:
            result.stopped = "plateau"
            break
        feedback = None
        if jdg is not None:
            profile = vectorization_report(code) if (code and opts.backend == "c") else None
            try:
                feedback = jdg.complete(judge_prompt(task, code, ev_shown, profile=profile),
                                        temperature=opts.temperature, max_tokens=1024).text  # fmt: skip
            except BudgetExceeded as e:
                result.stopped = f"budget: {e}"
                break
            except ProviderError as e:
                result.stopped = f"provider error: {e}"
                break
            rr.feedback = feedback
    result.llm_calls = cdr.calls + (jdg.calls if jdg else 0)
    result.paid_calls = cdr.paid + (jdg.paid if jdg else 0)
    return result
