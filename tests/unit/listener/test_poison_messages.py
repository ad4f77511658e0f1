"""Poison market data and user-stream reports: each bad message is dropped and counted.

A message with a value no market has (non-numeric, NaN, infinite, zero, negative, huge)
or a field of the wrong type changes no state, publishes nothing, and leaves every later
message and poll working. A trade older than the last one does not move the last price.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from flipbot.events import OrderUpdated, StreamGapDetected
from flipbot.listener.core import MarketPipeline, OrderStream, OutboundQueue

from .conftest import SYMBOL, T0, book, trade

Payload = Callable[[str], Any]
BAD_PRICES = ["abc", "NaN", "nan", "Infinity", "-inf", "0", "0.00000000", "-5.00", "1e308", ""]


def _ticks(queue: OutboundQueue) -> list[dict[str, Any]]:
    return [dict(i.detail) for i in queue.next_batch(1000, 10**9) if i.detail_type == "PriceTicked"]


def _raw_book(**fields: Any) -> str:
    data = {"u": 7, "s": SYMBOL, "b": "99.00", "B": "2", "a": "101.00", "A": "1", **fields}
    return json.dumps({"stream": "btcusdt@bookTicker", "data": data})


BAD_BOOK_VALUES = [
    *((field, bad) for field in "ba" for bad in [*BAD_PRICES, 12.5, None, ["1"]]),
    *(("B", bad) for bad in ["abc", "NaN", "-1", "1e300", 3, None]),
]


@pytest.mark.parametrize(("field", "bad"), BAD_BOOK_VALUES)
def test_given_a_book_ticker_with_a_bad_value_then_it_is_dropped_and_polls_go_on(
    pipeline: MarketPipeline, queue: OutboundQueue, field: str, bad: Any
) -> None:
    # Given a good book top, then one with a bad value
    pipeline.feed(book(1, "99.90", "100.10"), T0)
    _ticks(queue)
    pipeline.feed(_raw_book(u=2, **{field: bad}), T0 + 61_000)
    # Then it is counted as bad, nothing is published from it, and every later poll works
    assert pipeline.invalid == 1
    for second in range(3):
        pipeline.poll(T0 + 120_000 + second * 60_000)
    snapshot = pipeline.snapshot(T0 + 300_000)
    assert snapshot is not None
    assert snapshot.book is not None
    assert (snapshot.book.bid, snapshot.book.ask) == (Decimal("99.90"), Decimal("100.10"))
    assert {(t["bid"], t["ask"]) for t in _ticks(queue)} == {("99.90", "100.10")}
    # And the next good book is taken
    pipeline.feed(book(3, "99.95", "100.05"), T0 + 400_000)
    assert [(t["bid"], t["ask"]) for t in _ticks(queue)] == [("99.95", "100.05")]


def test_given_a_crossed_book_then_it_is_dropped(pipeline: MarketPipeline) -> None:
    pipeline.feed(book(1, "101.00", "99.00"), T0)
    assert pipeline.invalid == 1
    assert pipeline.snapshot(T0) is None


@pytest.mark.parametrize("bad", BAD_PRICES)
def test_given_a_trade_with_a_bad_price_then_nothing_is_published_or_counted_in(
    pipeline: MarketPipeline, queue: OutboundQueue, bad: str
) -> None:
    # Given a trade whose price is not a price
    pipeline.feed(trade(T0, bad, trade_id=1), T0)
    # Then no PriceTicked, no indicator, no snapshot: the message is counted as bad
    assert _ticks(queue) == []
    assert pipeline.invalid == 1
    assert pipeline.snapshot(T0) is None
    # And the next good trade, even with the same id, is taken
    pipeline.feed(trade(T0 + 1, "100.00", trade_id=1), T0 + 1)
    assert [t["price"] for t in _ticks(queue)] == ["100.00"]


@pytest.mark.parametrize(
    "fields",
    [{"q": "NaN"}, {"q": "-1"}, {"q": "0"}, {"q": "1e300"}, {"T": "soon"}, {"E": None}],
    ids=["nan-qty", "negative-qty", "zero-qty", "huge-qty", "text-time", "no-event-time"],
)
def test_given_a_trade_with_a_bad_field_then_it_changes_nothing(
    pipeline: MarketPipeline, queue: OutboundQueue, fields: dict[str, Any]
) -> None:
    message = json.loads(trade(T0, "100.00", trade_id=1))
    message["data"].update(fields)
    pipeline.feed(json.dumps(message), T0)
    assert pipeline.invalid == 1
    assert _ticks(queue) == []
    assert pipeline.snapshot(T0) is None
    # the id was not used up: the same trade delivered right is taken
    pipeline.feed(trade(T0, "100.00", trade_id=1), T0)
    assert pipeline.duplicates == 0
    assert [t["price"] for t in _ticks(queue)] == ["100.00"]


def test_given_an_older_trade_after_a_newer_one_then_the_last_price_stays(
    pipeline: MarketPipeline, queue: OutboundQueue
) -> None:
    # Given a trade at T0 + 2 s, then one that happened at T0 + 1 s (trade and aggTrade
    # streams interleave; ids of the two are separate sequences)
    pipeline.feed(trade(T0 + 2000, "100.00", trade_id=8), T0 + 2000)
    older = {
        "e": "aggTrade",
        "E": T0 + 2100,
        "s": SYMBOL,
        "a": 3,
        "p": "90.00",
        "q": "1",
        "f": 1,
        "l": 1,
        "T": T0 + 1000,
        "m": True,
    }
    pipeline.feed(json.dumps(older), T0 + 2100)
    # Then the last price, and what is published, stays the newer trade's
    assert [t["price"] for t in _ticks(queue)] == ["100.00"]
    pipeline.poll(T0 + 70_000)
    assert [t["price"] for t in _ticks(queue)] == ["100.00"]
    snapshot = pipeline.snapshot(T0 + 70_000)
    assert snapshot is not None
    assert snapshot.last_price == Decimal("100.00")


@pytest.mark.parametrize(
    "depth",
    [
        {"lastUpdateId": 1, "bids": [["99", "abc"]], "asks": []},
        {"lastUpdateId": 1, "bids": [["99", "NaN"]], "asks": [["101", "1"]]},
        {"lastUpdateId": 1, "bids": "none", "asks": []},
        {"lastUpdateId": 1, "bids": [["99"]], "asks": []},
        {"lastUpdateId": 1, "bids": [[None, "1"]], "asks": []},
    ],
    ids=["text-qty", "nan-qty", "not-a-list", "short-level", "null-price"],
)
def test_given_a_bad_depth_snapshot_then_it_is_dropped_and_polls_go_on(
    pipeline: MarketPipeline, depth: dict[str, Any]
) -> None:
    pipeline.feed(trade(T0, "100.00", trade_id=1), T0)
    pipeline.feed(json.dumps({"stream": "btcusdt@depth20", "data": depth}), T0)
    assert pipeline.invalid == 1
    pipeline.poll(T0 + 60_000)
    snapshot = pipeline.snapshot(T0 + 60_000)
    assert snapshot is not None
    assert "depth_imbalance" not in snapshot.extra


@pytest.mark.parametrize("kline", ["x", None, [1, 2], 5])
def test_given_a_kline_that_is_not_an_object_then_it_is_dropped_and_polls_go_on(
    pipeline: MarketPipeline, kline: Any
) -> None:
    pipeline.feed(trade(T0, "100.00", trade_id=1), T0)
    pipeline.feed(json.dumps({"e": "kline", "E": T0, "s": SYMBOL, "k": kline}), T0)
    assert pipeline.invalid == 1
    assert pipeline.poll(T0 + 60_000) is not None


# --- user data stream ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {"X": 5},
        {"s": 12},
        {"i": [1]},
        {"c": {"id": 1}},
        {"p": "NaN"},
        {"z": "Infinity"},
        {"E": "later"},
        {"m": "maybe"},
        {"S": "HOLD"},
    ],
    ids=[
        "status-number",
        "symbol-number",
        "order-id-list",
        "client-id-object",
        "nan-price",
        "infinite-qty",
        "text-time",
        "text-maker",
        "unknown-side",
    ],
)
def test_given_a_mistyped_execution_report_then_a_gap_and_the_next_report_goes_through(
    payload: Payload, orders: OrderStream, queue: OutboundQueue, changes: dict[str, Any]
) -> None:
    good = payload("user_data/executionReport.wsapi.json")
    bad = {**good, "event": {**good["event"], **changes}}
    # When a report with a field of the wrong type or value arrives
    assert orders.on_execution_report(bad, 1_499_405_659_000) == 0
    # Then it is counted, published as a stream gap (reconcile looks at the exchange)
    assert orders.invalid == 1
    (item,) = queue.next_batch()
    assert item.detail_type == "StreamGapDetected"
    assert StreamGapDetected.model_validate(item.detail).stream == "user"
    # And the next report is published as usual
    assert orders.on_execution_report(good, 1_499_405_659_000) == 1
    (item,) = queue.next_batch()
    assert OrderUpdated.model_validate(item.detail).order_id == 4293153


def test_given_reports_then_bad_messages_of_both_streams_are_counted_for_the_metric(
    pipeline: MarketPipeline, orders: OrderStream
) -> None:
    pipeline.feed(trade(T0, "NaN", trade_id=1), T0)
    pipeline.feed("not json", T0)
    orders.on_execution_report({"e": "executionReport"}, T0)
    assert pipeline.take_bad() + orders.take_bad() == 3
    assert pipeline.take_bad() + orders.take_bad() == 0
