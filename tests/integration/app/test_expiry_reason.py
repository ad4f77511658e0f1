"""An order the exchange expires keeps Binance's reason on its stored record: ``eR`` from
its update, or ``expiryReason`` from the REST view reconcile reads when the update was
lost."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.fills import apply_order_update
from flipbot.app.reconcile import reconcile_open_orders

from .conftest import Bot


def _place_buy(bot: Bot) -> dict[str, Any]:
    """c000001's buy of 0.385 at 25.90 rests on the exchange (token-1)."""
    return bot.first_buy()


def test_given_a_buy_the_exchange_expires_then_its_record_keeps_the_expiry_reason(
    bot: Bot,
) -> None:
    placed = _place_buy(bot)
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


@pytest.mark.parametrize("filled", ["0", "0.100"])
def test_given_a_buy_expired_while_its_updates_were_lost_when_reconciled_then_it_says_why(
    bot: Bot, filled: str
) -> None:
    placed = _place_buy(bot)
    if filled != "0":
        bot.trade("25.89", filled)
    # When the exchange ends the order itself and the stream loses every update of it
    bot.paper.expire_order("TRUMPUSDC", placed["order_id"], "INSUFFICIENT_LIQUIDITY")
    bot.updates()
    reconcile_open_orders(bot)

    # Then reconcile, reading the order over REST, records that it expired and why
    stored = bot.repos.orders.get("fb-c000001-B1")
    assert stored is not None
    assert (stored.status, stored.expiry_reason) == ("EXPIRED", "INSUFFICIENT_LIQUIDITY")
    assert stored.executed_qty == Decimal(filled)
    if filled == "0":  # the execution is told why its buy ended without a fill
        assert [call[:2] for call in bot.workflow.calls] == [("failure", "token-1")]
        assert bot.workflow.causes == [
            "order fb-c000001-B1 ended EXPIRED (INSUFFICIENT_LIQUIDITY) on the exchange "
            "without a fill"
        ]
    else:  # what it bought is the leg's outcome
        assert [call[:2] for call in bot.workflow.calls] == [("success", "token-1")]


def test_given_an_expiry_confirmed_with_the_exchange_then_the_exchanges_reason_is_kept(
    bot: Bot,
) -> None:
    # Given a buy partly filled, then ended by the exchange; its update reaches the function
    # without the reason (an older listener, or a report that did not carry eR)
    placed = _place_buy(bot)
    bot.trade("25.89", "0.100")
    bot.paper.expire_order("TRUMPUSDC", placed["order_id"], "INSUFFICIENT_LIQUIDITY")
    updates = [u.model_copy(update={"expiry_reason": ""}) for u in bot.updates()]
    # When each is confirmed with the exchange before it is booked
    for update in updates:
        apply_order_update(
            update, bot.repos, bot.workflow, bot.clock.now, confirm_with=lambda: bot.exchange
        )
    # Then the record holds the exchange's word: expired, why, and the fill it made
    stored = bot.repos.orders.get("fb-c000001-B1")
    assert stored is not None
    assert (stored.status, stored.expiry_reason) == ("EXPIRED", "INSUFFICIENT_LIQUIDITY")
    assert stored.executed_qty == Decimal("0.100")
    assert [call[0] for call in bot.workflow.calls] == ["success"]
