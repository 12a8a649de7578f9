"""kernelarena: verify, time honestly and search for fast compute kernels.

``import kernelarena`` is light: torch, numba, triton and the GPU stack load only when a function
that needs them is called.

Example::

    import kernelarena as ka
    verdict = ka.check("rmsnorm", "my_rmsnorm.py")
    if verdict.passed:
        result = ka.bench("rmsnorm", "my_rmsnorm.py", baseline="compile")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["TuningSession", "bench", "check", "load_task"]

if TYPE_CHECKING:
    from kernelarena.api import TuningSession, bench, check
    from kernelarena.tasks.loader import load_task


def __getattr__(name: str) -> Any:
    if name in ("check", "bench", "TuningSession"):
        from kernelarena import api

        return getattr(api, name)
    if name == "load_task":
        from kernelarena.tasks.loader import load_task

        return load_task
    raise AttributeError(f"module 'kernelarena' has no attribute {name!r}")
