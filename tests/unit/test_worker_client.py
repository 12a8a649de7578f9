"""The typed worker client: one request and one reply per op of the worker's registry."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kernelarena import worker_client as wc

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _requests() -> dict[str, type[wc.Request]]:
    return {cls.op: cls for cls in wc.Request.__subclasses__()}


def test_every_op_of_the_registry_has_a_request_and_a_client_method() -> None:
    # Regression (issue 11): messages were string-keyed dicts built by hand at ~19 call sites.
    from kernelarena import worker_entry

    requests = _requests()
    assert set(requests) == set(worker_entry.OPS), set(requests) ^ set(worker_entry.OPS)
    for op in worker_entry.OPS:
        assert callable(getattr(wc.WorkerClient, op)), op


def test_the_entry_named_by_the_client_is_the_worker_program() -> None:
    import importlib

    entry = importlib.import_module(wc.ENTRY)
    assert callable(entry.main) and callable(entry.preload)


def test_a_request_is_written_with_its_op_and_every_field() -> None:
    msg = wc.TimeBatch(n_calls=5, cache="warm").wire()
    assert msg["op"] == "time_batch" and msg["n_calls"] == 5 and msg["cache"] == "warm"
    assert {f.name for f in dataclasses.fields(wc.TimeBatch)} | {"op"} == set(msg)
    case = wc.MakeCase(task_path="t.py", overrides={"n": 3}, seed=7, distribution="scaled")
    wire = case.wire()
    # optional seeds left out: the worker then uses its own defaults (weights from ``seed``)
    assert "param_seed" not in wire and "resample" not in wire
    assert (
        wc.MakeCase(task_path="t.py", overrides={}, seed=1, distribution="as-given", param_seed=9).wire()[
            "param_seed"
        ]
        == 9
    )


def test_replies_are_read_into_dataclasses_ignoring_unknown_keys() -> None:
    wire = {
        "error": None,
        "native_threads": [3, 3],
        "surprise": 1,
        "runs": [
            {"outputs": [1.0], "fill": 0x7F, "findings": ["alias: x"], "ops": {"aten::add": 1}, "new": 2}
        ],
    }
    reply = wc.RunCaseReply.from_wire(wire)
    assert reply.native_threads == [3, 3] and reply.error is None
    (run,) = reply.runs
    assert isinstance(run, wc.GuardedRun) and run.fill == 0x7F and run.findings == ["alias: x"]
    assert run.notes == [] and run.inputs_after is None  # missing: defaults
    batch = wc.BatchReply.from_wire(
        {"times_ms": [1.0], "span_ms": 2.0, "samples": {3: {"inputs": [1], "outputs": 2}}}
    )
    assert batch.samples == {"3": wc.Sample([1], 2)}
    check = wc.CompileCheckReply.from_wire({"ok": True, "kernels": [{"name": "k", "ok": True, "n_regs": 40}]})
    assert check.kernels == [wc.KernelCompile(name="k", ok=True, n_regs=40)]


def test_a_failure_reply_carries_error_and_kind_with_defaults_elsewhere() -> None:
    reply = wc.CaseReply.from_wire({"error": "ValueError: no", "kind": "exception", "traceback": "tb"})
    assert (reply.error, reply.kind, reply.traceback) == ("ValueError: no", "exception", "tb")
    assert reply.inputs == [] and reply.expected is None
    ok = wc.CaseReply.from_wire({"native": 1.0, "reference": None})
    assert ok.expected == 1.0 and ok.error is None


class _FakeReference:
    """A reference worker double: each case holds one float32 tensor of ``n`` elements."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def make_case(self, request: wc.MakeCase, timeout_s: float | None = None) -> wc.CaseReply:
        import torch

        self.calls += 1
        return wc.CaseReply(inputs=[torch.zeros(self.n)], native=torch.zeros(self.n))


def test_case_cache_counts_the_bytes_of_a_typed_case(data: Path) -> None:
    """Regression: the cache sized a case dict with a walker of lists and tuples, so every case
    counted 0 bytes and the 256 MiB cap never applied. A case of 2 x 4 KiB now counts 8 KiB."""
    from kernelarena.tasks.loader import load_task
    from kernelarena.verify.verifier import CaseCache, CasePlan

    task = load_task(data / "tasks" / "scaled_tanh.py")
    ref = _FakeReference(1024)
    cache = CaseCache(max_bytes=12 << 10)
    plan = CasePlan(task.headline, "a", 1, "as-given")
    cache.get(ref, task, plan, None)  # type: ignore[arg-type]
    cache.get(ref, task, plan, None)  # type: ignore[arg-type]
    assert (ref.calls, cache.used_bytes) == (1, 8 << 10)  # kept: the second get is a hit
    other = CasePlan(task.headline, "b", 2, "as-given")
    cache.get(ref, task, other, None)  # type: ignore[arg-type]
    cache.get(ref, task, other, None)  # type: ignore[arg-type]
    assert (ref.calls, cache.used_bytes) == (3, 8 << 10)  # over the cap: not kept, made again
