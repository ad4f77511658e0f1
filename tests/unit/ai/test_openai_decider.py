"""The OpenAI decision maker with the real ``openai`` client on a mock transport.

Each acceptance case runs the way the consult runs it: ask, then apply the hard guards
(``check_buy`` / ``check_sell``); a rejected sell is placed at the safe price. Every
case ends in its documented outcome, none raises anything but ``AiUnavailable``, and
every order that would be placed respects the guards.
"""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import Any

import httpx2
import pytest

import flipbot_dev.fake_openai as fs
from flipbot.adapters.openai_decider import OpenAiDecisionMaker, openai_client
from flipbot.ai.cost import DailyBudget
from flipbot.ai.fallback import FallbackDecisionMaker
from flipbot.ai.prompt import PROMPT_VERSION
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable, GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import check_buy, check_sell
from flipbot.domain.model import OrderRequest, Side
from flipbot.domain.strategy import OfflineStrategy
from flipbot.ports import DecisionMaker

AUDIT_KEYS = {
    "decided_by",
    "prompt_version",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "latency_ms",
    "raw_answer",
}


def consult_like(
    decider: DecisionMaker, request: DecisionRequest, market: Any, rules: SymbolRules
) -> tuple[str, OrderRequest | None]:
    """``(verdict, order)`` as :mod:`flipbot.app.consult` decides them."""
    try:
        decision = decider.decide(request)
    except AiUnavailable:
        return "WAIT:ai_unavailable", None
    if request.leg is Side.BUY:
        if decision.action != "BUY":
            return "WAIT", None
        try:
            order = check_buy(
                decision,
                market.book,
                rules,
                market.limits,
                Decimal("100"),
                symbol="TRUMPUSDC",
                client_order_id="fb-c000001-B1",
            )
        except GuardRejected as rejected:
            return f"REJECTED:{rejected.guard}", None
        return "PLACE", order
    args = (market.book, rules, market.limits, market.held, market.floor)
    try:
        return "PLACE", check_sell(
            decision, *args, symbol="TRUMPUSDC", client_order_id="fb-c000001-S1"
        )
    except GuardRejected as rejected:
        safe_price = max(market.floor, market.book.bid + rules.tick_size)
        safe = Decision(action="SELL", base_price=safe_price, confidence=1.0)
        order = check_sell(safe, *args, symbol="TRUMPUSDC", client_order_id="fb-c000001-S1")
        return f"REJECTED:{rejected.guard}", order


def assert_within_guards(order: OrderRequest | None, market: Any) -> None:
    if order is None:
        return
    if order.side is Side.BUY:
        assert order.price < market.book.ask
        assert order.price >= market.book.bid * (1 - market.limits.price_band)
        assert order.price * order.quantity <= market.limits.quote_per_cycle
    else:
        assert order.price >= market.floor
        assert order.quantity <= market.held


# ---------------------------------------------------------------- acceptance cases

BUY_CASES = [
    # (case, script, max_retries, expected verdict, expected error code)
    ("valid", fs.valid(), 2, "PLACE", ""),
    ("refusal", fs.refusal(), 2, "WAIT:ai_unavailable", "refusal"),
    ("truncated", fs.truncated(), 2, "WAIT:ai_unavailable", "truncated"),
    ("invalid_json", fs.invalid_json(), 2, "WAIT:ai_unavailable", "invalid_answer"),
    ("429_then_success", fs.sequence(fs.rate_limited(retry_after_ms=5)), 2, "PLACE", ""),
    ("500", fs.server_error(retry_after_ms=1), 1, "WAIT:ai_unavailable", "server_error"),
    ("timeout", fs.slow(5.0), 0, "WAIT:ai_unavailable", "timeout"),
    ("absurd_price", fs.absurd(), 2, "REJECTED:spread", ""),
    ("confidence_0.79", fs.low_confidence(0.79), 2, "REJECTED:confidence", ""),
]


@pytest.mark.parametrize(
    ("case", "script", "retries", "verdict", "error"), BUY_CASES, ids=[c[0] for c in BUY_CASES]
)
def test_given_an_endpoint_behaviour_when_the_buy_leg_consults_then_the_documented_outcome(
    make_decider: Any,
    market: Any,
    rules: SymbolRules,
    case: str,
    script: fs.Responder,
    retries: int,
    verdict: str,
    error: str,
) -> None:
    decider, _ = make_decider(script, max_retries=retries)
    outcome, order = consult_like(decider, market.buy(), market, rules)
    assert outcome == verdict
    assert decider.last_call["error"] == error
    assert set(decider.last_call) >= AUDIT_KEYS
    assert decider.last_call["decided_by"] == "ai:gpt-4o-mini"
    assert decider.last_call["prompt_version"] == PROMPT_VERSION
    assert_within_guards(order, market)
    if verdict == "PLACE":
        assert order is not None
        assert order.price == market.book.bid


