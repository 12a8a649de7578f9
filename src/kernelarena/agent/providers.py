"""LLM providers: one small interface over OpenAI-compatible servers, Anthropic and recorded replays.

Every provider returns a :class:`Completion` with token counts, cost (when the model's price is
known) and latency, and raises only :class:`ProviderError` whose text is one line a user can act on
and never contains the API key. Retries (429, 5xx, timeouts, dropped connections) use exponential
backoff with jitter and honour a short ``Retry-After``; a semaphore bounds concurrent requests.

    >>> p = make_provider("openai", model="qwen2.5-coder-32b", api_base="http://localhost:8000/v1")
    >>> p.complete([Message("user", "Write an RMSNorm kernel in C.")]).text  # doctest: +SKIP
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import re
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlparse

from kernelarena import settings

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One chat message; ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    provider: str  # "openai" | "anthropic" | "replay"
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None when the price of the model is unknown
    latency_s: float
    cached: bool = False  # served from the store (resume) or a replay: nothing was paid


class ProviderError(Exception):
    """A failed LLM call. ``str(e)`` is one line saying what to fix; it never contains the key."""

    def __init__(self, message: str, *, retryable: bool = False, retry_after_s: float | None = None):
        super().__init__(" ".join(message.split()))
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class BudgetExceeded(ProviderError):
    """The run has spent its ``--budget-usd`` / ``--budget-tokens``; no further call is made."""


@dataclass
class Budget:
    """Spending limits shared by every provider of a run (thread-safe).

    Checked before a call and charged after it, so calls already in flight when the limit is
    reached still finish: with ``concurrency`` N the overshoot is at most N - 1 calls.
    """

    max_usd: float | None = None
    max_tokens: int | None = None
    spent_usd: float = 0.0
    spent_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _warned_unpriced: bool = field(default=False, repr=False, compare=False)

    def charge(self, c: Completion) -> None:
        """Add what ``c`` cost; replayed or resumed completions (``cached``) cost nothing."""
        if c.cached:
            return
        with self._lock:
            self.spent_tokens += c.prompt_tokens + c.completion_tokens
            if c.cost_usd is not None:
                self.spent_usd += c.cost_usd
            elif self.max_usd is not None and not self._warned_unpriced:
                self._warned_unpriced = True
                log.warning("price of model %s unknown: --budget-usd cannot count its calls", c.model)

    def check(self) -> None:
        """Raise :class:`BudgetExceeded` once a limit is reached."""
        with self._lock:
            if self.max_usd is not None and self.spent_usd >= self.max_usd:
                raise BudgetExceeded(
                    f"budget of ${self.max_usd:g} spent (${self.spent_usd:.4f}); no further LLM calls"
                )
            if self.max_tokens is not None and self.spent_tokens >= self.max_tokens:
                raise BudgetExceeded(
                    f"budget of {self.max_tokens} tokens spent ({self.spent_tokens}); no further LLM calls"
                )


class Provider(Protocol):
    name: str
    model: str

    def complete(
        self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 4096
    ) -> Completion: ...


# USD per 1M (input, output) tokens of well-known hosted models, list prices of 2025. The longest
# matching prefix wins ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"). Models not listed (local
# servers, new models) get cost None; override or extend with a ``[prices]`` table in llm.toml:
# ``"my-model" = [0.5, 1.5]``.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.5, 10.0),
    "gpt-4o-mini": (0.15, 0.6),
    "gpt-4.1": (2.0, 8.0),
    "gpt-4.1-mini": (0.4, 1.6),
    "gpt-4.1-nano": (0.1, 0.4),
    "gpt-5": (1.25, 10.0),
    "gpt-5-mini": (0.25, 2.0),
    "gpt-5-nano": (0.05, 0.4),
    "o3": (2.0, 8.0),
    "o3-mini": (1.1, 4.4),
    "o3-pro": (20.0, 80.0),
    "gpt-5-pro": (15.0, 120.0),
    "o4-mini": (1.1, 4.4),
    "claude-opus-4": (15.0, 75.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "deepseek-chat": (0.27, 1.1),
    "deepseek-reasoner": (0.55, 2.19),
}


def price_of(model: str, prices: dict[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens of ``model``, or None when unknown."""
    table = {**PRICES_PER_MTOK, **(prices or {})}
    if model in table:
        return table[model]
    # a provider prefix ("openai/gpt-4o") does not change the price
    bare = model.rsplit("/", 1)[-1]
    best = max((k for k in table if bare.startswith(k)), key=len, default=None)
    return table[best] if best else None


