"""``TuningSession``: the search's evaluator, on the same pipeline as ``check`` and ``bench``.

One reference worker (it makes the cases, checks sampled timed outputs and is timed as the
baseline) and one reusable candidate worker. ``evaluate(source, config)`` screens a configuration:
``verify`` with the quick options on the headline shape and the smallest variant (the sandboxed
verifier, its guards and its tolerances), then ``timing.time_one`` (the timer's batches and parent
clock checks). ``rank(source)`` is the measurement a reported figure comes from:
``timing.time_pair`` against the baseline, interleaved, with a confidence interval of the speedup,
so that two runs of ``karena tune`` agree within it. A search's winner still passes the full
``check`` (``karena tune`` does that).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from kernelarena import pipeline, settings
from kernelarena.sandbox.process import WorkerFailure
from kernelarena.store.keys import make_key
from kernelarena.timing import bench as timing
from kernelarena.types import CheckOptions, EvalOutcome, Task, TimingOptions, Variant
from kernelarena.verify.verifier import CaseCache, new_secret, verify
from kernelarena.worker_client import Load, WorkerClient, prestart_workers

# screening: short, few rounds (ranking among many configs); ranking: the bench timer, shorter budget
SCREEN_TIMING = TimingOptions(budget_s=0.6, min_rounds=3, max_rounds=3)
# screening verification: every candidate meets the same cached cases (one seed, the task's own
# inputs on the headline, the small variant); the winner gets the full ``check`` with a new secret
SCREEN_CHECK = CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False)
RANK_TIMING = TimingOptions(budget_s=1.2, min_rounds=6, max_rounds=12)


def screening_task(
    task: Task, shape: Mapping[str, Any] | None = None, check: Sequence[Mapping[str, Any]] | None = None
) -> Task:
    """The task restricted to the timing shape (``shape``, default the headline) and the variants in
    ``check`` (default: the smallest other variant, so odd sizes and tails are exercised)."""
    head = Variant(0, dict(shape)) if shape is not None else task.headline
    if check is None:
        others = [v for v in task.variants if v.overrides != head.overrides]
        extra = [min(others, key=_size)] if others else []
    else:
        extra = [Variant(0, dict(c)) for c in check]
    variants = [replace(v, index=i) for i, v in enumerate([head, *extra])]
    return replace(task, variants=tuple(variants))


def _size(v: Variant) -> int:
    return sum(int(x) for x in v.overrides.values() if type(x) is int)


class TuningSession:
    """Evaluator of many candidate sources of one task (an ``Evaluator`` of ``kernelarena.search``).

    ``shape``/``check``: see :func:`screening_task`. ``check_options``: the verification each config
    gets (default ``SCREEN_CHECK``; ``CheckOptions.quick()`` or ``CheckOptions()`` verify more).
    """

    def __init__(
        self,
        task: str | Path | Task,
        *,
        threads: int | None = None,
        timing_options: TimingOptions | None = None,
        max_bytes: int | None = 1 << 30,
        shape: Mapping[str, Any] | None = None,
        check: Sequence[Mapping[str, Any]] | None = None,
        check_options: CheckOptions | None = None,
        rank_options: TimingOptions | None = None,
    ):
        self.threads = threads or settings.num_threads()
        prestart_workers(self.threads)  # the zygote imports torch while the task loads
        self.task = screening_task(pipeline.as_task(task, max_bytes), shape, check)
        self.topts = timing_options or SCREEN_TIMING
        self.rank_topts = rank_options or RANK_TIMING
        self.secret = new_secret()
        self.copts = replace(
            check_options or SCREEN_CHECK, threads=self.threads, max_bytes=max_bytes, secret=self.secret
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="karena-tune-")
        self._n = 0
        self._cases = CaseCache()
        self.cand: WorkerClient | None = None
        self.ref = WorkerClient("reference", threads=self.threads, memory_bytes=self.copts.memory_bytes)
        try:
            cases: list[Any] = []
            self.inputs = pipeline.timing_inputs(
                self.ref, self.task, self.topts.input_sets, self.secret, cases
            )
            flops, bytes_moved = cases[0].flops, cases[0].bytes_moved
            self.shape_features = {
                k: float(v) for k, v in (("flops", flops), ("bytes", bytes_moved)) if v is not None
            }
            pipeline.load_reference_model(self.ref, self.task, self.copts.device)
            timing.setup_side(self.ref, self.inputs, self.topts, self.threads)
            self.baseline_ms = timing.time_one(
                self.ref, self.inputs, self.topts, self.threads, secret=self.secret
            ).median_ms
        except BaseException:
            self.close()
            raise
        self.shape_id = make_key(
            "shape", {"task": self.task.source_hash, "overrides": self.task.headline.overrides}
        )

    def _candidate(self) -> WorkerClient:
        if self.cand is None or self.cand.dead:
            if self.cand is not None:
                self.cand.close()
            self.cand = WorkerClient("candidate", threads=self.threads, memory_bytes=self.copts.memory_bytes)
        return self.cand

    def _write(self, source: str) -> Path:
        self._n += 1
        path = Path(self._tmp.name) / f"config_{self._n}.py"
        path.write_text(source)
        return path

    def evaluate(self, source: str, config: Mapping[str, Any] | None = None) -> EvalOutcome:
        """Screen one candidate: quick verification, then its time alone (see the module docstring)."""
        path = self._write(source)
        try:
            cand = self._candidate()
            verdict = verify(self.task, path, self.copts, self.ref, cand, cases=self._cases)
            if not verdict.passed:
                return EvalOutcome.failure("; ".join(verdict.reasons[:2]))
            timing.setup_side(cand, self.inputs, self.topts, self.threads)
            # no sampled output check here: ``rank`` re-times the top configs with it
            m = timing.time_one(cand, self.inputs, self.topts, self.threads, secret=self.secret)
            return EvalOutcome(True, m.median_ms, m.ci_ms)
        except (WorkerFailure, timing.TimingRejected) as exc:
            return EvalOutcome.failure(f"worker {exc}")

    def rank(self, source: str) -> EvalOutcome:
        """Time a screened candidate against the baseline, interleaved (``bench``'s timer), in a
        fresh candidate worker: the outcome carries ``speedup`` and ``speedup_ci``."""
        path = self._write(source)
        # the reference stays set up from __init__; only another cache state needs a new setup
        ref_setup = self.rank_topts.cache != self.topts.cache
        try:
            with WorkerClient(
                "candidate", threads=self.threads, memory_bytes=self.copts.memory_bytes
            ) as cand:
                reply = cand.load(Load(path=str(path), device=self.copts.device))
                if reply.error:
                    return EvalOutcome.failure(f"importing the solution failed: {reply.error}")
                timing.setup_side(cand, self.inputs, self.rank_topts, self.threads)
                if ref_setup:
                    timing.setup_side(self.ref, self.inputs, self.rank_topts, self.threads)
                pair = timing.time_pair(cand, self.ref, self.inputs, self.rank_topts, self.threads,
                                        secret=self.secret, reference=self.ref)  # fmt: skip
        except (WorkerFailure, timing.TimingRejected) as exc:
            return EvalOutcome.failure(f"worker {exc}")
        finally:
            if ref_setup:  # the screening timer's settings again, for later evaluations
                timing.setup_side(self.ref, self.inputs, self.topts, self.threads)
        if pair.reasons:
            return EvalOutcome.failure("; ".join(pair.reasons[:2]))
        c = pair.candidate
        return EvalOutcome(
            True, c.median_ms, c.ci_ms, None, pair.speedup, pair.speedup_ci, pair.baseline.median_ms
        )

    def close(self) -> None:
        if self.cand is not None:
            self.cand.close()
        self.ref.close()
        self._tmp.cleanup()

    def __enter__(self) -> TuningSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
