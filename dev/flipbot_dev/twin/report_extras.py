"""Report fields of the strategy lab: the metrics of :mod:`flipbot_dev.metrics` (the
P&L, win rate and fill rate by decider among them), the market-path figures (drawdown,
time in position, buy-and-hold) and the fill log the plots draw. Everything comes from
the recorded books and virtual time, so it is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flipbot.domain.entities import ConsultationRecord, Cycle, OrderRecord, TradeRecord
from flipbot.domain.model import Fill
from flipbot_dev.metrics import (
    Books,
    book_metrics,
    buy_and_hold_return_pct,
    by_decider,
    equity_path,
    fill_seconds,
    max_drawdown_pct,
    placed_orders,
    position_intervals,
    time_in_position_pct,
)

SESSION_STOPPED = "WAIT: session stopped: "


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def fill_log(fills: Sequence[Fill]) -> list[dict[str, Any]]:
    """Every fill in time order: when, which order, side, price, quantity, commission."""
    return [
        {
            "time": _iso(f.time_ms),
            "time_ms": f.time_ms,
            "client_order_id": f.client_order_id,
            "side": str(f.side),
            "price": str(f.price),
            "qty": str(f.qty),
            "quote_qty": str(f.quote_qty),
            "commission": str(f.commission),
            "commission_asset": f.commission_asset,
        }
        for f in sorted(fills, key=lambda f: (f.time_ms, f.trade_id))
    ]


def extra_fields(
    *,
    first_ms: int,
    last_ms: int,
    price_path: Sequence[tuple[int, Decimal]],
    initial_balances: dict[str, Decimal],
    base: str,
    quote: str,
    taker_fee: Decimal,
    cycles: Sequence[Cycle],
    orders: Sequence[OrderRecord],
    fills: Sequence[Fill],
    trades: Sequence[TradeRecord],
    consultations: Sequence[ConsultationRecord],
) -> dict[str, Any]:
    """The lab's report fields (see the module docstring)."""
    books = Books(cycles, orders, fills, trades, consultations)
    metrics = book_metrics(books)
    path = equity_path(initial_balances, fills, price_path, base, quote)
    prices = [float(p) for _, p in price_path]
    first_price = price_path[0][1] if price_path else Decimal(0)
    last_price = price_path[-1][1] if price_path else Decimal(0)
    stops = [c for c in consultations if c.reasoning.startswith(SESSION_STOPPED)]
    created = {o.client_order_id: o for o in orders}
    return {
        "net_pnl_per_trade_usdc": str(metrics["net_pnl_per_trade"]),
        "avg_fill_seconds": metrics["avg_fill_seconds"],
        "ai_accuracy": metrics["ai_accuracy"],
        # the report's AI cost counts every consultation, so its split does too
        "by_decider": by_decider(books, ai_cost="consultations"),
        "latency_seconds": metrics["latency_seconds"],
        "max_drawdown_pct": max_drawdown_pct(v for _, v in path),
        "time_in_position_pct": time_in_position_pct(
            position_intervals(books, last_ms), first_ms, last_ms
        ),
        "buy_and_hold_return_pct": buy_and_hold_return_pct(first_price, last_price, taker_fee),
        "buy_and_hold_max_drawdown_pct": max_drawdown_pct(prices),
        "session_stop": {
            "time": _iso(stops[0].time_ms),
            "reason": stops[0].reasoning[len(SESSION_STOPPED) :],
        }
        if stops
        else None,
        "base_asset": base,
        "quote_asset": quote,
        "fill_log": fill_log(fills),
        "order_fill_seconds": fill_seconds(placed_orders(orders), fills),
        "open_orders_placed_ms": {
            coid: o.created_ms
            for coid, o in sorted(created.items())
            if o.order_id and o.status in ("NEW", "PARTIALLY_FILLED")
        },
    }
