"""Market events and the loaders that turn CSV files and Binance archives into them.

A replay is a time-ordered sequence of two event types:

* :class:`TradeEvent` — one public trade (Binance ``@trade`` semantics:
  ``is_buyer_maker=True`` means the buyer's order was resting, i.e. the taker *sold*);
* :class:`BookEvent` — the best bid and ask at one instant (``@bookTicker``).

:func:`load_market_data` reads any of these formats, detected from the header, the file
name and the number of columns:

==================  ==========================================================================
format              layout
==================  ==========================================================================
klines CSV          header ``open_time_ms,open,high,low,close,volume,close_time_ms,
                    quote_volume,trades,taker_buy_base,taker_buy_quote`` (empty fields allowed)
trades CSV          header ``time_ms,price,qty,is_buyer_maker``
bookTicker CSV      header ``local_recv_time_ms,update_id,bid_price,bid_qty,ask_price,ask_qty``
spot klines archive ``<SYMBOL>-1m-YYYY-MM-DD.csv`` or ``.zip`` from data.binance.vision, no header,
                    12 columns (open_time, open, high, low, close, volume, close_time,
                    quote_volume, count, taker_buy_base, taker_buy_quote, ignore)
spot trades archive ``<SYMBOL>-trades-...``: id, price, qty, quote_qty, time, is_buyer_maker,
                    is_best_match
aggTrades archive   ``<SYMBOL>-aggTrades-...``: agg_trade_id, price, qty, first_trade_id,
                    last_trade_id, time, is_buyer_maker, is_best_match
bookTicker archive  ``<SYMBOL>-bookTicker-...``: update_id, bid, bid_qty, ask, ask_qty,
                    transaction_time, event_time
==================  ==========================================================================

Archives published with a header row (the futures archives do so) are recognised by their
column names. Spot archives use *microsecond* timestamps from 2025-01-01 on; every
timestamp at or above ``10**14`` is read as microseconds and converted to milliseconds.

How each source becomes events:

* **klines** — each candle expands into a four-point price path: open, then low before
  high when the candle closed up (high before low otherwise), then close, at 0, 1/3, 2/3
  of the interval and its last millisecond. The volume is split evenly across the four
  points. When ``taker_buy_base`` is present, every point carries a taker-buy trade and a
  taker-sell trade sharing that point's volume in the candle's taker-buy proportion (the
  trade in the direction of the move comes first), so the totals of both sides match the
  candle exactly. Without it, each point is one trade whose taker side follows the move
  (up = taker buy, down = taker sell, unchanged = the candle's direction). A
  :class:`BookEvent` with a one-tick spread precedes every trade: a taker buy at ``p``
  sees ``bid = p - tick, ask = p``; a taker sell sees ``bid = p, ask = p + tick``. A
  candle with zero volume yields only a book at its close.
* **trades / aggTrades** — one :class:`TradeEvent` per row; unless
  ``synthesize_book=False``, each trade is preceded by a one-tick book built the same way,
  so an exchange replaying the file always has a book.
* **bookTicker** — one :class:`BookEvent` per row (time = ``local_recv_time_ms`` or the
  archive's transaction time).

The price tick (and the quantity step) is inferred from the largest number of decimals in
the file (trailing zeros ignored), unless ``tick`` is passed; kline volumes, which are
split, keep every decimal they are written with. Prices and quantities keep exactly their
values from the file, expressed at that precision. Rows that are not in time order are
stably sorted. The same file always yields the same events.

Malformed input raises :class:`MarketDataError` naming the file and the line.
"""

from __future__ import annotations

import csv
import heapq
import io
import itertools
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import TypeAlias

from flipbot.domain.model import BookTop, Side

__all__ = [
    "BookEvent",
    "DataKind",
    "MarketData",
    "MarketDataError",
    "MarketEvent",
    "TradeEvent",
    "infer_symbol",
    "load_market_data",
    "merge",
]

MICROSECONDS_THRESHOLD = 10**14
"""Timestamps at or above this are microseconds (ms timestamps stay below it until 5138 AD)."""


