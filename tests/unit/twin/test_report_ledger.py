"""The ledger invariant: one trade row per closed cycle, its P&L what the exchange says."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import Cycle, TradeRecord
from flipbot.domain.filters import SymbolRules
from flipbot_dev.twin.report import abandoned_positions, ledger_mismatches

D = Decimal


def _cycle(cycle_id: str, state: CycleState = CycleState.COMPLETED) -> Cycle:
    return Cycle(
        cycle_id,
        "TRUMPUSDC",
        state,
        created_ms=0,
        updated_ms=0,
        buy_order_ids=(f"fb-{cycle_id}-B1",),
        sell_order_ids=(f"fb-{cycle_id}-S1",),
    )


def _trade(cycle_id: str, pnl: str) -> TradeRecord:
    z = D(0)
    return TradeRecord("TRUMPUSDC", cycle_id, 0, 1, z, z, z, z, z, z, z, D(pnl), 0.0, 0.0)


def _exchange(cycle_id: str, order_base: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A buy of 1 at 10.00 and a sell of 1 at 10.50, fees 0.01 in quote each."""
    orders = [
        {"orderId": order_base, "clientOrderId": f"fb-{cycle_id}-B1"},
        {"orderId": order_base + 1, "clientOrderId": f"fb-{cycle_id}-S1"},
    ]
    trades = [
        {
            "symbol": "TRUMPUSDC",
            "orderId": order_base + i,
            "id": order_base + i,
            "isBuyer": i == 0,
            "price": price,
            "qty": "1",
            "quoteQty": price,
            "commission": "0.01",
            "commissionAsset": "USDC",
            "isMaker": True,
            "time": i,
        }
        for i, price in enumerate(("10.00", "10.50"))
    ]
    return trades, orders


def test_a_ledger_that_matches_the_exchange_has_no_mismatch() -> None:
    trades, orders = _exchange("c000001", 1)
    rows = [_trade("c000001", "0.48")]  # 10.49 received - 10.01 spent
    assert ledger_mismatches([_cycle("c000001")], rows, trades, orders, "TRUMP", "USDC") == []


def test_a_second_row_a_missing_row_a_stray_row_and_a_wrong_pnl_are_each_named() -> None:
    t1, o1 = _exchange("c000001", 1)
    t2, o2 = _exchange("c000002", 3)
    t3, o3 = _exchange("c000003", 5)
    cycles = [
        _cycle("c000001"),
        _cycle("c000002"),
        _cycle("c000003"),
        _cycle("c000004", CycleState.SELLING),
    ]
    rows = [
        _trade("c000001", "0.48"),
        _trade("c000001", "0.48"),
        _trade("c000003", "0.50"),
        _trade("c000004", "0"),
    ]
    errors = ledger_mismatches(cycles, rows, t1 + t2 + t3, o1 + o2 + o3, "TRUMP", "USDC")
    assert errors == [
        "c000001: 2 trade rows",
        "c000002: closed, no trade row",
        "c000004: a trade row, cycle not closed",
        "c000003: P&L 0.50, the exchange says 0.48",
    ]


# --------------------------------------------------------------------------- abandoned base
RULES = SymbolRules("TRUMPUSDC", "TRUMP", "USDC", step_size=D("0.001"), min_notional=D("5"))


def _fills(
    cycle_id: str, bought: str, sold: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders = [
        {"orderId": 1, "clientOrderId": f"fb-{cycle_id}-B1"},
        {"orderId": 2, "clientOrderId": f"fb-{cycle_id}-S1"},
    ]
    trades = [
        {
            "orderId": 1,
            "isBuyer": True,
            "qty": bought,
            "commission": "0.001",
            "commissionAsset": "TRUMP",
        },
        {
            "orderId": 2,
            "isBuyer": False,
            "qty": sold,
            "commission": "0.01",
            "commissionAsset": "USDC",
        },
    ]
    return trades, orders


def test_a_closed_cycle_that_sold_all_but_dust_abandons_nothing() -> None:
    cycle = _cycle("c000001").evolve(floor_price=D("26.22"))
    trades, orders = _fills("c000001", "0.385", "0.384")  # 0.385 - 0.001 fee - 0.384 = 0
    assert abandoned_positions([cycle], trades, orders, RULES) == []
    trades, orders = _fills("c000001", "0.385", "0.200")  # 0.184 x 26.22 = 4.82 < 5: dust
    assert abandoned_positions([cycle], trades, orders, RULES) == []


def test_a_closed_cycle_holding_a_sellable_remainder_is_named() -> None:
    closed = _cycle("c000001").evolve(floor_price=D("26.22"))
    trades, orders = _fills("c000001", "0.385", "0.100")  # 0.284 x 26.22 = 7.45: sellable
    assert abandoned_positions([closed], trades, orders, RULES) == [
        "c000001: closed holding 0.284 TRUMP"
    ]
    still_open = _cycle("c000001", CycleState.SELLING).evolve(floor_price=D("26.22"))
    assert abandoned_positions([still_open], trades, orders, RULES) == []
