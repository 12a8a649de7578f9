"""Worker ops of the candidate role: load the solution and run verification cases under guards.

Run inside the candidate worker (solution code only; never the task file). ``load`` imports the
solution (or, in the reference role, the task's ``Model`` for timing) and wraps its native entry
points so a call can tell whether its kernel ran; ``run_case`` runs one case once per fill byte,
with every in-process guard around the call: the ATen op tracer (helper threads included), input
digests, storage overlap with inputs, parameters and earlier outputs, threads and processes left
running, torch kernels registered by the solution, glibc's perturb fill of fresh memory.

The clocks are bound at import, before any candidate code runs, and pinned (``_PINNED``) with
every function here by the worker's integrity check (``sandbox.worker.integrity_check``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import time
from typing import Any

_perf_ns = time.perf_counter_ns  # bound before candidate code can patch the time module
_sleep = time.sleep

from kernelarena.sandbox.tensors import map_tensors, tensors  # noqa: E402
from kernelarena.sandbox.worker import state  # noqa: E402
from kernelarena.verify.policy import overridden_torch_ops, torch_kernel_registrations  # noqa: E402
from kernelarena.verify.worker_cases import exec_task  # noqa: E402

_PINNED = ("_perf_ns", "_sleep", "_SINK")


def _digest(values: list[Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in values:
        c = t.detach().contiguous()
        h.update(str((tuple(c.shape), str(c.dtype))).encode())
        if c.numel():
            h.update(c.view(-1).view(dtype=__import__("torch").uint8).numpy())  # no bytes copy
    return h.hexdigest()


def _span(t: Any) -> tuple[int, int]:
    s = t.untyped_storage()
    return s.data_ptr(), s.data_ptr() + s.nbytes()


def _overlaps(a: Any, b: Any) -> bool:
    (a0, a1), (b0, b1) = _span(a), _span(b)
    return a0 < b1 and b0 < a1 and a1 > a0 and b1 > b0


_M_PERTURB = -6  # glibc mallopt parameter


def _malloc_fill(byte: int | None) -> None:
    """Make glibc fill every fresh heap block with ``byte`` (``None``: stop).

    glibc's perturb option writes ``p ^ 0xFF`` into each block malloc returns (torch's CPU
    allocator goes through posix_memalign, which it covers, tcache included: measured) and ``p``
    into each freed one, so an output the candidate never writes holds the harness's sentinel at
    every size up to the mmap threshold (32 MiB here; larger blocks are fresh zero pages).
    Switched on for verification calls only: it costs a memset per allocation and per free.
    """
    import ctypes

    libc = state.get("libc")
    if libc is None:
        libc = state["libc"] = ctypes.CDLL(None)
    if byte is not None and byte == 0xFF:
        raise ValueError("glibc cannot fill with 0xFF (perturb 0 means off)")
    libc.mallopt(_M_PERTURB, 0 if byte is None else byte ^ 0xFF)


def _count(func_ops: dict[str, int], name: str) -> None:
    func_ops[name] = func_ops.get(name, 0) + 1


# Where the policy tracer records: the ops dict of the call in progress, or None between calls.
# One sink for every thread: a helper thread's mode records into the same call.
_SINK: list[dict[str, int] | None] = [None]


def _tracer_class() -> Any:
    from torch.utils._python_dispatch import TorchDispatchMode

    from kernelarena.verify.policy import op_name

    sink = _SINK

    class _OpTracer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops = sink[0]
            if ops is not None:
                _count(ops, op_name(func))
            return func(*args, **(kwargs or {}))

    return _OpTracer


def _tracer(ops: dict[str, int]) -> Any:
    """Trace the ATen ops of one call on this thread (and, through ``_SINK``, on helper threads)."""
    import contextlib

    @contextlib.contextmanager
    def traced() -> Any:
        _SINK[0] = ops
        try:
            with state["tracer_cls"]():
                yield
        finally:
            _SINK[0] = None

    return traced()


def preload() -> None:
    """Import what the first traced call would import (a fork server runs this once).

    The first torch op under a TorchDispatchMode imports ``torch._dynamo`` (~2.5 s of CPU); done
    here, every worker forked afterwards starts with it. Starts no thread.
    """
    import torch

    with _tracer_class()():
        torch.empty(2).add_(1)


def _trace_new_threads() -> None:
    """Start every Python thread inside the policy tracer (candidate role, before its import).

    A TorchDispatchMode is thread-local: torch compute on a helper thread is invisible to the
    mode entered on the calling thread. Wrapping the one primitive every ``threading.Thread``
    (and ``concurrent.futures`` pool) starts through makes each new thread enter its own mode,
    which records into the call in progress; between calls it records nothing. Threads created
    natively (C++ ``std::thread`` calling ATen) are not covered: documented limit.
    """
    import _thread

    cls = state["tracer_cls"]
    original = _thread.start_new_thread

    def start_new_thread(function: Any, args: Any, kwargs: Any = None) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            with cls():
                return function(*a, **k)

        return original(run, args, kwargs or {})

    _thread.start_new_thread = start_new_thread
    threading._start_new_thread = start_new_thread  # type: ignore[attr-defined]
    state["thread_start"] = start_new_thread


# --- candidate role --------------------------------------------------------------------------


def to_device(value: Any) -> Any:
    device = state.get("device", "cpu")
    return value if device == "cpu" else map_tensors(value, lambda t: t.to(device))


def op_load(msg: dict[str, Any]) -> dict[str, Any]:
    """Import the solution file (candidate role) or the task file (reference role) for running."""
    path = msg["path"]
    state["device"] = msg.get("device", "cpu")
    if state["role"] == "candidate":
        spec = importlib.util.spec_from_file_location("karena_solution", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["karena_solution"] = module
        spec.loader.exec_module(module)
        if not hasattr(module, "ModelNew"):
            return {"error": "solution defines no class ModelNew", "kind": "solution"}
        state["cls"] = module.ModelNew
        state["entry_points"] = _count_entry_points(module)
    else:
        module = exec_task(path, msg.get("overrides") or {})
        state["cls"] = module.Model
    state["module"] = module
    return {}


class _Counted:
    """A compiled entry point that counts its calls (delegates everything else)."""

    def __init__(self, fn: Any, name: str):
        self._fn, self._name, self.calls = fn, name, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self._fn(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._fn, attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr in ("_fn", "_name", "calls"):
            object.__setattr__(self, attr, value)
        else:
            setattr(self._fn, attr, value)


def _count_entry_points(module: Any) -> list[_Counted]:
    """Wrap the solution's native entry points that it reaches by name (ctypes functions held
    by a module-level library or bound to module globals), so that a verified call can tell
    whether its compiled kernel ran at all (a "ghost" kernel: compiled, never called)."""
    import ctypes

    counted: list[_Counted] = []
    for gname, value in list(vars(module).items()):
        if isinstance(value, ctypes.CDLL):
            for fname, fn in list(vars(value).items()):
                if isinstance(fn, ctypes._CFuncPtr):  # type: ignore[attr-defined]
                    c = _Counted(fn, fname)
                    setattr(value, fname, c)
                    counted.append(c)
        elif isinstance(value, ctypes._CFuncPtr):  # type: ignore[attr-defined]
            c = _Counted(value, gname)
            setattr(module, gname, c)
            counted.append(c)
    return counted


def build_model(init_inputs: list[Any], state_dict: dict[str, Any]) -> Any:
    import torch

    model = state["cls"](*init_inputs)
    if isinstance(model, torch.nn.Module):
        own = set(model.state_dict())
        ref = set(state_dict)
        if own != ref:
            missing, extra = sorted(ref - own), sorted(own - ref)
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing[:6])}")
            if extra:
                parts.append(f"unexpected {', '.join(extra[:6])}")
            raise SolutionFault(
                "parameter/buffer names differ from the reference Model's (" + "; ".join(parts) + "): "
                "ModelNew must register the same names so the reference weights can be copied in"
            )
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise SolutionFault(f"loading the reference weights failed: {str(exc).splitlines()[0]}") from None
        model.eval()
    return model


class SolutionFault(Exception):
    pass


def _cpu_ticks(native_id: int | None) -> int | None:
    try:
        with open(f"/proc/self/task/{native_id}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def _busy_threads(threads: list[Any], settle_s: float = 0.02, window_s: float = 0.06) -> list[str]:
    """Threads that use CPU after forward returned (work escaping the call); idle pool threads
    that merely wait for the next task are not. The outputs were copied before this runs."""
    _sleep(settle_s)  # a pool thread finishing its bookkeeping after the last future is set
    before = {t.native_id: _cpu_ticks(t.native_id) for t in threads}
    _sleep(window_s)
    busy = []
    for t in threads:
        a, b = before.get(t.native_id), _cpu_ticks(t.native_id)
        if a is None or b is None or b > a:  # unknown counts as busy
            busy.append(t.name)
    return busy


def native_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


def _children() -> int:
    try:
        import psutil

        return len([c for c in psutil.Process().children(recursive=True) if c.is_running()])
    except Exception:
        return 0


def _call_guarded(model: Any, inputs: list[Any], trace: bool, prev_outputs: list[Any]) -> tuple[Any, dict]:
    """One forward call with every in-process guard around it."""
    import torch

    findings: list[str] = []
    notes: list[str] = []
    in_tensors = tensors(inputs)
    before = _digest(in_tensors)
    py_threads = {t.ident for t in threading.enumerate()}
    children = _children()
    ops: dict[str, int] = {}
    entry_points = state.get("entry_points") or []
    calls_before = [e.calls for e in entry_points]
    t0 = _perf_ns()
    with torch.no_grad():
        if trace:
            with _tracer(ops):
                out = model(*inputs)
        else:
            out = model(*inputs)
    elapsed_ms = (_perf_ns() - t0) / 1e6
    # The answer is what the outputs hold at return: copied before any guard runs, so work left
    # running (a thread, a pool, a side stream) cannot complete them while the guards look.
    snapshot = map_tensors(out, lambda t: t.clone())
    outs = tensors(out)
    # work escaping the call: still-running Python threads or processes started by the candidate
    new = [t for t in threading.enumerate() if t.ident not in py_threads and t.is_alive()]
    busy = _busy_threads(new) if new else []
    if busy:
        findings.append(
            f"escape: thread(s) {', '.join(busy[:3])} started in forward still run after it returned"
        )
    elif new:
        notes.append(
            f"idle thread(s) {', '.join(t.name for t in new[:3])} started in forward remain (a pool)"
        )
    if _children() > children:
        findings.append("escape: a child process started in forward is still running after it returned")
    for o in outs:
        if type(o) is not torch.Tensor:
            findings.append(
                f"type: output is a {type(o).__module__}.{type(o).__name__}, not exactly torch.Tensor"
            )
    if not state.get("in_place"):
        for i, o in enumerate(outs):
            for j, x in enumerate(in_tensors):
                if o.numel() and x.numel() and _overlaps(o, x):
                    findings.append(
                        f"alias: output {i} shares storage with input {j} (outputs must be fresh)"
                    )
    if state.get("model_tensors"):
        for i, o in enumerate(outs):
            if any(o.numel() and p.numel() and _overlaps(o, p) for p in state["model_tensors"]):
                findings.append(f"alias: output {i} shares storage with a parameter or buffer of the model")
    for i, o in enumerate(outs):
        if any(o.numel() and p.numel() and _overlaps(o, p) for p in prev_outputs):
            findings.append(
                f"stale: output {i} reuses the storage of an earlier call's output (it was overwritten "
                "by this call); return fresh tensors"
            )
    if not state.get("in_place") and _digest(in_tensors) != before:
        findings.append("mutation: forward modified its input tensors")
    overridden = overridden_torch_ops(state["kernels_at_start"])
    if overridden:
        findings.append(
            f"policy: the solution registered its own kernel for torch operator(s) "
            f"{', '.join(overridden[:3])}: compute hidden inside an allowed op"
        )
    return snapshot, {
        "findings": findings,
        "notes": notes,
        "ops": ops,
        "kernels": {
            "known": [e._name for e in entry_points],
            "called": [e._name for e, n in zip(entry_points, calls_before, strict=True) if e.calls > n],
        },
        "elapsed_ms": elapsed_ms,
        "outputs_live": out,
    }


# Outputs of earlier verified calls, kept alive so that their storage cannot be handed out again:
# a new output overlapping one of them is the candidate writing into a buffer it returned before
# (a persistent buffer, or a ring of them). At least ``_KEEP_CALLS`` calls are kept (a ring of
# that many buffers is seen), more while they fit in ``_KEEP_BYTES``.
_KEEP_CALLS = 3
_KEEP_BYTES = 256 << 20


_MADV_DONTNEED = 4
_PAGE = 4096


def _release_pages(tensors_: list[Any]) -> None:
    """Give the pages of kept outputs back to the OS while their storage stays allocated.

    A kept output is held only for its addresses (nothing reads it again), so its memory need
    not stay resident: ``madvise(MADV_DONTNEED)`` on the whole pages inside each storage drops
    them (a later touch gets zero pages). The storage is still owned by this process, so the
    allocator cannot hand those addresses out again, which is all the overlap check needs; a
    candidate that kept a pointer into it reads zeros. Measured with tests/cpu/test_memory.py (peak
    of parent + workers per input byte): 10.3-12.1x without it, 8.6-10.2x with it.
    """
    import ctypes

    libc = state.get("libc")
    if libc is None:
        libc = state["libc"] = ctypes.CDLL(None)
    for t in tensors_:
        st = t.untyped_storage()
        if t.device.type != "cpu" or st.nbytes() < 16 * _PAGE:
            continue
        start = -(-st.data_ptr() // _PAGE) * _PAGE
        end = (st.data_ptr() + st.nbytes()) // _PAGE * _PAGE
        if end > start:
            libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), _MADV_DONTNEED)


def _keep(kept: list[list[Any]], outs: list[Any]) -> None:
    _release_pages(outs)
    kept.append(outs)

    def size(group: list[Any]) -> int:
        return sum(t.untyped_storage().nbytes() for t in group)

    while len(kept) > _KEEP_CALLS and sum(size(g) for g in kept) > _KEEP_BYTES:
        kept.pop(0)
    while len(kept) > 16:
        kept.pop(0)


def op_run_case(msg: dict[str, Any]) -> dict[str, Any]:
    """Run one verification case, once per fill byte, with fresh heap memory full of that byte."""
    import torch

    state["in_place"] = bool(msg.get("in_place"))
    try:
        model = build_model(msg["init_inputs"], msg["state_dict"])
    except SolutionFault as exc:
        return {"error": str(exc), "kind": "solution"}
    state["model_tensors"] = (
        list(model.parameters()) + list(model.buffers()) if isinstance(model, torch.nn.Module) else []
    )
    kept: list[list[Any]] = state.setdefault("kept_outputs", [])
    runs = []
    threads_seen = []
    for k, fill in enumerate(msg.get("fills") or [0xA5]):
        inputs = to_device([x.clone() if isinstance(x, torch.Tensor) else x for x in msg["inputs"]])
        prev = [t for group in kept for t in group]
        _malloc_fill(int(fill))
        try:
            out, info = _call_guarded(model, inputs, trace=bool(msg.get("trace", True)), prev_outputs=prev)
        finally:
            _malloc_fill(None)
        threads_seen.append(native_threads())
        live = info.pop("outputs_live")
        run = {"outputs": out, "fill": int(fill), **info}
        if state["in_place"] and k == 0:  # what the caller's tensors hold afterwards
            run["inputs_after"] = map_tensors(inputs, lambda t: t.clone())
        runs.append(run)
        _keep(kept, tensors(live))  # kept alive: later calls must not write into them
    return {"runs": runs, "native_threads": threads_seen}


def setup(role: str) -> None:
    """Before the loop (and before any candidate code): the tracer class, torch's kernel table,
    and, in the candidate role, the tracer on every thread the candidate starts."""
    state["tracer_cls"] = _tracer_class()
    state["kernels_at_start"] = torch_kernel_registrations()
    if role == "candidate":
        _trace_new_threads()


def pinned() -> dict[str, Any]:
    """The thread-start wrapper, where it is installed (for the integrity check)."""
    import _thread

    if "thread_start" not in state:
        return {}
    return {
        "_thread.start_new_thread": _thread.start_new_thread,
        "threading._start_new_thread": threading._start_new_thread,  # type: ignore[attr-defined]
    }
