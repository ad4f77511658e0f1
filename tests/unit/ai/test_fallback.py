"""The fallback wrapper: who decides when the AI does not, and what the record says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.ai.fallback import FallbackDecisionMaker
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable
from flipbot.domain.strategy import FixedMarginStrategy, OfflineStrategy


class _Primary:
    name = "openai"

    def __init__(self, outcome: Decision | Exception) -> None:
        self.outcome = outcome
        self.last_call: dict[str, Any] = {}

    def decide(self, request: DecisionRequest) -> Decision:
        self.last_call = {
            "decided_by": "ai:test",
            "prompt_version": "flip-v2",
            "tokens_in": 10,
            "tokens_out": 5,
            "cost_usd": Decimal("0.01"),
            "latency_ms": 3,
            "raw_answer": "...",
        }
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_an_answer_from_the_ai_is_passed_on_with_its_audit(market: Any) -> None:
    answer = Decision(action="BUY", base_price=Decimal("10"), confidence=0.9)
    wrapped = FallbackDecisionMaker(_Primary(answer), OfflineStrategy())
    assert wrapped.decide(market.buy()) is answer
    assert wrapped.last_call["decided_by"] == "ai:test"
    assert "ai_error" not in wrapped.last_call
    assert wrapped.name == "openai"


def test_on_ai_unavailable_the_fallback_decides_and_the_cost_is_kept(market: Any) -> None:
    wrapped = FallbackDecisionMaker(
        _Primary(AiUnavailable("timeout: no answer")), FixedMarginStrategy()
    )
    decision = wrapped.decide(market.buy())
    expected = FixedMarginStrategy().decide(market.buy())
    assert decision.base_price == expected.base_price
    assert decision.reasoning.startswith("AI unavailable (timeout: no answer); ")
    call = wrapped.last_call
    assert call["decided_by"] == "fallback:fixed"
    assert call["ai_error"] == "timeout: no answer"
    assert call["cost_usd"] == Decimal("0.01")


@pytest.mark.parametrize(
    ("error", "spent"),
    [
        (AiUnavailable("budget: daily AI budget of 1 USD is spent", budget_spent=True), True),
        (AiUnavailable("budget-like wording: timeout"), False),
    ],
    ids=["budget-spent", "other-failure"],
)
def test_a_spent_budget_is_told_by_the_error_not_by_its_message(
    market: Any, error: AiUnavailable, spent: bool
) -> None:
    wrapped = FallbackDecisionMaker(_Primary(error), OfflineStrategy())
    wrapped.decide(market.buy())
    assert wrapped.last_call["ai_budget_spent"] is spent


def test_an_unexpected_error_is_a_failure_too_never_a_crash(market: Any) -> None:
    wrapped = FallbackDecisionMaker(_Primary(KeyError("choices")), OfflineStrategy())
    wrapped.decide(market.sell())
    assert wrapped.last_call["decided_by"] == "fallback:offline"
    assert wrapped.last_call["ai_error"] == "KeyError in openai"


def test_the_wait_mode_answers_wait_with_no_confidence(market: Any) -> None:
    wrapped = FallbackDecisionMaker(_Primary(AiUnavailable("refusal: no")), mode="wait")
    decision = wrapped.decide(market.buy())
    assert (decision.action, decision.confidence) == ("WAIT", 0.0)
    assert decision.timeout_seconds == 60
    assert wrapped.last_call["decided_by"] == "fallback:wait"


def test_the_modes_are_checked() -> None:
    with pytest.raises(ValueError, match="mode"):
        FallbackDecisionMaker(_Primary(AiUnavailable("x")), mode="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fallback decision maker"):
        FallbackDecisionMaker(_Primary(AiUnavailable("x")))
