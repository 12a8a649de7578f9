"""LLM providers against a real local HTTP server speaking the OpenAI / Anthropic protocols."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, Step

from kernelarena.agent import providers
from kernelarena.agent.providers import Budget, BudgetExceeded, Message, ProviderError, make_provider

# the first test of a process pays for importing openai/anthropic (several seconds on a loaded box)
pytestmark = [pytest.mark.unit, pytest.mark.timeout(40)]

USER = [Message("system", "you write kernels"), Message("user", "write rmsnorm in C please")]


def _openai(server: LLMServer, **kw: Any) -> Any:
    kw.setdefault("max_retries", 0)
    p = make_provider("openai", model=kw.pop("model", "scripted-model"), api_base=server.base_url, **kw)
    p.backoff_s = 0.01  # type: ignore[attr-defined]  # keep retry tests fast
    return p


def test_scripted_reply_with_token_counts(llm_server: LLMServer) -> None:
    llm_server.script(["here is the kernel"])
    c = _openai(llm_server).complete(USER)
    assert c.text == "here is the kernel"
    assert (c.prompt_tokens, c.completion_tokens) == (8, 4)  # the server counts words
    assert c.provider == "openai" and c.model == "scripted-model"
    assert c.cost_usd is None and not c.cached  # unknown price: None, stated
    body = llm_server.completions[0].body
    assert body is not None and body["messages"][0] == {"role": "system", "content": "you write kernels"}


def test_cost_from_price_table(llm_server: LLMServer) -> None:
    llm_server.script([Step(text="x", prompt_tokens=1_000_000, completion_tokens=500_000)])
    c = _openai(llm_server, model="gpt-4o-mini").complete(USER)
    assert c.cost_usd == pytest.approx(0.15 + 0.5 * 0.6)
    assert providers.price_of("gpt-4o-mini-2024-07-18") == (0.15, 0.6)  # longest prefix wins
    assert providers.price_of("openai/gpt-4o") == (2.5, 10.0)
    assert providers.price_of("qwen2.5-coder-32b") is None
    assert providers.price_of("qwen2.5-coder-32b", {"qwen2.5-coder-32b": (0.1, 0.2)}) == (0.1, 0.2)


def test_429_then_500_then_ok_retries(llm_server: LLMServer) -> None:
    llm_server.script([Step(status=429, retry_after=0), 500, "finally"])
    c = _openai(llm_server, max_retries=3).complete(USER)
    assert c.text == "finally"
    assert len(llm_server.completions) == 3


def test_retries_give_up_after_max_retries(llm_server: LLMServer) -> None:
    llm_server.script([500, 500, 500, "too late"])
    with pytest.raises(ProviderError, match="HTTP 500") as e:
        _openai(llm_server, max_retries=2).complete(USER)
    assert e.value.retryable
    assert len(llm_server.completions) == 3


def test_client_errors_are_not_retried(llm_server: LLMServer) -> None:
    llm_server.script([400, "never"])
    with pytest.raises(ProviderError, match="HTTP 400") as e:
        _openai(llm_server, max_retries=3).complete(USER)
    assert not e.value.retryable and len(llm_server.completions) == 1


def test_slow_reply_times_out_and_is_retried(llm_server: LLMServer) -> None:
    llm_server.script([Step(text="slow", delay_s=2.0), Step(text="slow", delay_s=2.0)])
    with pytest.raises(ProviderError, match=r"did not answer within 0\.3s") as e:
        _openai(llm_server, timeout_s=0.3, max_retries=1).complete(USER)
    assert e.value.retryable
    assert len(llm_server.completions) == 2  # first try and one retry, then it gave up


def test_timeout_then_success(llm_server: LLMServer) -> None:
    llm_server.script([Step(text="slow", delay_s=2.0), "quick"])
    assert _openai(llm_server, timeout_s=0.3, max_retries=1).complete(USER).text == "quick"


def test_malformed_json_is_a_provider_error(llm_server: LLMServer) -> None:
    llm_server.script([Step(malformed=True)])
    with pytest.raises(ProviderError, match="malformed reply"):
        _openai(llm_server).complete(USER)
    llm_server.script([Step(malformed=True), "fine"])  # transient: retried like a 5xx
    assert _openai(llm_server, max_retries=1).complete(USER).text == "fine"


def test_budget_tokens_stops_further_calls(llm_server: LLMServer) -> None:
    llm_server.script(["a b c d e f", "second"])
    budget = Budget(max_tokens=10)
    p = _openai(llm_server, budget=budget)
    p.complete(USER)  # 8 + 6 tokens: over the budget after this call
    assert budget.spent_tokens == 14
    with pytest.raises(BudgetExceeded, match="10 tokens"):
        p.complete(USER)
    assert len(llm_server.completions) == 1  # no request was sent for the refused call


def test_budget_usd_stops_further_calls(llm_server: LLMServer) -> None:
    llm_server.script([Step(text="x", prompt_tokens=400_000, completion_tokens=0), "never"])
    budget = Budget(max_usd=1.0)
    p = _openai(llm_server, model="gpt-4o", budget=budget)  # $2.5 per 1M input tokens
    p.complete(USER)
    assert budget.spent_usd == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded, match=r"\$1"):
        p.complete(USER)
    assert len(llm_server.completions) == 1


def test_concurrency_limit(llm_server: LLMServer) -> None:
    llm_server.script([Step(text=f"r{i}", delay_s=0.3) for i in range(6)])
    p = _openai(llm_server, concurrency=2)
    texts: list[str] = []
    threads = [threading.Thread(target=lambda: texts.append(p.complete(USER).text)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(texts) == [f"r{i}" for i in range(6)]
    assert llm_server.max_in_flight == 2


def test_unreachable_server_says_what_to_fix() -> None:
    p = make_provider("openai", model="m", api_base="http://127.0.0.1:9/v1", max_retries=3)
    with pytest.raises(ProviderError) as e:
        p.complete(USER)
    msg = str(e.value)
    assert msg.startswith("cannot reach the LLM server at http://127.0.0.1:9/v1")
    assert "--api-base" in msg and "KARENA_LLM_BASE_URL" in msg and "\n" not in msg
    assert not e.value.retryable  # never reached: a setup error, reported at once


def test_401_hints_at_the_key_and_never_shows_it(llm_server: LLMServer) -> None:
    secret = "sk-test-5ecret-do-not-print"
    llm_server.script([401])
    p = make_provider("openai", model="m", api_base=llm_server.base_url, api_key=secret, max_retries=2)
    with pytest.raises(ProviderError, match="rejected the API key") as e:
        p.complete(USER)
    assert secret not in str(e.value) and secret not in repr(e.value)
    assert "KARENA_LLM_API_KEY" in str(e.value)
    assert len(llm_server.completions) == 1
    # the key did reach the server, which echoed it (so the test is not vacuous)
    assert llm_server.completions[0].headers.get("authorization") == f"Bearer {secret}"


def test_key_is_scrubbed_from_any_error(llm_server: LLMServer) -> None:
    secret = "sk-test-echoed-key"
    p = make_provider("openai", model="m", api_base=llm_server.base_url, api_key=secret, max_retries=0)
    err = p._error(f"HTTP 400: bad key {secret}")  # type: ignore[attr-defined]
    assert secret not in str(err) and "***" in str(err)


def test_unknown_model_lists_served_models(llm_server: LLMServer) -> None:
    llm_server.models = ["qwen2.5-coder-32b", "llama-3.1-8b"]
    with pytest.raises(ProviderError) as e:
        _openai(llm_server, model="gpt-9").complete(USER)
    msg = str(e.value)
    assert f"unknown model gpt-9 at {llm_server.base_url}" in msg
    assert "GET /v1/models lists: qwen2.5-coder-32b, llama-3.1-8b" in msg
    assert not e.value.retryable


def test_missing_key_for_a_hosted_api() -> None:
    with pytest.raises(
        ProviderError, match=re.escape("no API key for https://api.example.com/v1: pass --api-key")
    ):
        make_provider("openai", model="m", api_base="https://api.example.com/v1")
    with pytest.raises(ProviderError, match="ANTHROPIC_API_KEY"):
        make_provider("anthropic", model="claude-sonnet-4")


def test_vendor_key_is_not_sent_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-only")
    with pytest.raises(ProviderError, match=re.escape("no API key for https://llm.example.com/v1")) as e:
        make_provider("openai", model="m", api_base="https://llm.example.com/v1")
    assert "sk-openai-only" not in str(e.value)
    p = make_provider("openai", model="m", api_base="https://api.openai.com/v1")
    assert p._key == "sk-openai-only"  # type: ignore[attr-defined]  # the vendor's own host: used


def test_bad_kind_and_missing_model() -> None:
    with pytest.raises(ProviderError, match="unknown provider 'gemini'"):
        make_provider("gemini", model="m")
    with pytest.raises(ProviderError, match="no model given: pass --model"):
        make_provider("openai", model="", api_base="http://127.0.0.1:1/v1")


def _auth(server: LLMServer) -> str | None:
    return server.completions[-1].headers.get("authorization")


def test_key_and_endpoint_resolution(
    llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "llm.toml"
    config.write_text(
        f'base_url = "{llm_server.base_url}"\napi_key = "from-file"\nmodel = "file-model"\n'
        '[prices]\n"file-model" = [1.0, 2.0]\n'
    )
    monkeypatch.setenv("KARENA_LLM_CONFIG", str(config))
    llm_server.script([Step(text="a", prompt_tokens=1_000_000, completion_tokens=0), "b", "c", "d"])
    c = make_provider("openai", model="").complete(USER)  # everything from the file
    assert _auth(llm_server) == "Bearer from-file" and c.model == "file-model" and c.cost_usd == 1.0
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai-env")
    make_provider("openai", model="m").complete(USER)
    assert _auth(llm_server) == "Bearer from-openai-env"
    monkeypatch.setenv("KARENA_LLM_API_KEY", "from-karena-env")
    make_provider("openai", model="m").complete(USER)
    assert _auth(llm_server) == "Bearer from-karena-env"
    make_provider("openai", model="m", api_key="from-flag").complete(USER)
    assert _auth(llm_server) == "Bearer from-flag"


def test_env_base_url_and_loopback_needs_no_key(
    llm_server: LLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KARENA_LLM_BASE_URL", llm_server.base_url)
    llm_server.script(["ok"])
    assert make_provider("openai", model="m").complete(USER).text == "ok"
    assert _auth(llm_server) == "Bearer none"


def test_bad_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "llm.toml"
    config.write_text("base_url = [unterminated\n")
    monkeypatch.setenv("KARENA_LLM_CONFIG", str(config))
    with pytest.raises(ProviderError, match="cannot read the LLM config"):
        make_provider("openai", model="m")


def test_anthropic_messages_route(llm_server: LLMServer) -> None:
    llm_server.script(["claude says hi", Step(status=529), "after overload"])
    p = make_provider(
        "anthropic", model="claude-sonnet-4", api_base=llm_server.base_url, api_key="ak", max_retries=1
    )
    p.backoff_s = 0.01  # type: ignore[attr-defined]
    c = p.complete(USER)
    assert (c.text, c.provider, c.prompt_tokens, c.completion_tokens) == ("claude says hi", "anthropic", 8, 3)
    assert c.cost_usd == pytest.approx((8 * 3.0 + 3 * 15.0) / 1e6)
    req = llm_server.completions[0]
    assert req.path == "/v1/messages"
    assert "ak" in (
        req.headers.get("x-api-key"),
        req.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert req.body is not None and req.body["system"] == "you write kernels"
    assert [m["role"] for m in req.body["messages"]] == ["user"]
    assert p.complete(USER).text == "after overload"  # 529 (overloaded) is retried


def test_backoff_honours_short_retry_after() -> None:
    assert providers._backoff_s(0, 0.5, 2.0) == 2.0
    for attempt in range(8):  # a long Retry-After is ignored; jittered, capped exponential backoff
        assert 0.5 * min(30.0, 0.5 * 2**attempt) <= providers._backoff_s(attempt, 0.5, 3600.0) <= 30.0


def test_importing_providers_stays_light() -> None:
    code = (
        "import sys, kernelarena.agent.providers; print('openai' in sys.modules, 'anthropic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_anthropic_errors(llm_server: LLMServer) -> None:
    secret = "sk-ant-test-never-shown"
    llm_server.script([Step(text="slow", delay_s=2.0), 401, Step(malformed=True)])
    p = make_provider(
        "anthropic",
        model="claude-x",
        api_base=llm_server.base_url,
        api_key=secret,
        max_retries=0,
        timeout_s=0.3,
    )
    with pytest.raises(ProviderError, match=r"did not answer within 0\.3s") as e:
        p.complete(USER)
    assert e.value.retryable
    with pytest.raises(ProviderError, match="rejected the API key") as e:
        p.complete(USER)
    assert secret not in str(e.value) and not e.value.retryable
    with pytest.raises(ProviderError, match="malformed reply"):
        p.complete(USER)
    llm_server.models = ["claude-a"]
    with pytest.raises(ProviderError, match="unknown model claude-x"):
        p.complete(USER)


def test_lost_connection_after_success_is_retryable(llm_server: LLMServer) -> None:
    llm_server.script(["first"])
    p = _openai(llm_server, max_retries=1)
    assert p.complete(USER).text == "first"
    llm_server.stop()  # the server goes away mid-run (restart, crash): worth retrying
    with pytest.raises(ProviderError, match="cannot reach the LLM server") as e:
        p.complete(USER)
    assert e.value.retryable


def test_loopback_detection() -> None:
    for url in (
        "http://localhost:8000/v1",
        "http://127.0.0.1:1/v1",
        "http://[::1]:8/v1",
        "http://0.0.0.0:8000",
    ):
        assert providers.is_loopback(url), url
    for url in ("https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://gpu-box:8000/v1", None):
        assert not providers.is_loopback(url), url


def test_reasoning_model_parameters_are_adapted(llm_server: LLMServer) -> None:
    # OpenAI's reasoning models refuse max_tokens and temperature: the request is sent again without
    llm_server.reject_params = {"max_tokens", "temperature"}
    llm_server.script(["thought hard", "again"])
    p = _openai(llm_server)
    assert p.complete(USER, max_tokens=777).text == "thought hard"
    bodies = [r.body or {} for r in llm_server.completions]
    assert len(bodies) == 3  # two refusals (one per parameter), then the answer
    assert bodies[-1].get("max_completion_tokens") == 777
    assert "max_tokens" not in bodies[-1] and "temperature" not in bodies[-1]
    assert p.complete(USER).text == "again" and len(llm_server.completions) == 4  # remembered
