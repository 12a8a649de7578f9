"""Verification of one candidate against a task: every variant, secret seeds, input distributions,
guards around every call, static checks, canaries. Produces a ``Verdict`` with actionable reasons.

Processes: the reference worker (task code only) makes each case; the candidate worker (solution
code only) runs it; this process (neither) compares. Secret seeds never leave this process.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.errors import TaskError
from kernelarena.sandbox.memory import release_free_memory
from kernelarena.sandbox.osview import HARNESS_THREADS, active_threads, thread_cpu_ns
from kernelarena.sandbox.process import WorkerFailure
from kernelarena.sandbox.worker import undumpable
from kernelarena.types import CaseResult, CheckOptions, Task, Variant, Verdict
from kernelarena.verify import static
from kernelarena.verify.canaries import passing_canaries
from kernelarena.verify.compare import compare
from kernelarena.verify.policy import disallowed
from kernelarena.worker_client import (
    CaseReply,
    GuardedRun,
    Load,
    MakeCase,
    RunCase,
    RunCaseReply,
    WorkerClient,
)

log = logging.getLogger(__name__)

PREFILL_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class CasePlan:
    variant: Variant
    label: str  # what a user sees: never the seed itself
    seed: int
    distribution: str


def new_secret() -> int:
    return int.from_bytes(os.urandom(8), "little")


def _seed(secret: int, *parts: Any) -> int:
    h = hashlib.blake2b(repr((secret, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 62) - 1)


def plan_cases(task: Task, options: CheckOptions, secret: int) -> list[CasePlan]:
    """Headline: every seed x every distribution. Other variants: every seed, distributions rotated."""
    dists = options.distributions or ("as-given",)
    plans = []
    for v in task.variants:
        for k in range(max(1, options.seeds)):
            chosen = dists if v.index == 0 else (dists[(v.index + k) % len(dists)],)
            for d in chosen:
                plans.append(CasePlan(v, f"seed#{k + 1}/{d}", _seed(secret, v.index, k), d))
    return plans


def case_request(task: Task, plan: CasePlan, param_seed: int | None = None) -> MakeCase:
    """The reference worker's ``make_case`` request for one planned case (built only here).

    ``param_seed``: draw the weights from it instead of the case's seed (cases sharing weights)."""
    return MakeCase(
        task_path=str(task.path),
        overrides=plan.variant.overrides,
        seed=plan.seed,
        distribution=plan.distribution,
        perturb=None if task.perturb_inputs is None else list(task.perturb_inputs),
        randomize_params=task.randomize_params,
        float64=task.float64_reference,
        in_place=task.in_place,
        param_seed=param_seed,
    )


def make_case(
    ref: WorkerClient,
    task: Task,
    plan: CasePlan,
    timeout_s: float | None = None,
    param_seed: int | None = None,
) -> CaseReply:
    return ref.make_case(case_request(task, plan, param_seed), timeout_s)


class CaseCache:
    """Reference cases kept between ``verify`` calls with the same secret (the search verifies many
    candidates of one task): the reference model runs once per case, not once per candidate.
    Cases are kept while their total size stays under ``max_bytes``."""

    def __init__(self, max_bytes: int = 256 << 20):
        self.max_bytes = max_bytes
        self.used_bytes = 0
        self._cases: dict[str, CaseReply] = {}

    def get(self, ref: WorkerClient, task: Task, plan: CasePlan, timeout_s: float | None) -> CaseReply:
        key = repr((str(task.path), sorted(plan.variant.overrides.items()), plan.seed, plan.distribution))
        if key in self._cases:
            return self._cases[key]
        case = make_case(ref, task, plan, timeout_s)
        size = _nbytes([case.init_inputs, list(case.state_dict.values()), case.inputs, case.native,
                        case.reference, case.inputs_after])  # fmt: skip
        if not case.error and self.used_bytes + size <= self.max_bytes:
            self._cases[key] = case
            self.used_bytes += size
        return case


# Fill bytes of fresh heap memory per verified call (0xFF is the one byte glibc cannot produce).
# 0x7F7F7F7F is a huge float32 (fp16: NaN), 0xC3C3C3C3 a negative one: different on purpose, so a
# read of unwritten memory changes the result between the two runs of a case.
FILLS = (0x7F, 0xC3, 0x5A)


