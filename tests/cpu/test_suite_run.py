"""`suite run`: pairs matched by name, metrics, a failing pair never stops the run, resumption."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelarena.report.table import suite_table
from kernelarena.suite import summarize

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(400)]


def make_suite(tmp_path: Path, data: Path, n_good: int = 2) -> tuple[Path, Path]:
    tasks, sols = tmp_path / "tasks", tmp_path / "sols"
    tasks.mkdir()
    sols.mkdir()
    for i in range(n_good):
        shutil.copy(data / "tasks/scaled_tanh.py", tasks / f"good{i}.py")
        shutil.copy(data / "solutions/scaled_tanh_c.py", sols / f"good{i}.py")
    shutil.copy(data / "tasks/scaled_tanh.py", tasks / "bad.py")
    shutil.copy(data / "solutions/crash_segfault.py", sols / "bad.py")
    shutil.copy(data / "tasks/scaled_tanh.py", tasks / "nosolution.py")
    return tasks, sols


def run(tasks: Path, sols: Path, db: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernelarena.cli",
            "suite",
            "run",
            str(tasks),
            "--solutions",
            str(sols),
            "--json",
            "--quick",
            "--budget",
            "0.3",
            "--db",
            str(db),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_suite_metrics_and_failures(tmp_path: Path, data: Path) -> None:
    tasks, sols = make_suite(tmp_path, data)
    p = run(tasks, sols, tmp_path / "k.db", "--jobs", "2")
    out, err = p.communicate()
    assert p.returncode == 0, err
    s = json.loads(out)
    assert s["pairs"] == 3 and s["missing"] == ["nosolution"]
    assert abs(s["correct_rate"] - 2 / 3) < 1e-9
    assert set(s["fast_p"]) == {"0", "1", "1.5", "2"} and s["fast_p"]["0"] == s["correct_rate"]
    assert s["geomean_speedup"] > 0
    bad = next(r for r in s["results"] if r["task"] == "bad")
    assert bad["verdict"] == "fail" and "SIGSEGV" in bad["reasons"][0]
    assert "[4/4" in err  # progress lines on stderr
    for r in s["results"]:
        if r["task"] != "nosolution":
            assert r["seconds"] > 0, r
        if r["verdict"] == "pass":
            assert r["code_path"].startswith(("c/", "torch", "numba")), r


def _rows(db: Path) -> dict[str, float]:
    with sqlite3.connect(db) as c:
        return dict(c.execute("SELECT key, created_at FROM records").fetchall())


def test_killed_run_resumes(tmp_path: Path, data: Path) -> None:
    tasks, sols = make_suite(tmp_path, data, n_good=3)
    db = tmp_path / "k.db"
    p = run(tasks, sols, db)
    deadline = time.time() + 300
    while time.time() < deadline:  # SIGKILL as soon as the first pair's record is in the store
        try:
            if db.exists() and _rows(db):
                break
        except sqlite3.OperationalError:  # the schema is not written yet
            pass
        time.sleep(0.1)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    before = _rows(db)  # the database is readable after SIGKILL
    assert before
    p2 = run(tasks, sols, db)
    out, err = p2.communicate()
    assert p2.returncode == 0, err
    s = json.loads(out)
    assert s["pairs"] == 4 and abs(s["correct_rate"] - 3 / 4) < 1e-9
    after = _rows(db)
    # records finished before the kill were reused, not measured again (same creation time)
    assert all(after[k] == t for k, t in before.items())
    assert len(after) > len(before)


def test_summarize_metrics() -> None:
    results = [
        {"task": "a", "status": "done", "verdict": "pass", "speedup": 2.5},
        {"task": "b", "status": "done", "verdict": "pass", "speedup": 0.5},
        {"task": "c", "status": "done", "verdict": "fail", "speedup": None},
        {"task": "d", "status": "missing", "verdict": None, "speedup": None},
    ]
    s = summarize(results)
    assert s["pairs"] == 3 and s["missing"] == ["d"]
    assert s["fast_p"] == {"0": 2 / 3, "1": 1 / 3, "1.5": 1 / 3, "2": 1 / 3}
    assert abs(s["geomean_speedup"] - (2.5 * 0.5) ** 0.5) < 1e-12


def test_suite_table_names_paths_and_the_longest_pairs() -> None:
    results = [
        {
            "task": "a",
            "status": "done",
            "verdict": "pass",
            "speedup": 2.5,
            "code_path": "c/avx2",
            "seconds": 12.0,
        },
        {
            "task": "b",
            "status": "done",
            "verdict": "pass",
            "speedup": 0.5,
            "code_path": "numba/host-cpu",
            "seconds": 30.0,
        },
        {
            "task": "c",
            "status": "done",
            "verdict": "fail",
            "speedup": None,
            "seconds": 4.0,
            "reasons": ["wrong"],
        },
    ]
    text = suite_table({**summarize(results), "results": results})
    assert "c/avx2" in text and "numba/host-cpu" in text
    assert "slowest against the baseline: b 0.50x, a 2.50x" in text
    assert "evaluation wall time 46 s; longest: b 30 s, a 12 s, c 4 s" in text


def test_ray_executor_runs_pairs(tmp_path: Path, data: Path) -> None:
    """Real Ray on this machine: each pair is a Ray task; a crashing pair is one failed result."""
    pytest.importorskip("ray")
    from kernelarena.suite import run_suite
    from kernelarena.types import CheckOptions

    tasks, sols = make_suite(tmp_path, data, n_good=1)
    s = run_suite(
        tasks,
        sols,
        baseline=None,
        executor="ray",
        check_options=CheckOptions(seeds=1, distributions=("as-given",)),
    )
    by = {r["task"]: r for r in s["results"]}
    assert by["good0"]["verdict"] == "pass" and by["good0"]["node"]
    assert by["bad"]["verdict"] == "fail" and "SIGSEGV" in by["bad"]["reasons"][0]
    assert s["missing"] == ["nosolution"]
