"""``flipbot status``: what the bot is doing now — open cycles, resting orders, the last
decision — from a local replay's tables or a deployed stack's."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flipbot_dev.commands._books import BooksUnavailable, Source, add_source_arguments, load_source
from flipbot_dev.commands._table import text_table


def register(sub: Any) -> None:
    parser = sub.add_parser("status", help="open cycles, resting orders and the last decision")
    add_source_arguments(parser)
    parser.set_defaults(func=run)


def stamp(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` UTC, or ``-`` for 0."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def render(source: Source) -> str:
    """The status text of ``source``."""
    books = source.books
    open_cycles = [c for c in books.cycles if c.state.value != "COMPLETED"]
    closed = len(books.cycles) - len(open_cycles)
    net = sum((t.realized_pnl - t.ai_cost_usd for t in books.trades), Decimal(0))
    lines = [
        f"{source.symbol or '?'} ({source.label})",
        f"  cycles        {closed} completed, {len(open_cycles)} open",
        f"  net P&L       {net:+.4f} (after fees and AI cost, {len(books.trades)} closed)",
    ]
    if books.trades:
        last = max(books.trades, key=lambda t: t.closed_ms)
        lines.append(
            f"  last close    {last.cycle_id} at {stamp(last.closed_ms)} UTC: "
            f"{last.realized_pnl - last.ai_cost_usd:+.4f}"
        )
    for cycle in open_cycles:
        held = (
            f"; bought {cycle.bought_qty} @ {cycle.entry_price:.8g}, holding "
            f"{cycle.held_qty}, floor {cycle.floor_price:.8g}"
            if cycle.bought_qty
            else ""
        )
        lines.append(
            f"  open cycle    {cycle.cycle_id} {cycle.state.value} since "
            f"{stamp(cycle.created_ms)} UTC{held}"
        )
    resting = [o for o in books.orders if o.status in ("NEW", "PARTIALLY_FILLED")]
    if resting:
        lines += ["", "resting orders:"]
        rows = [
            [
                o.client_order_id,
                str(o.side),
                f"{o.price}",
                f"{o.quantity}",
                f"{o.executed_qty}",
                o.status,
                stamp(o.created_ms),
            ]
            for o in sorted(resting, key=lambda o: o.created_ms)
        ]
        lines.append(
            text_table(["order", "side", "price", "qty", "filled", "status", "placed (UTC)"], rows)
        )
    else:
        lines.append("  orders        none resting")
    if books.consultations:
        c = max(books.consultations, key=lambda c: (c.time_ms, c.consultation_id))
        lines += [
            "",
            f"last decision {stamp(c.time_ms)} UTC, {c.leg} leg of {c.cycle_id} by {c.decided_by}: "
            f"{c.action} (confidence {c.confidence:.2f}, verdict {c.verdict})",
            f"  {c.reasoning[:300]}",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        source = load_source(args)
    except BooksUnavailable as exc:
        print(f"flipbot status: {exc}", file=sys.stderr)
        return 2
    print(render(source))
    return 0
