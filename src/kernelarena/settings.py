"""The one place where environment variables are read.

Every knob has a default that works on a fresh machine; each ``KARENA_*`` variable overrides one.
"""

from __future__ import annotations

import os
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def home_dir() -> Path:
    """Directory for the store and build caches (``KARENA_HOME``, default ``./.karena``)."""
    return Path(_env("KARENA_HOME", ".karena")).expanduser().resolve()


def db_path() -> Path:
    """SQLite file of verdicts and measurements (``KARENA_DB``, default ``$KARENA_HOME/karena.db``)."""
    explicit = os.environ.get("KARENA_DB")
    return Path(explicit).expanduser().resolve() if explicit else home_dir() / "karena.db"


def build_cache_dir() -> Path:
    """Compiled kernels, keyed by source hash (``KARENA_BUILD_CACHE``, default a per-user dir).

    Kept outside ``KARENA_HOME`` so that a sandboxed worker, whose working directory is private,
    and every project on the machine share one cache.
    """
    explicit = os.environ.get("KARENA_BUILD_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kernelarena" / "builds"


def footprint_cache_dir() -> Path:
    """Per-task memory footprints measured on the meta device (``KARENA_FOOTPRINT_CACHE``, default
    next to the build cache), keyed by the task file's hash, so scaling a task is measured once."""
    explicit = os.environ.get("KARENA_FOOTPRINT_CACHE")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kernelarena" / "footprints"


def worker_timeout_s() -> float:
    """Wall-clock limit for one request to a sandboxed worker (``KARENA_WORKER_TIMEOUT_S``)."""
    return float(_env("KARENA_WORKER_TIMEOUT_S", "120"))


def worker_memory_bytes() -> int:
    """Address-space limit of a sandboxed worker (``KARENA_WORKER_MEMORY_GB``, default 16 GiB)."""
    return int(float(_env("KARENA_WORKER_MEMORY_GB", "16")) * (1 << 30))


def num_threads() -> int:
    """Threads given to kernels and to torch in workers (``KARENA_THREADS``, default all cores)."""
    value = os.environ.get("KARENA_THREADS")
    return int(value) if value else (os.cpu_count() or 1)


def llm_base_url() -> str | None:
    """OpenAI-compatible endpoint for the LLM agent (``KARENA_LLM_BASE_URL``)."""
    return os.environ.get("KARENA_LLM_BASE_URL")


def llm_api_key() -> str | None:
    return os.environ.get("KARENA_LLM_API_KEY")


def compile_modes() -> tuple[str, ...]:
    """torch.compile modes tried for ``--baseline compile``; the fastest is kept
    (``KARENA_COMPILE_MODES``, comma-separated; default ``default,max-autotune-no-cudagraphs``)."""
    raw = _env("KARENA_COMPILE_MODES", "default,max-autotune-no-cudagraphs")
    return tuple(m.strip() for m in raw.split(",") if m.strip())


def gemm_cpu_isa() -> str:
    """SIMD path the GEMM-class solutions are built for (``KARENA_CPU_ISA``: ``avx512``, ``avx2``,
    ``generic``; default ``native``, what the machine has). Forcing a lower path on a bigger CPU
    is how tests verify the AVX2 and generic code on an AVX-512 machine."""
    return _env("KARENA_CPU_ISA", "native").strip().lower() or "native"


def llm_config_path() -> Path:
    """TOML file with ``base_url``, ``api_key``, ``model``, ``provider`` and an optional ``[prices]``
    table for the LLM agent (``KARENA_LLM_CONFIG``, default ``~/.config/kernelarena/llm.toml``)."""
    explicit = os.environ.get("KARENA_LLM_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kernelarena" / "llm.toml"


def llm_vendor_api_key(provider: str) -> str | None:
    """The vendor's own key variable, a fallback after ``KARENA_LLM_API_KEY``
    (``OPENAI_API_KEY`` for ``openai``, ``ANTHROPIC_API_KEY`` for ``anthropic``)."""
    name = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}.get(provider)
    return os.environ.get(name) if name else None
