"""The parent's view of a worker's threads through /proc (the thread-allotment guard relies on it)."""

from __future__ import annotations

import os
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from kernelarena.sandbox.osview import active_threads, thread_cpu_ns

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_active_threads_counts_threads_that_ran() -> None:
    me = SimpleNamespace(proc=SimpleNamespace(pid=os.getpid()))
    stop = threading.Event()
    idle = [threading.Thread(target=stop.wait) for _ in range(3)]
    for t in idle:
        t.start()
    before = thread_cpu_ns(me)
    assert len(before) >= 4

    done = threading.Event()

    def spin() -> None:  # alive until the second snapshot: a thread that has exited is not seen
        end = time.perf_counter() + 0.05
        while time.perf_counter() < end:
            pass
        done.wait()

    busy = [threading.Thread(target=spin) for _ in range(4)]
    for t in busy:
        t.start()
    time.sleep(0.5)
    after = thread_cpu_ns(me)
    # only this test's threads: earlier tests may have left pool threads (torch, HTTP servers)
    # in this process that run on their own schedule
    ours = {threading.get_native_id()} | {t.native_id for t in idle + busy}
    assert ours <= set(after)
    done.set()
    stop.set()
    for t in idle + busy:
        t.join()
    # the 4 spinners ran (their whole life counts: they were born between the snapshots); the 3
    # idle waiters did not; this thread may or may not pass the 10 us floor
    mine = {tid: ns for tid, ns in after.items() if tid in ours}
    assert 4 <= active_threads(before, mine) <= 5
    assert active_threads(before, after) >= 4
    assert thread_cpu_ns(SimpleNamespace(proc=SimpleNamespace(pid=2**31 - 1))) == {}
