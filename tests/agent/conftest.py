"""Fixtures of the agent tests: a scripted local LLM server and an environment free of real keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import LLMServer


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    """A real OpenAI/Anthropic-protocol HTTP server on 127.0.0.1:<free port>; see llm_server.py."""
    server = LLMServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A developer's own endpoint, key or config file must never leak into (or pay for) a test.
    for name in ("KARENA_LLM_BASE_URL", "KARENA_LLM_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
                 "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KARENA_LLM_CONFIG", str(tmp_path / "no-llm.toml"))
