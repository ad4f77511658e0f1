"""``flipbot replay``: the local digital twin trading on replayed market data."""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from flipbot_dev.commands._template import add_template_argument, checked_template
from flipbot_dev.commands.presets import PRESETS, preset, setup


def register(sub: Any) -> None:
    replay = sub.add_parser("replay", help="paper-trade the whole system on replayed market data")
    replay.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        help="klines/trades/bookTicker CSV or a Binance public-data "
        "CSV/zip, one per symbol (in --symbols' order); default: the bundled sample "
        "(generated, seeded; with several symbols, one correlated market each)",
    )
    replay.add_argument("--symbol", help="trading pair (default: from the file name, or TRUMPUSDC)")
    replay.add_argument(
        "--symbols",
        help="several pairs on one stack, comma-separated, e.g. TRUMPUSDC,BTCUSDC,ETHUSDC "
        "(the first is the stack's Symbol); the report has each symbol's figures and "
        "invariants under 'symbols', and the totals",
    )
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
    add_template_argument(replay)
    replay.add_argument(
        "--chaos",
        metavar="PROFILE",
        help="run seeded chaos replays instead: duplicate, reorder, drop, crash, exchange, "
        "restart, concurrent, combined; the hostile world's exchange-ended, manual, forged, "
        "stopped, poison, ai-hostile; world (its scenarios in turn) or all (every scenario "
        "in turn); prints the invariants table",
    )
    replay.add_argument(
        "--seeds", type=int, default=20, help="how many seeded chaos replays (default 20)"
    )
    replay.add_argument(
        "--strategy",
        choices=["ai", "offline", "fixed", "adaptive", "ma-cross"],
        help="decision maker when no AI key is configured (default offline)",
    )
    replay.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named set-up: its strategy, balance and template parameters "
        "(flags and --param given here win); "
        + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values()),
    )
    replay.add_argument(
        "--ai",
        choices=["offline", "fixed", "openai"],
        help="who decides: openai (OPENAI_API_KEY, OPENAI_BASE_URL and AI_MODEL from this "
        "shell, the offline strategy when it fails), or an offline decision maker; "
        "overrides --strategy",
    )
    replay.add_argument(
        "--balance",
        type=quote_amount,
        help="initial quote balance (default 100 per symbol, or the preset's)",
    )
    replay.add_argument(
        "--quote-per-cycle", help="quote spent per cycle (default 10, or the preset's)"
    )
    replay.add_argument(
        "--max-cycles", type=int, default=0, help="stop after N cycles (0: no limit)"
    )
    replay.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="template parameter, e.g. StopLoss=0.02 (repeatable)",
    )
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument(
        "--exchange",
        choices=["inprocess", "loopback"],
        default="inprocess",
        help="how the bot reaches the paper exchange: in process (default) or over HTTP "
        "on 127.0.0.1 (the same report)",
    )
    replay.set_defaults(func=run)


def decider_name(args: argparse.Namespace) -> str:
    """``--ai`` when given, else ``--strategy`` (``offline`` when neither); ``openai``
    without a key says it is offline."""
    name: str = args.ai or args.strategy or "offline"
    if name == "openai":
        import os

        from flipbot.adapters.openai_decider import is_placeholder_key

        if is_placeholder_key(os.environ.get("OPENAI_API_KEY", "")):
            print("flipbot replay: OPENAI_API_KEY is not set; the offline strategy decides")
            return "offline"
    return name


