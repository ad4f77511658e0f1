"""Manual orders: a filled MANUAL BUY is followed by one SYSTEM SELL; nothing loops."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.fills import apply_order_update
from flipbot.app.manual import follow_manual_buy
from flipbot.domain.model import Origin

from .conftest import Bot, StaticKillSwitch


def _deliver(bot: Bot, *, twice: bool = False) -> list[dict[str, Any]]:
    updates = bot.updates()
    if twice:
        updates += updates
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


def _manual_buy(bot: Bot, price: str = "25.90", qty: str = "0.500") -> None:
    bot.market("25.95", "25.96")
    bot.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", qty, price, "GTC", "by-hand-1")


def test_given_a_manual_buy_filled_twice_delivered_then_one_system_sell_at_the_floor(
    bot: Bot,
) -> None:
    _manual_buy(bot)
    bot.trade("25.80", "2.000")
    results = _deliver(bot, twice=True)
    placed = [r["follow_up"] for r in results if r.get("follow_up", {}).get("action") == "placed"]
    assert len(placed) == 1
    sells = [o for o in bot.paper.open_orders("TRUMPUSDC") if o["side"] == "SELL"]
    assert len(sells) == 1
    # 25.90 x (1 + 0.001 + 0.001 + 0.01) = 26.2108 -> 26.22; 0.5 less 0.0005 fee -> 0.499
    assert Decimal(sells[0]["price"]) == Decimal("26.22")
    assert Decimal(sells[0]["origQty"]) == Decimal("0.499")
    follow = bot.repos.orders.get(placed[0]["client_order_id"])
    assert follow is not None
    assert follow.origin is Origin.SYSTEM
    assert follow.floor_price == Decimal("26.22")


def test_given_the_system_sell_fills_then_nothing_more_is_placed(bot: Bot) -> None:
    _manual_buy(bot)
    bot.trade("25.80", "2.000")
    _deliver(bot)
    bot.trade("26.40", "2.000", taker_sold=False)
    results = _deliver(bot)
    assert all("follow_up" not in r for r in results)
    assert bot.paper.open_orders("TRUMPUSDC") == []
    assert len(bot.paper.all_orders("TRUMPUSDC")) == 2


def test_given_a_manual_sell_fills_then_nothing_is_placed(bot: Bot) -> None:
    bot.market("25.95", "25.96")
    bot.paper.deposit("TRUMP", "1")
    bot.paper.place_order("TRUMPUSDC", "SELL", "LIMIT", "0.500", "26.00", "GTC", "by-hand-2")
    bot.trade("26.10", "2.000", taker_sold=False)
    results = _deliver(bot)
    assert [r["follow_up"]["action"] for r in results if "follow_up" in r] == ["none"]
    assert len(bot.paper.all_orders("TRUMPUSDC")) == 1


def test_given_dry_run_then_the_sell_is_recorded_not_placed(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot.settings = bot.settings.model_copy(update={"manual_dry_run": True})
    _manual_buy(bot)
    bot.trade("25.80", "2.000")
    results = _deliver(bot)
    follow = [r["follow_up"] for r in results if "follow_up" in r]
    assert follow == [
        {
            "action": "dry_run",
            "client_order_id": follow[0]["client_order_id"],
            "price": "26.22",
            "quantity": "0.499",
        }
    ]
    assert [o["side"] for o in bot.paper.all_orders("TRUMPUSDC")] == ["BUY"]
    record = bot.repos.orders.get(follow[0]["client_order_id"])
    assert record is not None
    assert record.status == "DRY_RUN"


def test_given_the_kill_switch_is_on_then_a_filled_manual_buy_places_no_sell(bot: Bot) -> None:
    bot.kill_switch = StaticKillSwitch(True)
    _manual_buy(bot)
    bot.trade("25.80", "2.000")
    results = _deliver(bot)
    follow = [r["follow_up"] for r in results if "follow_up" in r]
    assert follow == [{"action": "none", "reason": "kill switch engaged: no sell is placed"}]
    assert [o["side"] for o in bot.paper.all_orders("TRUMPUSDC")] == ["BUY"]
