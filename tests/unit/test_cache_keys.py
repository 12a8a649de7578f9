"""Cache keys of check/bench records cover everything that changes the kernel or the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.store import keys
from kernelarena.tasks.loader import load_task
from kernelarena.types import CheckOptions, Solution

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _key(data: Path, options: CheckOptions) -> str:
    task = load_task(data / "tasks" / "scaled_tanh.py")
    sol = Solution(data / "solutions" / "scaled_tanh_c.py", "h", "c")
    return keys.make_key("check", api._key_parts(task, sol, options))


def test_threads_resolved_in_the_key(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression (issue 11): threads=None was stored as None, so a record measured with
    # KARENA_THREADS=1 was reused for a run with 2 threads.
    monkeypatch.setenv("KARENA_THREADS", "1")
    one = _key(data, CheckOptions())
    monkeypatch.setenv("KARENA_THREADS", "2")
    assert _key(data, CheckOptions()) != one
    assert _key(data, CheckOptions(threads=2)) == _key(data, CheckOptions())


def test_forced_isa_and_kernel_sources_in_the_key(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: KARENA_CPU_ISA=avx2 reused the verdict of the native build, and an edit of a shared
    # header (csrc/karena/*.h) reused verdicts of the solutions that include it.
    native = _key(data, CheckOptions())
    monkeypatch.setenv("KARENA_CPU_ISA", "avx2")
    assert _key(data, CheckOptions()) != native
    monkeypatch.delenv("KARENA_CPU_ISA")
    monkeypatch.setattr(keys, "kernel_sources_hash", lambda: "edited")
    monkeypatch.setattr(api, "kernel_sources_hash", lambda: "edited")
    assert _key(data, CheckOptions()) != native


def test_kernel_sources_hash_covers_the_headers() -> None:
    keys.kernel_sources_hash.cache_clear()
    assert len(keys.kernel_sources_hash()) == 16
    root = Path(keys.__file__).resolve().parent.parent
    assert any((root / "csrc" / "karena").glob("*.h"))
