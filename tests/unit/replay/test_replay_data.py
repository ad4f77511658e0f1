"""Market data loaders: the reference files, Binance archive layouts and malformed input."""

from __future__ import annotations

import csv
import itertools
import zipfile
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from flipbot.domain.model import BookTop, Side
from flipbot_dev.replay.data import (
    BookEvent,
    DataKind,
    MarketData,
    MarketDataError,
    TradeEvent,
    infer_symbol,
    load_market_data,
    merge,
)

BTCUSDT_KLINES = "klines/BTCUSDT_1m_2020-01-01_2020-01-03_binance-vision.csv"
BTCBUSD_KLINES = "klines/BTCBUSD_1m_2022-12-13_lean.csv"
HFT_TRADES = "trades/BTCUSDT_trades_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
HFT_BOOK = "trades/BTCUSDT_bookTicker_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
NAUTILUS_TRADES = "trades/BTCUSDT_trades_2021-01-08T0000_nautilus.csv"


def _trades(data: MarketData) -> list[TradeEvent]:
    return list(data.trades())


def _assert_time_ordered(data: MarketData) -> None:
    times = [e.time_ms for e in data.events]
    assert all(a <= b for a, b in itertools.pairwise(times))


def _assert_book_before_each_trade(data: MarketData, tick: Decimal) -> None:
    """Every trade follows a one-tick book that it hit (taker sold) or lifted (taker bought)."""
    previous: BookEvent | TradeEvent | None = None
    for event in data.events:
        if isinstance(event, TradeEvent):
            assert isinstance(previous, BookEvent), event
            assert previous.time_ms == event.time_ms
            assert previous.ask - previous.bid == tick
            expected = previous.bid if event.is_buyer_maker else previous.ask
            assert event.price == expected
        previous = event


