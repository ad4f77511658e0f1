"""The stop-loss: the one sell below the profit floor, only when configured, with evidence.

Real DynamoDB adapter (moto), real python-binance client against the paper exchange.
The cycle buys 0.385 at 25.90: its floor is 26.22 and a 1 % stop fires at or under
25.90 x 0.99 = 25.641.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.consult import check_resting_sell, consult
from flipbot.app.orders import place_order
from flipbot.domain.decision import Decision
from flipbot.domain.errors import GuardRejected
from flipbot.domain.model import Side
from flipbot.domain.stop_loss import STOP_LOSS_VERDICT

from .conftest import Bot

CYCLE = "c000001"
FLOOR = Decimal("26.22")


def _with_stop_loss(bot: Bot, stop: str | None = "0.01") -> None:
    bot.settings = bot.settings.model_copy(
        update={"stop_loss": Decimal(stop) if stop else None, "sell_recheck_seconds": 120}
    )


def _place_sell(bot: Bot, decided: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    return place_order(
        bot,
        cycle_id=CYCLE,
        leg=Side.SELL,
        attempt=attempt,
        price=Decimal(decided["price"]),
        quantity=Decimal(decided["quantity"]),
        task_token=f"token-s{attempt}",
        consultation_id=decided["consultation_id"],
    )


def _floor_answer(bot: Bot) -> None:
    bot.decider.answers.append(Decision(action="SELL", base_price=FLOOR, confidence=0.95))


def test_given_a_stop_loss_and_the_price_under_it_then_the_exit_rests_at_the_ask_below_the_floor(
    bot: Bot,
) -> None:
    _with_stop_loss(bot)
    bot.bought()
    bot.market("25.50", "25.52")  # last 25.51 <= 25.641
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["action"] == "PLACE"
    assert Decimal(decided["price"]) == Decimal("25.52")  # the best ask, under the floor
    assert decided["decided_by"] == "stop-loss"
    assert decided["timeout_seconds"] == 120
    assert bot.decider.requests == []  # the strategy is not asked: the rule decides
    audit = bot.repos.consultations.all()[-1]
    assert audit.verdict == STOP_LOSS_VERDICT
    assert Decimal(audit.extra["last_price"]) == Decimal("25.51")
    assert Decimal(audit.extra["stop_price"]) == Decimal("25.641")
    placed = _place_sell(bot, decided)
    order = bot.repos.orders.get(placed["client_order_id"])
    assert order is not None
    assert order.order_id > 0
    assert order.exit_reason == "STOP_LOSS"
    assert order.floor_price == FLOOR  # the floor stays on record; the exit is flagged


def test_given_no_stop_loss_when_the_market_falls_then_the_sell_stays_at_the_floor(
    bot: Bot,
) -> None:
    _with_stop_loss(bot, None)
    bot.bought()
    bot.market("25.50", "25.52")
    _floor_answer(bot)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert Decimal(decided["price"]) == FLOOR
    assert decided["timeout_seconds"] == bot.settings.sell_timeout_seconds == 99_999_999
    assert bot.repos.consultations.all()[-1].verdict == "PLACE"


def test_given_a_stop_loss_and_the_price_above_it_then_the_strategy_decides_as_usual(
    bot: Bot,
) -> None:
    _with_stop_loss(bot)
    bot.bought()
    bot.market("25.70", "25.72")  # last 25.71 > 25.641
    _floor_answer(bot)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert Decimal(decided["price"]) == FLOOR
    assert len(bot.decider.requests) == 1


@pytest.mark.parametrize(
    ("stop_loss", "verdict", "last"),
    [
        (None, STOP_LOSS_VERDICT, "25.51"),  # no stop-loss configured
        ("0.01", "PLACE", "25.51"),  # not a stop-loss consultation
        ("0.01", STOP_LOSS_VERDICT, "25.70"),  # its last price was above the stop
    ],
    ids=["not-configured", "not-a-stop-consultation", "last-above-stop"],
)
def test_given_a_below_floor_sell_without_stop_evidence_then_place_order_refuses_it(
    bot: Bot, stop_loss: str | None, verdict: str, last: str
) -> None:
    _with_stop_loss(bot)
    bot.bought()
    bot.market("25.50", "25.52")
    decided = consult(bot, CYCLE, Side.SELL, 1)
    audit = bot.repos.consultations.all()[-1]
    bot.repos.consultations.add(
        replace(audit, verdict=verdict, extra={**audit.extra, "last_price": last})
    )
    _with_stop_loss(bot, stop_loss)
    with pytest.raises(GuardRejected) as refused:
        _place_sell(bot, decided)
    assert refused.value.guard == "profit_floor"
    assert "25.52" in str(refused.value)
    assert str(FLOOR) in str(refused.value)
    assert bot.paper.open_orders("TRUMPUSDC") == []


def test_given_a_resting_sell_at_the_floor_when_checked_then_kept_until_the_stop_fires(
    bot: Bot,
) -> None:
    _with_stop_loss(bot)
    bot.bought()
    _floor_answer(bot)
    _place_sell(bot, consult(bot, CYCLE, Side.SELL, 1))
    bot.market("25.70", "25.72")
    kept = check_resting_sell(bot, CYCLE, 1)
    assert kept["action"] == "KEEP"
    assert "above the stop 25.641" in kept["reason"]
    bot.market("25.50", "25.52")
    replaced = check_resting_sell(bot, CYCLE, 1)
    assert replaced["action"] == "REPLACE"
    assert "resting at 26.22, exit at 25.52" in replaced["reason"]


def test_given_a_stop_exit_at_the_front_of_the_asks_then_kept_and_replaced_when_undercut(
    bot: Bot,
) -> None:
    _with_stop_loss(bot)
    bot.bought()
    bot.market("25.50", "25.52")
    _place_sell(bot, consult(bot, CYCLE, Side.SELL, 1))
    assert check_resting_sell(bot, CYCLE, 1)["action"] == "KEEP"
    bot.market("25.30", "25.32")  # the market fell away from the exit
    assert check_resting_sell(bot, CYCLE, 1)["action"] == "REPLACE"


def test_given_no_stop_loss_when_a_resting_sell_is_checked_then_it_is_always_kept(
    bot: Bot,
) -> None:
    _with_stop_loss(bot, None)
    bot.bought()
    _floor_answer(bot)
    _place_sell(bot, consult(bot, CYCLE, Side.SELL, 1))
    bot.market("20.00", "20.02")
    checked = check_resting_sell(bot, CYCLE, 1)
    assert checked == {
        "action": "KEEP",
        "reason": "no stop-loss configured and no re-pricing due",
        "timeout_seconds": 99_999_999,
    }


def test_given_a_stop_exit_under_the_minimum_notional_then_the_sell_goes_at_the_floor(
    bot: Bot,
) -> None:
    _with_stop_loss(bot, "0.5")  # fires at 12.95: 0.384 x ~12 is under minNotional 5
    bot.bought()
    bot.market("12.00", "12.02")
    _floor_answer(bot)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert Decimal(decided["price"]) == FLOOR
    verdicts = [c.verdict for c in bot.repos.consultations.all() if c.leg is Side.SELL]
    assert sorted(verdicts) == ["PLACE", "REJECTED:min_notional"]
