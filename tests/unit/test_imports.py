"""`import kernelarena` stays light: no torch, numba, triton or CUDA library until needed."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def test_import_is_light() -> None:
    code = (
        "import sys, kernelarena, kernelarena.cli, kernelarena.backends.registry\n"
        "heavy = [m for m in ('torch', 'numba', 'triton', 'cupy', 'ray', 'xgboost', 'optuna') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_api() -> None:
    import kernelarena

    assert callable(kernelarena.check) and callable(kernelarena.bench)
    with pytest.raises(AttributeError):
        kernelarena.nope  # noqa: B018


def test_session_and_pipeline_never_import_the_api() -> None:
    # Regression (issue 11): api.py and session.py imported each other (a cycle hidden by a
    # re-export at the bottom of api.py); the shared pieces now live in pipeline.py, below both.
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src/kernelarena"
    for module in ("session.py", "pipeline.py", "search/loop.py", "timing/bench.py", "verify/verifier.py"):
        tree = ast.parse((src / module).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "kernelarena.api" not in imported, module
        assert not any(isinstance(n, ast.ImportFrom) and n.module == "kernelarena" and
                       any(a.name == "api" for a in n.names) for n in ast.walk(tree)), module  # fmt: skip


SRC = Path(__file__).resolve().parents[2] / "src/kernelarena"
# what sandbox/ may import from the package: itself and the two leaf modules (which import nothing
# of kernelarena: checked below)
SANDBOX_MAY_IMPORT = ("kernelarena.sandbox", "kernelarena.settings", "kernelarena.types")


def _kernelarena_imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import of kernelarena.* in ``path``, lazy ones inside functions too.
    ``from kernelarena import x`` counts as ``kernelarena.x``; relative imports are resolved
    against ``package`` (default: where ``path`` sits under src/)."""
    tree = ast.parse(path.read_text())
    if package is None:
        package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "kernelarena"]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            if module.split(".")[0] != "kernelarena":
                continue
            if module == "kernelarena":
                found += [(node.lineno, f"kernelarena.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, module))
    return found


def _allowed(module: str) -> bool:
    return any(module == ok or module.startswith(ok + ".") for ok in SANDBOX_MAY_IMPORT)


def test_sandbox_imports_nothing_above_it() -> None:
    """Issue 11: ``sandbox/`` is the bottom layer (process launch, zygote, protocol, the worker's
    loop). Its worker once imported verify.policy, tasks.loader, timing.cuda and backends.triton;
    the ops now live in those layers and ``kernelarena.worker_entry`` assembles them."""
    modules = sorted((SRC / "sandbox").rglob("*.py"))
    assert len(modules) >= 7, modules
    upward = [
        f"{p.relative_to(SRC)}:{line}: imports {m}"
        for p in modules
        for line, m in _kernelarena_imports(p)
        if not _allowed(m)
    ]
    assert not upward, upward
    # nor does it name a module above it in a string (an import in disguise: importlib, -c stubs)
    named = [
        f"{p.relative_to(SRC)}: names {m!r}" for p in modules for m in _named_modules(p) if not _allowed(m)
    ]
    assert not named, named


def _named_modules(path: Path) -> list[str]:
    """kernelarena.* module names in the string constants of ``path`` (docstrings excepted)."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            found += re.findall(r"\bkernelarena(?:\.\w+)+", n.value)
    return found


def test_the_leaf_modules_sandbox_uses_import_nothing_of_kernelarena() -> None:
    for leaf in ("settings.py", "types.py"):
        assert _kernelarena_imports(SRC / leaf) == [], leaf


def test_the_import_checker_sees_upward_imports(tmp_path: Path) -> None:
    """The walk finds lazy, relative and ``from kernelarena import x`` forms (so the test above
    cannot pass by missing them)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from ..verify import policy\n    import kernelarena.timing.cuda\n"
        "    from kernelarena import api\n    from . import protocol\n"
    )
    got = [m for _, m in _kernelarena_imports(probe, package="kernelarena.sandbox")]
    assert got == ["kernelarena.verify", "kernelarena.timing.cuda", "kernelarena.api", "kernelarena.sandbox"]
    assert [m for m in got if not _allowed(m)] == got[:3]
    probe.write_text(
        '"""Docs may mention kernelarena.worker_entry."""\nSTUB = "import kernelarena.api; x()"\n'
    )
    assert _named_modules(probe) == ["kernelarena.api"]


def test_worker_client_sits_between_sandbox_and_the_op_layers() -> None:
    """The typed client imports only sandbox/ (verify/ and timing/ import it); the worker's entry
    module, which imports the op layers, is imported by no library module (named by string)."""
    client = [m for _, m in _kernelarena_imports(SRC / "worker_client.py")]
    assert client and all(_allowed(m) for m in client), client
    importers = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if any(m == "kernelarena.worker_entry" for _, m in _kernelarena_imports(p))
    ]
    assert importers == [], importers
