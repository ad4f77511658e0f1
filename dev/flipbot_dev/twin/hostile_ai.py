"""The ``ai-hostile`` world of the digital twin: a model endpoint that answers like a
hostile or broken model, reached through the real OpenAI adapter.

Why: the consult trusts nothing the model says. Prices, confidence and actions go
through the hard guards (:mod:`flipbot.domain.guards`); answers that are not the schema,
errors and slow answers end in :class:`~flipbot.domain.errors.AiUnavailable` and the
offline fallback (:mod:`flipbot.ai.fallback`). A replay in this world proves it: every
consultation is answered by :class:`HostileEndpoint`, and the invariants of the replay
(no buy spending over ``quote_per_cycle``, no sell below the profit floor, no
function failing on an answer) must hold as on a calm day.

How: the endpoint is an ``httpx2.MockTransport`` handler speaking the OpenAI
chat-completions wire format (no socket). :func:`hostile_decider_factory` builds, per
function container, the production decision maker through
:func:`flipbot.adapters.openai_decider.build_ai_decider` (the real ``openai`` client,
the adapter's total deadline, the daily budget, the offline fallback), its HTTP client
routed to the endpoint. The deadline is small (:data:`DEFAULT_DEADLINE_SECONDS`): the
twin replays hours of market in seconds, and a consultation waits in real time. The
factory first sends one uncounted sane request, so that the client's lazy imports do
not make the replay's first consultation time out on a busy machine.

What it injects. For each HTTP request (a retry of the client is a request of its
own) the endpoint picks a *kind*, then one of its *variants*, from a hash of the seed,
the client's retry count and the request body: the same replay with the same seed
meets the same answers whatever the threads' timing. The kinds:

``huge``
    prices and other numbers like ``1e308``, ``9e99``, ``1e400`` (as a JSON number, which
    overflows a double, and as a string), quantity fields, timeouts of 400 digits.
``tiny``
    ``1e-30``, ``0.00000000001``, ``5e-324`` as price, price range, margin, confidence.
``negative_zero``
    ``0``, ``-5``, ``-0.0`` as price, range, timeouts, confidence.
``nan``
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` as strings and as bare JSON literals.
``slow_drip``
    a body sent one byte at a time, each byte quickly (so the client's read timeout never
    trips) but the whole of it taking :data:`DRIP_FACTOR` times the adapter's deadline:
    only the total deadline ends it, as ``timeout``.
``slip_past``
    answers built to slip past the guards: a sell a hair or a tick below the floor, a
    buy at or above the ask or below the band, confidence ``0.7999`` or ``0.80000001``
    with a wild price, a quantity above the cap, extra or missing fields, numbers as
    strings, the JSON wrapped in prose or a code fence, two JSON objects, an array,
    the other leg's action, a refusal or a truncation carrying an answer anyway, a
    300 kB reasoning.
``garbage``
    not JSON, an empty body, prose, empty or missing choices, a 200 carrying an error
    body, HTTP 500 and 429 with and without ``Retry-After`` (and with one of a day),
    a 503 saying not to retry, a ``usage`` that is not an object or overflows.
``sane``
    a valid, sensible answer built from the request's prices (buy at the best bid, sell
    at the floor or above), so that cycles complete.

:data:`INJECTIONS` names every ``kind.variant``. The decision makers built by the
factory report to a :class:`HostileStats`: requests per kind and variant, and per
decision who decided (the AI or the fallback) and the adapter's error code. Guard
refusals happen later, in the consult; the replay's consultation records hold them
(verdict ``REJECTED:<guard>``).

Development code: nothing shipped imports this module.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx2

from flipbot.adapters.openai_decider import OpenAiDecisionMaker, build_ai_decider, openai_client
from flipbot.ai.fallback import FallbackDecisionMaker
from flipbot.ai.prompt import context_from_messages
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.model import BookTop, MarketSnapshot, Side
from flipbot_dev.fake_openai import FakeReply, FakeRequest, chat_completion, error_body, valid

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_WEIGHTS",
    "DRIP_FACTOR",
    "INJECTIONS",
    "KINDS",
    "UNTYPED",
    "HostileEndpoint",
    "HostileStats",
    "ObservedDecider",
    "hostile_decider_factory",
]

KINDS = ("huge", "tiny", "negative_zero", "nan", "slow_drip", "slip_past", "garbage", "sane")

DEFAULT_WEIGHTS: Mapping[str, int] = {**dict.fromkeys(KINDS, 1), "sane": 3}
"""How often each kind is picked: every hostile kind once for three sane answers."""

DEFAULT_DEADLINE_SECONDS = 0.3
"""The adapter's total deadline in the twin. Under the client's first back-off without
``Retry-After`` (0.375 s at least), so such a retry always ends at the deadline, whatever
the jitter; well over the time a sane answer takes through the client once the process
is warm (a few ms; the factory warms it up)."""

DEFAULT_MAX_RETRIES = 2
"""The client's retries, as in production."""

