"""Incremental indicators against straightforward reference computations."""

from __future__ import annotations

import csv
import math
import random
import statistics
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from flipbot.domain.indicators import (
    SMA,
    VWAP,
    BuySellRatio,
    LargeTrades,
    MarketIndicators,
    RollingHighLowVolume,
    RollingVolatility,
    Trend,
    ma_trend,
    order_book_imbalance,
)
from flipbot.domain.model import BookTop

D = Decimal
T0 = 1_723_161_240_000  # a minute boundary
Trade = tuple[int, float, float, bool]  # time_ms, price, qty, is_buyer_maker


def _trades(n: int, seed: int, spacing_ms: int = 700) -> list[Trade]:
    rng = random.Random(seed)
    out, t, price = [], T0, 10.0
    for _ in range(n):
        t += rng.randint(0, spacing_ms)
        price = max(0.5, price * (1 + rng.gauss(0, 0.002)))
        out.append((t, round(price, 2), round(rng.expovariate(1 / 20), 3), rng.random() < 0.45))
    return out


def _in_window(trades: Sequence[Trade], now: int, window_ms: int) -> list[Trade]:
    return [x for x in trades if now - window_ms < x[0] <= now]


# --- moving averages and trend ----------------------------------------------------------
def test_given_a_series_then_sma_is_the_mean_of_the_last_n_values() -> None:
    values = [random.Random(3).uniform(5, 15) for _ in range(60)]
    sma = SMA(7)
    for i, value in enumerate(values):
        result = sma.update(value)
        assert sma.value == result
        if i < 6:
            assert result is None
        else:
            assert result == pytest.approx(statistics.fmean(values[i - 6 : i + 1]), rel=1e-12)
        if i < 7:
            assert sma.previous is None
        else:
            assert sma.previous == pytest.approx(statistics.fmean(values[i - 7 : i]), rel=1e-12)


def test_given_a_long_series_then_sma_does_not_drift() -> None:
    rng, sma = random.Random(5), SMA(20)
    values = [rng.uniform(1e-3, 1e5) for _ in range(50_000)]
    for value in values:
        sma.update(value)
    assert sma.value == pytest.approx(math.fsum(values[-20:]) / 20, rel=1e-12)


def test_given_an_invalid_length_then_value_error() -> None:
    with pytest.raises(ValueError, match="SMA"):
        SMA(0)


@pytest.mark.parametrize(
    ("current", "previous", "trend"),
    [
        (10.006, 10.0, Trend.UP),
        (9.994, 10.0, Trend.DOWN),
        (10.004, 10.0, Trend.FLAT),
        (9.996, 10.0, Trend.FLAT),
        (10.0, 10.0, Trend.FLAT),
        (None, 10.0, Trend.FLAT),
        (10.0, None, Trend.FLAT),
    ],
)
def test_given_two_ma_values_then_trend_uses_the_relative_flat_threshold(
    current: float | None, previous: float | None, trend: Trend
) -> None:
    assert ma_trend(current, previous, 0.0005) is trend


def test_given_a_rising_series_then_the_sma_trend_is_up_then_flat() -> None:
    sma = SMA(3)
    for value in (10.0, 10.0, 10.0, 10.3):
        sma.update(value)
    assert sma.trend() is Trend.UP
    for value in (10.3, 10.3, 10.3):
        sma.update(value)
    assert sma.trend() is Trend.FLAT


# --- volatility, imbalance --------------------------------------------------------------
def test_given_closes_then_volatility_is_the_stdev_of_the_last_n_log_returns() -> None:
    rng = random.Random(9)
    closes = [10.0]
    for _ in range(40):
        closes.append(closes[-1] * math.exp(rng.gauss(0, 0.01)))
    vol = RollingVolatility(10)
    for i, close in enumerate(closes):
        vol.update(close)
        if i < 10:
            assert vol.value is None
        else:
            returns = [math.log(closes[j] / closes[j - 1]) for j in range(i - 9, i + 1)]
            assert vol.value == pytest.approx(statistics.stdev(returns), rel=1e-9)


def test_given_flat_closes_then_volatility_is_zero() -> None:
    vol = RollingVolatility(3)
    for _ in range(4):
        vol.update(26.13)
    assert vol.value == 0.0


@pytest.mark.parametrize(
    ("bid_qty", "ask_qty", "imbalance"),
    [(3.0, 1.0, 0.5), (1.0, 3.0, -0.5), (5.0, 0.0, 1.0), (0.0, 5.0, -1.0), (2.0, 2.0, 0.0)],
)
def test_given_book_quantities_then_imbalance_is_in_minus_one_to_one(
    bid_qty: float, ask_qty: float, imbalance: float
) -> None:
    assert order_book_imbalance(bid_qty, ask_qty) == imbalance


