"""A sandboxed worker process, started through ``LAUNCHER`` (``python -c ... ROLE FD_IN FD_OUT``).

The launcher imports this module by its package name, so ``__main__`` is a two-line stub and not
the module holding the guards; the guards' identities are also captured at start-up and checked
after every request (``_integrity_check``), so a candidate that replaces one is caught.

Roles:
- ``reference``: executes the task file; makes verification cases (inputs, parameters, float64 and
  native reference outputs) and times the eager / torch.compile baseline. Never imports a solution.
- ``candidate``: imports one solution file and runs it. Never imports the task file, so the
  reference ``Model`` is not reachable from candidate code.

The clocks are bound here before any candidate code is imported; the parent cross-checks the
reported times against its own wall clock.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import sys
import threading
import time
import traceback
from typing import Any

_perf_ns = time.perf_counter_ns  # bound before candidate code can patch the time module
_sleep = time.sleep
_np_add = __import__("numpy").add  # the cache flush (bound early, like the clocks)

from kernelarena.sandbox import protocol  # noqa: E402
from kernelarena.sandbox.call_metrics import op_call_metrics as _call_metrics  # noqa: E402
from kernelarena.verify.policy import overridden_torch_ops, torch_kernel_registrations  # noqa: E402

_state: dict[str, Any] = {}


# --- helpers ---------------------------------------------------------------------------------


def _tensors(value: Any) -> list[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _map_tensors(value: Any, fn: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(_map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    return value


def _digest(tensors: list[Any]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for t in tensors:
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

    libc = _state.get("libc")
    if libc is None:
        libc = _state["libc"] = ctypes.CDLL(None)
    if byte is not None and byte == 0xFF:
        raise ValueError("glibc cannot fill with 0xFF (perturb 0 means off)")
    libc.mallopt(_M_PERTURB, 0 if byte is None else byte ^ 0xFF)


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _exec_task(path: str, overrides: dict[str, Any]) -> Any:
    from kernelarena.tasks.loader import exec_task_module

    return exec_task_module(__import__("pathlib").Path(path), overrides)


def _redraw(model: Any, seed: int) -> None:
    """Re-draw floating parameters and buffers so defaults (weight 1, bias 0) cannot be assumed."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and t.numel():
                rms = t.double().pow(2).mean().sqrt().item()
                scale = rms if rms > 0 and rms == rms else 1.0
                u = torch.rand(t.shape, generator=gen, dtype=torch.float64) + 0.5
                n = torch.randn(t.shape, generator=gen, dtype=torch.float64)
                t.copy_((t.double() * u + 0.1 * scale * n).to(t.dtype))


def _perturb(inputs: list[Any], distribution: str, allowed: list[int] | None, seed: int) -> list[Any]:
    import torch

    if distribution == "as-given":
        return inputs
    gen = torch.Generator().manual_seed(seed)
    out = list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
            continue
        if allowed is not None and i not in allowed:
            continue
        if distribution == "scaled":
            out[i] = x * 8.0
        elif distribution == "outliers":
            mask = torch.rand(x.shape, generator=gen) < 0.01
            y = x.clone()
            y[mask] = y[mask] * 32.0
            out[i] = y
        else:
            raise ValueError(f"unknown input distribution {distribution!r}")
    return out


def _as_list(inputs: Any) -> list[Any]:
    return list(inputs) if isinstance(inputs, list | tuple) else [inputs]


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
            with _state["tracer_cls"]():
                yield
        finally:
            _SINK[0] = None

    return traced()


def preload() -> None:
    """Import what the first traced call would import (a fork server runs this once).

    The first torch op under a TorchDispatchMode imports ``torch._dynamo`` (~2.5 s of CPU); done
    here, every worker forked afterwards starts with it. numba (~1 s to import; CPU solutions and
    KernelBench-style answers use it) likewise: its thread pool starts only on a first parallel
    call, so nothing runs in the fork server. Starts no thread.
    """
    import contextlib

    import torch

    with _tracer_class()():
        torch.empty(2).add_(1)
    with contextlib.suppress(ImportError):
        import numba  # noqa: F401


