"""Worker ops of timing (both roles): set a model up for timing and time batches of calls.

``setup_timing`` builds the model with the reference weights (the candidate's ``ModelNew`` or the
task's ``Model``, optionally under ``torch.compile``), keeps the input sets and the cache-flush
buffer, and warms up; ``time_batch`` times calls back to back or with random gaps, nudging the
inputs between calls and keeping the inputs and outputs of sampled calls for the parent's check.
The parent side (``timing.bench``) cross-checks the reported times against its own clock.

The clocks and the flush's ``numpy.add`` are bound at import, before any candidate code runs,
and pinned (``_PINNED``) by the worker's integrity check.
"""

from __future__ import annotations

import random
import threading
import time
import weakref
from typing import Any

_perf_ns = time.perf_counter_ns  # bound before candidate code can patch the time module
_sleep = time.sleep
_np_add = __import__("numpy").add  # the cache flush (bound early, like the clocks)

from kernelarena.sandbox.tensors import map_tensors  # noqa: E402
from kernelarena.sandbox.worker import state  # noqa: E402
from kernelarena.verify.worker_guards import SolutionFault, build_model, native_threads, to_device  # noqa: E402

_PINNED = ("_perf_ns", "_sleep", "_np_add")


def op_setup_timing(msg: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(msg["threads"]))
    try:
        model = build_model(msg["init_inputs"], msg["state_dict"])
    except SolutionFault as exc:
        return {"error": str(exc), "kind": "solution"}
    compile_mode = msg.get("compile_mode")
    if compile_mode:
        model = torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
    state["timed_model"] = model
    state["input_sets"] = [list(to_device(list(s))) for s in msg["input_sets"]]
    flush = int(msg.get("flush_bytes", 0))
    state["flush"] = torch.empty(flush // 4, dtype=torch.float32).fill_(1.0) if flush else None
    # warm-up: first calls compile, fault in pages, start thread pools
    t_end = _perf_ns() + int(float(msg.get("warmup_s", 0.3)) * 1e9)
    calls = 0
    with torch.no_grad():
        while calls < 3 or (_perf_ns() < t_end and calls < 1000):
            model(*state["input_sets"][calls % len(state["input_sets"])])
            calls += 1
    return {"warmup_calls": calls, "native_threads": native_threads()}


def _nudge(
    inputs: list[Any], allowed: list[int] | None, rng: random.Random, undo: dict[int, Any] | None = None
) -> None:
    """Change one element of each perturbable input, outside the timed region.

    Every timed call then sees inputs no earlier call saw, at the same addresses: a kernel that
    caches results by pointer, shape or content returns stale outputs, which the sampled checks
    of timed calls catch. Floating inputs: one element scaled by a positive factor (signs kept,
    e.g. second moments stay >= 0). Integer and bool inputs: one element takes the value of its
    neighbour along the last dimension of size >= 2, and the element changed by the previous
    nudge of that tensor gets its own value back first (``undo`` keeps it between calls): at most
    one element differs from the task's input at any time, so ids stay in their domain, sorted ones
    stay sorted (expert offsets, segment ids) and nothing drifts over thousands of calls. (A copy
    from any other element, accumulated call after call, made grouped_expert_ffn's offsets
    decrease, and its kernel, right on valid offsets, was rejected in timed calls.) A task whose
    integer input must keep distinct values (a permutation, top-k ids) leaves it out of
    ``PERTURB_INPUTS``.
    """
    import torch

    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or x.numel() == 0 or x.is_complex():
            continue
        if allowed is not None and i not in allowed:
            continue
        idx = tuple(rng.randrange(n) for n in x.shape)  # any layout: index, not a flat view
        if x.is_floating_point():
            x[idx] = x[idx] * (0.5 if rng.random() < 0.5 else 2.0)
        elif x.numel() >= 2:
            memo = undo if undo is not None else {}
            prev = memo.get(id(x))
            if prev is not None and prev[0]() is x:
                x[prev[1]] = prev[2]  # the previous nudge is undone: no drift
            d = max(i for i, n in enumerate(x.shape) if n >= 2)
            step = -1 if idx[d] == x.shape[d] - 1 or (idx[d] > 0 and rng.random() < 0.5) else 1
            memo[id(x)] = (weakref.ref(x), idx, x[idx].clone())
            x[idx] = x[(*idx[:d], idx[d] + step, *idx[d + 1 :])]


def op_time_batch(msg: dict[str, Any]) -> dict[str, Any]:
    """Time ``n_calls`` calls; keep the inputs and outputs of the calls listed in ``sample``."""
    import torch

    model, sets = state["timed_model"], state["input_sets"]
    n, offset = int(msg["n_calls"]), int(msg.get("offset", 0))
    if state.get("device", "cpu") == "cuda":
        return _time_batch_cuda(model, sets, n, offset, msg)
    sample = set(msg.get("sample") or [])
    rng = random.Random(int(msg.get("gap_seed", 0)))
    gap_ms = float(msg.get("gap_ms", 0.0))
    nudge = bool(msg.get("nudge", False))
    allowed = msg.get("perturb")
    # The flush runs on this thread alone (numpy, not a torch op): a torch op would leave torch's
    # OpenMP pool spinning while the solution's own OpenMP pool starts the timed call, two pools
    # competing for the cores.
    flush = (
        state["flush"].numpy() if msg.get("cache", "cold") == "cold" and state["flush"] is not None else None
    )
    times, kept = [], {}
    py_threads = {t.ident for t in threading.enumerate()}
    span0 = _perf_ns()
    with torch.no_grad():
        for i in range(n):
            idx = (offset + i) % len(sets)
            if nudge:
                _nudge(sets[idx], allowed, rng, state.setdefault("int_nudges", {}))
            if i in sample:
                sent = map_tensors(sets[idx], lambda t: t.clone())
            if flush is not None:
                _np_add(flush, 1.0, out=flush)  # touch the whole buffer: evicts the kernel's data
            if gap_ms:
                _sleep(rng.uniform(0.0, 2.0 * gap_ms) / 1e3)
            t0 = _perf_ns()
            out = model(*sets[idx])
            t1 = _perf_ns()
            times.append((t1 - t0) / 1e6)
            if i in sample:
                kept[str(i)] = {"inputs": sent, "outputs": map_tensors(out, lambda t: t.clone())}
            del out
    span_ms = (_perf_ns() - span0) / 1e6
    leaked = [t.name for t in threading.enumerate() if t.ident not in py_threads and t.is_alive()]
    return {"times_ms": times, "span_ms": span_ms, "samples": kept, "leaked_threads": leaked,
            "native_threads": native_threads()}  # fmt: skip


def _time_batch_cuda(model: Any, sets: list[Any], n: int, offset: int, msg: dict[str, Any]) -> dict[str, Any]:
    """GPU timing: CUDA events per call on the current stream, L2 flushed between calls (cold)."""
    import torch

    from kernelarena.timing.cuda import CudaTimer

    rng = random.Random(int(msg.get("gap_seed", 0)))
    if msg.get("nudge"):
        for s in sets:
            _nudge(s, msg.get("perturb"), rng)
    span0 = _perf_ns()
    with torch.no_grad():
        times = CudaTimer().time_calls(
            lambda i: model(*sets[(offset + i) % len(sets)]), n, cache=msg.get("cache", "cold"),
            use_graph=bool(msg.get("use_graph", False)),
        )  # fmt: skip
        kept = {}
        for i in msg.get("sample") or []:
            idx = (offset + int(i)) % len(sets)
            out = model(*sets[idx])
            torch.cuda.synchronize()
            kept[str(i)] = {"inputs": sets[idx], "outputs": out}
    return {"times_ms": list(times), "span_ms": (_perf_ns() - span0) / 1e6, "samples": kept, "leaked_threads": [],
            "native_threads": native_threads()}  # fmt: skip
