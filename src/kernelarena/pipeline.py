"""The one evaluation pipeline: task loading at the edge, sandboxed workers, the verifier and the
timer's inputs. ``api.check``/``api.bench`` and the search's ``TuningSession`` are built on it, so a
configuration found by ``karena tune`` is judged by the same code as one given to ``karena check``.

This module sits below both ``api`` and ``session`` (neither imports the other's internals).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from kernelarena import settings
from kernelarena.backends.interface import ExtraChecks, backend_of
from kernelarena.errors import TaskError, UsageError
from kernelarena.sandbox import memory
from kernelarena.tasks.loader import largest_case_bytes, load_task
from kernelarena.timing import bench as timing
from kernelarena.types import AUTO_MAX_BYTES, CheckOptions, Solution, Task, Verdict
from kernelarena.verify.verifier import CasePlan, make_case, new_secret, verify
from kernelarena.worker_client import CaseReply, Load, SetupTiming, WorkerClient


def require_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device is available on this machine")
    elif device != "cpu":
        raise UsageError(f"unknown device {device!r} (cpu or cuda)")


def as_task(task: str | Path | Task, max_bytes: int | None) -> Task:
    """A loaded ``Task``; inputs scaled to ``max_bytes`` (AUTO_MAX_BYTES: a share of free memory)."""
    if isinstance(task, Task):
        return task
    if max_bytes != AUTO_MAX_BYTES:
        return load_task(task, max_bytes=max_bytes)
    budget = memory.default_max_bytes()
    t = load_task(task, max_bytes=budget)
    note = (
        f"input budget (--max-bytes) {memory.describe_bytes(budget)}: a share of the "
        f"{memory.describe_bytes(memory.available_bytes() or 0)} of memory available when the check started"
    )
    return replace(t, notes=(*t.notes, note))


def memory_guard(t: Task) -> None:
    """Exit 2 with advice, before any worker starts, when the largest case cannot fit in memory."""
    need = memory.AMPLIFICATION * largest_case_bytes(t) // 2
    problem = memory.headroom_problem(need)
    if problem:
        raise UsageError(f"{t.name}: {problem}")


@contextlib.contextmanager
def memory_errors(t: Task) -> Iterator[None]:
    """A harness that runs out of memory says so (exit 2, with what to do) instead of dying."""
    advice = "lower --max-bytes (inputs are scaled to fit it) or free memory"
    try:
        yield
    except MemoryError:
        raise UsageError(f"{t.name}: the harness process ran out of memory; {advice}") from None
    except TaskError as exc:
        text = str(exc)
        memory_words = ("MemoryError", "out of memory", "can't allocate memory", "Cannot allocate memory")
        if any(w in text for w in memory_words) and advice not in text:
            raise TaskError(f"{text}; {advice}") from None
        raise


@contextlib.contextmanager
def workers(
    options: CheckOptions, candidate_env: dict[str, str] | None = None
) -> Iterator[tuple[WorkerClient, WorkerClient]]:
    """A reference and a candidate worker; both start at once so their interpreter start-up overlaps."""
    ref = WorkerClient("reference", threads=options.threads, memory_bytes=options.memory_bytes)
    try:
        cand = WorkerClient(
            "candidate", threads=options.threads, memory_bytes=options.memory_bytes, env=candidate_env
        )
        try:
            yield ref, cand
        finally:
            cand.close()
    finally:
        ref.close()


def verify_any(t: Task, sol: Solution, options: CheckOptions) -> Verdict:
    """``verify`` in fresh workers, as the solution's backend prepares it for this device, plus the
    backend's extra checks (e.g. Triton on a CPU: the interpreter on small shapes, an sm_90 compile)."""
    be = backend_of(sol)
    prep = be.prepare(t, options)
    with workers(prep.options, candidate_env=prep.candidate_env) as (ref, cand):
        verdict = verify(prep.task, sol.path, prep.options, ref, cand)
        if not prep.candidate_env:  # run natively (not under an interpreter): the memory budget
            secret = prep.options.secret if prep.options.secret is not None else new_secret()
            verdict = with_budget(prep.task, verdict, ref, cand, prep.options, secret)
    extra = be.extra_checks(sol, options)
    if extra == ExtraChecks():
        return verdict
    return replace(
        verdict,
        passed=verdict.passed and not extra.reasons,
        reasons=verdict.reasons + extra.reasons,
        flags=(*verdict.flags, *extra.flags),
        checked=(*verdict.checked, *extra.checked),
        not_checked=(*verdict.not_checked, *extra.not_checked),
    )