class MarketDataError(ValueError):
    """A market data file that cannot be read: unknown format or a malformed row."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        where = source or "<market data>"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One public trade. ``is_buyer_maker=True`` means the taker sold (Binance semantics)."""

    time_ms: int
    price: Decimal
    qty: Decimal
    is_buyer_maker: bool

    @property
    def taker_side(self) -> Side:
        """The side of the aggressor: SELL when the buyer was the maker."""
        return Side.SELL if self.is_buyer_maker else Side.BUY


@dataclass(frozen=True, slots=True)
class BookEvent:
    """The best bid and ask (and their quantities) at one instant."""

    time_ms: int
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal

    def top(self) -> BookTop:
        return BookTop(bid=self.bid, bid_qty=self.bid_qty, ask=self.ask, ask_qty=self.ask_qty)


MarketEvent: TypeAlias = TradeEvent | BookEvent


class DataKind(StrEnum):
    """Where a :class:`MarketData` came from."""

    KLINES = "klines"
    TRADES = "trades"
    AGG_TRADES = "aggTrades"
    BOOK_TICKER = "bookTicker"
    MERGED = "merged"
    SAMPLE = "sample"


@dataclass(frozen=True, slots=True)
class MarketData:
    """A time-ordered, immutable stream of market events for one symbol.

    ``source`` describes the origin (a file name, a generator and its seed...), ``tick``
    and ``step`` are the price tick and quantity step the events are expressed in (or
    ``None`` when unknown).
    """

    symbol: str
    source: str
    kind: DataKind
    events: tuple[MarketEvent, ...]
    tick: Decimal | None = None
    step: Decimal | None = None

    def __len__(self) -> int:
        return len(self.events)

    def __iter__(self) -> Iterator[MarketEvent]:
        return iter(self.events)

    @property
    def first_ms(self) -> int:
        """Time of the first event (``MarketDataError`` when empty)."""
        if not self.events:
            raise MarketDataError("no events", source=self.source)
        return self.events[0].time_ms

    @property
    def last_ms(self) -> int:
        """Time of the last event (``MarketDataError`` when empty)."""
        if not self.events:
            raise MarketDataError("no events", source=self.source)
        return self.events[-1].time_ms

    def trades(self) -> Iterator[TradeEvent]:
        """The trade events only, in order."""
        return (e for e in self.events if isinstance(e, TradeEvent))

    def books(self) -> Iterator[BookEvent]:
        """The book events only, in order."""
        return (e for e in self.events if isinstance(e, BookEvent))

    def between(self, start_ms: int, end_ms: int) -> MarketData:
        """The events with ``start_ms <= time_ms < end_ms``, as a new :class:`MarketData`."""
        selected = tuple(e for e in self.events if start_ms <= e.time_ms < end_ms)
        return MarketData(
            symbol=self.symbol,
            source=f"{self.source} [{start_ms}, {end_ms})",
            kind=self.kind,
            events=selected,
            tick=self.tick,
            step=self.step,
        )


# --------------------------------------------------------------------------- symbols

_SYMBOL_RE = re.compile(r"^[A-Z0-9]{5,20}$")


def infer_symbol(path: str | Path) -> str | None:
    """The symbol a file name starts with (``BTCUSDT_1m_...``, ``BTCUSDT-trades-...``).

    The first token of the name (split on ``_``, ``-`` and ``.``) is taken when it is 5 to
    20 upper-case letters or digits with at least one letter; ``None`` otherwise.
    """
    token = re.split(r"[_.\-]", Path(path).name, maxsplit=1)[0]
    if _SYMBOL_RE.match(token) and any(ch.isalpha() for ch in token):
        return token
    return None


# --------------------------------------------------------------------------- parsing

_TRUE = frozenset({"true", "1", "t"})
_FALSE = frozenset({"false", "0", "f"})
_KLINE_INTERVAL_RE = re.compile(r"-(1s|\d+m|\d+h|\d+d|\d+w|1mo)-")


