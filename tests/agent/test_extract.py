"""Code extraction from LLM replies: fences, several blocks, no block, no code."""

from __future__ import annotations

import pytest

from kernelarena.agent.extract import blocks, extract_code

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

SOL = "import torch\n\n\nclass ModelNew(torch.nn.Module):\n    def forward(self, x):\n        return x\n"


def test_python_fence() -> None:
    assert extract_code(f"Here it is:\n```python\n{SOL}```\nDone.") == SOL


def test_picks_block_defining_model_new_among_several() -> None:
    reply = f"C part:\n```c\nvoid f(float* x) {{}}\n```\nhelper:\n```python\ndef g(): pass\n```\nfinal:\n```py\n{SOL}```\n"
    assert extract_code(reply) == SOL
    assert [t for t, _ in blocks(reply)] == ["c", "python", "py"]


def test_last_model_new_block_wins() -> None:
    draft = SOL.replace("return x", "return x * 1")
    assert extract_code(f"```python\n{draft}```\nbetter:\n```python\n{SOL}```") == SOL


def test_no_fence_bare_code() -> None:
    assert extract_code(f"Sure, the solution follows.\n{SOL}\nHope this helps!") == SOL


def test_unterminated_fence_cut_by_max_tokens() -> None:
    assert extract_code(f"```python\n{SOL}") == SOL


@pytest.mark.parametrize(
    "reply",
    [
        "",
        None,
        "I cannot help with that.",
        "```c\nvoid f(void) {}\n```",  # C alone is not a Python solution file
        "```python\ndef forward(x): return x\n```",  # no ModelNew
        "```python\nclass ModelNew(:\n```",  # syntax error
    ],
)
def test_no_usable_code_is_none(reply: str | None) -> None:
    assert extract_code(reply) is None
