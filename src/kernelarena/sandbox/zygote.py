"""A fork server for sandboxed workers: torch is imported once, each worker is a fork of it.

Starting a worker as a fresh interpreter costs 2-4 s of CPU, nearly all of it ``import torch``; a
check needs two workers, a suite run hundreds, a test run over a thousand. The zygote is a fresh
interpreter (started like a worker, through a stub, so its ``__main__`` is not harness code) that
imports torch, numpy and the worker's entry module (the program named by the parent, e.g.
``kernelarena.worker_entry``; this package imports nothing above it), runs the entry's
``preload()``, makes itself undumpable, and then only forks: each fork becomes one worker (new
session, address-space limit, log as stdout/stderr, private working directory, the worker's
environment) and runs the entry's ``main`` exactly as a fresh process would.

What the zygote never holds: task files, solutions, reference outputs, the parent's secrets. It
computes nothing (so no thread pool exists to be broken by ``fork``) and re-seeds Python's and
numpy's random generators in every child. It is undumpable (``PR_SET_DUMPABLE`` 0), so a candidate
cannot write into it through ``/proc/PID/mem`` to poison the workers forked after it.

The zygote reaps its children and reports each exit status to the parent, which therefore sees
signals (an OOM kill is SIGKILL) as it would for its own child. ``KARENA_ZYGOTE=0`` turns it off
(each worker is then a fresh ``python`` process); a zygote that cannot start or dies is replaced
by that path, never by a failed check.
"""

from __future__ import annotations

import array
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

# Environment variables read after start-up (by ``worker.serve`` or by libraries loaded later):
# workers that differ only in these share one zygote. Any other difference starts another one.
_LATE_ENV = frozenset(
    {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS_OVERRIDE", "NUMBA_NUM_THREADS",
     "KARENA_THREADS"}
)  # fmt: skip
_MAX_ZYGOTES = 2
_MAX_MSG = 1 << 20

STUB = (
    "import sys; from kernelarena.sandbox.zygote import serve; sys.exit(serve(int(sys.argv[1]), sys.argv[2]))"
)


def enabled() -> bool:
    return os.environ.get("KARENA_ZYGOTE", "1") not in ("0", "false", "no", "off")


# --- the zygote process ------------------------------------------------------------------------