def quote_amount(raw: str) -> Decimal:
    """A command-line amount of quote: a number (``--balance abc`` is an argparse error)."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise argparse.ArgumentTypeError(f"{raw!r} is not a finite number")
    return value


def run(args: argparse.Namespace) -> int:
    chosen = preset(args.preset) if args.preset else None
    balance_given = args.balance is not None
    try:
        run_setup = setup(
            chosen,
            strategy=args.strategy,
            balance=args.balance,
            quote_per_cycle=args.quote_per_cycle,
            params=args.param,
        )
    except ValueError as exc:
        print(f"flipbot replay: {exc}", file=sys.stderr)
        return 2
    args.strategy, args.balance = run_setup.strategy, run_setup.balance
    args.parameters = run_setup.parameters
    if chosen is not None:
        print(f"flipbot replay: preset {chosen.name}: {chosen.summary}")
    template = checked_template(args.template, "replay")
    if template is None:
        return 2
    args.template = template
    if args.chaos:
        return run_chaos(args)
    from flipbot_dev.twin.report import format_report
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    markets = _markets(args)
    if isinstance(markets, str):
        print(f"flipbot replay: {markets}", file=sys.stderr)
        return 2
    data, *others = markets
    symbol = data.symbol
    for market in markets:
        print(
            f"flipbot replay: {market.symbol}, {len(market):,} market events from {market.source}"
        )
    if others and not balance_given:
        args.balance = args.balance * len(markets)
    from flipbot.domain.errors import ConfigurationError

    try:
        config = ReplayConfig(
            data=data,
            symbol=symbol,
            others=tuple(others),
            template=args.template,
            out_dir=Path(args.out),
            quote_balance=args.balance,
            decider=decider_name(args),
            max_cycles=args.max_cycles,
            progress=not args.quiet,
            exchange=args.exchange,
            parameters=args.parameters,
        )
    except ConfigurationError as exc:
        print(f"flipbot replay: {exc}", file=sys.stderr)
        return 2
    report = run_replay(config)
    print(format_report(report))
    print(f"report: {Path(args.out) / 'report.json'}, trades: {Path(args.out) / 'trades.csv'}")
    return 0 if all(report["invariants"].values()) else 1


def run_chaos(args: argparse.Namespace) -> int:
    """``--chaos PROFILE --seeds N``: N seeded replays (6 h each by default) and one table."""
    import json

    from flipbot_dev.twin.chaos_run import ChaosRun, format_table, run_many, table

    hours = args.hours if args.hours != 24.0 else 6.0
    done = [0]

    def progress(run: ChaosRun) -> None:
        done[0] += 1
        verdict = "ok" if not run.violations else "VIOLATED " + ", ".join(run.violations)
        if not args.quiet:
            print(
                f"  [{done[0]:>4}/{args.seeds}] {run.scenario:<14} seed {run.seed:<5} "
                f"cycles {run.cycles:<3} crashes {run.crashes:<3} faults {run.faults:<3} "
                f"injected {sum(n for _, n in run.injections):<4} {verdict}",
                file=sys.stderr,
            )

    try:
        runs = run_many(
            args.chaos,
            args.seeds,
            template=args.template,
            hours=hours,
            progress=progress,
            parameters=args.parameters,
            symbols=tuple(p.strip().upper() for p in (args.symbols or "").split(",") if p.strip()),
        )
    except ValueError as exc:
        print(f"flipbot replay: {exc}", file=sys.stderr)
        return 2
    rows = table(runs)
    print(format_table(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "chaos.json").write_text(
        json.dumps(
            {
                "profile": args.chaos,
                "seeds": args.seeds,
                "hours": hours,
                "rows": rows,
                "runs": [run.__dict__ | {"violations": list(run.violations)} for run in runs],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"chaos table: {out / 'chaos.json'}")
    return 0 if all(row["violations"] == 0 for row in rows) else 1


def _markets(args: argparse.Namespace) -> list[Any] | str:
    """The market of each symbol replayed, the stack's own first; or what is wrong."""
    from flipbot_dev.replay.data import MarketDataError, load_market_data
    from flipbot_dev.replay.sample import generate_markets, generate_sample, profile_of

    symbols = [p.strip().upper() for p in (args.symbols or "").split(",") if p.strip()]
    if args.symbols and args.symbol:
        return "give --symbol or --symbols, not both"
    files = list(args.data or [])
    if files and symbols and len(files) != len(symbols):
        return f"--symbols names {len(symbols)} symbol(s), --data gives {len(files)} file(s)"
    if not files:
        if len(symbols) > 1:
            return list(generate_markets(symbols, seed=args.seed, hours=args.hours).values())
        symbol = (symbols or [args.symbol or "TRUMPUSDC"])[0]
        return [
            generate_sample(
                seed=args.seed, hours=args.hours, symbol=symbol, profile=profile_of(symbol)
            )
        ]
    markets = []
    for index, file in enumerate(files):
        named = symbols[index] if symbols else args.symbol if len(files) == 1 else None
        try:
            data = load_market_data(Path(file), symbol=named)
        except (MarketDataError, FileNotFoundError) as exc:
            return str(exc)
        if args.hours:
            data = data.between(data.first_ms, data.first_ms + int(args.hours * 3_600_000))
        markets.append(data)
    return markets
