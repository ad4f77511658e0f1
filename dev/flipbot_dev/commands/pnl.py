"""``flipbot pnl``: P&L after fees and AI cost and the trading metrics (fill rate, fill
time, profit per trade, AI prediction accuracy, latency per stage), and the P&L, win rate
and fill rate by decider (who decided each cycle's buy leg), from a local replay's tables
or a deployed stack's."""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import Any

from flipbot_dev.commands._books import BooksUnavailable, add_source_arguments, load_source
from flipbot_dev.commands._table import text_table
from flipbot_dev.metrics import STAGES, book_metrics, by_decider, by_decider_lines


def register(sub: Any) -> None:
    parser = sub.add_parser("pnl", help="P&L after fees and AI cost, fill and AI metrics")
    add_source_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def render(metrics: dict[str, Any], title: str) -> str:
    """The metrics of :func:`flipbot_dev.metrics.book_metrics` (and ``by_decider``, the
    rows of :func:`flipbot_dev.metrics.by_decider`) as text."""
    ai = metrics["ai_accuracy"]
    lines = [
        title,
        f"  cycles completed   {metrics['cycles_completed']}",
        f"  realized P&L       {metrics['realized_pnl']:+.4f}  (fees {metrics['fees']:.4f})",
        f"  AI cost            {metrics['ai_cost']:.4f}",
        f"  net P&L            {metrics['net_pnl']:+.4f}",
        f"  profit per trade   {metrics['net_pnl_per_trade']:+.4f}  (after fees and AI cost)",
        f"  win rate           {metrics['win_rate'] * 100:.1f}%",
        f"  orders             {metrics['orders_placed']} placed, {metrics['orders_filled']} "
        f"filled (fill rate {metrics['fill_rate'] * 100:.1f}%)",
        f"  avg fill time      {metrics['avg_fill_seconds']:.0f}s",
        f"  AI accuracy        {ai['proposals']} proposals placed as proposed, "
        f"{ai['price_fill_rate'] * 100:.1f}% filled (buy {ai['buy_price_fill_rate'] * 100:.1f}%,"
        f" sell {ai['sell_price_fill_rate'] * 100:.1f}%); profitable cycles "
        f"{ai['profitable_cycles'] * 100:.1f}%",
    ]
    lines += by_decider_lines(
        metrics.get("by_decider", []), title="\nby decider (who decided the cycle's buy leg):"
    )
    lines += ["", "latency per stage (seconds):"]
    latency = metrics["latency_seconds"]
    rows = [
        [
            stage,
            latency[stage]["count"],
            f"{latency[stage]['avg']:.1f}",
            f"{latency[stage]['p50']:.1f}",
            f"{latency[stage]['max']:.1f}",
        ]
        for stage in STAGES
    ]
    lines.append(text_table(["stage", "count", "avg", "p50", "max"], rows))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        source = load_source(args)
    except BooksUnavailable as exc:
        print(f"flipbot pnl: {exc}", file=sys.stderr)
        return 2
    metrics = book_metrics(source.books)
    # the closed cycles' recorded AI cost, as the totals above count it
    metrics["by_decider"] = by_decider(source.books, ai_cost="trades")
    if args.json:
        print(
            json.dumps(
                metrics,
                indent=2,
                sort_keys=True,
                default=lambda v: str(v) if isinstance(v, Decimal) else v,
            )
        )
        return 0
    print(render(metrics, f"{source.symbol or '?'} ({source.label})"))
    return 0