def _child(
    request: dict[str, Any], fds: list[int], sock: socket.socket, pipe: tuple[int, int], entry: Any
) -> None:
    """In the forked child: become the worker the parent asked for. Never returns."""
    code = 1
    try:
        fd_in, fd_out, log_fd = fds
        signal.set_wakeup_fd(-1)
        sock.close()
        for fd in pipe:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.setsid()
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        limit = int(request["memory_bytes"])
        if limit > 0:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import random

        import numpy

        random.seed()
        numpy.random.seed()
        role = str(request["role"])
        sys.argv = ["-c", entry.__name__, role, str(fd_in), str(fd_out)]
        code = entry.main([role, str(fd_in), str(fd_out)])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the worker's own errors are data; this is start-up failing
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(sock_fd: int, entry_name: str) -> int:
    """The zygote's loop: preload the entry module, then fork one worker per request; report exits."""
    sock = socket.socket(fileno=sock_fd)
    import importlib

    import numpy  # noqa: F401
    import torch  # noqa: F401

    from kernelarena.sandbox import worker

    entry = importlib.import_module(entry_name)
    entry.preload()
    worker.undumpable()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when the zygote ends
    import ctypes

    dumpable = ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    sock.sendall(json.dumps({"ready": os.getpid(), "dumpable": dumpable}).encode())
    children: set[int] = set()
    while True:
        try:
            ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                children.discard(pid)
                sock.sendall(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        if sock.fileno() in ready:
            fds = array.array("i")
            data, anc, _, _ = sock.recvmsg(_MAX_MSG, socket.CMSG_LEN(3 * fds.itemsize))
            if not data:
                return 0  # the parent went away; the workers notice their pipes closing
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            pid = os.fork()
            if pid == 0:
                _child(json.loads(data), list(fds), sock, (wake_r, wake_w), entry)
            children.add(pid)
            for fd in fds:
                os.close(fd)
            sock.sendall(json.dumps({"pid": pid}).encode())


# --- the parent's side -------------------------------------------------------------------------


class ZygoteError(Exception):
    pass


class Child:
    """A worker forked by the zygote, with the part of ``subprocess.Popen``'s interface that
    ``process.Worker`` uses: ``pid``, ``poll()``, ``wait(timeout)``, ``returncode``."""

    def __init__(self, zygote: Zygote, pid: int):
        self._zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, 0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._zygote.exit_code(self.pid, timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        return self.returncode


class Zygote:
    def __init__(self, env: dict[str, str], entry: str):
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STUB, str(child_sock.fileno()), entry],
            pass_fds=(child_sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        child_sock.close()
        self._sock = parent_sock
        self._spawn_lock = threading.Lock()
        self._cond = threading.Condition()
        self._exits: dict[int, int] = {}
        self._replies: list[dict[str, Any]] = []
        self._alive = True
        self._ready = False
        self.dumpable = 1

    def _wait_ready(self) -> None:
        """Block until the zygote has imported torch (it starts in the background: the parent
        meanwhile loads the task, importing torch itself, on the other core)."""
        if self._ready:
            return
        self._sock.settimeout(120)
        try:
            hello = json.loads(self._sock.recv(_MAX_MSG) or b"{}")
        except (OSError, ValueError) as exc:
            hello = {"error": str(exc)}
        if "ready" not in hello:
            self._alive = False
            raise ZygoteError(f"the zygote did not start ({hello.get('error', 'no greeting')})")
        self._sock.settimeout(None)
        self.dumpable = int(hello.get("dumpable", 1))
        self._ready = True
        self._reader = threading.Thread(target=self._read, name="karena-zygote", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(_MAX_MSG)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self._alive = False
                    self._cond.notify_all()
                    return
                msg = json.loads(data)
                if "exit" in msg:
                    self._exits[int(msg["exit"])] = int(msg["code"])
                else:
                    self._replies.append(msg)
                self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._alive and self.proc.poll() is None

    def spawn(self, request: dict[str, Any], fds: tuple[int, int, int]) -> Child:
        with self._spawn_lock:
            self._wait_ready()
            if not self.alive:
                raise ZygoteError("the zygote is gone")
            self._sock.sendmsg(
                [json.dumps(request).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
            )
            with self._cond:
                if not self._cond.wait_for(lambda: self._replies or not self._alive, timeout=30):
                    raise ZygoteError("the zygote did not answer")
                if not self._replies:
                    raise ZygoteError("the zygote died")
                return Child(self, int(self._replies.pop(0)["pid"]))

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """The child's exit status as ``Popen.returncode`` gives it; None while it runs."""
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits or not self._alive, timeout=timeout)
            if pid in self._exits:
                return self._exits.pop(pid)
            if self._alive:
                return None
        # The zygote is gone and cannot report: the child is judged by whether it still exists.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return -signal.SIGKILL
        except PermissionError:
            pass
        return None

    def close(self) -> None:
        self._alive = False
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


_zygotes: dict[tuple[str, tuple[tuple[str, str], ...]], Zygote] = {}
_lock = threading.Lock()


# Variables that shape the interpreter or what the preload imports (library paths, allocator,
# torch/numba/OpenMP configuration read at import): a zygote serves only workers that agree on
# them. Every other variable (the harness's own settings, paths of a test's temporary folder) is
# applied in the child at fork, so it does not start a second zygote.
_IMPORT_ENV_PREFIXES = (
    "PYTHON", "LD_", "MALLOC_", "GLIBC_", "TORCH", "NUMBA", "OMP_", "GOMP_", "KMP_", "MKL", "OPENBLAS",
    "CUDA", "NVIDIA_", "TRITON", "PATH",
)  # fmt: skip


def _key(env: dict[str, str], entry: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return entry, tuple(
        sorted((k, v) for k, v in env.items() if k not in _LATE_ENV and k.startswith(_IMPORT_ENV_PREFIXES))
    )


def _zygote_for(env: dict[str, str], entry: str) -> Zygote:
    key = _key(env, entry)
    with _lock:
        z = _zygotes.get(key)
        if z is not None and not z.alive:
            z.close()
            del _zygotes[key]
            z = None
        if z is None:
            while len(_zygotes) >= _MAX_ZYGOTES:
                _zygotes.pop(next(iter(_zygotes))).close()
            try:
                z = _zygotes[key] = Zygote(env, entry)
            except (OSError, ValueError) as exc:
                raise ZygoteError(f"could not start the zygote: {exc}") from exc
        return z


def prestart(env: dict[str, str], entry: str) -> None:
    """Start the zygote for ``env`` and the entry module in the background, if not running yet."""
    if enabled():
        with contextlib.suppress(ZygoteError):
            _zygote_for(env, entry)


def spawn(
    *, entry: str, role: str, env: dict[str, str], cwd: str, memory_bytes: int, fds: tuple[int, int, int]
) -> Child:
    """Fork a worker running ``entry`` from the zygote for ``env`` (started on first use).
    Raises ZygoteError."""
    z = _zygote_for(env, entry)
    request = {"role": role, "env": env, "cwd": cwd, "memory_bytes": memory_bytes}
    try:
        return z.spawn(request, fds)
    except OSError as exc:
        raise ZygoteError(str(exc)) from exc


def shutdown() -> None:
    with _lock:
        while _zygotes:
            _zygotes.popitem()[1].close()


def _at_fork_in_child() -> None:
    # A process forked from the parent (multiprocessing, Ray) must not share its zygotes' sockets
    # (nor a lock another thread held at the fork).
    global _lock
    _lock = threading.Lock()
    _zygotes.clear()


os.register_at_fork(after_in_child=_at_fork_in_child)
