"""Signed requests (Binance, 2026-01-15): the HMAC covers the payload exactly as sent,
percent-encoded; a signature over the decoded text is -1022. The paper exchange checks
the query string and body as they arrive on its socket."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote

import pytest
import requests
from binance.exceptions import BinanceAPIException

from .conftest import KEY, SECRET, SYMBOL, Loopback


def sign(text: str) -> str:
    return hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()


def get_order(loopback: Loopback, *, signed_over_encoded: bool) -> dict[str, object]:
    client_id = "a b/c"  # needs percent-encoding
    encoded = f"symbol={SYMBOL}&origClientOrderId={quote(client_id, safe='')}"
    encoded += f"&timestamp={loopback.clock.now}"
    decoded = f"symbol={SYMBOL}&origClientOrderId={client_id}&timestamp={loopback.clock.now}"
    signature = sign(encoded if signed_over_encoded else decoded)
    answer = requests.get(
        f"{loopback.server.base_url}/api/v3/order?{encoded}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY},
        timeout=10,
    )
    body: dict[str, object] = json.loads(answer.text)
    return body


def test_a_signature_over_the_percent_encoded_query_is_accepted(loopback: Loopback) -> None:
    # the request is authenticated; the order it asks for does not exist
    assert get_order(loopback, signed_over_encoded=True)["code"] == -2013


def test_a_signature_over_the_decoded_query_is_refused(loopback: Loopback) -> None:
    assert get_order(loopback, signed_over_encoded=False) == {
        "code": -1022,
        "msg": "Signature for this request is not valid.",
    }


def test_python_binance_signs_plain_values_as_sent(loopback: Loopback) -> None:
    # python-binance 1.0.37 signs 'k=v' pairs as given (only ``symbol`` is quoted) and
    # the body goes out form-encoded: the same text for the values the bot sends
    client = loopback.client()
    placed = client.order_limit_buy(
        symbol=SYMBOL, quantity="1.000", price="9.99", newClientOrderId="fb-c000001-B1"
    )
    assert placed["status"] == "NEW"


def test_python_binance_with_a_value_needing_encoding_gets_minus_1022(
    loopback: Loopback,
) -> None:
    # a value that encoding changes: signed decoded, sent encoded -> refused, as Binance does
    with pytest.raises(BinanceAPIException) as info:
        loopback.client().order_limit_buy(
            symbol=SYMBOL, quantity="1.000", price="9.99", newClientOrderId="a b"
        )
    assert info.value.code == -1022
    assert loopback.exchange.open_orders(None) == []