class _Reader:
    """Field conversions that report the file and line on failure."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 0

    def fail(self, message: str) -> MarketDataError:
        return MarketDataError(message, source=self.source, line=self.line)

    def field(self, row: list[str], index: int, name: str) -> str:
        try:
            value = row[index].strip()
        except IndexError:
            raise self.fail(f"missing column {name!r} (row has {len(row)} columns)") from None
        return value

    def integer(self, row: list[str], index: int, name: str) -> int:
        text = self.field(row, index, name)
        try:
            return int(text)
        except ValueError:
            raise self.fail(f"{name} is not an integer: {text!r}") from None

    def time_ms(self, row: list[str], index: int, name: str) -> int:
        value = self.integer(row, index, name)
        if value < 0:
            raise self.fail(f"{name} is negative: {value}")
        return _to_ms(value)

    def decimal(self, row: list[str], index: int, name: str, *, positive: bool = False) -> Decimal:
        text = self.field(row, index, name)
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.fail(f"{name} is not a number: {text!r}") from None
        if not value.is_finite():
            raise self.fail(f"{name} is not finite: {text!r}")
        if value < 0 or (positive and value == 0):
            kind = "positive" if positive else "non-negative"
            raise self.fail(f"{name} must be {kind}: {text!r}")
        return value

    def optional_decimal(self, row: list[str], index: int | None, name: str) -> Decimal | None:
        if index is None or index >= len(row) or not row[index].strip():
            return None
        return self.decimal(row, index, name)

    def optional_time(self, row: list[str], index: int | None, name: str) -> int | None:
        if index is None or index >= len(row) or not row[index].strip():
            return None
        return self.time_ms(row, index, name)

    def boolean(self, row: list[str], index: int, name: str) -> bool:
        text = self.field(row, index, name).lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise self.fail(f"{name} is not a boolean: {text!r}")


def _to_ms(value: int) -> int:
    """Milliseconds from a ms or µs epoch timestamp (µs when ``>= 10**14``)."""
    if value >= MICROSECONDS_THRESHOLD:
        return value // 1000
    return value


def _decimals(text: str) -> int:
    """Significant decimals of a number as written (``"7195.24000000"`` → 2)."""
    text = text.strip()
    if "e" in text or "E" in text:
        exponent = Decimal(text).normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 0
    dot = text.find(".")
    if dot < 0:
        return 0
    return max(0, len(text.rstrip("0")) - dot - 1)


def _written_decimals(text: str) -> int:
    """Decimals of a number as written, trailing zeros included (``"8.000"`` → 3)."""
    exponent = Decimal(text.strip()).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _unit(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Column positions of one format (``None`` = absent)."""

    kind: DataKind
    header: bool
    time: int = 0
    price: int = 1
    qty: int = 2
    buyer_maker: int = 3
    # klines
    open: int = 1
    high: int = 2
    low: int = 3
    close: int = 4
    volume: int = 5
    close_time: int | None = 6
    taker_buy_base: int | None = 9
    # book
    bid: int = 2
    bid_qty: int = 3
    ask: int = 4
    ask_qty: int = 5


_ARCHIVE_KLINES = _Layout(DataKind.KLINES, header=False, time=0)
_ARCHIVE_TRADES = _Layout(DataKind.TRADES, header=False, time=4, price=1, qty=2, buyer_maker=5)
_ARCHIVE_AGG = _Layout(DataKind.AGG_TRADES, header=False, time=5, price=1, qty=2, buyer_maker=6)
_ARCHIVE_BOOK = _Layout(
    DataKind.BOOK_TICKER, header=False, time=5, bid=1, bid_qty=2, ask=3, ask_qty=4
)
_CSV_TRADES = _Layout(DataKind.TRADES, header=False, time=0, price=1, qty=2, buyer_maker=3)
_CSV_BOOK = _Layout(DataKind.BOOK_TICKER, header=False, time=0, bid=2, bid_qty=3, ask=4, ask_qty=5)