DRIP_FACTOR = 2.0
"""A dripped body takes this many times the deadline to arrive."""

UNTYPED = "untyped_exception"
"""The ``ai_errors`` key of decisions the fallback took over from an exception of the
adapter that is not :class:`~flipbot.domain.errors.AiUnavailable` (none expected)."""

API_KEY = "sk-hostile-twin-0000000000000000"
BASE_URL = "http://hostile-model.invalid/v1"

_LONG_REASONING = 300_000


# --------------------------------------------------------------------- stats


class HostileStats:
    """Counts of what the endpoint injected and how the decision makers came out of it.

    Thread-safe: the adapter sends its requests from worker threads.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._lock = threading.Lock()
        self._requests = 0
        self._kinds: Counter[str] = Counter()
        self._retry_kinds: Counter[str] = Counter()
        self._variants: Counter[str] = Counter()
        self._decisions = 0
        self._by_ai = 0
        self._fell_back = 0
        self._raised: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()

    def injected(self, kind: str, variant: str, retry: int) -> None:
        """One answer of the endpoint; ``retry`` is the client's retry count (0: first)."""
        with self._lock:
            self._requests += 1
            if retry:
                self._retry_kinds[kind] += 1
            else:
                self._kinds[kind] += 1
                self._variants[f"{kind}.{variant}"] += 1

    def decided(self, last_call: Mapping[str, Any]) -> None:
        """One decision of a built decision maker, from its ``last_call``."""
        decided_by = str(last_call.get("decided_by", ""))
        error = str(last_call.get("error", ""))
        with self._lock:
            self._decisions += 1
            if decided_by.startswith("fallback:"):
                self._fell_back += 1
            else:
                self._by_ai += 1
            if error:
                self._errors[error] += 1
            elif "ai_error" in last_call:  # the adapter raised outside the taxonomy
                self._errors[UNTYPED] += 1

    def raised(self, exc: BaseException) -> None:
        """A decision that raised instead of deciding (the fallback wrapper never should)."""
        with self._lock:
            self._decisions += 1
            self._raised[type(exc).__name__] += 1

    def as_dict(self) -> dict[str, Any]:
        """The counts, JSON-ready:

        * ``seed``; ``requests``: every request answered, the client's retries included;
        * ``injections``: first attempts per kind (every kind, zeros included), one per
          consultation, and ``variants``: the same per ``kind.variant`` (those seen) -
          both the same for the same replay and seed;
        * ``retry_injections``: the client's retries per kind (every kind). A retry may
          come after the adapter gave up (it goes on in the background), so these, and
          ``requests``, depend on timing;
        * ``decisions`` made by the built decision makers, ``decided_by_ai`` and
          ``fell_back`` among them, ``ai_errors`` per adapter error code (``timeout``,
          ``invalid_answer``, ... and :data:`UNTYPED`), ``raised`` per exception type of
          decisions that raised (none expected).
        """
        with self._lock:
            return {
                "seed": self.seed,
                "requests": self._requests,
                "injections": {kind: self._kinds[kind] for kind in KINDS},
                "variants": dict(sorted(self._variants.items())),
                "retry_injections": {kind: self._retry_kinds[kind] for kind in KINDS},
                "decisions": self._decisions,
                "decided_by_ai": self._by_ai,
                "fell_back": self._fell_back,
                "ai_errors": dict(sorted(self._errors.items())),
                "raised": dict(sorted(self._raised.items())),
            }


# --------------------------------------------------------------------- the endpoint


