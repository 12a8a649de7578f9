"""The `karena` command: exit codes 0/1/2 and one JSON object on stdout, as DESIGN.md specifies."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]


def karena(*args: str) -> subprocess.CompletedProcess:
    """The real entry point in a fresh interpreter (~5 s of imports and worker start-up)."""
    return subprocess.run([sys.executable, "-m", "kernelarena.cli", *args], capture_output=True, text=True)


@pytest.fixture
def karena_here(capsys: pytest.CaptureFixture[str]):
    """``cli.main`` in this process (its imports and worker zygote are already warm): exit code,
    stdout, stderr. The tests that use ``karena`` cover the interpreter entry point itself."""
    from kernelarena.cli import main

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        try:
            rc = main(list(args))
        except SystemExit as exc:  # argparse's usage errors
            rc = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, rc, out, err)

    return run


def test_check_pass_json(data: Path) -> None:
    p = karena(
        "check",
        str(data / "tasks/scaled_tanh.py"),
        str(data / "solutions/scaled_tanh_c.py"),
        "--json",
        "--quick",
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["verdict"] == "pass" and out["reasons"] == [] and isinstance(out["flags"], list)
    assert len(out["variants"]) == 3


def test_check_fail_json(data: Path, karena_here) -> None:
    p = karena_here("check", str(data / "tasks/scaled_tanh.py"), str(data / "solutions/wrong_ignores_weight.py"), "--json",
               "--quick", "--no-store")  # fmt: skip
    assert p.returncode == 1
    out = json.loads(p.stdout)
    assert out["verdict"] == "fail" and out["reasons"]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "/no/such/task.py", "x.py"],
        ["check", "rmsnorm", "/no/such/solution.py"],
        [
            "check",
            "tests/data/solutions/scaled_tanh_c.py",
            "tests/data/solutions/scaled_tanh_c.py",
        ],  # not a task
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], karena_here) -> None:
    p = karena(*args) if args[1] == "/no/such/task.py" else karena_here(*args)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.strip().count("\n") == 0, p.stderr


def test_solution_without_modelnew_is_a_fail(tmp_path: Path, data: Path, karena_here) -> None:
    sol = tmp_path / "empty.py"
    sol.write_text("x = 1\n")
    p = karena_here("check", str(data / "tasks/scaled_tanh.py"), str(sol), "--json", "--no-store")
    assert p.returncode == 1 and "ModelNew" in json.loads(p.stdout)["reasons"][0]


def test_syntax_error_solution_is_a_fail(tmp_path: Path, data: Path, karena_here) -> None:
    sol = tmp_path / "broken.py"
    sol.write_text("def (:\n")
    p = karena_here("check", str(data / "tasks/scaled_tanh.py"), str(sol), "--json", "--no-store")
    assert p.returncode == 1 and "syntax error" in json.loads(p.stdout)["reasons"][0]


def test_tasks_json_lists_builtin_suite(karena_here) -> None:
    p = karena_here("tasks", "--json")
    assert p.returncode == 0
    tasks = json.loads(p.stdout)["tasks"]
    names = {t["name"] for t in tasks}
    assert "rmsnorm" in names
    assert all({"name", "path", "category", "source", "variants"} <= set(t) for t in tasks)
