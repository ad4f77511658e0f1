"""Order updates the bot did not cause: a manual buy on another symbol, and forged fills.

A filled MANUAL BUY is followed by a sell only when it is on the bot's symbol and the
exchange confirms it: the order is known there, FILLED, and of the quantity recorded.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.app.fills import apply_order_update
from flipbot.app.manual import follow_manual_buy
from flipbot.events import OrderUpdated
from flipbot_dev.paper.engine import PaperExchange
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.paper.transport import make_client

from .conftest import KEY, SECRET, START_MS, Bot


def _deliver(bot: Bot, updates: list[OrderUpdated]) -> list[dict[str, Any]]:
    return [
        apply_order_update(
            u,
            bot.repos,
            bot.workflow,
            bot.clock.now,
            follow_manual=lambda o, f: follow_manual_buy(bot, o, f),
        )
        for u in updates
    ]


def _sells(bot: Bot, symbol: str = "TRUMPUSDC") -> list[dict[str, Any]]:
    return [o for o in bot.paper.all_orders(symbol) if o["side"] == "SELL"]


def _forged_fill(
    client_order_id: str, *, order_id: int = 987_654, qty: str = "20", price: str = "25.00"
) -> OrderUpdated:
    q, p = Decimal(qty), Decimal(price)
    return OrderUpdated(
        symbol="TRUMPUSDC",
        order_id=order_id,
        client_order_id=client_order_id,
        side="BUY",
        order_type="LIMIT",
        status="FILLED",
        execution_type="TRADE",
        price=p,
        orig_qty=q,
        executed_qty=q,
        cumulative_quote_qty=q * p,
        last_qty=q,
        last_price=p,
        last_quote_qty=q * p,
        commission=Decimal(0),
        commission_asset="TRUMP",
        trade_id=555_000_001,
        is_maker=True,
        event_time_ms=START_MS,
        transaction_time_ms=START_MS,
    )


def _two_symbol_exchange(bot: Bot) -> None:
    """The account trades BTCUSDC too, by hand: the exchange lists both symbols."""
    paper = PaperExchange(
        ["TRUMPUSDC", "BTCUSDC"], clock=bot.clock.now_ms, balances={"USDC": "1000"}
    )
    bot.paper = paper
    app = BinanceRestApp(paper, api_key=KEY, api_secret=SECRET)
    bot.exchange = BinanceExchange(make_client(app, KEY, SECRET))


def test_given_a_manual_buy_filled_on_another_symbol_then_no_sell_is_placed(bot: Bot) -> None:
    # Given the account buys BTC by hand on BTCUSDC while the bot trades TRUMPUSDC
    _two_symbol_exchange(bot)
    bot.paper.on_book(bot.clock.now, "60000", "1", "60001", "1", symbol="BTCUSDC")
    bot.paper.place_order("BTCUSDC", "BUY", "LIMIT", "0.00100", "59990", "GTC", "by-hand-btc")
    bot.clock.now += 1_000
    bot.paper.on_trade(bot.clock.now, "59980", "1", True, symbol="BTCUSDC")
    # When its fill is delivered
    results = _deliver(bot, bot.updates())
    # Then the bot places nothing on BTCUSDC, and says why
    assert _sells(bot, "BTCUSDC") == []
    follow = [r["follow_up"] for r in results if "follow_up" in r]
    assert [f["action"] for f in follow] == ["ignored"]
    assert "BTCUSDC" in follow[0]["reason"]


def test_given_a_forged_fill_of_an_order_the_exchange_does_not_know_then_nothing_is_placed(
    bot: Bot,
) -> None:
    # Given the account holds TRUMP, and a FILLED event for an order nobody placed arrives
    bot.market("25.95", "25.96")
    bot.paper.deposit("TRUMP", "25")
    results = _deliver(bot, [_forged_fill("by-hand-ghost")])
    # Then no sell is placed: the exchange does not know the order
    assert _sells(bot) == []
    assert results[0]["follow_up"]["action"] == "unconfirmed"
    assert "by-hand-ghost" in results[0]["follow_up"]["reason"]


def test_given_a_forged_fill_of_a_resting_manual_buy_then_nothing_is_placed(bot: Bot) -> None:
    # Given a manual buy rests unfilled on the book
    bot.market("25.95", "25.96")
    bot.paper.deposit("TRUMP", "25")
    bot.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "0.500", "25.00", "GTC", "by-hand-2")
    order_id = int(bot.paper.all_orders("TRUMPUSDC")[0]["orderId"])
    bot.updates()
    # When a FILLED event claims it filled
    results = _deliver(bot, [_forged_fill("by-hand-2", order_id=order_id, qty="0.500")])
    # Then nothing is placed: the exchange says it still rests
    assert _sells(bot) == []
    assert results[0]["follow_up"]["action"] == "unconfirmed"


def test_given_a_forged_fill_claiming_more_than_the_exchange_filled_then_nothing_is_placed(
    bot: Bot,
) -> None:
    # Given a manual buy of 0.5 that filled on the exchange, its own event not yet delivered
    bot.market("25.95", "25.96")
    bot.paper.deposit("TRUMP", "25")
    bot.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "0.500", "25.90", "GTC", "by-hand-3")
    bot.trade("25.80", "2.000")
    order_id = int(bot.paper.all_orders("TRUMPUSDC")[0]["orderId"])
    # When a FILLED event for that order claims 20 bought
    results = _deliver(bot, [_forged_fill("by-hand-3", order_id=order_id, qty="20")])
    # Then no sell of 20 (nor of anything) is placed on that claim
    assert _sells(bot) == []
    assert results[0]["follow_up"]["action"] == "unconfirmed"


def _bot_buy_resting(bot: Bot) -> int:
    """A cycle's buy of 0.385 at 25.90 rests on the book, its task token waiting."""
    placed = bot.first_buy()
    bot.updates()
    return int(placed["order_id"])


