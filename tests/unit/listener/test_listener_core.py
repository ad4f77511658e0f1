"""The listener's hot path, driven directly: parse -> indicators -> throttle -> queue -> batches."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from flipbot.events import OrderFilled, OrderUpdated, PriceTicked, StreamGapDetected
from flipbot.listener.core import (
    MAX_BATCH_BYTES,
    SHUTDOWN,
    MarketPipeline,
    OrderStream,
    Outbound,
    OutboundQueue,
    entry_size,
)
from flipbot.observability import ScrubbingFormatter

from .conftest import SYMBOL, T0, book, trade

Payload = Callable[[str], Any]


def ticks(queue: OutboundQueue) -> list[dict[str, Any]]:
    return [dict(i.detail) for i in queue.next_batch(1000, 10**9) if i.detail_type == "PriceTicked"]


# --- parsing every documented market message ---------------------------------------------
@pytest.mark.parametrize("combined", [False, True])
def test_given_documented_market_payloads_then_each_is_understood(
    payload: Payload, combined: bool
) -> None:
    queue = OutboundQueue(100)
    pipeline = MarketPipeline("BNBBTC", queue)
    names = {
        "trade": "market_streams/trade.json",
        "aggTrade": "market_streams/aggTrade.json",
        "kline": "market_streams/kline.json",
        "depthUpdate": "market_streams/depth_diff.json",
        "depth": "market_streams/depth_partial.json",
    }
    for stream, name in names.items():
        data = payload(name)
        message = {"stream": f"bnbbtc@{stream}", "data": data} if combined else data
        assert pipeline.feed(json.dumps(message), 1_672_515_782_200) is None
    bnbusdt = MarketPipeline("BNBUSDT", OutboundQueue(100))
    book_ticker = payload("market_streams/bookTicker.json")
    bnbusdt.feed(json.dumps(book_ticker), 1_672_515_782_200)

    assert pipeline.invalid == pipeline.ignored == 0
    assert pipeline.depth_updates == 1
    snapshot = pipeline.snapshot(1_672_515_782_200)
    assert snapshot is not None
    assert snapshot.last_price == Decimal("0.001")
    assert snapshot.extra["depth_imbalance"] == f"{(10 - 100) / 110:.6f}"
    assert snapshot.extra["kline_1m_close"] == "0.0020"
    assert snapshot.extra["kline_1m_closed"] == "false"
    top = bnbusdt.snapshot(1_672_515_782_200)
    assert top is not None
    assert top.book is not None
    assert top.book.bid == Decimal("25.35190000")
    assert top.book.ask_qty == Decimal("40.66000000")


@pytest.mark.parametrize(
    "name",
    ["market_streams/serverShutdown.raw.json", "market_streams/serverShutdown.combined.json"],
)
def test_given_server_shutdown_in_either_form_then_feed_says_so(
    payload: Payload, pipeline: MarketPipeline, name: str
) -> None:
    assert pipeline.feed(json.dumps(payload(name)), T0) == SHUTDOWN


@pytest.mark.parametrize(
    "name",
    [
        "real_captures/hftbacktest_btcusdt_trade.json",
        "real_captures/hftbacktest_btcusdt_bookTicker.json",
        "real_captures/hftbacktest_btcusdt_depth_100ms.json",
    ],
)
def test_given_real_captured_messages_then_they_parse(payload: Payload, name: str) -> None:
    capture = payload(name)
    pipeline = MarketPipeline("BTCUSDT", OutboundQueue(10))
    pipeline.feed(json.dumps(capture["message"]), capture["local_recv_ns"] // 1_000_000)
    assert pipeline.invalid == pipeline.ignored == 0


def test_given_garbage_then_it_is_counted_and_logged_once_not_raised(
    pipeline: MarketPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    for raw in ["not json", "[]", '{"e": "trade"}', '{"stream": "x", "data": {"e": "trade"}}']:
        assert pipeline.feed(raw, T0) is None
    assert pipeline.invalid == 4
    assert len([r for r in caplog.records if "unreadable market message" in r.message]) == 1


def test_given_a_subscribe_answer_or_another_symbol_then_nothing_happens(
    payload: Payload, pipeline: MarketPipeline
) -> None:
    pipeline.feed(json.dumps(payload("market_streams/subscribe.response.json")), T0)
    pipeline.feed(json.dumps(payload("market_streams/trade.json")), T0)  # BNBBTC, not ours
    assert pipeline.ignored == 1
    assert pipeline.invalid == 0
    assert pipeline.snapshot(T0) is None


# --- indicators ---------------------------------------------------------------------------
def test_given_trades_then_the_indicators_see_them(pipeline: MarketPipeline) -> None:
    for i in range(30):
        t = T0 + i * 60_000
        pipeline.feed(trade(t, f"{100 + i}.00", "2", trade_id=i + 1, maker=i % 2 == 0), t)
    pipeline.feed(book(1, "128.99", "129.01"), T0 + 29 * 60_000)
    snapshot = pipeline.snapshot(T0 + 29 * 60_000)
    assert snapshot is not None
    assert snapshot.last_price == Decimal("129.00")
    assert snapshot.ma5 == Decimal("126")  # closes of minutes 24..28
    assert snapshot.ma20 is not None
    assert snapshot.volatility is not None
    assert snapshot.book is not None
    assert snapshot.book.bid == Decimal("128.99")
    assert snapshot.imbalance == Decimal(str(round((2 - 1) / 3, 8)))
    assert snapshot.high_24h == Decimal("129")
    assert snapshot.low_24h == Decimal("100")


def test_given_overlapping_connections_then_repeated_trades_and_book_updates_are_ignored(
    pipeline: MarketPipeline,
) -> None:
    pipeline.feed(trade(T0, "100.00", trade_id=5), T0)
    pipeline.feed(trade(T0, "100.00", trade_id=5), T0)  # the same trade on the new connection
    pipeline.feed(trade(T0 + 1, "100.10", trade_id=4), T0)  # older
    pipeline.feed(book(10, "99", "101"), T0)
    pipeline.feed(book(10, "99", "101"), T0)
    assert pipeline.duplicates == 3
    day = pipeline.indicators.day.value(T0)
    assert day is not None
    assert day[2] == 1.0
    pipeline.reset_sequence()  # a fresh connection to a restarted server: ids start over
    pipeline.feed(trade(T0 + 2, "100.00", trade_id=1), T0 + 2)
    assert pipeline.duplicates == 3


# --- the PriceTicked throttle -------------------------------------------------------------
def test_given_small_moves_then_no_tick_until_n_bps_or_m_seconds(
    pipeline: MarketPipeline, queue: OutboundQueue
) -> None:
    pipeline.feed(trade(T0, "100.00", trade_id=1), T0)  # the first price is published
    first = ticks(queue)
    assert [t["price"] for t in first] == ["100.00"]
    assert first[0]["time_ms"] == T0
    for i, price in enumerate(["100.10", "99.85", "100.19", "99.81"]):  # within 20 bps
        pipeline.feed(trade(T0 + 1000 + i, price, trade_id=2 + i), T0 + 1000 + i)
    assert ticks(queue) == []
    pipeline.feed(trade(T0 + 2000, "100.20", trade_id=10), T0 + 2000)  # +20 bps: a move
    assert [t["price"] for t in ticks(queue)] == ["100.20"]
    pipeline.feed(trade(T0 + 3000, "99.90", trade_id=11), T0 + 3000)  # -29.9 bps from 100.20
    assert [t["price"] for t in ticks(queue)] == ["99.90"]
    # No move, but 60 s since the last tick: the time rule (on a book update or a poll).
    pipeline.feed(book(1, "99.89", "99.91"), T0 + 62_999)
    assert ticks(queue) == []
    pipeline.feed(book(2, "99.88", "99.92"), T0 + 63_000)
    tick = ticks(queue)
    assert tick == [
        PriceTicked(
            symbol=SYMBOL,
            price=Decimal("99.90"),
            bid=Decimal("99.88"),
            ask=Decimal("99.92"),
            time_ms=T0 + 3000,
        ).model_dump(mode="json")
    ]
    pipeline.poll(T0 + 122_999)
    assert ticks(queue) == []
    pipeline.poll(T0 + 123_000)
    assert len(ticks(queue)) == 1


def test_given_only_a_book_then_the_mid_is_published(
    pipeline: MarketPipeline, queue: OutboundQueue
) -> None:
    pipeline.feed(book(1, "10.00", "10.02"), T0)
    (tick,) = ticks(queue)
    assert Decimal(tick["price"]) == Decimal("10.01")
    assert tick["time_ms"] == T0


@pytest.mark.parametrize(("bps", "seconds"), [(1, 1), (20, 60), (100, 300)])
def test_given_any_settings_then_ticks_are_bounded_by_the_rules(bps: int, seconds: int) -> None:
    queue = OutboundQueue(10**6)
    pipeline = MarketPipeline(SYMBOL, queue, tick_bps=bps, tick_seconds=seconds)
    price, published = 100.0, []
    for i in range(5000):
        price *= 1.0004 if (i // 50) % 2 else 0.9997
        t = T0 + i * 200
        pipeline.feed(trade(t, f"{price:.4f}", trade_id=i + 1), t)
        for item in queue.next_batch(1000, 10**9):
            published.append((t, float(item.detail["price"])))
    for (t1, p1), (t2, p2) in itertools.pairwise(published):
        moved = abs(p2 - p1) / p1 >= bps / 10_000 * (1 - 1e-9)
        assert moved or t2 - t1 >= seconds * 1000
        assert t2 - t1 <= seconds * 1000 + 200  # never silent longer than M s while trading


# --- snapshots ----------------------------------------------------------------------------
def test_given_polls_then_a_snapshot_at_most_every_n_seconds(pipeline: MarketPipeline) -> None:
    assert pipeline.poll(T0) is None  # nothing known yet
    pipeline.feed(trade(T0, "100.00", trade_id=1), T0)
    times = [t for t in range(T0, T0 + 35_000, 1000) if pipeline.poll(t) is not None]
    assert times == [T0, T0 + 10_000, T0 + 20_000, T0 + 30_000]


def _ma7_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "flipbot.listener" and " MA7 " in r.message]


def test_given_a_known_ma7_then_each_snapshot_logs_it_and_its_direction_once_at_info(
    pipeline: MarketPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "flipbot.listener")
    # Given trades rising a point a minute: minutes 0..7 closed at 100..107
    for i in range(9):
        t = T0 + i * 60_000
        pipeline.feed(trade(t, f"{100 + i}.00", trade_id=i + 1), t)
    start = T0 + 8 * 60_000
    # When the clock polls every second for 35 s while trades keep ticking
    for n, t in enumerate(range(start, start + 35_000, 1000)):
        pipeline.feed(trade(t, f"{108 + n % 2}.00", trade_id=100 + n), t)
        pipeline.poll(t)
    # Then one INFO line a snapshot interval (10 s), none for the ticks in between,
    # with the snapshot's figures
    lines = _ma7_lines(caplog)
    assert len(lines) == 4
    assert {r.levelno for r in lines} == {logging.INFO}
    first = lines[0]
    # MA7 of the closes 101..107 is 104, up from 103
    assert first.getMessage() == f"{SYMBOL} last 108.0 MA7 104.0 UP"
    expected = {"symbol": SYMBOL, "last_price": "108.0", "ma7": "104.0", "ma7_trend": "UP"}
    assert {k: vars(first)[k] for k in expected} == expected
    # And the JSON log line keeps them as fields
    line = json.loads(ScrubbingFormatter().format(first))
    assert {k: line[k] for k in expected} == expected


def test_given_too_few_minutes_for_ma7_then_each_snapshot_logs_it_is_warming_up(
    pipeline: MarketPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "flipbot.listener")
    # Given three minutes of trades: two closes, MA7 needs seven
    for i in range(3):
        t = T0 + i * 60_000
        pipeline.feed(trade(t, f"{100 + i}.00", trade_id=i + 1), t)
    start = T0 + 2 * 60_000
    # When the clock polls every second for 15 s
    for t in range(start, start + 15_000, 1000):
        pipeline.poll(t)
    # Then one INFO line a snapshot interval says MA7 is warming up: no error, no direction
    lines = _ma7_lines(caplog)
    assert [r.getMessage() for r in lines] == [f"{SYMBOL} last 102.0 MA7 warming up"] * 2
    assert {r.levelno for r in lines} == {logging.INFO}
    assert (vars(lines[0])["ma7"], vars(lines[0])["ma7_trend"]) == (None, "WARMING_UP")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- execution reports --------------------------------------------------------------------
def test_given_the_documented_execution_report_then_one_order_updated_with_its_detail(
    payload: Payload, orders: OrderStream, queue: OutboundQueue
) -> None:
    message = payload("user_data/executionReport.wsapi.json")
    assert orders.on_execution_report(message, 1_499_405_658_700) == 1
    (item,) = queue.next_batch()
    assert item.detail_type == "OrderUpdated"
    assert item.critical
    detail = OrderUpdated.model_validate(item.detail)
    assert detail.client_order_id == "mUvoqJxFIILMdfAW5iGSOW"
    assert detail.order_id == 4293153
    assert detail.price == Decimal("0.10264410")
    assert detail.status == "NEW"
    assert detail.trade_id == -1
    assert orders.lag.take() == {42: 1}


def test_given_a_fill_then_order_updated_and_order_filled(
    payload: Payload, orders: OrderStream, queue: OutboundQueue
) -> None:
    message = payload("user_data/executionReport.wsapi.json")
    event = dict(message["event"], x="TRADE", X="FILLED", l="1.00000000", z="1.00000000", t=77)
    event.update(L="0.10264410", Z="0.10264410", Y="0.10264410", n="0.001", N="BNB")
    assert orders.on_execution_report({"subscriptionId": 3, "event": event}, event["E"]) == 2
    updated, filled = queue.next_batch()
    assert (updated.detail_type, filled.detail_type) == ("OrderUpdated", "OrderFilled")
    assert OrderFilled.model_validate(filled.detail).trade_id == 77
    assert updated.detail == filled.detail


def test_given_the_same_report_twice_then_published_once(
    payload: Payload, orders: OrderStream, queue: OutboundQueue
) -> None:
    message = payload("user_data/executionReport.wsapi.json")
    orders.on_execution_report(message, 0)
    orders.on_execution_report(message["event"], 0)  # bare form, same report
    assert orders.duplicates == 1
    assert len(queue.next_batch()) == 1


def test_given_an_unreadable_report_then_a_gap_is_published_instead(
    payload: Payload, orders: OrderStream, queue: OutboundQueue
) -> None:
    event = dict(payload("user_data/executionReport.wsapi.json")["event"])
    del event["z"]
    assert orders.on_execution_report({"event": event}, 1_499_405_659_000) == 0
    (item,) = queue.next_batch()
    gap = StreamGapDetected.model_validate(item.detail)
    assert gap.stream == "user"
    assert "lacks field" in gap.reason
    assert (gap.since_ms, gap.until_ms) == (1_499_405_658_658, 1_499_405_659_000)


# --- the outbound queue and its overflow policy -------------------------------------------
def _tick(n: int) -> Outbound:
    return Outbound("PriceTicked", {"n": n}, critical=False)


def _order(n: int) -> Outbound:
    return Outbound("OrderUpdated", {"n": n}, critical=True)


def test_given_a_full_queue_then_oldest_ticks_go_and_order_updates_never(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "flipbot.listener")
    queue = OutboundQueue(10)
    for n in range(8):
        queue.put(_tick(n))
    for n in range(4):
        assert queue.put(_order(n))  # 12 queued: over capacity, accepted
    assert queue.put(_tick(100))  # evicts tick 0
    assert [r.levelname for r in caplog.records] == ["ERROR", "WARNING"]
    for n in range(101, 200):
        queue.put(_tick(n))
    assert queue.dropped == 100
    assert queue.critical_pending == 4
    drops = [r for r in caplog.records if "outbound queue full" in r.message]
    assert len(drops) == 3  # the 1st, 10th and 100th drop of the episode
    first = queue.next_batch()
    assert [i.detail["n"] for i in first] == [0, 1, 2, 3, 192, 193, 194, 195, 196, 197]
    assert [i.detail["n"] for i in queue.next_batch()] == [198, 199]
    assert "recovered: 100 PriceTicked dropped" in caplog.records[-1].message


def test_given_a_queue_of_only_order_updates_then_an_arriving_tick_is_dropped() -> None:
    queue = OutboundQueue(10)
    for n in range(10):
        queue.put(_order(n))
    assert not queue.put(_tick(1))
    assert (queue.dropped, len(queue)) == (1, 10)


def test_given_many_events_then_batches_hold_at_most_10_entries_and_256_kb() -> None:
    queue = OutboundQueue(1000)
    for n in range(25):
        queue.put(_order(n))
    assert [len(queue.next_batch()) for _ in range(4)] == [10, 10, 5, 0]
    big = "x" * 100_000  # three of these exceed 256 KB together
    for n in range(3):
        queue.put(Outbound("OrderUpdated", {"n": n, "pad": big}, critical=True))
    sizes = [sum(i.size for i in b) for b in (queue.next_batch(), queue.next_batch())]
    assert all(size <= MAX_BATCH_BYTES for size in sizes)
    assert sizes[0] > 200_000
    assert sizes[1] > 100_000


def test_given_an_event_too_big_for_put_events_then_it_is_dropped_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = OutboundQueue(10)
    queue.put(Outbound("OrderUpdated", {"pad": "x" * MAX_BATCH_BYTES}, critical=True))
    queue.put(_order(1))
    assert [i.detail for i in queue.next_batch()] == [{"n": 1}]
    assert "too large" in caplog.text


def test_given_a_failed_batch_then_requeue_puts_it_back_in_front_in_order() -> None:
    queue = OutboundQueue(100)
    for n in range(12):
        queue.put(_order(n))
    queue.put(_tick(1))
    batch = queue.next_batch()
    queue.requeue(batch)
    assert [i.detail["n"] for i in queue.next_batch()] == list(range(10))


def test_entry_size_counts_source_detail_type_and_detail_as_eventbridge_does() -> None:
    assert entry_size("OrderUpdated", '{"a": "é"}') == len("flipbot.listener") + 12 + 11
    notified: list[int] = []
    queue = OutboundQueue(10, notify=lambda: notified.append(1))
    queue.put(_tick(1))
    assert notified == [1]
