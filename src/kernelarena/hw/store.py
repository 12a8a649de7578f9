"""Persist hardware profiles in the project's SQLite file (table ``hw_profiles``).

Other modules own other tables in the same file, so this one only ever creates and touches its own.
A stored profile is reused until ``refresh``; a quick one is replaced when a full one is asked for.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from kernelarena import settings
from kernelarena.hw.profile import HardwareProfile, cpu_machine_id
from kernelarena.store.sqlite import ensure_schema

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hw_profiles (
    machine_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    threads INTEGER NOT NULL,
    measured_at TEXT NOT NULL,
    profile_json TEXT NOT NULL,
    PRIMARY KEY (machine_id, kind, threads)
)
"""

SCHEMA_VERSION = 1

Measure = Callable[[int, bool], HardwareProfile]  # (threads, quick) -> profile


def _connect(db_path: Path) -> sqlite3.Connection:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db_path, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    ensure_schema(conn, "hw_profiles", SCHEMA_VERSION, _SCHEMA)
    return conn


def stored_profile(db_path: Path, machine_id: str, kind: str, threads: int) -> HardwareProfile | None:
    """The stored profile for this key, or None (also when it was written by another schema)."""
    with closing(_connect(db_path)) as conn:
        row = conn.execute(
            "SELECT profile_json FROM hw_profiles WHERE machine_id = ? AND kind = ? AND threads = ?",
            (machine_id, kind, threads),
        ).fetchone()
    if row is None:
        return None
    try:
        return HardwareProfile.from_json(row[0])
    except (ValueError, TypeError, KeyError) as err:
        log.info("ignoring stored hardware profile %s/%s/%d: %s", machine_id, kind, threads, err)
        return None


def save_profile(db_path: Path, profile: HardwareProfile, key: tuple[str, str, int] | None = None) -> None:
    """Store ``profile`` under ``key`` (machine_id, kind, threads), by default the profile's own."""
    machine_id, kind, threads = key or (profile.machine_id, profile.kind, profile.threads_used)
    with closing(_connect(db_path)) as conn, conn:
        conn.execute(
            "INSERT OR REPLACE INTO hw_profiles (machine_id, kind, threads, measured_at, profile_json) "
            "VALUES (?, ?, ?, ?, ?)",
            (machine_id, kind, threads, profile.measured_at, profile.to_json()),
        )


def _default_measure(kind: str) -> Measure:
    if kind == "cpu":
        from kernelarena.hw.cpu import measure_cpu

        return lambda threads, quick: measure_cpu(threads, quick=quick)
    if kind == "cuda":
        from kernelarena.hw.cuda import measure_cuda

        return lambda threads, quick: measure_cuda(0, quick=quick)
    raise ValueError(f"unknown hardware kind {kind!r}")


def load_or_measure(
    db_path: Path,
    *,
    refresh: bool = False,
    quick: bool = False,
    threads: int | None = None,
    kind: str = "cpu",
    measure: Measure | None = None,
) -> HardwareProfile:
    """This machine's profile from ``db_path``, measured (and stored) when absent or ``refresh``.

    ``threads`` defaults to ``settings.num_threads()`` (CPU; 0 for CUDA). A stored quick profile
    does not satisfy a full request; a stored full one does satisfy a quick request. ``measure``
    replaces the real measurement (tests).
    """
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown hardware kind {kind!r} (expected 'cpu' or 'cuda')")
    if kind == "cuda":
        from kernelarena.hw.cuda import cuda_machine_id

        machine_id, threads = cuda_machine_id(0), 0
    else:
        machine_id, threads = cpu_machine_id(), threads or settings.num_threads()
    db_path = Path(db_path)
    if not refresh:
        found = stored_profile(db_path, machine_id, kind, threads)
        if found is not None and (quick or not found.quick):
            return found
    run = measure or _default_measure(kind)
    profile = run(threads, quick)
    if (profile.machine_id, profile.kind, profile.threads_used) != (machine_id, kind, threads):
        log.warning(
            "measured profile key %s/%s/%d differs from the lookup key %s/%s/%d",
            profile.machine_id,
            profile.kind,
            profile.threads_used,
            machine_id,
            kind,
            threads,
        )
    # Stored under the lookup key, so the next lookup finds it even if the two disagree.
    save_profile(db_path, profile, key=(machine_id, kind, threads))
    return profile
