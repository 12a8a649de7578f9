"""``karena``: the command line. Thin: parse, call the library, render text or one JSON object.

Exit codes: 0 accepted / success, 1 rejected, 2 the command could not run (bad input).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.errors import UsageError
from kernelarena.types import CheckOptions, TimingOptions, to_jsonable

log = logging.getLogger("kernelarena")


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    if t and t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--db", type=Path, help=f"SQLite store (default {settings.db_path()})")
    p.add_argument("--no-store", action="store_true", help="do not read or write the store")
    p.add_argument("--fresh", action="store_true", help="re-run even if an identical record is stored")
    p.add_argument("-v", "--verbose", action="store_true")


def _check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", choices=("strict", "lenient"), default="strict",
                   help="strict: torch compute ops in forward are rejected; lenient: flagged")  # fmt: skip
    p.add_argument("--seeds", type=int, default=2, help="secret seeds per variant (default 2)")
    p.add_argument("--quick", action="store_true", help="fewer seeds and distributions (for iteration)")
    p.add_argument("--max-bytes", type=_size, default=-1,
                   help="scale size globals down until a case (inputs, parameters, outputs) fits (e.g. 256M; default: 1/24 of "
                        "the machine's available memory, at most 1G)")  # fmt: skip
    p.add_argument("--threads", type=int, help="threads for kernels and torch (default: all cores)")
    p.add_argument("--timeout", type=float, help="seconds per worker request (default 120)")
    p.add_argument("--memory-gb", type=float, help="worker address-space limit (default 16)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the candidate runs (cpu: Triton solutions run under the interpreter)")  # fmt: skip


def _timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", choices=("cold", "warm"), default="cold")
    p.add_argument("--mode", choices=("offline", "server", "both"), default="offline",
                   help="offline: back to back; server: random idle gaps (seeded)")  # fmt: skip
    p.add_argument("--budget", type=float, default=3.0, help="timing seconds per side (default 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="karena", description="Verify, time and search compute kernels.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="verify a solution against a task")
    p.add_argument("task", help="task file or built-in task name (e.g. rmsnorm)")
    p.add_argument("solution", help="solution file defining ModelNew")
    _check_args(p)
    _common(p)

    p = sub.add_parser("bench", help="verify, then time a solution against a baseline")
    p.add_argument("task")
    p.add_argument("solution")
    p.add_argument("--baseline", default="eager", help="eager | compile | PATH to a solution file")
    _check_args(p)
    _timing_args(p)
    _common(p)

    p = sub.add_parser("tasks", help="list tasks")
    p.add_argument("--suite", default="llm", help="built-in suite name or a directory (default llm)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("suite", help="evaluate many task/solution pairs")
    ssub = p.add_subparsers(dest="suite_command", required=True)
    r = ssub.add_parser("run", help="check (and time) every pair of a suite")
    r.add_argument("suite", help="built-in suite name (llm) or a directory of task files")
    r.add_argument(
        "--solutions",
        required=True,
        help="directory of solution files named like the tasks, 'builtin' (C on CPU, Triton on CUDA) or "
        "'builtin:numba'",
    )
    r.add_argument("--baseline", default="eager", help="eager | compile | none (verify only)")
    r.add_argument("--jobs", type=int, default=1, help="pairs verified in parallel (timing is serialized)")
    r.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="local processes or a Ray cluster"
    )
    r.add_argument("--ray-address", help="Ray cluster address (default: start Ray on this machine)")
    r.add_argument("--full", action="store_true",
                   help="thorough: 2 seeds, every input distribution, determinism rerun, 3 s timing per side "
                        "(overrides --quick, --seeds and --budget)")  # fmt: skip
    _check_args(r)
    _timing_args(r)
    _common(r)

    p = sub.add_parser("hw", help="measure (or show) this machine's profile: caches, bandwidth, peak FLOP/s")
    p.add_argument("--refresh", action="store_true", help="measure again even if a profile is stored")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", type=Path)

    p = sub.add_parser(
        "lint", help="flag weak tasks (near-constant outputs, passing canaries, ignored inputs)"
    )
    p.add_argument("target", help="task file, built-in name, suite name or directory")
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-bytes", type=_size, default=256 << 20)

    p = sub.add_parser("tune", help="search a task's kernel templates for the fastest verified config")
    p.add_argument("task")
    p.add_argument("--template", help="template name (default: the task's own templates)")
    p.add_argument(
        "--strategy", default="evolutionary", help="exhaustive | random | tpe | cmaes | evolutionary | model"
    )
    p.add_argument("--budget-s", type=float, help="wall-clock budget in seconds")
    p.add_argument("--budget-evals", type=int, help="number of configs to measure")
    p.add_argument("--lite", action="store_true", help="search the small hardware-derived space")
    p.add_argument("--out", type=Path, help="write the winning solution file here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rank-top",
        type=int,
        default=3,
        help="configs re-timed against the baseline, interleaved, for the reported figure (0: screening only)",
    )
    _common(p)

    p = sub.add_parser("report", help="summarize stored records (terminal table or HTML with plots)")
    p.add_argument("--html", type=Path, help="write an HTML report with plots here")
    p.add_argument("--task", help="only this task")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", type=Path)

    p = sub.add_parser("advise", help="which priced machine kind serves a call mix cheapest (stored results)")
    p.add_argument("suite", help="suite name or directory: its tasks make the call mix")
    p.add_argument("--prices", type=Path, required=True, help='TOML: [machines."MACHINE"] usd_per_hour = X')
    p.add_argument(
        "--mix", type=Path, help="TOML: [calls_per_s] TASK = rate (default: 1 call/s of each task)"
    )
    p.add_argument("--latency-ms", type=float, help="per-call latency target (median service time)")
    p.add_argument("--utilization", type=float, default=0.7, help="target busy fraction per machine")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db", type=Path)

    p = sub.add_parser("agent", help="let an LLM write a kernel: coder/judge loop through the verifier")
    p.add_argument("task", help="task file or built-in task name (e.g. rmsnorm), or `suite`")
    p.add_argument("suite_name", nargs="?", help="with `suite`: a suite name or directory (e.g. llm)")
    p.add_argument("--jobs", type=int, default=1, help="with `suite`: tasks run at a time")
    p.add_argument("--model", default="", help="model name on the endpoint (default: llm.toml's)")
    p.add_argument("--judge-model", help="model of the judge (default: --model)")
    p.add_argument("--provider", choices=("openai", "anthropic", "replay"), default="openai",
                   help="openai: any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ollama, hosted)")  # fmt: skip
    p.add_argument("--api-base", help="endpoint URL (default $KARENA_LLM_BASE_URL); key: $KARENA_LLM_API_KEY")
    p.add_argument(
        "--api-key", help="API key (prefer $KARENA_LLM_API_KEY: a flag shows in `ps`); never stored"
    )
    p.add_argument("--replay", type=Path,
                   help="recording to play back with --provider replay (default: the shipped one of the task)")  # fmt: skip
    p.add_argument("--strategy", choices=("judge", "plain", "evolve"), default="judge",
                   help="judge: a judge LLM advises each round (CudaForge); plain: verifier feedback only; "
                        "evolve: a population evolved by LLM mutation/crossover (--population, --generations)")  # fmt: skip
    p.add_argument("--population", type=int, default=8, help="programs per generation (--strategy evolve)")
    p.add_argument(
        "--generations", type=int, default=4, help="generations, the first included (--strategy evolve)"
    )
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--patience", type=int, default=3, help="stop after this many rounds without a gain")
    p.add_argument("--backend", choices=("c", "numba"), default="c")
    p.add_argument("--budget-usd", type=float, help="stop when the LLM calls cost this much")
    p.add_argument("--budget-tokens", type=int, help="stop when the LLM calls used this many tokens")
    p.add_argument("--no-retrieval", action="store_true", help="no past verified solutions as examples")
    p.add_argument("--run-id", help="resume this run (recorded LLM calls are not paid again)")
    p.add_argument("--run-dir", type=Path, help="where round_<k>.py files go (default next to the store)")
    p.add_argument("--llm-timeout", type=float, default=120.0, help="seconds per LLM request")
    p.add_argument("--seeds", type=int, default=2, help="secret seeds per variant (default 2)")
    p.add_argument("--budget", type=float, default=1.0, help="timing seconds per side (default 1)")
    p.add_argument(
        "--max-bytes", type=_size, default=-1, help="scale the task's sizes down to fit (e.g. 64M)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--db", type=Path, help=f"SQLite store (default {settings.db_path()})")
    p.add_argument("-v", "--verbose", action="store_true")

    p = sub.add_parser("export", help="write verified (task, solution, verdict, speedup) records")
    p.add_argument("--format", choices=("jsonl", "json"), default="jsonl")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--include-rejected", action="store_true", help="also rejected attempts, labelled")
    p.add_argument("--db", type=Path)
    p.add_argument("--json", action="store_true")
    return parser


def _store(args: argparse.Namespace) -> Any:
    if getattr(args, "no_store", False):
        return None
    from kernelarena.store.sqlite import Store

    return Store(args.db or settings.db_path())


def _check_options(args: argparse.Namespace) -> CheckOptions:
    base = CheckOptions.quick() if args.quick else CheckOptions()
    return CheckOptions(
        policy=args.policy,
        seeds=1 if args.quick else args.seeds,
        distributions=base.distributions,
        repeat_determinism=base.repeat_determinism,
        timeout_s=args.timeout,
        memory_bytes=int(args.memory_gb * (1 << 30)) if args.memory_gb else None,
        threads=args.threads,
        max_bytes=args.max_bytes,
        device=args.device,
    )


def _timing_options(args: argparse.Namespace, mode: str) -> TimingOptions:
    return TimingOptions(cache=args.cache, mode=mode, budget_s=args.budget, threads=args.threads)  # type: ignore[arg-type]


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(to_jsonable(payload)))
    else:
        print(text)


def _verdict_text(v: Any) -> str:
    lines = [f"verdict: {v.verdict.upper()}  ({len(v.cases)} cases, {v.elapsed_s:.1f} s)"]
    lines += [f"  reason: {r}" for r in v.reasons]
    lines += [f"  flag:   {f}" for f in v.flags]
    lines += [f"  note:   {n}" for n in v.notes]
    return "\n".join(lines)


def _verdict_json(v: Any) -> dict[str, Any]:
    return {
        "verdict": v.verdict,
        "reasons": list(v.reasons),
        "flags": list(v.flags),
        "notes": list(v.notes),
        "variants": sorted({c.variant for c in v.cases}),
        "cases": to_jsonable(v.cases),
        "checked": list(v.checked),
        "not_checked": list(v.not_checked),
        "elapsed_s": v.elapsed_s,
    }


def cmd_check(args: argparse.Namespace) -> int:
    from kernelarena import api

    store = _store(args)
    v = api.check(args.task, args.solution, _check_options(args), store=store, fresh=args.fresh)
    _emit(args, _verdict_json(v), _verdict_text(v))
    return 0 if v.passed else 1


def _bench_payload(b: Any) -> dict[str, Any]:
    out = _verdict_json(b.verdict)
    out.update(
        {
            "verdict": "pass" if b.passed else "fail",
            "reasons": list(b.verdict.reasons) + list(b.reasons),
            "flags": list(b.verdict.flags) + list(b.flags),
            "baseline": b.baseline_kind,
            "speedup": b.speedup,
            "speedup_ci": list(b.speedup_ci) if b.speedup_ci else None,
            "candidate_ms": b.candidate.median_ms if b.candidate else None,
            "baseline_ms": b.baseline.median_ms if b.baseline else None,
            "candidate": to_jsonable(b.candidate) if b.candidate else None,
            "baseline_measurement": to_jsonable(b.baseline) if b.baseline else None,
            "unstable": b.unstable,
            "percent_of_roofline": b.percent_of_roofline,
            "code_path": b.code_path,
            "metrics": to_jsonable(b.metrics) if b.metrics else None,
        }
    )
    for key in ("candidate", "baseline_measurement"):
        if out[key]:
            out[key].pop("samples_ms", None)
    return out


def _bench_text(b: Any) -> str:
    text = _verdict_text(b.verdict)
    if b.candidate and b.baseline:
        c, s = b.candidate, b.baseline
        text += (
            f"\ncandidate {c.median_ms:.4g} ms (IQR {c.iqr_ms:.2g})  baseline[{b.baseline_kind}] {s.median_ms:.4g} ms"
            f" (IQR {s.iqr_ms:.2g})  {c.calls} calls/side in {c.rounds} interleaved rounds, cache {c.cache},"
            f" mode {c.mode}, {c.threads} threads{f', path {b.code_path}' if b.code_path else ''}"
            f"\nspeedup {b.speedup:.3f}x  95% CI [{b.speedup_ci[0]:.3f}, {b.speedup_ci[1]:.3f}]"
        )
        if b.percent_of_roofline is not None:
            text += f"  ({b.percent_of_roofline:.0f}% of roofline)"
    if b.metrics is not None:
        from kernelarena.timing.metrics import describe

        text += "".join(f"\n{line}" for line in describe(b.metrics))
    text += "".join(f"\n  reason: {r}" for r in b.reasons)
    text += "".join(f"\n  flag:   {f}" for f in b.flags)
    return text


def cmd_bench(args: argparse.Namespace) -> int:
    from kernelarena import api

    store = _store(args)
    modes = ["offline", "server"] if args.mode == "both" else [args.mode]
    results: list[tuple[str, Any]] = []
    for mode in modes:  # the second mode reuses the first one's verification
        verified = results[0][1].verdict if results else None
        b = api.bench(
            args.task,
            args.solution,
            baseline=args.baseline,
            check_options=_check_options(args),
            timing_options=_timing_options(args, mode),
            store=store,
            fresh=args.fresh,
            progress=(lambda m: log.info(m)),
            verified=verified,
        )
        results.append((mode, b))
    payload = _bench_payload(results[0][1])
    if len(results) > 1:
        payload["modes"] = {m: {"speedup": b.speedup, "speedup_ci": b.speedup_ci,
                                "candidate_ms": b.candidate.median_ms if b.candidate else None,
                                "baseline_ms": b.baseline.median_ms if b.baseline else None}
                            for m, b in results}  # fmt: skip
    text = "\n\n".join(
        f"[mode {m}]\n{_bench_text(b)}" if len(results) > 1 else _bench_text(b) for m, b in results
    )
    _emit(args, payload, text)
    return 0 if all(b.passed for _, b in results) else 1


def cmd_tasks(args: argparse.Namespace) -> int:
    from kernelarena.report.table import table
    from kernelarena.suite import resolve_suite
    from kernelarena.tasks.loader import list_tasks

    tasks = list_tasks(resolve_suite(args.suite))
    payload = {
        "tasks": [
            {
                "name": t.name,
                "path": str(t.path),
                "category": t.category,
                "source": t.source,
                "variants": [v.overrides for v in t.variants],
            }
            for t in tasks
        ]
    }
    rows = [[t.name, t.category, len(t.variants), t.source[:60]] for t in tasks]
    _emit(args, payload, table(["task", "category", "variants", "source"], rows) + f"\n{len(tasks)} tasks")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from kernelarena.report.table import suite_table
    from kernelarena.suite import resolve_suite, run_suite, solutions_dir

    if args.full:
        args.quick, args.seeds, args.budget = False, 2, 3.0
    suite = resolve_suite(args.suite)
    solutions = solutions_dir(args.solutions, args.device)
    baseline = None if args.baseline == "none" else args.baseline
    t0 = time.monotonic()

    def progress(done: int, total: int, res: dict[str, Any]) -> None:
        sp = f" {res['speedup']:.2f}x" if res.get("speedup") else ""
        why = f"  ({res['reasons'][0][:90]})" if res.get("verdict") == "fail" and res.get("reasons") else ""
        print(f"[{done}/{total} {time.monotonic() - t0:5.0f}s] {res['task']}: {res['verdict'] or 'no solution'}{sp}{why}",
              file=sys.stderr, flush=True)  # fmt: skip

    summary = run_suite(suite, solutions, baseline=baseline, jobs=args.jobs, check_options=_check_options(args),
                        timing_options=_timing_options(args, "offline" if args.mode == "both" else args.mode),
                        store=_store(args), fresh=args.fresh, progress=progress,
                        executor=args.executor, ray_address=args.ray_address)  # fmt: skip
    _emit(args, summary, suite_table(summary))
    return 0


def cmd_hw(args: argparse.Namespace) -> int:
    from kernelarena import hw

    prof = hw.load_or_measure(args.db or settings.db_path(), refresh=args.refresh, quick=args.quick)
    _emit(args, json.loads(prof.to_json()), hw.describe(prof))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    from kernelarena.verify.lint import lint_target, lint_text

    reports = lint_target(args.target, max_bytes=args.max_bytes)
    _emit(
        args,
        {"tasks": to_jsonable(reports), "clean": all(not r.findings for r in reports)},
        lint_text(reports),
    )
    return 0 if all(not r.findings for r in reports) else 1


def cmd_tune(args: argparse.Namespace) -> int:
    from kernelarena.tune import run_tune_command

    return run_tune_command(args, _store(args), _emit)


def cmd_report(args: argparse.Namespace) -> int:
    from kernelarena.report.summary import run_report

    return run_report(args, _emit)


def cmd_advise(args: argparse.Namespace) -> int:
    from kernelarena import advise
    from kernelarena.suite import resolve_suite
    from kernelarena.tasks.loader import task_files

    suite = resolve_suite(args.suite)
    tasks = [p.stem for p in task_files(suite)]
    db = args.db or settings.db_path()
    if not Path(db).exists():
        raise UsageError(f"no store at {db}: run `karena suite run` or `karena bench` first")
    a = advise.advise(db, tasks, suite.name, advise.read_prices(args.prices), advise.read_mix(args.mix, tasks),
                      latency_ms=args.latency_ms, utilization=args.utilization)  # fmt: skip
    _emit(args, to_jsonable(a), advise.render(a))
    return 0 if a.best else 1


def cmd_agent(args: argparse.Namespace) -> int:
    from kernelarena.agent import ProviderError, bundled_replay, run
    from kernelarena.errors import TaskError
    from kernelarena.tasks.loader import load_task

    if args.task == "suite":
        return _agent_suite(args)
    if args.suite_name:
        raise UsageError(f"unexpected argument {args.suite_name!r} (did you mean `karena agent suite NAME`?)")

    try:
        task = load_task(args.task, max_bytes=args.max_bytes)
    except (TaskError, UsageError) as exc:
        raise UsageError(f"the task does not load: {exc}") from None
    if args.strategy == "evolve" and (args.population < 1 or args.generations < 1):
        raise UsageError("--population and --generations must be at least 1")
    replay = args.replay
    if args.provider == "replay" and replay is None:
        replay = bundled_replay(task.name)
        if replay is None:
            raise UsageError(f"no shipped recording for {task.name}: pass --replay FILE.jsonl")
    say = (lambda m: print(m, file=sys.stderr)) if not args.json or args.verbose else None
    try:
        res = run(
            task, model=args.model, provider=args.provider, strategy=args.strategy, rounds=args.rounds,
            backend=args.backend, judge_model=args.judge_model, api_base=args.api_base, api_key=args.api_key,
            replay=replay,
            budget_usd=args.budget_usd, budget_tokens=args.budget_tokens, run_id=args.run_id, db=args.db,
            run_dir=args.run_dir, retrieval=not args.no_retrieval, patience=args.patience,
            check_options=CheckOptions(seeds=args.seeds, max_bytes=args.max_bytes),
            timing_options=TimingOptions(budget_s=args.budget), timeout_s=args.llm_timeout, progress=say,
            population=args.population, generations=args.generations,
        )  # fmt: skip
    except ProviderError as exc:
        raise UsageError(str(exc)) from None
    payload = res.to_json()
    lines = [f"run {res.run_id}: {len(res.rounds)} rounds, {res.llm_calls} LLM calls, stopped: {res.stopped}"]
    for r in res.rounds:
        sp = f" {r.speedup:.2f}x" if r.speedup is not None else ""
        lines.append(f"  round {r.round}: {r.verdict}{sp}")
    lines.append(
        f"best: {res.best_speedup:.2f}x  {res.best_solution}" if res.best_speedup is not None
        else "best: none (no verified solution)"
    )  # fmt: skip
    _emit(args, payload, "\n".join(lines))
    return 0 if res.best_solution is not None else 1


def _agent_suite(args: argparse.Namespace) -> int:
    from kernelarena.agent import ProviderError, run_suite

    if not args.suite_name:
        raise UsageError(
            "`karena agent suite` needs a suite name or directory, e.g. `karena agent suite llm`"
        )
    if args.provider == "replay" and args.replay is None:
        raise UsageError("a suite run with --provider replay needs --replay FILE.jsonl")
    say = (lambda m: print(m, file=sys.stderr)) if not args.json or args.verbose else None
    try:
        res = run_suite(
            args.suite_name, model=args.model, jobs=args.jobs, run_id=args.run_id, budget_usd=args.budget_usd,
            budget_tokens=args.budget_tokens, progress=say, provider=args.provider, strategy=args.strategy,
            rounds=args.rounds, backend=args.backend, judge_model=args.judge_model, api_base=args.api_base,
            api_key=args.api_key, replay=args.replay, db=args.db, retrieval=not args.no_retrieval,
            patience=args.patience, check_options=CheckOptions(seeds=args.seeds, max_bytes=args.max_bytes),
            timing_options=TimingOptions(budget_s=args.budget), timeout_s=args.llm_timeout,
            population=args.population, generations=args.generations,
        )  # fmt: skip
    except ProviderError as exc:
        raise UsageError(str(exc)) from None
    lines = [
        f"suite run {res['run_id']}: {res['solved']}/{len(res['tasks'])} tasks solved, {res['llm_calls']} LLM calls"
    ]
    for r in res["tasks"]:
        sp = f"{r['best_speedup']:.2f}x" if r["best_speedup"] is not None else "none"
        lines.append(f"  {r['task']}: {sp}  (stopped: {r['stopped']})")
    _emit(args, res, "\n".join(lines))
    return 0 if res["solved"] else 1


def cmd_export(args: argparse.Namespace) -> int:
    from kernelarena.agent.export import export

    db = args.db or settings.db_path()
    if not Path(db).is_file():
        raise UsageError(f"no store at {db}: run `karena agent ...` first or pass --db")
    n = export(db, args.out, fmt=args.format, include_rejected=args.include_rejected)
    _emit(args, {"records": n, "out": str(args.out)}, f"wrote {n} records to {args.out}")
    return 0


COMMANDS = {
    "advise": cmd_advise,
    "check": cmd_check,
    "bench": cmd_bench,
    "tasks": cmd_tasks,
    "suite": cmd_suite,
    "hw": cmd_hw,
    "lint": cmd_lint,
    "tune": cmd_tune,
    "report": cmd_report,
    "agent": cmd_agent,
    "export": cmd_export,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc), "verdict": None}))
        print(f"karena: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("karena: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