SELL_CASES = [
    ("valid", fs.valid(), "PLACE"),
    ("sell_below_floor", fs.sell_below_floor(), "REJECTED:profit_floor"),
    ("absurd_price", fs.absurd(), "REJECTED:profit_floor"),
    ("confidence_0.79", fs.low_confidence(0.79), "REJECTED:confidence"),
]


@pytest.mark.parametrize(("case", "script", "verdict"), SELL_CASES, ids=[c[0] for c in SELL_CASES])
def test_given_an_answer_when_the_sell_leg_consults_then_the_sell_never_goes_below_the_floor(
    make_decider: Any,
    market: Any,
    rules: SymbolRules,
    case: str,
    script: fs.Responder,
    verdict: str,
) -> None:
    decider, _ = make_decider(script)
    outcome, order = consult_like(decider, market.sell(), market, rules)
    assert outcome == verdict
    assert order is not None
    assert_within_guards(order, market)
    if verdict != "PLACE":
        assert order.price == market.floor  # the safe price


def test_given_a_429_then_success_then_the_retry_is_counted_and_only_the_answer_is_billed(
    make_decider: Any, market: Any
) -> None:
    decider, endpoint = make_decider(fs.sequence(fs.rate_limited(retry_after_ms=5)))
    decision = decider.decide(market.buy())
    assert decision.action == "BUY"
    assert endpoint.request_count == 2
    call = decider.last_call
    assert call["retries"] == 1
    assert call["tokens_in"] > 0
    assert call["tokens_out"] > 0
    expected = (
        Decimal(call["tokens_in"]) * Decimal("0.15") + Decimal(call["tokens_out"]) * Decimal("0.60")
    ) / 1_000_000
    assert call["cost_usd"] == expected


def test_given_a_persistent_500_then_the_client_retries_exactly_max_retries_times(
    make_decider: Any, market: Any
) -> None:
    decider, endpoint = make_decider(fs.server_error(retry_after_ms=1), max_retries=2)
    with pytest.raises(AiUnavailable, match="server_error: HTTP 500"):
        decider.decide(market.buy())
    assert endpoint.request_count == 3
    assert decider.last_call["tokens_in"] == 0
    assert decider.last_call["raw_answer"].startswith("HTTP 500")


def test_given_failed_answers_that_used_tokens_then_their_cost_is_still_recorded(
    make_decider: Any, market: Any
) -> None:
    for script in (fs.refusal(), fs.truncated(), fs.invalid_json()):
        decider, _ = make_decider(script)
        with pytest.raises(AiUnavailable):
            decider.decide(market.buy())
        assert decider.last_call["tokens_in"] > 0
        assert decider.last_call["cost_usd"] > 0
        assert decider.last_call["raw_answer"]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")  # the SDK's
@pytest.mark.parametrize(
    "usage",
    ['"lots"', "[1, 2]", '{"prompt_tokens": 1e400, "completion_tokens": -1e400}'],
    ids=["a string", "a list", "counts of +-1e400"],
)
def test_given_a_usage_that_is_not_token_counts_then_the_answer_decides_at_no_cost(
    make_decider: Any, market: Any, usage: str
) -> None:
    # Given a sane answer whose usage is not an object of counts (1e400 is an infinite float)
    def respond(request: fs.FakeRequest) -> fs.FakeReply:
        body = fs.chat_completion(
            request, fs.valid()(request).body["choices"][0]["message"]["content"]
        )
        body["usage"] = "__usage__"
        return fs.FakeReply(body=json.dumps(body).replace('"__usage__"', usage))

    decider, _ = make_decider(respond)
    # Then the answer decides (not an AttributeError or OverflowError), and is charged nothing
    assert decider.decide(market.buy()).action == "BUY"
    assert decider.last_call["error"] == ""
    assert decider.last_call["tokens_in"] == decider.last_call["tokens_out"] == 0
    assert decider.last_call["cost_usd"] == 0


def test_given_a_refusal_then_the_refusal_text_is_the_raw_answer(
    make_decider: Any, market: Any
) -> None:
    decider, _ = make_decider(fs.refusal("I can't give financial advice."))
    with pytest.raises(AiUnavailable, match="refusal"):
        decider.decide(market.buy())
    assert decider.last_call["raw_answer"] == "I can't give financial advice."


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"base_price": 1e999}, "invalid_answer"),  # JSON overflow: infinity
        ({"confidence": 1.5}, "invalid_answer"),
        ({"action": "HOLD"}, "invalid_answer"),
        ({"reasoning": None}, "invalid_answer"),
    ],
    ids=["infinite_price", "confidence_above_one", "unknown_action", "null_reasoning"],
)
def test_given_an_answer_outside_the_schema_then_ai_unavailable(
    make_decider: Any, market: Any, fields: dict[str, Any], error: str
) -> None:
    decider, _ = make_decider(fs.answer(**fields))
    with pytest.raises(AiUnavailable) as raised:
        decider.decide(market.buy())
    assert decider.last_call["error"] == error
    assert str(raised.value).startswith(error)


