"""Cache keys of check/bench records cover everything that changes the kernel or the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.store import keys
from kernelarena.tasks.loader import load_task
from kernelarena.types import CheckOptions, Solution, TimingOptions

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


def _bench_key(data: Path, copts: CheckOptions, topts: TimingOptions) -> str:
    task = load_task(data / "tasks" / "scaled_tanh.py")
    sol = Solution(data / "solutions" / "scaled_tanh_c.py", "h", "c")
    return api.bench_key(task, sol, None, "eager", *api._resolved(copts, topts))


def test_bench_key_carries_the_resolved_threads(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression (issue 11): bench keys stored TimingOptions(threads=None), so timings measured with
    # KARENA_THREADS=1 were reused for a run with 2 threads, and an explicit threads=2 did not
    # share the record of the same run left at the default.
    monkeypatch.setenv("KARENA_THREADS", "1")
    one = _bench_key(data, CheckOptions(), TimingOptions())
    monkeypatch.setenv("KARENA_THREADS", "2")
    two = _bench_key(data, CheckOptions(), TimingOptions())
    assert two != one
    assert _bench_key(data, CheckOptions(), TimingOptions(threads=2)) == two
    assert _bench_key(data, CheckOptions(threads=2), TimingOptions()) == two
    copts, topts = api._resolved(CheckOptions(), TimingOptions(threads=3))
    assert copts.threads == topts.threads == 3  # verification and timing run with the same threads


def test_roofline_never_reads_the_default_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression (issue 11): roofline_percent read settings.db_path() even under --db or --no-store.
    from kernelarena.hw import store as hw_store

    seen: list[Path] = []

    def fake(db_path: Path, **kw: object) -> object:
        seen.append(Path(db_path))
        raise RuntimeError("no profile in this test")

    monkeypatch.setattr(hw_store, "load_or_measure", fake)
    monkeypatch.setattr("kernelarena.hw.load_or_measure", fake)
    api._profile.cache_clear()
    mine = tmp_path / "mine.db"
    api.roofline_percent(1e9, 1e9, 1.0, "cold", mine)
    api.roofline_percent(1e9, 1e9, 1.0, "cold", None)
    api._profile.cache_clear()
    assert seen == [mine, Path(":memory:")]


def test_device_id_is_the_one_machine_id() -> None:
    # records, hardware profiles and tuning evaluations name a machine by the same id (issue 11)
    from kernelarena.hw.profile import cpu_machine_id

    kind, machine, model = keys.device_id("cpu").split(":", 2)
    assert (kind, machine) == ("cpu", cpu_machine_id()) and model
