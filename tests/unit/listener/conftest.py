"""Fixtures for the listener's pure core: Binance's documented payloads and builders."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flipbot.listener.core import MarketPipeline, OrderStream, OutboundQueue

PAYLOADS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "binance_payloads"
SYMBOL = "BTCUSDT"
T0 = 1_723_161_240_000  # a minute boundary


@pytest.fixture(scope="session")
def payload() -> Callable[[str], Any]:
    """``payload("market_streams/trade.json")``: a documented example; skipped when absent."""
    if not PAYLOADS.is_dir():
        pytest.skip(f"Binance payload examples not found at {PAYLOADS}")

    def load(name: str) -> Any:
        return json.loads((PAYLOADS / name).read_text())

    return load


def trade(
    t: int, price: str, qty: str = "1", *, trade_id: int, maker: bool = True, combined: bool = True
) -> str:
    data = {
        "e": "trade",
        "E": t + 2,
        "s": SYMBOL,
        "t": trade_id,
        "p": price,
        "q": qty,
        "T": t,
        "m": maker,
        "M": True,
    }
    message = {"stream": "btcusdt@trade", "data": data} if combined else data
    return json.dumps(message)


def book(update_id: int, bid: str, ask: str, bid_qty: str = "2", ask_qty: str = "1") -> str:
    data = {"u": update_id, "s": SYMBOL, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}
    return json.dumps({"stream": "btcusdt@bookTicker", "data": data})


@pytest.fixture
def queue() -> OutboundQueue:
    return OutboundQueue(100)


@pytest.fixture
def pipeline(queue: OutboundQueue) -> MarketPipeline:
    return MarketPipeline(SYMBOL, queue, tick_bps=20, tick_seconds=60, snapshot_seconds=10)


@pytest.fixture
def orders(queue: OutboundQueue) -> OrderStream:
    return OrderStream(queue)


@pytest.fixture(autouse=True)
def _listener_logs_reach_the_root_logger(flipbot_logs_reach_caplog: None) -> None:
    """The listener logs through the root logger, where ``caplog`` reads it."""
