"""Workers forked from the zygote behave as fresh processes would, and start in a fraction of the time.

What a fork could share by accident, and each test pins: the process (own pid, own session),
random state (re-seeded per child), the environment (each worker's own), deaths (a SIGKILL is seen
as one, via the zygote's report), the zygote's memory (undumpable: not writable by a candidate).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from kernelarena.sandbox import zygote
from kernelarena.sandbox.process import WorkerFailure
from kernelarena.worker_client import Load, WorkerClient

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(120)]

PRINTS_STATE = """
import os, random
import numpy
import torch.nn as nn
print("STATE", random.random(), numpy.random.random(), os.environ.get("KARENA_TEST_MARK"),
      os.getpid(), os.getsid(0), flush=True)

class ModelNew(nn.Module):
    def forward(self, x):
        return x
"""


def _state(w: WorkerClient, sol: Path) -> list[str]:
    reply = w.load(Load(path=str(sol)), 60)
    assert not reply.error, reply
    line = next(ln for ln in w.output_tail(20).splitlines() if ln.startswith("STATE"))
    return line.split()[1:]


def test_forked_workers_are_separate_processes_with_their_own_state(tmp_path: Path) -> None:
    assert zygote.enabled()
    sol = tmp_path / "prints_state.py"
    sol.write_text(PRINTS_STATE)
    with (
        WorkerClient("candidate", threads=1, env={"KARENA_TEST_MARK": "one"}) as a,
        WorkerClient("candidate", threads=1, env={"KARENA_TEST_MARK": "two"}) as b,
    ):
        assert isinstance(a.proc, zygote.Child) and isinstance(b.proc, zygote.Child)
        sa, sb = _state(a, sol), _state(b, sol)
        assert sa[0] != sb[0] and sa[1] != sb[1], "random state shared between forked workers"
        assert (sa[2], sb[2]) == ("one", "two"), "each worker must see its own environment"
        assert int(sa[3]) == a.proc.pid and int(sa[4]) == a.proc.pid, "own process, own session"
        assert a.ping().pid == a.proc.pid != b.proc.pid


def test_a_killed_worker_is_reported_as_killed() -> None:
    w = WorkerClient("candidate", threads=1)
    try:
        pid = w.ping(60).pid
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerFailure) as err:
            w.ping(30)
        assert err.value.kind == "memory" and "SIGKILL" in str(err.value)
        assert w.proc.wait(5) == -signal.SIGKILL
    finally:
        w.close()


def test_the_zygote_is_undumpable() -> None:
    """PR_SET_DUMPABLE 0 (read back by the zygote with PR_GET_DUMPABLE): without CAP_SYS_PTRACE a
    candidate cannot open its /proc/PID/mem to poison later workers. (This test cannot try the
    write itself: CI runs as root, which holds CAP_SYS_PTRACE.)"""
    with WorkerClient("candidate", threads=1) as w:
        w.ping(60)
        zygotes = [z for z in zygote._zygotes.values() if z.alive]
        assert zygotes and all(z.dumpable == 0 for z in zygotes)


def test_forking_is_much_faster_than_a_fresh_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interleaved start-to-first-answer times of both paths; the fork must win by a wide margin
    (a fresh interpreter imports torch: seconds; a fork: tens of milliseconds)."""
    WorkerClient("candidate", threads=1).close()  # the zygote is up

    def start(fresh: bool) -> float:
        monkeypatch.setenv("KARENA_ZYGOTE", "0" if fresh else "1")
        t0 = time.perf_counter()
        with WorkerClient("candidate", threads=1) as w:
            w.ping(60)
            return time.perf_counter() - t0

    fork, fresh = [], []
    for _ in range(2):
        fork.append(start(False))
        fresh.append(start(True))
    assert min(fresh) > 3 * min(fork), (fork, fresh)


def test_off_switch_starts_fresh_interpreters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KARENA_ZYGOTE", "0")
    with WorkerClient("candidate", threads=1) as w:
        assert not isinstance(w.proc, zygote.Child)
        assert w.ping(60).pid == w.proc.pid


PRINTS_PRELOAD = """
import sys
print("PRELOAD", "torch._dynamo" in sys.modules, "kernelarena.worker_entry" in sys.modules, flush=True)
import torch.nn as nn

class ModelNew(nn.Module):
    def forward(self, x):
        return x
"""


def test_forked_workers_start_with_the_entry_preloaded(tmp_path: Path) -> None:
    """The zygote imports the worker's entry module and runs its ``preload()`` (the dispatch-mode
    path, which imports torch._dynamo: ~2.5 s of CPU per worker otherwise) before forking."""
    sol = tmp_path / "prints_preload.py"
    sol.write_text(PRINTS_PRELOAD)
    with WorkerClient("candidate", threads=1) as w:
        assert isinstance(w.proc, zygote.Child)
        assert not w.load(Load(path=str(sol)), 60).error
        line = next(ln for ln in w.output_tail(20).splitlines() if ln.startswith("PRELOAD"))
    assert line.split()[1:] == ["True", "True"], line


def test_one_zygote_serves_workers_that_differ_only_in_harness_settings() -> None:
    # a test's temporary paths or the harness's own KARENA_* settings are applied in the child at
    # fork; only what shapes the interpreter or the preload's imports selects another zygote
    from kernelarena.sandbox.zygote import _key

    base = {"PYTHONPATH": "/src", "HOME": "/root"}
    assert _key({**base, "KARENA_LLM_CONFIG": "/tmp/a.toml"}, "m") == _key(base, "m")
    assert _key({**base, "KARENA_THREADS": "1", "OMP_NUM_THREADS": "1"}, "m") == _key(base, "m")
    assert _key({**base, "PYTHONPATH": "/other"}, "m") != _key(base, "m")
    assert _key({**base, "NUMBA_THREADING_LAYER": "omp"}, "m") != _key(base, "m")
