"""Templates, spaces and constraints of the search engine (no kernels are compiled here)."""

from __future__ import annotations

import ast
import itertools

import pytest

from kernelarena.search.hwinfo import HwInfo, hardware
from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.templates import (
    available_templates,
    load_template,
    tasks_with_templates,
    templates_for_task,
)
from kernelarena.search.testing import toy_hw, toy_templates

pytestmark = pytest.mark.unit

REQUIRED_TASKS = {"gemm_fp32", "flat_gemm_decode", "rmsnorm", "decode_attention", "w4a16_gemv"}
# a 2-core AVX2 laptop and a big AVX-512 server: lite spaces must be valid on both
MACHINES = [
    HwInfo(32 << 10, 512 << 10, 8 << 20, 2, 256, "laptop", "m1"),
    HwInfo(48 << 10, 2 << 20, 480 << 20, 64, 512, "server", "m2"),
]


def test_builtin_templates_cover_the_required_tasks() -> None:
    tasks = set(tasks_with_templates())
    assert len(tasks) >= 8
    assert tasks >= REQUIRED_TASKS


@pytest.mark.parametrize("name", available_templates())
def test_full_space_is_hundreds_and_respects_constraints(name: str) -> None:
    t = load_template(name)
    configs = t.configs()
    assert len(configs) >= 200, "full spaces should have hundreds of configs"
    product = 1
    for values in t.space.values():
        product *= len(values)
    assert len(configs) <= product
    for cfg in configs:
        assert t.is_valid(cfg)
    # a constraint-violating combination (if any) is not in the space
    all_cfgs = [dict(zip(t.space, v)) for v in itertools.product(*t.space.values())]
    invalid = [c for c in all_cfgs if not t.module.constraints(dict(c))]
    space = SearchSpace.full([t])
    assert all(t.point(c) not in space for c in invalid)
    assert len(space) == len(configs)


@pytest.mark.parametrize("name", available_templates())
@pytest.mark.parametrize("hw", MACHINES, ids=["laptop", "server"])
def test_lite_space_is_dozens_and_inside_the_full_space(name: str, hw: HwInfo) -> None:
    t = load_template(name)
    lite = t.lite_configs(hw)
    assert 12 <= len(lite) <= 100, f"{name}: lite space of {len(lite)} configs on {hw.cpu_model}"
    full = SearchSpace.full([t])
    assert all(t.point(c) in full for c in lite)


def test_lite_space_depends_on_the_hardware() -> None:
    differs = [
        n
        for n in available_templates()
        if load_template(n).lite_configs(MACHINES[0]) != load_template(n).lite_configs(MACHINES[1])
    ]
    assert len(differs) >= 4, "lite spaces should be derived from cache sizes / SIMD width / cores"


@pytest.mark.parametrize("name", available_templates())
def test_render_gives_a_solution_file_with_the_config_baked_in(name: str) -> None:
    t = load_template(name)
    lite = t.lite_configs(hardware())
    sources = {point_key(c): t.render(c) for c in lite[:6]}
    for src in sources.values():
        tree = ast.parse(src)
        classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
        assert classes == ["ModelNew"]
        assert ("load_library" in src and "torch.nn" in src) or "import torch.nn as nn" in src
    assert len(set(sources.values())) == len(sources), "different configs must render different files"
    assert t.render(lite[0]) == t.render(dict(lite[0])), "render must be deterministic"


def test_templates_for_task_and_source_hash() -> None:
    (t,) = templates_for_task("rmsnorm")
    assert t.task == "rmsnorm" and len(t.source_hash) == 16
    assert templates_for_task("no_such_task") == []
    with pytest.raises(KeyError):
        load_template("no_such_template")


def test_point_key_is_canonical() -> None:
    assert point_key({"b": 1, "a": "x"}) == point_key({"a": "x", "b": 1}) == '{"a":"x","b":1}'


def test_search_space_over_two_templates() -> None:
    a, b = toy_templates()
    full = SearchSpace.full([a, b])
    assert full.template_names == ("toy_a", "toy_b")
    assert len(full) == len(a.configs()) + len(b.configs())
    assert full.dims("toy_b") == {"x": (1, 2, 4, 8, 16, 32), "z": (0, 1)}
    p = full.points[5]
    assert full.by_key(point_key(p)) == p and full.index(p) == 5
    assert {"template": "toy_a", "x": 32, "y": 8, "mode": "p"} not in full  # x * y > 128
    lite = SearchSpace.lite([a, b], toy_hw())
    assert len(lite) == 12 and all(p in full for p in lite.points)
    # dims of a lite space only hold the values that occur in it
    assert lite.dims("toy_a")["x"] == (4, 8, 16)


def test_invalid_template_declarations_are_rejected() -> None:
    import types

    from kernelarena.search.space import Template

    mod = types.ModuleType("bad")
    mod.TASK = "x"  # type: ignore[attr-defined]
    mod.SPACE = {"template": [1]}  # type: ignore[attr-defined]
    mod.render = mod.constraints = mod.lite_space = lambda *a: None  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="reserved"):
        Template.from_module(mod)
    mod.SPACE = {"a": [1, 1]}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="duplicates"):
        Template.from_module(mod)


def test_importing_the_search_engine_is_light() -> None:
    """`karena tune --help` must not pay for torch, Optuna or XGBoost (DESIGN: light imports)."""
    import subprocess
    import sys

    code = (
        "import sys, kernelarena.search, kernelarena.search.loop, kernelarena.search.templates;"
        "from kernelarena.search import TuneRequest, TuneStore, tune, STRATEGIES;"
        "print(sorted(m for m in ('torch', 'optuna', 'xgboost', 'numba', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rendered_builtins_are_detected_as_their_templates_backend() -> None:
    # a one-line `load_rendered("...")` solution has no C in it: its backend (build key, code path
    # in bench records) is the rendered template's (gemm_fp32 was filed as plain torch before)
    from kernelarena.backends.registry import detect_backend
    from kernelarena.suite import builtin_solutions_dir

    rendered = [p for p in builtin_solutions_dir("cpu").glob("*.py") if "load_rendered(" in p.read_text()]
    assert {p.stem for p in rendered} >= {
        "gemm_fp32",
        "fused_lora_linear",
        "grouped_expert_ffn",
        "w4a16_gemv",
        "ternary_matmul",
        "flat_gemm_decode",
    }
    for p in builtin_solutions_dir("cpu").glob("*.py"):
        if not p.name.startswith("_"):
            assert detect_backend(p.read_text()) == "c", p.name
