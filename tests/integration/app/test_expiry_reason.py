"""An order the exchange expires keeps Binance's reason (``eR``) on its stored record."""

from __future__ import annotations

from decimal import Decimal

from flipbot.app.fills import apply_order_update
from flipbot.app.orders import place_order
from flipbot.app.records import Cycle
from flipbot.domain.cycle import CycleState
from flipbot.domain.model import Side

from .conftest import START_MS, Bot


def test_given_a_buy_the_exchange_expires_then_its_record_keeps_the_expiry_reason(
    bot: Bot,
) -> None:
    bot.repos.cycles.create(
        Cycle("c000001", "TRUMPUSDC", CycleState.READY_TO_BUY, START_MS, START_MS)
    )
    bot.market("25.95", "25.96")
    placed = place_order(
        bot,
        cycle_id="c000001",
        leg=Side.BUY,
        attempt=1,
        price=Decimal("25.90"),
        quantity=Decimal("0.385"),
        task_token="token-1",
    )
    bot.trade("25.89", "0.100")  # partly filled

    # When the exchange ends the rest of the order itself
    bot.paper.expire_order("TRUMPUSDC", placed["order_id"], "EXCHANGE_CANCELED")
    updates = bot.updates()
    for update in updates:
        apply_order_update(update, bot.repos, bot.workflow, bot.clock.now)
    apply_order_update(updates[0], bot.repos, bot.workflow, bot.clock.now)  # a late duplicate

    # Then the stored order says it expired and why, and a later update does not erase it
    stored = bot.repos.orders.get("fb-c000001-B1")
    assert stored is not None
    assert (stored.status, stored.expiry_reason) == ("EXPIRED", "EXCHANGE_CANCELED")
    assert stored.executed_qty == Decimal("0.100")
    assert [call[0] for call in bot.workflow.calls] == ["success"]
