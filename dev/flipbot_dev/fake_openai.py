"""A local stand-in for an OpenAI-compatible endpoint, for tests and the digital twin.

:class:`FakeOpenAiServer` listens on ``127.0.0.1`` (a free port) in a background thread
and answers ``POST /v1/chat/completions`` in OpenAI's wire format: a ``chat.completion``
object (``id``, ``object``, ``created``, ``model``, ``choices[{index, message{role,
content, refusal}, finish_reason}]``, ``usage{prompt_tokens, completion_tokens,
total_tokens}``) or an error body ``{"error": {message, type, param, code}}`` with the
status and headers the real API sends. The real ``openai`` client talks to it over
HTTP, exactly as it talks to api.openai.com.

What it answers is scripted per request with *responders*: functions of the request
returning a :class:`FakeReply`. The ones provided cover what an endpoint does in
practice:

* :func:`valid` — a sensible decision computed from the context in the prompt (buy at
  the best bid; sell at the larger of the floor, entry + fees + a small margin, and the
  best ask); :func:`answer` is the same with chosen fields overridden.
* :func:`absurd` — confidently wrong: a buy at ``factor`` times the ask, a sell at a
  ``factor``-th of the floor.
* :func:`sell_below_floor`, :func:`low_confidence` — plausible but against the rules.
* :func:`refusal`, :func:`truncated` (``finish_reason: length``), :func:`invalid_json`.
* :func:`rate_limited` (429 with ``retry-after-ms``), :func:`server_error` (500),
  :func:`slow` (answers after a delay, to trip the client's timeout), :func:`drip`
  (sends the answer a few bytes at a time over a long time: every read is quick, the
  whole answer is not).
* :func:`alternate` and :func:`sequence` combine responders.

The server is bounded and stops itself: after ``max_requests`` answers it replies 503,
and after ``lifetime`` seconds it shuts down even if nobody stops it. As a command
(``python -m flipbot_dev.fake_openai``) it prints its base URL for
``OPENAI_BASE_URL`` and serves until interrupted or its lifetime ends.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flipbot.ai.prompt import context_from_messages

__all__ = [
    "FakeOpenAiServer",
    "FakeReply",
    "FakeRequest",
    "Responder",
    "absurd",
    "alternate",
    "answer",
    "chat_completion",
    "drip",
    "error_body",
    "invalid_json",
    "low_confidence",
    "rate_limited",
    "refusal",
    "sell_below_floor",
    "sequence",
    "server_error",
    "slow",
    "truncated",
    "valid",
]

_COMPLETIONS_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class FakeRequest:
    """One request the server received: its body, the context in its prompt, its index."""

    index: int
    body: dict[str, Any]
    context: dict[str, Any] | None

    @property
    def model(self) -> str:
        return str(self.body.get("model", "gpt-4o-mini"))


@dataclass(frozen=True)
class FakeReply:
    """What to send back: status, body (a dict is sent as JSON, a str as is), headers.

    ``delay``: seconds before anything is sent. ``drip``: seconds over which the body
    is sent, in :data:`DRIP_PIECES` pieces after the headers.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0


DRIP_PIECES = 40


Responder = Callable[[FakeRequest], FakeReply]


