"""Two stacks on one Binance account: each names its orders with its own prefix.

Both stacks number their cycles from ``c000001``; their listeners both hear every
executionReport of the account. Stack A must take none of stack B's orders for its own,
nor for a manual buy to follow, and the other way round.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from flipbot.adapters.dynamodb import repositories
from flipbot.app.fills import apply_order_update
from flipbot.app.manual import follow_manual_buy
from flipbot.app.recovery import recover_from_exchange
from flipbot.domain.model import Origin
from flipbot.events import OrderUpdated
from flipbot.settings import Tables

from .conftest import Bot, RecordingWorkflow, create_tables

PREFIX_A, PREFIX_B = "fb1a1a1a1a", "fb2b2b2b2b"


@pytest.fixture
def stacks(bot: Bot) -> tuple[Bot, Bot]:
    """Stack A and stack B: their own tables, prefix and workflow; one account."""
    a = replace(bot, settings=bot.settings.model_copy(update={"order_id_prefix": PREFIX_A}))
    tables = Tables(
        cycles="b-cycles",
        orders="b-orders",
        fills="b-fills",
        trades="b-trades",
        consultations="b-consultations",
        market="b-market",
    )
    settings_b = bot.settings.model_copy(update={"order_id_prefix": PREFIX_B, "tables": tables})
    create_tables(settings_b)
    b = replace(
        bot,
        settings=settings_b,
        repos=repositories(tables, region="us-east-1"),
        workflow=RecordingWorkflow(),
    )
    return a, b


def _buy_resting(stack: Bot, price: str, token: str) -> dict[str, Any]:
    """The stack's first cycle places its first buy of 0.385 at ``price``."""
    return stack.first_buy(price=price, token=token)


def _empty(repo: Any) -> None:
    for item in repo._m.scan():
        item.delete()


def _deliver(stack: Bot, updates: list[OrderUpdated]) -> list[dict[str, Any]]:
    """What the stack's OnOrderUpdate function does with each update."""
    return [
        apply_order_update(
            u,
            stack.repos,
            stack.workflow,
            stack.clock.now,
            follow_manual=lambda o, f: follow_manual_buy(stack, o, f),
            confirm_with=lambda: stack.exchange,
            order_id_prefix=stack.settings.order_id_prefix,
        )
        for u in updates
    ]


def test_given_two_stacks_buying_in_their_first_cycle_then_neither_takes_the_others_fill(
    stacks: tuple[Bot, Bot],
) -> None:
    a, b = stacks
    # Given both stacks' first cycles rest a buy on the one account: A at 25.70, B at 25.90
    placed_a = _buy_resting(a, "25.70", "token-a")
    placed_b = _buy_resting(b, "25.90", "token-b")
    assert placed_a["client_order_id"] == f"{PREFIX_A}-c000001-B1"
    assert placed_b["client_order_id"] == f"{PREFIX_B}-c000001-B1"
    assert placed_a["order_id"] != placed_b["order_id"]
    # When a trade at 25.80 fills B's buy only, and both stacks hear every report so far
    a.trade("25.80", "2.000")
    updates = a.updates()
    results_a = _deliver(a, updates)
    results_b = _deliver(b, updates)
    # Then each applies its own reports and ignores the other's
    coid_a, coid_b = placed_a["client_order_id"], placed_b["client_order_id"]
    assert [(r["client_order_id"], r.get("action")) for r in results_a] == [
        (coid_a, None),
        (coid_b, "ignored"),
        (coid_b, "ignored"),
    ]
    assert f"prefix {PREFIX_B!r}" in results_a[-1]["reason"]
    assert [(r["client_order_id"], r.get("action")) for r in results_b] == [
        (coid_a, "ignored"),
        (coid_b, None),
        (coid_b, None),
    ]
    # And A keeps none of B's order: not in its books, not followed as manual; its cycle waits
    assert a.repos.orders.get(placed_b["client_order_id"]) is None
    assert a.repos.fills.for_order(placed_b["client_order_id"]) == []
    own = a.repos.orders.get(placed_a["client_order_id"])
    assert own is not None
    assert own.status == "NEW"
    assert a.workflow.calls == []
    assert [o["side"] for o in a.paper.all_orders("TRUMPUSDC")] == ["BUY", "BUY"]
    # And B books its fill and resumes its own cycle, once
    assert [c[:2] for c in b.workflow.calls] == [("success", "token-b")]
    filled = b.repos.orders.get(placed_b["client_order_id"])
    assert filled is not None
    assert filled.status == "FILLED"