_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time_ms", "time", "transact_time", "local_recv_time_ms", "transaction_time"),
    "price": ("price",),
    "qty": ("qty", "quantity"),
    "buyer_maker": ("is_buyer_maker",),
    "open_time": ("open_time_ms", "open_time"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
    "close_time": ("close_time_ms", "close_time"),
    "taker_buy_base": ("taker_buy_base", "taker_buy_volume", "taker_buy_base_asset_volume"),
    "bid": ("bid_price", "best_bid_price"),
    "bid_qty": ("bid_qty", "best_bid_qty"),
    "ask": ("ask_price", "best_ask_price"),
    "ask_qty": ("ask_qty", "best_ask_qty"),
}


def _layout_from_header(header: list[str], reader: _Reader) -> _Layout:
    names = [h.strip().lower() for h in header]

    def find(key: str) -> int | None:
        for alias in _ALIASES[key]:
            if alias in names:
                return names.index(alias)
        return None

    def need(key: str) -> int:
        index = find(key)
        if index is None:
            raise reader.fail(f"header lacks a {key!r} column: {','.join(header)}")
        return index

    if find("open") is not None and find("high") is not None:
        return _Layout(
            DataKind.KLINES,
            header=True,
            time=need("open_time"),
            open=need("open"),
            high=need("high"),
            low=need("low"),
            close=need("close"),
            volume=need("volume"),
            close_time=find("close_time"),
            taker_buy_base=find("taker_buy_base"),
        )
    if find("bid") is not None and find("ask") is not None:
        return _Layout(
            DataKind.BOOK_TICKER,
            header=True,
            time=need("time"),
            bid=need("bid"),
            bid_qty=need("bid_qty"),
            ask=need("ask"),
            ask_qty=need("ask_qty"),
        )
    if find("price") is not None:
        kind = DataKind.AGG_TRADES if "first_trade_id" in names else DataKind.TRADES
        return _Layout(
            kind,
            header=True,
            time=need("time"),
            price=need("price"),
            qty=need("qty"),
            buyer_maker=need("buyer_maker"),
        )
    raise reader.fail(f"unrecognised header: {','.join(header)}")


def _layout_headerless(first: list[str], name: str, reader: _Reader) -> _Layout:
    if "-aggTrades-" in name:
        return _ARCHIVE_AGG
    if "-trades-" in name:
        return _ARCHIVE_TRADES
    if "-bookTicker-" in name:
        return _ARCHIVE_BOOK
    if _KLINE_INTERVAL_RE.search(name):
        return _ARCHIVE_KLINES
    by_columns = {12: _ARCHIVE_KLINES, 11: _ARCHIVE_KLINES, 8: _ARCHIVE_AGG, 7: _ARCHIVE_TRADES}
    by_columns |= {4: _CSV_TRADES, 6: _CSV_BOOK}
    layout = by_columns.get(len(first))
    if layout is None:
        raise reader.fail(f"unrecognised format: {len(first)} columns and no header")
    return layout


def _read_rows(path: Path) -> tuple[list[list[str]], str]:
    """All CSV rows of a ``.csv`` file or of the single CSV inside a ``.zip``."""
    source = str(path)
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
                if not members:
                    raise MarketDataError("zip archive holds no .csv file", source=source)
                text = archive.read(sorted(members)[0]).decode("utf-8-sig")
                source = f"{path}!{sorted(members)[0]}"
        else:
            text = path.read_text(encoding="utf-8-sig")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise MarketDataError(f"cannot read: {exc}", source=source) from exc
    return list(csv.reader(io.StringIO(text))), source


# --------------------------------------------------------------------------- loading


