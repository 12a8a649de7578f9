"""Lazy backend registry: which backend a solution uses, and the backend module on demand.

Importing this module loads no GPU or JIT library (no torch, triton, numba): detection reads the
solution's source with :mod:`ast`, and :func:`get_backend` imports a backend module only when asked.

Backends (name -> module):

* ``triton`` -> :mod:`kernelarena.backends.triton` (``@triton.jit`` kernels)
* ``cuda``   -> :mod:`kernelarena.backends.cuda` (``load_inline``, NVRTC, CuPy raw kernels)
* ``numba``  -> :mod:`kernelarena.backends.numba`
* ``c``      -> :mod:`kernelarena.backends.c` (gcc + ctypes)
* ``torch``  -> no backend module: plain PyTorch (a reference, or a solution the strict policy rejects)

Example::

    from kernelarena.backends.registry import detect_backend, get_backend
    name = detect_backend(Path("sol.py").read_text())   # "triton"
    backend = get_backend(name)                          # imports kernelarena.backends.triton now
"""

from __future__ import annotations

import ast
import importlib
import re
from types import ModuleType

BACKEND_MODULES: dict[str, str] = {
    "triton": "kernelarena.backends.triton",
    "cuda": "kernelarena.backends.cuda",
    "numba": "kernelarena.backends.numba",
    "c": "kernelarena.backends.c",
}
BACKEND_NAMES: tuple[str, ...] = ("triton", "cuda", "numba", "c", "torch")


class BackendUnavailable(ImportError):
    """The backend is known but its module (or the library it wraps) cannot be imported here."""


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name, from the module's import statements."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def dotted_name(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attribute accesses on a name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def referenced_names(source: str) -> set[str]:
    """Fully qualified names the code refers to (``tl.load`` -> ``triton.language.load``).

    Only code counts: a comment or docstring that mentions ``triton.jit`` does not make a solution a
    Triton solution. Imports themselves count too, so ``import numba`` alone reads as numba.
    """
    tree = ast.parse(source)
    aliases = _imported_names(tree)
    names: set[str] = set(aliases.values())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Name):
            dotted = dotted_name(node)
            if dotted is None:
                continue
            head, _, rest = dotted.partition(".")
            if head in aliases:
                names.add(aliases[head] + ("." + rest if rest else ""))
        elif isinstance(node, ast.keyword) and node.arg == "cuda_sources":
            names.add("torch.utils.cpp_extension.load_inline")
    return names


_CUDA_PREFIXES = (
    "torch.utils.cpp_extension.load_inline",
    "torch.utils.cpp_extension.load",
    "torch.utils.cpp_extension.CUDAExtension",
    "cupy.RawKernel",
    "cupy.RawModule",
    "cupy.ElementwiseKernel",
    "cupy.ReductionKernel",
    "cuda.nvrtc",
    "cuda.bindings.nvrtc",
    "cuda.core",
    "pycuda",
    "kernelarena.backends.cuda",
)


def _classify(names: set[str]) -> str:
    def any_prefix(prefixes: tuple[str, ...]) -> bool:
        return any(n == p or n.startswith(p + ".") for n in names for p in prefixes)

    if any_prefix(("triton.jit", "triton.autotune", "triton.language", "triton.runtime.jit")):
        return "triton"
    if any_prefix(_CUDA_PREFIXES):
        return "cuda"
    if any_prefix(("numba",)):
        return "numba"
    if any_prefix(("kernelarena.backends.c", "ctypes", "cffi")):
        return "c"
    return "torch"


def _rendered_template(source: str) -> str | None:
    """The source ``load_rendered("name")`` renders (with the template's default config; the
    backend does not depend on the config), or None when the call names no known template."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and dotted_name(node.func) in ("load_rendered", "rendered.load_rendered")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            from kernelarena.backends.rendered import default_config
            from kernelarena.search.templates import available_templates, load_template

            if node.args[0].value in available_templates():
                template = load_template(node.args[0].value)
                return template.render(default_config(template))
    return None


def detect_backend(solution_source: str) -> str:
    """Name of the backend a solution's source uses: triton, cuda, numba, c or torch.

    Precedence follows what must be compiled: a Triton solution may also import ctypes, a CUDA one
    may also import numba for a helper. A source that does not parse is classified by text.
    """
    try:
        names = referenced_names(solution_source)
        rendered = (
            _rendered_template(solution_source)
            if "kernelarena.backends.rendered.load_rendered" in names
            else None
        )
        if rendered is not None:  # a built-in rendered from a search template: the template's backend
            return detect_backend(rendered)
        return _classify(names)
    except SyntaxError:
        text = solution_source
        if re.search(r"\btriton\.jit\b|@\s*jit\b.*\n\s*def", text):
            return "triton"
        if re.search(r"\bload_inline\b|\bcuda_sources\b|\bnvrtc\b|\bRawKernel\b|__global__", text):
            return "cuda"
        if re.search(r"\bnumba\b", text):
            return "numba"
        if re.search(r"\bctypes\b|\bload_library\b", text):
            return "c"
        return "torch"


def get_backend(name: str) -> ModuleType:
    """Import and return the backend module for ``name`` (``torch`` has none: ValueError)."""
    if name == "torch":
        raise ValueError("the torch backend has no module: plain PyTorch code needs no build step")
    if name not in BACKEND_MODULES:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
    try:
        return importlib.import_module(BACKEND_MODULES[name])
    except ImportError as err:
        raise BackendUnavailable(f"backend {name!r} is not usable here: {err}") from err
