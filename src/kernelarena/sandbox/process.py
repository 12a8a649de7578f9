"""Parent side of a sandboxed worker: spawn, request with a deadline, classify every way it dies.

Each worker is a fork of the zygote (``zygote.py``: a fresh interpreter that has imported torch
and holds nothing else; never a fork of a process that holds reference outputs) or, with
``KARENA_ZYGOTE=0``, a fresh interpreter, in its own session, with an address-space limit, no core dumps, a private working
directory, and its stdout/stderr captured to a log whose tail is quoted when it fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.sandbox import memory, protocol, zygote
from kernelarena.sandbox.worker import LAUNCHER

log = logging.getLogger(__name__)


class WorkerFailure(Exception):
    """The worker died, hung or ran out of memory. ``kind``: crash, timeout, memory, protocol."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _limits(memory_bytes: int) -> None:  # runs in the child between fork and exec
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def worker_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS_OVERRIDE": str(threads),
            "NUMBA_NUM_THREADS": str(threads),
            "KARENA_THREADS": str(threads),
            "PYTHONDONTWRITEBYTECODE": "1",
            "NUMBA_CACHE_DIR": str(settings.build_cache_dir() / "numba"),
            # Keep freed blocks (up to 32 MiB) in the heap so the sentinel prefill is what
            # torch.empty hands out next, instead of fresh zero pages from mmap.
            "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
            "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
        }
    )
    env.update(extra or {})
    return env


def _full_env(threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env_vars = worker_env(threads, extra)
    src_root = str(Path(__file__).resolve().parents[2])
    env_vars["PYTHONPATH"] = os.pathsep.join(p for p in (src_root, env_vars.get("PYTHONPATH")) if p)
    return env_vars


def prestart_workers(entry: str, threads: int | None = None) -> None:
    """Start the zygote for ``entry`` now, in the background (call before other slow start-up work)."""
    zygote.prestart(_full_env(threads or settings.num_threads()), entry)


# memory the parent keeps for itself beyond a received message (its own arrays, the comparison)
_PARENT_RESERVE_BYTES = 256 << 20


def _receivable_bytes() -> int | None:
    avail = memory.available_bytes()
    return None if avail is None else max(0, avail - _PARENT_RESERVE_BYTES)


class Worker:
    """One worker process running the program ``entry`` (a module with ``main(argv)`` and
    ``preload()``, e.g. ``kernelarena.worker_entry``: named, never imported, here).
    Use as a context manager; ``request`` sends a message and waits."""

    def __init__(
        self,
        role: str,
        *,
        entry: str,
        threads: int | None = None,
        memory_bytes: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.role = role
        self.threads = threads or settings.num_threads()
        wanted = settings.worker_memory_bytes() if memory_bytes is None else memory_bytes
        # under an inherited RLIMIT_AS, a higher limit cannot be set (setrlimit would fail the spawn)
        self.memory_bytes = memory.clamp_to_rlimit(wanted) if wanted > 0 else wanted
        self._tmp = tempfile.TemporaryDirectory(prefix=f"karena-{role}-")
        self.log_path = Path(self._tmp.name) / "output.log"
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        log_file = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child
        env_vars = _full_env(self.threads, env)
        proc: subprocess.Popen[bytes] | zygote.Child | None = None
        if zygote.enabled():
            try:  # a fork of the preloaded zygote: no 2-4 s ``import torch`` per worker
                proc = zygote.spawn(entry=entry, role=role, env=env_vars, cwd=self._tmp.name,
                                         memory_bytes=self.memory_bytes,
                                         fds=(to_child_r, from_child_w, log_file.fileno()))  # fmt: skip
            except zygote.ZygoteError as exc:
                log.warning("starting the worker as a fresh process: %s", exc)
        if proc is None:
            proc = subprocess.Popen(
                # a launcher stub, so the guard module is not ``__main__`` (see worker.LAUNCHER)
                [sys.executable, "-c", LAUNCHER, entry, role, str(to_child_r), str(from_child_w)],
                pass_fds=(to_child_r, from_child_w),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._tmp.name,
                env=env_vars,
                preexec_fn=lambda: _limits(self.memory_bytes),
            )
        self.proc = proc
        os.close(to_child_r)
        os.close(from_child_w)
        log_file.close()
        self.dead: WorkerFailure | None = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def output_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def request(self, message: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send ``message``; return the reply dict. Raises WorkerFailure if the worker dies or hangs."""
        if self.dead:
            raise self.dead
        timeout = settings.worker_timeout_s() if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        # A fresh secret per request, echoed by the worker's loop: a message the candidate writes
        # to the reply pipe itself (a forged result) does not carry it and is refused.
        nonce = os.urandom(16).hex()
        try:
            protocol.send(self._to_child, {**message, "nonce": nonce})
            reply = protocol.recv(self._from_child, deadline, max_bytes=_receivable_bytes())
            if reply.get("nonce") != nonce:
                self._kill()
                self.dead = WorkerFailure(
                    "forged",
                    "sent a message that is not the harness's reply (forged results written to the "
                    "protocol pipe?); killed",
                )
                raise self.dead
            del reply["nonce"]
            return reply
        except TimeoutError:
            self._kill()
            self.dead = WorkerFailure("timeout", f"timed out after {timeout:.0f} s (killed)")
        except (protocol.MessageTooLarge, MemoryError) as exc:
            # the harness process itself must not die of memory: the answer is dropped, not read
            self._kill()
            size = (
                f"{memory.describe_bytes(exc.nbytes)} " if isinstance(exc, protocol.MessageTooLarge) else ""
            )
            self.dead = WorkerFailure(
                "memory",
                f"answered with {size}more data than this process has memory for (killed); "
                "lower --max-bytes so the inputs are scaled down",
            )
        except (protocol.ProtocolError, BrokenPipeError, OSError) as exc:
            self.dead = self._diagnose(exc)
        raise self.dead

    def _diagnose(self, exc: Exception) -> WorkerFailure:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
            return WorkerFailure("protocol", f"sent a malformed message ({exc}); killed")
        tail = self.output_tail()
        said = f"; last output: {tail[-400:]}" if tail else ""
        if code < 0:
            sig = signal.Signals(-code).name
            if sig == "SIGKILL":
                return WorkerFailure("memory", f"killed by SIGKILL (out of memory?){said}")
            return WorkerFailure("crash", f"crashed with signal {sig}{said}")
        if "MemoryError" in tail or "can't allocate memory" in tail:
            return WorkerFailure(
                "memory", f"ran out of memory (limit {self.memory_bytes / 2**30:.0f} GiB){said}"
            )
        return WorkerFailure("crash", f"exited with code {code} without answering{said}")

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            log.warning("worker %s did not die", self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                if not self.dead:
                    protocol.send(self._to_child, {"op": "exit"})
                    self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired, protocol.ProtocolError):
                pass
        # whatever the candidate left behind in its session goes too
        self._kill()
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._tmp.cleanup()
