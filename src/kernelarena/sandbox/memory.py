"""Memory budget of a verification: how large the inputs may be, whether the next case fits, and
the peak resident memory of this process plus its workers.

The harness holds a bounded multiple of one case's input bytes at a time (see docs/verification.md,
"Memory model"), so the default input budget is a fraction of the memory the machine has free.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

# Peak resident bytes of parent + both workers per input byte above their idle size, measured on
# a float32 elementwise task (float64 reference, two runs per case; tests/cpu/test_memory.py):
# 8.6-10.3x, the parent's share (the case, the float64 reference and both runs' outputs) the largest;
# see docs. A case's footprint (inputs + parameters + outputs) is twice its inputs there: the
# pre-flight check asks for AMPLIFICATION / 2 times the footprint.
AMPLIFICATION = 12
MIN_MAX_BYTES = 16 << 20
MAX_MAX_BYTES = 1 << 30


def _glibc(name: str, *args: int) -> None:
    """Call a glibc malloc-tuning function; elsewhere (musl, macOS) nothing happens."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        getattr(ctypes.CDLL(None), name)(*args)


def release_free_memory() -> None:
    """Return the heap's free pages to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Tensors below glibc's mmap threshold (up to 32 MiB) live on the heap, and freeing them keeps
    their pages resident: without a trim each process stays at its own high-water mark, so the
    harness's peak was the *sum* of every process's worst moment (the reference worker's float64
    copies, the parent's comparison, the candidate's runs) instead of what is live at once.
    Called after each large request and case; it costs a few milliseconds.
    """
    _glibc("malloc_trim", 0)


def map_large_blocks(threshold: int = 1 << 20) -> None:
    """Serve blocks of ``threshold`` bytes and more with their own mappings (glibc
    ``M_MMAP_THRESHOLD``), so freeing a tensor unmaps it at once and a process's resident memory
    follows what it holds, not its heap's high-water mark. For the reference worker, which only
    computes cases: the candidate's worker keeps glibc's default, since only heap blocks get the
    sentinel fill of fresh memory (mapped ones are zero pages).
    """
    _glibc("mallopt", -3, int(threshold))  # -3: M_MMAP_THRESHOLD


def available_bytes() -> int | None:
    """Memory this process can still use: the machine's MemAvailable, lowered by an address-space
    limit (RLIMIT_AS) or a cgroup memory limit on this process; None when nothing can be read."""
    found = [b for b in (_machine_available(), _rlimit_left(), _cgroup_left()) if b is not None]
    return min(found) if found else None


def _machine_available() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # psutil missing or /proc unreadable: the other sources still count
        return None


def _rlimit_left() -> int | None:
    """Address space left under RLIMIT_AS (inherited by the workers, which each get their own)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        import psutil

        used = int(psutil.Process().memory_info().vms)
    except Exception:
        used = 0
    return max(0, soft - used)


def _cgroup_left() -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max`` or v1 ``limit_in_bytes``) minus
    its current use; None without a limit."""
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, rel = [*line.split(":", 2), "", ""][:3]
        if controllers == "":  # v2
            base = f"/sys/fs/cgroup{rel}".rstrip("/")
            limit, used = _read(f"{base}/memory.max"), _read(f"{base}/memory.current")
        elif "memory" in controllers.split(","):  # v1
            base = f"/sys/fs/cgroup/memory{rel}".rstrip("/")
            limit, used = _read(f"{base}/memory.limit_in_bytes"), _read(f"{base}/memory.usage_in_bytes")
        else:
            continue
        if limit.isdigit() and used.isdigit() and int(limit) < 1 << 60:  # v1 "no limit" is ~2**63
            return max(0, int(limit) - int(used))
    return None


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def clamp_to_rlimit(limit_bytes: int) -> int:
    """An address-space limit a child can set: not above this process's own hard limit."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    return limit_bytes if hard == resource.RLIM_INFINITY else min(limit_bytes, hard)


def default_max_bytes() -> int:
    """Budget for one case's inputs + parameters + outputs: free memory / (amplification x 2 for
    headroom), in [16 MiB, 1 GiB].

    Other processes on the machine need memory too; the factor 2 leaves them half.
    """
    avail = available_bytes()
    if avail is None:
        return 256 << 20
    budget = avail // (2 * AMPLIFICATION)
    return int(max(MIN_MAX_BYTES, min(MAX_MAX_BYTES, budget >> 20 << 20)))


def describe_bytes(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def headroom_problem(needed_bytes: int) -> str | None:
    """A message when the machine has less free memory than ``needed_bytes``; None when it fits."""
    avail = available_bytes()
    if avail is None or avail >= needed_bytes:
        return None
    return (
        f"the machine has {describe_bytes(avail)} free but this case needs about "
        f"{describe_bytes(needed_bytes)}; lower --max-bytes (inputs are scaled to fit it) or free memory"
    )


@dataclass(frozen=True)
class PeakRss:
    """Peak resident bytes seen while sampling: the process tree summed, and per role."""

    total_bytes: int
    parent_bytes: int
    children_bytes: int
    samples: int


class RssSampler:
    """Samples the resident memory of a process and all its descendants on a thread.

    Example::

        with RssSampler() as s:
            ka.check("rmsnorm", "sol.py")
        print(s.peak.total_bytes)
    """

    def __init__(self, pid: int | None = None, interval_s: float = 0.02, include_root: bool = True):
        import psutil

        self._root = psutil.Process(pid)
        self._interval = interval_s
        self._include_root = include_root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="karena-rss", daemon=True)
        self._total = self._parent = self._children = self._n = 0

    def _sample(self) -> None:
        import psutil

        try:
            parent = self._root.memory_info().rss if self._include_root else 0
            kids = self._root.children(recursive=True)
        except psutil.Error:
            return
        child = 0
        for k in kids:
            try:
                child += k.memory_info().rss
            except psutil.Error:
                continue
        self._n += 1
        self._parent = max(self._parent, parent)
        self._children = max(self._children, child)
        self._total = max(self._total, parent + child)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak(self) -> PeakRss:
        return PeakRss(self._total, self._parent, self._children, self._n)