@dataclass(frozen=True)
class _Question:
    """One request as a model reads it: the leg and the prices of its context."""

    request: FakeRequest
    leg: str
    bid: Decimal
    ask: Decimal
    band: Decimal
    floor: Decimal
    held: Decimal
    quote_per_cycle: Decimal
    deadline: float

    @property
    def sell(self) -> bool:
        return self.leg == "SELL"

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def sane(self) -> dict[str, Any]:
        """The fields of a sensible answer (the fake endpoint's :func:`valid`)."""
        reply = valid()(self.request)
        content = reply.body["choices"][0]["message"]["content"]
        fields: dict[str, Any] = json.loads(content)
        return fields


_Variant = Callable[[_Question], FakeReply]


def _dec(value: Any, default: Decimal) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default
    return number if number.is_finite() and number > 0 else default


def _question(request: FakeRequest, deadline: float) -> _Question:
    context = request.context or {}
    market = context.get("market") or {}
    position = context.get("position") or {}
    constraints = context.get("constraints") or {}
    last = _dec(market.get("last_price"), Decimal(1))
    bid = _dec(market.get("best_bid"), last)
    ask = _dec(market.get("best_ask"), bid)
    return _Question(
        request=request,
        leg=str(context.get("leg", "BUY")),
        bid=bid,
        ask=ask,
        band=_dec(constraints.get("price_band"), Decimal("0.02")),
        floor=_dec(position.get("floor_price"), ask),
        held=_dec(position.get("quantity"), Decimal(1)),
        quote_per_cycle=_dec(constraints.get("quote_per_cycle"), Decimal(10)),
        deadline=deadline,
    )


class HostileEndpoint:
    """The hostile model: an ``httpx2.MockTransport`` handler (see the module docstring).

    ``kinds`` restricts what is picked: each entry a kind (its variants by turn of the
    hash) or one ``kind.variant`` of :data:`INJECTIONS`; by default every kind, weighted
    by :data:`DEFAULT_WEIGHTS`. ``deadline`` is the adapter's, for the drips.
    """

    def __init__(
        self,
        seed: int,
        *,
        stats: HostileStats | None = None,
        kinds: Sequence[str] = (),
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.seed = seed
        self.stats = stats or HostileStats(seed)
        self.deadline = deadline
        self._choices, self._weights = _choices(kinds)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.respond)

    def http_client(self) -> httpx2.Client:
        """An ``httpx2.Client`` whose every request this endpoint answers."""
        return httpx2.Client(transport=self.transport())

    def respond(self, request: httpx2.Request) -> httpx2.Response:
        raw = request.read()
        retry = _retry_count(request.headers.get("x-stainless-retry-count"))
        digest = hashlib.sha256(f"{self.seed}|{retry}|".encode() + raw).digest()
        rng = random.Random(digest)
        kind, variant = rng.choices(self._choices, weights=self._weights)[0]
        if not variant:
            variant = rng.choice(list(_VARIANTS[kind]))
        self.stats.injected(kind, variant, retry)
        fake = _fake_request(raw, int.from_bytes(digest[:4], "big"))
        reply = _VARIANTS[kind][variant](_question(fake, self.deadline))
        return _response(reply, request)


def _choices(kinds: Sequence[str]) -> tuple[list[tuple[str, str]], list[int]]:
    if not kinds:
        return [(kind, "") for kind in KINDS], [DEFAULT_WEIGHTS[kind] for kind in KINDS]
    choices: list[tuple[str, str]] = []
    for entry in kinds:
        kind, _, variant = entry.partition(".")
        if kind not in _VARIANTS or (variant and variant not in _VARIANTS[kind]):
            raise ValueError(f"unknown injection {entry!r}: choose from {', '.join(INJECTIONS)}")
        choices.append((kind, variant))
    return choices, [1] * len(choices)


def _retry_count(header: str | None) -> int:
    try:
        return max(0, int(header or 0))
    except ValueError:
        return 0


def _fake_request(raw: bytes, index: int) -> FakeRequest:
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    messages = body.get("messages")
    context = context_from_messages(messages) if isinstance(messages, list) else None
    return FakeRequest(index=index, body=body, context=context)


def _response(reply: FakeReply, request: httpx2.Request) -> httpx2.Response:
    body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
    data = body.encode()
    headers = {"content-type": "application/json", **dict(reply.headers)}
    if reply.drip > 0 and data:
        return httpx2.Response(
            reply.status, headers=headers, content=_trickle(data, reply.drip), request=request
        )
    return httpx2.Response(reply.status, headers=headers, content=data, request=request)