# --------------------------------------------------------------------- wire format


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def chat_completion(
    request: FakeRequest,
    content: str | None,
    *,
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body as the API returns it, with plausible token counts."""
    prompt_tokens = _tokens(json.dumps(request.body.get("messages", [])))
    completion_tokens = _tokens(content or refusal or "")
    return {
        "id": f"chatcmpl-fake{request.index:08d}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fakeserver",
    }


def error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    """An API error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


# --------------------------------------------------------------------- answers


def _d(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except ArithmeticError:
        return None


def _sensible_fields(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """A reasonable answer for the leg in ``context`` (prices as floats)."""
    context = context or {}
    market = context.get("market") or {}
    position = context.get("position") or {}
    last = _d(market.get("last_price")) or Decimal(1)
    bid = _d(market.get("best_bid")) or last
    ask = _d(market.get("best_ask")) or last
    fees = _d((context.get("costs") or {}).get("fee_rate_round_trip")) or Decimal("0.002")
    min_profit = _d((context.get("constraints") or {}).get("min_profit")) or Decimal("0.01")
    margin = min_profit + Decimal("0.002")
    if context.get("leg") == "SELL":
        entry = _d(position.get("entry_price")) or last
        floor = _d(position.get("floor_price")) or entry * (1 + fees + min_profit)
        price = max(floor, entry * (1 + fees + margin), ask)
        low, high, action = floor, price * Decimal("1.02"), "SELL"
    else:
        price = bid
        low, high, action = bid * Decimal("0.995"), bid, "BUY"
    return {
        "action": action,
        "base_price": float(price),
        "price_range": {"low": float(low), "high": float(high)},
        "confidence": 0.9,
        "reasoning": f"{action.lower()} near the book (fake endpoint)",
        "buy_strategy": {"timeout_seconds": 600},
        "sell_strategy": {"suggested_margin": float(margin), "timeout_seconds": 3600},
        "market_analysis": {
            "trend": "SIDEWAYS",
            "support": float(low),
            "resistance": float(high),
            "summary": "the fake endpoint reads no market",
        },
    }


def _content_reply(request: FakeRequest, fields: Mapping[str, Any]) -> FakeReply:
    return FakeReply(body=chat_completion(request, json.dumps(dict(fields))))


def valid(**overrides: Any) -> Responder:
    """A sensible decision for the leg in the prompt; ``overrides`` replace answer fields."""

    def respond(request: FakeRequest) -> FakeReply:
        return _content_reply(request, {**_sensible_fields(request.context), **overrides})

    return respond


answer = valid
"""Alias of :func:`valid`, for answers whose fields a test sets explicitly."""


def low_confidence(confidence: float = 0.79) -> Responder:
    """A sensible price with a confidence just under the usual 0.8 threshold."""
    return valid(confidence=confidence)


def absurd(factor: float = 10.0) -> Responder:
    """Confidently absurd: buy at ``factor`` × the ask, sell at the floor / ``factor``."""

    def respond(request: FakeRequest) -> FakeReply:
        fields = _sensible_fields(request.context)
        price = Decimal(repr(fields["base_price"]))
        wrong = (
            price * Decimal(repr(factor))
            if fields["action"] == "BUY"
            else price / Decimal(repr(factor))
        )
        fields.update(
            base_price=float(wrong), confidence=0.99, reasoning="this is certainly the right price"
        )
        fields["price_range"] = {"low": float(wrong), "high": float(wrong)}
        return _content_reply(request, fields)

    return respond


def sell_below_floor(fraction: float = 0.98) -> Responder:
    """On the sell leg, a price of ``fraction`` × the profit floor (sensible otherwise)."""

    def respond(request: FakeRequest) -> FakeReply:
        fields = _sensible_fields(request.context)
        floor = _d(((request.context or {}).get("position") or {}).get("floor_price"))
        if fields["action"] == "SELL" and floor is not None:
            fields["base_price"] = float(floor * Decimal(repr(fraction)))
        return _content_reply(request, fields)

    return respond


def refusal(text: str = "I'm sorry, but I can't help with that request.") -> Responder:
    """A refusal: ``content`` null, ``message.refusal`` set."""
    return lambda request: FakeReply(body=chat_completion(request, None, refusal=text))


def truncated() -> Responder:
    """The answer cut off at the token limit (``finish_reason: length``)."""

    def respond(request: FakeRequest) -> FakeReply:
        full = json.dumps(_sensible_fields(request.context))
        return FakeReply(
            body=chat_completion(request, full[: len(full) // 2], finish_reason="length")
        )

    return respond


def invalid_json(text: str = "Sure! I'd buy around the bid, maybe {price: 8.1") -> Responder:
    """A 200 whose content is not JSON."""
    return lambda request: FakeReply(body=chat_completion(request, text))


def rate_limited(retry_after_ms: int = 20) -> Responder:
    """HTTP 429 with the API's error body and rate-limit headers."""

    def respond(request: FakeRequest) -> FakeReply:
        body = error_body(
            f"Rate limit reached for {request.model} on requests per min (RPM): Limit 3, "
            f"Used 3, Requested 1. Please try again in {retry_after_ms}ms.",
            "requests",
            "rate_limit_exceeded",
        )
        headers = {
            "retry-after-ms": str(retry_after_ms),
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after_ms}ms",
        }
        return FakeReply(status=429, body=body, headers=headers)

    return respond


def server_error(status: int = 500, *, retry_after_ms: int | None = None) -> Responder:
    """A 5XX with the API's error body (and ``retry-after-ms`` when given, for fast tests)."""
    body = error_body(
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
    )
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return lambda request: FakeReply(status=status, body=body, headers=headers)


def slow(seconds: float, then: Responder | None = None) -> Responder:
    """Answer like ``then`` (default :func:`valid`) after ``seconds``."""
    inner = then or valid()

    def respond(request: FakeRequest) -> FakeReply:
        reply = inner(request)
        return FakeReply(reply.status, reply.body, reply.headers, delay=seconds)

    return respond


def drip(seconds: float, then: Responder | None = None) -> Responder:
    """Answer like ``then`` (default :func:`valid`), the body trickling over ``seconds``."""
    inner = then or valid()

    def respond(request: FakeRequest) -> FakeReply:
        reply = inner(request)
        return FakeReply(reply.status, reply.body, reply.headers, reply.delay, drip=seconds)

    return respond


def _pieces(data: bytes) -> list[bytes]:
    size = max(1, -(-len(data) // DRIP_PIECES))
    return [data[start : start + size] for start in range(0, len(data), size)]


def alternate(*responders: Responder) -> Responder:
    """Take turns: request *n* is answered by ``responders[n % len(responders)]``."""
    if not responders:
        raise ValueError("alternate() needs at least one responder")
    return lambda request: responders[request.index % len(responders)](request)


def sequence(*responders: Responder, then: Responder | None = None) -> Responder:
    """Each responder once, in order; afterwards ``then`` (default :func:`valid`)."""
    after = then or valid()
    return lambda request: (
        responders[request.index](request) if request.index < len(responders) else after(request)
    )


# --------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16  # headers and body leave in one write

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are recorded on the server object instead."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        reply = self.server.owner.handle(self.path, raw, self.headers.get("Authorization"))
        if reply.delay > 0 and self.server.owner._stopping.wait(reply.delay):
            return  # shutting down: drop the slow answer
        self._send(reply)

    def do_GET(self) -> None:
        self._send(
            FakeReply(
                404,
                error_body(
                    f"Unknown request URL: GET {self.path}.", "invalid_request_error", "unknown_url"
                ),
            )
        )

    def _send(self, reply: FakeReply) -> None:
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        data = body.encode()
        try:
            self.send_response(reply.status)
            content_type = "text/plain" if isinstance(reply.body, str) else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_fake{self.server.owner.request_count:08d}")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if reply.drip > 0:
                self._drip(data, reply.drip)
            else:
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): nothing to answer

    def _drip(self, data: bytes, seconds: float) -> None:
        pieces = _pieces(data)
        pause = seconds / len(pieces)
        for piece in pieces:
            self.wfile.write(piece)
            self.wfile.flush()
            if self.server.owner._stopping.wait(pause):
                return  # shutting down: the rest is never sent


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeOpenAiServer


class FakeOpenAiServer:
    """A scripted OpenAI-compatible endpoint on loopback; see the module docstring.

    ``script`` answers every request (default :func:`valid`). ``api_key``, when given,
    must arrive as ``Authorization: Bearer <key>`` or the answer is a 401
    (``invalid_api_key``). Use as a context manager, or :meth:`start` and :meth:`stop`.
    ``requests`` lists what was received (bodies only; headers are not kept).
    """

    def __init__(
        self,
        script: Responder | None = None,
        *,
        api_key: str | None = None,
        max_requests: int = 10_000,
        lifetime: float = 600.0,
    ) -> None:
        self.script: Responder = script or valid()
        self.api_key = api_key
        self.max_requests = max_requests
        self.lifetime = lifetime
        self.requests: list[FakeRequest] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()
        self._stopping = threading.Event()
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop` (or the end of the lifetime)."""
        return self._http is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the value for ``OPENAI_BASE_URL``."""
        if self._http is None:
            raise RuntimeError("the fake server is not running")
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAiServer:
        """Bind a free loopback port and serve in a daemon thread."""
        if self._http is not None:
            return self
        self._stopping.clear()
        http = _HttpServer(("127.0.0.1", 0), _Handler)
        http.owner = self
        self._http = http
        self._thread = threading.Thread(
            target=http.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        self._watchdog = threading.Timer(self.lifetime, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent; also called by the lifetime)."""
        self._stopping.set()
        http, self._http = self._http, None
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.cancel()
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mock_transport(self) -> Any:
        """An ``httpx2.MockTransport`` answering like this server, without a socket.

        For unit tests: ``openai.OpenAI(http_client=httpx2.Client(transport=...))``. A
        reply with a ``delay`` raises ``httpx2.ReadTimeout`` instead of waiting; one with a
        ``drip`` streams its body piece by piece, pausing between pieces.
        """
        import httpx2

        def respond(request: httpx2.Request) -> httpx2.Response:
            reply = self.handle(
                request.url.path, request.read(), request.headers.get("Authorization")
            )
            if reply.delay > 0:
                raise httpx2.ReadTimeout("the fake endpoint is too slow", request=request)
            if reply.drip > 0:
                body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                pieces = _pieces(body.encode())

                def trickle() -> Iterator[bytes]:
                    for piece in pieces:
                        time.sleep(reply.drip / len(pieces))
                        yield piece

                return httpx2.Response(
                    reply.status, headers=dict(reply.headers), content=trickle(), request=request
                )
            if isinstance(reply.body, str):
                return httpx2.Response(
                    reply.status, headers=dict(reply.headers), text=reply.body, request=request
                )
            return httpx2.Response(
                reply.status, headers=dict(reply.headers), json=reply.body, request=request
            )

        return httpx2.MockTransport(respond)

    def handle(self, path: str, raw: bytes, authorization: str | None) -> FakeReply:
        """The reply to one request; works without :meth:`start` (e.g. behind an
        ``httpx2.MockTransport``, where a ``delay`` stands for a timeout)."""
        if path.split("?", 1)[0] not in _COMPLETIONS_PATHS:
            return FakeReply(
                404,
                error_body(
                    f"Unknown request URL: POST {path}.", "invalid_request_error", "unknown_url"
                ),
            )
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return FakeReply(
                401,
                error_body(
                    "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
                ),
            )
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return FakeReply(
                400,
                error_body(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
            )
        if not isinstance(body, dict):
            body = {}
        with self._lock:
            index = next(self._counter)
            if index >= self.max_requests:
                return FakeReply(
                    503,
                    error_body("fake server: request limit reached", "server_error"),
                    headers={"x-should-retry": "false"},
                )
            messages = body.get("messages")
            context = context_from_messages(messages) if isinstance(messages, list) else None
            request = FakeRequest(index=index, body=body, context=context)
            self.requests.append(request)
        try:
            return self.script(request)
        except Exception as exc:  # a broken script answers 500 rather than hanging
            return FakeReply(
                500, error_body(f"fake server script failed: {type(exc).__name__}", "server_error")
            )


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted (or ``--lifetime`` ends); print the base URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m flipbot_dev.fake_openai",
        description="a local OpenAI-compatible endpoint answering flipbot's prompts",
    )
    parser.add_argument(
        "--absurd-every",
        type=int,
        default=0,
        help="every N-th answer is absurd (0: never; 2: half of them)",
    )
    parser.add_argument(
        "--lifetime", type=float, default=3600.0, help="stop after this many seconds (default 3600)"
    )
    parser.add_argument("--max-requests", type=int, default=100_000)
    args = parser.parse_args(argv)
    script: Responder = valid()
    if args.absurd_every > 0:
        script = alternate(*([valid()] * (args.absurd_every - 1)), absurd())
    server = FakeOpenAiServer(script, max_requests=args.max_requests, lifetime=args.lifetime)
    with server:
        print(f"OPENAI_BASE_URL={server.base_url}", flush=True)
        try:
            while server.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
