"""``karena lint``: find weak tasks, the way robust-kbench and METR filtered KernelBench.

A task is weak when a wrong kernel could pass it: outputs nearly constant across seeds, an output
range inside the tolerance (zeros pass), an output that ignores one of its inputs or its weights,
or a canary (zeros, ones, mean, passthrough) that passes. Only the reference runs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena.errors import UsageError
from kernelarena.tasks.loader import SUITES_DIR, load_task, task_files
from kernelarena.types import Task
from kernelarena.verify.canaries import passing_canaries
from kernelarena.verify.compare import compare
from kernelarena.worker_client import CaseReply, MakeCase, WorkerClient, prestart_workers


@dataclass(frozen=True)
class LintReport:
    name: str
    path: str
    findings: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def _case(
    ref: WorkerClient,
    task: Task,
    variant: Any,
    seed: int,
    *,
    resample: list[int] | None = None,
    resample_seed: int | None = None,
    param_seed: int | None = None,
) -> CaseReply:
    reply = ref.make_case(
        MakeCase(
            task_path=str(task.path),
            overrides=variant.overrides,
            seed=seed,
            distribution="as-given",
            perturb=None,
            randomize_params=task.randomize_params,
            float64=task.float64_reference,
            param_seed=param_seed,
            resample=resample,
            resample_seed=resample_seed,
        )
    )
    if reply.error:
        raise RuntimeError(reply.error)
    return reply


def _same(a: CaseReply, b: CaseReply, task: Task) -> bool:
    """Would b's output pass as an answer to a's inputs?"""
    return compare(b.native, a.expected, a.native, atol=task.atol, rtol=task.rtol).ok


def _equal(x: Any, y: Any) -> bool:
    import torch

    return (
        isinstance(x, torch.Tensor)
        and isinstance(y, torch.Tensor)
        and x.shape == y.shape
        and torch.equal(x, y)
    )


def _n_tensor_inputs(case: CaseReply) -> list[int]:
    import torch

    return [i for i, x in enumerate(case.inputs) if isinstance(x, torch.Tensor) and x.numel() > 1]


def lint_task(task: Task, ref: WorkerClient) -> LintReport:
    findings: list[str] = []
    notes: list[str] = []
    for variant in task.variants[:2]:
        where = f"variant {variant.label}"
        try:
            a = _case(ref, task, variant, 11)
            b = _case(ref, task, variant, 12)
        except RuntimeError as exc:
            findings.append(f"{where}: the reference fails: {exc}")
            continue
        if a.reference_note:
            notes.append(a.reference_note)
        if _same(a, b, task):
            findings.append(f"{where}: outputs are nearly constant across seeds (a cached answer would pass)")
        weak = passing_canaries(a.expected, a.native, a.inputs, task.atol, task.rtol)
        if weak:
            findings.append(
                f"{where}: canary output(s) {', '.join(weak)} pass (output range inside the tolerance?)"
            )
        for i in _n_tensor_inputs(a):
            try:
                c = _case(ref, task, variant, 11, resample=[i], resample_seed=9_999)
            except RuntimeError:  # input i only makes sense together with the others (indices, ...)
                notes.append(f"input {i} is coupled to the other inputs: its influence was not tested alone")
                continue
            if _equal(a.inputs[i], c.inputs[i]):
                continue  # drawing again gave the same input (tiny or discrete): nothing to learn
            if _same(a, c, task):
                findings.append(f"{where}: the output does not depend on input {i}")
        if any(v.is_floating_point() for v in a.state_dict.values()) and task.randomize_params:
            d = _case(ref, task, variant, 11, param_seed=77_777)
            if _same(a, d, task):
                findings.append(f"{where}: the output does not depend on the model's parameters")
    return LintReport(task.name, str(task.path), tuple(findings), tuple(dict.fromkeys(notes)))


def lint_target(target: str, *, max_bytes: int | None = 256 << 20) -> list[LintReport]:
    p = Path(target)
    if p.is_dir():
        files = task_files(p)
    elif (SUITES_DIR / target).is_dir():
        files = task_files(SUITES_DIR / target)
    else:
        files = [p] if p.is_file() else [Path(target)]
    if not files:
        raise UsageError(f"no task files in {target}")
    reports = []
    prestart_workers()  # the zygote imports torch while the first task loads
    ref: WorkerClient | None = None
    try:
        for f in files:
            try:
                task = load_task(f, max_bytes=max_bytes)
            except UsageError as exc:
                if len(files) == 1:
                    raise
                reports.append(LintReport(f.stem, str(f), (f"does not load: {exc}",)))
                continue
            if ref is None or ref.dead:  # a task that killed the reference worker does not sink the others
                if ref is not None:
                    ref.close()
                ref = WorkerClient("reference")
            try:
                reports.append(lint_task(task, ref))
            except Exception as exc:  # one broken task never hides the others' reports
                reports.append(
                    LintReport(task.name, str(task.path), (f"lint failed: {type(exc).__name__}: {exc}",))
                )
    finally:
        if ref is not None:
            ref.close()
    return reports


def lint_text(reports: list[LintReport]) -> str:
    lines = []
    for r in reports:
        lines.append(f"{r.name}: {'clean' if not r.findings else f'{len(r.findings)} finding(s)'}")
        lines += [f"  - {f}" for f in r.findings]
        lines += [f"  note: {n}" for n in r.notes]
    bad = sum(1 for r in reports if r.findings)
    lines.append(f"{len(reports)} task(s), {bad} with findings")
    return "\n".join(lines)
