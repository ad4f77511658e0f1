"""The listener's hot path: pure, synchronous, no I/O.

Everything here is driven with plain values (a raw message and the time it was
received), so the benchmark and the tests run it without sockets, AWS or a clock:

``MarketPipeline.feed(raw, recv_ms)``
    One raw market message (``trade``, ``aggTrade``, ``bookTicker``, ``kline``, partial
    or diff ``depth``, ``serverShutdown``; the raw form or the combined
    ``{"stream", "data"}`` form) updates the incremental indicators and may emit a
    ``PriceTicked``. Only trades touch the indicators on arrival; book tops, depth and
    klines are kept as received and converted when a snapshot or a tick needs them.
``MarketPipeline.poll(now_ms)``
    Called about once a second: the time rule of the throttle, and a ``MarketSnapshot``
    at most every ``snapshot_seconds``, each logged at INFO as one line with the last
    price, MA7 and its direction (fields ``symbol``, ``last_price``, ``ma7``,
    ``ma7_trend``; ``WARMING_UP`` while too few minutes closed for MA7).
``OrderStream.read(text, recv_ms)``
    One user-stream frame as a JSON object, or ``None`` when it is unreadable (counted,
    and published as a user stream gap).
``OrderStream.on_execution_report(message, recv_ms)``
    One ``executionReport`` (WebSocket-API wrapper or bare) becomes ``OrderUpdated``
    (+ ``OrderFilled`` on FILLED) through :mod:`flipbot.streams`; a report seen twice
    (an overlapping re-subscription) is published once.
``OutboundQueue``
    What waits for PutEvents, with an explicit overflow policy (see its docstring), cut
    into batches of at most 10 entries and 256 KB by :meth:`OutboundQueue.next_batch`.

The ``PriceTicked`` throttle publishes when the last trade price has moved at least
``tick_bps`` basis points from the last published price, or when ``tick_seconds``
passed since the last tick, whichever comes first.

Every message is checked before it changes anything: prices are plain decimal strings
(digits and at most one point, as Binance writes them: no sign, exponent, blank,
underscore or non-ASCII digit) within :data:`~flipbot.domain.guards.PRICE_RANGE`,
quantities such strings from 0 to :data:`MAX_QTY` (a trade's above 0), ids integers
from 0 to 2**63 - 1, times integers above 0 and at most :data:`MAX_AHEAD_MS` after the
message was received, a book top not crossed, depth levels and klines of their
documented shape, a kline of the pipeline's symbol; a report's fields have their
documented types (:func:`flipbot.streams.order_update_from_execution_report`). A message
that fails, or that JSON nests too deeply to read, is dropped and counted (``invalid``,
and :meth:`MarketPipeline.take_bad` / :meth:`OrderStream.take_bad` for the
``ListenerBadMessages`` metric); an unreadable report or user-stream frame (not a JSON
object, or with bytes that were not UTF-8) is also published as a user stream gap. A
trade older than the last one counts in the indicators but does not move the last
price; a report of another symbol than the stream's is not published (``ignored``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal

from flipbot.domain.correlation import OWN, REFERENCE, ReturnCorrelation
from flipbot.domain.errors import InvalidEvent
from flipbot.domain.guards import PRICE_RANGE
from flipbot.domain.indicators import MarketIndicators
from flipbot.domain.model import MarketSnapshot
from flipbot.domain.order_ids import cycle_order_symbol_part
from flipbot.events import SOURCE, PriceTicked, StreamGapDetected
from flipbot.listener.metrics import LagHistogram
from flipbot.streams import events_for_update, order_update_from_execution_report, unwrap

log = logging.getLogger("flipbot.listener")

MAX_BATCH_ENTRIES = 10  # PutEvents: at most 10 entries a call
MAX_BATCH_BYTES = 256 * 1024  # PutEvents: at most 256 KB a call

SHUTDOWN = "serverShutdown"
"""What :meth:`MarketPipeline.feed` returns for Binance's ``serverShutdown`` notice."""

_loads = json.loads
_NEG_INF = float("-inf")
_POS_INF = float("inf")
_MIN_PRICE, _MAX_PRICE = (float(bound) for bound in PRICE_RANGE)
MAX_QTY = 1e11
"""No quantity reaches it: Binance's largest LOT_SIZE maxQty is 9.2e10 (int64 / 1e8)."""
MAX_ID = 2**63 - 1
"""Binance's ids are int64."""
MAX_AHEAD_MS = 5 * 60_000
"""How far after its receipt a message's time may lie (clock skew). A trade from further
ahead would hold the last price until that time: every later trade would be older."""
_decimal = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch  # as Binance writes amounts


