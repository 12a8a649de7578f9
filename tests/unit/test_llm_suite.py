"""The built-in `llm` suite: enough tasks and categories, each with complete metadata."""

import pytest

from kernelarena.tasks.loader import SUITES_DIR, list_tasks, load_task, task_files

pytestmark = pytest.mark.unit

CATEGORIES = {
    "attention", "matmul", "quantized-matmul", "normalization", "activation", "embedding", "loss", "moe",
    "kv-cache", "optimizer", "fine-tuning", "decoding", "scan", "convolution", "clustering",
}  # fmt: skip
FILES = task_files(SUITES_DIR / "llm")


def test_suite_size_and_breadth() -> None:
    tasks = list_tasks(SUITES_DIR / "llm")
    assert len(tasks) == len(FILES) >= 40  # every file loads
    assert len({t.category for t in tasks}) >= 12


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_task_metadata(path) -> None:
    t = load_task(path)
    assert t.category in CATEGORIES, t.category
    assert t.source.strip(), "SOURCE names the paper or system"
    assert len(t.variants) >= 3 and not any(v.derived for v in t.variants)
    assert t.has_flops and t.has_bytes_moved
    # the integer-GEMM tasks state the int8 work their fp32 flops() leaves out
    assert t.has_int_ops == (path.stem in ("w4a4_outlier_gemm", "w6a8_gemm"))
    module_doc = path.read_text().lstrip().startswith(('"""', "'''", "#"))
    assert module_doc, "a docstring says what the task computes"
