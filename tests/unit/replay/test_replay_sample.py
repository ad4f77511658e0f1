"""The generated TRUMP-like sample: determinism, format and statistical realism."""

from __future__ import annotations

import hashlib
import itertools
import math
from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from flipbot_dev.replay.data import BookEvent, DataKind, MarketData, TradeEvent, load_market_data
from flipbot_dev.replay.sample import DEFAULT_START_MS, SAMPLE_SYMBOL, generate_sample, write_csv

TICK = Decimal("0.01")
STEP = Decimal("0.001")
DAY_MS = 86_400_000

# sha256 of write_csv(generate_sample(seed=7, hours=1)): pins the generator across machines
# and Python versions. A deliberate change of the model must update it.
SEED7_ONE_HOUR_SHA256 = "cba5858685741a0c12fa6b4d2aa494a92d7794ba4dce8d9327a0ed8208cc222e"


@pytest.fixture(scope="module")
def day() -> MarketData:
    return generate_sample()  # its speed: bench/replay.py (generate_sample_day_s)


@pytest.fixture(scope="module")
def trades(day: MarketData) -> list[TradeEvent]:
    return list(day.trades())


def _minute_returns(trades: list[TradeEvent]) -> list[float]:
    closes: dict[int, float] = {}
    for trade in trades:
        closes[trade.time_ms // 60_000] = float(trade.price)
    series = [closes[minute] for minute in sorted(closes)]
    return [math.log(b / a) for a, b in itertools.pairwise(series)]


def test_a_day_is_generated_with_the_documented_shape(
    day: MarketData, trades: list[TradeEvent]
) -> None:
    data = day

    assert (data.symbol, data.kind, data.tick, data.step) == (
        SAMPLE_SYMBOL,
        DataKind.SAMPLE,
        TICK,
        STEP,
    )
    assert DEFAULT_START_MS <= data.first_ms <= data.last_ms < DEFAULT_START_MS + DAY_MS
    assert 5 <= len(trades) / 1440 <= 30  # trades per minute on average
    times = [e.time_ms for e in data.events]
    assert times == sorted(times)


def test_prices_and_quantities_sit_on_the_tick_and_step_grid(
    day: MarketData, trades: list[TradeEvent]
) -> None:
    for trade in trades:
        assert trade.price == trade.price.quantize(TICK)
        assert trade.price > 0
        assert trade.qty == trade.qty.quantize(STEP)
        assert trade.qty > 0
    prices = [t.price for t in trades]
    assert Decimal(18) < min(prices) < Decimal(26) < max(prices) < Decimal(36)
    for book in day.books():
        assert book.ask - book.bid in (TICK, 2 * TICK)
        assert book.bid == book.bid.quantize(TICK)
        assert book.bid_qty == book.bid_qty.quantize(STEP)


def test_every_trade_prints_at_or_one_tick_through_its_book(day: MarketData) -> None:
    previous: BookEvent | TradeEvent | None = None
    through = 0
    for event in day.events:
        if isinstance(event, TradeEvent):
            assert isinstance(previous, BookEvent)
            assert previous.time_ms == event.time_ms
            touch = previous.bid if event.is_buyer_maker else previous.ask
            assert abs(event.price - touch) <= TICK
            through += event.price != touch
        previous = event
    assert 0 < through < 0.01 * len(day) / 2  # only some large trades sweep a level


def test_flow_has_both_sides_runs_and_large_trades(trades: list[TradeEvent]) -> None:
    sells = [t.is_buyer_maker for t in trades]
    assert 0.4 < sum(sells) / len(sells) < 0.6
    runs = sum(1 for a, b in itertools.pairwise(sells) if a != b)
    assert runs < 0.45 * len(sells)  # sides cluster: fewer switches than coin flips (0.5)
    quantities = sorted(t.qty for t in trades)
    median = quantities[len(quantities) // 2]
    assert Decimal(1) < median < Decimal(4)
    assert sum(1 for q in quantities if q > 20 * median) > 50


def test_returns_have_fat_tails_and_volatility_clustering(trades: list[TradeEvent]) -> None:
    returns = _minute_returns(trades)
    n = len(returns)
    mean = sum(returns) / n
    variance = sum((r - mean) ** 2 for r in returns) / n
    kurtosis = sum((r - mean) ** 4 for r in returns) / n / variance**2
    assert kurtosis > 3.0

    absolute = [abs(r) for r in returns]
    a_mean = sum(absolute) / n
    covariance = sum((absolute[i] - a_mean) * (absolute[i + 1] - a_mean) for i in range(n - 1))
    autocorrelation = covariance / sum((a - a_mean) ** 2 for a in absolute)
    assert autocorrelation > 0.05
    assert 0.002 < math.sqrt(variance) < 0.01  # 1-minute volatility of a meme coin


def test_a_simple_flip_bot_completes_several_round_trips(day: MarketData) -> None:
    """Buy one tick under the bid (re-priced every 15 min), sell at +1.5 %, repeat."""
    round_trips, state = 0, "idle"
    buy_price = sell_price = Decimal(0)
    placed_ms = 0
    for event in day.events:
        if isinstance(event, BookEvent):
            if state == "idle" or (state == "buying" and event.time_ms - placed_ms > 900_000):
                buy_price, placed_ms, state = event.bid - TICK, event.time_ms, "buying"
        elif state == "buying" and event.is_buyer_maker and event.price <= buy_price:
            sell_price = (buy_price * Decimal("1.015")).quantize(TICK, rounding=ROUND_CEILING)
            state = "selling"
        elif state == "selling" and not event.is_buyer_maker and event.price >= sell_price:
            round_trips, state = round_trips + 1, "idle"
    assert round_trips >= 3


def test_same_seed_same_events_other_seed_other_events() -> None:
    a = generate_sample(seed=7, hours=2)
    assert a.events == generate_sample(seed=7, hours=2).events
    assert a.events != generate_sample(seed=8, hours=2).events
    half_hour = generate_sample(seed=7, hours=0.5)
    assert half_hour.events == tuple(e for e in a.events if e.time_ms < half_hour.last_ms + 1)


def test_arguments_are_honoured() -> None:
    start = 1_700_000_000_000
    data = generate_sample(seed=1, hours=0.25, start_ms=start, symbol="TRUMPUSDT")

    assert data.symbol == "TRUMPUSDT"
    assert start <= data.first_ms <= data.last_ms < start + 15 * 60_000
    assert "seed=1" in data.source
    with pytest.raises(ValueError, match="hours"):
        generate_sample(hours=0)


def test_write_csv_round_trips_and_is_byte_identical(tmp_path: Path) -> None:
    data = generate_sample(seed=7, hours=1)
    first = write_csv(data, tmp_path / "TRUMPUSDC_trades_sample.csv")
    second = write_csv(generate_sample(seed=7, hours=1), tmp_path / "again.csv")

    content = first.read_bytes()
    assert content == second.read_bytes()
    assert content.startswith(b"time_ms,price,qty,is_buyer_maker\n")
    assert hashlib.sha256(content).hexdigest() == SEED7_ONE_HOUR_SHA256
    loaded = load_market_data(first)
    assert loaded.symbol == "TRUMPUSDC"
    assert list(loaded.trades()) == list(data.trades())
    assert loaded.tick == TICK