def load_market_data(
    path: str | Path,
    symbol: str | None = None,
    *,
    tick: Decimal | None = None,
    synthesize_book: bool = True,
) -> MarketData:
    """Load a klines, trades, aggTrades or bookTicker file (CSV or zip) as events.

    ``symbol`` defaults to the one the file name starts with (see :func:`infer_symbol`);
    ``tick`` defaults to the price precision found in the file. ``synthesize_book=False``
    keeps a trades file to its trades (for merging it with a bookTicker file).
    """
    file = Path(path)
    resolved = symbol or infer_symbol(file)
    if not resolved:
        raise MarketDataError(
            "cannot infer the symbol from the file name; pass symbol=...", source=str(file)
        )
    rows, source = _read_rows(file)
    reader = _Reader(source)
    rows_with_lines = [(n, row) for n, row in enumerate(rows, start=1) if any(row)]
    if not rows_with_lines:
        raise MarketDataError("file is empty", source=source)
    first_line, first = rows_with_lines[0]
    reader.line = first_line
    if first[0].strip().lstrip("-").isdigit():
        layout = _layout_headerless(first, file.name, reader)
        body = rows_with_lines
    else:
        layout = _layout_from_header(first, reader)
        body = rows_with_lines[1:]
    if not body:
        raise MarketDataError("no data rows after the header", source=source)
    if tick is not None and tick <= 0:
        raise MarketDataError(f"tick must be positive, got {tick}", source=source)
    if layout.kind is DataKind.KLINES:
        events, price_unit, qty_unit = _kline_events(body, layout, reader, tick)
    elif layout.kind is DataKind.BOOK_TICKER:
        events, price_unit, qty_unit = _book_events(body, layout, reader)
    else:
        events, price_unit, qty_unit = _trade_events(body, layout, reader, tick, synthesize_book)
    return MarketData(
        symbol=resolved.upper(),
        source=source,
        kind=layout.kind,
        events=tuple(events),
        tick=tick or price_unit,
        step=qty_unit,
    )


def _sorted_by_time(events: list[MarketEvent]) -> list[MarketEvent]:
    times = [e.time_ms for e in events]
    if all(a <= b for a, b in itertools.pairwise(times)):
        return events
    return sorted(events, key=lambda e: e.time_ms)


def _book_around(
    time_ms: int, price: Decimal, qty: Decimal, taker_sold: bool, tick: Decimal
) -> BookEvent:
    """A one-tick book that the trade at ``price`` hit (taker sold) or lifted (taker bought)."""
    if taker_sold:
        return BookEvent(time_ms, price, qty, price + tick, qty)
    bid = price - tick
    if bid <= 0:
        return BookEvent(time_ms, price, qty, price + tick, qty)
    return BookEvent(time_ms, bid, qty, price, qty)


_Row = tuple[int, list[str]]


def _max_decimals(texts: set[str]) -> int:
    return max((_decimals(text) for text in texts), default=0)


_FAST_BOOL = {"true": True, "false": False, "True": True, "False": False}
_PARSE_ERRORS = (ValueError, IndexError, KeyError, InvalidOperation)


def _slow_trade_row(
    reader: _Reader, row: list[str], layout: _Layout
) -> tuple[int, Decimal, Decimal, bool]:
    return (
        reader.time_ms(row, layout.time, "time"),
        reader.decimal(row, layout.price, "price", positive=True),
        reader.decimal(row, layout.qty, "qty", positive=True),
        reader.boolean(row, layout.buyer_maker, "is_buyer_maker"),
    )


def _trade_events(
    body: list[_Row],
    layout: _Layout,
    reader: _Reader,
    tick: Decimal | None,
    synthesize_book: bool,
) -> tuple[list[MarketEvent], Decimal, Decimal]:
    parsed: list[tuple[int, Decimal, Decimal, bool]] = []
    price_texts: set[str] = set()
    qty_texts: set[str] = set()
    ti, pi, qi, mi = layout.time, layout.price, layout.qty, layout.buyer_maker
    for line, row in body:
        # fast path; any doubt goes through the validating reader for a precise error
        try:
            time_ms = int(row[ti])
            price = Decimal(row[pi])
            qty = Decimal(row[qi])
            ok = time_ms >= 0 and price > 0 and qty > 0 and (price + qty).is_finite()
            buyer_maker = _FAST_BOOL[row[mi]]
        except _PARSE_ERRORS:
            ok = False
        if ok:
            parsed.append((_to_ms(time_ms), price, qty, buyer_maker))
        else:
            reader.line = line
            parsed.append(_slow_trade_row(reader, row, layout))
        price_texts.add(row[pi])
        qty_texts.add(row[qi])
    price_unit, qty_unit = _unit(_max_decimals(price_texts)), _unit(_max_decimals(qty_texts))
    spread = tick or price_unit
    events: list[MarketEvent] = []
    append = events.append
    for time_ms, raw_price, raw_qty, buyer_maker in parsed:
        price = raw_price.quantize(price_unit)
        qty = raw_qty.quantize(qty_unit)
        if synthesize_book:
            append(_book_around(time_ms, price, qty, buyer_maker, spread))
        append(TradeEvent(time_ms, price, qty, buyer_maker))
    if synthesize_book:
        # sort (book, trade) pairs together so every trade keeps its book in front of it
        pairs = [(events[i], events[i + 1]) for i in range(0, len(events), 2)]
        if any(a[0].time_ms > b[0].time_ms for a, b in itertools.pairwise(pairs)):
            pairs.sort(key=lambda pair: pair[0].time_ms)
            events = [event for pair in pairs for event in pair]
        return events, price_unit, qty_unit
    return _sorted_by_time(events), price_unit, qty_unit