def _fills(first: bool, determinism: bool, n_cases: int) -> list[int]:
    """Two runs for a variant's first case (determinism); three when it is the variant's only
    case, so outputs of three calls are seen (a ring of two reused buffers shows up)."""
    if not (first and determinism):
        return [0xA5]
    return list(FILLS[: 3 if n_cases == 1 else 2])


def _sentinel_elements(outputs: Any, fill: int) -> list[tuple[int, int]]:
    """(output index, count) of elements whose every byte is the fresh-memory fill byte."""
    import torch

    found = []
    for i, t in enumerate(outputs if isinstance(outputs, list | tuple) else [outputs]):
        if not isinstance(t, torch.Tensor) or t.element_size() < 2 or not t.numel():
            continue
        b = t.contiguous().view(-1).view(torch.uint8).view(-1, t.element_size())
        n = int((b == fill).all(dim=1).sum())
        if n:
            found.append((i, n))
    return found


def _nbytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_nbytes(v) for v in value)
    return 0


def _bitwise_equal(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if not a.numel():
            return True
        # any layout: compare the bytes of contiguous copies
        return torch.equal(
            a.contiguous().view(-1).view(torch.uint8), b.contiguous().view(-1).view(torch.uint8)
        )
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_bitwise_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Run:
    """Accumulates reasons, flags and case results for one verification."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.flags: list[str] = []
        self.cases: list[CaseResult] = []
        self.notes: list[str] = []

    def reason(self, text: str) -> None:
        if text not in self.reasons:
            self.reasons.append(text)

    def flag(self, text: str) -> None:
        if text not in self.flags:
            self.flags.append(text)


def static_findings(source: str, options: CheckOptions, run: _Run) -> None:
    for f in static.scan(source):
        if f.kind in ("tamper", "syntax"):
            run.reason(f"static: {f}")
        elif f.kind == "compute":
            (run.reason if options.policy == "strict" else run.flag)(f"static: {f}")


def verify(
    task: Task,
    solution_path: Any,
    options: CheckOptions,
    ref: WorkerClient,
    cand: WorkerClient,
    *,
    secret: int | None = None,
    cases: CaseCache | None = None,
) -> Verdict:
    """Run every planned case; stop early on a crash, skip the rest of a variant once it fails.

    ``cases``: reference cases kept from earlier calls with the same secret (search screening)."""
    t0 = time.monotonic()
    undumpable()  # this process holds the reference outputs: not readable from a worker
    run = _Run()
    run.notes.extend(task.notes)
    secret = options.secret if options.secret is not None else (secret or new_secret())
    source = Path(solution_path).read_text(encoding="utf-8", errors="replace")
    static_findings(source, options, run)
    checked = ["static scan of the solution source (harness tampering, torch compute calls)"]
    not_checked: list[str] = []
    if any(r.startswith("static: line") and "syntax error" in r for r in run.reasons):
        return _verdict(run, checked, not_checked, t0)
    try:
        reply = cand.load(Load(path=str(solution_path), device=options.device), options.timeout_s)
    except WorkerFailure as exc:
        run.reason(f"importing the solution: worker {exc}")
        return _verdict(run, checked, not_checked, t0)
    if reply.error:
        run.reason(f"importing the solution failed: {reply.error}")
        return _verdict(run, checked, not_checked, t0)

    plans = plan_cases(task, options, secret)
    cases_of = {p.variant.index: sum(q.variant.index == p.variant.index for q in plans) for p in plans}
    failed_variants: set[int] = set()
    dropped: set[int] = set()
    first_of_variant: set[int] = set()
    threads: list[int] = []
    os_threads = 0  # most threads of the candidate's worker that ran during one case (from /proc)
    n_run = 0
    case: CaseReply | None = None
    out: RunCaseReply | None = None
    reference: Any = None
    for plan in plans:
        # the previous case's arrays go before the next case arrives: one case in memory at a time
        if case is not None:
            case, out, reference = None, None, None
            release_free_memory()  # or this process keeps the largest case's pages for good
        vi = plan.variant.index
        if vi in failed_variants or vi in dropped:
            continue
        try:
            case = cases.get(ref, task, plan, None) if cases is not None else make_case(ref, task, plan)
        except WorkerFailure as exc:
            raise TaskError(f"the reference worker failed on variant {plan.variant.label}: {exc}") from None
        if case.error:
            if plan.variant.derived:
                dropped.add(vi)
                run.notes.append(
                    f"derived variant {plan.variant.label} dropped: the reference raised {case.error}"
                )
                continue
            raise TaskError(f"the reference Model failed on variant {plan.variant.label}: {case.error}")
        if case.reference_note:
            run.flag(f"reference: {case.reference_note}")
        note = case.distribution_note
        if note and (note := f"variant {plan.variant.label}: {note}") not in run.notes:
            run.notes.append(note)
        reference = case.expected
        first = vi not in first_of_variant
        first_of_variant.add(vi)
        fills = _fills(first, options.repeat_determinism, cases_of[vi])
        cpu_before = thread_cpu_ns(cand)
        try:
            out = cand.run_case(
                RunCase(case.init_inputs, case.state_dict, case.inputs, fills, in_place=task.in_place),
                options.timeout_s,
            )
        except WorkerFailure as exc:
            run.reason(f"variant {plan.variant.label} ({plan.label}): the candidate {exc}")
            run.cases.append(CaseResult(plan.variant.label, plan.label, False, str(exc)))
            break
        n_run += 1
        os_threads = max(os_threads, active_threads(cpu_before, thread_cpu_ns(cand)))
        ok = _judge_case(task, plan, case, reference, out, options, run, first)
        threads.extend(out.native_threads)
        if not ok:
            failed_variants.add(vi)
    # Growth call after call is escaped work; one step up is a pool started lazily by the first
    # call large enough to go parallel (then flat), which is fine.
    steps = sum(b > a for a, b in itertools.pairwise(threads[1:]))
    if len(threads) >= 4 and threads[-1] > threads[1] + 2 and threads == sorted(threads) and steps >= 3:
        run.reason(
            f"escape: the candidate's native thread count grew from {threads[1]} to {threads[-1]} over "
            "successive calls (threads left running after forward returns)"
        )
    given = options.threads or settings.num_threads()
    log.debug("busiest case: %d active OS threads in the candidate's worker", os_threads)
    if os_threads > given + HARNESS_THREADS:
        run.reason(
            f"threads: {os_threads} OS threads of the candidate's worker ran during one case, more than "
            f"the {given} compute thread(s) it was given plus the harness's own {HARNESS_THREADS} "
            "(a kernel must keep to its thread allotment)"
        )
    if dropped and len(dropped) == sum(1 for v in task.variants if v.derived):
        run.notes.append("no derived variant was valid for this task: only its own shape was verified")
    checked += [
        f"{n_run} case(s) over {len(first_of_variant)} variant(s) x secret seeds x input distributions "
        f"({', '.join(options.distributions)}) against a "
        + ("float64 reference" if task.float64_reference else "native-precision reference"),
        "exact output type (torch.Tensor), shape, dtype; non-finite values only where the reference has them",
        "tolerance scale-relative and tied to torch's own error against float64",
        "inputs unchanged (IN_PLACE tasks: inputs end as the reference's); outputs do not alias "
        "inputs, parameters or the outputs of earlier calls (at least 3 kept)",
        "harness functions in the candidate worker unchanged after every request; replies carry a "
        "per-request nonce (forged messages refused)",
        "reference weights re-drawn at random and copied in by name",
        "no Python threads or child processes left running after forward",
        "threads that ran during each case (counted by this process from /proc) within the "
        "thread allotment plus the harness's own",
        f"policy {options.policy}: ATen ops traced in every verified call, helper threads included; "
        "only aten/prims ops may be allowed",
        "fresh heap memory filled with a sentinel byte (glibc perturb) in every verified call",
        "canary outputs (zeros, ones, mean, passthrough) tested against the task",
    ]
    if options.repeat_determinism:
        checked.append("determinism: two runs on differently pre-filled memory compared bitwise")
    not_checked += [
        "speed plausibility and sampled checks of timed calls (done by `karena bench`)",
        "race detection beyond repeated runs (no sanitizer)",
    ]
    if options.device == "cpu":
        not_checked.append("GPU-specific guards (side streams, stale device memory): CPU device")
    return _verdict(run, checked, not_checked, t0)


def _judge_case(
    task: Task,
    plan: CasePlan,
    case: CaseReply,
    reference: Any,
    out: RunCaseReply,
    options: CheckOptions,
    run: _Run,
    first: bool,
) -> bool:
    where = f"variant {plan.variant.label} ({plan.label})"
    if out.error:
        if out.kind == "memory":
            msg = f"{where}: the candidate ran out of memory: {out.error}"
        elif out.kind == "solution":
            msg = str(out.error)  # the same for every case: said once
        else:
            tb = (out.traceback or "").strip().splitlines()
            at = next((ln.strip() for ln in reversed(tb) if ln.strip().startswith("File")), "")
            msg = f"{where}: forward raised {out.error}" + (f" ({at})" if at else "")
        run.reason(msg)
        run.cases.append(CaseResult(plan.variant.label, plan.label, False, msg))
        return False
    runs = out.runs
    ok = True
    for r in runs:
        for note in r.notes or []:
            run.flag(f"{where}: {note}")
        for finding in r.findings:
            run.reason(f"{where}: {finding}")
            ok = False
        bad_ops = disallowed(r.ops or {})
        if bad_ops:
            ops = ", ".join(f"{k}({v})" for k, v in sorted(bad_ops.items()))
            msg = f"policy: forward ran torch compute ops {ops}; do the computation in the solution's own kernel"
            kernels = r.kernels or {}
            if kernels.get("known") and not kernels.get("called"):
                msg += (
                    f" (its compiled kernel(s) {', '.join(kernels['known'][:3])} were not called in "
                    "this call: a ghost kernel)"
                )
            if options.policy == "strict":
                run.reason(msg)
                ok = False
            else:
                run.flag(msg)
    res = compare(runs[0].outputs, reference, case.native, atol=task.atol, rtol=task.rtol)
    if not res.ok:
        stale = _sentinel_elements(runs[0].outputs, int(runs[0].fill))
        if stale:  # name the cause: the harness's own poison came back
            i, n = stale[0]
            run.reason(
                f"{where}: output {i}: {n} element(s) hold the harness's sentinel fill of fresh memory "
                f"(bytes 0x{runs[0].fill:02X}): never written by forward (uninitialized output; "
                f"{res.reason})"
            )
        else:
            run.reason(f"{where}: {res.reason}")
        ok = False
    elif len(runs) > 1 and not all(_bitwise_equal(runs[0].outputs, r.outputs) for r in runs[1:]):
        bad = [c for r in runs[1:] if not (c := compare(r.outputs, reference, case.native,
                                                         atol=task.atol, rtol=task.rtol)).ok]  # fmt: skip
        if bad:
            run.reason(
                f"{where}: a second run on the same inputs (different pre-filled memory) gave different, "
                f"wrong results ({bad[0].reason}): uninitialized memory or a race"
            )
            ok = False
        else:
            run.flag(
                f"nondeterministic: {where} outputs differ bitwise between two runs (both within tolerance)"
            )
    if task.in_place and ok:
        ok = _judge_in_place(task, where, case, runs[0], run)
    run.cases.append(
        CaseResult(
            plan.variant.label,
            plan.label,
            ok and res.ok,
            None if ok else run.reasons[-1],
            res.max_abs_err,
            res.max_rel_err,
            res.tolerance,
        )
    )
    if first:
        # a property of the case, not of the candidate: kept in the case (a cached case is judged once)
        if case.canaries is None:
            case.canaries = passing_canaries(reference, case.native, case.inputs, task.atol, task.rtol)
        weak = case.canaries
        if weak:
            run.flag(f"weak-task: canary output(s) {', '.join(weak)} pass variant {plan.variant.label}")
    return ok


def _judge_in_place(task: Task, where: str, case: CaseReply, first: GuardedRun, run: _Run) -> bool:
    """An IN_PLACE task's inputs must end as the reference's inputs end after its call."""
    import torch

    want, got = case.inputs_after, first.inputs_after
    if want is None or got is None:
        run.notes.append("in place: the inputs' final state was not compared (not returned)")
        return True
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        if not isinstance(w, torch.Tensor) or not w.is_floating_point():
            continue
        res = compare(g, w, w, atol=task.atol, rtol=task.rtol)
        if not res.ok:
            run.reason(
                f"{where}: in place: input {i} does not hold what the reference leaves in it after "
                f"forward ({res.reason}); the task is IN_PLACE, so forward must update its inputs"
            )
            return False
    return True


def _verdict(run: _Run, checked: list[str], not_checked: list[str], t0: float) -> Verdict:
    return Verdict(
        passed=not run.reasons,
        reasons=tuple(run.reasons),
        flags=tuple(run.flags),
        cases=tuple(run.cases),
        checked=tuple(checked),
        not_checked=tuple(not_checked),
        elapsed_s=time.monotonic() - t0,
        notes=tuple(run.notes),
    )
