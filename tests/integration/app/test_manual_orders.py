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
    # 25.90 x (1 + 0.01) = 26.159 -> 26.16, above the fee floor; 0.5 less 0.0005 fee -> 0.499
    assert Decimal(sells[0]["price"]) == Decimal("26.16")
    assert Decimal(sells[0]["origQty"]) == Decimal("0.499")
    follow = bot.repos.orders.get(placed[0]["client_order_id"])
    assert follow is not None
    assert follow.origin is Origin.SYSTEM
    # the floor it was checked against: 25.90 x (1 + 0.001 + 0.001) = 25.9518 -> 25.96
    assert follow.floor_price == Decimal("25.96")


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
            "price": "26.16",
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


def _sells(bot: Bot) -> list[dict[str, Any]]:
    return [o for o in bot.paper.open_orders("TRUMPUSDC") if o["side"] == "SELL"]


def _manual_buy_filled_at_10(bot: Bot) -> list[dict[str, Any]]:
    """A manual buy of 1 at 10.00 rests, then fills; no bid reaches the sell prices at stake."""
    bot.market("9.99", "10.01")
    bot.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "1.000", "10.00", "GTC", "by-hand-10")
    bot.trade("9.95", "2.000")
    return [r["follow_up"] for r in _deliver(bot) if "follow_up" in r]


def test_given_fees_of_0_1_percent_and_a_margin_of_1_percent_then_a_manual_buy_at_10_sells_at_10_10(
    bot: Bot,
) -> None:
    # Given fees of 0.1 % each way and ManualSellMargin 0.01 (the defaults)
    assert bot.settings.manual_sell_margin == Decimal("0.01")
    # When a manual buy of 1 at 10.00 fills
    follow = _manual_buy_filled_at_10(bot)
    # Then the follow-up sell is at 10.00 x 1.01 = 10.10, the fees not added to the margin
    assert [f["action"] for f in follow] == ["placed"]
    assert follow[0]["price"] == "10.10"
    assert "reason" not in follow[0]
    assert [Decimal(o["price"]) for o in _sells(bot)] == [Decimal("10.10")]
    record = bot.repos.orders.get(follow[0]["client_order_id"])
    assert record is not None
    assert record.floor_price == Decimal("10.02")  # 10.00 x (1 + 0.001 + 0.001)


@pytest.mark.parametrize("margin", ["0.001", "0"])
def test_given_a_margin_below_the_fee_floor_then_the_follow_up_sells_at_the_floor_and_says_so(
    bot: Bot, margin: str
) -> None:
    # Given a margin that does not cover the round-trip fees (0.1 % each way)
    bot.settings = bot.settings.model_copy(update={"manual_sell_margin": Decimal(margin)})
    # When a manual buy of 1 at 10.00 fills
    follow = _manual_buy_filled_at_10(bot)
    # Then the sell rests at the floor, 10.00 x (1 + 0.002) = 10.02, never below it
    assert [f["action"] for f in follow] == ["placed"]
    assert follow[0]["price"] == "10.02"
    assert [Decimal(o["price"]) for o in _sells(bot)] == [Decimal("10.02")]
    # And the result the handler logs says why
    assert "below the floor 10.02" in follow[0]["reason"]
    assert "the sell is priced at the floor" in follow[0]["reason"]