def _slow_book_row(
    reader: _Reader, row: list[str], layout: _Layout
) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
    bid = reader.decimal(row, layout.bid, "bid_price", positive=True)
    ask = reader.decimal(row, layout.ask, "ask_price", positive=True)
    if bid > ask:
        raise reader.fail(f"crossed book: bid {bid} > ask {ask}")
    return (
        reader.time_ms(row, layout.time, "time"),
        bid,
        reader.decimal(row, layout.bid_qty, "bid_qty"),
        ask,
        reader.decimal(row, layout.ask_qty, "ask_qty"),
    )


def _book_events(
    body: list[_Row], layout: _Layout, reader: _Reader
) -> tuple[list[MarketEvent], Decimal, Decimal]:
    parsed: list[tuple[int, Decimal, Decimal, Decimal, Decimal]] = []
    price_texts: set[str] = set()
    qty_texts: set[str] = set()
    ti, bi, bqi, ai, aqi = layout.time, layout.bid, layout.bid_qty, layout.ask, layout.ask_qty
    for line, row in body:
        try:
            time_ms = int(row[ti])
            bid, bid_qty = Decimal(row[bi]), Decimal(row[bqi])
            ask, ask_qty = Decimal(row[ai]), Decimal(row[aqi])
            ok = (
                time_ms >= 0
                and 0 < bid <= ask
                and bid_qty >= 0
                and ask_qty >= 0
                and (ask + bid_qty + ask_qty).is_finite()
            )
        except _PARSE_ERRORS:
            ok = False
        if ok:
            parsed.append((_to_ms(time_ms), bid, bid_qty, ask, ask_qty))
        else:
            reader.line = line
            parsed.append(_slow_book_row(reader, row, layout))
        price_texts.add(row[bi])
        price_texts.add(row[ai])
        qty_texts.add(row[bqi])
        qty_texts.add(row[aqi])
    price_unit, qty_unit = _unit(_max_decimals(price_texts)), _unit(_max_decimals(qty_texts))
    events: list[MarketEvent] = [
        BookEvent(
            t,
            bid.quantize(price_unit),
            bid_qty.quantize(qty_unit),
            ask.quantize(price_unit),
            ask_qty.quantize(qty_unit),
        )
        for t, bid, bid_qty, ask, ask_qty in parsed
    ]
    return _sorted_by_time(events), price_unit, qty_unit


def _split(total: Decimal, parts: int, step: Decimal) -> list[Decimal]:
    """``total`` in ``parts`` shares on the ``step`` grid; the last share takes the remainder."""
    share = (total / parts).quantize(step, rounding=ROUND_DOWN)
    return [share] * (parts - 1) + [total - share * (parts - 1)]


