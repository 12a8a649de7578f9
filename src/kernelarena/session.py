"""``TuningSession``: fast screening of many candidate sources for search loops.

One reference worker and one reusable candidate worker; each ``evaluate(source)`` runs the static
scan, a correctness check on the headline shape and on the smallest variant, then times the
candidate. A search's winner must still pass the full ``check`` (``karena tune`` does that).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.api import _as_task, _case_message, timing_inputs
from kernelarena.sandbox.process import Worker, WorkerFailure
from kernelarena.store.keys import make_key
from kernelarena.timing import bench as timing
from kernelarena.timing import stats
from kernelarena.types import Task, TimingOptions
from kernelarena.verify import static
from kernelarena.verify.compare import compare
from kernelarena.verify.verifier import CasePlan, new_secret


@dataclass(frozen=True)
class EvalOutcome:
    ok: bool
    median_ms: float | None = None
    ci_ms: tuple[float, float] | None = None
    reason: str | None = None


class TuningSession:
    """One reference worker and one reusable candidate worker for evaluating many configs quickly.

    Each ``evaluate(source)`` runs the static scan, a correctness check on the headline shape and on
    the smallest variant, then times the candidate (cold cache, rotated inputs). It is a screening
    step: a search's winner must still pass the full ``check`` (the CLI does that).
    """

    def __init__(
        self,
        task: str | Path | Task,
        *,
        threads: int | None = None,
        timing_options: TimingOptions | None = None,
        max_bytes: int | None = 1 << 30,
    ):
        self.task = _as_task(task, max_bytes)
        self.threads = threads or settings.num_threads()
        self.topts = timing_options or TimingOptions(budget_s=0.6, min_rounds=3, max_rounds=3)
        self.secret = new_secret()
        self._tmp = tempfile.TemporaryDirectory(prefix="karena-tune-")
        self.ref = Worker("reference", threads=self.threads)
        self.cand: Worker | None = None
        self.inputs = timing_inputs(self.ref, self.task, self.topts.input_sets, self.secret)
        small = min(
            self.task.variants, key=lambda v: sum(int(x) for x in v.overrides.values() if type(x) is int)
        )
        plan = CasePlan(small, "small", self.secret ^ 0xABC, "scaled")
        self.small_case = self.ref.request(_case_message(self.task, plan))
        self.ref.request(
            {"op": "load", "path": str(self.task.path), "overrides": self.task.headline.overrides}
        )
        timing.setup_side(self.ref, self.inputs, self.topts, self.threads)
        self.baseline_ms = self._time(self.ref)
        self.shape_id = make_key(
            "shape", {"task": self.task.source_hash, "overrides": self.task.headline.overrides}
        )
        self._n = 0

    def _time(self, worker: Worker) -> float:
        times: list[float] = []
        t_end = time.monotonic() + self.topts.budget_s
        while time.monotonic() < t_end or len(times) < 5:
            reply = worker.request({"op": "time_batch", "n_calls": 5, "cache": self.topts.cache})
            if reply.get("error"):
                raise timing.TimingRejected(reply["error"])
            times.extend(reply["times_ms"])
        return stats.median(times)

    def evaluate(self, source: str) -> EvalOutcome:
        findings = [f for f in static.scan(source) if f.kind in ("tamper", "syntax", "compute")]
        if findings:
            return EvalOutcome(False, reason=f"static: {findings[0]}")
        self._n += 1
        path = Path(self._tmp.name) / f"config_{self._n}.py"
        path.write_text(source)
        try:
            if self.cand is None or self.cand.dead:
                self.cand = Worker("candidate", threads=self.threads)
            reply = self.cand.request({"op": "load", "path": str(path)})
            if reply.get("error"):
                return EvalOutcome(False, reason=f"import failed: {reply['error']}")
            cases = [(self.inputs, 0), (None, 1)]
            for inp, which in cases:
                case = (
                    {
                        "init_inputs": inp.init_inputs,
                        "state_dict": inp.state_dict,
                        "inputs": inp.input_sets[0],
                        "native": inp.natives[0],
                        "reference": inp.references[0],
                    }
                    if inp is not None
                    else self.small_case
                )
                out = self.cand.request({"op": "run_case", "init_inputs": case["init_inputs"],
                                         "state_dict": case["state_dict"], "inputs": case["inputs"],
                                         "trace": which == 0, "prefill_bytes": 1 << 20})  # fmt: skip
                if out.get("error"):
                    return EvalOutcome(False, reason=out["error"])
                r = out["runs"][0]
                if r["findings"]:
                    return EvalOutcome(False, reason=r["findings"][0])
                ref = case["reference"] if case["reference"] is not None else case["native"]
                res = compare(r["outputs"], ref, case["native"], atol=self.task.atol, rtol=self.task.rtol)
                if not res.ok:
                    return EvalOutcome(False, reason=res.reason)
            timing.setup_side(self.cand, self.inputs, self.topts, self.threads)
            times: list[list[float]] = []
            t_end = time.monotonic() + self.topts.budget_s
            while time.monotonic() < t_end or len(times) < 3:
                reply = self.cand.request({"op": "time_batch", "n_calls": 5, "cache": self.topts.cache})
                if reply.get("error"):
                    return EvalOutcome(False, reason=reply["error"])
                times.append(reply["times_ms"])
            med = stats.median([x for r in times for x in r])
            return EvalOutcome(True, med, stats.bootstrap_median_ci(times, n_boot=200))
        except (WorkerFailure, timing.TimingRejected) as exc:
            return EvalOutcome(False, reason=f"worker {exc}")

    def close(self) -> None:
        if self.cand is not None:
            self.cand.close()
        self.ref.close()
        self._tmp.cleanup()

    def __enter__(self) -> TuningSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
