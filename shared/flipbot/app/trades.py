"""Record a closed cycle: final fills from the exchange, P&L after fees and AI cost, and
each leg's time to fill."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from flipbot.app.accounting import with_totals
from flipbot.app.fills import sync_order_fills
from flipbot.domain.cycle import CycleState, cycle_sequence, next_cycle_id
from flipbot.domain.entities import ConsultationRecord, OrderRecord, TradeRecord
from flipbot.domain.errors import CycleNotSold
from flipbot.domain.model import Fill, Side
from flipbot.ports import Services


def record_trade(services: Services, *, cycle_id: str) -> dict[str, Any]:
    """Close the cycle once. ``closed`` tells whether this call closed it (a retry finds
    it closed), so that the handler counts each cycle, its P&L and fill times once."""
    s, repos, exchange = services.settings, services.repos, services.exchange
    now = services.clock.now_ms()
    next_id = next_cycle_id(cycle_id)
    keep_going = (
        s.trades(s.symbol_of_cycle(cycle_id))
        and not services.kill_switch.engaged(s.symbol)
        and (s.max_cycles == 0 or cycle_sequence(cycle_id) < s.max_cycles)
    )
    cycle = repos.cycles.get(cycle_id)
    if cycle is None:
        return {
            "next_cycle_id": next_id,
            "continue": keep_going,
            "realized_pnl": "0",
            "closed": False,
        }
    if cycle.state is CycleState.COMPLETED:  # a retry: the trade is recorded already
        return {
            "next_cycle_id": next_id,
            "continue": keep_going,
            "realized_pnl": str(cycle.realized_pnl),
            "closed": False,
        }
    rules = exchange.symbol_rules(s.symbol)
    fills: list[Fill] = []
    orders: dict[str, OrderRecord] = {}  # the cycle's orders, as synced from the exchange
    for coid in cycle.buy_order_ids + cycle.sell_order_ids:
        order = repos.orders.get(coid)
        if order is not None:
            orders[coid], order_fills, _ = sync_order_fills(order, exchange, repos, now)
            fills += order_fills
    cycle = with_totals(cycle, fills, rules.base_asset, rules.quote_asset)
    rest = rules.sellable_qty(cycle.held_qty, cycle.floor_price or cycle.entry_price)
    if rest > 0:  # a resting sell, or one the exchange ended part filled: not sold yet
        raise CycleNotSold(
            f"cycle {cycle_id} still holds {cycle.held_qty} {rules.base_asset}, {rest} of it "
            "sellable: it is not closed before that is sold"
        )
    consultations = repos.consultations.for_cycle(cycle_id)
    ai_cost = sum((c.cost_usd for c in consultations), Decimal(0))
    pnl = cycle.received_quote - cycle.spent_quote
    buy_fills = [f for f in fills if f.side is Side.BUY]
    sell_fills = [f for f in fills if f.side is Side.SELL]
    trade = TradeRecord(
        symbol=cycle.symbol,
        cycle_id=cycle_id,
        opened_ms=cycle.created_ms,
        closed_ms=now,
        quantity=cycle.sold_qty,
        entry_price=cycle.entry_price,
        exit_price=(cycle.received_quote / cycle.sold_qty) if cycle.sold_qty else Decimal(0),
        spent_quote=cycle.spent_quote,
        received_quote=cycle.received_quote,
        fees_quote=cycle.fees_quote,
        ai_cost_usd=ai_cost,
        realized_pnl=pnl,
        buy_fill_seconds=_fill_seconds(orders, cycle.buy_order_ids, buy_fills),
        sell_fill_seconds=_fill_seconds(orders, cycle.sell_order_ids, sell_fills),
    )
    repos.trades.add(trade)
    _record_outcomes(services, consultations, orders, pnl)
    # SELL_FILLED closes a sold cycle; a cycle whose buy left only dust closes as well.
    repos.cycles.save(
        cycle.evolve(
            state=CycleState.COMPLETED,
            realized_pnl=pnl,
            ai_cost_usd=ai_cost,
            closed_ms=now,
            updated_ms=now,
        )
    )
    # each leg that filled: seconds from placing its last order to its last fill (metrics)
    fill_seconds = {
        str(side): seconds
        for side, leg_fills, seconds in (
            (Side.BUY, buy_fills, trade.buy_fill_seconds),
            (Side.SELL, sell_fills, trade.sell_fill_seconds),
        )
        if leg_fills
    }
    return {
        "next_cycle_id": next_id,
        "continue": keep_going,
        "realized_pnl": str(pnl),
        "closed": True,
        "fill_seconds": fill_seconds,
    }


def _fill_seconds(
    orders: dict[str, OrderRecord], order_ids: tuple[str, ...], fills: list[Fill]
) -> float:
    """Seconds from placing the leg's last order to its last fill."""
    if not fills or not order_ids:
        return 0.0
    order = orders.get(order_ids[-1])
    placed = order.created_ms if order else fills[0].time_ms
    return max(0.0, (max(f.time_ms for f in fills) - placed) / 1000)


def _record_outcomes(
    services: Services,
    consultations: list[ConsultationRecord],
    orders: dict[str, OrderRecord],
    pnl: Decimal,
) -> None:
    """Give each consultation of the closed cycle its outcome, for AI accuracy reports:
    whether the price it proposed was placed and filled, how fast, and the cycle's P&L."""
    by_consultation = {o.consultation_id: o for o in orders.values()}
    for consultation in consultations:
        order = by_consultation.get(consultation.consultation_id)
        filled = order is not None and order.status == "FILLED"
        outcome = {
            "outcome_placed": str(order is not None).lower(),
            "outcome_filled": str(filled).lower(),
            "outcome_fill_seconds": (
                str(round((order.updated_ms - order.created_ms) / 1000, 1))
                if filled and order is not None
                else ""
            ),
            "outcome_cycle_pnl": str(pnl),
        }
        services.repos.consultations.add(
            replace(consultation, extra={**consultation.extra, **outcome})
        )
