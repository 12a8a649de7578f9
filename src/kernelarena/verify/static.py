"""Static checks of a solution's source, before anything runs.

Two kinds of finding:
- ``tamper``: code that reaches into the harness or the interpreter (frame walking, ``gc``
  scavenging, monkeypatching ``time``/``torch``, dispatch-mode games). Always a rejection.
- ``compute``: torch computing instead of the candidate's kernel (``torch.matmul``, ``F.softmax``),
  including in an ``except`` fallback. A rejection under policy ``strict``, a flag under ``lenient``.
Dynamic op tracing in the worker backs this up; each catches what the other cannot.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ALLOWED_TORCH = frozenset(
    {
        "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
        "full_like", "from_numpy", "frombuffer", "as_tensor", "tensor", "arange", "Tensor", "Size",
        "dtype", "device", "nn", "no_grad", "inference_mode", "is_tensor", "is_floating_point",
        "get_num_threads", "set_num_threads", "cuda", "backends", "utils", "library", "version",
        "__version__", "finfo", "iinfo", "Generator", "manual_seed", "testing", "jit", "compiler",
        "set_grad_enabled", "is_grad_enabled", "promote_types", "result_type", "can_cast",
        "get_default_dtype", "channels_last", "contiguous_format", "preserve_format", "strided",
        # views and copies, which the strict policy allows as functions too
        "split", "reshape", "narrow", "as_strided", "transpose", "permute", "squeeze", "unsqueeze", "unbind",
        "chunk", "flatten", "unflatten", "movedim", "select", "t", "clone", "detach", "view_as_real", "view_as_complex",
    }
)  # fmt: skip
DTYPES = frozenset(
    [
        "float",
        "float16",
        "float32",
        "float64",
        "half",
        "double",
        "bfloat16",
        "int",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "long",
        "short",
        "bool",
        "complex64",
        "complex128",
        "cfloat",
        "cdouble",
        "float8_e4m3fn",
        "float8_e5m2",
        "qint8",
        "quint8",
    ]
)
TAMPER_ATTRS = {
    ("gc", "get_objects"): "scavenges objects with gc.get_objects",
    ("gc", "get_referrers"): "scavenges objects with gc.get_referrers",
    ("gc", "get_referents"): "scavenges objects with gc.get_referents",
    ("sys", "_getframe"): "walks interpreter frames (sys._getframe)",
    ("sys", "settrace"): "installs a trace function",
    ("sys", "setprofile"): "installs a profile function",
    ("inspect", "stack"): "walks interpreter frames (inspect.stack)",
    ("inspect", "currentframe"): "walks interpreter frames (inspect.currentframe)",
    ("ctypes", "pythonapi"): "calls the CPython API through ctypes",
    ("sys", "modules"): "reaches into sys.modules",
    ("builtins", "__import__"): "replaces the import machinery",
}
TAMPER_NAMES = {
    "TorchDispatchMode": "manipulates torch dispatch modes",
    "_python_dispatch": "manipulates torch dispatch modes",
    "_get_current_dispatch_mode": "inspects torch dispatch modes",
    "_pop_mode": "manipulates torch dispatch modes",
    "_DisableTorchDispatch": "disables torch dispatch",
    "__closure__": "rewrites function closures",
    "__code__": "rewrites function code",
    "f_back": "walks interpreter frames",
    "f_locals": "reads other frames' variables",
    "f_globals": "reads other frames' globals",
    "tb_frame": "walks interpreter frames",
}
PATCHED_MODULES = {
    "time",
    "torch",
    "np",
    "numpy",
    "os",
    "sys",
    "gc",
    "threading",
    "math",
    "random",
    "builtins",
}


@dataclass(frozen=True)
class Finding:
    kind: str  # "tamper" | "compute" | "note"
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Visitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.torch_aliases = {"torch"}
        self.functional_aliases: set[str] = set()
        self.in_handler = 0

    def add(self, kind: str, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(kind, getattr(node, "lineno", 0), message))

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name == "torch":
                self.torch_aliases.add(a.asname or "torch")
            if a.name == "torch.nn.functional" and a.asname:
                self.functional_aliases.add(a.asname)
            if a.name.startswith("kernelarena") and not a.name.startswith("kernelarena.backends"):
                self.add("tamper", node, f"imports harness internals ({a.name})")
            if a.name in ("gc", "inspect"):
                self.add("note", node, f"imports {a.name}")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        if mod.startswith("kernelarena") and not mod.startswith("kernelarena.backends"):
            self.add("tamper", node, f"imports harness internals ({mod})")
        for a in node.names:
            if mod == "torch.nn" and a.name == "functional":
                self.functional_aliases.add(a.asname or "functional")
            if mod == "torch.nn.functional":
                self.add("compute", node, f"imports torch.nn.functional.{a.name}")
            if mod == "torch" and a.name not in ALLOWED_TORCH and a.name not in DTYPES:
                self.add("compute", node, f"imports torch.{a.name}")
            if a.name in TAMPER_NAMES:
                self.add("tamper", node, TAMPER_NAMES[a.name])
            if (mod, a.name) in TAMPER_ATTRS:
                self.add("tamper", node, TAMPER_ATTRS[(mod, a.name)])
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        name = _dotted(node)
        if node.attr in TAMPER_NAMES:
            self.add("tamper", node, TAMPER_NAMES[node.attr])
        if name:
            head, _, rest = name.partition(".")
            if (head, rest) in TAMPER_ATTRS:
                self.add("tamper", node, TAMPER_ATTRS[(head, rest)])
            if head in self.torch_aliases and rest:
                first = rest.split(".")[0]
                if (
                    rest.startswith("nn.functional.")
                    or rest.startswith(("ops.aten.", "_C._nn.", "linalg.", "fft.", "special."))
                    or (
                        first not in ALLOWED_TORCH
                        and first not in DTYPES
                        and not first.startswith("_")
                        and isinstance(getattr(node, "ctx", None), ast.Load)
                        and "." not in rest
                    )
                ):
                    self._compute(node, f"torch.{rest}")
            if head in self.functional_aliases and rest:
                self._compute(node, f"torch.nn.functional.{rest}")
            if name.startswith("torch._C._") and "dispatch" in name.lower():
                self.add("tamper", node, f"touches torch dispatch internals ({name})")
        self.generic_visit(node)

    def _compute(self, node: ast.AST, what: str) -> None:
        where = " in an except-handler fallback" if self.in_handler else ""
        self.add("compute", node, f"calls {what}{where}: the computation must be the solution's own kernel")

    def visit_If(self, node: ast.If) -> None:
        # an ``if __name__ == "__main__":`` self-test never runs when the harness imports the file
        t = node.test
        if (
            isinstance(t, ast.Compare)
            and isinstance(t.left, ast.Name)
            and t.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in t.comparators)
        ):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        self.in_handler += 1
        self.generic_visit(node)
        self.in_handler -= 1

    def _check_target(self, target: ast.AST, node: ast.AST) -> None:
        name = _dotted(target) if isinstance(target, ast.Attribute) else None
        if name and name.split(".")[0] in PATCHED_MODULES | self.torch_aliases and "." in name:
            self.add("tamper", node, f"monkeypatches {name}")

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._check_target(t, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        fn = _dotted(node.func)
        if fn in ("setattr", "delattr") and node.args:
            target = _dotted(node.args[0])
            if target and target.split(".")[0] in PATCHED_MODULES | self.torch_aliases:
                self.add("tamper", node, f"monkeypatches {target} with {fn}()")
        if fn in ("globals", "vars") and not node.args and fn == "vars":
            pass
        if fn in ("__import__", "importlib.import_module") and node.args:
            arg = node.args[0]
            if (
                isinstance(arg, ast.Constant)
                and str(arg.value).startswith("kernelarena")
                and not str(arg.value).startswith("kernelarena.backends")
            ):
                self.add("tamper", node, f"imports harness internals ({arg.value!s})")
        self.generic_visit(node)


def scan(source: str) -> list[Finding]:
    """Static findings for a solution's source; a syntax error is itself a finding."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [Finding("syntax", exc.lineno or 0, f"syntax error: {exc.msg}")]
    v = _Visitor()
    v.visit(tree)
    return v.findings