def _kline_events(
    body: list[_Row], layout: _Layout, reader: _Reader, tick: Decimal | None
) -> tuple[list[MarketEvent], Decimal, Decimal]:
    Kline = tuple[int, int, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal | None]
    parsed: list[Kline] = []
    price_decimals = qty_decimals = 0
    for line, row in body:
        reader.line = line
        open_time = reader.time_ms(row, layout.time, "open_time")
        o = reader.decimal(row, layout.open, "open", positive=True)
        h = reader.decimal(row, layout.high, "high", positive=True)
        low = reader.decimal(row, layout.low, "low", positive=True)
        c = reader.decimal(row, layout.close, "close", positive=True)
        volume = reader.decimal(row, layout.volume, "volume")
        close_time = reader.optional_time(row, layout.close_time, "close_time")
        taker_buy = reader.optional_decimal(row, layout.taker_buy_base, "taker_buy_base")
        if not (low <= o <= h and low <= c <= h):
            raise reader.fail(f"inconsistent candle: open {o} high {h} low {low} close {c}")
        if taker_buy is not None and taker_buy > volume:
            raise reader.fail(f"taker_buy_base {taker_buy} exceeds volume {volume}")
        interval = 60_000 if close_time is None else close_time - open_time + 1
        if interval <= 0:
            raise reader.fail(f"close_time {close_time} is before open_time {open_time}")
        parsed.append((open_time, interval, o, h, low, c, volume, taker_buy))
        for index in (layout.open, layout.high, layout.low, layout.close):
            price_decimals = max(price_decimals, _decimals(row[index]))
        # volumes are split in four: keep every decimal they are written with
        qty_decimals = max(qty_decimals, _written_decimals(row[layout.volume]))
        if taker_buy is not None and layout.taker_buy_base is not None:
            qty_decimals = max(qty_decimals, _written_decimals(row[layout.taker_buy_base]))
    price_unit, qty_unit = _unit(price_decimals), _unit(qty_decimals)
    spread = tick or price_unit
    parsed.sort(key=lambda k: k[0])
    events: list[MarketEvent] = []
    append = events.append
    previous_close: Decimal | None = None
    for open_time, interval, raw_o, raw_h, raw_l, raw_c, raw_volume, raw_buy in parsed:
        o, h, low, c = (p.quantize(price_unit) for p in (raw_o, raw_h, raw_l, raw_c))
        candle_up = c >= o
        path = (o, low, h, c) if candle_up else (o, h, low, c)
        offsets = (0, interval // 3, 2 * interval // 3, interval - 1)
        if raw_volume == 0:
            append(BookEvent(open_time + interval - 1, c, qty_unit, c + spread, qty_unit))
            previous_close = c
            continue
        volume = raw_volume.quantize(qty_unit)
        if raw_buy is None:
            buys = None
            totals = _split(volume, 4, qty_unit)
        else:
            taker_buy = raw_buy.quantize(qty_unit)
            buys = _split(taker_buy, 4, qty_unit)
            sells = _split(volume - taker_buy, 4, qty_unit)
        prev = previous_close
        for i in range(4):
            price = path[i]
            time_ms = open_time + offsets[i]
            moved_up = candle_up if prev is None or price == prev else price > prev
            prev = price
            if buys is None:
                legs = [(totals[i], not moved_up)]
            else:
                buy_leg, sell_leg = (buys[i], False), (sells[i], True)
                legs = [buy_leg, sell_leg] if moved_up else [sell_leg, buy_leg]
            for qty, taker_sold in legs:
                if qty <= 0:
                    continue
                append(_book_around(time_ms, price, qty, taker_sold, spread))
                append(TradeEvent(time_ms, price, qty, taker_sold))
        previous_close = c
    return events, price_unit, qty_unit


# --------------------------------------------------------------------------- merging


def _event_time(event: MarketEvent) -> int:
    return event.time_ms


def merge(*datas: MarketData) -> MarketData:
    """Merge streams of one symbol by time; on equal times, argument order is kept."""
    if not datas:
        raise MarketDataError("merge() needs at least one MarketData")
    symbols = {d.symbol for d in datas}
    if len(symbols) != 1:
        raise MarketDataError(f"cannot merge different symbols: {sorted(symbols)}")
    events = tuple(heapq.merge(*(d.events for d in datas), key=_event_time))
    ticks = [d.tick for d in datas if d.tick is not None]
    steps = [d.step for d in datas if d.step is not None]
    return MarketData(
        symbol=datas[0].symbol,
        source=" + ".join(d.source for d in datas),
        kind=DataKind.MERGED,
        events=events,
        tick=min(ticks) if ticks else None,
        step=min(steps) if steps else None,
    )
