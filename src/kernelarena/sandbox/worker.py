"""The generic loop of a sandboxed worker process: read a request, run its op, send the reply.

A worker runs a *program*: an entry module above this package (``kernelarena.worker_entry``) that
assembles the op registry (case building, guards, timing, compile checks: each in the layer it
belongs to) and calls :func:`serve`. This module knows no op: it owns the loop, the per-request
nonce echo, failures turned into data, the identity check of the harness's functions after every
request (:func:`integrity_check`), and the process hardening (undumpable, no CAP_SYS_PTRACE).

A fresh worker starts through ``LAUNCHER`` (``python -c ... ENTRY ROLE FD_IN FD_OUT``), so
``__main__`` is a stub and not a module holding guards; a zygote fork calls the entry's ``main``.

Roles:
- ``reference``: executes the task file; makes verification cases and times the baseline. Never
  imports a solution. Undumpable: it holds reference outputs.
- ``candidate``: imports one solution file and runs it. Never imports the task file; gives up
  CAP_SYS_PTRACE before any of its code is imported.
"""

from __future__ import annotations

import os
import sys
import traceback
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kernelarena import settings
from kernelarena.sandbox import protocol
from kernelarena.sandbox.memory import map_large_blocks, release_free_memory

Op = Callable[[dict[str, Any]], dict[str, Any]]

# State shared by the ops of one worker process (the role, the loaded model, timing inputs ...).
state: dict[str, Any] = {}


@dataclass(frozen=True)
class Program:
    """What a worker runs: its ops and what the integrity check pins.

    ``modules``: the harness modules whose functions and classes (and names listed in a module's
    ``_PINNED`` tuple, e.g. clocks bound at import) must stay as they were when the loop started.
    ``setup(role)``: runs before the loop and before any candidate code (e.g. installs tracers).
    ``pinned()``: further live values to pin, read after ``setup`` (e.g. thread-start wrappers).
    ``bulky``: ops that move whole cases (inputs, outputs, float64 copies); after each one the
    heap's free pages go back to the OS, so the worker's resident memory is what it holds, not its
    high-water mark. Not after timing ops: a trim there would turn the next timed call's first
    touch of reused memory into page faults.
    """

    ops: Mapping[str, Op]
    modules: tuple[types.ModuleType, ...] = ()
    setup: Callable[[str], None] = lambda role: None
    pinned: Callable[[], dict[str, Any]] = dict
    bulky: frozenset[str] = frozenset()


def op_ping(msg: dict[str, Any]) -> dict[str, Any]:
    return {"pid": os.getpid()}


