"""Incremental market indicators, cheap enough for every trade of a busy stream.

Everything is updated in O(1) per trade with floats; Decimals appear only when
:meth:`MarketIndicators.snapshot` builds a :class:`MarketSnapshot`. Trades are expected
in time order; a late trade is counted in the newest bucket.

Rolling time windows are bucketed (``bucket_ms``, 1 s by default; 1 min for the 24 h
statistics) so memory stays bounded at any trade rate: at time ``t`` a window of ``W``
ms covers the buckets that overlap ``(t - W, t]``. With ``bucket_ms=1`` it is exact.

Moving averages and volatility use 1-minute closes that :class:`MarketIndicators` builds
itself: a minute closes when a trade of a later minute arrives, and minutes without
trades repeat the previous close, as Binance klines do.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal
from enum import StrEnum
from statistics import stdev

from flipbot.domain.model import BookTop, MarketSnapshot

MINUTE_MS = 60_000
DAY_MS = 86_400_000


class Trend(StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    FLAT = "FLAT"


def ma_trend(current: float | None, previous: float | None, flat: float = 0.0005) -> Trend:
    """``UP`` / ``DOWN`` when ``current`` moved more than ``flat`` (relative) from
    ``previous``; ``FLAT`` otherwise or while either is unknown."""
    if current is None or previous is None or previous == 0:
        return Trend.FLAT
    change = (current - previous) / previous
    if change > flat:
        return Trend.UP
    if change < -flat:
        return Trend.DOWN
    return Trend.FLAT


def order_book_imbalance(bid_qty: float, ask_qty: float) -> float:
    """``(bid_qty - ask_qty) / (bid_qty + ask_qty)`` in ``[-1, 1]``; 0 for an empty book."""
    total = bid_qty + ask_qty
    return (bid_qty - ask_qty) / total if total > 0 else 0.0


class SMA:
    """Simple moving average of the last ``n`` values, O(1) per update."""

    __slots__ = ("_n", "_previous", "_sum", "_updates", "_window")

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"SMA length must be >= 1, got {n}")
        self._n = n
        self._window: deque[float] = deque(maxlen=n)
        self._sum = 0.0
        self._updates = 0
        self._previous: float | None = None

    def update(self, value: float) -> float | None:
        """Add ``value``; return the average once ``n`` values are in."""
        self._previous = self.value
        if len(self._window) == self._n:
            self._sum -= self._window[0]
        self._window.append(value)
        self._sum += value
        self._updates += 1
        if self._updates % self._n == 0:  # amortised O(1): drop accumulated float error
            self._sum = math.fsum(self._window)
        return self.value

    @property
    def value(self) -> float | None:
        return self._sum / self._n if len(self._window) == self._n else None

    @property
    def previous(self) -> float | None:
        """The average before the last update (``None`` until it existed)."""
        return self._previous

    def trend(self, flat: float = 0.0005) -> Trend:
        """The direction of the last update, see :func:`ma_trend`."""
        return ma_trend(self.value, self._previous, flat)


class RollingVolatility:
    """Sample standard deviation of the last ``n`` log returns of a close series."""

    __slots__ = ("_last", "_returns")

    def __init__(self, n: int) -> None:
        if n < 2:
            raise ValueError(f"volatility needs >= 2 returns, got {n}")
        self._returns: deque[float] = deque(maxlen=n)
        self._last: float | None = None

    def update(self, close: float) -> None:
        if self._last is not None and self._last > 0 and close > 0:
            self._returns.append(math.log(close / self._last))
        self._last = close

    @property
    def value(self) -> float | None:
        """``None`` until ``n`` returns are in."""
        returns = self._returns
        return stdev(returns) if len(returns) == returns.maxlen else None


class _SumWindow:
    """Two running sums over a bucketed rolling time window."""

    __slots__ = ("_a", "_b", "_bucket", "_bucket_ms", "_buckets", "_window_ms")

    def __init__(self, window_ms: int, bucket_ms: int) -> None:
        if not 0 < bucket_ms <= window_ms:
            raise ValueError(f"need 0 < bucket_ms ({bucket_ms}) <= window_ms ({window_ms})")
        self._window_ms = window_ms
        self._bucket_ms = bucket_ms
        self._buckets: deque[tuple[int, float, float]] = deque()
        self._bucket = -1
        self._a = 0.0
        self._b = 0.0

    def _roll(self, bucket: int, time_ms: int) -> None:
        if self._a or self._b:
            self._buckets.append((self._bucket, self._a, self._b))
        self._bucket, self._a, self._b = bucket, 0.0, 0.0
        self._evict(time_ms)

    def _evict(self, time_ms: int) -> int:
        first = (time_ms - self._window_ms + 1) // self._bucket_ms
        buckets = self._buckets
        while buckets and buckets[0][0] < first:
            buckets.popleft()
        return first

    def _sums(self, time_ms: int) -> tuple[float, float]:
        first = self._evict(time_ms)
        a = math.fsum(x[1] for x in self._buckets)
        b = math.fsum(x[2] for x in self._buckets)
        if self._bucket >= first:
            a, b = a + self._a, b + self._b
        return a, b


class VWAP(_SumWindow):
    """Volume-weighted average price over a rolling time window."""

    __slots__ = ()

    def __init__(self, window_ms: int, bucket_ms: int = 1000) -> None:
        super().__init__(window_ms, bucket_ms)

    def add(self, time_ms: int, price: float, qty: float) -> None:
        bucket = time_ms // self._bucket_ms
        if bucket > self._bucket:
            self._roll(bucket, time_ms)
        self._a += price * qty
        self._b += qty

    def value(self, time_ms: int) -> float | None:
        """``None`` when no volume traded in the window."""
        notional, volume = self._sums(time_ms)
        return notional / volume if volume > 0 else None


class BuySellRatio(_SumWindow):
    """Taker-buy volume over taker-sell volume in a rolling time window.

    In Binance trade data ``is_buyer_maker=True`` means the taker sold.
    """

    __slots__ = ()

    def __init__(self, window_ms: int, bucket_ms: int = 1000) -> None:
        super().__init__(window_ms, bucket_ms)

    def add(self, time_ms: int, qty: float, is_buyer_maker: bool) -> None:
        bucket = time_ms // self._bucket_ms
        if bucket > self._bucket:
            self._roll(bucket, time_ms)
        if is_buyer_maker:
            self._b += qty
        else:
            self._a += qty

    def value(self, time_ms: int) -> float | None:
        """``None`` when no taker sold in the window (the ratio is unbounded)."""
        bought, sold = self._sums(time_ms)
        return bought / sold if sold > 0 else None


class LargeTrades:
    """How many trades of at least ``threshold_quote`` (price x qty) in a time window."""

    __slots__ = ("_threshold", "_times", "_window_ms")

    def __init__(self, threshold_quote: float, window_ms: int) -> None:
        self._threshold = threshold_quote
        self._window_ms = window_ms
        self._times: deque[int] = deque()

    def add(self, time_ms: int, price: float, qty: float) -> None:
        if price * qty >= self._threshold:
            self._times.append(time_ms)

    def count(self, time_ms: int) -> int:
        """Large trades in ``(time_ms - window, time_ms]``."""
        times, start = self._times, time_ms - self._window_ms
        while times and times[0] <= start:
            times.popleft()
        return len(times)


class RollingHighLowVolume:
    """High, low and base volume over a rolling window (24 h in 1-minute buckets)."""

    __slots__ = ("_bucket", "_bucket_ms", "_buckets", "_high", "_low", "_volume", "_window_ms")

    def __init__(self, window_ms: int = DAY_MS, bucket_ms: int = MINUTE_MS) -> None:
        if not 0 < bucket_ms <= window_ms:
            raise ValueError(f"need 0 < bucket_ms ({bucket_ms}) <= window_ms ({window_ms})")
        self._window_ms = window_ms
        self._bucket_ms = bucket_ms
        self._buckets: deque[tuple[int, float, float, float]] = deque()
        self._bucket = -1
        self._high = -math.inf
        self._low = math.inf
        self._volume = 0.0

    def add(self, time_ms: int, price: float, qty: float) -> None:
        bucket = time_ms // self._bucket_ms
        if bucket > self._bucket:
            if self._high >= self._low:
                self._buckets.append((self._bucket, self._high, self._low, self._volume))
            self._bucket, self._high, self._low, self._volume = bucket, price, price, 0.0
        elif price > self._high:
            self._high = price
        elif price < self._low:
            self._low = price
        self._volume += qty

    def value(self, time_ms: int) -> tuple[float, float, float] | None:
        """``(high, low, volume)``, or ``None`` when nothing traded in the window."""
        first = (time_ms - self._window_ms + 1) // self._bucket_ms
        buckets = self._buckets
        while buckets and buckets[0][0] < first:
            buckets.popleft()
        rows = list(buckets)
        if self._bucket >= first and self._high >= self._low:
            rows.append((self._bucket, self._high, self._low, self._volume))
        if not rows:
            return None
        return (
            max(row[1] for row in rows),
            min(row[2] for row in rows),
            math.fsum(row[3] for row in rows),
        )


class MarketIndicators:
    """Every indicator of one symbol, fed by the trade and book-ticker streams."""

    def __init__(
        self,
        symbol: str,
        *,
        large_trade_quote: Decimal = Decimal("1000"),
        vwap_window_ms: int = 15 * MINUTE_MS,
        flow_window_ms: int = 5 * MINUTE_MS,
        volatility_window: int = 20,
        flat_threshold: float = 0.0005,
        bucket_ms: int = 1000,
    ) -> None:
        self.symbol = symbol
        self.ma5, self.ma7, self.ma20 = SMA(5), SMA(7), SMA(20)
        self.volatility = RollingVolatility(volatility_window)
        self.vwap = VWAP(vwap_window_ms, bucket_ms)
        self.buy_sell = BuySellRatio(flow_window_ms, bucket_ms)
        self.large_trades = LargeTrades(float(large_trade_quote), flow_window_ms)
        self.day = RollingHighLowVolume()
        self._flat = flat_threshold
        self._gap_fill = max(20, volatility_window + 1)  # closes that change any state
        self._minute = -1
        self._close = 0.0
        self._minute_volume = 0.0
        #: the last two closed minutes' (close, volume), oldest first
        self._closed: deque[tuple[float, float]] = deque(maxlen=2)
        self._last_time = -1
        self._last_price: float | Decimal | None = None
        self._book: tuple[float | Decimal, float | Decimal, float | Decimal, float | Decimal]
        self._book = (0.0, 0.0, 0.0, 0.0)
        self._has_book = False

    @property
    def has_data(self) -> bool:
        """True once a trade or a book ticker arrived (a snapshot can be built)."""
        return self._last_price is not None or self._has_book

    def on_trade(
        self, time_ms: int, price: float | Decimal, qty: float | Decimal, is_buyer_maker: bool
    ) -> None:
        """Account for one trade (Binance ``trade`` stream: ``T``, ``p``, ``q``, ``m``)."""
        p, q = float(price), float(qty)
        minute = time_ms // MINUTE_MS
        if minute > self._minute:
            self._close_minutes(minute)
        if time_ms >= self._last_time:
            self._last_time, self._last_price, self._close = time_ms, price, p
        if minute == self._minute:
            self._minute_volume += q
        self.vwap.add(time_ms, p, q)
        self.buy_sell.add(time_ms, q, is_buyer_maker)
        self.large_trades.add(time_ms, p, q)
        self.day.add(time_ms, p, q)

    def on_book(
        self,
        bid: float | Decimal,
        bid_qty: float | Decimal,
        ask: float | Decimal,
        ask_qty: float | Decimal,
    ) -> None:
        """Account for the best bid and ask (Binance ``bookTicker``: ``b``, ``B``, ``a``, ``A``)."""
        self._book = (bid, bid_qty, ask, ask_qty)
        self._has_book = True

    def snapshot(self, time_ms: int) -> MarketSnapshot:
        """The indicators at ``time_ms``; raises ``ValueError`` before any data arrived."""
        book = self._book_top() if self._has_book else None
        if self._last_price is not None:
            last_price = _price(self._last_price)
        elif book is not None:
            last_price = book.mid
        else:
            raise ValueError(f"{self.symbol}: no trade or book ticker yet")
        imbalance = None
        if self._has_book:
            imbalance = _num(order_book_imbalance(float(self._book[1]), float(self._book[3])))
        day = self.day.value(time_ms)
        return MarketSnapshot(
            symbol=self.symbol,
            time_ms=time_ms,
            last_price=last_price,
            book=book,
            ma5=_num(self.ma5.value),
            ma7=_num(self.ma7.value),
            ma7_trend=self.ma7.trend(self._flat).value,
            ma20=_num(self.ma20.value),
            vwap=_num(self.vwap.value(time_ms)),
            volatility=_num(self.volatility.value),
            imbalance=imbalance,
            buy_sell_ratio=_num(self.buy_sell.value(time_ms)),
            large_trades=self.large_trades.count(time_ms),
            high_24h=_num(day[0]) if day else None,
            low_24h=_num(day[1]) if day else None,
            volume_24h=_num(day[2]) if day else None,
            price_change_1m=_num(self._change(0)),
            volume_change_1m=_num(self._change(1)),
        )

    def _change(self, index: int) -> float | None:
        """The last closed minute's close (0) or volume (1) against the minute before."""
        if len(self._closed) < 2 or self._closed[0][index] <= 0:
            return None
        return self._closed[1][index] / self._closed[0][index] - 1

    def _close_minutes(self, minute: int) -> None:
        if self._minute >= 0:
            closes = min(minute - self._minute, self._gap_fill)
            for _ in range(closes):
                self._on_close(self._close)
                self._closed.append((self._close, self._minute_volume))
                self._minute_volume = 0.0
        self._minute = minute

    def _on_close(self, close: float) -> None:
        self.ma5.update(close)
        self.ma7.update(close)
        self.ma20.update(close)
        self.volatility.update(close)

    def _book_top(self) -> BookTop:
        bid, bid_qty, ask, ask_qty = (_price(x) for x in self._book)
        return BookTop(bid=bid, bid_qty=bid_qty, ask=ask, ask_qty=ask_qty)


def _price(value: float | Decimal) -> Decimal:
    """A Decimal as given, or a float rounded to 8 decimal places."""
    return value if isinstance(value, Decimal) else Decimal(repr(round(value, 8) + 0.0))


def _num(value: float | None) -> Decimal | None:
    """A float indicator as a Decimal with at most 8 decimal places."""
    return None if value is None else Decimal(repr(round(value, 8) + 0.0))
