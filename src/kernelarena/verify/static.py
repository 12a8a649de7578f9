"""Static checks of a solution's source, before anything runs.

Two kinds of finding:
- ``tamper``: code that reaches into the harness or the interpreter (frame walking, ``gc``
  scavenging, monkeypatching ``time``/``torch``, dispatch-mode games). Always a rejection.
- ``compute``: torch computing instead of the candidate's kernel (``torch.matmul``, ``F.softmax``),
  including in an ``except`` fallback. A rejection under policy ``strict``, a flag under ``lenient``.
  Only code that ``ModelNew.forward`` can reach counts (see :func:`forward_reachable`): ``__init__``
  may draw parameters with ``torch.randn`` or hold them in ``nn.Linear`` modules, because the
  harness re-draws and copies every parameter anyway, and module-level code runs at import, before
  any input exists. Where reachability cannot be decided (no ``ModelNew`` class, or dynamic
  dispatch such as ``getattr(self, name)`` or ``globals()[...]`` in reachable code), every function
  counts, as before.
Dynamic op tracing in the worker backs this up; each catches what the other cannot.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from kernelarena.backends.registry import dotted_name as _dotted

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
# numpy in forward-reachable Python code: allocation, conversion, views, dtypes and constants only;
# numpy's compute routines (ufuncs, reductions, linalg/BLAS, fft) are library compute like torch's.
# Inside a numba-compiled function (``@njit``, ``@vectorize``...) numpy calls are the solution's
# own compiled kernel and allowed.
ALLOWED_NUMPY = frozenset(
    {
        "empty", "empty_like", "zeros", "zeros_like", "ones", "ones_like", "full", "full_like",
        "asarray", "ascontiguousarray", "asfortranarray", "array", "frombuffer", "ctypeslib",
        "dtype", "ndarray", "float16", "float32", "float64", "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64", "bool_", "intp", "uintp", "finfo", "iinfo",
        "shape", "ndim", "size", "result_type", "promote_types", "prod", "errstate", "seterr",
        "newaxis", "nan", "inf", "pi", "e", "copyto", "reshape", "ravel", "transpose", "squeeze",
        "expand_dims", "moveaxis", "swapaxes", "broadcast_to", "random", "__version__",
    }
)  # fmt: skip
JIT_DECORATORS = ("jit", "njit", "vectorize", "guvectorize", "cfunc", "stencil", "generated_jit")

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


def _jit_decorator(node: ast.AST) -> bool:
    """``@njit``, ``@numba.jit(cache=True)``, ``@vectorize([...])``: a numba-compiled function."""
    name = _dotted(node.func if isinstance(node, ast.Call) else node) or ""
    return name.rsplit(".", 1)[-1] in JIT_DECORATORS and not name.startswith("torch")


_Function = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
# Calls whose target is a runtime string: reachability cannot follow them.
_DYNAMIC_CALLS = frozenset({"getattr", "globals", "vars", "locals", "eval", "exec", "__import__"})


def _class_methods(tree: ast.Module) -> dict[str, dict[str, ast.AST]]:
    classes: dict[str, dict[str, ast.AST]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = {
                m.name: m for m in node.body if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return classes


def _module_functions(tree: ast.Module) -> dict[str, ast.AST]:
    """Module-level functions, and names bound to a lambda (``f = lambda x: ...``)."""
    funcs: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            funcs[node.name] = node
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    funcs[t.id] = node.value
    return funcs


def _entry_class(tree: ast.Module, classes: dict[str, dict[str, ast.AST]]) -> str | None:
    """The class the harness instantiates: ``class ModelNew`` or ``ModelNew = SomeClass``."""
    if "ModelNew" in classes:
        return "ModelNew"
    for node in tree.body:
        names = (
            [t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign) else []
        )
        value = node.value if isinstance(node, ast.Assign) else None
        if "ModelNew" in names and isinstance(value, ast.Name) and value.id in classes:
            return value.id
    return None


def _bases(tree: ast.Module, name: str, classes: dict[str, dict[str, ast.AST]]) -> list[str]:
    """``name`` and the classes of this file it inherits from, nearest first."""
    defs = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    order, todo = [], [name]
    while todo:
        cur = todo.pop(0)
        if cur in order or cur not in classes:
            continue
        order.append(cur)
        todo.extend(b.id for b in defs[cur].bases if isinstance(b, ast.Name))
    return order


def forward_reachable(tree: ast.Module) -> set[ast.AST] | None:
    """Function nodes (defs and lambdas) that ``ModelNew.forward`` may run, or None when unknown.

    Followed: calls of module-level functions and lambdas by name, any name that refers to a class
    of the file (all its methods: constructing or calling it in forward runs them), and
    ``obj.name(...)`` where ``name`` is a method of any class in the file (a helper object held in
    an attribute). Functions nested in a reachable function are part of it. Names passed around as
    values (``map(helper, xs)``) count as references, so they are followed too.
    """
    classes = _class_methods(tree)
    entry = _entry_class(tree, classes)
    if entry is None:
        return None
    funcs = _module_functions(tree)
    methods_by_name: dict[str, list[ast.AST]] = {}
    for members in classes.values():
        for mname, m in members.items():
            methods_by_name.setdefault(mname, []).append(m)
    todo: list[ast.AST] = []
    for cls in _bases(tree, entry, classes):
        for mname in ("forward", "__call__"):
            if mname in classes[cls]:
                todo.append(classes[cls][mname])
    if not todo:
        return None
    seen: set[ast.AST] = set()
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        for node in ast.walk(fn):
            if isinstance(node, _Function) and node is not fn:
                seen.add(node)  # nested: runs only if the enclosing function runs, so it counts
            if isinstance(node, ast.Call) and _dotted(node.func) in _DYNAMIC_CALLS:
                return None
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "__dict__"
            ):
                return None
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                if node.id in funcs:
                    todo.append(funcs[node.id])
                if node.id in classes:
                    todo.extend(classes[node.id].values())
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                todo.extend(methods_by_name.get(node.attr, ()))
    return seen


class _Visitor(ast.NodeVisitor):
    def __init__(self, reachable: set[ast.AST] | None = None) -> None:
        self.findings: list[Finding] = []
        self.torch_aliases = {"torch"}
        self.functional_aliases: set[str] = set()
        # ``from torch import softmax`` / ``from torch.nn.functional import gelu``: local name ->
        # qualified name; a compute finding where the name is used in forward-reachable code.
        self.compute_names: dict[str, str] = {}
        self.in_handler = 0
        self.numpy_aliases: set[str] = set()
        self.jit_depth = 0  # inside a numba-compiled function: numpy there is the kernel itself
        self.reachable = reachable
        self.scopes: list[ast.AST] = []

    def add(self, kind: str, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(kind, getattr(node, "lineno", 0), message))

    def _runs_in_forward(self) -> bool:
        if self.reachable is None:  # reachability unknown: everything counts
            return True
        return any(scope in self.reachable for scope in self.scopes)

    def _visit_scope(self, node: ast.AST) -> None:
        jitted = any(_jit_decorator(d) for d in getattr(node, "decorator_list", ()))
        self.jit_depth += jitted
        self.scopes.append(node)
        self.generic_visit(node)
        self.scopes.pop()
        self.jit_depth -= jitted

    visit_FunctionDef = _visit_scope
    visit_AsyncFunctionDef = _visit_scope
    visit_Lambda = _visit_scope

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and node.id in self.compute_names:
            what = self.compute_names[node.id]
            if not (what.startswith("numpy.") and self.jit_depth):
                self._compute(node, what)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name == "torch":
                self.torch_aliases.add(a.asname or "torch")
            if a.name == "numpy" or (a.name.startswith("numpy.") and a.asname):
                self.numpy_aliases.add(a.asname or "numpy")
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
                self._compute_import(node, a, f"torch.nn.functional.{a.name}")
            if mod == "torch" and a.name not in ALLOWED_TORCH and a.name not in DTYPES:
                self._compute_import(node, a, f"torch.{a.name}")
            if (mod == "numpy" and a.name not in ALLOWED_NUMPY) or mod.startswith(
                ("numpy.linalg", "numpy.fft")
            ):
                self._compute_import(node, a, f"{mod}.{a.name}")
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
            if (
                head in self.numpy_aliases
                and rest
                and not self.jit_depth
                and rest.split(".")[0] not in ALLOWED_NUMPY
                and rest not in ("linalg", "fft")  # the outer np.linalg.norm is the finding
                and isinstance(getattr(node, "ctx", None), ast.Load)
                and "." not in rest.removeprefix("linalg.").removeprefix("fft.")
            ):
                self._compute(node, f"numpy.{rest}")
            if name.startswith("torch._C._") and "dispatch" in name.lower():
                self.add("tamper", node, f"touches torch dispatch internals ({name})")
        self.generic_visit(node)

    def _compute_import(self, node: ast.ImportFrom, alias: ast.alias, what: str) -> None:
        if self.reachable is None:  # as before: the import itself is the finding
            self.add("compute", node, f"imports {what}")
        else:
            self.compute_names[alias.asname or alias.name] = what

    def _compute(self, node: ast.AST, what: str) -> None:
        if not self._runs_in_forward():
            return  # __init__, import-time code, helpers forward never calls: not the kernel
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
    v = _Visitor(forward_reachable(tree))
    v.visit(tree)
    return v.findings
