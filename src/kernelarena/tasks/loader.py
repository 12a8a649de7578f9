"""Loading KernelBench-format task files: metadata, variants, and scaling to a memory budget.

A task module is executed afresh for every variant with its overrides *pinned*: assignments in the
file to an overridden name are ignored, so globals derived from it (``hidden = 4 * dim``) follow
the override. The module is never imported into the candidate's process.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sys
import types
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from kernelarena.errors import TaskError, UsageError
from kernelarena.types import Task, Variant

log = logging.getLogger(__name__)

SUITES_DIR = Path(__file__).parent / "suites"
_counter = itertools.count()


class _PinnedNamespace(MutableMapping[str, Any]):
    """Module-level locals that forward to the module's globals but never overwrite pinned names."""

    def __init__(self, globals_: dict[str, Any], pinned: set[str]):
        self._g = globals_
        self._pinned = pinned

    def __getitem__(self, key: str) -> Any:
        return self._g[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._pinned:
            self._g[key] = value

    def __delitem__(self, key: str) -> None:
        del self._g[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._g)

    def __len__(self) -> int:
        return len(self._g)


def exec_task_module(path: Path, overrides: dict[str, Any] | None = None) -> types.ModuleType:
    """Execute the file at ``path`` as a fresh module with ``overrides`` pinned."""
    try:
        source = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise TaskError(f"{path}: syntax error at line {exc.lineno}: {exc.msg}") from None
    name = f"karena_mod_{path.stem}_{next(_counter)}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    g = module.__dict__
    g.update(overrides or {})
    exec(code, g, _PinnedNamespace(g, set(overrides or {})))
    return module


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def suite_dir(suite: str) -> Path:
    path = SUITES_DIR / suite
    if not path.is_dir():
        known = ", ".join(sorted(p.name for p in SUITES_DIR.iterdir() if p.is_dir() and p.name[0] != "_"))
        raise UsageError(f"unknown suite {suite!r} (built-in suites: {known})")
    return path


def task_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.py") if not p.name.startswith("_"))


def resolve_task(ref: str | Path) -> Path:
    """A task file path, or a built-in task name such as ``rmsnorm`` (searched in every suite)."""
    path = Path(ref)
    if path.is_file():
        return path.resolve()
    if path.suffix == "" and "/" not in str(ref):
        hits = sorted(SUITES_DIR.glob(f"*/{ref}.py"))
        if hits:
            return hits[0]
        raise UsageError(f"no task file {ref!r} and no built-in task of that name (see `karena tasks`)")
    raise UsageError(f"task file not found: {ref}")


def _size_globals(module: types.ModuleType) -> dict[str, int]:
    """Module-level integers that look like sizes (value >= 2, not bool): lowercase names, and the
    short uppercase ones matrix tasks use (``M``, ``N``, ``K``)."""
    return {
        k: v
        for k, v in vars(module).items()
        if type(v) is int
        and v >= 2
        and not k.startswith("_")
        and (k.islower() or (k.isupper() and len(k) <= 2))
    }


def _walk_tensors(value: Any) -> Iterator[Any]:
    import torch

    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk_tensors(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _walk_tensors(v)


def input_bytes(path: Path, overrides: dict[str, Any]) -> int | None:
    """Bytes of ``get_inputs()`` for these overrides, computed on the meta device (no allocation)."""
    import torch

    try:
        module = exec_task_module(path, overrides)
        with torch.device("meta"):
            inputs = module.get_inputs()
        return sum(t.numel() * t.element_size() for t in _walk_tensors(inputs))
    except Exception as exc:  # a task that cannot run on meta simply is not scaled
        log.debug("input_bytes(%s, %s) failed: %s", path, overrides, exc)
        return None
    finally:
        sys.modules.pop(getattr(locals().get("module"), "__name__", ""), None)


# Bump when what footprint_bytes measures changes: cached figures from before are then ignored.
_FOOTPRINT_VERSION = 1
_footprints: dict[tuple[str, str], tuple[int | None, bool]] = {}


def footprint_bytes(path: Path, overrides: dict[str, Any]) -> tuple[int | None, bool]:
    """Bytes of one case's inputs, parameters and outputs, on the meta device (nothing allocated).

    Returns (bytes, whether the model ran on meta). A model that cannot run on meta counts its
    inputs only; (None, False) when not even ``get_inputs`` runs there.

    Cached by task source, overrides and torch version, in memory and on disk: a meta-device forward
    runs every op in Python (~0.3 ms each), so a task with a loop over 1024 time steps took ~3 s per
    call, and scaling one task makes ~20 calls -- on every ``check`` of that task.
    """
    try:
        digest = source_hash(path)
    except OSError:
        return _footprint(path, overrides)
    key = (digest, json.dumps(overrides, sort_keys=True, default=repr))
    if key in _footprints:
        return _footprints[key]
    disk = _FootprintFile(digest)
    hit = disk.get(key[1])
    result = hit if hit is not None else _footprint(path, overrides)
    if hit is None:
        disk.put(key[1], result)
    _footprints[key] = result
    return result


class _FootprintFile:
    """One task source's cached footprints: a small JSON file, replaced atomically (a lost update
    between two concurrent loaders only costs a recomputation)."""

    def __init__(self, digest: str):
        import torch

        from kernelarena.settings import footprint_cache_dir

        self.path = (
            footprint_cache_dir() / f"{digest[:32]}-torch{torch.__version__}-v{_FOOTPRINT_VERSION}.json"
        )

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> tuple[int | None, bool] | None:
        entry = self._read().get(key)
        if (
            isinstance(entry, list)
            and len(entry) == 2
            and (entry[0] is None or type(entry[0]) is int)
            and type(entry[1]) is bool
        ):
            return entry[0], entry[1]
        return None

    def put(self, key: str, value: tuple[int | None, bool]) -> None:
        data = self._read()
        data[key] = list(value)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)
        except OSError as exc:  # a read-only cache only costs time
            log.debug("cannot write %s: %s", self.path, exc)


def _footprint(path: Path, overrides: dict[str, Any]) -> tuple[int | None, bool]:
    import torch

    module = None
    try:
        module = exec_task_module(path, overrides)
        with torch.device("meta"):
            inputs = module.get_inputs()
        in_bytes = _tensor_bytes(inputs)
        try:
            with torch.device("meta"), torch.no_grad():
                init = module.get_init_inputs()
                model = module.Model(*(init if isinstance(init, list | tuple) else [init]))
                out = model(*(inputs if isinstance(inputs, list | tuple) else [inputs]))
            params = _tensor_bytes(list(model.state_dict().values())) if hasattr(model, "state_dict") else 0
            return in_bytes + params + _tensor_bytes(out), True
        except Exception:  # data-dependent or meta-less ops: the inputs still bound the case
            return in_bytes, False
    except Exception as exc:  # a task that cannot run on meta simply is not scaled
        log.debug("footprint_bytes(%s, %s) failed: %s", path, overrides, exc)
        return None, False
    finally:
        if module is not None:
            sys.modules.pop(module.__name__, None)


def _tensor_bytes(value: Any) -> int:
    return sum(t.numel() * t.element_size() for t in _walk_tensors(value))


def largest_case_bytes(task: Task) -> int:
    """Inputs + parameters + outputs of the task's largest variant (0 when meta cannot tell)."""
    return max((footprint_bytes(task.path, v.overrides)[0] or 0 for v in task.variants), default=0)


# integer globals that are operator settings, not sizes: scaling them changes the task
_NOT_SIZES = ("kernel", "stride", "pad", "dilation", "groups", "pool")


def _batch_like(name: str) -> bool:
    return "batch" in name.lower() or name in ("b", "bs", "B", "n_seq", "num_seqs")


def _shape_globals(module: types.ModuleType) -> dict[str, tuple[int, ...]]:
    """Module-level tuples of integers (KernelBench's ``input_shape = (32768,)``): their elements
    are sizes too, addressed as ``name[i]``."""
    return {
        k: v
        for k, v in vars(module).items()
        if type(v) is tuple and v and all(type(e) is int for e in v) and not k.startswith("_") and k.islower()
    }


def _slots(module: types.ModuleType) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """Scalable sizes: integer globals by name, tuple elements as ``name[i]``; and the tuples."""
    tuples = _shape_globals(module)
    slots: dict[str, int] = dict(_size_globals(module))
    for name, value in tuples.items():
        slots |= {f"{name}[{i}]": e for i, e in enumerate(value) if e >= 2}
    return slots, tuples


def _apply(
    overrides: dict[str, Any], values: dict[str, int], tuples: dict[str, tuple[int, ...]]
) -> dict[str, Any]:
    """Overrides for slot values: ``name[i]`` slots are written back into their whole tuple."""
    out = dict(overrides)
    for key, v in values.items():
        name, sep, rest = key.partition("[")
        if not sep:
            out[key] = v
            continue
        items = list(out.get(name, tuples[name]))
        items[int(rest.rstrip("]"))] = v
        out[name] = tuple(items)
    return out


def _ties(slots: dict[str, int]) -> dict[str, list[str]]:
    """For each slot, every slot that had the same value before scaling (itself included).

    Equal sizes are often equal by necessity (KernelBench's HingeLoss broadcasts a (batch, n)
    tensor against a (batch,) one, which only works while batch == n), so scaling moves them
    together and they stay equal."""
    return {k: [h for h in slots if slots[h] == v] for k, v in slots.items()}


def scale_to_fit(path: Path, overrides: dict[str, Any], max_bytes: int) -> tuple[dict[str, Any], str | None]:
    """Shrink size globals until inputs, parameters and outputs fit ``max_bytes``.

    The batch-like globals alone are tried first (they keep every other dimension, so the task
    stays valid); then all size globals that change the footprint, proportionally. Sizes that were
    equal before scaling stay equal (they move together). A shrunken shape must still run on the
    meta device when the original did. Returns the new overrides and a note saying what was done
    (None when nothing was needed).
    """
    size, ran = footprint_bytes(path, overrides)
    if size is None or size <= max_bytes:
        return overrides, None
    module = exec_task_module(path, overrides)
    sizes, tuples = _slots(module)
    sys.modules.pop(module.__name__, None)
    relevant = {}  # only the globals that actually change the footprint are scaled
    base_inputs = input_bytes(path, overrides)
    for k, v in sizes.items():
        if any(word in k.lower() for word in _NOT_SIZES):
            continue
        doubled = _apply(overrides, {k: v * 2}, tuples)
        # inputs are part of the footprint: when they grow, no forward pass is needed to know
        # (a meta forward of a 1024-step loop costs seconds); otherwise the whole footprint decides
        grown = input_bytes(path, doubled)
        if base_inputs is not None and grown is not None and grown != base_inputs:
            relevant[k] = v
            continue
        probe, _ = footprint_bytes(path, doubled)
        if probe is not None and probe != size:
            relevant[k] = v
    if not relevant:
        return (
            overrides,
            f"a case is {size / 2**20:.0f} MiB (> {max_bytes / 2**20:.0f} MiB) but no size global found to scale",
        )
    ties = _ties(relevant)
    batch = {h: relevant[h] for k in relevant if _batch_like(k) for h in ties[k]}
    groups = [g for g in (batch, relevant) if g]
    result = None
    for group in groups:
        current, new_size = _shrink(path, overrides, group, size, max_bytes, ran, tuples, ties)
        result = (current, new_size, group)
        if new_size <= max_bytes:
            break
    assert result is not None
    current, new_size, group = result
    scaled = _apply(overrides, current, tuples)
    note = (
        f"scaled {', '.join(f'{k} {group[k]}->{current[k]}' for k in group if group[k] != current[k])} so a case fits "
        f"{max_bytes / 2**20:.0f} MiB (inputs, parameters and outputs: {size / 2**20:.1f} -> {new_size / 2**20:.1f} MiB)"
    )
    return scaled, note


def _shrink(
    path: Path,
    overrides: dict[str, Any],
    group: dict[str, int],
    size: int,
    max_bytes: int,
    ran: bool,
    tuples: dict[str, tuple[int, ...]],
    ties: dict[str, list[str]],
) -> tuple[dict[str, int], int]:
    """Halve the largest global of ``group`` (with the globals tied to it) until the case fits:
    small dimensions (a matmul's small K, a head size) keep their value as long as larger ones can
    give. A halving after which the model no longer runs on meta (when it did before) is undone
    and those globals are frozen (a LayerNorm over a spatial size tied to a channel count)."""
    current, new_size = dict(group), size
    frozen: set[str] = set()
    for _ in range(200):
        movable = [k for k in current if k not in frozen and current[k] > 1]
        if not movable:
            break
        k = max(movable, key=lambda name: current[name])
        old = current[k]
        new = max(1, old // 2 | (old & 1 if old > 3 else 0))
        moved = [h for h in ties.get(k, [k]) if h in current and current[h] == old]
        for h in moved:
            current[h] = new
        probe, still_runs = footprint_bytes(path, _apply(overrides, current, tuples))
        if ran and not still_runs:
            for h in moved:
                current[h] = old
            frozen.update(moved)
            continue
        new_size = probe or 0
        if new_size <= max_bytes:
            break
    return current, new_size


def _independent_sizes(path: Path, module: types.ModuleType) -> dict[str, int]:
    """Size globals that are not computed from other globals (``hidden = 2 * dim`` is derived)."""
    sizes = _size_globals(module)
    derived: set[str] = set()
    for k, v in sizes.items():
        probe = exec_task_module(path, {k: v + 1})
        derived |= {h for h in sizes if h != k and getattr(probe, h, None) != sizes[h]}
        sys.modules.pop(probe.__name__, None)
    return {k: v for k, v in sizes.items() if k not in derived}


def _derived_variants(path: Path, module: types.ModuleType) -> list[dict[str, Any]]:
    """Extra shapes for a task without VARIANTS: odd smaller sizes, and batch 1.

    Whether each is valid is only known by running it; the verifier drops the ones the reference
    cannot run and says so.
    """
    sizes = _independent_sizes(path, module)
    if not sizes:
        return []
    out = [{k: max(1, (v // 2) | 1) if v > 3 else v for k, v in sizes.items()}]
    batch = {k: 1 for k in sizes if "batch" in k or k in ("b", "bs", "n_seq", "num_seqs")}
    if batch:
        out.append(batch)
    return out


def load_task(ref: str | Path, *, max_bytes: int | None = None) -> Task:
    """Load a task file's metadata (KernelBench format plus kernelarena's optional extras)."""
    path = resolve_task(ref)
    try:
        module = exec_task_module(path)
    except UsageError:
        raise
    except Exception as exc:
        raise TaskError(f"{path}: task file raised {type(exc).__name__} on load: {exc}") from None
    try:
        missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if not hasattr(module, n)]
        if missing:
            raise TaskError(f"{path}: not a task file, missing {', '.join(missing)}")
        notes: list[str] = []
        raw = getattr(module, "VARIANTS", None)
        if raw is not None:
            if not isinstance(raw, list | tuple) or not raw or not all(isinstance(v, dict) for v in raw):
                raise TaskError(f"{path}: VARIANTS must be a non-empty list of dicts")
            unknown = sorted({k for v in raw for k in v if not hasattr(module, k)})
            if unknown:
                raise TaskError(f"{path}: VARIANTS override unknown globals: {', '.join(unknown)}")
            variants = [Variant(i, dict(v)) for i, v in enumerate(raw)]
        else:
            variants = [Variant(0, {})]
            derived = _derived_variants(path, module)
            variants += [Variant(i + 1, d, derived=True) for i, d in enumerate(derived)]
            notes.append(
                f"no VARIANTS: derived {len(derived)} extra shape(s) from the size globals"
                if derived
                else "no VARIANTS and no integer size globals: only the default shape is verified"
            )
        if max_bytes is not None:
            scaled_variants = []
            for v in variants:
                overrides, note = scale_to_fit(path, v.overrides, max_bytes)
                if note:
                    notes.append(f"variant {v.index}: {note}")
                scaled_variants.append(Variant(v.index, overrides, v.derived))
            variants = scaled_variants
        perturb = getattr(module, "PERTURB_INPUTS", None)
        return Task(
            name=path.stem,
            path=path,
            source_hash=source_hash(path),
            category=str(getattr(module, "CATEGORY", "uncategorized")),
            source=str(getattr(module, "SOURCE", "")),
            variants=tuple(variants),
            atol=_float_or_none(getattr(module, "ATOL", None)),
            rtol=_float_or_none(getattr(module, "RTOL", None)),
            float64_reference=bool(getattr(module, "FLOAT64_REFERENCE", True)),
            perturb_inputs=None if perturb is None else tuple(int(i) for i in perturb),
            randomize_params=bool(getattr(module, "RANDOMIZE_PARAMS", True)),
            in_place=bool(getattr(module, "IN_PLACE", False)),
            has_flops=callable(getattr(module, "flops", None)),
            has_bytes_moved=callable(getattr(module, "bytes_moved", None)),
            has_int_ops=callable(getattr(module, "int_ops", None)),
            has_memory_budget=_has_budget(path, module),
            notes=tuple(notes),
        )
    finally:
        sys.modules.pop(module.__name__, None)


def _has_budget(path: Path, module: types.ModuleType) -> bool:
    fn = getattr(module, "memory_budget", None)
    const = getattr(module, "MEMORY_BUDGET", None)
    if fn is not None and not callable(fn):
        raise TaskError(
            f"{path}: memory_budget must be a function of the inputs (use MEMORY_BUDGET for bytes)"
        )
    if const is not None and (isinstance(const, bool) or not isinstance(const, int | float) or const <= 0):
        raise TaskError(f"{path}: MEMORY_BUDGET must be a positive number of bytes, got {const!r}")
    return fn is not None or const is not None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def list_tasks(directory: Path) -> list[Task]:
    """Every task file in ``directory``; a broken file is reported and skipped, never fatal."""
    tasks = []
    for p in task_files(directory):
        try:
            tasks.append(load_task(p))
        except UsageError as exc:
            log.warning("skipping %s: %s", p.name, exc)
    return tasks
