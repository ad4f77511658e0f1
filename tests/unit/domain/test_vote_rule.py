"""The voting rule: quorum, agreement on the action, median price, lowest confidence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.domain.decision import Decision, PriceRange, SellPlan
from flipbot.domain.voting import Vote, quorum, tally


def _vote(
    model: str, action: str = "BUY", price: str = "10", confidence: float = 0.9, **kw: object
) -> Vote:
    decision = Decision(
        action=action,  # type: ignore[arg-type]
        base_price=Decimal(price),
        confidence=confidence,
        reasoning=f"{model} says so",
        **kw,  # type: ignore[arg-type]
    )
    return Vote(model=model, decision=decision)


def _failed(model: str, error: str = "server_error") -> Vote:
    return Vote(model=model, decision=None, error=error, cost_usd=Decimal("0.001"))


@pytest.mark.parametrize(("configured", "needed"), [(2, 2), (3, 2), (4, 3), (5, 3)])
def test_more_than_half_of_the_models_must_answer(configured: int, needed: int) -> None:
    assert quorum(configured) == needed


def test_given_three_agreeing_models_then_the_median_price_and_the_lowest_confidence() -> None:
    outcome = tally(
        [
            _vote("a", price="10.30", confidence=0.95, timeout_seconds=600),
            _vote("b", price="10.10", confidence=0.82, timeout_seconds=900),
            _vote("c", price="10.20", confidence=0.90, timeout_seconds=1200),
        ]
    )
    assert (outcome.agreed, outcome.answered) == (True, 3)
    d = outcome.decision
    assert d is not None
    assert (d.action, d.base_price, d.confidence, d.timeout_seconds) == (
        "BUY",
        Decimal("10.20"),
        0.82,
        900,
    )
    assert "3 of 3 models agree on BUY" in d.reasoning
    assert d.reasoning.endswith("a says so")


def test_given_an_even_count_then_the_price_is_the_mean_of_the_middle_two() -> None:
    outcome = tally([_vote("a", price="10.00"), _vote("b", price="10.30")])
    assert outcome.decision is not None
    assert outcome.decision.base_price == Decimal("10.15")


def test_given_one_of_three_failed_then_the_other_two_decide() -> None:
    outcome = tally([_vote("a", price="10.0"), _failed("b"), _vote("c", price="10.4")])
    assert outcome.decision is not None
    assert (outcome.answered, outcome.configured) == (2, 3)
    assert outcome.decision.base_price == Decimal("10.2")


def test_given_two_of_three_failed_then_there_is_no_decision_and_the_reason_names_them() -> None:
    outcome = tally([_vote("a"), _failed("b", "timeout"), _failed("c", "http_401")])
    assert outcome.decision is None
    assert "1 of 3 models answered, 2 needed" in outcome.reason
    assert "b (timeout)" in outcome.reason
    assert "c (http_401)" in outcome.reason


def test_given_models_that_disagree_on_the_action_then_wait_with_no_confidence() -> None:
    outcome = tally([_vote("a"), _vote("b", action="WAIT"), _vote("c")])
    assert not outcome.agreed
    d = outcome.decision
    assert d is not None
    assert (d.action, d.confidence) == ("WAIT", 0.0)
    assert d.reasoning == "models disagree: BUY (a, c); WAIT (b)"


def test_ranges_and_margins_are_the_medians_of_those_given() -> None:
    outcome = tally(
        [
            _vote("a", price_range=PriceRange(low=Decimal("9.9"), high=Decimal("10.1"))),
            _vote("b", suggested_margin=Decimal("0.02")),
            _vote(
                "c",
                price_range=PriceRange(low=Decimal("9.7"), high=Decimal("10.5")),
                suggested_margin=Decimal("0.04"),
                market_analysis={"trend": "up"},
            ),
        ]
    )
    d = outcome.decision
    assert d is not None
    assert d.price_range == PriceRange(low=Decimal("9.8"), high=Decimal("10.3"))
    assert d.suggested_margin == Decimal("0.03")
    assert d.market_analysis == {"trend": "up"}


def _plan(price: str, confidence: float) -> SellPlan:
    return SellPlan(price=Decimal(price), confidence=confidence, timeout_seconds=600)


def test_the_sell_plans_are_combined_when_every_answer_has_one() -> None:
    outcome = tally(
        [
            _vote("a", sell_plan=_plan("10.50", 0.9)),
            _vote("b", sell_plan=_plan("10.70", 0.8)),
            _vote("c", sell_plan=_plan("10.60", 0.95)),
        ]
    )
    assert outcome.decision is not None
    assert outcome.decision.sell_plan == _plan("10.60", 0.8)
    partial = tally([_vote("a", sell_plan=_plan("10.50", 0.9)), _vote("b")])
    assert partial.decision is not None
    assert partial.decision.sell_plan is None