def test_given_another_stack_s_follow_up_sell_fills_then_it_is_not_taken_for_a_manual_order(
    stacks: tuple[Bot, Bot],
) -> None:
    a, b = stacks
    # Given B follows a manual buy with its sell <prefix B>-m<orderId>, resting on the book
    b.market("25.95", "25.96")
    b.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "0.500", "25.90", "GTC", "by-hand-1")
    b.trade("25.80", "2.000")
    followed = [r["follow_up"] for r in _deliver(b, b.updates()) if "follow_up" in r]
    assert [f["action"] for f in followed] == ["placed"]
    sell_b = followed[0]["client_order_id"]
    assert sell_b.startswith(f"{PREFIX_B}-m")
    # When that sell fills, and A hears its reports
    b.trade("26.40", "2.000", taker_sold=False)
    results_a = _deliver(a, b.updates())
    # Then A records nothing of it and places nothing
    assert results_a
    assert [r["action"] for r in results_a] == ["ignored"] * len(results_a)
    assert a.repos.orders.get(sell_b) is None
    assert [o["clientOrderId"] for o in a.paper.all_orders("TRUMPUSDC")] == ["by-hand-1", sell_b]


def test_given_both_stacks_history_on_the_account_then_recovery_rebuilds_only_its_own(
    stacks: tuple[Bot, Bot],
) -> None:
    a, b = stacks
    # Given both stacks bought in their first cycle, and a manual buy rests on the book
    _buy_resting(a, "25.90", "token-a")
    _buy_resting(b, "25.90", "token-b")
    a.trade("25.80", "2.000")
    a.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "0.300", "25.50", "GTC", "web_by_hand")
    a.paper.drain()
    # When A has lost its tables and recovers from the exchange alone
    for repo in (a.repos.cycles, a.repos.orders, a.repos.fills):
        _empty(repo)
    result = recover_from_exchange(a)
    # Then it rebuilds its own buy and the manual one, none of B's orders or fills
    orders = {o.client_order_id: o.origin for o in a.repos.orders.all()}
    assert orders == {f"{PREFIX_A}-c000001-B1": Origin.SYSTEM, "web_by_hand": Origin.MANUAL}
    assert a.repos.fills.for_order(f"{PREFIX_B}-c000001-B1") == []
    assert result["cycles"] == ["c000001"]
    cycle = a.repos.cycles.get("c000001")
    assert cycle is not None
    assert cycle.buy_order_ids == (f"{PREFIX_A}-c000001-B1",)
    assert cycle.bought_qty == Decimal("0.385")


def test_given_an_order_placed_before_the_stack_had_its_prefix_then_its_fill_is_still_its_own(
    bot: Bot,
) -> None:
    # Given the stack's buy rests under the plain prefix of a stack deployed before prefixes
    placed = _buy_resting(bot, "25.90", "token-old")
    assert placed["client_order_id"] == "fb-c000001-B1"
    # When the stack is updated (its own prefix now) and the buy fills
    upgraded = replace(bot, settings=bot.settings.model_copy(update={"order_id_prefix": PREFIX_A}))
    upgraded.trade("25.80", "2.000")
    results = _deliver(upgraded, upgraded.updates())
    # Then the order in its books is applied as its own and its cycle resumes
    assert all("action" not in r for r in results)
    assert [c[:2] for c in upgraded.workflow.calls] == [("success", "token-old")]
