"""How long a day of market data takes to replay through the whole digital twin.

Issue target: one day of 1-minute data in under 30 s on a 2-core machine. Figures:

* ``klines_day_s``: the real BTCBUSD 1m day in ``../shared/data`` (1,440 klines, expanded
  to trades and book updates), replayed through the template's functions, rules and
  state machine on moto, against the paper exchange;
* ``sample_day_s``: the bundled sample's 24 h (a busier, trade-by-trade market);
* ``bare_klines_day_s``: the baseline, measured in the same run: the same kline events fed
  to the paper exchange and the indicators alone, with no cloud. The ratio says what the
  serverless machinery costs on top of the market simulation itself;
* ``load_btcusdt_3d_s``: loading the 3-day BTCUSDT klines file (4,320 candles) into
  events, and ``generate_sample_day_s``: generating the bundled sample's 24 h.
"""

from __future__ import annotations

import io
import time
from decimal import Decimal
from pathlib import Path

from bench.common import ROOT, table, write_result

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

KLINES = ROOT.parent / "shared" / "data" / "klines" / "BTCBUSD_1m_2022-12-13_lean.csv"


def _bare(data: object, symbol: str) -> float:
    from flipbot.domain.indicators import MarketIndicators
    from flipbot_dev.paper.engine import PaperExchange
    from flipbot_dev.replay.data import BookEvent, TradeEvent

    clock = [0]
    exchange = PaperExchange([symbol], clock=lambda: clock[0], balances={"BUSD": Decimal(100)})
    indicators = MarketIndicators(symbol)
    started = time.perf_counter()
    for event in data:  # type: ignore[attr-defined]
        clock[0] = event.time_ms
        if isinstance(event, TradeEvent):
            indicators.on_trade(event.time_ms, event.price, event.qty, event.is_buyer_maker)
            exchange.on_trade(event.time_ms, event.price, event.qty, event.is_buyer_maker)
        elif isinstance(event, BookEvent):
            indicators.on_book(event.bid, event.bid_qty, event.ask, event.ask_qty)
            exchange.on_book(event.time_ms, event.bid, event.bid_qty, event.ask, event.ask_qty)
    return time.perf_counter() - started


def _twin(data: object, symbol: str) -> tuple[float, dict[str, object]]:
    from flipbot_dev.twin.runner import ReplayConfig, run_replay

    started = time.perf_counter()
    report = run_replay(
        ReplayConfig(template=TEMPLATE, data=data, symbol=symbol, progress=False),  # type: ignore[arg-type]
        out=io.StringIO(),
    )
    return time.perf_counter() - started, report


def main() -> int:
    from flipbot_dev.replay.data import load_market_data
    from flipbot_dev.replay.sample import generate_sample

    figures: dict[str, float] = {}
    details: dict[str, object] = {}
    btcusdt = KLINES.parent / "BTCUSDT_1m_2020-01-01_2020-01-03_binance-vision.csv"
    if btcusdt.is_file():
        started = time.perf_counter()
        load_market_data(btcusdt)
        figures["load_btcusdt_3d_s"] = time.perf_counter() - started
    started = time.perf_counter()
    generate_sample(seed=7, hours=24)
    figures["generate_sample_day_s"] = time.perf_counter() - started
    if KLINES.is_file():
        klines = load_market_data(KLINES, symbol="BTCBUSD")
        figures["bare_klines_day_s"] = _bare(klines, "BTCBUSD")
        figures["klines_day_s"], report = _twin(klines, "BTCBUSD")
        details["klines_day"] = {
            "events": len(klines),
            "cycles": report["cycles_completed"],
            "invariants_ok": all(report["invariants"].values()),
        }
    else:
        print(f"skipped the kline day: {KLINES} not found")
    sample = generate_sample(seed=7, hours=24)
    figures["sample_day_s"], report = _twin(sample, "TRUMPUSDC")
    details["sample_day"] = {
        "events": len(sample),
        "cycles": report["cycles_completed"],
        "invariants_ok": all(report["invariants"].values()),
    }
    baseline = "bare_klines_day_s" if "bare_klines_day_s" in figures else None
    path = write_result(
        "replay",
        {k: round(v, 3) for k, v in figures.items()},
        unit="seconds",
        baseline=baseline,
        details={**details, "target_s": 30},
    )
    print(table(["figure", "seconds"], [(k, f"{v:.2f}") for k, v in figures.items()]))
    print(f"written: {Path(path).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
