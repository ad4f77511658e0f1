"""One consultation plans both legs: the buy answer carries the sell it plans for after
the fill. The sell leg checks that plan against the live market and places it without
asking again while it holds; when it no longer holds it asks, and says why.

Real DynamoDB adapter (moto), real python-binance client against the paper exchange.
The cycle buys 0.385 at 25.90 on a 25.95/25.96 market (fees 0.1 % each way): its floor
is 25.90 x 1.012 = 26.2108 -> 26.22.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.consult import consult
from flipbot.app.fills import apply_order_update
from flipbot.app.orders import place_order
from flipbot.domain.decision import Decision, SellPlan
from flipbot.domain.model import Side

from .conftest import Bot

CYCLE = "c000001"


def _bought_with_plan(bot: Bot, plan: SellPlan | None) -> str:
    """The buy leg is consulted (its answer plans ``plan``), placed and filled; returns
    the buy consultation's id."""
    bot.market("25.95", "25.96")
    bot.decider.answers.append(
        Decision(action="BUY", base_price=Decimal("25.90"), confidence=0.9, sell_plan=plan)
    )
    decided = consult(bot, CYCLE, Side.BUY, 1)
    assert decided["action"] == "PLACE"
    place_order(
        bot,
        cycle_id=CYCLE,
        leg=Side.BUY,
        attempt=1,
        price=Decimal(decided["price"]),
        quantity=Decimal(decided["quantity"]),
        task_token="token-b1",
        consultation_id=decided["consultation_id"],
    )
    bot.trade("25.80", "1.000")
    for update in bot.updates():
        apply_order_update(update, bot.repos, bot.workflow, bot.clock.now)
    return str(decided["consultation_id"])


def _plan(price: str = "26.60", confidence: float = 0.9) -> SellPlan:
    return SellPlan(
        price=Decimal(price),
        confidence=confidence,
        timeout_seconds=600,
        suggested_margin=Decimal("0.015"),
    )


def _record(bot: Bot, consultation_id: str) -> Any:
    record = bot.repos.consultations.get(consultation_id)
    assert record is not None
    return record


def test_the_buy_consultation_records_both_plans(bot: Bot) -> None:
    bought_by = _bought_with_plan(bot, _plan())
    extra = _record(bot, bought_by).extra
    assert extra["buy_plan.timeout_seconds"] == "900"
    assert (extra["sell_plan.price"], extra["sell_plan.confidence"]) == ("26.60", "0.9")
    assert (extra["sell_plan.timeout_seconds"], extra["sell_plan.margin"]) == ("600", "0.015")


def test_given_a_plan_that_holds_then_the_sell_is_placed_as_planned_without_asking(
    bot: Bot,
) -> None:
    bought_by = _bought_with_plan(bot, _plan())
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert (decided["action"], decided["price"]) == ("PLACE", "26.60")
    assert decided["reprice_seconds"] == 600  # the plan's timeout, within 300..3600
    assert [r.leg for r in bot.decider.requests] == [Side.BUY]  # no one was asked again
    record = _record(bot, decided["consultation_id"])
    assert record.decided_by == "plan:scripted"
    assert (record.verdict, record.verdict_reason) == ("PLACE", "the sell plan holds")
    assert record.extra["sell_plan.from"] == bought_by
    assert record.cost_usd == 0


def test_given_a_plan_under_the_floor_then_the_sell_leg_asks_and_records_why(bot: Bot) -> None:
    bought_by = _bought_with_plan(bot, _plan(price="26.00"))
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.50"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert (decided["action"], decided["price"]) == ("PLACE", "26.50")
    assert [r.leg for r in bot.decider.requests] == [Side.BUY, Side.SELL]
    record = _record(bot, decided["consultation_id"])
    assert record.decided_by == "scripted"
    assert record.extra["sell_plan.from"] == bought_by
    assert record.extra["sell_plan.verdict"] == "REJECTED:profit_floor"
    assert "26.22" in record.extra["sell_plan.reason"]


def test_given_a_market_that_fell_away_from_the_plan_then_the_sell_leg_asks(bot: Bot) -> None:
    _bought_with_plan(bot, _plan(price="26.60"))
    bot.market("23.50", "23.51")  # 26.60 is now far more than 10 % over the mid
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.22"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["price"] == "26.22"
    record = _record(bot, decided["consultation_id"])
    assert record.extra["sell_plan.verdict"].startswith("REJECTED:")
    assert len(bot.decider.requests) == 2


def test_given_an_unsure_plan_then_the_sell_leg_asks(bot: Bot) -> None:
    _bought_with_plan(bot, _plan(confidence=0.5))
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["price"] == "26.40"
    verdict = _record(bot, decided["consultation_id"]).extra["sell_plan.verdict"]
    assert verdict == "REJECTED:confidence"


def test_a_re_priced_sell_asks_again_instead_of_reusing_the_plan(bot: Bot) -> None:
    _bought_with_plan(bot, _plan())
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 2)
    assert decided["price"] == "26.40"
    assert "sell_plan.from" not in _record(bot, decided["consultation_id"]).extra


def test_without_a_plan_the_sell_leg_asks_as_before(bot: Bot) -> None:
    _bought_with_plan(bot, None)
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["price"] == "26.40"
    assert [r.leg for r in bot.decider.requests] == [Side.BUY, Side.SELL]
    assert not [k for k in _record(bot, decided["consultation_id"]).extra if "plan" in k]


def test_a_plan_that_failed_once_is_not_taken_up_later_and_its_failure_is_kept(
    bot: Bot,
) -> None:
    _bought_with_plan(bot, _plan(price="26.60"))
    bot.market("23.50", "23.51")  # the plan no longer holds
    bot.decider.answers.append(Decision(action="WAIT", base_price=Decimal("23.50"), confidence=0.9))
    waited = consult(bot, CYCLE, Side.SELL, 1)
    assert waited["action"] == "WAIT"
    verdict = _record(bot, waited["consultation_id"]).extra["sell_plan.verdict"]
    assert verdict.startswith("REJECTED:")
    # the market comes back where the plan would hold: the model is asked all the same
    bot.clock.now += 3 * 86_400_000
    bot.market("25.95", "25.96")
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["price"] == "26.40"
    assert _record(bot, decided["consultation_id"]).decided_by == "scripted"


@pytest.mark.parametrize(
    "forged",
    [{"cycle_id": "c000999"}, {"verdict": "REJECTED:spread"}, {"leg": Side.SELL}],
    ids=["another_cycle", "not_placed", "not_a_buy"],
)
def test_a_plan_is_read_only_from_this_cycles_placed_buy(
    bot: Bot, forged: dict[str, object]
) -> None:
    bought_by = _bought_with_plan(bot, _plan())
    bot.repos.consultations.add(replace(_record(bot, bought_by), **forged))
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["price"] == "26.40"
    assert [r.leg for r in bot.decider.requests] == [Side.BUY, Side.SELL]


def test_whether_a_leg_was_consulted_is_one_read_of_the_cycles_index(bot: Bot) -> None:
    consultations = bot.repos.consultations
    _bought_with_plan(bot, None)
    assert consultations.any_for_leg(CYCLE, Side.BUY)
    assert not consultations.any_for_leg(CYCLE, Side.SELL)
    assert not consultations.any_for_leg("c000002", Side.BUY)
    bot.decider.answers.append(Decision(action="WAIT", base_price=Decimal("26"), confidence=0.9))
    consult(bot, CYCLE, Side.SELL, 1)
    assert consultations.any_for_leg(CYCLE, Side.SELL)
    assert not consultations.any_for_leg("c00000", Side.SELL)  # a prefix of the id is not it