def _classify(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".lower()
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text:
        return "memory"
    return "exception"


def undumpable() -> None:
    """PR_SET_DUMPABLE 0: other processes of this user can no longer ptrace this one or read
    its memory through /proc/PID/mem (without CAP_SYS_PTRACE), and it leaves no core dump."""
    import ctypes

    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def _drop_ptrace_capability() -> bool:
    """Remove CAP_SYS_PTRACE from this process (effective, permitted, inheritable and bounding sets).

    ``PR_SET_DUMPABLE`` 0 protects the reference worker and the karena process only from
    processes *without* CAP_SYS_PTRACE; a harness run as root (containers, CI) hands that
    capability to every worker. The candidate gives it up before its code is imported, and the
    bounding set keeps it from coming back through ``exec``. Returns whether the capability is gone
    (True also when it was never held)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    cap_sys_ptrace = 19
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(24, cap_sys_ptrace, 0, 0, 0)  # PR_CAPBSET_DROP; fails harmlessly without CAP_SETPCAP
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    keep = ~(1 << cap_sys_ptrace) & 0xFFFFFFFF
    if not (data[0].effective | data[0].permitted | data[0].inheritable) & ~keep:
        return True
    data[0].effective &= keep
    data[0].permitted &= keep
    data[0].inheritable &= keep
    return bool(libc.capset(ctypes.byref(header), data) == 0)


def integrity_check(program: Program) -> Callable[[], list[str]]:
    """Capture the harness's functions now; return a check that names those replaced since.

    Bound before any candidate code is imported. The check covers the functions and classes of
    this module, the protocol and the program's modules (plus each module's ``_PINNED`` names:
    the clocks bound at import), the op table and the program's ``pinned()`` values: an attribute
    replaced (``worker_guards._overlaps = ...``) or a function's code or defaults rewritten is
    reported, and the returned closure holds the originals where candidate code cannot name them.
    """
    modules = (sys.modules[__name__], protocol, *program.modules)
    # the names are read once, here: a candidate emptying a module's _PINNED changes nothing
    extra = {m.__name__: frozenset(getattr(m, "_PINNED", ())) for m in modules}
    ops, pinned = program.ops, program.pinned

    def functions(module: Any) -> dict[str, Any]:
        names = extra[module.__name__]
        return {
            f"{module.__name__}.{k}": v
            for k, v in vars(module).items()
            if isinstance(v, types.FunctionType | type) or k in names
        }

    def current() -> dict[str, Any]:
        now: dict[str, Any] = {}
        for m in modules:
            now.update(functions(m))
        now.update({f"ops[{k}]": v for k, v in ops.items()})
        now.update(pinned())
        return now

    def fingerprint(v: Any) -> Any:
        return (id(v), getattr(v, "__code__", None), getattr(v, "__defaults__", None),
                repr(getattr(v, "__kwdefaults__", None)))  # fmt: skip

    start = current()
    marks = {k: fingerprint(v) for k, v in start.items()}
    keep_alive = list(start.values())  # the originals: ids stay unique while they live

    def check() -> list[str]:
        now = current()
        changed = [k for k, mark in marks.items() if k not in now or fingerprint(now[k]) != mark]
        return changed if keep_alive else []

    return check


# Run by the parent as ``python -c LAUNCHER ENTRY ROLE FD_IN FD_OUT``: ``__main__`` is then this
# stub, not a module whose functions guard the candidate. ENTRY names the program's module (it
# has ``main(argv)``); the reply pipe stays the last argument.
LAUNCHER = "import sys, importlib; sys.exit(importlib.import_module(sys.argv[1]).main(sys.argv[2:]))"


def serve(argv: list[str], program: Program) -> int:
    """The worker's loop (``argv``: ROLE FD_IN FD_OUT). Returns the exit status."""
    role, fd_in, fd_out = argv[0], int(argv[1]), int(argv[2])
    state["role"] = role
    import torch

    torch.set_num_threads(settings.num_threads())  # the parent sets KARENA_THREADS (worker_env)
    if role == "reference":  # holds reference outputs: not readable via /proc/PID/mem or ptrace
        undumpable()
        map_large_blocks()
    if role == "candidate" and not _drop_ptrace_capability():
        print("karena worker: could not drop CAP_SYS_PTRACE", file=sys.stderr)
    program.setup(role)
    ops = dict(program.ops)
    ops.setdefault("ping", op_ping)
    tampered = integrity_check(Program(ops, program.modules, program.setup, program.pinned))
    recv, send = protocol.recv, protocol.send
    while True:
        try:
            msg = recv(fd_in)
        except protocol.ProtocolError:
            return 0  # parent went away
        op = msg.get("op")
        if op == "exit":
            return 0
        try:
            handler = ops[str(op)]
            reply = handler(msg)
        except BaseException as exc:  # everything becomes data for the parent
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
            reply = {
                "error": f"{type(exc).__name__}: {exc}",
                "kind": _classify(exc),
                "traceback": "".join(tb[-6:]),
            }
        changed = tampered()
        if changed:  # no result of a tampered worker is trusted
            reply = {
                "error": "tamper: harness internals were replaced at run time ("
                + ", ".join(changed[:4])
                + "): the solution must not modify the harness",
                "kind": "solution",
            }
        reply.setdefault("error", None)
        if "nonce" in msg:
            reply["nonce"] = msg["nonce"]
        try:
            send(fd_out, reply)
        except Exception as exc:  # an unencodable output is the candidate's fault
            send(fd_out, {"error": f"could not send the result: {type(exc).__name__}: {exc}",
                          "kind": "solution", "nonce": msg.get("nonce")})  # fmt: skip
        # one message in memory at a time: the last request and reply go before the next arrives
        msg = reply = {}
        if op in program.bulky:
            release_free_memory()
