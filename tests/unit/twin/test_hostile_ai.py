"""The ai-hostile world: every injection through the real OpenAI adapter, then the guards.

Each case runs as the consult runs it: the decision maker the twin builds (the real
``openai`` client on the hostile transport, the adapter's deadline, the offline
fallback), then the hard guards (``check_buy`` / ``check_sell``); a sell the guards
refuse is placed at the safe price. Whatever the endpoint answers, no order breaks a
money rule, the adapter raises nothing but ``AiUnavailable``, and the decision maker of
the consult raises nothing at all.
"""

from __future__ import annotations

import math
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from flipbot.adapters.openai_decider import OpenAiDecisionMaker
from flipbot.ai.fallback import FallbackDecisionMaker
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable, GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import PRICE_RANGE, RiskLimits, check_buy, check_sell
from flipbot.domain.model import BookTop, MarketSnapshot, OrderRequest, Side
from flipbot.settings import Settings, Tables
from flipbot_dev.twin.hostile_ai import (
    INJECTIONS,
    KINDS,
    UNTYPED,
    HostileEndpoint,
    ObservedDecider,
    hostile_decider_factory,
)

# The SDK re-serializes the answer it parsed and warns about a malformed ``usage``.
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

DEADLINE = 0.25
TIME_MS = 1_737_331_200_000  # 2025-01-20T00:00Z
BOOK = BookTop(
    bid=Decimal("10.00"), bid_qty=Decimal("50"), ask=Decimal("10.02"), ask_qty=Decimal("40")
)
ENTRY = Decimal("10.00")
FLOOR = Decimal("10.12")  # entry x (1 + 0.002 fees + 0.01 min profit), at the tick
HELD = Decimal("0.99")
FREE_QUOTE = Decimal("100")
RULES = SymbolRules(
    symbol="TRUMPUSDC",
    base_asset="TRUMP",
    quote_asset="USDC",
    tick_size=Decimal("0.01"),
    min_price=Decimal("0.01"),
    max_price=Decimal("100000"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    max_qty=Decimal("900000"),
    min_notional=Decimal("5"),
    max_notional=Decimal("9000000"),
)
SETTINGS = Settings(
    symbol="TRUMPUSDC",
    quote_per_cycle=Decimal("10"),
    min_confidence=0.8,
    min_profit=Decimal("0.01"),
    target_profit=Decimal("0.05"),
    price_band=Decimal("0.02"),
    tables=Tables(cycles="c", orders="o", fills="f", trades="t", consultations="k", market="m"),
)
LIMITS = RiskLimits(
    quote_per_cycle=SETTINGS.quote_per_cycle,
    min_confidence=SETTINGS.min_confidence,
    min_profit=SETTINGS.min_profit,
    price_band=SETTINGS.price_band,
)


def container(settings: Settings = SETTINGS) -> Any:
    """What the twin hands the factory: the function's settings and its (virtual) clock."""
    return SimpleNamespace(settings=settings, clock=SimpleNamespace(now_ms=lambda: TIME_MS))


def request(leg: Side, minute: int = 0) -> DecisionRequest:
    snapshot = MarketSnapshot(
        symbol="TRUMPUSDC",
        time_ms=TIME_MS + minute * 60_000,
        last_price=Decimal("10.01"),
        book=BOOK,
        ma5=Decimal("10.02"),
        ma20=Decimal("9.98"),
        vwap=Decimal("9.99"),
        volatility=Decimal("0.002"),
    )
    sell = {"entry_price": ENTRY, "floor_price": FLOOR, "quantity": HELD}
    return DecisionRequest(
        leg=leg,
        symbol="TRUMPUSDC",
        snapshot=snapshot,
        quote_per_cycle=SETTINGS.quote_per_cycle,
        min_confidence=SETTINGS.min_confidence,
        min_profit=SETTINGS.min_profit,
        target_profit=SETTINGS.target_profit,
        fee_rate_round_trip=Decimal("0.002"),
        **(sell if leg is Side.SELL else {}),
    )


def hostile(injection: str) -> ObservedDecider:
    build, _ = hostile_decider_factory(7, kinds=[injection], deadline=DEADLINE)
    return build(container())


def guarded(decision: Decision, req: DecisionRequest) -> tuple[str, OrderRequest | None]:
    """``(verdict, order)`` as :mod:`flipbot.app.consult` decides them."""
    if req.leg is Side.BUY:
        if decision.action != "BUY":
            return "WAIT", None
        try:
            order = check_buy(
                decision, BOOK, RULES, LIMITS, FREE_QUOTE, symbol="TRUMPUSDC", client_order_id="b"
            )
        except GuardRejected as rejected:
            return f"REJECTED:{rejected.guard}", None
        return "PLACE", order
    assert req.floor_price is not None
    assert req.quantity is not None
    args = (BOOK, RULES, LIMITS, req.quantity, req.floor_price)
    try:
        return "PLACE", check_sell(decision, *args, symbol="TRUMPUSDC", client_order_id="s")
    except GuardRejected as rejected:
        safe_price = max(req.floor_price, BOOK.bid + RULES.tick_size)
        safe = Decision(action="SELL", base_price=safe_price, confidence=1.0)
        order = check_sell(safe, *args, symbol="TRUMPUSDC", client_order_id="s")
        return f"REJECTED:{rejected.guard}", order


def assert_money_rules(
    decision: Decision, verdict: str, order: OrderRequest | None, req: DecisionRequest
) -> None:
    """Limit orders only, at most quote_per_cycle, confidence at least the minimum, never
    a sell under entry + round-trip fees + min profit, finite positive prices."""
    assert math.isfinite(decision.confidence)
    assert 0 <= decision.confidence <= 1
    if order is None:
        assert verdict != "PLACE"
        return
    low, high = PRICE_RANGE
    assert order.price.is_finite()
    assert low <= order.price <= high
    assert order.quantity.is_finite()
    assert order.quantity > 0
    if verdict == "PLACE":  # the decision itself is acted on
        assert decision.action == req.leg.value
        assert decision.confidence >= req.min_confidence
    if req.leg is Side.BUY:
        assert order.side is Side.BUY
        assert order.price < BOOK.ask  # rests on the book: a maker limit order
        assert order.price >= BOOK.bid * (1 - SETTINGS.price_band)
        assert order.price * order.quantity <= req.quote_per_cycle
    else:
        assert req.entry_price is not None
        assert req.floor_price is not None
        assert req.quantity is not None
        assert order.side is Side.SELL
        assert order.price >= req.floor_price
        fees_and_profit = 1 + req.fee_rate_round_trip + req.min_profit
        assert order.price >= req.entry_price * fees_and_profit
        assert order.price > BOOK.bid
        assert order.quantity <= req.quantity


# ---------------------------------------------------------------- every injection

CASES = [(injection, leg) for injection in INJECTIONS for leg in (Side.BUY, Side.SELL)]


@pytest.mark.parametrize(
    ("injection", "leg"), CASES, ids=[f"{i}-{leg.value.lower()}" for i, leg in CASES]
)
def test_given_a_hostile_answer_when_a_leg_is_decided_then_no_order_breaks_a_money_rule(
    injection: str, leg: Side
) -> None:
    # Given the decision maker the twin builds, its endpoint answering with one injection
    decider = hostile(injection)
    req = request(leg)
    # When the adapter decides: a Decision of finite numbers, or AiUnavailable (typed)
    outcome: Decision | AiUnavailable
    try:
        outcome = decider.primary.decide(req)
    except AiUnavailable as exc:
        outcome = exc
    code = decider.primary.last_call["error"]
    if isinstance(outcome, AiUnavailable):
        assert code
        assert str(outcome).startswith(f"{code}: ")
    else:
        assert code == ""
        assert outcome.base_price.is_finite()
        assert outcome.price_range is None or (
            outcome.price_range.low.is_finite() and outcome.price_range.high.is_finite()
        )
    # When the consult decides (the fallback behind the adapter): a decision, always
    decision = decider.decide(req)
    assert decider.last_call["decided_by"] in ("ai:gpt-4o-mini", "fallback:offline")
    # Then the guards let no order through that breaks a money rule
    verdict, order = guarded(decision, req)
    assert_money_rules(decision, verdict, order, req)


@pytest.mark.parametrize("injection", [i for i in INJECTIONS if i.startswith("slow_drip.")])
def test_given_a_body_dripping_past_the_deadline_then_the_adapter_gives_up_at_its_deadline(
    injection: str,
) -> None:
    # Given a body sent byte by byte, each byte quick, the whole slower than the deadline
    decider = hostile(injection)
    # When the adapter is asked
    with pytest.raises(AiUnavailable) as raised:
        decider.primary.decide(request(Side.BUY))
    # Then it gave up at its total deadline, as a timeout
    assert decider.primary.deadline == DEADLINE
    assert decider.primary.last_call["error"] == "timeout"
    assert str(raised.value) == f"timeout: no complete answer within the {DEADLINE:g}s deadline"
    # And behind the fallback the offline strategy decides, saying why
    decider.decide(request(Side.SELL))
    assert decider.last_call["decided_by"] == "fallback:offline"
    assert decider.last_call["error"] == "timeout"
    assert decider.last_call["ai_error"].startswith("timeout: ")


@pytest.mark.parametrize("leg", [Side.BUY, Side.SELL])
def test_given_a_sane_answer_then_the_ai_decides_and_the_order_is_placed(leg: Side) -> None:
    decider = hostile("sane")
    req = request(leg)
    decision = decider.decide(req)
    assert decider.last_call["decided_by"] == "ai:gpt-4o-mini"
    verdict, order = guarded(decision, req)
    assert verdict == "PLACE"
    assert order is not None
    assert order.price == (BOOK.bid if leg is Side.BUY else Decimal("10.14"))


@pytest.mark.parametrize("injection", ["garbage.usage_not_an_object", "garbage.usage_overflow"])
def test_given_a_usage_that_is_not_counts_then_the_answer_still_decides_and_costs_nothing(
    injection: str,
) -> None:
    # Given a sane answer whose usage is a string, or token counts of +-1e400
    decider = hostile(injection)
    # Then the answer decides (it used to raise AttributeError / OverflowError)
    decision = decider.primary.decide(request(Side.BUY))
    assert decision.action == "BUY"
    assert decider.primary.last_call["tokens_in"] == 0
    assert decider.primary.last_call["cost_usd"] == 0


# ---------------------------------------------------------------- wiring and stats


def test_the_factory_builds_the_production_wiring_from_the_container() -> None:
    settings = SETTINGS.model_copy(
        update={
            "ai_model": "gpt-4.1-mini",
            "ai_fallback": "wait",
            "ai_daily_budget_usd": Decimal(3),
        }
    )
    build, _ = hostile_decider_factory(1, deadline=0.4, max_retries=1)
    decider = build(container(settings))
    assert isinstance(decider.decider, FallbackDecisionMaker)
    assert decider.decider.mode == "wait"
    assert isinstance(decider.primary, OpenAiDecisionMaker)
    assert decider.primary.model == "gpt-4.1-mini"
    assert decider.primary.deadline == 0.4
    assert decider.primary.max_retries == 1
    assert decider.primary.budget is not None
    assert decider.primary.budget.limit_usd == 3
    assert decider.primary.price_band == SETTINGS.price_band
    assert decider.name == "openai"


def decide_minutes(seed: int, minutes: int) -> dict[str, Any]:
    build, stats = hostile_decider_factory(seed, deadline=DEADLINE)
    decider = build(container())
    for minute in range(minutes):
        leg = Side.BUY if minute % 2 else Side.SELL
        req = request(leg, minute)
        decision = decider.decide(req)
        verdict, order = guarded(decision, req)
        assert_money_rules(decision, verdict, order, req)
    return stats.as_dict()


def test_given_the_default_mix_then_every_kind_is_injected_and_counted() -> None:
    stats = decide_minutes(seed=3, minutes=60)
    assert list(stats["injections"]) == list(KINDS)
    assert all(stats["injections"][kind] > 0 for kind in KINDS), stats["injections"]
    assert stats["decisions"] == 60
    assert sum(stats["injections"].values()) == 60  # one first attempt per decision
    assert sum(stats["variants"].values()) == 60
    assert stats["decided_by_ai"] + stats["fell_back"] == 60
    assert sum(stats["ai_errors"].values()) == stats["fell_back"]
    assert stats["fell_back"] > 0
    assert stats["decided_by_ai"] >= stats["injections"]["sane"]
    assert stats["raised"] == {}
    assert UNTYPED not in stats["ai_errors"]
    assert stats["requests"] >= 60


def test_given_the_same_seed_and_requests_then_the_same_injections() -> None:
    first, again, other = (decide_minutes(seed, 12) for seed in (5, 5, 6))
    timing = ("requests", "retry_injections")
    same = {k: v for k, v in first.items() if k not in timing}
    assert same == {k: v for k, v in again.items() if k not in timing}
    assert first["variants"] != other["variants"]


def test_given_an_unknown_injection_then_the_endpoint_says_which_exist() -> None:
    with pytest.raises(ValueError, match=r"unknown injection 'garbage\.teapot'"):
        HostileEndpoint(1, kinds=["garbage.teapot"])
    with pytest.raises(ValueError, match="unknown injection 'poetry'"):
        HostileEndpoint(1, kinds=["poetry"])
