"""CUDA C++ kernels: compile checks for a GPU architecture without a GPU, and the load_inline runtime path.

Two compile paths give the same :class:`CompileReport` (registers, spills, shared memory, PTX and
cubin sizes), so a search can reject a kernel that spills or cannot launch before any GPU time is
spent on it:

* ``nvcc`` when it is on ``PATH`` (or ``$CUDA_HOME/bin``): ``nvcc -arch=sm_90 -cubin -Xptxas -v``;
* otherwise NVRTC from the ``nvidia-cuda-nvrtc`` wheel, called through ctypes. NVRTC compiles
  straight to a cubin for a real architecture and runs ptxas internally, so ``--ptxas-options=-v``
  puts the same resource lines into the program log; no ptxas binary is needed.

Compile errors are data: the report has ``ok=False`` and ``error`` holds the first error lines.

Example::

    from kernelarena.backends.cuda import compile_cuda
    rep = compile_cuda(SRC, arch=90)           # nvcc if present, else NVRTC
    assert rep.ok, rep.error
    print(rep.n_regs, rep.n_spills, rep.shared_bytes)

Runtime path (GPU machines only): :func:`load_inline_cached` builds a ``torch.utils.cpp_extension``
extension. A cold ``load_inline`` build costs about 35 s (nvcc plus the torch headers), so the build
directory and module name are keyed by a hash of the sources, flags and toolchain: every later
process on the machine imports the finished ``.so`` in well under a second.

This module imports neither torch nor triton at import time.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena import settings

log = logging.getLogger(__name__)

COMPILE_TIMEOUT_S = 120.0
MAX_ERROR_LINES = 12


@dataclass(frozen=True)
class FunctionResources:
    """What ptxas reported for one kernel entry point."""

    name: str
    n_regs: int = 0
    spill_store_bytes: int = 0
    spill_load_bytes: int = 0
    stack_bytes: int = 0
    shared_bytes: int = 0
    barriers: int = 0


@dataclass(frozen=True)
class CompileReport:
    """Outcome of compiling one source (CUDA C++ or one Triton kernel) for one GPU architecture.

    ``n_regs`` is the largest register count over the entry points; ``n_spills`` is the total spill
    traffic in bytes (stores + loads) that ptxas reported, 0 when nothing spills. ``shared_bytes`` is
    the largest static + dynamic shared memory an entry point needs per block.
    """

    ok: bool
    error: str = ""
    arch: str = "sm_90"
    compiler: str = ""
    n_regs: int = 0
    n_spills: int = 0
    shared_bytes: int = 0
    stack_bytes: int = 0
    ptx_bytes: int = 0
    cubin_bytes: int = 0
    functions: tuple[FunctionResources, ...] = ()
    log: str = field(default="", repr=False)

    @staticmethod
    def failure(error: str, *, arch: str, compiler: str, log_text: str = "") -> CompileReport:
        return CompileReport(ok=False, error=error, arch=arch, compiler=compiler, log=log_text)


def sm_arch(arch: int | str) -> str:
    """``90`` -> ``sm_90``; ``"90a"`` -> ``sm_90a``; ``"sm_90"`` unchanged."""
    text = str(arch)
    return text if text.startswith("sm_") else f"sm_{text}"


# ptxas -v lines, as printed by nvcc -Xptxas -v, NVRTC's log and Triton's ptxas(-blackwell).
_ENTRY_RE = re.compile(r"(?:Compiling entry function|Function properties for) '?([\w$.]+)'?")
_PROPS_RE = re.compile(
    r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", re.IGNORECASE
)
_USED_RE = re.compile(r"Used (\d+) registers")
_BARRIERS_RE = re.compile(r"used (\d+) barriers")
_SMEM_RE = re.compile(r"(\d+) bytes smem")


def parse_ptxas_info(text: str) -> tuple[FunctionResources, ...]:
    """Per-entry resources from ``ptxas -v`` output (any tool prefix: ptxas, ptxas-blackwell, NVRTC)."""
    order: list[str] = []
    found: dict[str, dict[str, int]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _ENTRY_RE.search(line)
        if m:
            current = m.group(1)
            if current not in found:
                order.append(current)
                found[current] = {}
            continue
        if current is None:
            continue
        entry = found[current]
        if (m := _PROPS_RE.search(line)) is not None:
            entry["stack_bytes"] = int(m.group(1))
            entry["spill_store_bytes"] = int(m.group(2))
            entry["spill_load_bytes"] = int(m.group(3))
        if (m := _USED_RE.search(line)) is not None:
            entry["n_regs"] = int(m.group(1))
            if (b := _BARRIERS_RE.search(line)) is not None:
                entry["barriers"] = int(b.group(1))
            if (s := _SMEM_RE.search(line)) is not None:
                entry["shared_bytes"] = int(s.group(1))
    return tuple(FunctionResources(name=name, **found[name]) for name in order)


def first_error_lines(text: str, limit: int = MAX_ERROR_LINES) -> str:
    """The diagnostics a user needs: from the first line that mentions an error, ``limit`` lines."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if re.search(r"\berror\b|fatal", line, re.IGNORECASE):
            return "\n".join(lines[i : i + limit])
    return "\n".join(lines[:limit])


