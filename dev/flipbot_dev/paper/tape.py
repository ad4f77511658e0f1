"""The public market's history for the paper exchange: klines and 24-hour tickers.

:class:`MarketTape` listens to the trades a :class:`~flipbot_dev.paper.engine.PaperExchange`
replays (``exchange.trade_listeners``) and keeps one-minute candles per symbol, from
which it answers ``GET /api/v3/klines`` for every interval from ``1m`` to ``1w`` and
``GET /api/v3/ticker/24hr``. Public trades get sequential ids from 1 per symbol.

Conventions, as on Binance: a kline is ``[openTime, open, high, low, close, volume,
closeTime, quoteVolume, trades, takerBuyBase, takerBuyQuote, "0"]`` with decimals as
8-decimal strings; intervals without trades between two traded ones are reported with the
previous close and zero volume; weeks start on Monday 00:00 UTC. The 24-hour ticker is
rolled per minute (the window is the last 1440 one-minute candles, the current one
included) rather than per millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flipbot_dev.paper.engine import fmt8

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-05, the first Monday after the epoch
INTERVALS_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
ZERO = Decimal(0)


@dataclass(slots=True)
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_base: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_id: int = -1
    last_id: int = -1

    def add(self, trade_id: int, price: Decimal, qty: Decimal, taker_bought: bool) -> None:
        if self.trades == 0:
            self.open = self.high = self.low = price
            self.first_id = trade_id
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        quote = price * qty
        self.volume += qty
        self.quote_volume += quote
        self.trades += 1
        self.last_id = trade_id
        if taker_bought:
            self.taker_buy_base += qty
            self.taker_buy_quote += quote

    def merge(self, other: Candle) -> None:
        if other.trades == 0:
            return
        if self.trades == 0:
            self.open, self.high, self.low = other.open, other.high, other.low
            self.first_id = other.first_id
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.volume += other.volume
        self.quote_volume += other.quote_volume
        self.trades += other.trades
        self.taker_buy_base += other.taker_buy_base
        self.taker_buy_quote += other.taker_buy_quote
        self.last_id = other.last_id


@dataclass(slots=True)
class _Series:
    minutes: dict[int, Candle]
    next_id: int = 1
    last_qty: Decimal = ZERO


def bucket_start(time_ms: int, interval_ms: int) -> int:
    """The open time of the ``interval_ms`` candle holding ``time_ms`` (weeks from Monday)."""
    offset = _WEEK_OFFSET_MS if interval_ms == INTERVALS_MS["1w"] else 0
    return (time_ms - offset) // interval_ms * interval_ms + offset


class MarketTape:
    """One-minute candles of every replayed public trade, per symbol."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def on_trade(
        self, symbol: str, time_ms: int, price: Decimal, qty: Decimal, is_buyer_maker: bool
    ) -> None:
        """Record one public trade (the signature of ``PaperExchange.trade_listeners``)."""
        series = self._series.setdefault(symbol, _Series({}))
        minute = bucket_start(time_ms, MINUTE_MS)
        candle = series.minutes.get(minute)
        if candle is None:
            candle = series.minutes[minute] = Candle(minute, price, price, price, price)
        candle.add(series.next_id, price, qty, not is_buyer_maker)
        series.next_id += 1
        series.last_qty = qty

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 500,
    ) -> list[list[Any]]:
        """``GET /api/v3/klines`` rows, oldest first (``interval`` must be in INTERVALS_MS).

        With ``start_ms``: the first ``limit`` candles opening at or after it; otherwise
        the last ``limit`` up to ``end_ms``.
        """
        width = INTERVALS_MS[interval]
        series = self._series.get(symbol)
        if series is None or not series.minutes:
            return []
        grouped: dict[int, Candle] = {}
        for minute in sorted(series.minutes):
            candle = series.minutes[minute]
            start = bucket_start(minute, width)
            group = grouped.get(start)
            if group is None:
                group = grouped[start] = Candle(start, ZERO, ZERO, ZERO, ZERO)
            group.merge(candle)
        starts = sorted(grouped)
        rows: list[Candle] = []
        previous: Candle | None = None
        t = starts[0]
        while t <= starts[-1]:
            found = grouped.get(t)
            if found is None:
                assert previous is not None
                close = previous.close
                found = Candle(t, close, close, close, close)
            rows.append(found)
            previous = found
            t = bucket_start(t + width, width)
        if start_ms is not None:
            rows = [c for c in rows if c.open_time >= start_ms]
        if end_ms is not None:
            rows = [c for c in rows if c.open_time <= end_ms]
        rows = rows[:limit] if start_ms is not None else rows[-limit:]
        return [_kline_row(c, width) for c in rows]

    def ticker_24hr(self, symbol: str, now_ms: int) -> dict[str, Any]:
        """``GET /api/v3/ticker/24hr`` statistics of ``symbol`` (without the book fields)."""
        series = self._series.get(symbol)
        first_minute = bucket_start(now_ms, MINUTE_MS) - DAY_MS + MINUTE_MS
        window = Candle(first_minute, ZERO, ZERO, ZERO, ZERO)
        prev_close = ZERO
        if series is not None:
            for minute in sorted(series.minutes):
                candle = series.minutes[minute]
                if minute < first_minute:
                    prev_close = candle.close
                elif minute <= now_ms:
                    window.merge(candle)
        change = window.close - window.open if window.trades else ZERO
        percent = change / window.open * 100 if window.trades and window.open else ZERO
        vwap = window.quote_volume / window.volume if window.volume else ZERO
        return {
            "symbol": symbol,
            "priceChange": fmt8(change),
            "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": fmt8(vwap),
            "prevClosePrice": fmt8(prev_close),
            "lastPrice": fmt8(window.close),
            "lastQty": fmt8(series.last_qty if series is not None and window.trades else ZERO),
            "openPrice": fmt8(window.open),
            "highPrice": fmt8(window.high),
            "lowPrice": fmt8(window.low),
            "volume": fmt8(window.volume),
            "quoteVolume": fmt8(window.quote_volume),
            "openTime": now_ms - DAY_MS,
            "closeTime": now_ms,
            "firstId": window.first_id,
            "lastId": window.last_id,
            "count": window.trades,
        }


def _kline_row(c: Candle, width: int) -> list[Any]:
    return [
        c.open_time,
        fmt8(c.open),
        fmt8(c.high),
        fmt8(c.low),
        fmt8(c.close),
        fmt8(c.volume),
        c.open_time + width - 1,
        fmt8(c.quote_volume),
        c.trades,
        fmt8(c.taker_buy_base),
        fmt8(c.taker_buy_quote),
        "0",
    ]