def _write(path: Path, rows: Sequence[Sequence[object]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def _zip(path: Path, inner: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(inner, inner.name)
    return path


# ------------------------------------------------------------------ reference files


@pytest.fixture(scope="module")
def hft_trades(reference_data: Path) -> MarketData:
    return load_market_data(reference_data / HFT_TRADES)


@pytest.fixture(scope="module")
def hft_book(reference_data: Path) -> MarketData:
    return load_market_data(reference_data / HFT_BOOK)


def test_binance_vision_klines_file(reference_data: Path) -> None:
    path = reference_data / BTCUSDT_KLINES
    data = load_market_data(path)  # its speed: bench/replay.py (load_btcusdt_3d_s)

    assert (data.symbol, data.kind, data.tick) == ("BTCUSDT", DataKind.KLINES, Decimal("0.01"))
    assert data.first_ms == 1_577_836_800_000
    assert data.last_ms == 1_578_095_999_999  # close time of the last candle
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4320
    trades = _trades(data)
    assert sum(t.qty for t in trades) == sum(Decimal(r["volume"]) for r in rows)
    taker_buys = sum(t.qty for t in trades if t.taker_side is Side.BUY)
    assert taker_buys == sum(Decimal(r["taker_buy_base"]) for r in rows)
    assert min(t.price for t in trades) == min(Decimal(r["low"]) for r in rows)
    assert max(t.price for t in trades) == max(Decimal(r["high"]) for r in rows)
    _assert_time_ordered(data)
    _assert_book_before_each_trade(data, Decimal("0.01"))


def test_klines_are_deterministic(reference_data: Path) -> None:
    path = reference_data / BTCBUSD_KLINES
    assert load_market_data(path).events == load_market_data(path).events


def test_lean_klines_without_taker_volume_follow_the_candle_path(reference_data: Path) -> None:
    data = load_market_data(reference_data / BTCBUSD_KLINES)

    assert (data.symbol, data.kind, len(_trades(data))) == ("BTCBUSD", DataKind.KLINES, 4 * 1440)
    # first candle: open 17212.12, high 17216.55, low 17208.88, close 17208.88 (down)
    first = _trades(data)[:4]
    assert [t.price for t in first] == [
        Decimal("17212.12"),
        Decimal("17216.55"),
        Decimal("17208.88"),
        Decimal("17208.88"),
    ]
    assert [t.time_ms - data.first_ms for t in first] == [0, 20_000, 40_000, 59_999]
    # up to the high is a taker buy, down to the low a taker sell
    assert [t.taker_side for t in first[1:3]] == [Side.BUY, Side.SELL]
    assert sum(t.qty for t in first) == Decimal("110.66042")
    _assert_book_before_each_trade(data, Decimal("0.01"))


def test_trades_file_gets_a_book_before_every_trade(hft_trades: MarketData) -> None:
    data = hft_trades

    trades = _trades(data)
    assert (data.symbol, data.kind, len(trades)) == ("BTCUSDT", DataKind.TRADES, 19_904)
    assert trades[0] == TradeEvent(1_723_161_255_342, Decimal("61837.63"), Decimal("0.02"), True)
    _assert_time_ordered(data)
    _assert_book_before_each_trade(data, Decimal("0.01"))


def test_nautilus_trades_file(reference_data: Path) -> None:
    data = load_market_data(reference_data / NAUTILUS_TRADES)

    trades = _trades(data)
    assert len(trades) == 2001
    assert trades[1] == TradeEvent(
        1_610_064_000_310, Decimal("39439.44"), Decimal("0.004376"), False
    )
    assert data.step == Decimal("0.000001")


def test_book_ticker_file(hft_book: MarketData) -> None:
    data = hft_book

    assert (data.kind, len(data)) == (DataKind.BOOK_TICKER, 73_174)
    assert data.events[0] == BookEvent(
        1_723_161_254_087,
        Decimal("61837.63"),
        Decimal("3.78826"),
        Decimal("61837.64"),
        Decimal("1.54698"),
    )
    assert all(isinstance(e, BookEvent) and e.bid <= e.ask for e in data.events)


def test_merge_trades_with_book_ticker(hft_trades: MarketData, hft_book: MarketData) -> None:
    trades = MarketData(
        hft_trades.symbol, hft_trades.source, DataKind.TRADES, tuple(hft_trades.trades())
    )

    merged = merge(trades, hft_book)

    assert (merged.kind, len(merged)) == (DataKind.MERGED, 19_904 + 73_174)
    assert merged.first_ms == min(trades.first_ms, hft_book.first_ms)
    _assert_time_ordered(merged)
    assert HFT_TRADES.split("/")[1] in merged.source


def test_trades_without_synthetic_book(tmp_path: Path) -> None:
    path = _write(tmp_path / "TRUMPUSDC_trades.csv", [[1000, "26.10", "1.000", "true"]])

    data = load_market_data(path, synthesize_book=False)

    assert data.events == (TradeEvent(1000, Decimal("26.10"), Decimal("1.000"), True),)


# ------------------------------------------------------------------ Binance archive layouts

KLINE_ROW_MS = [
    1_735_603_200_000, "93576.00000000", "93610.93000000", "93537.50000000", "93556.07000000",
    "8.51714000", 1_735_603_259_999, "797018.13", 1451, "2.30162000", "215398.78", "0",
]  # fmt: skip


def test_klines_archive_zip_with_millisecond_times(tmp_path: Path) -> None:
    inner = _write(tmp_path / "BTCUSDT-1m-2024-12-31.csv", [KLINE_ROW_MS])
    archive = _zip(tmp_path / "BTCUSDT-1m-2024-12-31.zip", inner)

    data = load_market_data(archive)

    assert (data.symbol, data.kind, data.tick) == ("BTCUSDT", DataKind.KLINES, Decimal("0.01"))
    assert data.first_ms == 1_735_603_200_000
    assert data.last_ms == 1_735_603_259_999
    trades = _trades(data)
    assert sum(t.qty for t in trades) == Decimal("8.51714")
    assert sum(t.qty for t in trades if not t.is_buyer_maker) == Decimal("2.30162")
    assert "BTCUSDT-1m-2024-12-31.csv" in data.source


def test_klines_archive_with_microsecond_times(tmp_path: Path) -> None:
    row = list(KLINE_ROW_MS)
    row[0], row[6] = 1_735_689_600_000_000, 1_735_689_659_999_999  # 2025-01-01, in µs
    data = load_market_data(_write(tmp_path / "BTCUSDT-1m-2025-01-01.csv", [row]))

    assert data.first_ms == 1_735_689_600_000
    assert data.last_ms == 1_735_689_659_999


def test_trades_archive_with_microsecond_times(tmp_path: Path) -> None:
    rows = [
        [4_400_000_001, "26.10", "1.500", "39.15", 1_737_331_200_123_456, "True", "True"],
        [4_400_000_002, "26.11", "0.250", "6.5275", 1_737_331_200_500_000, "False", "True"],
    ]
    inner = _write(tmp_path / "TRUMPUSDC-trades-2025-01-20.csv", rows)
    data = load_market_data(_zip(tmp_path / "TRUMPUSDC-trades-2025-01-20.zip", inner))

    assert (data.symbol, data.kind) == ("TRUMPUSDC", DataKind.TRADES)
    assert _trades(data) == [
        TradeEvent(1_737_331_200_123, Decimal("26.10"), Decimal("1.500"), True),
        TradeEvent(1_737_331_200_500, Decimal("26.11"), Decimal("0.250"), False),
    ]
    assert data.events[0] == BookEvent(
        1_737_331_200_123, Decimal("26.10"), Decimal("1.500"), Decimal("26.11"), Decimal("1.500")
    )


def test_agg_trades_archive(tmp_path: Path) -> None:
    rows = [
        [1, "26.10", "2.000", 10, 12, 1_737_331_200_000, "true", "true"],
        [2, "26.12", "0.500", 13, 13, 1_737_331_201_000, "false", "true"],
    ]
    data = load_market_data(_write(tmp_path / "TRUMPUSDC-aggTrades-2025-01-20.csv", rows))

    assert data.kind is DataKind.AGG_TRADES
    assert [(t.price, t.taker_side) for t in _trades(data)] == [
        (Decimal("26.10"), Side.SELL),
        (Decimal("26.12"), Side.BUY),
    ]


def test_headed_archives_are_read_by_column_name(tmp_path: Path) -> None:
    header = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id"]
    header += ["transact_time", "is_buyer_maker"]
    path = _write(
        tmp_path / "BTCUSDT-aggTrades-2025-02-01.csv",
        [[7, "100.5", "0.1", 1, 1, 1_738_368_000_000, "false"]],
        header,
    )
    data = load_market_data(path)
    assert data.kind is DataKind.AGG_TRADES
    assert _trades(data) == [TradeEvent(1_738_368_000_000, Decimal("100.5"), Decimal("0.1"), False)]

    book_header = ["update_id", "best_bid_price", "best_bid_qty", "best_ask_price"]
    book_header += ["best_ask_qty", "transaction_time", "event_time"]
    book = _write(
        tmp_path / "BTCUSDT-bookTicker-2025-02-01.csv",
        [[1, "100.4", "2", "100.5", "3", 1_738_368_000_001, 1_738_368_000_002]],
        book_header,
    )
    assert load_market_data(book).events == (
        BookEvent(
            1_738_368_000_001, Decimal("100.4"), Decimal("2"), Decimal("100.5"), Decimal("3")
        ),
    )


def test_headerless_book_ticker_archive(tmp_path: Path) -> None:
    rows = [[9, "26.10", "5.0", "26.12", "7.5", 1_737_331_200_000, 1_737_331_200_001]]
    data = load_market_data(_write(tmp_path / "TRUMPUSDC-bookTicker-2025-01-20.csv", rows))

    assert data.kind is DataKind.BOOK_TICKER
    assert data.events[0] == BookEvent(
        1_737_331_200_000, Decimal("26.10"), Decimal("5.0"), Decimal("26.12"), Decimal("7.5")
    )


# ------------------------------------------------------------------ klines expansion


def _kline(open_ms: int, ohlcv: str, buy: str = "") -> list[str]:
    """A klines CSV row from ``"open high low close volume"``."""
    o, h, low, c, volume = ohlcv.split()
    return [str(open_ms), o, h, low, c, volume, str(open_ms + 59_999), "", "", buy, ""]


KLINE_HEADER = "open_time_ms,open,high,low,close,volume,close_time_ms,quote_volume,trades,"
KLINE_HEADER += "taker_buy_base,taker_buy_quote"


def test_up_candle_visits_the_low_first_and_splits_taker_volume(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "TRUMPUSDC_1m.csv",
        [_kline(0, "10.00 12.00 9.00 11.00 8.000", "6.000")],
        KLINE_HEADER.split(","),
    )
    trades = _trades(load_market_data(path))

    path_prices = [price for price, _ in itertools.groupby(t.price for t in trades)]
    assert path_prices == [Decimal(p) for p in ("10", "9", "12", "11")]
    assert len(trades) == 8  # a taker buy and a taker sell at each of the four points
    assert sum(t.qty for t in trades if not t.is_buyer_maker) == Decimal("6.000")
    assert sum(t.qty for t in trades if t.is_buyer_maker) == Decimal("2.000")
    # at the high (a rise) the taker buy comes first, at the low (a fall) the taker sell
    at_high = [t for t in trades if t.price == Decimal("12.00")]
    at_low = [t for t in trades if t.price == Decimal("9.00")]
    assert at_high[0].taker_side is Side.BUY
    assert at_low[0].taker_side is Side.SELL


def test_down_candle_visits_the_high_first(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "TRUMPUSDC_1m.csv",
        [_kline(60_000, "10.00 10.50 9.00 9.50 4.000")],
        KLINE_HEADER.split(","),
    )
    trades = _trades(load_market_data(path))

    assert [t.price for t in trades] == [Decimal(p) for p in ("10.00", "10.50", "9.00", "9.50")]
    assert [t.qty for t in trades] == [Decimal("1.000")] * 4
    assert str(trades[0].qty) == "1.000"


def test_zero_volume_candle_yields_only_a_book(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "TRUMPUSDC_1m.csv",
        [_kline(0, "10.00 10.00 10.00 10.00 0")],
        KLINE_HEADER.split(","),
    )
    data = load_market_data(path, tick=Decimal("0.01"))

    assert data.events == (
        BookEvent(59_999, Decimal("10.00"), Decimal("1"), Decimal("10.01"), Decimal("1")),
    )


def test_tick_argument_sets_the_synthetic_spread(tmp_path: Path) -> None:
    path = _write(tmp_path / "TRUMPUSDC_t.csv", [[1000, "26.1", "1", "true"]])
    data = load_market_data(path, tick=Decimal("0.01"))

    assert data.tick == Decimal("0.01")
    assert data.events[0] == BookEvent(
        1000, Decimal("26.1"), Decimal("1"), Decimal("26.11"), Decimal("1")
    )


def test_out_of_order_trades_are_sorted_with_their_books(tmp_path: Path) -> None:
    rows = [[2000, "26.10", "1.000", "false"], [1000, "26.00", "2.000", "true"]]
    data = load_market_data(_write(tmp_path / "TRUMPUSDC_trades.csv", rows))

    assert [type(e).__name__ for e in data.events] == ["BookEvent", "TradeEvent"] * 2
    assert [e.time_ms for e in data.events] == [1000, 1000, 2000, 2000]


# ------------------------------------------------------------------ symbols and helpers


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("BTCUSDT_1m_2020-01-01_2020-01-03_binance-vision.csv", "BTCUSDT"),
        ("BTCBUSD_1m_2022-12-13_lean.csv", "BTCBUSD"),
        ("TRUMPUSDC-trades-2025-01-20.zip", "TRUMPUSDC"),
        ("1000SATSUSDT-1m-2025-01-01.csv", "1000SATSUSDT"),
        ("data.csv", None),
        ("12345.csv", None),
    ],
)
def test_infer_symbol(name: str, symbol: str | None) -> None:
    assert infer_symbol(name) == symbol


def test_symbol_argument_wins_and_is_required_when_not_inferable(tmp_path: Path) -> None:
    path = _write(tmp_path / "data.csv", [[1000, "26.10", "1.000", "true"]])

    with pytest.raises(MarketDataError, match=r"data\.csv.*symbol"):
        load_market_data(path)
    assert load_market_data(path, symbol="trumpusdc").symbol == "TRUMPUSDC"


def test_event_helpers() -> None:
    trade = TradeEvent(1, Decimal("26.10"), Decimal("1"), is_buyer_maker=True)
    book = BookEvent(1, Decimal("26.10"), Decimal("3"), Decimal("26.11"), Decimal("4"))
    data = MarketData("TRUMPUSDC", "test", DataKind.TRADES, (book, trade))

    assert trade.taker_side is Side.SELL
    assert book.top() == BookTop(Decimal("26.10"), Decimal("3"), Decimal("26.11"), Decimal("4"))
    assert (len(data), list(data), list(data.books()), _trades(data)) == (
        2,
        [book, trade],
        [book],
        [trade],
    )
    assert len(data.between(0, 1)) == 0
    assert len(data.between(1, 2)) == 2
    with pytest.raises(MarketDataError, match="no events"):
        _ = MarketData("X", "empty", DataKind.TRADES, ()).first_ms


def test_merge_rejects_different_symbols() -> None:
    a = MarketData("BTCUSDT", "a", DataKind.TRADES, ())
    b = MarketData("ETHUSDT", "b", DataKind.TRADES, ())
    with pytest.raises(MarketDataError, match="different symbols"):
        merge(a, b)
    with pytest.raises(MarketDataError):
        merge()


# ------------------------------------------------------------------ malformed input


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["time_ms", "price", "qty", "is_buyer_maker"], [1, "26.1", "1", "true"],
          [2, "abc", "1", "true"]], r"line 3: price is not a number: 'abc'"),
        ([["time_ms", "price", "qty", "is_buyer_maker"], [1, "26.1", "1", "maybe"]],
         r"line 2: is_buyer_maker is not a boolean"),
        ([["time_ms", "price", "qty", "is_buyer_maker"], ["x", "26.1", "1", "true"]],
         r"line 2: time is not an integer"),
        ([["time_ms", "price", "qty", "is_buyer_maker"], [1, "-26.1", "1", "true"]],
         r"line 2: price must be positive"),
        ([["time_ms", "price", "qty", "is_buyer_maker"], [1, "26.1", "NaN", "true"]],
         r"line 2: qty is not finite"),
        ([["time_ms", "price", "qty", "is_buyer_maker"], [1, "26.1"]],
         r"line 2: missing column 'qty'"),
        ([KLINE_HEADER.split(","), _kline(0, "10 9 11 10 1")],
         r"line 2: inconsistent candle"),
        ([KLINE_HEADER.split(","), _kline(0, "10 11 9 10 1", "2")],
         r"line 2: taker_buy_base 2 exceeds volume 1"),
        ([["local_recv_time_ms", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty"],
          [1, 1, "26.2", "1", "26.1", "1"]], r"line 2: crossed book"),
        ([["when", "what"], [1, 2]], r"line 1: unrecognised header"),
        ([[1, 2, 3]], r"line 1: unrecognised format: 3 columns"),
    ],
)  # fmt: skip
def test_malformed_rows_name_the_file_and_line(
    tmp_path: Path, rows: list[list[object]], message: str
) -> None:
    path = _write(tmp_path / "TRUMPUSDC_bad.csv", rows)

    with pytest.raises(MarketDataError, match=message) as caught:
        load_market_data(path)
    assert str(path) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_empty_missing_and_broken_files(tmp_path: Path) -> None:
    empty = tmp_path / "TRUMPUSDC_empty.csv"
    empty.write_text("\n\n")
    with pytest.raises(MarketDataError, match="empty"):
        load_market_data(empty)
    header = ["time_ms", "price", "qty", "is_buyer_maker"]
    header_only = _write(tmp_path / "TRUMPUSDC_header.csv", [], header)
    with pytest.raises(MarketDataError, match="no data rows"):
        load_market_data(header_only)
    with pytest.raises(MarketDataError, match="cannot read"):
        load_market_data(tmp_path / "TRUMPUSDC_missing.csv")
    no_csv = tmp_path / "TRUMPUSDC-trades-2025-01-20.zip"
    with zipfile.ZipFile(no_csv, "w") as archive:
        archive.writestr("README.txt", "nothing here")
    with pytest.raises(MarketDataError, match=r"no \.csv"):
        load_market_data(no_csv)
    not_zip = tmp_path / "TRUMPUSDC-trades-2025-01-21.zip"
    not_zip.write_text("plain text")
    with pytest.raises(MarketDataError, match="cannot read"):
        load_market_data(not_zip)
    good = _write(tmp_path / "TRUMPUSDC_ok.csv", [[1, "26.1", "1", "true"]])
    with pytest.raises(MarketDataError, match="tick must be positive"):
        load_market_data(good, tick=Decimal(0))
