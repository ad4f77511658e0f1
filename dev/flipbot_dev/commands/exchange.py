"""``flipbot exchange``: the paper exchange as a loopback server speaking Binance's protocol.

``flipbot exchange serve`` replays market data (a file, or the bundled sample) into a
paper exchange and serves Binance spot's REST API on ``http://127.0.0.1:<port>`` and its
WebSocket market streams and WebSocket API (user data) on ``ws://127.0.0.1:<ws port>``.
Point python-binance at it with ``client.API_URL = "http://127.0.0.1:<port>/api"``, the
bot with ``BINANCE_BASE_URL=http://127.0.0.1:<port>``, the listener with
``BINANCE_STREAM_URL`` and ``BINANCE_WS_API_URL``. ``flipbot exchange faults`` lists the
fault profiles ``--faults`` accepts (they apply to the REST API).
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    exchange = sub.add_parser("exchange", help="the paper exchange as a loopback Binance server")
    actions = exchange.add_subparsers(dest="action", required=True)

    serve = actions.add_parser("serve", help="serve Binance's REST API on 127.0.0.1")
    serve.add_argument(
        "--data",
        help="klines/trades/bookTicker CSV or a Binance public-data CSV/zip; "
        "default: the bundled sample (generated, seeded)",
    )
    serve.add_argument("--symbol", help="trading pair (default: from the file name, or TRUMPUSDC)")
    serve.add_argument("--seed", type=int, default=7, help="seed of the bundled sample (default 7)")
    serve.add_argument(
        "--hours", type=float, default=24.0, help="hours of the sample, or of the file, to replay"
    )
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    serve.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay speed: recorded time per wall-clock time (default 1: real time)",
    )
    serve.add_argument(
        "--faults", default="none", help="fault profile (see 'flipbot exchange faults')"
    )
    serve.add_argument("--fault-seed", type=int, default=0, help="seed of the fault profile")
    serve.add_argument("--api-key", default="paper", help="API key to accept (default paper)")
    serve.add_argument(
        "--api-secret", default="paper-secret", help="API secret (default paper-secret)"
    )
    serve.add_argument(
        "--balance",
        action="append",
        default=[],
        metavar="ASSET=AMOUNT",
        help="initial balance, repeatable (default: 1000 of the quote asset)",
    )
    serve.add_argument(
        "--fill-model",
        choices=["through", "touch"],
        default="through",
        help="resting orders fill when trades go through (default) or touch their price",
    )
    serve.add_argument(
        "--weight-limit", type=int, default=6000, help="request weight per minute (default 6000)"
    )
    serve.add_argument(
        "--ws-port",
        type=int,
        default=0,
        help="port on 127.0.0.1 of the WebSocket server: market streams and the WebSocket "
        "API's user data (default: any free)",
    )
    serve.add_argument("--no-ws", action="store_true", help="no WebSocket server")
    serve.add_argument("--duration", type=float, help="stop after this many seconds")
    serve.add_argument("--verbose", action="store_true", help="log every request")
    serve.set_defaults(func=run_serve)

    faults = actions.add_parser("faults", help="list the fault profiles")
    faults.set_defaults(func=run_faults)


def _balances(items: list[str]) -> dict[str, Decimal]:
    balances: dict[str, Decimal] = {}
    for item in items:
        asset, _, amount = item.partition("=")
        try:
            balances[asset.strip().upper()] = Decimal(amount)
        except InvalidOperation:
            raise ValueError(f"--balance {item!r}: expected ASSET=AMOUNT, e.g. USDC=1000") from None
        if not asset.strip():
            raise ValueError(f"--balance {item!r}: expected ASSET=AMOUNT, e.g. USDC=1000")
    return balances


def run_serve(args: argparse.Namespace) -> int:
    from flipbot_dev.paper.faults import profile
    from flipbot_dev.paper.server import ExchangeConfig, start_exchange
    from flipbot_dev.replay.data import MarketDataError, load_market_data
    from flipbot_dev.replay.sample import generate_sample

    try:
        profile(args.faults)
        balances = _balances(args.balance)
        if args.data:
            data = load_market_data(Path(args.data), symbol=args.symbol)
            if args.hours:
                data = data.between(data.first_ms, data.first_ms + int(args.hours * 3_600_000))
        else:
            data = generate_sample(
                seed=args.seed, hours=args.hours, symbol=args.symbol or "TRUMPUSDC"
            )
        if not data.events:
            raise ValueError(f"{data.source}: no market events to replay")
        if args.speed <= 0:
            raise ValueError(f"--speed must be positive, got {args.speed}")
    except (MarketDataError, FileNotFoundError, ValueError) as exc:
        print(f"flipbot exchange serve: {exc}", file=sys.stderr)
        return 2

    config = ExchangeConfig(
        data=data,
        port=args.port,
        speed=args.speed,
        faults=args.faults,
        seed=args.fault_seed,
        api_key=args.api_key,
        api_secret=args.api_secret,
        balances=balances,
        fill_model=args.fill_model,
        weight_limit=args.weight_limit,
        ws_port=None if args.no_ws else args.ws_port,
        ws_lifetime_s=args.duration + 10 if args.duration is not None else 30 * 86_400.0,
        log=(lambda line: print(line, file=sys.stderr)) if args.verbose else None,
    )
    try:
        service = start_exchange(config)
    except OSError as exc:
        print(f"flipbot exchange serve: cannot listen on 127.0.0.1: {exc}", file=sys.stderr)
        return 2
    with service:
        print(f"paper exchange: {data.symbol}, {len(data):,} market events from {data.source}")
        print(f"  replay speed x{args.speed:g}, fault profile '{args.faults}'")
        print(
            f"  REST: {service.base_url}  (python-binance: client.API_URL = "
            f"'{service.base_url}/api'; the bot: BINANCE_BASE_URL={service.base_url})"
        )
        if service.ws_url:
            print(
                f"  WebSocket: {service.ws_url}/stream?streams=..., {service.ws_url}/ws/<stream>,"
                f" {service.ws_url}/ws-api/v3  (the listener: BINANCE_STREAM_URL="
                f"{service.ws_url} BINANCE_WS_API_URL={service.ws_url}/ws-api/v3)"
            )
        print(f"  API key '{args.api_key}', secret '{args.api_secret}'", flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        try:
            while deadline is None or time.monotonic() < deadline:
                left = 0.1 if deadline is None else deadline - time.monotonic()
                time.sleep(max(0.0, min(0.1, left)))
        except KeyboardInterrupt:
            pass
        print(
            f"paper exchange stopped: {service.http.requests:,} requests, "
            f"{service.replayer.fed:,} market events fed"
        )
    return 0


def run_faults(_args: argparse.Namespace) -> int:
    from flipbot_dev.paper.faults import PROFILES

    width = max(len(name) for name in PROFILES)
    for name, fault_profile in PROFILES.items():
        print(f"{name:<{width}}  {fault_profile.summary}")
    return 0
