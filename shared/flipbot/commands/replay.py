"""``flipbot replay``: the local digital twin trading on replayed market data."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    replay = sub.add_parser("replay", help="paper-trade the whole system on replayed market data")
    replay.add_argument(
        "--data",
        help="klines/trades/bookTicker CSV or a Binance public-data "
        "CSV/zip; default: the bundled sample (generated, seeded)",
    )
    replay.add_argument("--symbol", help="trading pair (default: from the file name, or TRUMPUSDC)")
    replay.add_argument(
        "--seed", type=int, default=7, help="seed of the bundled sample (default 7)"
    )
    replay.add_argument(
        "--hours",
        type=float,
        default=24.0,
        help="hours of the sample to generate, or of the file to replay",
    )
    replay.add_argument("--out", default="out/replay", help="report directory (default out/replay)")
    replay.add_argument(
        "--strategy",
        default="offline",
        choices=["offline", "fixed"],
        help="decision maker when no AI key is configured",
    )
    replay.add_argument("--balance", default="100", help="initial quote balance (default 100)")
    replay.add_argument(
        "--quote-per-cycle", default="10", help="quote spent per cycle (default 10)"
    )
    replay.add_argument(
        "--max-cycles", type=int, default=0, help="stop after N cycles (0: no limit)"
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from flipbot.replay.data import MarketDataError, load_market_data
    from flipbot.replay.sample import generate_sample
    from flipbot.twin.report import format_report
    from flipbot.twin.runner import ReplayConfig, run_replay

    if args.data:
        try:
            data = load_market_data(Path(args.data), symbol=args.symbol)
        except (MarketDataError, FileNotFoundError) as exc:
            print(f"flipbot replay: {exc}", file=sys.stderr)
            return 2
        symbol = args.symbol or data.symbol
    else:
        symbol = args.symbol or "TRUMPUSDC"
        data = generate_sample(seed=args.seed, hours=args.hours, symbol=symbol)
    if args.hours and args.data:
        data = data.between(data.first_ms, data.first_ms + int(args.hours * 3_600_000))
    print(f"flipbot replay: {symbol}, {len(data):,} market events from {data.source}")
    config = ReplayConfig(
        data=data,
        symbol=symbol,
        out_dir=Path(args.out),
        quote_balance=Decimal(args.balance),
        decider=args.strategy,
        max_cycles=args.max_cycles,
        progress=not args.quiet,
        parameters={"QuotePerCycle": args.quote_per_cycle},
    )
    report = run_replay(config)
    print(format_report(report))
    print(f"report: {Path(args.out) / 'report.json'}, trades: {Path(args.out) / 'trades.csv'}")
    return 0 if all(report["invariants"].values()) else 1
