"""MarketTape: klines and 24-hour tickers from the replayed trades."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot_dev.paper.tape import DAY_MS, MINUTE_MS, MarketTape, bucket_start

D = Decimal
T0 = 1_700_000_040_000  # 2023-11-14T22:14:00Z, a minute boundary
S = "TRUMPUSDC"


@pytest.fixture
def tape() -> MarketTape:
    tape = MarketTape()
    trades = [  # (offset ms, price, qty, is_buyer_maker)
        (0, "10.00", "1", False),
        (20_000, "10.50", "2", True),
        (59_999, "10.20", "1", False),
        (3 * MINUTE_MS + 5, "9.80", "4", True),  # two quiet minutes before it
    ]
    for offset, price, qty, maker in trades:
        tape.on_trade(S, T0 + offset, D(price), D(qty), maker)
    return tape


def test_one_minute_klines_fill_quiet_minutes_with_the_previous_close(tape: MarketTape) -> None:
    rows = tape.klines(S, "1m")
    assert [r[0] for r in rows] == [T0 + i * MINUTE_MS for i in range(4)]
    assert rows[0] == [
        T0,
        "10.00000000",
        "10.50000000",
        "10.00000000",
        "10.20000000",
        "4.00000000",
        T0 + MINUTE_MS - 1,
        "41.20000000",
        3,
        "2.00000000",
        "20.20000000",
        "0",
    ]
    assert rows[1][1:9] == ["10.20000000"] * 4 + [
        "0.00000000",
        T0 + 2 * MINUTE_MS - 1,
        "0.00000000",
        0,
    ]
    assert rows[3][1:6] == ["9.80000000"] * 4 + ["4.00000000"]


def test_wider_intervals_aggregate_the_minutes(tape: MarketTape) -> None:
    (row,) = tape.klines(S, "1h")
    start = bucket_start(T0, 60 * MINUTE_MS)
    assert (row[0], row[6]) == (start, start + 60 * MINUTE_MS - 1)
    assert [r[8] for r in tape.klines(S, "5m")] == [3, 1]  # 22:10-22:15, 22:15-22:20
    assert row[1:6] == ["10.00000000", "10.50000000", "9.80000000", "9.80000000", "8.00000000"]
    assert row[8] == 4


def test_weeks_start_on_monday() -> None:
    monday = 1_699_833_600_000  # 2023-11-13T00:00Z
    assert bucket_start(T0, 7 * DAY_MS) == monday


def test_kline_selection_by_time_and_limit(tape: MarketTape) -> None:
    assert [r[0] for r in tape.klines(S, "1m", limit=2)] == [T0 + 2 * MINUTE_MS, T0 + 3 * MINUTE_MS]
    assert [r[0] for r in tape.klines(S, "1m", start_ms=T0 + 1, limit=2)] == [
        T0 + MINUTE_MS,
        T0 + 2 * MINUTE_MS,
    ]
    assert [r[0] for r in tape.klines(S, "1m", end_ms=T0 + MINUTE_MS)] == [T0, T0 + MINUTE_MS]
    assert tape.klines("BTCUSDT", "1m") == []


def test_ticker_24hr_rolls_over_the_last_day(tape: MarketTape) -> None:
    now = T0 + 4 * MINUTE_MS
    stats = tape.ticker_24hr(S, now)
    assert (stats["openPrice"], stats["lastPrice"]) == ("10.00000000", "9.80000000")
    assert (stats["priceChange"], stats["priceChangePercent"]) == ("-0.20000000", "-2.000")
    assert (stats["firstId"], stats["lastId"], stats["count"]) == (1, 4, 4)
    assert stats["weightedAvgPrice"] == "10.05000000"  # 80.4 / 8
    assert (stats["openTime"], stats["closeTime"]) == (now - DAY_MS, now)

    later = tape.ticker_24hr(S, T0 + DAY_MS + MINUTE_MS)  # the first minute left the window
    assert (later["count"], later["prevClosePrice"], later["openPrice"]) == (
        1,
        "10.20000000",
        "9.80000000",
    )
    empty = tape.ticker_24hr(S, T0 + 3 * DAY_MS)
    assert (empty["count"], empty["firstId"], empty["lastPrice"]) == (0, -1, "0.00000000")
