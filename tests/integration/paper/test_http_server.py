"""The real python-binance ``Client`` against the paper exchange over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.domain.errors import (
    ClockSkew,
    FilterViolation,
    IpBanned,
    RateLimited,
    UnknownOrderOutcome,
)
from flipbot.domain.model import OrderRequest, OrderStatus, Side
from flipbot_dev.paper import default_symbol_info
from flipbot_dev.paper.faults import Fault
from flipbot_dev.paper.server import PaperHttpServer, http_client

from .conftest import KEY, SECRET, SYMBOL, T0, Loopback

D = Decimal


def refused(call: Callable[[], Any]) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        call()
    return info.value


def buy(client: Client, qty: str = "1.000", price: str = "9.99", cid: str = "h1") -> Any:
    return client.order_limit_buy(symbol=SYMBOL, quantity=qty, price=price, newClientOrderId=cid)


# --- the order lifecycle -----------------------------------------------------------------
def test_place_query_list_cancel_and_trades(loopback: Loopback) -> None:
    client = loopback.client()
    assert client.get_server_time() == {"serverTime": T0}

    placed = buy(client, cid="life-1")
    assert (placed["status"], placed["clientOrderId"], placed["fills"]) == ("NEW", "life-1", [])
    assert client.get_order(symbol=SYMBOL, origClientOrderId="life-1")["status"] == "NEW"
    assert [o["clientOrderId"] for o in client.get_open_orders(symbol=SYMBOL)] == ["life-1"]

    loopback.clock.now += 1_000
    loopback.exchange.on_trade(loopback.clock.now, "9.98", "0.4", True)  # partial fill
    assert client.get_order(symbol=SYMBOL, orderId=placed["orderId"])["executedQty"] == (
        "0.40000000"
    )
    trades = client.get_my_trades(symbol=SYMBOL)
    assert [(t["qty"], t["isMaker"]) for t in trades] == [("0.40000000", True)]

    canceled = client.cancel_order(symbol=SYMBOL, origClientOrderId="life-1")
    assert (canceled["status"], canceled["origClientOrderId"]) == ("CANCELED", "life-1")
    assert client.get_open_orders(symbol=SYMBOL) == []
    assert [o["status"] for o in client.get_all_orders(symbol=SYMBOL)] == ["CANCELED"]
    balances = {b["asset"]: b for b in client.get_account()["balances"]}
    assert balances["USDC"]["locked"] == "0.00000000"
    assert balances["TRUMP"]["free"] == "10.39960000"  # 0.4 bought, 0.1 % fee in TRUMP
    assert loopback.server.requests == 10


def test_market_data_endpoints(loopback: Loopback) -> None:
    client = loopback.client()
    assert client.ping() == {}
    assert client.get_orderbook_ticker(symbol=SYMBOL)["askPrice"] == "10.01000000"
    assert client.get_symbol_ticker(symbol=SYMBOL) == {"symbol": SYMBOL, "price": "10.00000000"}
    assert client.get_avg_price(symbol=SYMBOL)["price"] == "10.00000000"
    assert client.get_order_book(symbol=SYMBOL)["bids"] == [["10.00000000", "5.00000000"]]
    info = client.get_symbol_info(SYMBOL)
    assert info is not None
    assert info["filters"] == default_symbol_info(SYMBOL)["filters"]
    kline = client.get_klines(symbol=SYMBOL, interval="1m")[-1]
    assert (kline[0], kline[4], kline[8]) == (T0 // 60_000 * 60_000, "10.00000000", 1)
    assert client.get_ticker(symbol=SYMBOL)["count"] == 1
    assert refused(lambda: client.get_klines(symbol=SYMBOL, interval="7m")).code == -1120


def test_the_bot_adapter_over_http(loopback: Loopback) -> None:
    adapter = BinanceExchange(loopback.client())
    request = OrderRequest(SYMBOL, Side.BUY, D("9.99"), D("1"), "fb-c000001-B1")
    placed = adapter.place_limit(request)
    assert placed.status is OrderStatus.NEW
    assert adapter.get_order(SYMBOL, "fb-c000001-B1") == placed
    assert adapter.symbol_rules(SYMBOL).tick_size == D("0.01")
    assert adapter.cancel_order(SYMBOL, "fb-c000001-B1").status is OrderStatus.CANCELED
    assert adapter.balances()["USDC"].free == D("1000")


# --- rejections ----------------------------------------------------------------------------
FILTER_CASES = [
    ("SELL", "1.000", "10.005", "PRICE_FILTER"),  # off the tick
    ("BUY", "1.000", "0.001", "PRICE_FILTER"),  # below minPrice
    ("SELL", "0.001", "10001.00", "PRICE_FILTER"),  # above maxPrice
    ("BUY", "1.0005", "9.99", "LOT_SIZE"),  # off the step
    ("BUY", "0.0001", "9.99", "LOT_SIZE"),  # below minQty
    ("SELL", "92141579", "10.00", "LOT_SIZE"),  # above maxQty
    ("BUY", "0.100", "9.99", "NOTIONAL"),  # below minNotional
    ("SELL", "920000", "10.00", "NOTIONAL"),  # above maxNotional
    ("BUY", "1.000", "60.00", "PERCENT_PRICE_BY_SIDE"),  # above avgPrice x 5
    ("SELL", "5.000", "1.00", "PERCENT_PRICE_BY_SIDE"),  # below avgPrice x 0.2
]


@pytest.mark.parametrize(("side", "qty", "price", "failed"), FILTER_CASES)
def test_every_filter_rejection(
    loopback: Loopback, side: str, qty: str, price: str, failed: str
) -> None:
    client = loopback.client()
    error = refused(
        lambda: client.create_order(
            symbol=SYMBOL, side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price
        )
    )
    assert (error.status_code, error.code) == (400, -1013)
    assert error.message == f"Filter failure: {failed}"
    assert loopback.exchange.open_orders() == []


def test_max_num_orders_rejection_reaches_the_adapter_as_a_filter_violation(
    make_loopback: Callable[..., Loopback],
) -> None:
    loopback = make_loopback(symbol_info=default_symbol_info(SYMBOL, max_num_orders=2))
    client = loopback.client()
    buy(client, cid="many-1")
    buy(client, price="9.98", cid="many-2")
    adapter = BinanceExchange(client)
    with pytest.raises(FilterViolation) as info:
        adapter.place_limit(OrderRequest(SYMBOL, Side.BUY, D("9.50"), D("0.6"), "one-too-many"))
    assert info.value.filter_type == "MAX_NUM_ORDERS"


def test_bad_signature_and_unknown_key(loopback: Loopback) -> None:
    wrong_secret = loopback.client(secret="not-the-secret")
    error = refused(wrong_secret.get_account)
    assert (error.status_code, error.code, error.message) == (
        400,
        -1022,
        "Signature for this request is not valid.",
    )
    wrong_key = loopback.client(key="SomeoneElse")
    error = refused(wrong_key.get_account)
    assert (error.status_code, error.code) == (401, -2015)


@pytest.mark.parametrize(
    ("client_offset_ms", "msg"),
    [
        (-10_001, "Timestamp for this request is outside of the recvWindow."),  # 10 s window
        (1_000, "Timestamp for this request was 1000ms ahead of the server's time."),
    ],
)
def test_stale_or_early_timestamp(loopback: Loopback, client_offset_ms: int, msg: str) -> None:
    client = loopback.client()
    client.timestamp_offset.skew_ms = client_offset_ms
    error = refused(lambda: buy(client))
    assert (error.status_code, error.code, error.message) == (400, -1021, msg)
    assert loopback.exchange.open_orders() == []


def test_a_drifting_client_clock_is_resynced_by_the_adapter(loopback: Loopback) -> None:
    loopback.clock.now = time.time_ns() // 1_000_000  # the server on wall-clock time
    client = http_client(loopback.server.base_url, KEY, SECRET)
    client.timestamp_offset = -15_000  # 15 s late: beyond python-binance's 10 s window
    adapter = BinanceExchange(client)
    request = OrderRequest(SYMBOL, Side.BUY, D("9.99"), D("1"), "drift-1")
    with pytest.raises(ClockSkew):
        adapter.place_limit(request)
    assert abs(client.timestamp_offset) < 1_000  # resynced from /api/v3/time
    assert adapter.place_limit(request).status is OrderStatus.NEW


def test_duplicate_client_order_id(loopback: Loopback) -> None:
    client = loopback.client()
    buy(client, cid="dup-1")
    error = refused(lambda: buy(client, price="9.98", cid="dup-1"))
    assert (error.status_code, error.code, error.message) == (400, -2010, "Duplicate order sent.")
    assert len(loopback.exchange.open_orders()) == 1


# --- limits ---------------------------------------------------------------------------------
def test_rate_limit_then_recovery_honouring_retry_after(
    make_loopback: Callable[..., Loopback],
) -> None:
    loopback = make_loopback(weight_limit=30)
    client = loopback.client()
    client.get_exchange_info()  # 20
    for _ in range(10):
        client.ping()  # 30: the limit
    error = refused(client.ping)
    retry_after = int(error.response.headers["Retry-After"])
    assert (error.status_code, error.code) == (429, -1003)
    assert retry_after == 40  # T0 is 20 s into its minute
    assert error.response.headers["X-MBX-USED-WEIGHT-1M"] == "31"

    loopback.clock.sleep(retry_after - 1)
    assert refused(client.ping).status_code == 429  # too early: still limited
    loopback.clock.sleep(1)
    assert client.ping() == {}
    assert client.response.headers["X-MBX-USED-WEIGHT-1M"] == "1"


def test_the_adapter_sees_rate_limits_and_bans_with_their_retry_after(
    make_loopback: Callable[..., Loopback],
) -> None:
    loopback = make_loopback(weight_limit=4, ban_after=3, ban_ms=90_000)
    adapter = BinanceExchange(loopback.client())
    adapter.book_top(SYMBOL)
    adapter.book_top(SYMBOL)  # 4
    with pytest.raises(RateLimited) as limited:
        adapter.book_top(SYMBOL)
    assert limited.value.retry_after == 40
    with pytest.raises(RateLimited):
        adapter.book_top(SYMBOL)  # ignoring Retry-After...
    with pytest.raises(IpBanned) as banned:
        adapter.book_top(SYMBOL)  # ...gets the IP banned
    assert banned.value.retry_after == 90
    assert "IP banned until 1700000090000" in str(banned.value)

    loopback.clock.sleep(89)
    with pytest.raises(IpBanned) as still:
        adapter.book_top(SYMBOL)
    assert still.value.retry_after == 1
    loopback.clock.sleep(1)
    assert adapter.book_top(SYMBOL).ask == D("10.01")


def test_too_many_new_orders(make_loopback: Callable[..., Loopback]) -> None:
    loopback = make_loopback(order_limit_10s=2)
    client = loopback.client()
    buy(client, cid="o1")
    buy(client, price="9.98", cid="o2")
    error = refused(lambda: buy(client, price="9.97", cid="o3"))
    assert (error.status_code, error.code, error.message) == (
        429,
        -1015,
        "Too many new orders; current limit is 2 orders per 10 SECOND.",
    )
    assert error.response.headers["X-MBX-ORDER-COUNT-10S"] == "3"
    loopback.clock.sleep(10)
    assert buy(client, price="9.97", cid="o3")["status"] == "NEW"


# --- faults over HTTP ----------------------------------------------------------------------
def test_a_dropped_response_closes_the_connection_after_the_order_is_placed(
    loopback: Loopback,
) -> None:
    client = loopback.client()
    client.ping()  # a kept-alive connection: the drop must not make requests resend
    loopback.faults.once(Fault.drop_response(), "POST", "/api/v3/order")
    with pytest.raises(requests.exceptions.ConnectionError):
        buy(client, cid="lost-1")
    assert [o["clientOrderId"] for o in loopback.exchange.open_orders()] == ["lost-1"]

    loopback.faults.once(Fault.drop_response(), "POST", "/api/v3/order")
    adapter = BinanceExchange(client)
    with pytest.raises(UnknownOrderOutcome):
        adapter.place_limit(OrderRequest(SYMBOL, Side.BUY, D("9.98"), D("1"), "lost-2"))
    found = adapter.get_order(SYMBOL, "lost-2")
    assert found is not None
    assert found.status is OrderStatus.NEW
    assert len(loopback.exchange.open_orders()) == 2


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.http_5xx(), 503), (Fault.rate_limited(3), 429), (Fault.banned(60), 418)],
)
def test_refusing_faults_answer_over_http_without_processing(
    loopback: Loopback, fault: Fault, status: int
) -> None:
    client = loopback.client()
    loopback.faults.once(fault, "POST")
    error = refused(lambda: buy(client))
    assert error.status_code == status
    assert loopback.exchange.open_orders() == []
    if status != 503:
        assert json.loads(error.response.text)["code"] == -1003
        assert error.response.headers["Retry-After"] == str(fault.retry_after)


def test_connection_error_and_slow_answers(loopback: Loopback) -> None:
    client = loopback.client(timeout_s=0.5)
    loopback.faults.once(Fault.connection_error())
    with pytest.raises(requests.exceptions.ConnectionError):
        client.ping()
    loopback.faults.once(Fault.slow(0.05))
    assert client.ping() == {}
    loopback.faults.once(Fault.slow(0.8), "POST")
    with pytest.raises(requests.exceptions.ReadTimeout):
        buy(client, cid="late-1")
    assert [o["clientOrderId"] for o in loopback.exchange.open_orders()] == ["late-1"]


def test_the_server_binds_loopback_only_and_stops(loopback: Loopback) -> None:
    server = PaperHttpServer(loopback.app)
    assert server.base_url.startswith("http://127.0.0.1:")
    with server:
        response = requests.get(f"{server.base_url}/api/v3/ping", timeout=5)
        assert (response.status_code, response.json()) == (200, {})
        assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
        assert requests.get(f"{server.base_url}/api/v3/nothing", timeout=5).status_code == 404
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{server.base_url}/api/v3/ping", timeout=1)