def test_given_a_zero_or_negative_price_then_the_guards_reject_it(
    make_decider: Any, market: Any, rules: SymbolRules
) -> None:
    for price in (0.0, -10.0):
        decider, _ = make_decider(fs.answer(base_price=price))
        assert consult_like(decider, market.buy(), market, rules) == ("REJECTED:price", None)


@pytest.mark.parametrize("price", [1e308, 1e28, 1e-308, 5e-324])
def test_given_a_huge_or_tiny_price_then_the_guards_reject_it_and_nothing_raises(
    make_decider: Any, market: Any, rules: SymbolRules, price: float
) -> None:
    # Given an endpoint answering a price no market has, on either leg
    decider, _ = make_decider(fs.answer(base_price=price))
    # Then the buy is refused by the price guard; the sell goes at the safe price
    assert consult_like(decider, market.buy(), market, rules) == ("REJECTED:price", None)
    decider, _ = make_decider(fs.answer(base_price=price))
    verdict, order = consult_like(decider, market.sell(), market, rules)
    assert verdict == "REJECTED:price"
    assert order is not None
    assert order.price == market.floor


def test_given_an_answer_trickling_past_the_deadline_then_ai_unavailable_at_the_deadline(
    make_decider: Any, market: Any
) -> None:
    # Given an endpoint whose answer takes 5 s to arrive, and a 0.3 s total deadline
    decider, _ = make_decider(fs.drip(5.0), max_retries=0, deadline=0.3)
    started = time.monotonic()
    # Then the call gives up at the deadline, as a timeout
    with pytest.raises(AiUnavailable, match=r"timeout: no complete answer within the 0\.3s"):
        decider.decide(market.buy())
    assert time.monotonic() - started < 3
    assert decider.last_call["error"] == "timeout"


def test_given_a_content_filter_stop_then_ai_unavailable(make_decider: Any, market: Any) -> None:
    def filtered(request: fs.FakeRequest) -> fs.FakeReply:
        return fs.FakeReply(body=fs.chat_completion(request, None, finish_reason="content_filter"))

    decider, _ = make_decider(filtered)
    with pytest.raises(AiUnavailable, match="content_filter"):
        decider.decide(market.buy())


def test_given_an_unreachable_endpoint_then_ai_unavailable_connection(market: Any) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    http = httpx2.Client(transport=httpx2.MockTransport(refuse))
    client = openai_client("sk-x", base_url="http://fake.invalid/v1", http_client=http)
    decider = OpenAiDecisionMaker(client, max_retries=0)
    with pytest.raises(AiUnavailable, match="connection"):
        decider.decide(market.buy())


def test_given_a_200_that_is_not_json_then_ai_unavailable(make_decider: Any, market: Any) -> None:
    decider, _ = make_decider(lambda request: fs.FakeReply(body="<html>gateway</html>"))
    with pytest.raises(AiUnavailable, match="invalid_answer"):
        decider.decide(market.buy())


# ---------------------------------------------------------------- the request sent


def test_the_request_carries_the_versioned_prompt_the_context_and_a_strict_schema(
    make_decider: Any, market: Any
) -> None:
    decider, endpoint = make_decider(temperature=None)
    decider.decide(market.sell())
    body = endpoint.requests[0].body
    assert body["model"] == "gpt-4o-mini"
    assert body["max_completion_tokens"] == decider.max_completion_tokens
    assert "temperature" not in body  # reasoning models refuse anything but the default
    schema = body["response_format"]
    assert schema["type"] == "json_schema"
    assert schema["json_schema"]["strict"] is True
    assert set(schema["json_schema"]["schema"]["required"]) == {
        "action",
        "base_price",
        "price_range",
        "confidence",
        "reasoning",
        "buy_strategy",
        "sell_strategy",
        "market_analysis",
    }
    system, user = body["messages"]
    assert system["role"] == "system"
    assert user["role"] == "user"
    assert PROMPT_VERSION in user["content"]
    context = endpoint.requests[0].context
    assert context["leg"] == "SELL"
    assert context["position"]["floor_price"] == "10.12"


def test_given_a_temperature_then_it_is_sent(make_decider: Any, market: Any) -> None:
    decider, endpoint = make_decider(temperature=0.2)
    decider.decide(market.buy())
    assert endpoint.requests[0].body["temperature"] == 0.2


