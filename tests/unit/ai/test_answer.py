"""The answer schema and its mapping to a Decision."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from flipbot.ai.answer import MAX_TIMEOUT_SECONDS, AiAnswer, InvalidAnswer, to_decision
from flipbot.domain.model import Side


def _answer(**changes: Any) -> AiAnswer:
    fields: dict[str, Any] = {
        "action": "SELL",
        "base_price": 10.23,
        "price_range": {"low": 10.3, "high": 10.12},
        "confidence": 0.9,
        "reasoning": "  above the floor  ",
        "buy_strategy": {"timeout_seconds": 600},
        "sell_strategy": {"suggested_margin": 0.012, "timeout_seconds": 3600},
        "market_analysis": {
            "trend": "UP",
            "support": 10.0,
            "resistance": 10.5,
            "summary": " buyers lift the asks ",
        },
    }
    fields.update(changes)
    return AiAnswer.model_validate(fields)


def test_the_sell_leg_takes_the_sell_strategy() -> None:
    decision = to_decision(_answer(), Side.SELL)
    assert decision.base_price == Decimal("10.23")  # the number's shortest text, exactly
    assert (decision.price_range.low, decision.price_range.high) == (  # type: ignore[union-attr]
        Decimal("10.12"),
        Decimal("10.3"),
    )
    assert decision.timeout_seconds == 3600
    assert decision.suggested_margin == Decimal("0.012")
    assert decision.reasoning == "above the floor"


def test_the_buy_leg_takes_the_buy_strategy_and_no_margin() -> None:
    decision = to_decision(_answer(action="BUY"), Side.BUY)
    assert decision.timeout_seconds == 600
    assert decision.suggested_margin is None


@pytest.mark.parametrize(("given", "kept"), [(-5, 0), (10**9, MAX_TIMEOUT_SECONDS)])
def test_timeouts_are_clamped(given: int, kept: int) -> None:
    answer = _answer(buy_strategy={"timeout_seconds": given})
    assert to_decision(answer, Side.BUY).timeout_seconds == kept


@pytest.mark.parametrize(
    "changes",
    [
        {"base_price": float("inf")},
        {"price_range": {"low": float("nan"), "high": 1.0}},
        {"sell_strategy": {"suggested_margin": float("inf"), "timeout_seconds": 1}},
    ],
)
def test_non_finite_numbers_are_invalid(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidAnswer):
        to_decision(_answer(**changes), Side.SELL)


def test_absurd_but_finite_prices_pass_through_for_the_guards() -> None:
    assert to_decision(_answer(base_price=-3.0), Side.SELL).base_price == Decimal("-3.0")


def test_the_schema_is_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        _answer(leverage=10)


def test_the_market_analysis_goes_into_the_decision_for_the_audit() -> None:
    decision = to_decision(_answer(), Side.SELL)
    assert decision.market_analysis == {
        "trend": "UP",
        "support": "10.0",
        "resistance": "10.5",
        "summary": "buyers lift the asks",
    }


def test_an_answer_without_a_market_analysis_is_not_an_answer() -> None:
    fields = _answer().model_dump()
    del fields["market_analysis"]
    with pytest.raises(ValidationError):
        AiAnswer.model_validate(fields)


def _planned(**plan: Any) -> dict[str, Any]:
    return {"sell_strategy": {"suggested_margin": 0.015, "timeout_seconds": 1200, **plan}}


def test_a_buy_answer_with_a_sell_price_and_confidence_plans_the_sell() -> None:
    decision = to_decision(
        _answer(action="BUY", **_planned(price=10.45, confidence=0.85)), Side.BUY
    )
    assert decision.sell_plan is not None
    plan = decision.sell_plan
    assert (plan.price, plan.confidence) == (Decimal("10.45"), 0.85)
    assert (plan.timeout_seconds, plan.suggested_margin) == (1200, Decimal("0.015"))
    assert decision.timeout_seconds == 600  # the buy's own timeout is unchanged


@pytest.mark.parametrize(
    "plan", [{}, {"price": 10.45}, {"confidence": 0.9}, {"price": None, "confidence": None}]
)
def test_a_buy_answer_without_both_price_and_confidence_plans_no_sell(
    plan: dict[str, Any],
) -> None:
    assert to_decision(_answer(action="BUY", **_planned(**plan)), Side.BUY).sell_plan is None


def test_a_sell_answer_plans_nothing_and_a_non_finite_plan_is_invalid() -> None:
    answer = _answer(**_planned(price=10.45, confidence=0.85))
    assert to_decision(answer, Side.SELL).sell_plan is None
    with pytest.raises(InvalidAnswer, match=r"sell_strategy\.price"):
        to_decision(_answer(**_planned(price=float("inf"), confidence=0.9)), Side.BUY)


def test_a_plan_confidence_outside_0_to_1_is_not_an_answer() -> None:
    with pytest.raises(ValidationError):
        _answer(**_planned(price=10.45, confidence=1.5))
