"""The no_action_on_unconfirmed_fill invariant: the books and the bot's orders stand on
fills the exchange made, never on one an event merely claimed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import Cycle, OrderRecord
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import Fill, Origin, Side
from flipbot_dev.twin.report import unconfirmed_actions

D = Decimal
RULES = SymbolRules("TRUMPUSDC", "TRUMP", "USDC", step_size=D("0.001"), min_notional=D("5"))


def _exchange(buy_status: str = "FILLED") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The cycle's buy of 0.385 (filled unless told) and its sell of 0.384 resting."""
    filled = "0.385" if buy_status == "FILLED" else "0"
    orders = [
        {
            "orderId": 11,
            "clientOrderId": "fb-c000001-B1",
            "side": "BUY",
            "status": buy_status,
            "origQty": "0.385",
            "executedQty": filled,
        },
        {
            "orderId": 12,
            "clientOrderId": "fb-c000001-S1",
            "side": "SELL",
            "status": "NEW",
            "origQty": "0.384",
            "executedQty": "0",
        },
    ]
    trades = (
        [
            {
                "orderId": 11,
                "id": 501,
                "qty": "0.385",
                "commission": "0.000385",
                "commissionAsset": "TRUMP",
            }
        ]
        if buy_status == "FILLED"
        else []
    )
    return orders, trades


def _books(buy_status: str = "FILLED", trade_id: int = 501) -> tuple[list[Any], list[Any]]:
    orders = [
        OrderRecord(
            "fb-c000001-B1",
            "TRUMPUSDC",
            Side.BUY,
            D("25.90"),
            D("0.385"),
            cycle_id="c000001",
            status=buy_status,
            order_id=11,
            executed_qty=D("0.385") if buy_status == "FILLED" else D(0),
        ),
        OrderRecord(
            "fb-c000001-S1",
            "TRUMPUSDC",
            Side.SELL,
            D("26.50"),
            D("0.384"),
            cycle_id="c000001",
            status="NEW",
            order_id=12,
        ),
    ]
    fill = Fill(
        "TRUMPUSDC",
        11,
        "fb-c000001-B1",
        trade_id,
        Side.BUY,
        D("25.90"),
        D("0.385"),
        D("9.97"),
        D("0.000385"),
        "TRUMP",
        True,
        1,
    )
    return orders, [fill] if buy_status == "FILLED" else []


def _cycle() -> Cycle:
    return Cycle(
        "c000001",
        "TRUMPUSDC",
        CycleState.SELLING,
        created_ms=0,
        updated_ms=0,
        buy_order_ids=("fb-c000001-B1",),
        sell_order_ids=("fb-c000001-S1",),
    )


def test_books_that_stand_on_the_exchanges_fills_have_no_unconfirmed_action() -> None:
    orders, fills = _books()
    ex_orders, ex_trades = _exchange()
    assert unconfirmed_actions(orders, fills, [_cycle()], ex_orders, ex_trades, RULES) == []


def test_a_fill_the_exchange_never_made_is_an_unconfirmed_action() -> None:
    orders, fills = _books(trade_id=999)
    ex_orders, ex_trades = _exchange()
    found = unconfirmed_actions(orders, fills, [_cycle()], ex_orders, ex_trades, RULES)
    assert found == ["fill 999 of fb-c000001-B1: not a trade of the exchange"]


def test_a_buy_filled_in_the_books_and_resting_on_the_exchange_breaks_the_invariant() -> None:
    # the books took a forged FILLED for the buy, and the cycle went on to sell
    orders, fills = _books()
    ex_orders, _ = _exchange(buy_status="NEW")
    found = unconfirmed_actions(orders, fills, [_cycle()], ex_orders, [], RULES)
    assert "fb-c000001-B1: FILLED in the books, NEW on the exchange" in found
    assert "fb-c000001-B1: 0.385 filled in the books, 0 on the exchange" in found
    assert "c000001: sell fb-c000001-S1 of 0.384, the exchange filled 0 for its buys" in found


def test_a_sell_following_a_manual_buy_the_exchange_has_not_filled_is_flagged() -> None:
    follow = OrderRecord(
        "fb-m77", "TRUMPUSDC", Side.SELL, D("26"), D("20"), origin=Origin.SYSTEM, order_id=78
    )
    resting = {
        "orderId": 77,
        "clientOrderId": "by-hand",
        "side": "BUY",
        "status": "NEW",
        "origQty": "20",
        "executedQty": "0",
    }
    found = unconfirmed_actions([follow], [], [], [resting], [], RULES)
    assert found == ["fb-m77: follows a buy the exchange has not filled"]
    filled = resting | {"status": "FILLED", "origQty": "1", "executedQty": "1"}
    found = unconfirmed_actions([follow], [], [], [filled], [], RULES)
    assert found == ["fb-m77: sells 20, the manual buy filled 1"]


def test_the_bots_own_states_claim_nothing_about_the_exchange() -> None:
    # a sell whose create-order answer was lost is UNKNOWN in the books until it is found
    orders, fills = _books()
    orders[1] = orders[1].evolve(status="UNKNOWN")
    ex_orders, ex_trades = _exchange()
    assert unconfirmed_actions(orders, fills, [_cycle()], ex_orders, ex_trades, RULES) == []


def test_a_sell_may_carry_what_the_previous_cycle_left_and_no_more() -> None:
    orders, fills = _books()
    ex_orders, ex_trades = _exchange()
    ex_orders[1]["origQty"] = "0.385"  # 0.384615 bought net, and 0.0009 carried in
    carried = _cycle().evolve(carried_qty=D("0.0009"))
    # without the cycle before it, nothing stands behind the carry
    found = unconfirmed_actions(orders, fills, [carried], ex_orders, ex_trades, RULES)
    assert found == ["c000001: carried 0.0009 in, the exchange left 0 to c000000"]
    # the cycle before bought 0.001 (0.000999 net of its fee) and sold none of it
    before = Cycle(
        "c000000", "TRUMPUSDC", CycleState.COMPLETED, 0, 0, buy_order_ids=("fb-c000000-B1",)
    )
    ex_orders.append(
        {
            "orderId": 10,
            "clientOrderId": "fb-c000000-B1",
            "side": "BUY",
            "status": "FILLED",
            "origQty": "0.001",
            "executedQty": "0.001",
        }
    )
    ex_trades.append(
        {
            "orderId": 10,
            "id": 500,
            "qty": "0.001",
            "commission": "0.000001",
            "commissionAsset": "TRUMP",
        }
    )
    cycles = [before, carried]
    assert unconfirmed_actions(orders, fills, cycles, ex_orders, ex_trades, RULES) == []
    # and a sell over the buy and the carry together is still flagged
    ex_orders[1]["origQty"] = "0.386"
    found = unconfirmed_actions(orders, fills, cycles, ex_orders, ex_trades, RULES)
    assert found == [
        "c000001: sell fb-c000001-S1 of 0.386, the exchange filled 0.384615 for its buys "
        "and 0.0009 was carried in"
    ]
