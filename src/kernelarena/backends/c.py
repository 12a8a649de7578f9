"""C kernels built with gcc into shared libraries and called through ctypes.

Builds are cached by a hash of (source, flags, compiler version, CPU) and written atomically, so
concurrent workers never see a half-written library and a rebuild costs nothing.

Example::

    from kernelarena.backends.c import load_library
    lib = load_library(SRC, functions={"rmsnorm": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})
    lib.rmsnorm(x.data_ptr(), w.data_ptr(), y.data_ptr(), rows, cols, 1e-6)
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kernelarena import settings

# -march=native: kernels are tuned for the machine they run on; the CPU's flags are in the key.
DEFAULT_FLAGS: tuple[str, ...] = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared")

_CTYPES: dict[str, Any] = {
    "ptr": ctypes.c_void_p,
    "long": ctypes.c_long,
    "int": ctypes.c_int,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "size_t": ctypes.c_size_t,
}


# The shared C kernel library: headers under ``csrc/karena/`` (``#include "karena/vec.h"``). Every
# build gets ``-I`` to it, and the text of every header a source includes (transitively) is part of
# the build key, so a header change rebuilds exactly what depends on it.
INCLUDE_DIR = Path(__file__).resolve().parent.parent / "csrc"
_INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def included_headers(source: str, include_dir: Path | None = None) -> list[Path]:
    """The shared-library headers ``source`` includes, transitively, in a stable order."""
    include_dir = include_dir or INCLUDE_DIR
    seen: dict[Path, None] = {}
    todo = [source]
    while todo:
        for name in _INCLUDE_RE.findall(todo.pop()):
            path = (include_dir / name).resolve()
            if path in seen or not path.is_file():
                continue
            seen[path] = None
            todo.append(path.read_text())
    return sorted(seen)


class CompileError(RuntimeError):
    """gcc rejected the source; ``str(err)`` holds the first lines of its diagnostics."""


@functools.cache
def compiler_version(cc: str = "gcc") -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else "unknown"


@functools.cache
def _cpu_signature() -> str:
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name")):
                flags += line
    except OSError:
        pass
    return platform.machine() + hashlib.sha256(flags.encode()).hexdigest()[:12]


def build_key(source: str, flags: tuple[str, ...], cc: str = "gcc") -> str:
    headers = [f"{h.name}\0{h.read_text()}" for h in included_headers(source)]
    blob = "\0".join([source, *headers, " ".join(flags), compiler_version(cc), _cpu_signature()])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def build_shared_library(
    source: str, *, flags: tuple[str, ...] = DEFAULT_FLAGS, libs: tuple[str, ...] = ("-lm",), cc: str = "gcc"
) -> Path:
    """Compile ``source`` (C) into a cached shared library and return its path."""
    cache = settings.build_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = build_key(source, flags + libs, cc)
    lib = cache / f"c_{key}.so"
    if lib.exists():
        return lib
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp) / "kernel.c"
        src.write_text(source)
        out = Path(tmp) / "kernel.so"
        cmd = [cc, *flags, f"-I{INCLUDE_DIR}", str(src), "-o", str(out), *libs]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            diag = "\n".join(proc.stderr.splitlines()[:30])
            raise CompileError(f"{cc} failed (exit {proc.returncode}):\n{diag}")
        os.replace(out, lib)  # atomic within the cache directory
    return lib


def load_library(
    source: str,
    *,
    functions: dict[str, tuple[str | None, list[str]]] | None = None,
    flags: tuple[str, ...] = DEFAULT_FLAGS,
    libs: tuple[str, ...] = ("-lm",),
) -> ctypes.CDLL:
    """Build (or reuse) ``source`` and load it; ``functions`` declares restype and argtypes.

    Types are named: ``ptr``, ``long``, ``int``, ``float``, ``double``, ``size_t`` (None = void).
    """
    lib = ctypes.CDLL(str(build_shared_library(source, flags=flags, libs=libs)))
    for name, (restype, argtypes) in (functions or {}).items():
        fn = getattr(lib, name)
        fn.restype = _CTYPES[restype] if restype else None
        fn.argtypes = [_CTYPES[a] for a in argtypes]
    return lib