def cost_usd(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: dict[str, tuple[float, float]] | None = None,
) -> float | None:
    price = price_of(model, prices)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6


@dataclass(frozen=True)
class LLMConfig:
    """Settings read from llm.toml (all optional)."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    provider: str | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)


def load_config(path: str | Path | None = None) -> LLMConfig:
    """Read ``~/.config/kernelarena/llm.toml`` (or ``KARENA_LLM_CONFIG``); absent file: empty config."""
    p = Path(path) if path is not None else settings.llm_config_path()
    if not p.is_file():
        return LLMConfig()
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ProviderError(f"cannot read the LLM config {p}: {e}") from None
    prices: dict[str, tuple[float, float]] = {}
    for name, value in (data.get("prices") or {}).items():
        try:
            prices[str(name)] = (float(value[0]), float(value[1]))
        except (TypeError, ValueError, IndexError, KeyError):
            raise ProviderError(
                f'bad price for {name!r} in {p}: write [prices] then "{name}" = [input_usd_per_1M, output_usd_per_1M]'
            ) from None

    def text(key: str) -> str | None:
        value = data.get(key)
        return str(value) if value else None

    return LLMConfig(text("base_url"), text("api_key"), text("model"), text("provider"), prices)


def is_loopback(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified  # 0.0.0.0 reaches this machine too


_DEFAULT_BASE = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}


def resolve_endpoint(
    kind: str, api_base: str | None, api_key: str | None, config: LLMConfig
) -> tuple[str, str]:
    """(base_url, key): flag, then environment, then llm.toml; a loopback server needs no key."""
    base = api_base or settings.llm_base_url() or config.base_url or _DEFAULT_BASE[kind]
    # OPENAI_API_KEY / ANTHROPIC_API_KEY belong to that vendor: never sent to a third-party host
    own_host = urlparse(base).hostname == urlparse(_DEFAULT_BASE[kind]).hostname or is_loopback(base)
    vendor_key = settings.llm_vendor_api_key(kind) if own_host else None
    key = api_key or settings.llm_api_key() or vendor_key or config.api_key
    if not key:
        if not is_loopback(base):
            vendor = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}[kind]
            raise ProviderError(
                f"no API key for {base}: pass --api-key, set KARENA_LLM_API_KEY (or {vendor}),"
                f" or put api_key in {settings.llm_config_path()}"
            )
        key = "none"  # local servers (vLLM, llama.cpp, ollama) ignore it; the client wants one
    return base.rstrip("/"), key


def _backoff_s(attempt: int, base_s: float, retry_after_s: float | None, cap_s: float = 30.0) -> float:
    if retry_after_s is not None and 0 <= retry_after_s <= cap_s:
        return retry_after_s
    return min(cap_s, base_s * 2**attempt) * random.uniform(0.5, 1.0)


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)  # used only when a server reports no usage


class _RemoteProvider:
    """Shared machinery: retries with backoff, a concurrency limit, budget, key scrubbing."""

    name = "remote"

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str,
        timeout_s: float,
        max_retries: int,
        concurrency: int,
        budget: Budget | None,
        prices: dict[str, tuple[float, float]] | None,
        backoff_s: float = 0.5,
    ):
        self.model = model
        self.base_url = base_url
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.budget = budget
        self.prices = prices or {}
        self.backoff_s = backoff_s
        self._key = api_key
        self._slots = threading.Semaphore(max(1, concurrency))
        self._reached = False  # a server never reached is a setup error: fail fast, do not retry

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key and self._key != "none" else text

    def _error(self, message: str, **kw: Any) -> ProviderError:
        return ProviderError(self._scrub(message)[:400], **kw)

    def _sdk_error(
        self, sdk: Any, e: Exception, *, auth_hint: str, not_found: str, retry_statuses: tuple[int, ...]
    ) -> ProviderError:
        """The provider error for exception ``e`` of an SDK call (``sdk``: the ``openai`` or the
        ``anthropic`` module, whose error classes have the same names and meaning).

        ``auth_hint`` says where a key is set, ``not_found`` is appended to "unknown model M at URL",
        ``retry_statuses`` are the HTTP statuses below 500 worth retrying (429, 408, ...).
        """
        url = self.base_url
        if isinstance(e, sdk.APITimeoutError):  # before APIConnectionError: it is a subclass
            self._reached = True
            return self._error(
                f"the LLM server at {url} did not answer within {self.timeout_s:g}s", retryable=True
            )
        if isinstance(e, sdk.APIConnectionError):
            return self._error(
                f"cannot reach the LLM server at {url}: {e.__cause__ or e}; start it or set --api-base /"
                " KARENA_LLM_BASE_URL",
                retryable=self._reached,
            )
        if isinstance(e, sdk.AuthenticationError):
            return self._error(f"the LLM server at {url} rejected the API key (401): {auth_hint}")
        if isinstance(e, sdk.NotFoundError):
            return self._error(f"unknown model {self.model} at {url}{not_found}: {_short(e.body)}")
        if isinstance(e, sdk.APIStatusError):
            self._reached = True
            status = e.status_code
            return self._error(
                f"the LLM server at {url} answered HTTP {status}: {_short(e.body)}",
                retryable=status in retry_statuses or status >= 500,
                retry_after_s=_retry_after(e.response.headers),
            )
        return self._error(f"malformed reply from the LLM server at {url}: {e}", retryable=True)

    def _request(
        self, messages: Sequence[Message], temperature: float, max_tokens: int
    ) -> tuple[str, str, int | None, int | None]:
        raise NotImplementedError

    def _with_retries(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.max_retries + 1):
            try:
                with self._slots:
                    result = fn()
                self._reached = True
                return result
            except ProviderError as e:
                if not e.retryable or attempt == self.max_retries:
                    raise
                delay = _backoff_s(attempt, self.backoff_s, e.retry_after_s)
                log.info(
                    "LLM call failed (%s); retry %d/%d in %.2fs", e, attempt + 1, self.max_retries, delay
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def complete(
        self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 4096
    ) -> Completion:
        if self.budget is not None:
            self.budget.check()
        start = time.perf_counter()
        text, model, prompt_tokens, completion_tokens = self._with_retries(
            lambda: self._request(messages, temperature, max_tokens)
        )
        if prompt_tokens is None:
            prompt_tokens = _estimate_tokens("".join(m.content for m in messages))
        if completion_tokens is None:
            completion_tokens = _estimate_tokens(text)
        done = Completion(
            text=text,
            model=model or self.model,
            provider=self.name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            # priced by the name asked for: servers often answer with a dated snapshot name
            cost_usd=cost_usd(self.model, prompt_tokens, completion_tokens, self.prices),
            latency_s=time.perf_counter() - start,
        )
        if self.budget is not None:
            self.budget.charge(done)
        return done


def _short(body: Any) -> str:
    """The server's own error message, if any, kept short."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err)[:200]
        return str(err)[:200]
    return str(body)[:200] if body else ""