def test_the_timeout_and_retries_are_set_on_the_client_used(make_decider: Any) -> None:
    decider, _ = make_decider(timeout=7.5, max_retries=1)
    assert decider._client.timeout == 7.5
    assert decider._client.max_retries == 1


def test_an_empty_base_url_means_api_openai_com(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    assert str(openai_client("sk-x").base_url).startswith("https://api.openai.com/v1")
    assert str(openai_client("sk-x", base_url="http://127.0.0.1:9/v1").base_url).startswith(
        "http://127.0.0.1:9/v1"
    )


# ---------------------------------------------------------------- secrets, budget, fallback


def test_given_a_wrong_key_then_neither_the_error_nor_the_logs_hold_a_key(
    market: Any, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_key = "sk-wrong-Yh7cD2mQ9pLxW"
    endpoint = fs.FakeOpenAiServer(api_key=api_key)
    http = httpx2.Client(transport=endpoint.mock_transport())
    client = openai_client(wrong_key, base_url="http://fake.invalid/v1", http_client=http)
    decider = FallbackDecisionMaker(OpenAiDecisionMaker(client), OfflineStrategy())
    decision = decider.decide(market.buy())
    assert decider.last_call["ai_error"].startswith("http_401: HTTP 401 invalid_api_key")
    assert decider.last_call["decided_by"] == "fallback:offline"
    visible = json.dumps(decider.last_call, default=str) + decision.reasoning + caplog.text
    assert wrong_key not in visible
    assert api_key not in visible


def test_given_a_spent_budget_then_no_request_is_made(make_decider: Any, market: Any) -> None:
    now = [market.time_ms]
    budget = DailyBudget(Decimal("0.0001"), now_ms=lambda: now[0])
    decider, endpoint = make_decider(budget=budget)
    decider.decide(market.buy())  # ~0.0001 USD: the budget is now spent
    assert budget.spent() > 0
    with pytest.raises(AiUnavailable, match="budget") as spent:
        decider.decide(market.buy())
    assert spent.value.budget_spent
    assert endpoint.request_count == 1
    assert decider.last_call["error"] == "budget"
    now[0] += 86_400_000  # the next UTC day
    assert decider.decide(market.buy()).action == "BUY"
    assert endpoint.request_count == 2


def test_given_a_zero_budget_then_the_ai_is_never_consulted(make_decider: Any, market: Any) -> None:
    budget = DailyBudget(Decimal(0), now_ms=lambda: market.time_ms)
    decider, endpoint = make_decider(budget=budget)
    wrapped = FallbackDecisionMaker(decider, OfflineStrategy())
    assert (
        wrapped.decide(market.buy()).confidence == OfflineStrategy().decide(market.buy()).confidence
    )
    assert wrapped.last_call["decided_by"] == "fallback:offline"
    assert endpoint.request_count == 0


FAILURES = [
    fs.refusal(),
    fs.truncated(),
    fs.invalid_json(),
    fs.server_error(retry_after_ms=1),
    fs.slow(5.0),
]


@pytest.mark.parametrize(
    "script", FAILURES, ids=["refusal", "truncated", "invalid_json", "500", "timeout"]
)
@pytest.mark.parametrize("leg", [Side.BUY, Side.SELL])
def test_given_any_ai_failure_behind_the_fallback_then_the_offline_strategy_decides(
    make_decider: Any, market: Any, rules: SymbolRules, script: fs.Responder, leg: Side
) -> None:
    decider, _ = make_decider(script, max_retries=0)
    wrapped = FallbackDecisionMaker(decider, OfflineStrategy())
    request = market.buy() if leg is Side.BUY else market.sell()
    outcome, order = consult_like(wrapped, request, market, rules)
    assert outcome in {"PLACE", "WAIT", "REJECTED:confidence"}
    assert_within_guards(order, market)
    call = wrapped.last_call
    assert call["decided_by"] == "fallback:offline"
    assert call["ai_error"]
    assert call["prompt_version"] == PROMPT_VERSION


def test_given_the_wait_mode_then_an_ai_failure_waits(
    make_decider: Any, market: Any, rules: SymbolRules
) -> None:
    decider, _ = make_decider(fs.refusal())
    wrapped = FallbackDecisionMaker(decider, mode="wait")
    assert consult_like(wrapped, market.buy(), market, rules) == ("WAIT", None)
    assert wrapped.last_call["decided_by"] == "fallback:wait"
    # On the sell leg a WAIT is refused by the guards: the sell goes to the safe price.
    verdict, order = consult_like(wrapped, market.sell(), market, rules)
    assert verdict == "REJECTED:action"
    assert order is not None
    assert order.price == market.floor