def _trace_new_threads() -> None:
    """Start every Python thread inside the policy tracer (candidate role, before its import).

    A TorchDispatchMode is thread-local: torch compute on a helper thread is invisible to the
    mode entered on the calling thread. Wrapping the one primitive every ``threading.Thread``
    (and ``concurrent.futures`` pool) starts through makes each new thread enter its own mode,
    which records into the call in progress; between calls it records nothing. Threads created
    natively (C++ ``std::thread`` calling ATen) are not covered: documented limit.
    """
    import _thread

    cls = _state["tracer_cls"]
    original = _thread.start_new_thread

    def start_new_thread(function: Any, args: Any, kwargs: Any = None) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            with cls():
                return function(*a, **k)

        return original(run, args, kwargs or {})

    _thread.start_new_thread = start_new_thread
    threading._start_new_thread = start_new_thread  # type: ignore[attr-defined]
    _state["thread_start"] = start_new_thread


# --- reference role --------------------------------------------------------------------------


def _float64_copies(inputs: list[Any]) -> list[Any]:
    """Inputs for the float64 reference: one private copy each (a model may write its inputs).

    ``double()`` of a float32 tensor already is a copy; only float64 and integer tensors are cloned.
    """
    import torch

    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            y = x.double() if x.is_floating_point() else x
            out.append(y.clone() if y is x else y)
        else:
            out.append(x)
    return out


def op_make_case(msg: dict[str, Any]) -> dict[str, Any]:
    """Build the model and inputs of one case; compute the float64 and native reference outputs."""
    import copy

    import torch

    module = _exec_task(msg["task_path"], msg["overrides"])
    seed = int(msg["seed"])
    torch.manual_seed(seed)
    init_inputs = _as_list(module.get_init_inputs())
    model = module.Model(*init_inputs)
    if msg.get("randomize_params", True):
        _redraw(model, int(msg.get("param_seed", seed)) ^ 0x5EED)
    model.eval()
    torch.manual_seed(seed + 1)
    inputs = _as_list(module.get_inputs())
    if msg.get("resample"):  # lint: the same case with some inputs drawn again
        torch.manual_seed(int(msg["resample_seed"]))
        other = _as_list(module.get_inputs())
        inputs = [other[i] if i in msg["resample"] else x for i, x in enumerate(inputs)]
    inputs = _perturb(inputs, msg["distribution"], msg.get("perturb"), seed + 2)
    call_inputs = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    with torch.no_grad():
        native = model(*call_inputs)
    reply: dict[str, Any] = {
        "init_inputs": init_inputs,
        "state_dict": dict(model.state_dict()),
        "inputs": inputs,
        "native": native,
        "reference": None,
        "reference_dtype": "native",
        "flops": None,
        "bytes_moved": None,
    }
    if msg.get("in_place"):  # what an IN_PLACE task leaves in its inputs (compared by the checker)
        reply["inputs_after"] = call_inputs
    if msg.get("float64", True):
        try:
            m64 = copy.deepcopy(model).double()
            with torch.no_grad():
                ref = m64(*_float64_copies(inputs))
            reply["reference"], reply["reference_dtype"] = ref, "float64"
        except Exception as exc:  # some ops have no float64 kernel: fall back to native, say so
            reply["reference_note"] = f"float64 reference failed ({type(exc).__name__}: {exc}); native used"
    for key in ("flops", "bytes_moved", "memory_budget"):
        fn = getattr(module, key, None)
        if key == "memory_budget" and fn is None:  # MEMORY_BUDGET: bytes, or a function of the inputs
            fn = getattr(module, "MEMORY_BUDGET", None)
            if isinstance(fn, int | float):
                reply[key] = float(fn)
        if callable(fn):
            try:
                reply[key] = float(fn(*inputs))
            except Exception as exc:
                reply[f"{key}_error"] = f"{type(exc).__name__}: {exc}"
    return reply


