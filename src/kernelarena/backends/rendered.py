"""Built-in solutions rendered from their search templates ("templates are the source").

``load_rendered(template)`` renders the template with the best configuration ``karena tune`` stored
for this machine (the fastest verified-and-timed config, by speedup over its baseline, among those
still valid in the template's space) or with the template's ``DEFAULT`` when none was tuned, writes
the file to the build cache (keyed by its text) and imports it. A built-in solution file is then
one line: ``ModelNew = load_rendered("gemm_fp32").ModelNew``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from kernelarena import settings
from kernelarena.search.space import Template, config_of

log = logging.getLogger(__name__)


def default_config(template: Template) -> dict[str, Any]:
    """The template's ``DEFAULT`` or, without one, the first valid config of its space."""
    cfg = getattr(template.module, "DEFAULT", None)
    if cfg is not None and template.is_valid(cfg):
        return dict(cfg)
    return template.configs()[0]


def best_stored_config(template: Template, db: Path, machine_id: str) -> dict[str, Any] | None:
    """The stored config of ``template`` with the highest speedup over its baseline on this machine."""
    if not db.is_file():  # never create a store just to read it
        return None
    from kernelarena.search.store import TuneStore

    try:
        with TuneStore(db) as store:
            records = store.records(task=template.task, machine_id=machine_id)
    except Exception as exc:  # an unreadable store must not break the built-in solution
        log.warning("tune store %s unreadable (%s); using the default config", db, exc)
        return None
    best: tuple[float, dict[str, Any]] | None = None
    for rec in records:
        point = rec.point
        if point.get("template") != template.name or not math.isfinite(rec.score_ms) or not rec.baseline_ms:
            continue
        cfg = config_of(point)
        if not template.is_valid(cfg):
            continue
        speedup = rec.baseline_ms / rec.score_ms
        if best is None or speedup > best[0]:
            best = (speedup, cfg)
    return best[1] if best else None


def chosen_config(template: Template) -> dict[str, Any]:
    from kernelarena.search.hwinfo import hardware

    stored = best_stored_config(template, settings.db_path(), hardware().machine_id)
    return stored if stored is not None else default_config(template)


def load_rendered(name: str, config: dict[str, Any] | None = None) -> ModuleType:
    """Render template ``name`` (with ``config``, else the chosen one) and import the result."""
    from kernelarena.search.templates import load_template

    template = load_template(name)
    source = template.render(config if config is not None else chosen_config(template))
    cache = settings.build_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"rendered_{name}_{hashlib.sha256(source.encode()).hexdigest()[:16]}.py"
    if not path.is_file():
        fd, tmp = tempfile.mkstemp(dir=cache, suffix=".py")
        with os.fdopen(fd, "w") as f:
            f.write(source)
        os.replace(tmp, path)  # atomic: concurrent workers never import a half-written file
    spec = importlib.util.spec_from_file_location(f"kernelarena_rendered_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the rendered template {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