def _trickle(data: bytes, seconds: float) -> Iterator[bytes]:
    """``data`` one byte at a time over ``seconds`` at least."""
    pause = seconds / len(data)
    for start in range(len(data)):
        time.sleep(pause)
        yield data[start : start + 1]


# --------------------------------------------------------------------- answers


def _answer(q: _Question, fields: Mapping[str, Any], **chat: Any) -> FakeReply:
    """A 200 chat completion whose content is ``fields`` as JSON (``NaN`` literals kept)."""
    return _content(q, json.dumps(dict(fields)), **chat)


def _content(q: _Question, text: str | None, **chat: Any) -> FakeReply:
    return FakeReply(body=chat_completion(q.request, text, **chat))


def _with(q: _Question, **overrides: Any) -> FakeReply:
    return _answer(q, {**q.sane(), **overrides})


def _raw_number(q: _Question, literal: str, *paths: str, **overrides: Any) -> FakeReply:
    """A sane answer with the number at each dotted ``path`` written as ``literal``."""
    fields = {**q.sane(), **overrides}
    marker = "__hostile_number__"
    for path in paths:
        *parents, name = path.split(".")
        target = fields
        for parent in parents:
            target[parent] = dict(target[parent])
            target = target[parent]
        target[name] = marker
    return _content(q, json.dumps(fields).replace(f'"{marker}"', literal))


def _price(q: _Question, value: Any, confidence: float = 0.99) -> FakeReply:
    """A confident answer at ``value`` (price and range alike)."""
    return _with(
        q, base_price=value, price_range={"low": value, "high": value}, confidence=confidence
    )


def _strategies(q: _Question, timeout: Any, margin: Any = None) -> dict[str, Any]:
    sell = q.sane()["sell_strategy"]
    return {
        "buy_strategy": {"timeout_seconds": timeout},
        "sell_strategy": {
            "suggested_margin": sell["suggested_margin"] if margin is None else margin,
            "timeout_seconds": timeout,
        },
    }


def _wild(q: _Question) -> float:
    """A price far on the wrong side: three times the ask to buy, a third of the floor
    to sell."""
    return float(q.floor / 3) if q.sell else float(q.ask * 3)


_HUGE: dict[str, _Variant] = {
    "price_1e308": lambda q: _price(q, 1e308),
    "price_9e99": lambda q: _price(q, 9e99),
    "price_1e400_number": lambda q: _raw_number(
        q, "1e400", "base_price", "price_range.low", "price_range.high", confidence=0.99
    ),
    "price_1e400_string": lambda q: _price(q, "1e400"),
    "every_number_huge": lambda q: _with(
        q,
        base_price=1e308,
        price_range={"low": 9e99, "high": 1e308},
        confidence=0.99,
        **_strategies(q, 10**30, 9e99),
    ),
    "quantity_1e308": lambda q: _with(q, quantity=1e308, quote_amount=9e99),
    "timeouts_of_400_digits": lambda q: _raw_number(
        q, "9" * 400, "buy_strategy.timeout_seconds", "sell_strategy.timeout_seconds"
    ),
}

_TINY: dict[str, _Variant] = {
    "price_1e-30": lambda q: _price(q, 1e-30),
    "price_1e-11": lambda q: _price(q, 0.00000000001),
    "price_5e-324": lambda q: _price(q, 5e-324),
    "range_1e-30": lambda q: _with(q, price_range={"low": 1e-30, "high": 1e-30}),
    "margin_1e-30": lambda q: _with(q, **_strategies(q, 600, 1e-30)),
    "confidence_1e-30": lambda q: _with(q, confidence=1e-30),
}

_NEGATIVE_ZERO: dict[str, _Variant] = {
    "price_zero": lambda q: _price(q, 0),
    "price_minus_5": lambda q: _price(q, -5),
    "price_minus_zero": lambda q: _price(q, -0.0),
    "range_negative": lambda q: _with(q, price_range={"low": -5, "high": 0}),
    "timeouts_negative": lambda q: _with(q, **_strategies(q, -5)),
    "margin_negative": lambda q: _with(q, **_strategies(q, 600, -0.5)),
    "confidence_minus_half": lambda q: _with(q, confidence=-0.5),
    "confidence_minus_zero": lambda q: _with(q, confidence=-0.0),
}