# --- candidate role --------------------------------------------------------------------------


def _to_device(value: Any) -> Any:
    device = _state.get("device", "cpu")
    return value if device == "cpu" else _map_tensors(value, lambda t: t.to(device))


def op_load(msg: dict[str, Any]) -> dict[str, Any]:
    """Import the solution file (candidate role) or the task file (reference role) for running."""
    path = msg["path"]
    _state["device"] = msg.get("device", "cpu")
    if _state["role"] == "candidate":
        spec = importlib.util.spec_from_file_location("karena_solution", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["karena_solution"] = module
        spec.loader.exec_module(module)
        if not hasattr(module, "ModelNew"):
            return {"error": "solution defines no class ModelNew", "kind": "solution"}
        _state["cls"] = module.ModelNew
        _state["entry_points"] = _count_entry_points(module)
    else:
        module = _exec_task(path, msg.get("overrides") or {})
        _state["cls"] = module.Model
    _state["module"] = module
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


def _build(init_inputs: list[Any], state_dict: dict[str, Any]) -> Any:
    import torch

    model = _state["cls"](*init_inputs)
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
            raise _SolutionFault(
                "parameter/buffer names differ from the reference Model's (" + "; ".join(parts) + "): "
                "ModelNew must register the same names so the reference weights can be copied in"
            )
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as exc:
            raise _SolutionFault(
                f"loading the reference weights failed: {str(exc).splitlines()[0]}"
            ) from None
        model.eval()
    return model


class _SolutionFault(Exception):
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


def _native_threads() -> int:
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
    in_tensors = _tensors(inputs)
    before = _digest(in_tensors)
    py_threads = {t.ident for t in threading.enumerate()}
    children = _children()
    ops: dict[str, int] = {}
    entry_points = _state.get("entry_points") or []
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
    snapshot = _map_tensors(out, lambda t: t.clone())
    outs = _tensors(out)
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
    if not _state.get("in_place"):
        for i, o in enumerate(outs):
            for j, x in enumerate(in_tensors):
                if o.numel() and x.numel() and _overlaps(o, x):
                    findings.append(
                        f"alias: output {i} shares storage with input {j} (outputs must be fresh)"
                    )
    if _state.get("model_tensors"):
        for i, o in enumerate(outs):
            if any(o.numel() and p.numel() and _overlaps(o, p) for p in _state["model_tensors"]):
                findings.append(f"alias: output {i} shares storage with a parameter or buffer of the model")
    for i, o in enumerate(outs):
        if any(o.numel() and p.numel() and _overlaps(o, p) for p in prev_outputs):
            findings.append(
                f"stale: output {i} reuses the storage of an earlier call's output (it was overwritten "
                "by this call); return fresh tensors"
            )
    if not _state.get("in_place") and _digest(in_tensors) != before:
        findings.append("mutation: forward modified its input tensors")
    overridden = overridden_torch_ops(_state["kernels_at_start"])
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


def _keep(kept: list[list[Any]], outs: list[Any]) -> None:
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

    _state["in_place"] = bool(msg.get("in_place"))
    try:
        model = _build(msg["init_inputs"], msg["state_dict"])
    except _SolutionFault as exc:
        return {"error": str(exc), "kind": "solution"}
    _state["model_tensors"] = (
        list(model.parameters()) + list(model.buffers()) if isinstance(model, torch.nn.Module) else []
    )
    kept: list[list[Any]] = _state.setdefault("kept_outputs", [])
    runs = []
    threads_seen = []
    for k, fill in enumerate(msg.get("fills") or [0xA5]):
        inputs = _to_device([x.clone() if isinstance(x, torch.Tensor) else x for x in msg["inputs"]])
        prev = [t for group in kept for t in group]
        _malloc_fill(int(fill))
        try:
            out, info = _call_guarded(model, inputs, trace=bool(msg.get("trace", True)), prev_outputs=prev)
        finally:
            _malloc_fill(None)
        threads_seen.append(_native_threads())
        live = info.pop("outputs_live")
        run = {"outputs": out, "fill": int(fill), **info}
        if _state["in_place"] and k == 0:  # what the caller's tensors hold afterwards
            run["inputs_after"] = _map_tensors(inputs, lambda t: t.clone())
        runs.append(run)
        _keep(kept, _tensors(live))  # kept alive: later calls must not write into them
    return {"runs": runs, "native_threads": threads_seen}


# --- timing (both roles) ---------------------------------------------------------------------


def op_setup_timing(msg: dict[str, Any]) -> dict[str, Any]:
    import torch

    _set_threads(int(msg["threads"]))
    try:
        model = _build(msg["init_inputs"], msg["state_dict"])
    except _SolutionFault as exc:
        return {"error": str(exc), "kind": "solution"}
    compile_mode = msg.get("compile_mode")
    if compile_mode:
        model = torch.compile(model, mode=None if compile_mode == "default" else compile_mode)
    _state["timed_model"] = model
    _state["input_sets"] = [list(_to_device(list(s))) for s in msg["input_sets"]]
    flush = int(msg.get("flush_bytes", 0))
    _state["flush"] = torch.empty(flush // 4, dtype=torch.float32).fill_(1.0) if flush else None
    # warm-up: first calls compile, fault in pages, start thread pools
    t_end = _perf_ns() + int(float(msg.get("warmup_s", 0.3)) * 1e9)
    calls = 0
    with torch.no_grad():
        while calls < 3 or (_perf_ns() < t_end and calls < 1000):
            model(*_state["input_sets"][calls % len(_state["input_sets"])])
            calls += 1
    return {"warmup_calls": calls, "native_threads": _native_threads()}


def _nudge(inputs: list[Any], allowed: list[int] | None, rng: random.Random) -> None:
    """Change one element of each perturbable input, outside the timed region.

    Every timed call then sees inputs no earlier call saw, at the same addresses: a kernel that
    caches results by pointer, shape or content returns stale outputs, which the sampled checks
    of timed calls catch. Floating inputs: one element scaled by a positive factor (signs kept,
    e.g. second moments stay >= 0). Integer and bool inputs: one element takes the value of
    another element, so it stays in the input's own domain (token ids in range, indices valid);
    a task whose integer input must keep unique values (a permutation) leaves it out of
    ``PERTURB``.
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
            src = tuple(rng.randrange(n) for n in x.shape)
            x[idx] = x[src]


def op_time_batch(msg: dict[str, Any]) -> dict[str, Any]:
    """Time ``n_calls`` calls; keep the inputs and outputs of the calls listed in ``sample``."""
    import torch

    model, sets = _state["timed_model"], _state["input_sets"]
    n, offset = int(msg["n_calls"]), int(msg.get("offset", 0))
    if _state.get("device", "cpu") == "cuda":
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
        _state["flush"].numpy()
        if msg.get("cache", "cold") == "cold" and _state["flush"] is not None
        else None
    )
    times, kept = [], {}
    py_threads = {t.ident for t in threading.enumerate()}
    span0 = _perf_ns()
    with torch.no_grad():
        for i in range(n):
            idx = (offset + i) % len(sets)
            if nudge:
                _nudge(sets[idx], allowed, rng)
            if i in sample:
                sent = _map_tensors(sets[idx], lambda t: t.clone())
            if flush is not None:
                _np_add(flush, 1.0, out=flush)  # touch the whole buffer: evicts the kernel's data
            if gap_ms:
                _sleep(rng.uniform(0.0, 2.0 * gap_ms) / 1e3)
            t0 = _perf_ns()
            out = model(*sets[idx])
            t1 = _perf_ns()
            times.append((t1 - t0) / 1e6)
            if i in sample:
                kept[str(i)] = {"inputs": sent, "outputs": _map_tensors(out, lambda t: t.clone())}
            del out
    span_ms = (_perf_ns() - span0) / 1e6
    leaked = [t.name for t in threading.enumerate() if t.ident not in py_threads and t.is_alive()]
    return {"times_ms": times, "span_ms": span_ms, "samples": kept, "leaked_threads": leaked,
            "native_threads": _native_threads()}  # fmt: skip


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
            "native_threads": _native_threads()}  # fmt: skip


def op_reference_for(msg: dict[str, Any]) -> dict[str, Any]:
    """Reference outputs (float64 and native) of the task's Model for given weights and inputs."""
    import copy

    import torch

    module = _exec_task(msg["task_path"], msg["overrides"])
    model = module.Model(*msg["init_inputs"])
    model.load_state_dict(msg["state_dict"])
    model.eval()
    inputs = list(msg["inputs"])
    with torch.no_grad():
        native = model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
        reference = None
        if msg.get("float64", True):
            try:
                reference = copy.deepcopy(model).double()(*_float64_copies(inputs))
            except Exception:
                reference = None
    return {"native": native, "reference": reference}


def op_compile_check(msg: dict[str, Any]) -> dict[str, Any]:
    """Compile a Triton solution's kernels for a GPU target without a GPU (candidate role)."""
    from kernelarena.backends.triton import compile_check_file

    report = compile_check_file(msg["path"], int(msg.get("arch", 90)))
    return {
        "ok": report.ok,
        "error": None,
        "compile_error": report.error,
        "unchecked": list(report.unchecked),
        "kernels": [
            {"name": name, "ok": r.ok, "error": r.error, "n_regs": r.n_regs, "n_spills": r.n_spills}
            for name, r in report.results
        ],
    }


# --- main loop -------------------------------------------------------------------------------

_OPS = {
    "make_case": op_make_case,
    "load": op_load,
    "run_case": op_run_case,
    "setup_timing": op_setup_timing,
    "time_batch": op_time_batch,
    "reference_for": op_reference_for,
    "compile_check": op_compile_check,
    # per-call metrics (peak memory, allocations): kernelarena.sandbox.call_metrics
    "call_metrics": lambda msg: _call_metrics(_state, msg),
    "ping": lambda msg: {"pid": os.getpid()},
}


def _classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
        return "memory"
    return "exception"


def _undumpable() -> None:
    """PR_SET_DUMPABLE 0: other processes of this user can no longer ptrace this one or read
    its memory through /proc/PID/mem (without CAP_SYS_PTRACE), and it leaves no core dump."""
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def _drop_ptrace_capability() -> bool:
    """Remove CAP_SYS_PTRACE from this process (effective, permitted, inheritable and bounding sets).

    ``PR_SET_DUMPABLE`` 0 protects the reference worker and the karena process only from
    processes *without* CAP_SYS_PTRACE; a harness run as root (containers, CI) hands that
    capability to every worker. The candidate gives it up before its code is imported, and the
    bounding set keeps it from coming back through ``exec``. Returns whether the capability is gone
    (True also when it was never held)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    cap_sys_ptrace = 19
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(24, cap_sys_ptrace, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly without CAP_SETPCAP
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    keep = ~(1 << cap_sys_ptrace) & 0xFFFFFFFF
    if not (data[0].effective | data[0].permitted | data[0].inheritable) & ~keep:
        return True
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    return bool(libc.capset(ctypes.byref(header), data) == 0)


def _integrity_check() -> Any:
    """Capture the harness's functions now; return a check that names those replaced since.

    Bound before any candidate code is imported. The check covers this module's functions and
    op table, the protocol and policy modules, the thread-start wrapper and the bound clocks: an
    attribute replaced (``worker._overlaps = ...``) or a function's code or defaults rewritten is
    reported, and the returned closure holds the originals where candidate code cannot name them.
    """
    import _thread
    import types

    from kernelarena.verify import policy

    def functions(module: Any) -> dict[str, Any]:
        return {
            f"{module.__name__}.{k}": v
            for k, v in vars(module).items()
            if isinstance(v, types.FunctionType | type) or k in ("_perf_ns", "_sleep", "_np_add", "_SINK")
        }

    me = sys.modules[__name__]
    modules = (me, protocol, policy)

    def current() -> dict[str, Any]:
        now: dict[str, Any] = {}
        for m in modules:
            now.update(functions(m))
        now.update({f"_OPS[{k}]": v for k, v in _OPS.items()})
        if "thread_start" in _state:
            now["_thread.start_new_thread"] = _thread.start_new_thread
            now["threading._start_new_thread"] = threading._start_new_thread  # type: ignore[attr-defined]
        return now

    def fingerprint(v: Any) -> Any:
        return (id(v), getattr(v, "__code__", None), getattr(v, "__defaults__", None),
                repr(getattr(v, "__kwdefaults__", None)))  # fmt: skip

    start = current()
    marks = {k: fingerprint(v) for k, v in start.items()}
    if "thread_start" in _state:
        marks["_thread.start_new_thread"] = marks["threading._start_new_thread"] = fingerprint(
            _state["thread_start"]
        )
    keep_alive = list(start.values())  # the originals: ids stay unique while they live

    def check() -> list[str]:
        now = current()
        changed = [k for k, mark in marks.items() if k not in now or fingerprint(now[k]) != mark]
        return changed if keep_alive else []

    return check


# Run by the parent as ``python -c LAUNCHER ROLE FD_IN FD_OUT``: ``__main__`` is then this stub,
# not the module whose functions guard the candidate.
LAUNCHER = "import sys; from kernelarena.sandbox.worker import main; sys.exit(main(sys.argv[1:]))"


def main(argv: list[str]) -> int:
    role, fd_in, fd_out = argv[0], int(argv[1]), int(argv[2])
    _state["role"] = role
    _set_threads(int(os.environ.get("KARENA_THREADS", "1")))
    _state["tracer_cls"] = _tracer_class()
    _state["kernels_at_start"] = torch_kernel_registrations()
    if role == "reference":  # holds reference outputs: not readable via /proc/PID/mem or ptrace
        _undumpable()
    if role == "candidate":
        if not _drop_ptrace_capability():
            print("karena worker: could not drop CAP_SYS_PTRACE", file=sys.stderr)
        _trace_new_threads()
    tampered = _integrity_check()
    recv, send = protocol.recv, protocol.send
    while True:
        try:
            msg = recv(fd_in)
        except protocol.ProtocolError:
            return 0  # parent went away
        op = msg.get("op")
        if op == "exit":
            return 0
        try:
            handler = _OPS[str(op)]
            reply = handler(msg)
        except BaseException as exc:  # everything becomes data for the parent
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            reply = {
                "error": f"{type(exc).__name__}: {exc}",
                "kind": _classify(exc),
                "traceback": "".join(tb[-6:]),
            }
        changed = tampered()
        if changed:  # no result of a tampered worker is trusted
            reply = {
                "error": "tamper: harness internals were replaced at run time ("
                + ", ".join(changed[:4])
                + "): the solution must not modify the harness",
                "kind": "solution",
            }
        reply.setdefault("error", None)
        if "nonce" in msg:
            reply["nonce"] = msg["nonce"]
        try:
            send(fd_out, reply)
        except Exception as exc:  # an unencodable output is the candidate's fault
            send(fd_out, {"error": f"could not send the result: {type(exc).__name__}: {exc}",
                          "kind": "solution", "nonce": msg.get("nonce")})  # fmt: skip
        # one message in memory at a time: the last request and reply go before the next arrives
        msg = reply = {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
