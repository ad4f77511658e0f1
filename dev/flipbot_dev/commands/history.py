"""``flipbot history``: the closed cycles, oldest first, from a local replay's tables or a
deployed stack's."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flipbot.domain.entities import TradeRecord
from flipbot_dev.commands._books import BooksUnavailable, add_source_arguments, load_source
from flipbot_dev.commands._table import csv_table, text_table
from flipbot_dev.commands.status import stamp

HEADERS = [
    "cycle",
    "opened (UTC)",
    "closed (UTC)",
    "minutes",
    "qty",
    "entry",
    "exit",
    "fees",
    "AI cost",
    "net P&L",
    "return %",
]


def register(sub: Any) -> None:
    parser = sub.add_parser("history", help="closed cycles: entry, exit, fees and P&L")
    add_source_arguments(parser)
    parser.add_argument(
        "--limit", type=int, default=50, help="show the last N cycles (default 50, 0 for all)"
    )
    parser.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    parser.set_defaults(func=run)


def rows(trades: list[TradeRecord]) -> list[list[str]]:
    """One row per closed cycle (see :data:`HEADERS`)."""
    out = []
    for t in trades:
        net = t.realized_pnl - t.ai_cost_usd
        spent = t.spent_quote
        out.append(
            [
                t.cycle_id,
                stamp(t.opened_ms),
                stamp(t.closed_ms),
                f"{(t.closed_ms - t.opened_ms) / 60_000:.1f}",
                f"{t.quantity}",
                f"{t.entry_price:.8g}",
                f"{t.exit_price:.8g}",
                f"{t.fees_quote:.4f}",
                f"{t.ai_cost_usd:.4f}",
                f"{net:+.4f}",
                f"{net / spent * 100:+.3f}" if spent else "",
            ]
        )
    return out


def run(args: argparse.Namespace) -> int:
    try:
        source = load_source(args)
    except BooksUnavailable as exc:
        print(f"flipbot history: {exc}", file=sys.stderr)
        return 2
    trades = sorted(source.books.trades, key=lambda t: (t.closed_ms, t.cycle_id))
    if args.limit > 0:
        trades = trades[-args.limit :]
    table = rows(trades)
    if args.csv:
        print(csv_table(HEADERS, table), end="")
        return 0
    print(
        f"{source.symbol or '?'} ({source.label}): {len(source.books.trades)} closed cycles"
        + (f", the last {len(trades)}" if len(trades) < len(source.books.trades) else "")
    )
    print(text_table(HEADERS, table) if table else "no closed cycles yet")
    return 0
