"""The program a sandboxed worker runs: the op registry, assembled from the layers that own the ops.

``sandbox/`` holds the generic machinery (process launch, zygote, wire protocol, the loop and its
integrity check) and imports nothing above it; each op lives in the layer whose concern it is:

=================  ==============================  ==========================================
op                 module                          concern
=================  ==============================  ==========================================
``make_case``      ``verify.worker_cases``         build a case, reference outputs (reference)
``reference_for``  ``verify.worker_cases``         reference outputs for given inputs
``load``           ``verify.worker_guards``        import the solution / the task's Model
``run_case``       ``verify.worker_guards``        one verified call under every guard
``setup_timing``   ``timing.worker_ops``           build and warm the timed model
``time_batch``     ``timing.worker_ops``           a timed batch (CPU clock or CUDA events)
``call_metrics``   ``timing.call_metrics``         memory of one call
``compile_check``  ``backends.triton``             Triton kernels compiled for sm_90
``ping``           ``sandbox.worker``              the worker's pid
=================  ==============================  ==========================================

This module sits above all of them, so nothing in the library imports it: the parent names it
(``ENTRY`` in ``kernelarena.worker_client``) and a fresh worker imports it through the launcher
stub, or the zygote imports it once and calls :func:`preload` before forking.
"""

from __future__ import annotations

import sys
from typing import Any

from kernelarena.sandbox import tensors, worker
from kernelarena.timing import call_metrics, worker_ops
from kernelarena.verify import policy, worker_cases, worker_guards


def op_compile_check(msg: dict[str, Any]) -> dict[str, Any]:
    from kernelarena.backends.triton import op_compile_check as run  # Triton only when asked

    return run(msg)


OPS: dict[str, worker.Op] = {
    "make_case": worker_cases.op_make_case,
    "reference_for": worker_cases.op_reference_for,
    "load": worker_guards.op_load,
    "run_case": worker_guards.op_run_case,
    "setup_timing": worker_ops.op_setup_timing,
    "time_batch": worker_ops.op_time_batch,
    "call_metrics": call_metrics.op_call_metrics,
    "compile_check": op_compile_check,
    "ping": worker.op_ping,
}

# every module whose functions guard, build or time a call: pinned after every request
PROGRAM = worker.Program(
    ops=OPS,
    modules=(tensors, policy, worker_cases, worker_guards, worker_ops, call_metrics, sys.modules[__name__]),
    setup=worker_guards.setup,
    pinned=worker_guards.pinned,
    bulky=frozenset({"make_case", "reference_for", "run_case", "call_metrics"}),
)


def preload() -> None:
    """Import what the first request would import (the zygote runs this once, before forking).

    The task loader; the dispatch-mode path (``worker_guards.preload``: torch._dynamo, ~2.5 s);
    numba (~1 s to import; CPU solutions and KernelBench-style answers use it): its thread pool
    starts only on a first parallel call, so nothing runs in the fork server. Starts no thread.
    """
    import contextlib

    import kernelarena.tasks.loader  # noqa: F401

    worker_guards.preload()
    with contextlib.suppress(ImportError):
        import numba  # noqa: F401


def main(argv: list[str]) -> int:
    """Run as a worker: ``argv`` is ROLE FD_IN FD_OUT."""
    return worker.serve(argv, PROGRAM)
