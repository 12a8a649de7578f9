"""Templates (declarative kernel generators) and the finite search spaces built from them.

A template is a module in ``kernelarena.search.templates`` with::

    TASK = "rmsnorm"                       # suite task it solves (task file stem)
    SPACE = {"vec": [4, 8, 16], ...}       # parameter -> candidate values (numeric ones ascending)
    def constraints(config) -> bool        # which combinations are valid
    def lite_space(hw) -> list[dict]       # dozens of configs chosen for this machine (HwInfo)
    def render(config) -> str              # a complete solution file (class ModelNew)
    def features(config, hw) -> dict       # optional: derived numbers for the cost model

Spaces are small enough (hundreds to a few thousand points) to enumerate, so every strategy works
on the same explicit list of valid points, and "is this point valid" is a set lookup.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.types import TEMPLATE_KEY, Point


def point_key(point: Mapping[str, Any]) -> str:
    """Canonical JSON of a point: the identity used for dedup, store keys and tie-breaking."""
    return json.dumps(dict(point), sort_keys=True, separators=(",", ":"))


def config_of(point: Mapping[str, Any]) -> dict[str, Any]:
    """The template parameters of a point (without the ``template`` key)."""
    return {k: v for k, v in point.items() if k != TEMPLATE_KEY}


@dataclass(frozen=True)
class Template:
    """A loaded template module with its identity (name, task, source hash)."""

    name: str
    task: str
    space: Mapping[str, tuple[Any, ...]]
    module: ModuleType = field(repr=False, compare=False)
    source_hash: str = ""

    @staticmethod
    def from_module(module: ModuleType, name: str | None = None) -> Template:
        space_raw = getattr(module, "SPACE", None)
        if not isinstance(space_raw, Mapping) or not space_raw:
            raise ValueError(f"template {module.__name__} has no SPACE dict")
        for attr in ("TASK", "render", "constraints", "lite_space"):
            if not hasattr(module, attr):
                raise ValueError(f"template {module.__name__} lacks {attr}")
        if TEMPLATE_KEY in space_raw:
            raise ValueError(f"template {module.__name__}: '{TEMPLATE_KEY}' is a reserved parameter name")
        space = {str(k): tuple(v) for k, v in space_raw.items()}
        for k, values in space.items():
            if not values or len(set(map(repr, values))) != len(values):
                raise ValueError(f"template {module.__name__}: SPACE[{k!r}] is empty or has duplicates")
        try:
            src = inspect.getsource(module)
        except (OSError, TypeError):  # a module built in memory (tests): hash what defines it
            src = repr(sorted(space.items())) + repr(getattr(module, "SOURCE_TAG", module.__name__))
        return Template(
            name=name or str(getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1])),
            task=str(module.TASK),
            space=space,
            module=module,
            source_hash=hashlib.sha256(src.encode()).hexdigest()[:16],
        )

    def is_valid(self, config: Mapping[str, Any]) -> bool:
        """Every parameter present with a value from SPACE, and the template's constraints hold."""
        if set(config) != set(self.space):
            return False
        if any(config[k] not in self.space[k] for k in self.space):
            return False
        return bool(self.module.constraints(dict(config)))

    def configs(self) -> list[dict[str, Any]]:
        """Every valid config of the full space, in SPACE order (deterministic)."""
        names = list(self.space)
        out = []
        for values in itertools.product(*(self.space[k] for k in names)):
            cfg = dict(zip(names, values))
            if self.module.constraints(dict(cfg)):
                out.append(cfg)
        return out

    def lite_configs(self, hw: HwInfo) -> list[dict[str, Any]]:
        """The template's lite configs for ``hw``, deduplicated; invalid ones are an error."""
        seen: dict[str, dict[str, Any]] = {}
        for cfg in self.module.lite_space(hw):
            if not self.is_valid(cfg):
                raise ValueError(f"template {self.name}: lite config {cfg} is not in the valid space")
            seen.setdefault(point_key(cfg), dict(cfg))
        return list(seen.values())

    def render(self, config: Mapping[str, Any]) -> str:
        return str(self.module.render(config_of(config)))

    def features(self, config: Mapping[str, Any], hw: HwInfo) -> dict[str, float]:
        fn = getattr(self.module, "features", None)
        return {str(k): float(v) for k, v in fn(config_of(config), hw).items()} if fn else {}

    def point(self, config: Mapping[str, Any]) -> Point:
        return {TEMPLATE_KEY: self.name, **config_of(config)}


class SearchSpace:
    """A finite, ordered list of valid points over one or more templates of the same task."""

    def __init__(self, templates: Sequence[Template], points: Iterable[Point], hints: Iterable[Point] = ()):
        self.templates: dict[str, Template] = {t.name: t for t in templates}
        uniq: dict[str, Point] = {}
        for p in points:
            if p.get(TEMPLATE_KEY) not in self.templates:
                raise ValueError(f"point {p} names an unknown template")
            uniq.setdefault(point_key(p), dict(p))
        if not uniq:
            raise ValueError("empty search space")
        self.points: tuple[Point, ...] = tuple(uniq.values())
        self._index = {k: i for i, k in enumerate(uniq)}
        # hardware-informed starting points (the lite configs) that strategies may try first
        self.hints: tuple[Point, ...] = tuple(dict(h) for h in hints if point_key(h) in self._index)
        # per template: the values each parameter takes in this space (SPACE order), for samplers/mutation
        self._dims: dict[str, dict[str, tuple[Any, ...]]] = {}
        for t in templates:
            used = [p for p in self.points if p[TEMPLATE_KEY] == t.name]
            if used:
                self._dims[t.name] = {
                    k: tuple(v for v in vals if any(p[k] == v for p in used)) for k, vals in t.space.items()
                }

    @staticmethod
    def full(templates: Sequence[Template], hw: HwInfo | None = None) -> SearchSpace:
        """Every valid point; with ``hw``, the lite configs become the space's ``hints``."""
        hints = [t.point(c) for t in templates for c in t.lite_configs(hw)] if hw is not None else []
        return SearchSpace(templates, [t.point(c) for t in templates for c in t.configs()], hints)

    @staticmethod
    def lite(templates: Sequence[Template], hw: HwInfo) -> SearchSpace:
        return SearchSpace(templates, [t.point(c) for t in templates for c in t.lite_configs(hw)])

    def __len__(self) -> int:
        return len(self.points)

    def __contains__(self, point: object) -> bool:
        return isinstance(point, Mapping) and point_key(point) in self._index

    def index(self, point: Mapping[str, Any]) -> int:
        return self._index[point_key(point)]

    def by_key(self, key: str) -> Point:
        return dict(self.points[self._index[key]])

    @property
    def template_names(self) -> tuple[str, ...]:
        """Templates that have at least one point here (sorted: a stable order for samplers)."""
        return tuple(sorted(self._dims))

    def dims(self, template: str) -> dict[str, tuple[Any, ...]]:
        return self._dims[template]

    def template_of(self, point: Mapping[str, Any]) -> Template:
        return self.templates[str(point[TEMPLATE_KEY])]