class _Unsupported(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class OpenAIProvider(_RemoteProvider):
    """Any server speaking OpenAI chat completions: vLLM, SGLang, llama.cpp, ollama, hosted APIs."""

    name = "openai"

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        import openai

        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self._key, timeout=self.timeout_s, max_retries=0
        )
        self._unsupported: set[str] = set()  # parameters this model refused (reasoning models)

    def _params(self, temperature: float, max_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {} if "temperature" in self._unsupported else {"temperature": temperature}
        params["max_completion_tokens" if "max_tokens" in self._unsupported else "max_tokens"] = max_tokens
        return params

    def _unsupported_param(self, body: Any) -> str | None:
        """The parameter a 400 says the model does not take: OpenAI's reasoning models refuse
        ``max_tokens`` (they want ``max_completion_tokens``) and a non-default ``temperature``."""
        text = _short(body).lower()
        if "unsupported" not in text and "not supported" not in text:
            return None
        return next(
            (n for n in ("max_tokens", "temperature") if n in text and n not in self._unsupported), None
        )

    def _request(
        self, messages: Sequence[Message], temperature: float, max_tokens: int
    ) -> tuple[str, str, int | None, int | None]:
        while True:  # ends: each pass either returns, raises, or adapts one more of two parameters
            try:
                return self._call(messages, temperature, max_tokens)
            except _Unsupported as u:
                log.info("model %s does not take %s; sending the request without it", self.model, u.name)
                self._unsupported.add(u.name)

    def _models(self) -> str:
        try:
            names = [m.id for m in self._client.models.list()]
        except Exception:  # the listing is only a hint in an error message
            return "not available"
        return ", ".join(names[:12]) + (" ..." if len(names) > 12 else "") if names else "nothing"

    def _call(
        self, messages: Sequence[Message], temperature: float, max_tokens: int
    ) -> tuple[str, str, int | None, int | None]:
        oa = self._openai
        url = self.base_url
        try:
            resp = self._client.chat.completions.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
                **self._params(temperature, max_tokens),
            )
        except oa.BadRequestError as e:
            self._reached = True
            name = self._unsupported_param(e.body)
            if name is not None:
                raise _Unsupported(name) from None
            raise self._error(f"the LLM server at {url} answered HTTP 400: {_short(e.body)}") from None
        except (oa.APIError, json.JSONDecodeError, ValueError) as e:
            raise self._sdk_error(
                oa,
                e,
                auth_hint=f"set --api-key or KARENA_LLM_API_KEY, or api_key in {settings.llm_config_path()}",
                not_found=f" (GET /v1/models lists: {self._models()})"
                if isinstance(e, oa.NotFoundError)
                else "",
                retry_statuses=(408, 429),
            ) from None
        if isinstance(resp, str) or not getattr(resp, "choices", None):
            raise self._error(
                f"malformed reply from the LLM server at {url}: no choices in {str(resp)[:120]!r}",
                retryable=True,
            )
        text = resp.choices[0].message.content or ""
        usage = getattr(resp, "usage", None)
        return (
            text,
            str(getattr(resp, "model", None) or self.model),
            getattr(usage, "prompt_tokens", None),
            getattr(usage, "completion_tokens", None),
        )


