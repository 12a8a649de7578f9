"""% of roofline means what it says: a pure streaming copy timed under a cold cache is judged
against the machine's measured memory bandwidth and lands near 100% of it (issue 14: a cold-cache
rmsnorm was shown at 9%, judged against cache bandwidth, while it ran at 58% of DRAM bandwidth).

The bandwidth comes from the hardware profile, measured by this test into its own database with
the profile's own kernels and the thread count the bench uses (1), so profile and kernel are
measured the same way on the same machine in the same minute.

Accepted band, and why it is not tight: the profile's bandwidth is a PEAK (the best sample of the
best kernel, streaming stores included), the bench figure a MEDIAN of cold calls, each including
the Python/ctypes call and the output allocation. On an idle machine the copy lands at 75-110%.
On a shared machine the median call is slowed by preemption while the peak is not (measured here
with load ~4 on 2 CPUs: 59%, while the fastest call ran at 121% of the profile's peak), so the
lower bound follows the load average: 70% when the machine is quiet, 40% when it is busy. The
upper bound (130%) leaves room for a profile whose peak was itself taken under load.
"""

import os
from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.hw import load_or_measure
from kernelarena.hw.roofline import attainable_bw
from kernelarena.store.sqlite import Store
from kernelarena.types import CheckOptions, TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.slow, pytest.mark.timeout(400)]  # ~90 s on 2 busy cores


def test_streaming_copy_lands_near_memory_bandwidth(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    profile = load_or_measure(db, quick=True, threads=1)
    busy = os.getloadavg()[0] >= 0.5 * (os.cpu_count() or 1)
    with Store(db) as store:
        b = api.bench(data / "tasks" / "copy_large.py", data / "solutions" / "copy_stream_c.py", store=store,
                      check_options=CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False,
                                                 threads=1),
                      timing_options=TimingOptions(budget_s=1.0, cache="cold"))  # fmt: skip
    assert b.passed, (b.verdict.reasons, b.reasons)
    assert b.candidate is not None and b.bytes_moved == 2 * 4 * (6 << 20)
    pct = b.percent_of_roofline
    assert pct is not None, b.flags
    # the figure is bytes moved over DRAM bandwidth, from the profile in --db at the bench's threads
    dram = 100.0 * b.bytes_moved / profile.mem_bw_bytes_per_s / (b.candidate.median_ms * 1e-3)
    assert pct == pytest.approx(dram, rel=1e-6)
    # judged against the cache the 48 MiB working set would sit in, it could only look worse
    cache = 100.0 * b.bytes_moved / attainable_bw(profile, b.bytes_moved) / (b.candidate.median_ms * 1e-3)
    assert cache <= pct + 1e-9
    low = 40.0 if busy else 70.0
    assert low <= pct <= 130.0, (
        f"{pct:.0f}% of roofline (median {b.candidate.median_ms:.2f} ms, profile "
        f"{profile.mem_bw_bytes_per_s / 1e9:.1f} GB/s, busy={busy})"
    )
