"""Complete, versioned cache keys: a record is reused only when everything it depends on matches."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@functools.cache
def toolchain() -> dict[str, str]:
    """Versions that change what a kernel computes or how fast: python, torch, numpy, numba, gcc."""
    from importlib.metadata import PackageNotFoundError, version

    from kernelarena.backends.c import compiler_version

    versions = {"python": sys.version.split()[0], "gcc": compiler_version()}
    for dist in ("torch", "numpy", "numba", "triton"):
        try:  # package metadata: no import of heavy modules just to read a version
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "absent"
    return versions


@functools.cache
def device_id(device: str = "cpu") -> str:
    """The machine a measurement belongs to: ``kind:machine-id:model``.

    The id is :mod:`kernelarena.hw`'s, the one machine id of the store (hardware profiles and
    tuning evaluations use it too), so a record, a profile and a tuning run of one machine agree;
    the model name is only there for people reading the records.
    """
    if device.startswith("cuda"):
        import torch

        from kernelarena.hw.cuda import cuda_machine_id

        index = int(device.split(":", 1)[1]) if ":" in device else 0
        return f"cuda:{cuda_machine_id(index)}:{torch.cuda.get_device_name(index)}"
    from kernelarena.hw.profile import cpu_machine_id, cpu_model_name

    return f"{device}:{cpu_machine_id()}:{cpu_model_name()}"


def make_key(kind: str, parts: dict[str, Any]) -> str:
    blob = json.dumps({"schema": SCHEMA_VERSION, "kind": kind, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# Package code a solution's machine code depends on besides its own text: the shared C headers, the
# build helpers it imports (``kernelarena.backends``) and the templates a built-in solution is
# rendered from. A change to any of them must invalidate stored verdicts and timings.
_KERNEL_SOURCE_DIRS = ("csrc", "backends", "search/templates")


@functools.cache
def kernel_sources_hash() -> str:
    """Hash of every file under the package folders that kernels are built from."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for folder in _KERNEL_SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".h", ".c", ".py"):
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]
