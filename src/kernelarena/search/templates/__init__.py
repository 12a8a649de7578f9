"""Built-in kernel templates, one module per template (see :mod:`kernelarena.search.space`).

A task's main template lives in ``<task>.py``; alternative templates for the same task (another
algorithm or backend, so that search can choose between templates) in ``<task>__<variant>.py``.
Modules are imported only when asked for, so listing them costs nothing.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from kernelarena.search.space import Template


@functools.cache
def available_templates() -> tuple[str, ...]:
    """Names of every built-in template module (sorted)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


@functools.cache
def load_template(name: str) -> Template:
    """Import one template module and check its declarations."""
    if name not in available_templates():
        raise KeyError(f"no template named {name!r}; known: {', '.join(available_templates())}")
    return Template.from_module(importlib.import_module(f"{__name__}.{name}"), name=name)


def task_of(name: str) -> str:
    """The task a template solves, from its module name (``gemm_fp32__packed`` -> ``gemm_fp32``)."""
    return name.split("__", 1)[0]


def templates_for_task(task: str) -> list[Template]:
    """Every built-in template whose TASK is ``task`` (main template first)."""
    names = [n for n in available_templates() if task_of(n) == task]
    out = [load_template(n) for n in names]
    return [t for t in out if t.task == task]


def tasks_with_templates() -> tuple[str, ...]:
    return tuple(sorted({task_of(n) for n in available_templates()}))