def test_given_an_empty_book_then_imbalance_is_zero() -> None:
    assert order_book_imbalance(0.0, 0.0) == 0.0


# --- rolling windows --------------------------------------------------------------------
@pytest.mark.parametrize("now_offset", [0, 1, 999, 30_000, 59_999, 200_000])
def test_given_exact_buckets_then_vwap_matches_the_reference(now_offset: int) -> None:
    trades, window = _trades(600, seed=1), 60_000
    vwap = VWAP(window, bucket_ms=1)
    for t, p, q, _ in trades:
        vwap.add(t, p, q)
    now = trades[-1][0] + now_offset
    inside = _in_window(trades, now, window)
    if not inside:
        assert vwap.value(now) is None
        return
    expected = sum(p * q for _, p, q, _ in inside) / sum(q for *_, q, _ in inside)
    assert vwap.value(now) == pytest.approx(expected, rel=1e-12)


def test_given_one_second_buckets_then_a_bucket_partly_in_the_window_counts_whole() -> None:
    vwap = VWAP(10_000, bucket_ms=1000)
    vwap.add(T0 + 500, 10.0, 1.0)  # bucket [T0, T0 + 1000)
    vwap.add(T0 + 5_000, 20.0, 1.0)
    assert vwap.value(T0 + 10_400) == pytest.approx(15.0)  # T0 + 400 .. still overlaps
    assert vwap.value(T0 + 10_998) == pytest.approx(15.0)  # (T0 + 998, ...] holds T0 + 999
    assert vwap.value(T0 + 10_999) == pytest.approx(20.0)  # (T0 + 999, ...]: bucket 0 is out
    assert vwap.value(T0 + 15_998) == pytest.approx(20.0)
    assert vwap.value(T0 + 15_999) is None


