"""Strategy evaluation speed: decisions per second on three days of real BTCUSDT klines.

The 1-minute klines of ``../shared/data/klines/BTCUSDT_1m_2020-01-01_2020-01-03_*.csv``
(4,320 candles) are replayed once into :class:`~flipbot.domain.indicators.MarketIndicators`;
the snapshot at the close of every candle becomes a BUY request and a SELL request
(entry 0.5 % under the close). Each strategy then answers every request; the figure is
candles per second for the BUY leg (median of ``--runs`` runs, a fresh strategy each
run), the SELL leg and microseconds per decision are in the details. ``indicators`` is
the cost of building the snapshots themselves, for scale. ``ai`` is the offline strategy
when no AI key is configured, so it is not measured twice.

``python -m bench.strategies [--runs N]``; writes ``bench/results/strategies.json``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import ROOT, median, table, write_result
from flipbot.domain.decision import DecisionRequest
from flipbot.domain.indicators import MINUTE_MS, MarketIndicators
from flipbot.domain.model import MarketSnapshot, Side
from flipbot.domain.strategies_lab import AdaptiveStrategy, MaCrossStrategy
from flipbot.domain.strategy import FixedMarginStrategy, OfflineStrategy
from flipbot.ports import DecisionMaker
from flipbot_dev.replay.data import BookEvent, MarketData, TradeEvent, load_market_data

DATA = (
    ROOT.parent
    / "shared"
    / "data"
    / "klines"
    / ("BTCUSDT_1m_2020-01-01_2020-01-03_binance-vision.csv")
)
SYMBOL = "BTCUSDT"
BASELINE = "fixed"
STRATEGIES: dict[str, Callable[[], DecisionMaker]] = {
    "fixed": FixedMarginStrategy,
    "offline": OfflineStrategy,
    "adaptive": AdaptiveStrategy,
    "ma-cross": MaCrossStrategy,
}


def snapshots(data: MarketData) -> tuple[list[MarketSnapshot], float]:
    """The snapshot at the close of every minute, and the seconds it took to build them."""
    indicators = MarketIndicators(SYMBOL)
    out: list[MarketSnapshot] = []
    started = time.perf_counter()
    minute = data.first_ms // MINUTE_MS
    for event in data.events:
        event_minute = event.time_ms // MINUTE_MS
        if event_minute > minute and indicators.has_data:
            out.append(indicators.snapshot(event_minute * MINUTE_MS - 1))
            minute = event_minute
        if isinstance(event, TradeEvent):
            indicators.on_trade(event.time_ms, event.price, event.qty, event.is_buyer_maker)
        elif isinstance(event, BookEvent):
            indicators.on_book(event.bid, event.bid_qty, event.ask, event.ask_qty)
    out.append(indicators.snapshot(data.last_ms))
    return out, time.perf_counter() - started


def requests(snaps: Sequence[MarketSnapshot], leg: Side) -> list[DecisionRequest]:
    common: dict[str, Any] = {
        "leg": leg,
        "symbol": SYMBOL,
        "quote_per_cycle": Decimal(10),
        "min_confidence": 0.8,
        "min_profit": Decimal("0.01"),
        "target_profit": Decimal("0.05"),
        "fee_rate_round_trip": Decimal("0.002"),
    }
    out = []
    for snap in snaps:
        extra: dict[str, Any] = {}
        if leg is Side.SELL:
            entry = (snap.last_price * Decimal("0.995")).quantize(Decimal("0.01"))
            extra = {
                "entry_price": entry,
                "floor_price": entry * Decimal("1.012"),
                "quantity": Decimal("0.001"),
            }
        out.append(DecisionRequest(snapshot=snap, **common, **extra))
    return out


def measure(make: Callable[[], DecisionMaker], batch: Sequence[DecisionRequest]) -> float:
    """Seconds for a fresh decision maker to answer every request of ``batch``."""
    strategy = make()
    decide = strategy.decide
    started = time.perf_counter()
    for request in batch:
        decide(request)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.strategies", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="runs per strategy (median)")
    parser.add_argument("--data", type=Path, default=DATA, help="a klines CSV")
    args = parser.parse_args([] if argv is None else list(argv))
    if not args.data.is_file():
        print(
            f"bench.strategies: skipped: {args.data} not found (the real klines live in "
            "../shared/data beside the repository)"
        )
        return 0
    data = load_market_data(args.data, symbol=SYMBOL)
    snaps, indicator_seconds = snapshots(data)
    candles = len(snaps)
    buys, sells = requests(snaps, Side.BUY), requests(snaps, Side.SELL)
    figures: dict[str, float] = {"indicators": round(candles / indicator_seconds, 1)}
    details: dict[str, Any] = {
        "data": args.data.name,
        "candles": candles,
        "market_events": len(data),
        "runs": args.runs,
        "buy_us_per_decision": {},
        "sell_us_per_decision": {},
        "sell_candles_per_second": {},
    }
    rows = []
    for name, make in STRATEGIES.items():
        buy = median(measure(make, buys) for _ in range(args.runs))
        sell = median(measure(make, sells) for _ in range(args.runs))
        figures[name] = round(candles / buy, 1)
        details["buy_us_per_decision"][name] = round(buy / candles * 1e6, 2)
        details["sell_us_per_decision"][name] = round(sell / candles * 1e6, 2)
        details["sell_candles_per_second"][name] = round(candles / sell, 1)
        rows.append(
            [
                name,
                f"{candles / buy:,.0f}",
                f"{buy / candles * 1e6:.1f}",
                f"{candles / sell:,.0f}",
                f"{sell / candles * 1e6:.1f}",
            ]
        )
    rows.append(
        [
            "indicators",
            f"{figures['indicators']:,.0f}",
            f"{indicator_seconds / candles * 1e6:.1f}",
            "",
            "",
        ]
    )
    print(
        f"{candles:,} one-minute candles of {SYMBOL} ({len(data):,} market events), "
        f"median of {args.runs} runs"
    )
    print(
        table(["strategy", "BUY candles/s", "us/decision", "SELL candles/s", "us/decision"], rows)
    )
    path = write_result(
        "strategies",
        figures,
        unit="candles per second (BUY leg)",
        baseline=BASELINE,
        details=details,
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
