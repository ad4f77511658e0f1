"""A symbol that takes no new orders: Binance's ``CANCEL_ONLY`` status (2026-07) and
-2043 NO_REFERENCE_PRICE (2026-04), produced by the paper exchange over HTTP and met by
the real python-binance client and the bot's adapter as one terminal error type."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.app.reconcile import reconcile_cycle
from flipbot.domain.errors import ConfigurationError, OrderRejected, SymbolNotTrading
from flipbot.domain.model import OrderRequest, Side

from .conftest import SYMBOL, Loopback

ASL = Path(__file__).resolve().parents[3] / "statemachine" / "trade_cycle.asl.json"


def order(cid: str = "fb-c000001-B1") -> OrderRequest:
    return OrderRequest(SYMBOL, Side.BUY, Decimal("9.99"), Decimal("1.000"), cid)


def close_the_market(loopback: Loopback) -> None:
    loopback.exchange.set_symbol_status(SYMBOL, "CANCEL_ONLY")


def drop_reference_price(loopback: Loopback) -> None:
    loopback.exchange.without_reference_price.add(SYMBOL)


CASES: dict[str, tuple[Callable[[Loopback], None], int, str]] = {
    "CANCEL_ONLY": (close_the_market, -2010, "Market is closed."),
    "-2043": (drop_reference_price, -2043, "This symbol doesn't have a reference price."),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_new_order_is_refused_and_an_open_one_can_still_be_canceled(
    loopback: Loopback, case: tuple[Callable[[Loopback], None], int, str]
) -> None:
    close, code, msg = case
    client = loopback.client()
    resting = client.order_limit_buy(
        symbol=SYMBOL, quantity="1.000", price="9.90", newClientOrderId="rest-1"
    )
    # Given the symbol stops taking new orders
    close(loopback)

    # When the real client places one, Then Binance's code and message come back
    with pytest.raises(BinanceAPIException) as info:
        client.order_limit_buy(symbol=SYMBOL, quantity="1.000", price="9.99")
    assert (info.value.status_code, info.value.code, info.value.message) == (400, code, msg)
    # And the order already resting can be canceled
    canceled = client.cancel_order(symbol=SYMBOL, orderId=resting["orderId"])
    assert canceled["status"] == "CANCELED"


def test_cancel_only_shows_in_exchange_info(loopback: Loopback) -> None:
    close_the_market(loopback)
    info = loopback.client().get_symbol_info(SYMBOL)
    assert info is not None
    assert info["status"] == "CANCEL_ONLY"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_adapter_raises_symbol_not_trading_which_nothing_retries(
    loopback: Loopback, case: tuple[Callable[[Loopback], None], int, str]
) -> None:
    close, code, _ = case
    adapter = BinanceExchange(loopback.client())
    close(loopback)

    # When the bot's adapter places an order
    with pytest.raises(SymbolNotTrading) as info:
        adapter.place_limit(order())

    # Then it is one terminal type (a configuration error, not a rejection to try again)
    error = info.value
    assert error.code == code
    assert not error.retryable
    assert isinstance(error, ConfigurationError)
    assert not isinstance(error, OrderRejected)
    assert loopback.exchange.open_orders(None) == []


def test_no_retry_of_the_state_machine_names_symbol_not_trading() -> None:
    retried: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for rule in node.get("Retry", []):
                retried.update(rule["ErrorEquals"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(ASL.read_text()))
    assert retried
    assert "SymbolNotTrading" not in retried
    assert not retried & {"States.ALL", "ConfigurationError", "OrderRejected"}


def test_reconcile_fails_the_cycle_at_once_with_the_reason() -> None:
    cause = json.dumps({"errorMessage": "place_order TRUMPUSDC: HTTP 400, code -2043: ..."})
    result = reconcile_cycle(
        services=None,  # type: ignore[arg-type]  # a configuration error needs no services
        cycle_id="c000001",
        error={"Error": "SymbolNotTrading", "Cause": cause},
    )
    assert result["resume"] == "FAIL"
    assert result["reason"].startswith("SymbolNotTrading: place_order TRUMPUSDC")