@pytest.mark.parametrize("bucket_ms", [1, 1000])
def test_given_taker_flows_then_buy_sell_ratio_matches_the_reference(bucket_ms: int) -> None:
    trades, window = _trades(800, seed=2), 120_000
    ratio = BuySellRatio(window, bucket_ms=bucket_ms)
    for t, _, q, maker in trades:
        ratio.add(t, q, maker)
    now = (trades[-1][0] // 1000 + 1) * 1000 - 1  # end of a second: buckets align exactly
    inside = _in_window(trades, now, window)
    bought = sum(q for *_, q, maker in inside if not maker)  # buyer is taker
    sold = sum(q for *_, q, maker in inside if maker)  # buyer is maker: taker sold
    assert ratio.value(now) == pytest.approx(bought / sold, rel=1e-12)


def test_given_only_taker_buys_then_the_ratio_is_unknown() -> None:
    ratio = BuySellRatio(60_000)
    ratio.add(T0, 5.0, False)
    assert ratio.value(T0) is None


def test_given_large_and_small_trades_then_only_large_ones_are_counted_in_the_window() -> None:
    trades, window = _trades(500, seed=4), 60_000
    large = LargeTrades(threshold_quote=400.0, window_ms=window)
    for t, p, q, _ in trades:
        large.add(t, p, q)
    for now in (trades[-1][0], trades[-1][0] + 30_000):
        expected = sum(1 for _, p, q, _ in _in_window(trades, now, window) if p * q >= 400.0)
        assert large.count(now) == expected
    assert large.count(trades[-1][0] + window) == 0


@pytest.mark.parametrize("bucket_ms", [1, 60_000])
def test_given_trades_then_rolling_high_low_volume_match_the_reference(bucket_ms: int) -> None:
    trades, window = _trades(1500, seed=6, spacing_ms=2000), 600_000
    day = RollingHighLowVolume(window, bucket_ms)
    for t, p, q, _ in trades:
        day.add(t, p, q)
    now = (trades[-1][0] // 60_000 + 1) * 60_000 - 1
    inside = _in_window(trades, now, window)
    high, low, volume = day.value(now) or (0.0, 0.0, 0.0)
    assert (high, low) == (max(x[1] for x in inside), min(x[1] for x in inside))
    assert volume == pytest.approx(math.fsum(x[2] for x in inside), rel=1e-12)
    assert day.value(now + window) is None


@pytest.mark.parametrize(("window", "bucket"), [(1000, 0), (1000, 2000)])
def test_given_an_invalid_bucket_then_value_error(window: int, bucket: int) -> None:
    with pytest.raises(ValueError, match="bucket_ms"):
        VWAP(window, bucket)


# --- the aggregate ----------------------------------------------------------------------
def _minute_closes(trades: Sequence[Trade], until_minute: int) -> list[float]:
    """Reference: the last price of each closed minute, empty minutes repeating it."""
    last: dict[int, float] = {}
    for t, p, _, _ in trades:
        last[t // 60_000] = p
    closes, close = [], None
    for minute in range(min(last), until_minute):
        close = last.get(minute, close)
        closes.append(close)
    return [c for c in closes if c is not None]


def test_given_trades_over_minutes_then_mas_use_closed_minute_closes_only() -> None:
    base = T0 // 60_000
    prices = [10.0, 10.2, 10.4, 10.6, 10.8, 11.0, 11.2, 11.4]
    indicators = MarketIndicators("TRUMPUSDC")
    for i, price in enumerate(prices):
        minute_start = (base + i) * 60_000
        indicators.on_trade(minute_start + 100, price - 0.5, 1.0, False)
        indicators.on_trade(minute_start + 59_000, price, 1.0, True)  # the close
    snap = indicators.snapshot(T0 + 8 * 60_000)
    # the last minute (11.4) has not closed: no later trade yet
    assert snap.ma5 == D(str(round(statistics.fmean(prices[2:7]), 8)))
    assert snap.ma7 == D(str(round(statistics.fmean(prices[0:7]), 8)))
    assert snap.ma20 is None
    assert snap.ma7_trend == "FLAT"  # a single MA7 value has nothing to compare with
    indicators.on_trade(T0 + 8 * 60_000 + 1, 11.6, 1.0, False)
    snap = indicators.snapshot(T0 + 8 * 60_000 + 1)
    assert snap.ma7 == D(str(round(statistics.fmean(prices[1:8]), 8)))
    assert snap.ma7_trend == "UP"
    assert snap.last_price == D("11.6")


def test_given_minutes_without_trades_then_the_previous_close_repeats() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    indicators.on_trade(T0, 10.0, 1.0, False)
    indicators.on_trade(T0 + 60_000, 12.0, 1.0, False)
    indicators.on_trade(T0 + 5 * 60_000, 14.0, 1.0, False)  # minutes 2, 3, 4 were quiet
    # closes: 10, 12, 12, 12, 12 -> MA5 = 11.6
    assert indicators.snapshot(T0 + 5 * 60_000).ma5 == D("11.6")


def test_given_a_late_trade_then_last_price_keeps_the_newest() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    indicators.on_trade(T0 + 2_000, 10.5, 1.0, False)
    indicators.on_trade(T0 + 1_000, 10.1, 1.0, False)
    assert indicators.snapshot(T0 + 2_000).last_price == D("10.5")


def test_given_trades_and_a_book_then_the_snapshot_carries_every_indicator() -> None:
    indicators = MarketIndicators("TRUMPUSDC", large_trade_quote=D("100"))
    indicators.on_trade(T0, D("10.00"), D("5.000"), False)  # 50 USDC, taker buy
    indicators.on_trade(T0 + 1_000, D("10.10"), D("20.000"), True)  # 202 USDC, taker sell
    indicators.on_trade(T0 + 2_000, D("10.20"), D("10.000"), False)  # 102 USDC, taker buy
    indicators.on_book(D("10.19"), D("30"), D("10.21"), D("10"))
    snap = indicators.snapshot(T0 + 2_000)
    assert snap.symbol == "TRUMPUSDC"
    assert snap.time_ms == T0 + 2_000
    assert snap.last_price == D("10.20")  # the Decimal as given
    assert snap.book == BookTop(D("10.19"), D("30"), D("10.21"), D("10"))
    assert snap.imbalance == D("0.5")
    assert snap.buy_sell_ratio == D("0.75")  # (5 + 10) / 20
    assert snap.large_trades == 2
    assert snap.vwap == D(str(round((50 + 202 + 102) / 35, 8)))
    assert (snap.high_24h, snap.low_24h, snap.volume_24h) == (D("10.2"), D("10"), D("35"))
    assert (snap.ma5, snap.ma7, snap.ma20, snap.volatility) == (None, None, None, None)


def test_given_floats_with_long_fractions_then_snapshot_decimals_have_at_most_8_places() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    for i in range(3):
        indicators.on_trade(T0 + i, 10 / 3 + i, 1 / 7, i == 1)
    indicators.on_book(10 / 3, 1 / 3, 11 / 3, 2 / 3)
    snap = indicators.snapshot(T0 + 3)
    values = [snap.last_price, snap.vwap, snap.imbalance, snap.buy_sell_ratio, snap.volume_24h]
    values += [snap.book.bid, snap.book.ask_qty] if snap.book else []
    for value in values:
        assert value is not None
        assert value == value.quantize(D("1E-8")), value


def test_given_only_a_book_then_last_price_is_the_mid() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    assert not indicators.has_data
    indicators.on_book(D("10.00"), D("1"), D("10.02"), D("1"))
    snap = indicators.snapshot(T0)
    assert (snap.last_price, snap.high_24h, snap.vwap) == (D("10.01"), None, None)


def test_given_no_data_then_snapshot_refuses() -> None:
    with pytest.raises(ValueError, match="TRUMPUSDC"):
        MarketIndicators("TRUMPUSDC").snapshot(T0)


def test_given_a_long_stream_then_every_indicator_matches_its_reference() -> None:
    trades = _trades(4000, seed=8, spacing_ms=1500)  # about 50 minutes
    indicators = MarketIndicators("X", bucket_ms=1, large_trade_quote=D("300"))
    for trade in trades:
        indicators.on_trade(*trade)
    now = trades[-1][0]
    snap = indicators.snapshot(now)
    closes = _minute_closes(trades, now // 60_000)
    assert snap.ma20 == D(str(round(statistics.fmean(closes[-20:]), 8)))
    returns = [math.log(b / a) for a, b in zip(closes[-21:-1], closes[-20:], strict=True)]
    assert float(snap.volatility or 0) == pytest.approx(statistics.stdev(returns), abs=1e-8)
    inside = _in_window(trades, now, 15 * 60_000)
    vwap = sum(p * q for _, p, q, _ in inside) / sum(q for *_, q, _ in inside)
    assert float(snap.vwap or 0) == pytest.approx(vwap, abs=1e-8)
    flow = _in_window(trades, now, 5 * 60_000)
    assert snap.large_trades == sum(1 for _, p, q, _ in flow if p * q >= 300)


def _load_trades(path: Path) -> list[Trade]:
    with path.open() as handle:
        return [
            (int(r["time_ms"]), float(r["price"]), float(r["qty"]), r["is_buyer_maker"] == "true")
            for r in csv.DictReader(handle)
        ]


def test_given_real_btcusdt_trades_then_indicators_match_the_reference(shared_data: Path) -> None:
    path = shared_data / "trades" / "BTCUSDT_trades_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
    if not path.exists():
        pytest.skip(f"real trade capture not available: {path}")
    trades = _load_trades(path)
    indicators = MarketIndicators("BTCUSDT", bucket_ms=1)
    for trade in trades:
        indicators.on_trade(*trade)
    now = trades[-1][0]
    snap = indicators.snapshot(now)
    closes = _minute_closes(trades, now // 60_000)
    assert snap.ma5 == D(str(round(statistics.fmean(closes[-5:]), 8)))
    assert snap.last_price == D(str(trades[-1][1]))
    assert snap.high_24h == D(str(max(t[1] for t in trades)))
    assert snap.low_24h == D(str(min(t[1] for t in trades)))
    flow = _in_window(trades, now, 5 * 60_000)
    bought = math.fsum(q for *_, q, maker in flow if not maker)
    sold = math.fsum(q for *_, q, maker in flow if maker)
    assert float(snap.buy_sell_ratio or 0) == pytest.approx(bought / sold, abs=1e-8)


def test_given_two_closed_minutes_then_the_price_and_volume_change_compare_them() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    minute = 60_000
    # minute 0: 2 traded, closes at 10.00; minute 1: 3 traded, closes at 10.10
    indicators.on_trade(0, Decimal("9.90"), Decimal("1"), False)
    indicators.on_trade(30_000, Decimal("10.00"), Decimal("1"), False)
    before = indicators.snapshot(minute - 1)
    indicators.on_trade(minute + 5_000, Decimal("10.05"), Decimal("1"), True)
    indicators.on_trade(minute + 50_000, Decimal("10.10"), Decimal("2"), False)
    one_closed = indicators.snapshot(2 * minute - 1)
    indicators.on_trade(2 * minute + 1_000, Decimal("10.20"), Decimal("1"), False)
    snapshot = indicators.snapshot(2 * minute + 2_000)
    assert (before.price_change_1m, before.volume_change_1m) == (None, None)
    assert (one_closed.price_change_1m, one_closed.volume_change_1m) == (None, None)
    assert snapshot.price_change_1m == Decimal("0.01")  # 10.10 / 10.00 - 1
    assert snapshot.volume_change_1m == Decimal("0.5")  # 3 / 2 - 1


def test_given_a_minute_without_trades_then_its_volume_change_is_unknown() -> None:
    indicators = MarketIndicators("TRUMPUSDC")
    indicators.on_trade(0, Decimal("10"), Decimal("1"), False)
    indicators.on_trade(125_000, Decimal("10"), Decimal("1"), False)  # minute 1 had none
    indicators.on_trade(185_000, Decimal("10.5"), Decimal("4"), False)
    snapshot = indicators.snapshot(190_000)
    assert snapshot.price_change_1m == Decimal("0.0")  # minute 2 closed at 10, as minute 1
    assert snapshot.volume_change_1m is None  # minute 1 traded nothing
