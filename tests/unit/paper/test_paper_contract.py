"""Contract: what the paper exchange emits has the shape of Binance's documented examples.

Every REST body and user-data event is held against the matching file in
``../shared/data/binance_payloads`` (Binance's documented examples): the same field
names, and the same JSON type for each field; decimals are 8-decimal strings. A ``null``
in an example is a placeholder (``"N"`` of an executionReport is ``null`` until a trade).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flipbot.paper import BinanceRestApp, PaperExchange, default_symbol_info, ws_api_envelope

KEY, SECRET = "PaperKey01", "paper-secret-01"
T0 = 1_700_000_000_000
SYMBOL = "TRUMPUSDC"
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_EIGHT_DECIMALS = re.compile(r"^-?\d+\.\d{8}$")


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
        if documented and ours:
            for i, item in enumerate(ours):
                assert_shape(item, documented[0], f"{where}[{i}]", decimals=decimals)
    elif decimals and isinstance(documented, str):
        is_decimal = bool(_NUMBER.match(documented)) and "." in documented
        assert not is_decimal or _EIGHT_DECIMALS.match(ours), f"{where}: {ours!r} is not 8-decimal"


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
    exchange.on_book(T0, "10.00", "5", "10.01", "5")
    exchange.on_trade(T0, "10.00", "2", True)
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "1.000", "9.90", "GTC", "open-buy")
    exchange.place_order(SYMBOL, "BUY", "LIMIT", "2.000", "9.98", "GTC", "filled-buy")
    exchange.place_order(SYMBOL, "SELL", "LIMIT", "1.000", "10.50", "GTC", "gone")
    exchange.cancel_order(SYMBOL, orig_client_order_id="gone")
    exchange.on_trade(T0, "9.97", "2", True)  # fills filled-buy, not open-buy
    return BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET)


def get(app: BinanceRestApp, method: str, endpoint: str, params: dict[str, str], sign: bool) -> Any:
    status, _, body = app.handle(
        method, f"/api/v3/{endpoint}", signed(params) if sign else params, {"X-MBX-APIKEY": KEY}
    )
    assert status == 200, body
    return json.loads(body)


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
    payloads: Path, busy_app: BinanceRestApp, case: tuple[str, str, str, dict[str, str], bool]
) -> None:
    example, method, endpoint, params, sign = case
    ours = get(busy_app, method, endpoint, params, sign)
    if isinstance(ours, list):
        assert ours, f"{endpoint} answered an empty list: nothing to compare"
    assert_shape(ours, load(payloads, example), decimals=endpoint != "exchangeInfo")


@pytest.mark.parametrize("response_type", ["ack", "result", "full"])
def test_new_order_responses_match_the_documented_examples(
    payloads: Path, busy_app: BinanceRestApp, response_type: str
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
    ours = get(busy_app, "POST", "order", params, True)
    if response_type == "full":
        assert ours["fills"]
    assert_shape(ours, load(payloads, f"rest/post_order.{response_type}.json"))


def test_error_body_matches_the_documented_example(
    payloads: Path, busy_app: BinanceRestApp
) -> None:
    status, _, body = busy_app.handle("GET", "/api/v3/avgPrice", {"symbol": "NOPE"}, {})
    assert status == 400
    assert_shape(json.loads(body), load(payloads, "rest/error_generic.json"))


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
        bare = load(payloads, f"user_data/legacy_listenkey/{name}.json")
        wrapped = load(payloads, f"user_data/{name}.wsapi.json")
        assert_shape(event, bare)
        assert_shape(ws_api_envelope(event), wrapped)
