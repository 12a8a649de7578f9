"""Worker ops of the reference role: build verification cases and compute reference outputs.

Run inside the reference worker (task code only; never a solution). ``make_case`` builds the
model and inputs of one case from the checker's seed (parameters re-drawn, inputs perturbed per
distribution) and computes the float64 and native reference outputs; ``reference_for`` recomputes
them for given weights and inputs (sampled timed calls). The checker plans the cases
(``verify.verifier``); the messages are built in ``kernelarena.worker_client``.
"""

from __future__ import annotations

from typing import Any


def exec_task(path: str, overrides: dict[str, Any]) -> Any:
    from pathlib import Path

    from kernelarena.tasks.loader import exec_task_module

    return exec_task_module(Path(path), overrides)


def _as_list(inputs: Any) -> list[Any]:
    return list(inputs) if isinstance(inputs, list | tuple) else [inputs]


def _redraw(model: Any, seed: int) -> None:
    """Re-draw floating parameters and buffers so defaults (weight 1, bias 0) cannot be assumed.

    Each tensor becomes ``t * u + 0.1 * rms(t) * n`` (``u`` uniform in [0.5, 1.5), ``n`` standard
    normal). Drawn and combined in float32, in place: a random weight
    needs no more precision, and float64 draws and copies made this 8 s of a 10 s reference case
    for a 45M-parameter layer (flat_gemm_decode), paid by every case and timing input set.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, t in list(model.named_parameters()) + list(model.named_buffers()):
            if t.is_floating_point() and t.numel():
                rms = float(torch.linalg.vector_norm(t.float())) / t.numel() ** 0.5  # inf: scale 1
                scale = rms if rms > 0 and rms == rms and rms != float("inf") else 1.0
                work = t if t.dtype == torch.float32 else t.float()
                u = torch.rand(t.shape, generator=gen, dtype=torch.float32).add_(0.5)
                work.mul_(u)
                work.add_(torch.randn(t.shape, generator=gen, dtype=torch.float32, out=u), alpha=0.1 * scale)
                if work is not t:
                    t.copy_(work)


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

    from kernelarena.verify.distributions import perturb_case  # sign flips where the reference stays finite

    module = exec_task(msg["task_path"], msg["overrides"])
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
    inputs, dist_note = perturb_case(model, inputs, msg["distribution"], msg.get("perturb"), seed + 2)
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
        "distribution_note": dist_note,
    }
    if msg.get("in_place"):  # what an IN_PLACE task leaves in its inputs (compared by the checker)
        reply["inputs_after"] = call_inputs
    del call_inputs  # otherwise a dead copy of the inputs stays through the float64 forward
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


def op_reference_for(msg: dict[str, Any]) -> dict[str, Any]:
    """Reference outputs (float64 and native) of the task's Model for given weights and inputs."""
    import copy

    import torch

    module = exec_task(msg["task_path"], msg["overrides"])
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
