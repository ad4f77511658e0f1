"""Circuit breakers pause new buys, with the reason audited, and never a sell.

Real DynamoDB adapter (moto), real python-binance client against the paper exchange.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from flipbot.app.consult import consult
from flipbot.domain.cycle import CycleState
from flipbot.domain.decision import Decision
from flipbot.domain.entities import Cycle, TradeRecord
from flipbot.domain.errors import AiUnavailable
from flipbot.domain.model import Side

from .conftest import START_MS, Bot

CYCLE = "c000002"


def _ready(bot: Bot, **settings: Any) -> None:
    bot.settings = bot.settings.model_copy(update=settings)
    bot.repos.cycles.create(
        Cycle(CYCLE, "TRUMPUSDC", CycleState.READY_TO_BUY, created_ms=START_MS, updated_ms=START_MS)
    )
    bot.market("25.95", "25.96")


def _buy_answer(bot: Bot, price: str = "25.90") -> None:
    bot.decider.answers.append(Decision(action="BUY", base_price=Decimal(price), confidence=0.9))


def _trade(
    bot: Bot, pnl: str, closed_ms: int, *, exit_price: str = "26.50", quantity: str = "0.38"
) -> None:
    bot.repos.trades.add(
        TradeRecord(
            symbol="TRUMPUSDC",
            cycle_id="c000001",
            opened_ms=closed_ms - 60_000,
            closed_ms=closed_ms,
            quantity=Decimal(quantity),
            entry_price=Decimal("26.00"),
            exit_price=Decimal(exit_price),
            spent_quote=Decimal("9.88"),
            received_quote=Decimal("9.88") + Decimal(pnl),
            fees_quote=Decimal(0),
            ai_cost_usd=Decimal(0),
            realized_pnl=Decimal(pnl),
            buy_fill_seconds=1.0,
            sell_fill_seconds=1.0,
        )
    )


def test_given_abnormal_volatility_then_the_buy_pauses_and_no_one_is_asked(bot: Bot) -> None:
    # Given: the market moves 5 % a minute, over the 3 % limit
    _ready(bot, breaker_max_volatility=Decimal("0.03"))
    snapshot = bot.repos.market.get("TRUMPUSDC")
    bot.repos.market.put(replace(snapshot, volatility=0.05))
    # When: the buy leg is consulted
    decided = consult(bot, CYCLE, Side.BUY, 1)
    # Then: it waits with the breaker's reason; the decider is not asked
    assert decided["action"] == "WAIT"
    assert decided["breaker"] == "VOLATILITY"
    assert decided["decided_by"] == "circuit-breaker"
    assert decided["reason"].startswith("circuit breaker VOLATILITY: 1-minute volatility ")
    assert decided["wait_seconds"] == 300  # five re-consultation pauses
    assert bot.decider.requests == []
    (audit,) = bot.repos.consultations.all()
    assert (audit.verdict, audit.decided_by) == ("PAUSED", "circuit-breaker")
    assert audit.extra == {"breaker": "VOLATILITY", "until_ms": "0"}
    assert bot.paper.open_orders("TRUMPUSDC") == []


def test_given_failed_consultations_in_a_row_then_buying_pauses_until_the_cooldown_ends(
    bot: Bot,
) -> None:
    _ready(bot, breaker_max_failures=3, breaker_cooldown_seconds=600)

    def unavailable(_request: Any) -> Decision:
        raise AiUnavailable("timeout")

    bot.decider.decide = unavailable  # type: ignore[method-assign]
    # When: three consultations get no answer, then a fourth is asked for
    for _ in range(3):
        assert "breaker" not in consult(bot, CYCLE, Side.BUY, 1)
        bot.clock.now += 60_000
    paused = consult(bot, CYCLE, Side.BUY, 1)
    # Then: the fourth is paused until 600 s after the last failure
    assert paused["breaker"] == "FAILURES"
    assert paused["wait_seconds"] == 540
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.buy_failures == 3
    # and after the cooldown the decision maker is asked again; an answer resets the count
    bot.clock.now += 600_000
    bot.decider.decide = type(bot.decider).decide.__get__(bot.decider)  # type: ignore[method-assign]
    _buy_answer(bot)
    assert consult(bot, CYCLE, Side.BUY, 1)["action"] == "PLACE"
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.buy_failures == 0


def test_given_answers_the_guards_refuse_then_they_count_as_failures(bot: Bot) -> None:
    _ready(bot, breaker_max_failures=2)
    for _ in range(2):
        _buy_answer(bot, "30.00")  # above the ask: refused by the spread guard
        assert consult(bot, CYCLE, Side.BUY, 1)["guard"] == "spread"
    assert consult(bot, CYCLE, Side.BUY, 1)["breaker"] == "FAILURES"


def test_given_a_plain_wait_between_failures_then_the_count_starts_again(bot: Bot) -> None:
    _ready(bot, breaker_max_failures=2)
    _buy_answer(bot, "30.00")
    consult(bot, CYCLE, Side.BUY, 1)
    bot.decider.answers.append(Decision(action="WAIT", base_price=Decimal("25"), confidence=0.5))
    consult(bot, CYCLE, Side.BUY, 1)
    _buy_answer(bot, "30.00")
    assert "breaker" not in consult(bot, CYCLE, Side.BUY, 1)


def test_given_the_days_loss_then_buys_pause_until_midnight_at_most_an_hour_at_a_time(
    bot: Bot,
) -> None:
    bot.clock.now += 12 * 3_600_000  # noon
    _ready(bot, breaker_daily_loss=Decimal("1"))
    _trade(bot, "-1.2", bot.clock.now - 60_000, exit_price="26.10")
    paused = consult(bot, CYCLE, Side.BUY, 1)
    assert paused["breaker"] == "DAILY_LOSS"
    assert paused["wait_seconds"] == 3600
    (audit,) = bot.repos.consultations.all()
    until = int(audit.extra["until_ms"])
    assert until % 86_400_000 == 0
    assert 0 < until - bot.clock.now <= 86_400_000


def test_given_a_stop_loss_exit_then_buys_pause_for_its_cooldown(bot: Bot) -> None:
    _ready(bot, breaker_stop_loss_cooldown_seconds=3600)
    _trade(bot, "-0.2", bot.clock.now - 600_000, exit_price="25.70")  # under its entry
    paused = consult(bot, CYCLE, Side.BUY, 1)
    assert paused["breaker"] == "STOP_LOSS_COOLDOWN"
    assert paused["wait_seconds"] == 3000
    bot.clock.now += 3_000_000
    _buy_answer(bot)
    assert consult(bot, CYCLE, Side.BUY, 1)["action"] == "PLACE"


def test_given_a_breaker_holding_then_a_cycle_that_holds_a_position_still_sells(
    bot: Bot,
) -> None:
    # Given: c000002 bought; then the market turns wild
    bot.bought(CYCLE)
    snapshot = bot.repos.market.get("TRUMPUSDC")
    bot.repos.market.put(replace(snapshot, volatility=0.05))
    # When: the sell leg is consulted
    bot.decider.answers.append(
        Decision(action="SELL", base_price=Decimal("27.25"), confidence=0.95)
    )
    decided = consult(bot, CYCLE, Side.SELL, 1)
    # Then: the sell is placed as usual
    assert decided["action"] == "PLACE"
    assert "breaker" not in decided


def test_given_closed_trades_then_each_leg_is_told_how_they_went(bot: Bot) -> None:
    # Given: the last trade lost 0.20 after a stop-loss, long enough ago for no pause
    _ready(bot)
    _trade(bot, "-0.2", bot.clock.now - 7_200_000, exit_price="25.70")
    _buy_answer(bot)
    # When: the buy leg is consulted
    consult(bot, CYCLE, Side.BUY, 1)
    # Then: the decision maker is told the trades' figures
    context = bot.decider.requests[0].trading_context
    assert context is not None
    assert (context.trades, context.last_profit, context.success_rate) == (
        1,
        Decimal("-0.2"),
        0.0,
    )
    assert context.avg_fill_time == 1.0


def test_given_a_cycle_that_sold_nothing_then_it_is_not_taken_for_a_stop_loss(bot: Bot) -> None:
    # Given: the last cycle ended with dust only: nothing sold, its exit price 0
    _ready(bot, breaker_stop_loss_cooldown_seconds=3600)
    _trade(bot, "-0.01", bot.clock.now - 600_000, exit_price="0", quantity="0")
    _buy_answer(bot)
    # When / Then: the buy is consulted as usual
    assert consult(bot, CYCLE, Side.BUY, 1)["action"] == "PLACE"