def _confirmed(bot: Bot, updates: list[OrderUpdated]) -> list[dict[str, Any]]:
    return [
        apply_order_update(
            u, bot.repos, bot.workflow, bot.clock.now, confirm_with=lambda: bot.exchange
        )
        for u in updates
    ]


def test_given_a_forged_fill_of_the_bots_resting_buy_then_the_cycle_is_not_resumed(
    bot: Bot,
) -> None:
    # Given the bot's buy rests unfilled on the book, its cycle waiting for the fill
    order_id = _bot_buy_resting(bot)
    # When a FILLED event with the buy's own ids, but a trade the exchange never made, arrives
    forged = _forged_fill("fb-c000001-B1", order_id=order_id, qty="0.385", price="25.90")
    results = _confirmed(bot, [forged])
    # Then nothing is recorded and the waiting cycle is not resumed
    assert results[0]["action"] == "unconfirmed"
    assert "fb-c000001-B1" in results[0]["reason"]
    assert bot.repos.fills.for_order("fb-c000001-B1") == []
    assert bot.repos.orders.get("fb-c000001-B1").status == "NEW"  # type: ignore[union-attr]
    assert [c for c in bot.workflow.calls if c[0] in ("success", "failure")] == []


def test_given_a_forged_fill_beside_a_real_one_then_only_the_exchanges_trade_is_booked(
    bot: Bot,
) -> None:
    # Given the bot's buy filled on the exchange, and its real event is on its way
    order_id = _bot_buy_resting(bot)
    bot.trade("25.80", "2.000")
    real = bot.updates()
    # When a forged fill with another trade id arrives first, then the real one
    forged = _forged_fill("fb-c000001-B1", order_id=order_id, qty="0.385", price="25.90")
    results = _confirmed(bot, [forged, *real])
    # Then the forged one is refused; the cycle resumes once, on the exchange's trade alone
    assert results[0]["action"] == "unconfirmed"
    fills = bot.repos.fills.for_order("fb-c000001-B1")
    assert [f.trade_id for f in fills] == [
        t.trade_id for t in bot.exchange.my_trades("TRUMPUSDC", order_id=order_id)
    ]
    assert sum(f.qty for f in fills) == Decimal("0.385")
    resumed = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(resumed) == 1
    assert Decimal(resumed[0][2]["executed_qty"]) == Decimal("0.385")
