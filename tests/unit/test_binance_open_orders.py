"""BinanceExchange.open_orders on Binance's documented ``GET /api/v3/openOrders`` answer:
for one symbol or the whole account, with the order's placement time."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from binance.exceptions import BinanceAPIException

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.domain.errors import ConfigurationError
from flipbot.domain.model import OrderStatus, Side


class OpenOrdersClient:
    """python-binance's ``get_open_orders`` answering with a fixed payload."""

    timestamp_offset = 0

    def __init__(self, payload: list[dict[str, Any]]) -> None:
        self.payload = payload
        self.calls: list[dict[str, Any]] = []

    def get_open_orders(self, **params: Any) -> list[dict[str, Any]]:
        self.calls.append(params)
        return self.payload


@pytest.fixture
def documented(reference_data: Path) -> list[dict[str, Any]]:
    path = reference_data / "binance_payloads" / "rest" / "get_openOrders.json"
    payload: list[dict[str, Any]] = json.loads(path.read_text())
    return payload


def test_every_symbol_when_none_is_named(documented: list[dict[str, Any]]) -> None:
    second = documented[0] | {
        "symbol": "ETHBTC",
        "orderId": 2,
        "clientOrderId": "myOrder2",
        "side": "SELL",
        "status": "PARTIALLY_FILLED",
        "executedQty": "0.4",
        "time": 1499827319000,
        "updateTime": 1499827320000,
    }
    client = OpenOrdersClient([documented[0], second])

    orders = BinanceExchange(client).open_orders()  # type: ignore[arg-type]

    assert client.calls == [{}]  # no symbol parameter: the whole account (weight 80)
    first, other = orders
    assert (first.symbol, first.order_id, first.client_order_id) == ("LTCBTC", 1, "myOrder1")
    assert (first.side, first.status) == (Side.BUY, OrderStatus.NEW)
    assert (first.price, first.orig_qty, first.executed_qty) == (
        Decimal("0.1"),
        Decimal("1.0"),
        Decimal("0.0"),
    )
    assert first.placed_ms == first.time_ms == 1499827319559
    # Partly filled: placed when Binance's ``time`` says, updated later.
    assert (other.placed_ms, other.time_ms) == (1499827319000, 1499827320000)
    assert (other.side, other.executed_qty) == (Side.SELL, Decimal("0.4"))


def test_one_symbol_when_named(documented: list[dict[str, Any]]) -> None:
    client = OpenOrdersClient(documented)
    orders = BinanceExchange(client).open_orders("LTCBTC")  # type: ignore[arg-type]
    assert client.calls == [{"symbol": "LTCBTC"}]
    assert [o.client_order_id for o in orders] == ["myOrder1"]


def test_a_refused_key_is_a_configuration_error_with_binances_code() -> None:
    class Refusing(OpenOrdersClient):
        def get_open_orders(self, **params: Any) -> list[dict[str, Any]]:
            response = requests.Response()
            response.status_code = 401
            body = '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}'
            raise BinanceAPIException(response, 401, body)

    with pytest.raises(ConfigurationError) as info:
        BinanceExchange(Refusing([])).open_orders()  # type: ignore[arg-type]
    assert "open_orders: HTTP 401, code -2015: Invalid API-key" in str(info.value)