_NAN: dict[str, _Variant] = {
    "price_nan_string": lambda q: _price(q, "NaN"),
    "price_infinity_string": lambda q: _price(q, "Infinity"),
    "price_minus_infinity_string": lambda q: _price(q, "-Infinity"),
    "price_nan_literal": lambda q: _price(q, float("nan")),
    "price_infinity_literal": lambda q: _price(q, float("inf")),
    "range_nan_literal": lambda q: _with(q, price_range={"low": float("nan"), "high": 1.0}),
    "margin_infinity_string": lambda q: _with(q, **_strategies(q, 600, "Infinity")),
    "confidence_nan_string": lambda q: _with(q, confidence="NaN"),
    "confidence_nan_literal": lambda q: _with(q, confidence=float("nan")),
}


def _drip(reply: FakeReply, q: _Question) -> FakeReply:
    return FakeReply(reply.status, reply.body, reply.headers, drip=q.deadline * DRIP_FACTOR)


_SLOW_DRIP: dict[str, _Variant] = {
    "sane_byte_by_byte": lambda q: _drip(_with(q), q),
    "huge_byte_by_byte": lambda q: _drip(_price(q, 1e308), q),
    "error_byte_by_byte": lambda q: _drip(
        FakeReply(500, error_body("The server had an error.", "server_error")), q
    ),
}


def _a_hair_past(q: _Question) -> FakeReply:
    """A buy a hair above the ask (it floors to the ask); a sell a hair below the floor
    (it rounds up to the floor itself)."""
    if q.sell:
        return _price(q, float(q.floor - Decimal("0.00000001")))
    return _price(q, float(q.ask + Decimal("0.00000001")))


def _a_tick_past(q: _Question) -> FakeReply:
    """A buy at the ask (crossing the spread); a sell 0.1 % under the floor."""
    if q.sell:
        return _price(q, float(q.floor * Decimal("0.999")))
    return _price(q, float(q.ask))


def _outside_the_band(q: _Question) -> FakeReply:
    """A buy just under the band below the bid; a sell half again above the mid."""
    if q.sell:
        return _price(q, float(max(q.mid * Decimal("1.5"), q.floor * Decimal("1.5"))))
    return _price(q, float(q.bid * (1 - q.band) * Decimal("0.999")))


def _other_leg(q: _Question) -> FakeReply:
    """The other leg's action, confident, at a price that breaks this leg's rule."""
    return _with(q, action="BUY" if q.sell else "SELL", base_price=_wild(q), confidence=0.99)


def _quantity_above_cap(q: _Question) -> FakeReply:
    return _with(
        q,
        quantity=float(q.held * 1000),
        quote_per_cycle=float(q.quote_per_cycle * 1000),
        quote_amount=float(q.quote_per_cycle * 1000),
    )


def _missing_fields(q: _Question) -> FakeReply:
    fields = q.sane()
    del fields["price_range"], fields["confidence"]
    return _answer(q, fields)


def _numbers_as_strings(q: _Question) -> FakeReply:
    fields = q.sane()
    return _with(
        q,
        base_price=str(fields["base_price"]),
        price_range={k: str(v) for k, v in fields["price_range"].items()},
        confidence="0.95",
    )


def _prose_wrapped(q: _Question) -> FakeReply:
    return _content(
        q,
        "Sure! Based on the order book, here is my decision:\n"
        + json.dumps(q.sane())
        + "\nLet me know if you need anything else.",
    )


def _code_fenced(q: _Question) -> FakeReply:
    return _content(q, "```json\n" + json.dumps(q.sane(), indent=2) + "\n```")


def _two_objects(q: _Question) -> FakeReply:
    wild = {**q.sane(), "base_price": _wild(q), "confidence": 0.99}
    return _content(q, json.dumps(wild) + "\n" + json.dumps(q.sane()))


def _array(q: _Question) -> FakeReply:
    wild = {**q.sane(), "base_price": _wild(q), "confidence": 0.99}
    return _content(q, json.dumps([wild, q.sane()]))


