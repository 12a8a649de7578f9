"""EXPLOIT: reads the expected outputs out of another process's memory: the karena process and the reference worker (same user) hold the reference outputs, so forward opens /proc/PID/mem of each (found via /proc/PID/cmdline) and copies the reference bytes it finds next to its own input's bytes
EXPECT: outside tolerance
TASK: tests/data/tasks/scaled_tanh.py
CLASS: 6

What stops it: the reference worker and the karena process call prctl(PR_SET_DUMPABLE, 0), so a
process of the same user can neither ptrace them nor open their /proc/PID/mem or maps (without
CAP_SYS_PTRACE); the candidate's own process never holds a reference output, so scanning its own
heap (/proc/self/mem) finds nothing. With nothing read, this cheat returns zeros and fails the
comparison; if the guard ever broke, it would return the stolen (correct) values and pass.
A harness run as root (containers, CI) would hand every worker CAP_SYS_PTRACE, which overrides
the undumpable flag: the candidate worker drops that capability (effective, permitted and
bounding sets) before its code is imported.
"""

import os

import torch
import torch.nn as nn


def _heaps() -> list[tuple[int, int, int]]:
    """(pid, start, end) of the heaps of our parent (the karena process) and our siblings (the
    reference worker)."""
    found = []
    me, parent = os.getpid(), os.getppid()
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]:
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if pid != parent and ppid != parent:
                continue
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    if "[heap]" in line:
                        a, b = (int(v, 16) for v in line.split()[0].split("-"))
                        found.append((pid, a, b))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _steal(x: torch.Tensor) -> torch.Tensor | None:
    key = x.contiguous().view(-1)[:16].numpy().tobytes()
    n = x.numel() * 4
    for pid, a, b in _heaps():
        try:
            with open(f"/proc/{pid}/mem", "rb") as mem:
                mem.seek(a)
                heap = mem.read(min(b - a, 1 << 28))
        except OSError:
            continue
        at = heap.find(key)
        if at >= 0 and at + 2 * n <= len(heap):  # a guess at where the reference sits
            return torch.frombuffer(bytearray(heap[at + n : at + 2 * n]), dtype=torch.float32).view(x.shape)
        # the memory was readable: the guard failed even if this guess did not pay off
        raise RuntimeError(f"read {len(heap)} bytes of process {pid}'s heap")
    return None


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))
        self.seen: list = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stolen = _steal(x)
        self.seen.append(stolen is not None)
        return stolen.clone() if stolen is not None else torch.zeros_like(x)
