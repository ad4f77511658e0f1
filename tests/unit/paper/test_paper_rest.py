"""BinanceRestApp: routing, request security, Binance's error answers and limits."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from flipbot_dev.paper import BinanceRestApp, PaperExchange

KEY, SECRET = "PaperKey01", "paper-secret-01"
T0 = 1_700_000_000_000
SYMBOL = "TRUMPUSDC"


def sign(
    params: dict[str, str], *, ts: int = T0, secret: str = SECRET, recv_window: str | None = None
) -> dict[str, str]:
    signed = {**params, "timestamp": str(ts)}
    if recv_window is not None:
        signed["recvWindow"] = recv_window
    payload = "&".join(f"{k}={v}" for k, v in signed.items())
    signed["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return signed


def call(
    app: BinanceRestApp,
    method: str,
    endpoint: str,
    params: dict[str, str] | None = None,
    *,
    key: str | None = KEY,
) -> tuple[int, dict[str, str], Any]:
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    status, response_headers, body = app.handle(
        method, f"/api/v3/{endpoint}", params or {}, headers
    )
    return status, response_headers, json.loads(body)


def order_params(cid: str = "r1", **extra: str) -> dict[str, str]:
    return {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.000",
        "price": "9.99",
        "newClientOrderId": cid,
        **extra,
    }


def test_public_endpoints_and_weight_header(app: BinanceRestApp) -> None:
    status, headers, body = call(app, "GET", "ping")
    assert (status, body, headers["X-MBX-USED-WEIGHT-1M"]) == (200, {}, "1")
    status, headers, body = call(app, "GET", "time")
    assert (body, headers["X-MBX-USED-WEIGHT-1M"]) == ({"serverTime": T0}, "2")
    _, headers, body = call(app, "GET", "exchangeInfo", {"symbol": SYMBOL})
    assert [s["symbol"] for s in body["symbols"]] == [SYMBOL]
    assert headers["X-MBX-USED-WEIGHT-1M"] == "22"
    _, _, body = call(app, "GET", "exchangeInfo", {"symbols": '["TRUMPUSDC"]'})
    assert len(body["symbols"]) == 1
    status, _, body = call(app, "GET", "exchangeInfo", {"symbol": "NOPEUSDC"})
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    _, _, body = call(app, "GET", "ticker/bookTicker")
    assert body == [
        {
            "symbol": SYMBOL,
            "bidPrice": "10.00000000",
            "bidQty": "5.00000000",
            "askPrice": "10.01000000",
            "askQty": "5.00000000",
        }
    ]


@pytest.mark.parametrize(
    ("key", "status", "code", "msg"),
    [
        (None, 401, -2014, "API-key format invalid."),
        ("not a key", 401, -2014, "API-key format invalid."),
        ("OtherKey99", 401, -2015, "Invalid API-key, IP, or permissions for action."),
    ],
)
def test_signed_endpoints_check_the_api_key(
    app: BinanceRestApp, key: str | None, status: int, code: int, msg: str
) -> None:
    answer = call(app, "GET", "account", sign({}), key=key)
    assert (answer[0], answer[2]) == (status, {"code": code, "msg": msg})


def test_a_wrong_signature_is_refused(app: BinanceRestApp) -> None:
    status, _, body = call(app, "GET", "account", sign({}, secret="not-the-secret"))
    assert (status, body) == (
        400,
        {"code": -1022, "msg": "Signature for this request is not valid."},
    )
    tampered = sign({"symbol": SYMBOL}) | {"symbol": "BTCUSDT"}
    assert call(app, "GET", "openOrders", tampered)[2]["code"] == -1022


@pytest.mark.parametrize(
    ("params", "msg"),
    [
        ({}, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."),
        (
            {"timestamp": str(T0)},
            "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        ),
    ],
)
def test_missing_security_parameters(app: BinanceRestApp, params: dict[str, str], msg: str) -> None:
    status, _, body = call(app, "GET", "account", params)
    assert (status, body) == (400, {"code": -1102, "msg": msg})


@pytest.mark.parametrize(
    ("ts", "recv_window", "msg"),
    [
        (T0 - 5001, None, "Timestamp for this request is outside of the recvWindow."),
        (T0 - 9000, "10000", None),
        (T0 - 10001, "10000", "Timestamp for this request is outside of the recvWindow."),
        (T0 + 1000, None, "Timestamp for this request was 1000ms ahead of the server's time."),
        (T0 + 999, None, None),
    ],
)
def test_timestamp_against_recv_window(
    app: BinanceRestApp, ts: int, recv_window: str | None, msg: str | None
) -> None:
    status, _, body = call(app, "GET", "account", sign({}, ts=ts, recv_window=recv_window))
    if msg is None:
        assert status == 200
    else:
        assert (status, body) == (400, {"code": -1021, "msg": msg})


def test_recv_window_above_60000_is_refused(app: BinanceRestApp) -> None:
    _, _, body = call(app, "GET", "account", sign({}, recv_window="60001"))
    assert body == {
        "code": -1102,
        "msg": "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
    }


@pytest.mark.parametrize(
    ("extra", "keys"),
    [
        ({"newOrderRespType": "ACK"}, 5),
        ({"newOrderRespType": "RESULT"}, 16),
        ({"newOrderRespType": "FULL"}, 17),
        ({}, 17),  # LIMIT defaults to FULL
        ({"type": "LIMIT_MAKER", "timeInForce": ""}, 5),  # other types default to ACK
    ],
)
def test_new_order_response_types(app: BinanceRestApp, extra: dict[str, str], keys: int) -> None:
    status, headers, body = call(app, "POST", "order", sign(order_params(**extra)))
    assert status == 200
    assert len(body) == keys
    assert headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert headers["X-MBX-ORDER-COUNT-1D"] == "1"


def test_order_errors_carry_binances_codes(app: BinanceRestApp) -> None:
    status, _, body = call(app, "POST", "order", sign(order_params(side="")))
    assert (status, body["code"], body["msg"]) == (
        400,
        -1102,
        "Mandatory parameter 'side' was not sent, was empty/null, or malformed.",
    )
    _, _, body = call(app, "POST", "order", sign(order_params(quantity="0.001")))
    assert body == {"code": -1013, "msg": "Filter failure: NOTIONAL"}
    _, _, body = call(app, "GET", "order", sign({"symbol": SYMBOL}))
    assert body == {
        "code": -1102,
        "msg": "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    }
    _, _, body = call(app, "GET", "order", sign({"symbol": SYMBOL, "origClientOrderId": "no"}))
    assert body == {"code": -2013, "msg": "Order does not exist."}
    _, _, body = call(app, "DELETE", "order", sign({"symbol": SYMBOL, "orderId": "42"}))
    assert body == {"code": -2011, "msg": "Unknown order sent."}
    _, _, body = call(app, "GET", "order", sign({"symbol": SYMBOL, "orderId": "x"}))
    assert body["code"] == -1100
    _, _, body = call(app, "GET", "allOrders", sign({"symbol": SYMBOL, "limit": "1001"}))
    assert body == {
        "code": -1102,
        "msg": "'limit' contains unexpected value. Cannot be greater than 1000.",
    }


def test_order_lifecycle_over_rest(app: BinanceRestApp, exchange: PaperExchange) -> None:
    call(app, "POST", "order", sign(order_params("life")))
    _, _, opened = call(app, "GET", "openOrders", sign({"symbol": SYMBOL}))
    assert [o["clientOrderId"] for o in opened] == ["life"]
    exchange.on_trade(T0, "9.98", "1", True)
    _, _, order = call(app, "GET", "order", sign({"symbol": SYMBOL, "origClientOrderId": "life"}))
    assert order["status"] == "FILLED"
    _, _, trades = call(app, "GET", "myTrades", sign({"symbol": SYMBOL, "orderId": "1"}))
    assert [t["qty"] for t in trades] == ["1.00000000"]
    _, _, account = call(app, "GET", "account", sign({"omitZeroBalances": "true"}))
    assert {b["asset"]: b["free"] for b in account["balances"]} == {
        "TRUMP": "10.99900000",
        "USDC": "990.01000000",
    }


def test_weight_limit_answers_429_with_retry_after(exchange: PaperExchange) -> None:
    app = BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET, weight_limit=40)
    assert call(app, "GET", "exchangeInfo")[0] == 200
    assert call(app, "GET", "exchangeInfo")[0] == 200
    status, headers, body = call(app, "GET", "ping")
    assert status == 429
    assert headers["Retry-After"] == "40"  # T0 is 20 s into its minute
    assert body == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 40 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }


def test_unknown_paths_and_methods(app: BinanceRestApp) -> None:
    assert call(app, "GET", "nothing")[0] == 404
    assert call(app, "PUT", "order")[0] == 405
    assert app.handle("GET", "/sapi/v1/system/status", {}, {})[0] == 404


def test_refusals_past_ban_after_ban_the_client_with_418(
    exchange: PaperExchange, clock: Any
) -> None:
    app = BinanceRestApp(
        exchange, api_key=KEY, api_secret=SECRET, weight_limit=1, ban_after=2, ban_ms=60_000
    )
    assert call(app, "GET", "ping")[0] == 200
    assert call(app, "GET", "ping")[0] == 429
    status, headers, body = call(app, "GET", "ping")  # the 2nd refusal: banned
    assert (status, headers["Retry-After"]) == (418, "60")
    assert body == {
        "code": -1003,
        "msg": "Way too much request weight used; IP banned until 1700000060000. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    }
    clock.advance(59_500)
    status, headers, _ = call(app, "GET", "time")
    assert (status, headers["Retry-After"]) == (418, "1")
    clock.advance(500)
    assert call(app, "GET", "ping")[0] == 200
    assert call(app, "GET", "ping")[0] == 429
    assert call(app, "GET", "ping")[1]["Retry-After"] == "120"  # a repeat ban lasts twice as long


def test_order_lookups_lag_behind_creation_by_lookup_delay(
    exchange: PaperExchange, clock: Any
) -> None:
    app = BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET, lookup_delay_ms=1_000)
    assert call(app, "POST", "order", sign(order_params("lag-1")))[0] == 200
    lookup = {"symbol": SYMBOL, "origClientOrderId": "lag-1"}
    status, _, body = call(app, "GET", "order", sign(lookup))
    assert (status, body) == (400, {"code": -2013, "msg": "Order does not exist."})
    clock.advance(1_000)
    _, _, order = call(app, "GET", "order", sign(lookup, ts=clock()))
    assert order["clientOrderId"] == "lag-1"


def test_klines_and_24hr_tickers(app: BinanceRestApp, exchange: PaperExchange) -> None:
    exchange.on_trade(T0, "10.00", "2", False)
    status, headers, rows = call(app, "GET", "klines", {"symbol": SYMBOL, "interval": "1m"})
    assert (status, headers["X-MBX-USED-WEIGHT-1M"], len(rows)) == (200, "2", 1)
    assert rows[0][4:6] == ["10.00000000", "2.00000000"]
    assert call(app, "GET", "klines", {"symbol": SYMBOL, "interval": "2m"})[2] == {
        "code": -1120,
        "msg": "Invalid interval.",
    }
    assert call(app, "GET", "klines", {"symbol": SYMBOL})[2]["code"] == -1102
    status, headers, ticker = call(app, "GET", "ticker/24hr", {"symbol": SYMBOL})
    assert (ticker["count"], ticker["bidPrice"], ticker["askQty"]) == (
        1,
        "10.00000000",
        "5.00000000",
    )
    status, headers, tickers = call(app, "GET", "ticker/24hr")
    assert (headers["X-MBX-USED-WEIGHT-1M"], [t["symbol"] for t in tickers]) == ("88", [SYMBOL])


@pytest.mark.parametrize(
    ("limit", "weight"), [("", "5"), ("500", "25"), ("1000", "50"), ("5000", "250")]
)
def test_depth_weight_follows_the_limit(app: BinanceRestApp, limit: str, weight: str) -> None:
    params = {"symbol": SYMBOL, **({"limit": limit} if limit else {})}
    assert call(app, "GET", "depth", params)[1]["X-MBX-USED-WEIGHT-1M"] == weight
