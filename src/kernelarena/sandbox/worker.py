"""A sandboxed worker process: ``python -m kernelarena.sandbox.worker ROLE FD_IN FD_OUT``.

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

from kernelarena.sandbox import protocol  # noqa: E402

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


def _prefill(nbytes: int, pattern: int) -> None:
    """Leave freed heap memory full of a sentinel so ``torch.empty`` hands out garbage, not zeros."""
    import torch

    if nbytes <= 0:
        return
    chunks = []
    for size in (nbytes, nbytes // 2, nbytes // 4, 1 << 16, 1 << 12):
        buf = torch.empty(max(size, 1), dtype=torch.uint8)
        buf.fill_(pattern)
        chunks.append(buf)
    del chunks


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


def _tracer(ops: dict[str, int]) -> Any:
    from torch.utils._python_dispatch import TorchDispatchMode

    from kernelarena.verify.policy import op_name

    class _OpTracer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _count(ops, op_name(func))
            return func(*args, **(kwargs or {}))

    return _OpTracer()


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
    with torch.no_grad():
        native = model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in inputs])
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
    if msg.get("float64", True):
        try:
            m64 = copy.deepcopy(model).double()
            with torch.no_grad():
                ref = m64(*_float64_copies(inputs))
            reply["reference"], reply["reference_dtype"] = ref, "float64"
        except Exception as exc:  # some ops have no float64 kernel: fall back to native, say so
            reply["reference_note"] = f"float64 reference failed ({type(exc).__name__}: {exc}); native used"
    for key in ("flops", "bytes_moved"):
        fn = getattr(module, key, None)
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
    else:
        module = _exec_task(path, msg.get("overrides") or {})
        _state["cls"] = module.Model
    _state["module"] = module
    return {}


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
    return snapshot, {
        "findings": findings,
        "notes": notes,
        "ops": ops,
        "elapsed_ms": elapsed_ms,
        "outputs_live": out,
    }


def op_run_case(msg: dict[str, Any]) -> dict[str, Any]:
    """Run one verification case, possibly twice with differently pre-filled memory."""
    import torch

    _state["in_place"] = bool(msg.get("in_place"))
    try:
        model = _build(msg["init_inputs"], msg["state_dict"])
    except _SolutionFault as exc:
        return {"error": str(exc), "kind": "solution"}
    _state["model_tensors"] = (
        list(model.parameters()) + list(model.buffers()) if isinstance(model, torch.nn.Module) else []
    )
    runs = []
    prev: list[Any] = []
    threads_seen = []
    for k, pattern in enumerate(msg.get("prefill_patterns") or [0xFF]):
        inputs = _to_device([x.clone() if isinstance(x, torch.Tensor) else x for x in msg["inputs"]])
        _prefill(int(msg.get("prefill_bytes", 0)), pattern)
        out, info = _call_guarded(model, inputs, trace=bool(msg.get("trace")) and k == 0, prev_outputs=prev)
        threads_seen.append(_native_threads())
        live = info.pop("outputs_live")
        runs.append({"outputs": out, **info})
        prev = _tensors(live)  # kept alive: the next call must not write into them
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
    """Change one element of each perturbable floating input, outside the timed region.

    Every timed call then sees inputs no earlier call saw, at the same addresses: a kernel that
    caches results by pointer, shape or content returns stale outputs, which the sampled checks
    of timed calls catch. Positive factors keep signs (e.g. second moments stay >= 0).
    """
    import torch

    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.numel() == 0:
            continue
        if allowed is not None and i not in allowed:
            continue
        idx = tuple(rng.randrange(n) for n in x.shape)  # any layout: index, not a flat view
        x[idx] = x[idx] * (0.5 if rng.random() < 0.5 else 2.0)


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
    flush = _state["flush"] if msg.get("cache", "cold") == "cold" else None
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
                flush.add_(1.0)  # touch the whole buffer: evicts the kernel's data from cache
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
    "ping": lambda msg: {"pid": os.getpid()},
}


def _classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
        return "memory"
    return "exception"


def main(argv: list[str]) -> int:
    role, fd_in, fd_out = argv[0], int(argv[1]), int(argv[2])
    _state["role"] = role
    _set_threads(int(os.environ.get("KARENA_THREADS", "1")))
    while True:
        try:
            msg = protocol.recv(fd_in)
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
        reply.setdefault("error", None)
        try:
            protocol.send(fd_out, reply)
        except Exception as exc:  # an unencodable output is the candidate's fault
            protocol.send(fd_out, {"error": f"could not send the result: {type(exc).__name__}: {exc}",
                                   "kind": "solution"})  # fmt: skip
        # one message in memory at a time: the last request and reply go before the next arrives
        msg = reply = {}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
