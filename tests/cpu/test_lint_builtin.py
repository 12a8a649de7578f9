"""The built-in `llm` suite comes out of `karena lint` clean (slow: every task's reference runs
several times in float64)."""

import pytest

from kernelarena.verify.lint import lint_target

pytestmark = [pytest.mark.cpu, pytest.mark.slow, pytest.mark.timeout(3600)]


def test_llm_suite_is_lint_clean() -> None:
    reports = lint_target("llm")
    assert len(reports) >= 40
    dirty = {r.name: r.findings for r in reports if r.findings}
    assert not dirty, dirty