def _number(value: Any, low: float, high: float) -> float:
    """A Binance decimal string as a float within ``[low, high]``; ``ValueError`` if not."""
    if type(value) is not str:
        raise TypeError(f"{value!r} is not a decimal string")
    if _decimal(value) is None:  # float() would read "1_0", " 1e2", "+1", "-0", "١٠"
        raise ValueError(f"{value[:40]!r} is not a plain decimal string")
    number = float(value)
    if not low <= number <= high:  # also False for NaN
        raise ValueError(f"{value[:40]!r} is outside [{low:g}, {high:g}]")
    return number


def _price(value: Any) -> float:
    return _number(value, _MIN_PRICE, _MAX_PRICE)


def _qty(value: Any, *, positive: bool = False) -> float:
    qty = _number(value, 0.0, MAX_QTY)
    if positive and qty <= 0:
        raise ValueError(f"quantity {value!r} is not above 0")
    return qty


def _id(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    if not 0 <= value <= MAX_ID:  # a bigger one would make every later id look repeated
        raise ValueError(f"id {value} is outside [0, 2**63 - 1]")
    return value


def _time(value: Any, recv_ms: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    if not 0 < value <= recv_ms + MAX_AHEAD_MS:
        raise ValueError(f"time {value} is not in (0, receipt {recv_ms} + {MAX_AHEAD_MS} ms]")
    return value


def _depth_side(levels: Any) -> tuple[int, float]:
    """(number of levels, total quantity) of one side of a depth snapshot."""
    if type(levels) is not list:
        raise TypeError("depth levels are not a list")
    total = 0.0
    for level in levels:
        if type(level) is not list or len(level) < 2:
            raise TypeError(f"depth level {level!r} is not [price, qty]")
        _price(level[0])
        total += _qty(level[1])
    return len(levels), total


def entry_size(detail_type: str, detail_json: str, source: str = SOURCE) -> int:
    """A PutEvents entry's size as EventBridge counts it (no ``Time``, no ``Resources``)."""
    return len(source.encode()) + len(detail_type.encode()) + len(detail_json.encode())


class Outbound:
    """One event waiting for PutEvents. ``critical`` events are never dropped."""

    __slots__ = ("critical", "detail", "detail_type", "size")

    def __init__(self, detail_type: str, detail: Mapping[str, Any], *, critical: bool) -> None:
        self.detail_type = detail_type
        self.detail = detail
        self.critical = critical
        self.size = entry_size(detail_type, json.dumps(detail, default=str))

    def __repr__(self) -> str:
        return f"Outbound({self.detail_type}, critical={self.critical}, size={self.size})"


class OutboundQueue:
    """A bounded queue of events for PutEvents, with an explicit overflow policy.

    Two lanes, each in arrival order: critical events (``OrderUpdated``,
    ``OrderFilled``, ``StreamGapDetected``) and market events (``PriceTicked``).
    Batches take critical events first. ``capacity`` bounds the two lanes together:

    * a market event arriving at a full queue evicts the oldest queued market event (a
      newer price is worth more than an older one); with no market event queued, the
      arriving one is dropped;
    * a critical event is always accepted, even beyond ``capacity``: a lost order
      update would leave the state machine waiting for a fill forever. Going over
      capacity is logged as an error (the publisher is behind or AWS refuses events).

    Drops are counted (:attr:`dropped`) and logged at the 1st, 10th, 100th... drop of an
    episode, then once when the queue is back under half its capacity, so a flood of
    drops cannot flood the logs. ``notify`` is called after every accepted event (the
    process wakes its publisher with it).
    """

    def __init__(self, capacity: int, *, notify: Callable[[], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.notify = notify
        self.dropped = 0
        self._critical: deque[Outbound] = deque()
        self._market: deque[Outbound] = deque()
        self._episode_drops = 0
        self._over_capacity = False

    def __len__(self) -> int:
        return len(self._critical) + len(self._market)

    @property
    def critical_pending(self) -> int:
        return len(self._critical)

    @property
    def market_pending(self) -> int:
        return len(self._market)

    def critical_items(self) -> list[Outbound]:
        """The critical events still queued, oldest first (for the shutdown report)."""
        return list(self._critical)

    def put(self, item: Outbound) -> bool:
        """Queue ``item``; ``False`` when it was dropped (a market event at a full queue)."""
        if item.critical:
            self._critical.append(item)
            if len(self) > self.capacity and not self._over_capacity:
                self._over_capacity = True
                log.error(
                    "outbound queue over capacity (%d): %d order/gap events queued; they are "
                    "never dropped, market ticks are",
                    self.capacity,
                    len(self._critical),
                )
        else:
            if len(self) >= self.capacity:
                if self._market:
                    self._market.popleft()
                    self._drop("oldest PriceTicked evicted")
                else:
                    self._drop("PriceTicked dropped")
                    return False
            self._market.append(item)
        if self.notify is not None:
            self.notify()
        return True

    def put_event(self, detail_type: str, detail: Mapping[str, Any], *, critical: bool) -> bool:
        return self.put(Outbound(detail_type, detail, critical=critical))

    def next_batch(
        self, max_entries: int = MAX_BATCH_ENTRIES, max_bytes: int = MAX_BATCH_BYTES
    ) -> list[Outbound]:
        """Take up to ``max_entries`` events totalling at most ``max_bytes``, critical first."""
        batch: list[Outbound] = []
        size = 0
        for lane in (self._critical, self._market):
            while lane and len(batch) < max_entries:
                item = lane[0]
                if item.size > max_bytes:  # can never be sent: PutEvents would refuse it
                    lane.popleft()
                    log.error("event too large for PutEvents, not sent: %r", item)
                    continue
                if size + item.size > max_bytes:
                    return self._taken(batch)
                lane.popleft()
                batch.append(item)
                size += item.size
        return self._taken(batch)

    def requeue(self, batch: list[Outbound]) -> None:
        """Put a batch that could not be published back at the front, in its order."""
        for item in reversed(batch):
            (self._critical if item.critical else self._market).appendleft(item)
        if batch and self.notify is not None:
            self.notify()

    def _taken(self, batch: list[Outbound]) -> list[Outbound]:
        if self._episode_drops and len(self) <= self.capacity // 2:
            log.warning(
                "outbound queue recovered: %d PriceTicked dropped while full (%d in total)",
                self._episode_drops,
                self.dropped,
            )
            self._episode_drops = 0
        if self._over_capacity and len(self) <= self.capacity:
            self._over_capacity = False
        return batch

    def _drop(self, what: str) -> None:
        self.dropped += 1
        self._episode_drops += 1
        n = self._episode_drops
        if n == 1 or (n >= 10 and 10 ** (len(str(n)) - 1) == n):
            log.warning(
                "outbound queue full (%d): %s (%d dropped in this episode); order updates "
                "are never dropped",
                self.capacity,
                what,
                n,
            )


def _log_ma7(snapshot: MarketSnapshot) -> None:
    """One INFO line: the last price, MA7 and its direction, also as structured fields."""
    last = str(snapshot.last_price)
    ma7 = None if snapshot.ma7 is None else str(snapshot.ma7)
    trend = "WARMING_UP" if ma7 is None else snapshot.ma7_trend
    log.info(
        "%s last %s MA7 %s",
        snapshot.symbol,
        last,
        "warming up" if ma7 is None else f"{ma7} {trend}",
        extra={"symbol": snapshot.symbol, "last_price": last, "ma7": ma7, "ma7_trend": trend},
    )


class MarketPipeline:
    """Market messages -> indicators -> throttled ``PriceTicked`` -> the outbound queue."""

    def __init__(
        self,
        symbol: str,
        queue: OutboundQueue,
        *,
        tick_bps: float = 20,
        tick_seconds: float = 60,
        snapshot_seconds: float = 10,
        large_trade_quote: float = 1000,
        reference_symbol: str = "",
    ) -> None:
        if tick_bps <= 0 or tick_seconds <= 0 or snapshot_seconds <= 0:
            raise ValueError("tick_bps, tick_seconds and snapshot_seconds must be > 0")
        self.symbol = symbol
        self.reference_symbol = reference_symbol if reference_symbol != symbol else ""
        self.correlation = ReturnCorrelation()
        self.queue = queue
        self.indicators = MarketIndicators(
            symbol, large_trade_quote=Decimal(str(large_trade_quote))
        )
        self.lag = LagHistogram()
        self._fraction = tick_bps / 10_000
        self._tick_ms = int(tick_seconds * 1000)
        self._snapshot_ms = int(snapshot_seconds * 1000)
        self.messages = 0
        self.ticks = 0
        self.invalid = 0
        self.ignored = 0
        self.duplicates = 0
        self.depth_updates = 0
        self._band_hi = _NEG_INF  # publish when price >= hi or <= lo
        self._band_lo = _POS_INF
        self._tick_due = 0  # publish when now >= this (ms)
        self._next_snapshot = 0
        self._price: float | None = None
        self._price_s = ""
        self._price_ms = 0
        self._book: tuple[str, str, str, str] | None = None
        self._depth: tuple[int, float, float] | None = None  # levels, bid qty, ask qty
        self._kline: dict[str, Any] | None = None
        self._last_ids: dict[str, int] = {"trade": -1, "aggTrade": -1, "book": -1}
        self._bad_taken = 0

    # --- the hot path -------------------------------------------------------------------
    def feed(self, raw: str | bytes, recv_ms: int) -> str | None:
        """Process one raw message; returns :data:`SHUTDOWN` on ``serverShutdown``."""
        try:
            msg = _loads(raw)
            data = msg.get("data")
            if data is not None:  # combined stream: {"stream": ..., "data": {...}}
                msg = data
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            self.messages += 1
            self._invalid(exc)
            return None
        return self.feed_message(msg, recv_ms)

    def feed_message(self, msg: Any, recv_ms: int) -> str | None:
        """Process one message, parsed and out of its combined-stream envelope."""
        self.messages += 1
        try:
            e = msg.get("e")
            if e == "trade":
                self._on_trade(msg, "t", "trade", recv_ms)
            elif e is None:
                if "u" in msg and "b" in msg:
                    self._on_book(msg, recv_ms)
                elif "lastUpdateId" in msg:
                    bid_levels, bids_qty = _depth_side(msg["bids"])
                    ask_levels, asks_qty = _depth_side(msg["asks"])
                    self._depth = (max(bid_levels, ask_levels), bids_qty, asks_qty)
                else:
                    self._on_control(msg)
            elif e == "aggTrade":
                self._on_trade(msg, "a", "aggTrade", recv_ms)
            elif e == "kline":
                self._on_kline(msg, recv_ms)
            elif e == "depthUpdate":
                self.depth_updates += 1
            elif e == SHUTDOWN:
                return SHUTDOWN
            else:
                self.ignored += 1
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser recurses
            self._invalid(exc)
        return None

    def _invalid(self, exc: Exception) -> None:
        self.invalid += 1
        if self.invalid == 1 or self.invalid % 1000 == 0:
            log.warning("unreadable market message (%d so far): %s", self.invalid, exc)

    def take_bad(self) -> int:
        """The messages dropped as bad since the last call (the metric's count)."""
        bad, self._bad_taken = self.invalid - self._bad_taken, self.invalid
        return bad

    def _on_trade(self, d: dict[str, Any], id_key: str, kind: str, recv_ms: int) -> None:
        if d["s"] != self.symbol:
            self.ignored += 1
            return
        trade_id = _id(d[id_key])
        price_s = d["p"]
        price = _price(price_s)
        qty = _qty(d["q"], positive=True)
        time_ms = _time(d["T"], recv_ms)
        event_ms = _time(d["E"], recv_ms)
        buyer_maker = d["m"]
        if type(buyer_maker) is not bool:
            raise TypeError(f"m={buyer_maker!r} is not a boolean")
        last_ids = self._last_ids
        if trade_id <= last_ids[kind]:  # seen already (overlapping connections)
            self.duplicates += 1
            return
        last_ids[kind] = trade_id
        self.indicators.on_trade(time_ms, price, qty, buyer_maker)
        self.lag.add(recv_ms - event_ms)
        moved = False
        if time_ms >= self._price_ms:  # an older trade does not move the last price
            self._price = price
            self._price_s = price_s
            self._price_ms = time_ms
            moved = price >= self._band_hi or price <= self._band_lo
        if moved or recv_ms >= self._tick_due:
            self._tick(recv_ms)

    def _on_book(self, d: dict[str, Any], recv_ms: int) -> None:
        if d["s"] != self.symbol:
            self.ignored += 1
            return
        update_id = _id(d["u"])
        bid_s, bid_qty_s, ask_s, ask_qty_s = d["b"], d["B"], d["a"], d["A"]
        _qty(bid_qty_s)
        _qty(ask_qty_s)
        if not _price(bid_s) < _price(ask_s):
            raise ValueError(f"crossed book: bid {bid_s} >= ask {ask_s}")
        if update_id <= self._last_ids["book"]:
            self.duplicates += 1
            return
        self._last_ids["book"] = update_id
        self._book = (bid_s, bid_qty_s, ask_s, ask_qty_s)
        if recv_ms >= self._tick_due:
            self._tick(recv_ms)

    def _on_kline(self, msg: dict[str, Any], recv_ms: int) -> None:
        # What a snapshot takes from it (open time, close, volume, closed) goes into the
        # market context the model reads: checked like a trade.
        symbol = msg["s"]
        if symbol != self.symbol and (not self.reference_symbol or symbol != self.reference_symbol):
            self.ignored += 1
            return
        kline = msg["k"]
        if type(kline) is not dict:
            raise TypeError("kline 'k' is not an object")
        open_ms = _time(kline["t"], recv_ms)
        close = _price(kline["c"])
        _qty(kline["v"])
        if type(kline["x"]) is not bool:
            raise TypeError(f"kline x={kline['x']!r} is not a boolean")
        series = OWN if symbol == self.symbol else REFERENCE
        if kline["x"]:  # a closed minute: a point of the correlation
            self.correlation.on_close(series, open_ms // 60_000, close)
        if series == OWN:
            self._kline = kline

    def _on_control(self, msg: dict[str, Any]) -> None:
        if "error" in msg:
            log.error("market stream error: %s", msg["error"])
        elif "result" not in msg:  # a SUBSCRIBE answer carries "result": null
            self.ignored += 1

    # --- the slow path ------------------------------------------------------------------
    def poll(self, now_ms: int) -> MarketSnapshot | None:
        """The throttle's time rule; a snapshot if due (at most every ``snapshot_seconds``)."""
        if now_ms >= self._tick_due:
            self._tick(now_ms)
        if now_ms < self._next_snapshot:
            return None
        snapshot = self.snapshot(now_ms)
        if snapshot is not None:
            self._next_snapshot = now_ms + self._snapshot_ms
            _log_ma7(snapshot)
        return snapshot

    def snapshot(self, now_ms: int) -> MarketSnapshot | None:
        """The indicators at ``now_ms``, or ``None`` before any trade or book top."""
        indicators = self.indicators
        if self._book is not None:
            bid, bid_qty, ask, ask_qty = self._book
            indicators.on_book(Decimal(bid), Decimal(bid_qty), Decimal(ask), Decimal(ask_qty))
        if not indicators.has_data:
            return None
        snapshot = indicators.snapshot(now_ms)
        if self.reference_symbol:
            correlation = self.correlation.value()
            if correlation is not None:
                snapshot = replace(snapshot, btc_correlation=Decimal(repr(correlation)))
        extra: dict[str, str] = {}
        if self._depth is not None:
            levels, bids_qty, asks_qty = self._depth
            total = bids_qty + asks_qty
            extra["depth_levels"] = str(levels)
            imbalance = (bids_qty - asks_qty) / total if total > 0 else 0.0
            extra["depth_imbalance"] = f"{imbalance:.6f}"
        if self._kline is not None:
            k = self._kline
            extra["kline_1m_open_ms"] = str(k.get("t", ""))
            extra["kline_1m_close"] = str(k.get("c", ""))
            extra["kline_1m_volume"] = str(k.get("v", ""))
            extra["kline_1m_closed"] = "true" if k.get("x") else "false"
        return replace(snapshot, extra=extra) if extra else snapshot

    def reset_sequence(self) -> None:
        """Forget the last trade and book update ids (a new, non-overlapping connection)."""
        self._last_ids = {"trade": -1, "aggTrade": -1, "book": -1}

    def _tick(self, now_ms: int) -> None:
        bid = ask = None
        if self._book is not None:
            bid, ask = Decimal(self._book[0]), Decimal(self._book[2])
        price: Decimal
        reference: float
        time_ms: int
        if self._price is not None:
            price, reference, time_ms = Decimal(self._price_s), self._price, self._price_ms
        elif bid is not None and ask is not None:
            price = (bid + ask) / 2
            reference, time_ms = float(price), now_ms
        else:
            return
        detail = PriceTicked(symbol=self.symbol, price=price, bid=bid, ask=ask, time_ms=time_ms)
        self.queue.put(Outbound("PriceTicked", detail.model_dump(mode="json"), critical=False))
        self.ticks += 1
        self._band_hi = reference * (1 + self._fraction)
        self._band_lo = reference * (1 - self._fraction)
        self._tick_due = now_ms + self._tick_ms


class MarketRouter:
    """The market messages of every symbol, each to its symbol's :class:`MarketPipeline`
    (its own indicators, throttle and snapshot); the reference pair's klines to every
    pipeline that correlates with it. A message is parsed once; the combined stream's
    name (``btcusdc@depth10``) tells its symbol, as a partial book names none."""

    def __init__(
        self,
        symbols: Sequence[str],
        queue: OutboundQueue,
        *,
        reference_symbol: str = "",
        **pipeline: Any,
    ) -> None:
        if not symbols:
            raise ValueError("a market router needs at least one symbol")
        self.lag = LagHistogram()
        self.pipelines = {
            symbol: MarketPipeline(symbol, queue, reference_symbol=reference_symbol, **pipeline)
            for symbol in symbols
        }
        for each in self.pipelines.values():
            each.lag = self.lag  # one histogram: the metric is the listener's
        self.reference = reference_symbol.lower()
        self._by_stream_name = {symbol.lower(): p for symbol, p in self.pipelines.items()}
        self._first = next(iter(self.pipelines.values()))
        self._unreadable = 0
        self._unreadable_taken = 0

    @property
    def invalid(self) -> int:
        """Messages dropped as unreadable, every symbol's and the unroutable ones."""
        return self._unreadable + sum(p.invalid for p in self.pipelines.values())

    def feed(self, raw: str | bytes, recv_ms: int) -> str | None:
        """Process one raw message; returns :data:`SHUTDOWN` on ``serverShutdown``."""
        try:
            msg = _loads(raw)
            data = msg.get("data")
            stream = msg.get("stream") if data is not None else None
            if stream is not None and type(stream) is not str:
                raise TypeError(f"stream={stream!r} is not a string")
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            self._unreadable += 1
            log.warning("unreadable market message: %s", exc)
            return None
        if stream is None:  # a control message (a SUBSCRIBE answer, serverShutdown)
            return self._first.feed_message(msg, recv_ms)
        name, _, kind = stream.partition("@")
        pipeline = self._by_stream_name.get(name)
        if kind == "kline_1m" and name == self.reference:
            for each in self.pipelines.values():
                if each is not pipeline:
                    each.feed_message(data, recv_ms)
        if pipeline is not None:
            return pipeline.feed_message(data, recv_ms)
        if name == self.reference:
            return None
        # no symbol's stream (``!serverShutdown``, or one nobody asked for): the first
        # pipeline reads it as it reads any message, and ignores what is not for it
        return self._first.feed_message(data, recv_ms)

    def take_bad(self) -> int:
        """The messages dropped as bad since the last call (the metric's count)."""
        own, self._unreadable_taken = (
            self._unreadable - self._unreadable_taken,
            self._unreadable,
        )
        return own + sum(p.take_bad() for p in self.pipelines.values())

    def poll(self, now_ms: int) -> list[MarketSnapshot]:
        """Each symbol's throttle time rule; the snapshots that are due."""
        return [snap for p in self.pipelines.values() if (snap := p.poll(now_ms)) is not None]

    def reset_sequence(self) -> None:
        """Forget every symbol's last trade and book update ids (a new connection)."""
        for each in self.pipelines.values():
            each.reset_sequence()


class OrderStream:
    """Execution reports -> ``OrderUpdated`` / ``OrderFilled``, each report exactly once."""

    def __init__(
        self,
        queue: OutboundQueue,
        *,
        symbol: str | None = None,
        symbols: Sequence[str] = (),
        remember: int = 4096,
    ) -> None:
        self.queue = queue
        #: the reports published: of these symbols, and of another when the client order
        #: id is a cycle order naming that symbol (a symbol removed while its cycle is
        #: open); empty: every symbol's
        self.symbols = frozenset(symbols or ((symbol,) if symbol else ()))
        #: the stack's ``SYMBOL``: whose cycle ids carry no symbol
        self.home = symbol or (symbols[0] if symbols else "")
        self.lag = LagHistogram()
        self.reports = 0
        self.duplicates = 0
        self.invalid = 0
        self.ignored = 0
        self._bad_taken = 0
        self._seen: set[tuple[Any, ...]] = set()
        self._order: deque[tuple[Any, ...]] = deque()
        self._remember = remember

    def read(self, text: str, recv_ms: int) -> dict[str, Any] | None:
        """One frame as a JSON object; ``None`` when it is none (counted, and a gap).

        A frame with bytes that were not UTF-8 (the reader decodes them as U+FFFD) is
        unreadable too: the damage may sit in a symbol, an id or a status."""
        try:
            message = _loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deep
            log.warning("user stream: unreadable frame (%d bytes)", len(text))
            self.unreadable(f"{len(text)} bytes, not JSON", recv_ms)
            return None
        if not isinstance(message, dict):
            self.unreadable(f"a JSON {type(message).__name__}, not an object", recv_ms)
            return None
        if "\ufffd" in text:
            log.warning("user stream: frame with bytes that are not UTF-8 (%d chars)", len(text))
            self.unreadable(f"{len(text)} chars, not UTF-8", recv_ms)
            return None
        return message

    def on_execution_report(self, message: Mapping[str, Any], recv_ms: int) -> int:
        """Queue the events of one report; returns how many (0 for a duplicate, or a report
        of another symbol than :attr:`symbol`)."""
        event = unwrap(dict(message))
        try:
            update = order_update_from_execution_report(dict(message))
        except InvalidEvent as exc:
            # The fill it may carry is unknown: let reconcile look at the exchange.
            self.invalid += 1
            log.error("unreadable executionReport (published as a stream gap): %s", exc)
            event_time = event.get("E")  # the gap starts then, if it is a time at all
            event_ms = recv_ms
            if type(event_time) is int and 0 < event_time <= recv_ms:
                event_ms = event_time
            self.gap("user", f"invalid executionReport: {exc}", event_ms, recv_ms)
            return 0
        if (
            self.symbols
            and update.symbol not in self.symbols
            and not self._names_its_symbol(update.client_order_id or "", update.symbol)
            and not self._names_its_symbol(update.orig_client_order_id or "", update.symbol)
        ):
            self.ignored += 1  # the account trades it too (by hand, or another bot)
            return 0
        execution_id = event.get("I")
        key = (
            update.symbol,
            update.order_id,
            execution_id if type(execution_id) is int else None,
            update.execution_type,
            update.status,
            update.trade_id,
            update.executed_qty,
        )
        if key in self._seen:
            self.duplicates += 1
            return 0
        self._remember_key(key)
        self.reports += 1
        events = events_for_update(update)
        for detail_type, detail in events:
            self.queue.put(Outbound(detail_type, detail, critical=True))
        self.lag.add(recv_ms - update.event_time_ms)
        return len(events)

    def _names_its_symbol(self, coid: str, symbol: str) -> bool:
        """``coid`` is a cycle order whose cycle is of ``symbol``."""
        part = cycle_order_symbol_part(coid)
        return part is not None and (part or self.home) == symbol

    def unreadable(self, what: str, recv_ms: int) -> None:
        """A user-stream frame that is not JSON: counted, and a gap (it may have been a
        report)."""
        self.invalid += 1
        self.gap("user", f"unreadable frame: {what}", recv_ms, recv_ms)

    def take_bad(self) -> int:
        """The reports and frames dropped as bad since the last call (the metric's count)."""
        bad, self._bad_taken = self.invalid - self._bad_taken, self.invalid
        return bad

    def gap(
        self, stream: Literal["user", "market"], reason: str, since_ms: int, until_ms: int
    ) -> None:
        """Queue a ``StreamGapDetected`` (critical: reconcile recovers what the gap hid)."""
        detail = StreamGapDetected(
            stream=stream,
            reason=reason[:200],
            since_ms=min(since_ms, until_ms),
            until_ms=until_ms,
        )
        self.queue.put(Outbound("StreamGapDetected", detail.model_dump(mode="json"), critical=True))

    def _remember_key(self, key: tuple[Any, ...]) -> None:
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > self._remember:
            self._seen.discard(self._order.popleft())
