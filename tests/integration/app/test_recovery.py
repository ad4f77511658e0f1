"""Recovery from the exchange alone: empty tables, an account with history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.app.orders import place_order
from flipbot.app.recovery import recover_from_exchange
from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import Cycle
from flipbot.domain.model import Origin, Side

from .conftest import START_MS, Bot


def _history(bot: Bot, *, buy_filled: bool, sell: str | None = None) -> None:
    """Trade a cycle with the bot, then lose every table (a fresh deploy, a lost DB)."""
    bot.repos.cycles.create(
        Cycle(
            "c000004",
            "TRUMPUSDC",
            CycleState.READY_TO_BUY,
            created_ms=START_MS,
            updated_ms=START_MS,
        )
    )
    bot.market("25.95", "25.96")
    place_order(
        bot,
        cycle_id="c000004",
        leg=Side.BUY,
        attempt=2,
        price=Decimal("25.90"),
        quantity=Decimal("0.385"),
        task_token="old-token",
    )
    if buy_filled:
        bot.trade("25.80", "1.000")
    if sell:
        bot.paper.place_order("TRUMPUSDC", "SELL", "LIMIT", "0.384", sell, "GTC", "fb-c000004-S1")
    bot.paper.drain()
    for repo in (bot.repos.cycles, bot.repos.orders, bot.repos.fills):
        _empty(repo)
    bot.workflow.calls.clear()


def _empty(repo: Any) -> None:
    for item in repo._m.scan():
        item.delete()


def _started(bot: Bot) -> dict[str, Any]:
    starts = [c for c in bot.workflow.calls if c[0] == "start"]
    assert len(starts) == 1, bot.workflow.calls
    return starts[0][2]


def test_given_an_open_buy_and_cancel_policy_then_it_is_canceled_and_the_cycle_retries(
    bot: Bot,
) -> None:
    _history(bot, buy_filled=False)
    result = recover_from_exchange(bot)
    assert bot.paper.open_orders("TRUMPUSDC") == []
    assert result["rebuilt_orders"] == 1
    assert result["cycles"] == ["c000004"]
    started = _started(bot)
    assert started == {"cycle_id": "c000004", "attempt": 2, "sell_attempt": 1}


def test_given_an_open_buy_and_wait_policy_then_the_cycle_waits_on_that_order(bot: Bot) -> None:
    _history(bot, buy_filled=False)
    bot.settings = bot.settings.model_copy(update={"recovery_open_buy": "wait"})
    recover_from_exchange(bot)
    assert len(bot.paper.open_orders("TRUMPUSDC")) == 1
    started = _started(bot)
    assert started["resume"] == "WAIT_BUY"
    assert started["attempt"] == 2
    assert Decimal(started["buy_decision"]["price"]) == Decimal("25.90")
    order = bot.repos.orders.get("fb-c000004-B2")
    assert order is not None
    assert order.origin is Origin.SYSTEM
    assert order.cycle_id == "c000004"


def test_given_base_held_from_a_filled_buy_then_the_cycle_resumes_at_the_sell(bot: Bot) -> None:
    _history(bot, buy_filled=True)
    result = recover_from_exchange(bot)
    assert result["repaired_fills"] == 1
    started = _started(bot)
    assert started["resume"] == "CONSULT_SELL"
    assert started["cycle_id"] == "c000004"
    cycle = bot.repos.cycles.get("c000004")
    assert cycle is not None
    assert cycle.state is CycleState.READY_TO_SELL
    assert cycle.entry_price == Decimal("25.90")
    assert cycle.floor_price == Decimal("26.22")


def test_given_an_open_sell_then_the_cycle_waits_on_it_and_old_fills_trigger_nothing(
    bot: Bot,
) -> None:
    _history(bot, buy_filled=True, sell="26.40")
    recover_from_exchange(bot)
    started = _started(bot)
    assert started["resume"] == "WAIT_SELL"
    assert Decimal(started["sell_decision"]["price"]) == Decimal("26.40")
    assert [c[0] for c in bot.workflow.calls] == ["start"]  # no callback for old fills
    assert len(bot.paper.open_orders("TRUMPUSDC")) == 1


def test_given_a_running_cycle_on_lost_records_then_it_is_stopped_and_replaced(bot: Bot) -> None:
    _history(bot, buy_filled=True)
    bot.workflow.running = [("c000004", "arn:execution:c000004")]
    recover_from_exchange(bot)
    assert [c[0] for c in bot.workflow.calls] == ["stop", "start"]


def test_given_an_empty_account_then_the_first_cycle_starts(bot: Bot) -> None:
    bot.market("25.95", "25.96")
    result = recover_from_exchange(bot)
    assert result["cycles"] == []
    assert _started(bot)["cycle_id"] == "c000001"