def report_from_ptxas(
    log_text: str,
    *,
    arch: str,
    compiler: str,
    ptx_bytes: int,
    cubin_bytes: int,
    extra_shared_bytes: int = 0,
) -> CompileReport:
    """Fold per-function ptxas figures into one report; ``extra_shared_bytes`` adds dynamic smem."""
    funcs = parse_ptxas_info(log_text)
    return CompileReport(
        ok=True,
        arch=arch,
        compiler=compiler,
        n_regs=max((f.n_regs for f in funcs), default=0),
        n_spills=sum(f.spill_store_bytes + f.spill_load_bytes for f in funcs),
        shared_bytes=max((f.shared_bytes for f in funcs), default=0) + extra_shared_bytes,
        stack_bytes=max((f.stack_bytes for f in funcs), default=0),
        ptx_bytes=ptx_bytes,
        cubin_bytes=cubin_bytes,
        functions=funcs,
        log=log_text,
    )


# --------------------------------------------------------------------------------------------- nvcc


def find_nvcc() -> str | None:
    """nvcc on PATH, else under ``$CUDA_HOME/bin`` or ``/usr/local/cuda/bin``."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    return None


@functools.cache
def nvcc_version(nvcc: str) -> str:
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=False).stdout
    m = re.search(r"release ([\d.]+)", out)
    return f"nvcc {m.group(1)}" if m else "nvcc"


def compile_with_nvcc(
    source: str,
    *,
    arch: int | str = 90,
    options: Sequence[str] = (),
    include_dirs: Sequence[str] = (),
    nvcc: str | None = None,
) -> CompileReport:
    """``nvcc -arch=sm_XX -cubin -Xptxas -v``; keeps the PTX to report its size."""
    sm = sm_arch(arch)
    exe = nvcc or find_nvcc()
    if exe is None:
        return CompileReport.failure("nvcc not found", arch=sm, compiler="nvcc")
    name = nvcc_version(exe)
    with tempfile.TemporaryDirectory(prefix="karena_nvcc_") as tmp:
        src = Path(tmp) / "kernel.cu"
        src.write_text(source)
        cubin = Path(tmp) / "kernel.cubin"
        cmd = [exe, f"-arch={sm}", "-cubin", "-Xptxas", "-v", "--keep", "--keep-dir", tmp, *options]
        cmd += [f"-I{d}" for d in include_dirs]
        cmd += [str(src), "-o", str(cubin)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, cwd=tmp)
        except subprocess.TimeoutExpired:
            return CompileReport.failure(
                f"nvcc timed out after {COMPILE_TIMEOUT_S:.0f} s", arch=sm, compiler=name
            )
        text = (proc.stdout + proc.stderr).replace(str(src), src.name)  # no temp paths in reports
        if proc.returncode != 0 or not cubin.exists():
            return CompileReport.failure(first_error_lines(text), arch=sm, compiler=name, log_text=text)
        ptx_bytes = sum(p.stat().st_size for p in Path(tmp).glob("*.ptx"))
        return report_from_ptxas(
            text, arch=sm, compiler=name, ptx_bytes=ptx_bytes, cubin_bytes=cubin.stat().st_size
        )


# -------------------------------------------------------------------------------------------- NVRTC


def find_nvrtc_library() -> Path | None:
    """libnvrtc from the ``nvidia-cuda-nvrtc`` wheel (``nvidia/cu13/lib`` or ``nvidia/cuda_nvrtc/lib``)."""
    candidates: list[Path] = []
    for entry in sys.path:
        base = Path(entry or ".") / "nvidia"
        if not base.is_dir():
            continue
        for sub in ("cu13/lib", "cuda_nvrtc/lib", "cu12/lib"):
            candidates += sorted((base / sub).glob("libnvrtc.so.*"))
    candidates = [c for c in candidates if "alt" not in c.name and "builtins" not in c.name]
    return candidates[0] if candidates else None


class _Nvrtc:
    """Thin ctypes binding of the NVRTC calls we need."""

    def __init__(self, path: Path):
        # libnvrtc dlopens its builtins by soname; load them first, globally, so that works without
        # LD_LIBRARY_PATH pointing into site-packages.
        for builtins in sorted(path.parent.glob("libnvrtc-builtins.so.*")):
            if "alt" not in builtins.name:
                ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
                break
        self.lib = ctypes.CDLL(str(path))
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
        self.version = f"nvrtc {major.value}.{minor.value}"

    def _get(self, prog: ctypes.c_void_p, what: str) -> bytes:
        size = ctypes.c_size_t()
        if getattr(self.lib, f"nvrtcGet{what}Size")(prog, ctypes.byref(size)) != 0 or size.value == 0:
            return b""
        buf = ctypes.create_string_buffer(size.value)
        getattr(self.lib, f"nvrtcGet{what}")(prog, buf)
        return buf.raw[: size.value]

    def compile(self, source: str, options: Sequence[str]) -> tuple[int, str, bytes, bytes]:
        """Return (status, log, ptx, cubin)."""
        prog = ctypes.c_void_p()
        status = self.lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernel.cu", 0, None, None)
        if status != 0:
            return status, self.lib.nvrtcGetErrorString(status).decode(), b"", b""
        try:
            opts = [o.encode() for o in options]
            arr = (ctypes.c_char_p * len(opts))(*opts)
            status = self.lib.nvrtcCompileProgram(prog, len(opts), arr)
            log_text = self._get(prog, "ProgramLog").rstrip(b"\0").decode(errors="replace")
            if status != 0:
                name = self.lib.nvrtcGetErrorString(status).decode()
                return status, f"{log_text}\n{name}", b"", b""
            return 0, log_text, self._get(prog, "PTX"), self._get(prog, "CUBIN")
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


@functools.cache
def _nvrtc() -> _Nvrtc | None:
    path = find_nvrtc_library()
    if path is None:
        return None
    try:
        return _Nvrtc(path)
    except OSError as err:
        log.warning("could not load NVRTC from %s: %s", path, err)
        return None


def nvrtc_available() -> bool:
    return _nvrtc() is not None


def compile_with_nvrtc(
    source: str, *, arch: int | str = 90, options: Sequence[str] = (), include_dirs: Sequence[str] = ()
) -> CompileReport:
    """NVRTC straight to a cubin for ``arch``; ptxas runs inside NVRTC and logs its resource lines."""
    sm = sm_arch(arch)
    nv = _nvrtc()
    if nv is None:
        return CompileReport.failure(
            "NVRTC library not found (pip install nvidia-cuda-nvrtc)", arch=sm, compiler="nvrtc"
        )
    opts = [f"--gpu-architecture={sm}", "--ptxas-options=-v", "--std=c++17", *options]
    opts += [f"--include-path={d}" for d in include_dirs]
    status, log_text, ptx, cubin = nv.compile(source, opts)
    if status != 0 or not cubin:
        return CompileReport.failure(
            first_error_lines(log_text), arch=sm, compiler=nv.version, log_text=log_text
        )
    return report_from_ptxas(
        log_text, arch=sm, compiler=nv.version, ptx_bytes=len(ptx), cubin_bytes=len(cubin)
    )


def compile_cuda(
    source: str,
    *,
    arch: int | str = 90,
    method: str = "auto",
    options: Sequence[str] = (),
    include_dirs: Sequence[str] = (),
) -> CompileReport:
    """Compile CUDA C++ for ``arch`` without needing a GPU; ``method`` is auto, nvcc or nvrtc.

    ``auto`` prefers nvcc (it also handles host code, as load_inline sources have) and falls back to
    NVRTC (device code only).
    """
    if method not in ("auto", "nvcc", "nvrtc"):
        raise ValueError(f"method must be auto, nvcc or nvrtc, not {method!r}")
    if method == "nvcc" or (method == "auto" and find_nvcc() is not None):
        return compile_with_nvcc(source, arch=arch, options=options, include_dirs=include_dirs)
    return compile_with_nvrtc(source, arch=arch, options=options, include_dirs=include_dirs)


# ------------------------------------------------------------------------------------ runtime (GPU)


def _toolchain_tag() -> str:
    import torch

    nvcc = find_nvcc()
    return "|".join([torch.__version__, str(torch.version.cuda), nvcc_version(nvcc) if nvcc else "no-nvcc"])


def load_inline_cached(
    name: str,
    *,
    cpp_sources: str | Sequence[str] = (),
    cuda_sources: str | Sequence[str] = (),
    functions: Sequence[str] | None = None,
    extra_cuda_cflags: Sequence[str] = ("-O3",),
    extra_cflags: Sequence[str] = ("-O3",),
    verbose: bool = False,
) -> Any:
    """``torch.utils.cpp_extension.load_inline`` with a build directory keyed by content.

    Needs a CUDA GPU when ``cuda_sources`` is given. A cold build takes ~35 s; the result is cached
    under ``settings.build_cache_dir()/torch_ext/<hash>`` and reused by every later process (and the
    hash-suffixed module name keeps two different sources from clashing in one process).
    """
    import torch
    from torch.utils.cpp_extension import load_inline

    cpp = [cpp_sources] if isinstance(cpp_sources, str) else list(cpp_sources)
    cu = [cuda_sources] if isinstance(cuda_sources, str) else list(cuda_sources)
    if cu and not torch.cuda.is_available():
        raise RuntimeError(
            "load_inline with cuda_sources needs a CUDA GPU; use compile_cuda() to check sources"
        )
    blob = "\0".join([*cpp, "\1", *cu, " ".join(extra_cuda_cflags), " ".join(extra_cflags), _toolchain_tag()])
    if torch.cuda.is_available():
        blob += torch.cuda.get_device_name()
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    build_dir = settings.build_cache_dir() / "torch_ext" / f"{name}_{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    return load_inline(
        name=f"{name}_{key}",
        cpp_sources=cpp,
        cuda_sources=cu or None,
        functions=list(functions) if functions is not None else None,
        extra_cflags=list(extra_cflags),
        extra_cuda_cflags=list(extra_cuda_cflags),
        build_directory=str(build_dir),
        verbose=verbose,
    )
