"""The agent loop on 5 suite tasks with a scripted LLM server (no network, no model).

Per task the scripted coder answers, in order: a torch fallback (the reference ``Model`` renamed
``ModelNew``: a cheat the verifier must reject), a reply with no code, then the built-in C
solution of the task (``kernelarena/solutions/cpu/<task>.py``); the judge's advice is a fixed
sentence. Everything else is real: prompts, extraction, sandboxed verification and timing,
records. Prints the correct rate and the best verified speedup per round, the LLM calls and the
verifier seconds. Usage::

    PYTHONPATH=src python bench/agent_benchmark.py [--tasks rmsnorm,gelu_tanh,...] [--max-bytes 8M]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from llm_server import LLMServer  # noqa: E402

from kernelarena.agent import run  # noqa: E402
from kernelarena.tasks.loader import load_task  # noqa: E402
from kernelarena.types import CheckOptions, TimingOptions  # noqa: E402

TASKS = ("rmsnorm", "gelu_tanh", "layernorm", "swiglu", "logsumexp")
JUDGE = "Fix: do the computation in your own C kernel; torch compute ops in forward are rejected."


def fence(code: str) -> str:
    return f"Here is the solution.\n\n```python\n{code}```\n"


def script_for(task: str) -> list[str]:
    ref = load_task(task).path.read_text()
    cheat = re.sub(r"\bclass Model\(", "class ModelNew(", ref)
    builtin = (ROOT / "src/kernelarena/solutions/cpu" / f"{task}.py").read_text()
    return [fence(cheat), "Sorry, I could not finish the kernel.", fence(builtin)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--max-bytes", default=str(8 << 20))
    ap.add_argument("--budget", type=float, default=0.5, help="timing seconds per side")
    args = ap.parse_args()
    from kernelarena.cli import _size

    tasks = args.tasks.split(",")
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for task in tasks:
            server = LLMServer().start()
            try:
                server.script([JUDGE] * 10, when="ONE concrete fix")
                server.script(script_for(task))
                res = run(task, model="scripted", api_base=server.base_url, rounds=3, patience=10,
                          db=Path(d) / "k.db", run_dir=Path(d) / task, retrieval=False, max_retries=0,
                          check_options=CheckOptions(seeds=1, max_bytes=_size(args.max_bytes)),
                          timing_options=TimingOptions(budget_s=args.budget))  # fmt: skip
            finally:
                server.stop()
            rows.append(res)
            print(f"{task:12s} " + " ".join(f"r{r.round}:{r.verdict}" + (f"({r.speedup:.2f}x)" if r.speedup else "")
                                            for r in res.rounds), flush=True)  # fmt: skip
    n_rounds = max(len(r.rounds) for r in rows)
    print("\nround  correct  best speedup so far (mean over tasks with one)")
    per_round = []
    for k in range(1, n_rounds + 1):
        ok = [any(x.round == k and x.verdict == "pass" for x in r.rounds) for r in rows]
        bests = []
        for r in rows:
            sp = [
                x.speedup for x in r.rounds if x.round <= k and x.verdict == "pass" and x.speedup is not None
            ]
            if sp:
                bests.append(max(sp))
        mean = sum(bests) / len(bests) if bests else None
        per_round.append({"round": k, "correct_rate": sum(ok) / len(rows), "best_speedup_mean": mean})
        print(f"{k:5d}  {sum(ok)}/{len(rows)}     " + (f"{mean:.2f}x ({len(bests)} tasks)" if mean else "-"))
    calls = sum(r.llm_calls for r in rows)
    ver = sum(r.verifier_s for r in rows)
    cheats_best = sum(1 for r in rows if r.best_round == 1)
    print(f"LLM calls: {calls}; verifier seconds: {ver:.1f}; wall: {time.perf_counter() - t0:.1f} s; "
          f"cheats kept as best: {cheats_best}")  # fmt: skip
    print(json.dumps({"per_round": per_round, "llm_calls": calls, "verifier_s": round(ver, 1),
                      "best": {r.task: r.best_speedup for r in rows}}))  # fmt: skip


if __name__ == "__main__":
    main()
