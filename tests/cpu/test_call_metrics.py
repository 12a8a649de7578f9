"""Per-call metrics of a bench record (peak memory, allocations, overhead, energy): measured for
real on a solution whose memory use is known, present in `karena bench --json` and the store."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kernelarena.store.sqlite import Store
from kernelarena.timing import metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.unit
def test_overhead_fit() -> None:
    # 50 us fixed + 1 ns/byte: recovered exactly from two points
    assert metrics.overhead_fit(0.05 + 1e-3, 1e3, 0.05 + 1e-6, 1.0) == pytest.approx((0.05, 0.05 / 1e-6))
    assert metrics.overhead_fit(1.0, 10.0, 0.5, 10.0) == (None, None)  # equal work: no fit
    # the small call slower than the headline (thread wake-up under load): all overhead, finite ratio
    o, r = metrics.overhead_fit(1.0, 1e6, 2.0, 1e3)
    assert o == 2.0 and r == pytest.approx(2.0 / (1.0 * 1e3 / 1e6))


@pytest.mark.unit
def test_rapl_reader_sums_packages_and_handles_wraparound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, e in (("intel-rapl:0", 999_000), ("intel-rapl:1", 5_000)):
        z = tmp_path / name
        z.mkdir()
        (z / "energy_uj").write_text(str(e))
        (z / "max_energy_range_uj").write_text("1000000")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a subzone (core): not added on top of its package
    monkeypatch.setattr(metrics, "POWERCAP", tmp_path)
    reader, source = metrics.rapl()
    assert reader is not None and "intel-rapl:0, intel-rapl:1" in source
    a = reader.read_j()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("1000")  # wrapped: 2000 uJ later
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("8000")
    assert reader.joules(a, reader.read_j()) == pytest.approx((2000 + 3000) / 1e6)
    monkeypatch.setattr(metrics, "POWERCAP", tmp_path / "absent")
    reader, why = metrics.rapl()
    assert reader is None and "does not exist" in why


@pytest.mark.cpu
@pytest.mark.timeout(400)
def test_bench_json_and_store_carry_measured_metrics(data: Path, tmp_path: Path) -> None:
    """A C solution that allocates a [1024, 4096] float32 matrix (16 MiB) and a 4 KiB output per
    call: torch bytes allocated is exactly that, the resident peak shows the matrix."""
    task = tmp_path / "tanh_outer_nobudget.py"  # the budget would reject it before timing
    task.write_text(
        (data / "tasks" / "tanh_outer_rowsum.py").read_text().replace("MEMORY_BUDGET = 1 << 20", "")
    )
    db = tmp_path / "k.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "kernelarena.cli", "bench", str(task), str(data / "solutions" / "tanh_outer_materialized.py"),
         "--json", "--db", str(db), "--quick", "--budget", "0.5", "--cache", "warm"],
        capture_output=True, text=True, env=env, timeout=380,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    m = out["metrics"]
    matrix, vec = 1024 * 4096 * 4, 1024 * 4
    assert m["output_bytes"] == vec
    assert m["torch_allocated_bytes"] == matrix + vec  # exactly the two torch.empty calls
    assert 0.95 * matrix <= m["peak_rss_added_bytes"] <= matrix + (8 << 20)
    assert m["small_variant"] == "n=37,m=101"
    assert m["small_call_ms"] > 0 and 0 <= m["small_overhead_ms"] <= m["small_call_ms"]
    assert m["overhead_vs_compute"] is not None and m["overhead_vs_compute"] >= 0
    if m["energy_j_per_call"] is None:  # stated, with the reason
        assert any(u.startswith("energy_j_per_call: ") and len(u) > 30 for u in m["unavailable"])
    else:
        assert m["energy_j_per_call"] > 0 and m["energy_source"]
    assert any("VmHWM" in x for x in m["methods"])
    with Store(db) as store:
        (rec,) = list(store.records(kind="bench"))
    assert rec["payload"]["result"]["metrics"]["torch_allocated_bytes"] == matrix + vec
    text = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelarena.cli",
            "bench",
            str(task),
            str(data / "solutions" / "tanh_outer_materialized.py"),
            "--db",
            str(db),
            "--quick",
            "--budget",
            "0.5",
            "--cache",
            "warm",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    ).stdout  # fmt: skip  (reused from the store: prints the stored metrics)
    # the 16 MiB matrix, less the few pages the allocator already held resident (15.9-16.1 MiB)
    assert re.search(r"peak memory added by a call  1[56]\.\d MiB", text) and "energy per call" in text
