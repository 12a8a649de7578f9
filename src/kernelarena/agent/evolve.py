"""Evolutionary program search (robust-kbench / OpenEvolve / CUDA-L1 style).

A population of ``P`` programs per task. Generation 0 comes from ``P`` coder prompts; every
later generation makes ``P`` children with LLM *mutation* prompts (one parent) and *crossover*
prompts (two parents). Those prompts are contrastive (CUDA-L1): they show the parents WITH their
measured speedups, together with a faster and a slower verified program of the run when there
are some, and one rejected program as a labelled negative example.

Selection is by measured speed among VERIFIED programs only: a wrong program or a cheat never
becomes a parent or the best (it may only appear as a labelled negative example). Diversity: the
population is split into islands (2 when ``P >= 4``) that select parents from their own programs;
every ``migrate_every`` generations each island receives the other's best. Programs are
de-duplicated by code hash: identical code is evaluated once and enters the pool once.

Every child first goes through a cheap pre-filter (:func:`prefilter`: compile + one quick check,
one seed, one distribution, inputs scaled down); only survivors get the full
:func:`kernelarena.agent.loop.evaluate` (sandboxed verification with the full guards + timing).
Candidate code is untrusted and only ever runs in the sandboxed workers.

Every attempt is recorded with ``round = generation`` (0-based) and ``candidate = index``; a run
resumed with the same run id replays the recorded LLM calls (nothing paid twice: the parent
choice is seeded by the run id, so the prompts are the same) and reuses recorded evaluations.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kernelarena.agent.extract import extract_code
from kernelarena.agent.loop import AgentResult, LoopOptions, RoundResult, _Counted, classify
from kernelarena.agent.prompt import coder_prompt, machine_text, reference_source
from kernelarena.agent.providers import BudgetExceeded, Message, Provider, ProviderError
from kernelarena.agent.records import AgentStore, code_hash
from kernelarena.types import Task, to_jsonable

log = logging.getLogger(__name__)

EVOLVE_KEY = "Evolution step"  # a substring of every mutation / crossover prompt
NEGATIVE_KEY = "REJECTED program (a negative example"  # heads the labelled negative example
QUICK_MAX_BYTES = 1 << 20  # the pre-filter scales every input down to about this size

Evaluator = Callable[[Task, Path, LoopOptions], dict[str, Any]]


@dataclass
class EvolveOptions:
    population: int = 8
    generations: int = 4
    islands: int | None = None  # None: 2 when population >= 4, else 1
    migrate_every: int = 2
    crossover_rate: float = 0.5
    temperature: float = 0.8
    loop: LoopOptions = field(default_factory=LoopOptions)


@dataclass
class Program:
    generation: int
    index: int
    code: str | None
    path: str | None
    ev: dict[str, Any]
    island: int = 0

    @property
    def status(self) -> str:
        return str(self.ev.get("status"))

    @property
    def speedup(self) -> float | None:
        s = self.ev.get("speedup")
        return float(s) if self.status == "pass" and s is not None else None

    @property
    def label(self) -> str:
        return f"g{self.generation}c{self.index}"


def prefilter(task: Task, path: Path, opts: LoopOptions) -> dict[str, Any]:
    """Compile + one quick case (one seed, one distribution, inputs scaled down), sandboxed.

    Returns ``{"passed": bool, ...}``; a failure carries the same fields as :func:`evaluate`
    (``status`` fail/cheat, ``reasons``, ``verdict``) and ``stage = "prefilter"``.
    """
    from kernelarena import api

    t0 = time.perf_counter()
    co = replace(opts.check_options, seeds=1, distributions=("as-given",), repeat_determinism=False,
                 max_bytes=QUICK_MAX_BYTES)  # fmt: skip
    v = api.check(task, path, co)
    out: dict[str, Any] = {"passed": v.passed, "verifier_s": time.perf_counter() - t0}
    if not v.passed:
        out.update(status=classify(v.reasons), reasons=list(v.reasons), verdict=to_jsonable(v))
    return out


def _short(code: str, limit: int = 6000) -> str:
    code = code.rstrip()
    return code if len(code) <= limit else code[:limit] + "\n# ... (truncated)"


def evolve_prompt(
    first: list[Message],
    parents: list[Program],
    others: list[Program],
    negative: Program | None,
) -> list[Message]:
    """A mutation (one parent) or crossover (two parents) prompt: the coder prompt, then the
    parents with their measured speedups, other verified programs (faster and slower) and one
    rejected program labelled as such."""
    op = "mutation" if len(parents) == 1 else "crossover"
    parts = [f"{EVOLVE_KEY} ({op}). Verified programs of this task with their MEASURED speedups "
             "over eager PyTorch (higher is better):"]  # fmt: skip
    for n, p in enumerate(parents):
        parts.append(
            f"Parent {'AB'[n]} ({p.speedup:.2f}x, verified):\n```python\n{_short(p.code or '')}\n```"
        )
    for p in others:
        assert p.speedup is not None
        rel = "faster" if p.speedup > max(q.speedup or 0.0 for q in parents) else "slower"
        parts.append(
            f"Another verified program, {rel} ({p.speedup:.2f}x):\n```python\n{_short(p.code or '', 3000)}\n```"
        )
    if negative is not None:
        why = "; ".join((negative.ev.get("reasons") or [])[:3])[:600] or negative.status
        parts.append(f"{NEGATIVE_KEY}; status: {negative.status}; do NOT do this): {why}\n"
                     f"```python\n{_short(negative.code or '', 2000)}\n```")  # fmt: skip
    if op == "mutation":
        parts.append("Write ONE improved variant of Parent A that is faster while staying exactly correct: "
                     "contrast what the faster programs do differently from the slower ones.")  # fmt: skip
    else:
        parts.append("Combine the best ideas of Parent A and Parent B into ONE program that is faster than "
                     "both while staying exactly correct.")  # fmt: skip
    parts.append("Reply with the complete solution file in one ```python block.")
    user = first[-1].content + "\n\n" + "\n\n".join(parts)
    return [*first[:-1], Message("user", user)]


_RANK = {"pass": 0, "fail": 1, "cheat": 2, "error": 3, "no-code": 4}


def evolve_loop(
    task: Task,
    coder: Provider,
    *,
    store: AgentStore,
    run_id: str,
    run_dir: Path,
    opts: EvolveOptions,
    db_path: Path | None = None,
    examples: list[tuple[str, float]] | None = None,
    progress: Callable[[str], None] | None = None,
    evaluator: Evaluator | None = None,
    quick: Evaluator | None = None,
) -> AgentResult:
    """Run the evolution; ``coder`` should be a :class:`RecordingProvider` for ``run_id``.

    ``evaluator`` defaults to :func:`kernelarena.agent.loop.evaluate`, ``quick`` to
    :func:`prefilter` (both looked up at call time)."""
    from kernelarena.agent import loop as _loop

    evaluator = evaluator or _loop.evaluate
    quick = quick or globals()["prefilter"]
    lo = opts.loop
    P = max(1, opts.population)
    n_isl = opts.islands or (2 if P >= 4 else 1)
    run_dir.mkdir(parents=True, exist_ok=True)
    cdr = _Counted(coder)
    rng = random.Random(zlib.crc32(run_id.encode()))
    recorded = {(a["round"], a["candidate"]): a for a in store.attempts(run_id)}
    first = coder_prompt(task, lo.backend, machine=machine_text(db_path), examples=examples or [])
    result = AgentResult(
        run_id=run_id, task=task.name, best_speedup=None, best_solution=None, best_round=None
    )
    result.stopped = "generations"
    say = progress or (lambda s: None)
    seen: dict[str, dict[str, Any]] = {}  # code hash -> evaluation (de-duplication)
    pool: list[list[Program]] = [[] for _ in range(n_isl)]  # verified programs per island
    rejected: list[Program] = []
    stop = False

    def select(isl: int, k: int) -> list[Program]:
        ranked = sorted(pool[isl], key=lambda p: -(p.speedup or 0.0))[:P]
        if len(ranked) <= k:
            return ranked[:k]
        # tournament of 2 among the island's top P: faster programs are chosen more often
        chosen: list[Program] = []
        while len(chosen) < k:
            a, b = rng.sample(ranked, 2)
            win = a if (a.speedup or 0) >= (b.speedup or 0) else b
            if win not in chosen:
                chosen.append(win)
            elif len(ranked) - len(chosen) <= 1:
                chosen.append(next(p for p in ranked if p not in chosen))
        return chosen

    for g in range(max(1, opts.generations)):
        gen: list[Program] = []
        born: list[Program] = []
        if g > 0 and n_isl > 1 and g % opts.migrate_every == 0:
            bests = [max(pl, key=lambda p: p.speedup or 0.0) if pl else None for pl in pool]
            for i, b in enumerate(bests):
                dst = pool[(i + 1) % n_isl]
                if b is not None and all(code_hash(p.code or "") != code_hash(b.code or "") for p in dst):
                    dst.append(replace(b, island=(i + 1) % n_isl))
        for i in range(P):
            isl = i % n_isl
            extra: dict[str, Any] = {"island": isl, "op": "init", "parents": []}
            if g == 0 or not pool[isl]:
                msgs = first
            else:
                two = len(pool[isl]) >= 2 and rng.random() < opts.crossover_rate
                parents = select(isl, 2 if two else 1)
                verified = sorted(
                    (p for pl in pool for p in pl if p not in parents), key=lambda p: p.speedup or 0.0
                )
                top = max(q.speedup or 0.0 for q in parents)
                faster = [p for p in verified if (p.speedup or 0.0) > top][-1:]
                slower = [p for p in verified if (p.speedup or 0.0) < top][:1]
                negative = rejected[rng.randrange(len(rejected))] if rejected else None
                msgs = evolve_prompt(first, parents, faster + slower, negative)
                extra.update(op="mutation" if len(parents) == 1 else "crossover",
                             parents=[p.label for p in parents],
                             parent_speedups=[p.speedup for p in parents])  # fmt: skip
            try:
                temp = opts.temperature
                reply = cdr.complete(msgs, temperature=temp, max_tokens=lo.max_tokens).text
            except BudgetExceeded as e:
                result.stopped, stop = f"budget: {e}", True
                break
            except ProviderError as e:
                if cdr.calls == 0:
                    raise
                result.stopped, stop = f"provider error: {e}", True
                break
            code = extract_code(reply)
            path: Path | None = None
            if code is None:
                ev: dict[str, Any] = {"status": "no-code", "stage": "extract",
                                      "reasons": ["the reply contained no usable solution (no ModelNew)"]}  # fmt: skip
            else:
                path = run_dir / f"gen{g}_cand{i}.py"
                path.write_text(code)
                h = code_hash(code)
                prev = recorded.get((g, i))
                prev_ev = (prev.get("extra") or {}).get("ev") if prev else None
                if h in seen:
                    ev = {**seen[h], "duplicate": True, "verifier_s": 0.0}
                elif prev and prev["code_hash"] == h and isinstance(prev_ev, dict):
                    ev = prev_ev  # resumed: this code was evaluated already
                else:
                    ev = _evaluate(task, path, lo, quick, evaluator, g, i)
                seen.setdefault(h, {k: v for k, v in ev.items() if k != "duplicate"})
            result.verifier_s += float(ev.get("verifier_s") or 0.0)
            prog = Program(g, i, code, str(path) if path else None, ev, isl)
            sp = prog.speedup
            ci = ev.get("speedup_ci") if sp is not None else None
            ci_t = (float(ci[0]), float(ci[1])) if ci else None
            store.record_attempt(
                run_id, g, i, code, prog.path, ev.get("verdict"), sp, ci_t, sp is not None,
                None if sp is not None else "; ".join(ev.get("reasons") or [])[:2000] or prog.status,
                extra={**extra, "status": prog.status, "stage": ev.get("stage"), "ev": ev, "backend": lo.backend,
                       "strategy": "evolve", "task_path": str(task.path), "task_source": reference_source(task),
                       "roofline": ev.get("roofline")},
            )  # fmt: skip
            gen.append(prog)
            if sp is not None and not ev.get("duplicate"):
                born.append(prog)  # a parent from the next generation on
                if result.best_speedup is None or sp > result.best_speedup:
                    result.best_speedup, result.best_solution, result.best_round = sp, prog.path, g
            elif sp is None and code is not None and not ev.get("duplicate"):
                rejected.append(prog)
            say(f"generation {g} candidate {i}: {prog.status}" + (f" {sp:.2f}x" if sp is not None else ""))
        for prog in born:
            pool[prog.island].append(prog)
        if gen:
            b = min(gen, key=lambda p: (_RANK.get(p.status, 9), -(p.speedup or 0.0)))
            result.rounds.append(RoundResult(round=g, verdict=b.status, speedup=b.speedup, solution=b.path,
                                             reasons=tuple(b.ev.get("reasons") or ())))  # fmt: skip
        if stop:
            break
    result.llm_calls, result.paid_calls = cdr.calls, cdr.paid
    return result


def _evaluate(task: Task, path: Path, lo: LoopOptions, quick: Evaluator, evaluator: Evaluator,
              g: int, i: int) -> dict[str, Any]:  # fmt: skip
    """Pre-filter, then (survivors only) the full verification + timing."""
    t0 = time.perf_counter()
    try:
        q = quick(task, path, lo)
        if not q.get("passed"):
            return {**q, "stage": "prefilter"}
        ev = evaluator(task, path, lo)
        ev = {
            **ev,
            "stage": "bench",
            "verifier_s": float(ev.get("verifier_s") or 0.0) + float(q.get("verifier_s") or 0.0),
        }
    except Exception as e:  # a harness failure on this candidate is a failed candidate
        log.warning("generation %d candidate %d: evaluation failed: %s", g, i, e)
        ev = {"status": "error", "stage": "error", "reasons": [f"{type(e).__name__}: {e}"],
              "verifier_s": time.perf_counter() - t0}  # fmt: skip
    return ev
