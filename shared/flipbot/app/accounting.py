"""Cycle totals derived from recorded fills, so replays and duplicates cannot skew them."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from flipbot.domain.cycle import CycleState, cycle_id_for, cycle_sequence, cycle_symbol_part
from flipbot.domain.entities import ZERO, Cycle
from flipbot.domain.model import Fill, Side

if TYPE_CHECKING:
    from flipbot.ports import CycleRepository


def fee_in_quote(fill: Fill, base_asset: str, quote_asset: str) -> Decimal:
    """A fill's commission valued in the quote asset (base at the fill price).

    Commissions in a third asset (BNB) need that asset's price, which the fill does not
    carry; they are valued at zero here and reported separately by the exchange account.
    """
    if fill.commission_asset == quote_asset:
        return fill.commission
    if fill.commission_asset == base_asset:
        return fill.commission * fill.price
    return ZERO


def with_totals(cycle: Cycle, fills: Iterable[Fill], base_asset: str, quote_asset: str) -> Cycle:
    """Recompute the cycle's quantities and money from every fill of its orders."""
    fills = list(fills)
    bought = spent = base_fee = sold = received = fees = ZERO
    buy_ids, sell_ids = set(cycle.buy_order_ids), set(cycle.sell_order_ids)
    for fill in fills:
        fees += fee_in_quote(fill, base_asset, quote_asset)
        if fill.client_order_id in buy_ids and fill.side is Side.BUY:
            bought += fill.qty
            spent += fill.quote_qty
            if fill.commission_asset == base_asset:
                base_fee += fill.commission
        elif fill.client_order_id in sell_ids and fill.side is Side.SELL:
            sold += fill.qty
            received += fill.quote_qty
            if fill.commission_asset == quote_asset:
                received -= fill.commission
    spent_with_quote_fees = spent + sum(
        (f.commission for f in _buy_fills(cycle, fills) if f.commission_asset == quote_asset),
        ZERO,
    )
    entry = (spent / bought) if bought else ZERO
    return cycle.evolve(
        bought_qty=bought,
        spent_quote=spent_with_quote_fees,
        held_qty=max(bought - base_fee - sold + cycle.carried_qty, ZERO),
        sold_qty=sold,
        received_quote=received,
        fees_quote=fees,
        entry_price=entry,
    )


def carried_into(cycles: CycleRepository, cycle_id: str) -> Decimal:
    """The base the chain's previous cycle closed with and could not sell (less than a
    lot step, or under the minimum notional): ``cycle_id`` carries it, so the chain sells
    it once it adds up instead of leaving a step's worth behind on every cycle."""
    sequence = cycle_sequence(cycle_id)
    if sequence <= 1:
        return ZERO
    previous = cycles.get(cycle_id_for(sequence - 1, cycle_symbol_part(cycle_id)))
    if previous is None or previous.state is not CycleState.COMPLETED:
        return ZERO
    return previous.held_qty


def _buy_fills(cycle: Cycle, fills: Iterable[Fill]) -> list[Fill]:
    ids = set(cycle.buy_order_ids)
    return [f for f in fills if f.client_order_id in ids and f.side is Side.BUY]
