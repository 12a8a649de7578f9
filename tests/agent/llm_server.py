"""A real local HTTP server speaking the OpenAI (and Anthropic) chat protocol, serving a script.

Tests start it on 127.0.0.1:0 and point a provider at ``server.base_url``. Each request takes the
next step of the script:

- a ``str``: a reply with that text;
- an ``int``: that HTTP status with a JSON error body (429, 500, 401, 404 ...);
- a :class:`Step` for anything else: a delay before answering (timeouts), malformed JSON, a
  ``Retry-After`` header, explicit token counts.

``script(steps, when="substring")`` adds a script used only when the last user message contains the
substring (routing a coder prompt and a judge prompt to different replies). Every request is
recorded in ``server.requests`` so a test can assert that no paid call was repeated. When a script
runs out the server answers HTTP 400 "script exhausted" (not retryable), or ``default`` if set.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Step:
    text: str | None = None  # reply text (when status is None and not malformed)
    status: int | None = None  # an HTTP error status instead of a reply
    delay_s: float = 0.0  # sleep before answering
    malformed: bool = False  # a 200 with a body that is not JSON
    retry_after: float | None = None  # Retry-After header (seconds) on an error
    prompt_tokens: int | None = None  # default: words in the request's messages
    completion_tokens: int | None = None  # default: words in the reply


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    headers: dict[str, str]  # names in lower case

    @property
    def last_user(self) -> str:
        msgs = (self.body or {}).get("messages") or []
        users = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        last = users[-1] if users else ""
        return last if isinstance(last, str) else json.dumps(last)


def _as_step(item: str | int | Step) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, bool):
        raise TypeError("a script step is a str, an int status or a Step")
    if isinstance(item, int):
        return Step(status=item)
    return Step(text=item)


def _words(text: str) -> int:
    return len(text.split())


@dataclass
class LLMServer:
    """Holds the server thread, the scripts and the log of requests."""

    models: list[str] | None = None  # when set, a request for any other model gets 404
    default: str | None = None  # reply when every script is exhausted
    requests: list[Request] = field(default_factory=list)
    reject_params: set[str] = field(default_factory=set)  # answer 400 "Unsupported parameter" for these
    max_in_flight: int = 0  # most scripted requests being served at once (concurrency tests)
    _in_flight: int = 0
    _queues: dict[str | None, deque[Step]] = field(default_factory=dict)
    _conns: set[socket.socket] = field(default_factory=set)  # open keep-alive connections
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def completions(self) -> list[Request]:
        """The requests that would have been paid for (chat completions and messages)."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def script(self, steps: list[str | int | Step], *, when: str | None = None) -> None:
        """Append ``steps`` to the default script, or to the one for prompts containing ``when``."""
        with self._lock:
            self._queues.setdefault(when, deque()).extend(_as_step(s) for s in steps)

    def reset(self) -> None:
        with self._lock:
            self._queues.clear()
            self.requests.clear()

    def _log(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)

    def _next(self, req: Request) -> Step | None:
        with self._lock:
            self.requests.append(req)
            text = req.last_user
            for key, queue in self._queues.items():
                if key is not None and key in text and queue:
                    return queue.popleft()
            fallback = self._queues.get(None)
            if fallback:
                return fallback.popleft()
            return Step(text=self.default) if self.default is not None else None

    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                with server._lock:
                    server._conns.add(self.connection)

            def finish(self) -> None:
                with server._lock:
                    server._conns.discard(self.connection)
                super().finish()

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(obj).encode(), headers)

            def do_GET(self) -> None:
                server._log(Request("GET", self.path, None, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.rstrip("/") == "/v1/models":
                    names = server.models or ["scripted-model"]
                    self._json(200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = None
                req = Request("POST", self.path, body, {k.lower(): v for k, v in self.headers.items()})
                anthropic = self.path.rstrip("/") == "/v1/messages"
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/v1/messages"):
                    server._log(req)
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                model = (body or {}).get("model", "")
                if server.models is not None and model not in server.models:
                    server._log(req)
                    self._error(404, f"The model `{model}` does not exist.", anthropic)
                    return
                refused = [p for p in sorted(server.reject_params) if p in (body or {})]
                if refused:  # like OpenAI's reasoning models
                    server._log(req)
                    hint = " Use 'max_completion_tokens' instead." if refused[0] == "max_tokens" else ""
                    message = f"Unsupported parameter: '{refused[0]}' is not supported with this model.{hint}"
                    self._error(400, message, anthropic)
                    return
                step = server._next(req)
                if step is None:
                    self._error(400, "llm_server: script exhausted", anthropic)
                    return
                with server._lock:
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                try:
                    self._serve(step, body, model, anthropic)
                finally:
                    with server._lock:
                        server._in_flight -= 1

            def _serve(self, step: Step, body: dict[str, Any] | None, model: str, anthropic: bool) -> None:
                if step.delay_s:
                    time.sleep(step.delay_s)
                if step.status is not None:
                    headers = (
                        {"Retry-After": f"{step.retry_after:g}"} if step.retry_after is not None else None
                    )
                    message = f"scripted status {step.status}"
                    if step.status == 401:  # like real APIs, echo the key: the client must not repeat it
                        key = self.headers.get("x-api-key") or self.headers.get("Authorization") or ""
                        message = f"Incorrect API key provided: {key.removeprefix('Bearer ')}"
                    self._error(step.status, message, anthropic, headers)
                    return
                if step.malformed:
                    self._send(200, b'{"id": "x", "choices": [{"message": ')
                    return
                text = step.text or ""
                msgs = (body or {}).get("messages") or []
                prompt = step.prompt_tokens
                if prompt is None:
                    system = (body or {}).get("system") or ""
                    prompt = _words(str(system)) + sum(_words(str(m.get("content", ""))) for m in msgs)
                completion = step.completion_tokens if step.completion_tokens is not None else _words(text)
                if anthropic:
                    self._json(200, {
                        "id": "msg_scripted", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                        "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": completion},
                    })  # fmt: skip
                else:
                    self._json(200, {
                        "id": "chatcmpl-scripted", "object": "chat.completion", "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion},
                    })  # fmt: skip

            def _error(
                self, status: int, message: str, anthropic: bool, headers: dict[str, str] | None = None
            ) -> None:
                kind = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                        429: "rate_limit_error"}.get(status, "api_error")  # fmt: skip
                if anthropic:
                    self._json(
                        status, {"type": "error", "error": {"type": kind, "message": message}}, headers
                    )
                else:
                    self._json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="llm-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:  # drop keep-alive connections too: a stopped server must look gone
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._conns.clear()
