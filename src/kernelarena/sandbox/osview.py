"""What the parent process sees of a worker through the OS, out of the candidate's reach."""

from __future__ import annotations

import os
from typing import Any

# Threads of a worker that may run during one verified case besides the compute threads it was
# given (the message reader, torch's pool woken by the harness's own copies, a Python pool's
# submitter). Measured here (threads ran >= 10 us): an OpenMP kernel on 2 threads shows 2, a Python pool of
# 2 shows 3; the 8-thread oversubscription case shows 8.
HARNESS_THREADS = 3
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu_ns(worker: Any) -> dict[int, int]:
    """CPU time of each OS thread of the worker (ns, from ``/proc/<pid>/task/<tid>/schedstat``;
    empty where that is not available)."""
    out: dict[int, int] = {}
    try:
        base = f"/proc/{worker.proc.pid}/task"
        tids = os.listdir(base)
    except (OSError, AttributeError):
        return out
    for tid in tids:
        try:
            with open(f"{base}/{tid}/schedstat") as fh:
                ns = int(fh.read().split()[0])
            if ns == 0:  # scheduler statistics off: clock ticks of utime + stime instead
                with open(f"{base}/{tid}/stat") as fh:
                    fields = fh.read().rpartition(")")[2].split()
                ns = (int(fields[11]) + int(fields[12])) * 1_000_000_000 // _TICKS
            out[int(tid)] = ns
        except (OSError, ValueError, IndexError):
            continue
    return out


def active_threads(before: dict[int, int], after: dict[int, int], min_ns: int = 10_000) -> int:
    """Threads that ran at least ``min_ns`` between two :func:`thread_cpu_ns` snapshots (a thread
    born in between counts with all its time)."""
    return sum(1 for tid, ns in after.items() if ns - before.get(tid, 0) >= min_ns)
