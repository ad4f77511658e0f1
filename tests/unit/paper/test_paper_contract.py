"""Contract: what the paper exchange emits has the shape of Binance's documented examples.

Every REST body and user-data event is held against the matching file in
``../shared/data/binance_payloads`` (Binance's documented examples, and real captures
where they exist): the same field names, and the same JSON type for each field; decimals
are 8-decimal strings. A ``null`` in an example is a placeholder (``"N"`` of an
executionReport is ``null`` until a trade). REST responses are checked twice: from the
app in process and over HTTP from the loopback server (``flipbot exchange serve``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from flipbot_dev.paper import BinanceRestApp, PaperExchange, default_symbol_info, ws_api_envelope
from flipbot_dev.paper.market_streams import MarketStreamBuilder
from flipbot_dev.paper.server import PaperHttpServer

KEY, SECRET = "PaperKey01", "paper-secret-01"
T0 = 1_700_000_000_000
SYMBOL = "TRUMPUSDC"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_EIGHT_DECIMALS = re.compile(r"^-?\d+\.\d{8}$")
_PERCENT = re.compile(r"^-?\d+\.\d{3}$")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_shape(ours: Any, documented: Any, where: str = "$", *, decimals: bool = True) -> None:
    """``ours`` has the fields and JSON types of ``documented``, recursively."""
    if documented is None:
        return
    assert _json_type(ours) == _json_type(documented), (
        f"{where}: {_json_type(ours)} {ours!r}, documented {_json_type(documented)}"
    )
    if isinstance(documented, dict):
        if documented:  # ``{}`` in an example is a placeholder
            assert set(ours) == set(documented), (
                f"{where}: missing {sorted(set(documented) - set(ours))}, "
                f"extra {sorted(set(ours) - set(documented))}"
            )
            for key, value in documented.items():
                assert_shape(ours[key], value, f"{where}.{key}", decimals=decimals)
    elif isinstance(documented, list):
        if len({_json_type(item) for item in documented}) > 1:  # a row: [time, "open", ...]
            assert len(ours) == len(documented), f"{where}: {len(ours)} items"
            for i, (item, example) in enumerate(zip(ours, documented, strict=True)):
                assert_shape(item, example, f"{where}[{i}]", decimals=decimals)
        elif documented and ours:
            for i, item in enumerate(ours):
                assert_shape(item, documented[0], f"{where}[{i}]", decimals=decimals)
    elif decimals and isinstance(documented, str):
        is_decimal = bool(_NUMBER.match(documented)) and "." in documented
        if is_decimal and where.endswith("Percent"):  # Binance writes percentages with 3
            assert _PERCENT.match(ours), f"{where}: {ours!r} is not a 3-decimal percentage"
        elif is_decimal:
            assert _EIGHT_DECIMALS.match(ours), f"{where}: {ours!r} is not 8-decimal"


def load(payloads: Path, name: str) -> Any:
    return json.loads((payloads / name).read_text())


def signed(params: dict[str, str]) -> dict[str, str]:
    params = {**params, "timestamp": str(T0)}
    payload = "&".join(f"{k}={v}" for k, v in params.items())
    params["signature"] = hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return params


@pytest.fixture
def busy_app(clock: Any) -> BinanceRestApp:
    """An account with open, filled and cancelled orders and some trades."""
    exchange = PaperExchange(
        [SYMBOL], clock=clock, balances={"USDC": "1000", "TRUMP": "10", "BNB": "0"}
    )
    app = BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET)
    exchange.on_book(T0, "10.00", "5", "10.01", "5")
    exchange.on_trade(T0, "10.00", "2", True)
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "1.000", "9.90", "GTC", "open-buy")
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "2.000", "9.98", "GTC", "filled-buy")
    exchange.place_order(SYMBOL, "SELL", "LIMIT", "1.000", "10.50", "GTC", "gone")
    exchange.cancel_order(SYMBOL, orig_client_order_id="gone")
    exchange.on_trade(T0, "9.97", "2", True)  # fills filled-buy, not open-buy
    return app


Send = Callable[[str, str, dict[str, str], bool], tuple[int, dict[str, str], Any]]


@pytest.fixture(params=["in-process", "http"])
def send(request: pytest.FixtureRequest, busy_app: BinanceRestApp) -> Iterator[Send]:
    """``send(method, endpoint, params, sign) -> (status, headers, JSON body)``, either
    straight to the app or over HTTP to a loopback server in front of it."""
    headers = {"X-MBX-APIKEY": KEY}
    if request.param == "in-process":

        def via_app(method: str, endpoint: str, params: dict[str, str], sign: bool) -> Any:
            status, response_headers, body = busy_app.handle(
                method, f"/api/v3/{endpoint}", signed(params) if sign else params, headers
            )
            return status, response_headers, json.loads(body)

        yield via_app
        return
    with PaperHttpServer(busy_app, idle_timeout_s=1.0) as server, requests.Session() as session:
        session.trust_env = False

        def via_http(method: str, endpoint: str, params: dict[str, str], sign: bool) -> Any:
            query = "&".join(f"{k}={v}" for k, v in (signed(params) if sign else params).items())
            url = f"{server.base_url}/api/v3/{endpoint}?{query}"
            response = session.request(method, url, headers=headers, timeout=5)
            return response.status_code, dict(response.headers), response.json()

        yield via_http


def get(send: Send, method: str, endpoint: str, params: dict[str, str], sign: bool) -> Any:
    status, _, body = send(method, endpoint, params, sign)
    assert status == 200, body
    return body


CASES = [
    ("rest/get_time.json", "GET", "time", {}, False),
    ("rest/get_exchangeInfo.json", "GET", "exchangeInfo", {"symbol": SYMBOL}, False),
    (
        "rest/get_ticker_bookTicker.single.json",
        "GET",
        "ticker/bookTicker",
        {"symbol": SYMBOL},
        False,
    ),
    ("rest/get_ticker_price.single.json", "GET", "ticker/price", {"symbol": SYMBOL}, False),
    ("rest/get_avgPrice.json", "GET", "avgPrice", {"symbol": SYMBOL}, False),
    ("rest/get_depth.json", "GET", "depth", {"symbol": SYMBOL}, False),
    ("rest/get_account.json", "GET", "account", {}, True),
    ("rest/get_account_commission.json", "GET", "account/commission", {"symbol": SYMBOL}, True),
    (
        "rest/get_order.json",
        "GET",
        "order",
        {"symbol": SYMBOL, "origClientOrderId": "open-buy"},
        True,
    ),
    ("rest/get_openOrders.json", "GET", "openOrders", {"symbol": SYMBOL}, True),
    ("rest/get_allOrders.json", "GET", "allOrders", {"symbol": SYMBOL}, True),
    ("rest/get_myTrades.json", "GET", "myTrades", {"symbol": SYMBOL}, True),
    ("rest/get_klines.json", "GET", "klines", {"symbol": SYMBOL, "interval": "1m"}, False),
    (
        "real_captures/nautilus_http_spot_market_klines.json",
        "GET",
        "klines",
        {"symbol": SYMBOL, "interval": "1h"},
        False,
    ),
    (
        "rest/get_ticker_24hr.full.single.json",
        "GET",
        "ticker/24hr",
        {"symbol": SYMBOL},
        False,
    ),
    (
        "rest/delete_order.json",
        "DELETE",
        "order",
        {"symbol": SYMBOL, "origClientOrderId": "open-buy"},
        True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_rest_responses_match_the_documented_examples(
    payloads: Path, send: Send, case: tuple[str, str, str, dict[str, str], bool]
) -> None:
    example, method, endpoint, params, sign = case
    ours = get(send, method, endpoint, params, sign)
    if isinstance(ours, list):
        assert ours, f"{endpoint} answered an empty list: nothing to compare"
    assert_shape(ours, load(payloads, example), decimals=endpoint != "exchangeInfo")


@pytest.mark.parametrize("response_type", ["ack", "result", "full"])
def test_new_order_responses_match_the_documented_examples(
    payloads: Path, send: Send, response_type: str
) -> None:
    params = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1.000",
        "price": "10.01",  # crosses the ask: FULL carries a fill
        "newClientOrderId": f"new-{response_type}",
        "newOrderRespType": response_type.upper(),
    }
    ours = get(send, "POST", "order", params, True)
    if response_type == "full":
        assert ours["fills"]
    assert_shape(ours, load(payloads, f"rest/post_order.{response_type}.json"))


def test_error_bodies_match_the_documented_example(
    payloads: Path, send: Send, busy_app: BinanceRestApp
) -> None:
    documented = load(payloads, "rest/error_generic.json")
    status, _, body = send("GET", "avgPrice", {"symbol": "NOPE"}, False)
    assert status == 400
    assert_shape(body, documented)
    status, _, body = send("GET", "order", {"symbol": SYMBOL, "orderId": "999"}, True)
    assert (status, body["code"]) == (400, -2013)
    assert_shape(body, documented)
    busy_app.weight_limit, busy_app.ban_after = 0, 2
    for expected in (429, 418):
        status, headers, body = send("GET", "ping", {}, False)
        assert (status, body["code"]) == (expected, -1003)
        assert int(headers["Retry-After"]) > 0
        assert_shape(body, documented)


@pytest.mark.parametrize("symbol", ["TRUMPUSDC", "BTCUSDT", "BTCBUSD"])
def test_default_symbol_filters_match_the_documented_filter_formats(
    payloads: Path, symbol: str
) -> None:
    info = default_symbol_info(symbol)
    documented_symbol = load(payloads, "rest/get_exchangeInfo.json")["symbols"][0]
    assert_shape(info, documented_symbol, decimals=False)
    for entry in info["filters"]:
        example = payloads / "filters" / f"{entry['filterType']}.json"
        assert example.exists(), f"no documented format for {entry['filterType']}"
        assert_shape(entry, json.loads(example.read_text()), decimals=False)


def test_user_data_events_match_the_documented_examples(payloads: Path, clock: Any) -> None:
    # Given every kind of order update: new, trade, cancel and expiry
    exchange = PaperExchange([SYMBOL], clock=clock, balances={"USDC": "1000", "TRUMP": "10"})
    exchange.on_book(T0, "10.00", "5", "10.01", "5")
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "1.000", "9.99", "GTC", "a")
    exchange.on_trade(T0, "9.98", "0.3", True)
    exchange.cancel_order(SYMBOL, orig_client_order_id="a")
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "6.000", "10.02", "IOC", "b")
    events = exchange.drain()
    assert {ev.get("x") for ev in events} == {"NEW", "TRADE", "CANCELED", "EXPIRED", None}

    examples = {
        "executionReport": "executionReport",
        "outboundAccountPosition": "outboundAccountPosition",
    }
    for event in events:
        name = examples[event["e"]]
        if event.get("X") == "EXPIRED":  # eR (2026-03, CHANGES_2025_2026.md) is newer than
            assert event.pop("eR") == "UNFILLED_IOC_QUANTITY_EXPIRED"  # the examples
        bare = load(payloads, f"user_data/legacy_listenkey/{name}.json")
        wrapped = load(payloads, f"user_data/{name}.wsapi.json")
        assert_shape(event, bare)
        assert_shape(ws_api_envelope(event), wrapped)


# --- market streams ---------------------------------------------------------------------------
def _market_messages() -> dict[str, list[dict[str, Any]]]:
    builder = MarketStreamBuilder(SYMBOL)
    messages = [
        *builder.on_book(T0, Decimal("10.00"), Decimal("5"), Decimal("10.01"), Decimal("5")),
        *builder.on_trade(T0 + 1, Decimal("10.01"), Decimal("2"), False),
        *builder.on_book(T0 + 2, Decimal("10.01"), Decimal("3"), Decimal("10.02"), Decimal("4")),
        *builder.on_trade(T0 + 60_000, Decimal("10.02"), Decimal("1"), True),  # a new minute
    ]
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for stream, payload in messages:
        by_stream.setdefault(stream, []).append(payload)
    return by_stream


MARKET_CASES = [
    ("market_streams/trade.json", "trade"),
    ("market_streams/aggTrade.json", "aggTrade"),
    ("market_streams/bookTicker.json", "bookTicker"),
    ("market_streams/kline.json", "kline_1m"),
    ("market_streams/depth_partial.json", "depth10"),
    ("market_streams/depth_partial.json", "depth5@100ms"),
    ("market_streams/depth_diff.json", "depth"),
    ("real_captures/hftbacktest_btcusdt_trade.json", "trade"),
    # Not nautilus_ws_spot_trade.json: a 2021 trade with the buyer and seller order ids
    # ("b", "a") that Binance has since removed from the stream.
    ("real_captures/cryptofeed_nknusdt_aggTrade.json", "aggTrade"),
    ("real_captures/hftbacktest_btcusdt_bookTicker.json", "bookTicker"),
    ("real_captures/cryptofeed_nknusdt_kline_1m.json", "kline_1m"),
    ("real_captures/hftbacktest_btcusdt_depth_100ms.json", "depth@100ms"),
]


@pytest.mark.parametrize(("example", "stream"), MARKET_CASES, ids=[c[0] for c in MARKET_CASES])
def test_market_stream_messages_match_documented_and_captured_ones(
    payloads: Path, example: str, stream: str
) -> None:
    documented = load(payloads, example)
    if "message" in documented:  # a capture: {"local_recv_...", "message": {"stream", "data"}}
        documented = documented["message"]
        documented = documented.get("data", documented)
    ours = _market_messages()[f"{SYMBOL.lower()}@{stream}"]
    for payload in ours:
        # Documented examples write some decimals with fewer places: types only.
        assert_shape(payload, documented, decimals=example.startswith("real_captures"))


def test_a_new_minute_closes_the_previous_kline() -> None:
    klines = _market_messages()[f"{SYMBOL.lower()}@kline_1m"]
    assert [(k["k"]["t"] - T0 // 60_000 * 60_000, k["k"]["x"], k["k"]["n"]) for k in klines] == [
        (0, False, 1),
        (0, True, 1),
        (60_000, False, 1),
    ]
    diff = _market_messages()[f"{SYMBOL.lower()}@depth"][1]
    assert diff["b"] == [["10.01000000", "3.00000000"], ["10.00000000", "0.00000000"]]
