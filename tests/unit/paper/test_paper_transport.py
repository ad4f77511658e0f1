"""InProcessAdapter and make_client: requests served in process, faults injected."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from binance.exceptions import BinanceAPIException

from flipbot_dev.paper import (
    BinanceRestApp,
    Fault,
    InProcessAdapter,
    PaperExchange,
    fault_once,
    make_client,
)

BASE = "https://api.binance.com/api/v3"
SYMBOL = "TRUMPUSDC"


def session_for(app: BinanceRestApp, fault: Fault | None = None) -> requests.Session:
    session = requests.Session()
    session.mount("https://", InProcessAdapter(app, (lambda *_: fault) if fault else None))
    return session


def test_adapter_builds_real_responses(app: BinanceRestApp) -> None:
    response = session_for(app).get(f"{BASE}/ticker/price", params={"symbol": SYMBOL})
    assert response.status_code == 200
    assert response.reason == "OK"
    assert response.json() == {"symbol": SYMBOL, "price": "10.00500000"}
    assert response.headers["x-mbx-used-weight-1m"] == "2"


def test_dropped_response_is_processed_then_times_out(
    app: BinanceRestApp, exchange: PaperExchange
) -> None:
    client = make_client(
        app,
        "PaperKey01",
        "paper-secret-01",
        faults=fault_once(Fault.drop_response(), method="POST"),
    )
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.order_limit(
            symbol=SYMBOL, side="BUY", quantity="1", price="9.99", newClientOrderId="d1"
        )
    assert [o["clientOrderId"] for o in exchange.open_orders()] == ["d1"]


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [
        (Fault.http_5xx(), 503, None),
        (Fault.rate_limited(7), 429, "7"),
        (Fault.banned(99), 418, "99"),
    ],
)
def test_refusals_are_not_processed(
    app: BinanceRestApp, exchange: PaperExchange, fault: Fault, status: int, retry_after: str | None
) -> None:
    client = make_client(app, "PaperKey01", "paper-secret-01", faults=lambda *_: fault)
    with pytest.raises(BinanceAPIException) as info:
        client.order_limit(symbol=SYMBOL, side="BUY", quantity="1", price="9.99")
    response = info.value.response
    assert response.status_code == status
    assert response.headers.get("Retry-After") == retry_after
    assert exchange.open_orders() == []
    if status != 503:
        assert json.loads(response.text)["code"] == -1003


def test_banned_message_names_the_end_of_the_ban(app: BinanceRestApp) -> None:
    response = session_for(app, Fault.banned(60)).get(f"{BASE}/ping")
    assert response.json()["msg"] == (
        "Way too much request weight used; IP banned until 1700000060000. "
        "Please use WebSocket Streams for live updates to avoid bans."
    )


def test_connection_error_is_raised_before_processing(app: BinanceRestApp) -> None:
    with pytest.raises(requests.exceptions.ConnectionError):
        session_for(app, Fault.connection_error()).get(f"{BASE}/ping")


def test_timestamp_skew_fails_signed_requests_only(app: BinanceRestApp) -> None:
    client = make_client(
        app, "PaperKey01", "paper-secret-01", faults=lambda *_: Fault.timestamp_skew(120_000)
    )
    assert client.get_server_time() == {"serverTime": 1_700_000_000_000}
    with pytest.raises(BinanceAPIException) as info:
        client.get_account()
    assert info.value.code == -1021


def test_canned_binance_error_after_processing(
    app: BinanceRestApp, exchange: PaperExchange
) -> None:
    fault = Fault.binance_error(
        -1007, "Timeout waiting for response from backend server.", processed=True
    )
    client = make_client(app, "PaperKey01", "paper-secret-01", faults=fault_once(fault))
    with pytest.raises(BinanceAPIException) as info:
        client.order_limit(symbol=SYMBOL, side="BUY", quantity="1", price="9.99")
    assert info.value.code == -1007
    assert len(exchange.open_orders()) == 1


def test_fault_once_fires_on_the_first_match_only() -> None:
    hook = fault_once(Fault.http_5xx(), method="GET", path="/api/v3/order")
    assert hook("POST", "/api/v3/order", {}) is None
    assert hook("GET", "/api/v3/order", {}) == Fault.http_5xx()
    assert hook("GET", "/api/v3/order", {}) is None


def test_make_client_keeps_python_binance_urls_and_follows_the_app_clock(
    app: BinanceRestApp, clock: Any
) -> None:
    client = make_client(app, "PaperKey01", "paper-secret-01")
    assert client.API_URL == "https://api.binance.com/api"
    clock.advance(3_600_000)  # an hour of virtual time: still inside recvWindow
    assert client.get_account()["accountType"] == "SPOT"
    assert client.response.request.url.startswith(f"{BASE}/account?")
