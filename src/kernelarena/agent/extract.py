"""Code from an LLM reply: fenced blocks (```python, ```c, ...), several blocks, or no block at all.

A reply is untrusted text. Nothing here runs it: the code is only parsed (``ast``) to find the
block that defines ``ModelNew``. No usable code -> ``None`` (the loop records a failed attempt).
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.M | re.S)
_OPEN_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([A-Za-z0-9_+.#-]*)[^\n]*\n(.*)\Z", re.M | re.S)
_PY_TAGS = {"", "python", "py", "python3", "py3"}


def blocks(reply: str) -> list[tuple[str, str]]:
    """Every fenced block as ``(language tag, code)``, in order; an unterminated last fence counts."""
    matches = list(_FENCE.finditer(reply))
    out = [(m.group(2).lower(), m.group(3)) for m in matches]
    tail = reply[matches[-1].end() :] if matches else reply
    m = _OPEN_FENCE.search(tail)
    if m:  # a reply cut off by max_tokens: keep what is there, the parser decides
        out.append((m.group(2).lower(), m.group(3)))
    return out


def _parses(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _defines_model_new(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.ClassDef) and n.name == "ModelNew" for n in tree.body)


def _from_bare_text(reply: str) -> str | None:
    """No fence: the longest run of lines from the first import/class line that parses."""
    lines = reply.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"(import |from \S+ import |class |@|def )", ln)]
    for s in starts:
        for e in range(len(lines), s, -1):
            code = "\n".join(lines[s:e]).strip() + "\n"
            tree = _parses(code)
            if tree is not None and _defines_model_new(tree):
                return code
    return None


def extract_code(reply: str | None) -> str | None:
    """The Python solution in ``reply`` (defining ``ModelNew``), or None when there is none.

    Several blocks: the last Python block that defines ``ModelNew`` (replies often show a draft,
    then the final version). A C/C++ block alone is not a solution (the contract is a Python file
    that compiles its C through ``load_library``), so it yields None.
    """
    if not reply or not reply.strip():
        return None
    found = blocks(reply)
    candidates = [code for tag, code in found if tag in _PY_TAGS]
    for code in reversed(candidates):
        tree = _parses(code)
        if tree is not None and _defines_model_new(tree):
            return code.strip("\n") + "\n"
    if not found:
        return _from_bare_text(reply)
    return None
