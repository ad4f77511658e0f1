"""One listener for every symbol of the stack: each symbol's market on a combined-stream
connection (more connections past ``MARKET_STREAMS_PER_CONNECTION``), its own
indicators, ``PriceTicked`` throttle and snapshot; the user stream's reports published
for the stack's symbols, and for another symbol only when they are a cycle order naming
that symbol (a symbol removed while its cycle is open)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import boto3

from flipbot.listener.binance_ws import wall_ms
from flipbot_dev.paper import PaperExchange

from .conftest import REGION, TABLE, Aws, run, start_rig

SYMBOLS = "TRUMPUSDC,BTCUSDC,ETHUSDC"


def _trade(symbol: str, trade_id: int, price: str) -> dict[str, Any]:
    now = wall_ms()
    return {
        "e": "trade",
        "E": now,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": "0.5",
        "T": now,
        "m": True,
        "M": True,
    }


def _exchange_with_orders(orders: list[tuple[str, str]]) -> PaperExchange:
    """A paper exchange on which each ``(symbol, client order id)`` placed a resting buy:
    its executionReports wait in the exchange's outbox."""
    symbols = sorted({symbol for symbol, _ in orders})
    exchange = PaperExchange(symbols, clock=wall_ms, balances={"USDC": Decimal(1000)})
    for symbol in symbols:
        exchange.on_book(wall_ms(), "10.00", "50", "10.01", "50", symbol=symbol)
    for symbol, coid in orders:
        exchange.place_order(
            symbol,
            "BUY",
            "LIMIT",
            quantity="1",
            price="9.00",
            time_in_force="GTC",
            new_client_order_id=coid,
        )
    return exchange


def test_each_symbol_has_its_streams_ticks_and_snapshot_over_two_connections(aws: Aws) -> None:
    async def scenario() -> tuple[Any, int]:
        # Given three symbols, and at most 8 streams a connection: 2 connections
        rig = await start_rig(SYMBOLS=SYMBOLS, MARKET_STREAMS_PER_CONNECTION="8")
        connections = len(rig.listener.market_streams)
        # When each symbol trades (ETHUSDC's stream is on the second connection)
        for trade_id, (symbol, price) in enumerate(
            [("TRUMPUSDC", "10.00"), ("BTCUSDC", "97000.00"), ("ETHUSDC", "3500.00")], 1
        ):
            sent = await rig.server.publish(
                f"{symbol.lower()}@trade", _trade(symbol, trade_id, price)
            )
            assert sent == 1, symbol
        await rig.wait_for(lambda: len({t["symbol"] for t in ticked(rig)}) == 3)
        await rig.wait_for(lambda: rig.listener.snapshots_written >= 3)
        await asyncio.sleep(0.3)
        await rig.stop()
        return rig, connections

    rig, connections = run(scenario())
    assert connections == 2
    # Then each symbol's PriceTicked carries its own price
    last = {t["symbol"]: Decimal(t["price"]) for t in ticked(rig)}
    assert last == {
        "TRUMPUSDC": Decimal("10.00"),
        "BTCUSDC": Decimal("97000.00"),
        "ETHUSDC": Decimal("3500.00"),
    }
    # and each symbol's snapshot is its own item of the market table
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    for symbol, price in last.items():
        item = table.get_item(Key={"symbol": symbol}).get("Item")
        assert item is not None, symbol
        assert Decimal(json.loads(item["body"])["last_price"]) == price


def ticked(rig: Any) -> list[dict[str, Any]]:
    return list(rig.publisher.of_type("PriceTicked"))


def test_the_user_stream_publishes_the_stack_s_symbols_and_any_stack_cycle_order(
    aws: Aws,
) -> None:
    async def scenario() -> Any:
        rig = await start_rig(SYMBOLS=SYMBOLS)
        exchange = _exchange_with_orders(
            [
                ("BTCUSDC", "fb-BTCUSDC_c000001-B1"),  # a listed symbol's cycle
                ("ETHUSDC", "web_manual1"),  # a listed symbol, by hand
                ("SOLUSDC", "fb-SOLUSDC_c000004-B1"),  # a removed symbol's cycle
                ("SOLUSDC", "web_manual2"),  # by hand on a symbol not traded
                ("XRPUSDC", "fb-c000002-B2"),  # a TRUMPUSDC cycle's id on XRPUSDC
                ("XRPUSDC", "fb-ETHUSDC_c000002-B2"),  # an ETHUSDC cycle's on XRPUSDC
            ]
        )
        await rig.server.push_exchange_events(exchange)
        await rig.wait_for(lambda: len(rig.publisher.of_type("OrderUpdated")) >= 3)
        await asyncio.sleep(0.2)
        await rig.stop()
        return rig

    rig = run(scenario())
    published = [(d["symbol"], d["client_order_id"]) for d in rig.publisher.of_type("OrderUpdated")]
    assert published == [
        ("BTCUSDC", "fb-BTCUSDC_c000001-B1"),
        ("ETHUSDC", "web_manual1"),
        ("SOLUSDC", "fb-SOLUSDC_c000004-B1"),
    ]
    assert rig.listener.orders.ignored == 3