def _with_a_refusal(q: _Question) -> FakeReply:
    wild = {**q.sane(), "base_price": _wild(q), "confidence": 0.99}
    return _content(q, json.dumps(wild), refusal="I cannot give financial advice.")


_SLIP_PAST: dict[str, _Variant] = {
    "a_hair_past_the_limit": _a_hair_past,
    "a_tick_past_the_limit": _a_tick_past,
    "outside_the_band": _outside_the_band,
    "confidence_0.7999": lambda q: _with(q, confidence=0.7999),
    "confidence_0.80000001_wild_price": lambda q: _price(q, _wild(q), 0.80000001),
    "confidence_exactly_0.8": lambda q: _with(q, confidence=0.8),
    "quantity_above_cap": _quantity_above_cap,
    "extra_fields": lambda q: _with(q, leverage=125, order_type="MARKET"),
    "missing_fields": _missing_fields,
    "numbers_as_strings": _numbers_as_strings,
    "words_as_numbers": lambda q: _with(q, base_price="market", confidence="very high"),
    "prose_wrapped": _prose_wrapped,
    "code_fenced": _code_fenced,
    "two_json_objects": _two_objects,
    "array_of_answers": _array,
    "other_leg_action": _other_leg,
    "lowercase_action": lambda q: _with(q, action=q.leg.lower()),
    "wait_with_a_wild_price": lambda q: _with(
        q, action="WAIT", base_price=_wild(q), confidence=0.99
    ),
    "many_decimals": lambda q: _with(q, base_price=q.sane()["base_price"] + 0.00000000049),
    "refusal_with_an_answer": _with_a_refusal,
    "truncated_with_an_answer": lambda q: _content(q, json.dumps(q.sane()), finish_reason="length"),
    "filtered_with_an_answer": lambda q: _content(
        q, json.dumps(q.sane()), finish_reason="content_filter"
    ),
    "long_reasoning": lambda q: _with(q, reasoning="buy " * (_LONG_REASONING // 4)),
}


def _body(q: _Question, **changes: Any) -> FakeReply:
    """A sane chat completion with top-level fields changed (``None`` removes one)."""
    body = chat_completion(q.request, json.dumps(q.sane()))
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return FakeReply(body=body)


def _usage_overflow(q: _Question) -> FakeReply:
    body = chat_completion(q.request, json.dumps(q.sane()))
    body["usage"] = {"prompt_tokens": "__in__", "completion_tokens": "__out__"}
    text = json.dumps(body).replace('"__in__"', "1e400").replace('"__out__"', "-1e400")
    return FakeReply(body=text)


def _status(status: int, headers: Mapping[str, str] | None = None) -> _Variant:
    kind = "requests" if status == 429 else "server_error"
    body = error_body(f"HTTP {status} from the hostile model", kind)
    return lambda q: FakeReply(status, body, dict(headers or {}))


_GARBAGE: dict[str, _Variant] = {
    "not_json": lambda q: FakeReply(
        body="<html><body>502 Bad Gateway</body></html>", headers={"content-type": "text/html"}
    ),
    "empty_body": lambda q: FakeReply(body=""),
    "prose": lambda q: _content(q, "I would buy a little below the bid, maybe."),
    "empty_content": lambda q: _content(q, ""),
    "null_content": lambda q: _content(q, None),
    "empty_choices": lambda q: _body(q, choices=[]),
    "no_choices": lambda q: _body(q, choices=None),
    "choices_not_a_list": lambda q: _body(q, choices="none"),
    "error_body_200": lambda q: FakeReply(body=error_body("overloaded", "server_error")),
    "http_500_retry_after": _status(500, {"retry-after": "0.01"}),
    "http_500": _status(500),
    "http_429_retry_after": _status(429, {"retry-after": "0.01"}),
    "http_429": _status(429),
    "http_429_retry_after_a_day": _status(429, {"retry-after": "86400"}),
    "http_503_do_not_retry": _status(503, {"x-should-retry": "false"}),
    "usage_not_an_object": lambda q: _body(q, usage="lots"),
    "usage_overflow": _usage_overflow,
}

_VARIANTS: dict[str, dict[str, _Variant]] = {
    "huge": _HUGE,
    "tiny": _TINY,
    "negative_zero": _NEGATIVE_ZERO,
    "nan": _NAN,
    "slow_drip": _SLOW_DRIP,
    "slip_past": _SLIP_PAST,
    "garbage": _GARBAGE,
    "sane": {"sane": _with},
}

INJECTIONS = tuple(f"{kind}.{variant}" for kind in KINDS for variant in _VARIANTS[kind])
"""Every ``kind.variant`` the endpoint can answer with."""


# --------------------------------------------------------------------- decision makers


class ObservedDecider:
    """The production decision maker as built, each decision counted in the stats.

    It is what the consult calls: ``name``, ``decide`` and ``last_call`` are the built
    decision maker's. ``decider`` is that :class:`FallbackDecisionMaker`; ``primary``
    the :class:`OpenAiDecisionMaker` behind it.
    """

    def __init__(self, decider: FallbackDecisionMaker, stats: HostileStats) -> None:
        self.decider = decider
        self.name = decider.name
        self._stats = stats

    @property
    def primary(self) -> OpenAiDecisionMaker:
        primary = self.decider.primary
        assert isinstance(primary, OpenAiDecisionMaker)
        return primary

    @property
    def last_call(self) -> dict[str, Any]:
        return self.decider.last_call

    def decide(self, request: DecisionRequest) -> Decision:
        try:
            decision = self.decider.decide(request)
        except BaseException as exc:
            self._stats.raised(exc)
            raise
        self._stats.decided(self.decider.last_call)
        return decision


_warmed = threading.Event()


def _warm_up() -> None:
    """One sane consultation, uncounted, with a generous deadline, once per process.

    The first request of a process pays the ``openai`` client's lazy imports and its
    schema building: some 50 ms on an idle machine, half a second in a busy replay,
    past :data:`DEFAULT_DEADLINE_SECONDS`. Without this the replay's first consultation
    would time out or not depending on the machine's load.
    """
    if _warmed.is_set():
        return
    endpoint = HostileEndpoint(0, kinds=["sane"])
    client = openai_client(API_KEY, base_url=BASE_URL, http_client=endpoint.http_client())
    book = BookTop(bid=Decimal(1), bid_qty=Decimal(1), ask=Decimal("1.01"), ask_qty=Decimal(1))
    request = DecisionRequest(
        leg=Side.BUY,
        symbol="BTCUSDC",
        snapshot=MarketSnapshot(symbol="BTCUSDC", time_ms=0, last_price=Decimal(1), book=book),
        quote_per_cycle=Decimal(10),
        min_confidence=0.8,
        min_profit=Decimal("0.01"),
        target_profit=Decimal("0.05"),
        fee_rate_round_trip=Decimal("0.002"),
    )
    OpenAiDecisionMaker(client, max_retries=0, deadline=30).decide(request)
    _warmed.set()


def hostile_decider_factory(
    seed: int,
    *,
    kinds: Sequence[str] = (),
    deadline: float = DEFAULT_DEADLINE_SECONDS,
    max_retries: int = DEFAULT_MAX_RETRIES,
) -> tuple[Callable[[Any], ObservedDecider], HostileStats]:
    """``(build, stats)``: ``build(container)`` is the production decision maker of the
    consult (as :mod:`flipbot.composition` builds it from the container's settings and
    clock: model, daily budget, fallback mode, price table, price band, offline
    fallback), its client talking to one :class:`HostileEndpoint` of ``seed``.

    ``kinds`` restricts the injections (see :class:`HostileEndpoint`); ``deadline`` is
    the adapter's total deadline (and its per-attempt timeout), ``max_retries`` its
    client's retries.
    """
    _warm_up()
    stats = HostileStats(seed)
    endpoint = HostileEndpoint(seed, stats=stats, kinds=kinds, deadline=deadline)

    def build(container: Any) -> ObservedDecider:
        from flipbot.domain.strategy import OfflineStrategy

        s = container.settings
        decider = build_ai_decider(
            API_KEY,
            fallback=OfflineStrategy(),
            model=s.ai_model,
            base_url=BASE_URL,
            budget_usd=s.ai_daily_budget_usd,
            now_ms=container.clock.now_ms,
            mode=s.ai_fallback,
            price_table=s.ai_price_table,
            price_band=s.price_band,
            timeout=deadline,
            max_retries=max_retries,
            deadline=deadline,
            http_client=endpoint.http_client(),
        )
        return ObservedDecider(decider, stats)

    return build, stats
