"""The risk manager in the consult, whoever priced the buy: a buy is cut to its share of
the book's depth, lowered to the fair price plus the slippage allowance, and every sell's
floor keeps the minimum margin after fees. The decision maker is told the book's top
levels. Real DynamoDB adapter (moto), real python-binance client against the paper
exchange (its depth is the top of the book)."""

from __future__ import annotations

from decimal import Decimal

from flipbot.app.consult import consult
from flipbot.domain.decision import Decision
from flipbot.domain.model import Side

from .conftest import Bot

CYCLE = "c000001"


def _buy_answer(bot: Bot, price: str = "25.90") -> None:
    bot.decider.answers.append(Decision(action="BUY", base_price=Decimal(price), confidence=0.9))


def _audit(bot: Bot, decided: dict[str, object]) -> dict[str, str]:
    record = bot.repos.consultations.get(str(decided["consultation_id"]))
    assert record is not None
    return record.extra


def test_the_buy_leg_is_told_the_book_top_levels_and_the_audit_keeps_the_checks(bot: Bot) -> None:
    bot.market("25.95", "25.96")
    _buy_answer(bot)
    decided = consult(bot, CYCLE, Side.BUY, 1)
    assert (decided["price"], decided["quantity"]) == ("25.90", "0.386")
    (request,) = bot.decider.requests
    assert request.depth is not None
    assert request.depth.bids[0] == (Decimal("25.95"), Decimal("50"))
    extra = _audit(bot, decided)
    assert Decimal(extra["risk.depth_qty"]) == 50
    assert extra["risk.slippage_cap"] == "26.00"  # the mid 25.955 x 1.002, on the tick


def test_given_a_thin_book_then_the_buy_is_cut_to_its_share_of_the_depth(bot: Bot) -> None:
    bot.settings = bot.settings.model_copy(update={"quote_per_cycle": Decimal("60")})
    bot.market("25.95", "25.96")
    bot.paper.on_book(bot.clock.now, "25.95", "12", "25.96", "50")
    _buy_answer(bot)
    decided = consult(bot, CYCLE, Side.BUY, 1)
    assert decided["quantity"] == "1.200"  # 10 % of the 12 bid, not 60 / 25.90 = 2.316
    assert "quantity 2.316 cut to 1.200" in str(decided["reason"])
    assert "cut to 1.200" in _audit(bot, decided)["risk.size.change"]


def test_given_a_wide_spread_then_a_buy_over_the_mid_is_lowered_to_the_slippage_cap(
    bot: Bot,
) -> None:
    bot.market("25.00", "26.00")  # mid 25.50
    _buy_answer(bot, "25.90")
    decided = consult(bot, CYCLE, Side.BUY, 1)
    assert decided["price"] == "25.55", decided["reason"]  # 25.50 x 1.002 = 25.551, on the tick
    change = _audit(bot, decided)["risk.slippage.change"]
    assert change.startswith("price 25.90 capped at 25.55 (fair 25.5")


def test_the_floor_keeps_the_minimum_margin_after_fees(bot: Bot) -> None:
    bot.settings = bot.settings.model_copy(update={"min_profit": Decimal("0.001")})
    bot.bought()
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("27"), confidence=0.9))
    consult(bot, CYCLE, Side.SELL, 1)
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    # 25.90 x (1 + 0.002 fees + 0.003 minimum margin) = 26.0295 -> 26.03, not 25.98
    assert cycle.floor_price == Decimal("26.03")
    assert bot.decider.requests[0].min_profit == Decimal("0.003")
