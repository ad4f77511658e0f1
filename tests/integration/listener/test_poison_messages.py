"""Poison on the wire: the running listener drops bad messages, counts them, and goes on.

Loopback Binance streams send a book top with a non-numeric price, trades priced NaN,
zero and negative, a depth snapshot and a kline of the wrong shape, and an execution
report with mistyped fields. The listener neither exits nor reconnects; it publishes no
price from them, a gap for the report, and every good message after them as usual.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from flipbot.listener.binance_ws import wall_ms

from .conftest import SYMBOL, Aws, Rig, expected_detail, start_rig

STREAM = SYMBOL.lower()


def _trade(trade_id: int, price: str) -> dict[str, Any]:
    now = wall_ms()
    return {
        "e": "trade",
        "E": now,
        "s": SYMBOL,
        "t": trade_id,
        "p": price,
        "q": "1",
        "T": now,
        "m": True,
        "M": True,
    }


def test_given_poison_market_and_user_messages_then_the_listener_goes_on(aws: Aws) -> None:
    async def scenario() -> tuple[Rig, int, list[dict[str, Any]]]:
        rig = await start_rig()
        await rig.trade("10.00", "1")
        server = rig.server
        # Given a book top whose bid is not a number: every later poll used to fail on it
        await server.publish(
            f"{STREAM}@bookTicker",
            {"u": 10**9, "s": SYMBOL, "b": "ten", "B": "5", "a": "10.01", "A": "5"},
        )
        for n, price in enumerate(["NaN", "0.00", "-3.50"], start=10**6):
            await server.publish(f"{STREAM}@trade", _trade(n, price))
        await server.publish(
            f"{STREAM}@depth10", {"lastUpdateId": 1, "bids": [["9.99", "many"]], "asks": []}
        )
        await server.publish(f"{STREAM}@kline_1m", {"e": "kline", "s": SYMBOL, "k": "closed"})
        report = {**_report(rig), "X": 5, "i": [1]}
        await server.push_user_event(report)
        # When time passes (the clock polls every 0.1 s, snapshots every 0.2 s)
        await asyncio.sleep(1.0)
        # Then the listener is still there, and good messages go through as before
        await rig.place("BUY", "9.99", "1")
        await rig.trade("9.98", "1")
        await rig.settle()
        gaps = rig.publisher.of_type("StreamGapDetected")
        return rig, await rig.stop(), gaps

    rig, status, gaps = run_scenario(scenario())
    listener = rig.listener
    assert status == 0
    assert listener.reconnects == 0
    assert listener.market.invalid == 6
    assert listener.orders.invalid == 1
    prices = [Decimal(t["price"]) for t in rig.publisher.of_type("PriceTicked")]
    assert prices
    assert all(p.is_finite() and p > 0 for p in prices)
    assert all(
        Decimal(t["bid"]).is_finite() for t in rig.publisher.of_type("PriceTicked") if t["bid"]
    )
    assert [g["reason"].split(":")[0] for g in gaps] == ["startup", "invalid executionReport"]
    good = [r for r in rig.reports() if r["X"] != 5]
    assert rig.publisher.of_type("OrderUpdated") == [expected_detail(r) for r in good]


def _report(rig: Rig) -> dict[str, Any]:
    """A NEW report of an order nobody placed (its fields are then mistyped)."""
    now = wall_ms()
    return {
        "e": "executionReport",
        "E": now,
        "s": SYMBOL,
        "c": "by-hand-1",
        "S": "BUY",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1.00000000",
        "p": "9.00000000",
        "C": "",
        "x": "NEW",
        "X": "NEW",
        "r": "NONE",
        "i": 99,
        "l": "0.00000000",
        "z": "0.00000000",
        "L": "0.00000000",
        "n": "0",
        "N": None,
        "T": now,
        "t": -1,
        "m": False,
        "Z": "0.00000000",
        "Y": "0.00000000",
    }


def run_scenario(scenario: Any, limit: float = 10.0) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, limit))
