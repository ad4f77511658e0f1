"""The paper exchange: matching-engine throughput and REST round trips on loopback.

* **Matching engine**: the bundled sample (24 h, seed 7) replayed into a
  :class:`~flipbot_dev.paper.engine.PaperExchange` holding 100 resting limit orders (50 bids
  and 50 asks laddered 1 % to 25 % away from the first price; those that fill stay
  filled), beside the same replay with no order at all. Figures: microseconds per
  replayed trade (book updates included in the time), median of ``--runs`` runs; the
  trades per second are in the details.
* **REST round trips**: the real python-binance ``Client`` against ``flipbot exchange
  serve``'s HTTP server on 127.0.0.1 (keep-alive), ``--requests`` calls per kind:
  ``GET /api/v3/ping`` (the baseline), ``GET /api/v3/ticker/price``, signed
  ``POST /api/v3/order`` (a resting limit order), signed ``GET /api/v3/order`` and
  signed ``DELETE /api/v3/order``; p50 and p99 in microseconds. The same calls through
  the in-process transport (no sockets) are in the details.

``python -m bench.exchange [--runs N] [--requests N]``; writes ``bench/results/exchange.json``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from bench.common import machine, median, table, write_result
from flipbot_dev.paper.engine import PaperExchange
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.paper.server import PaperHttpServer, http_client, wall_ms
from flipbot_dev.paper.symbols import default_symbol_info
from flipbot_dev.paper.transport import make_client
from flipbot_dev.replay.data import BookEvent, MarketData, TradeEvent
from flipbot_dev.replay.sample import generate_sample

SYMBOL = "TRUMPUSDC"
RESTING = 100
BASELINE = "rest_ping_p50"


# --- matching engine ----------------------------------------------------------------------------
def _engine(data: MarketData, resting: int) -> tuple[PaperExchange, float]:
    """Replay ``data`` into a fresh exchange with ``resting`` orders; (exchange, seconds)."""
    first_ms = data.first_ms
    exchange = PaperExchange(
        [SYMBOL], clock=lambda: first_ms, balances={"USDC": "10000000", "TRUMP": "1000000"}
    )
    first = next(data.trades())
    book = next(data.books())
    exchange.on_book(book.time_ms, book.bid, book.bid_qty, book.ask, book.ask_qty)
    exchange.on_trade(first.time_ms, first.price, first.qty, first.is_buyer_maker)
    price = first.price
    for i in range(resting):
        away = Decimal(1) + Decimal(i // 2 + 1) / 200  # 1 % ... 25 %
        side = "BUY" if i % 2 == 0 else "SELL"
        limit = price / away if side == "BUY" else price * away
        exchange.place_order(SYMBOL, side, "LIMIT", "1.000", f"{limit:.2f}", "GTC", f"r{i}")
    exchange.drain()
    on_trade, on_book = exchange.on_trade, exchange.on_book
    started = time.perf_counter()
    for event in data.events:
        if isinstance(event, TradeEvent):
            on_trade(event.time_ms, event.price, event.qty, event.is_buyer_maker)
        else:
            assert isinstance(event, BookEvent)
            on_book(event.time_ms, event.bid, event.bid_qty, event.ask, event.ask_qty)
        if len(exchange.outbox) > 1000:
            exchange.outbox.clear()
    return exchange, time.perf_counter() - started


def engine_figures(runs: int) -> tuple[dict[str, float], dict[str, Any]]:
    data = generate_sample(seed=7, hours=24)
    trades = sum(1 for _ in data.trades())
    figures: dict[str, float] = {}
    details: dict[str, Any] = {"sample": data.source, "events": len(data), "trades": trades}
    for resting in (0, RESTING):
        times = []
        for _ in range(runs):
            exchange, seconds = _engine(data, resting)
            times.append(seconds)
        best = median(times)
        label = f"engine_trade_{resting}_resting"
        figures[label] = round(best / trades * 1e6, 3)
        details[f"engine_trades_per_s_{resting}_resting"] = round(trades / best)
        details[f"engine_filled_of_{resting}_resting"] = sum(
            1 for o in exchange.all_orders(SYMBOL, limit=1000) if o["status"] == "FILLED"
        )
    details["engine_ratio_100_to_0_resting"] = round(
        figures[f"engine_trade_{RESTING}_resting"] / figures["engine_trade_0_resting"], 3
    )
    return figures, details


# --- REST round trips -------------------------------------------------------------------
def _percentiles(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def _round_trips(client: Any, count: int) -> dict[str, list[float]]:
    calls: dict[str, Callable[[int], Any]] = {
        "ping": lambda i: client.ping(),
        "ticker_price": lambda i: client.get_symbol_ticker(symbol=SYMBOL),
        "order_place": lambda i: client.order_limit_buy(
            symbol=SYMBOL, quantity="1.000", price="9.00", newClientOrderId=f"b{i}"
        ),
        "order_query": lambda i: client.get_order(symbol=SYMBOL, origClientOrderId=f"b{i}"),
        "order_cancel": lambda i: client.cancel_order(symbol=SYMBOL, origClientOrderId=f"b{i}"),
    }
    samples: dict[str, list[float]] = {}
    for name, call in calls.items():
        for i in range(min(20, count)):  # warm-up: connections, caches
            call(count + i)
        timings = []
        for i in range(count):
            started = time.perf_counter()
            call(i)
            timings.append((time.perf_counter() - started) * 1e6)
        samples[name] = timings
    return samples


def _market() -> tuple[PaperExchange, BinanceRestApp]:
    info = default_symbol_info(SYMBOL, max_num_orders=10**6)  # every placed order stays open
    exchange = PaperExchange([info], clock=wall_ms, balances={"USDC": "1000000"})
    exchange.on_book(wall_ms(), "10.00", "5", "10.01", "5")
    exchange.on_trade(wall_ms(), "10.00", "1", True)
    app = BinanceRestApp(
        exchange,
        api_key="paper",
        api_secret="paper-secret",
        weight_limit=10**9,
        order_limit_10s=10**9,
        order_limit_1d=10**9,
    )
    return exchange, app


def rest_figures(count: int) -> tuple[dict[str, float], dict[str, Any]]:
    figures: dict[str, float] = {}
    details: dict[str, Any] = {"requests_per_kind": count}
    _, app = _market()
    with PaperHttpServer(app) as server:
        samples = _round_trips(http_client(server.base_url), count)
    for name, timings in samples.items():
        p50, p99 = _percentiles(timings)
        figures[f"rest_{name}_p50"] = round(p50, 1)
        figures[f"rest_{name}_p99"] = round(p99, 1)
    _, app = _market()
    for name, timings in _round_trips(make_client(app), count).items():
        p50, p99 = _percentiles(timings)
        details[f"inprocess_{name}_p50_us"] = round(p50, 1)
        details[f"inprocess_{name}_p99_us"] = round(p99, 1)
    return figures, details


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="engine replays per figure")
    parser.add_argument("--requests", type=int, default=1000, help="round trips per kind")
    args = parser.parse_args([] if argv is None else argv)

    engine, engine_details = engine_figures(max(1, args.runs))
    rest, rest_details = rest_figures(max(10, args.requests))
    figures = {**rest, **engine}
    path = write_result(
        "exchange",
        figures,
        unit="microseconds (per replayed trade for engine_*, per round trip for rest_*)",
        baseline=BASELINE,
        details={**engine_details, **rest_details},
    )
    trades_0 = engine_details["engine_trades_per_s_0_resting"]
    trades_100 = engine_details[f"engine_trades_per_s_{RESTING}_resting"]
    print(
        table(
            ["matching engine", "us/trade", "trades/s"],
            [
                ["no resting order", engine["engine_trade_0_resting"], f"{trades_0:,}"],
                [
                    f"{RESTING} resting orders",
                    engine[f"engine_trade_{RESTING}_resting"],
                    f"{trades_100:,}",
                ],
            ],
        )
    )
    print()
    names = ["ping", "ticker_price", "order_place", "order_query", "order_cancel"]
    print(
        table(
            ["REST on loopback", "p50 us", "p99 us", "p50 / ping", "in process p50 us"],
            [
                [
                    name,
                    rest[f"rest_{name}_p50"],
                    rest[f"rest_{name}_p99"],
                    f"{rest[f'rest_{name}_p50'] / rest[BASELINE]:.2f}",
                    rest_details[f"inprocess_{name}_p50_us"],
                ]
                for name in names
            ],
        )
    )
    print(f"\n{machine()['cpu_model']}, {machine()['cores']} cores; results: {path}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