def timing_inputs(
    ref: WorkerClient, task: Task, n_sets: int, secret: int, cases: list[CaseReply] | None = None
) -> timing.TimingInputs:
    """Input sets of the headline variant (same weights, different inputs) and their references.

    ``cases``, when given, receives the reference's replies: the first one is a headline case with
    its work figures (flops, bytes_moved), so the caller need not build another (a reference case
    of a large layer costs seconds).
    """
    cases = [] if cases is None else cases
    for k in range(n_sets):
        plan = CasePlan(task.headline, f"timing#{k}", (secret + 7919 * (k + 1)) & ((1 << 62) - 1), "as-given")
        reply = make_case(ref, task, plan, param_seed=secret & 0xFFFFFFFF)
        if reply.error:
            raise TaskError(f"the reference Model failed on the headline shape: {reply.error}")
        cases.append(reply)
    return timing.TimingInputs(
        init_inputs=cases[0].init_inputs,
        state_dict=cases[0].state_dict,
        input_sets=[c.inputs for c in cases],
        references=[c.expected for c in cases],
        natives=[c.native for c in cases],
        atol=task.atol,
        rtol=task.rtol,
        task_path=str(task.path),
        overrides=dict(task.headline.overrides),
        perturb=None if task.perturb_inputs is None else list(task.perturb_inputs),
        float64=task.float64_reference,
    )


def load_reference_model(ref: WorkerClient, task: Task, device: str = "cpu") -> None:
    """Import the task's ``Model`` on the headline variant in ``ref``, to be timed as the baseline."""
    ref.load(Load(path=str(task.path), device=device, overrides=task.headline.overrides))


def _memory_budget(
    t: Task, ref: WorkerClient, cand: WorkerClient, copts: CheckOptions, secret: int
) -> tuple[list[str], str]:
    """The task's MEMORY_BUDGET against the peak resident memory one call adds (headline shape).

    Returns (reasons, what was checked). The candidate worker must have the solution loaded.
    """
    from kernelarena.timing import metrics

    plan = CasePlan(t.headline, "budget", secret ^ 0xB0D6E7, "as-given")
    reply = make_case(ref, t, plan, param_seed=secret & 0xFFFFFFFF)
    if reply.error:
        return [f"the reference Model failed on the headline shape: {reply.error}"], ""
    budget = reply.memory_budget
    if budget is None:
        why = reply.memory_budget_error or "the task's memory_budget gave no figure"
        return [f"task error: MEMORY_BUDGET could not be evaluated: {why}"], ""
    r = cand.setup_timing(
        SetupTiming(reply.init_inputs, reply.state_dict, [reply.inputs],
                    threads=copts.threads or settings.num_threads(), flush_bytes=0, warmup_s=0.0)
    )  # fmt: skip
    if r.error:
        return [f"the solution failed on the headline shape: {r.error}"], ""
    mem, problem = metrics.call_memory(cand, copts.device)
    peak = mem.get("device_peak_bytes") if copts.device == "cuda" else mem.get("peak_rss_added_bytes")
    what = "device memory" if copts.device == "cuda" else "resident memory"
    shape = t.headline.label
    if peak is None:
        return [], f"memory budget NOT checked: the peak could not be measured ({problem})"
    verdict_word = "over" if peak > budget else "within"
    checked = (f"peak {what} added by a call against the task's MEMORY_BUDGET: {memory.describe_bytes(peak)}, "
               f"{verdict_word} {memory.describe_bytes(budget)} at {shape}")  # fmt: skip
    if peak > budget:
        return [
            f"memory: a call at the headline shape ({shape}) added {memory.describe_bytes(peak)} of peak {what}, "
            f"over the task's MEMORY_BUDGET of {memory.describe_bytes(budget)} ({int(peak)} > {int(budget)} bytes; "
            "does it materialize a large intermediate?)"
        ], checked
    return [], checked


def with_budget(
    t: Task, verdict: Verdict, ref: WorkerClient, cand: WorkerClient, copts: CheckOptions, secret: int
) -> Verdict:
    """Enforce the task's memory budget on a passing verdict (no-op for tasks without one)."""
    if not verdict.passed or not t.has_memory_budget:
        return verdict
    reasons, checked = _memory_budget(t, ref, cand, copts, secret)
    if not checked and not reasons:
        return verdict
    if checked.startswith("memory budget NOT"):
        return replace(verdict, not_checked=(*verdict.not_checked, checked))
    return replace(
        verdict,
        passed=not reasons,
        reasons=verdict.reasons + tuple(reasons),
        checked=(*verdict.checked, checked) if checked else verdict.checked,
    )