class AnthropicProvider(_RemoteProvider):
    """Anthropic Messages API (``POST /v1/messages``) through the ``anthropic`` package."""

    name = "anthropic"

    def __init__(self, **kw: Any):
        super().__init__(**kw)
        import anthropic

        self._anthropic = anthropic
        # the SDK appends /v1/messages itself; accept a base URL given with or without /v1
        root = re.sub(r"/v1/?$", "", self.base_url)
        self._client = anthropic.Anthropic(
            base_url=root, api_key=self._key, timeout=self.timeout_s, max_retries=0
        )

    def _request(
        self, messages: Sequence[Message], temperature: float, max_tokens: int
    ) -> tuple[str, str, int | None, int | None]:
        an = self._anthropic
        url = self.base_url
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
        # this SDK's Messages.create takes no temperature (current models fix it): it is not sent
        kwargs: dict[str, Any] = {"system": system} if system else {}
        try:
            resp = self._client.messages.create(
                model=self.model, messages=chat, max_tokens=max_tokens, **kwargs
            )
        except (an.APIError, json.JSONDecodeError, ValueError) as e:
            raise self._sdk_error(
                an,
                e,
                auth_hint="set --api-key, KARENA_LLM_API_KEY or ANTHROPIC_API_KEY",
                not_found="",
                retry_statuses=(408, 429, 529),
            ) from None
        blocks = getattr(resp, "content", None)
        if isinstance(resp, str) or blocks is None:
            raise self._error(f"malformed reply from the LLM server at {url}: no content", retryable=True)
        text = "".join(getattr(b, "text", "") or "" for b in blocks)
        usage = getattr(resp, "usage", None)
        return (
            text,
            str(getattr(resp, "model", None) or self.model),
            getattr(usage, "input_tokens", None),
            getattr(usage, "output_tokens", None),
        )


PROVIDERS = ("openai", "anthropic", "replay")


def make_provider(
    kind: str,
    *,
    model: str,
    api_base: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 120.0,
    max_retries: int = 4,
    concurrency: int = 4,
    replay: str | Path | None = None,
    budget: Budget | None = None,
) -> Provider:
    """A provider of ``kind`` ("openai", "anthropic", "replay").

    Endpoint and key: the arguments, then ``KARENA_LLM_BASE_URL`` / ``KARENA_LLM_API_KEY`` (then
    ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``), then llm.toml. An empty ``model`` takes llm.toml's.
    A provider given ``budget`` checks it before and charges it after every call.
    """
    if kind == "replay":
        if replay is None:
            raise ProviderError("the replay provider needs a recording: pass --replay FILE.jsonl")
        from kernelarena.agent.records import ReplayProvider

        return ReplayProvider(replay, model=model or None)
    if kind not in ("openai", "anthropic"):
        raise ProviderError(f"unknown provider {kind!r}: choose one of {', '.join(PROVIDERS)}")
    config = load_config()
    model = model or config.model or ""
    if not model:
        raise ProviderError(
            f"no model given: pass --model NAME (or set model in {settings.llm_config_path()})"
        )
    base_url, key = resolve_endpoint(kind, api_base, api_key, config)
    cls: type[_RemoteProvider] = OpenAIProvider if kind == "openai" else AnthropicProvider
    return cls(
        model=model,
        base_url=base_url,
        api_key=key,
        timeout_s=timeout_s,
        max_retries=max_retries,
        concurrency=concurrency,
        budget=budget,
        prices=config.prices,
    )
