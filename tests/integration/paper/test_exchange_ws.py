"""``flipbot exchange serve``'s WebSocket side: the replayed market on Binance's market
streams and the account's events on the WebSocket API, beside the REST API."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from flipbot_dev.paper.server import ExchangeConfig, ExchangeService, http_client, start_exchange
from flipbot_dev.replay.sample import generate_sample

S = "trumpusdc"


@pytest.fixture
def service() -> Iterator[ExchangeService]:
    config = ExchangeConfig(
        data=generate_sample(seed=7, hours=1),
        speed=600.0,
        balances={"USDC": Decimal("100")},
        ws_port=0,
        ws_lifetime_s=30.0,
    )
    with start_exchange(config) as running:
        yield running


def receive(ws: ClientConnection, wanted: int, timeout_s: float = 5.0) -> list[Any]:
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(messages) < wanted and time.monotonic() < deadline:
        try:
            messages.append(json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
        except TimeoutError:
            break
    return messages


def test_market_streams_carry_the_replayed_market(service: ExchangeService) -> None:
    streams = [f"{S}@trade", f"{S}@bookTicker", f"{S}@kline_1m", f"{S}@depth10"]
    url = f"{service.ws_url}/stream?streams={'/'.join(streams)}"
    with connect(url, open_timeout=5, close_timeout=1) as ws:
        messages = receive(ws, 40)
    assert {m["stream"] for m in messages} == set(streams)
    trades = [m["data"] for m in messages if m["stream"] == f"{S}@trade"]
    assert all(t["e"] == "trade" and t["s"] == "TRUMPUSDC" for t in trades)
    assert [t["t"] for t in trades] == sorted(t["t"] for t in trades)
    assert abs(trades[-1]["T"] - time.time() * 1000) < 5_000  # stamped on the server's clock


def test_user_data_arrives_on_the_websocket_api_after_a_rest_order(
    service: ExchangeService,
) -> None:
    with connect(f"{service.ws_url}/ws-api/v3", open_timeout=5, close_timeout=1) as ws:
        params = {"apiKey": "paper", "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
        signature = hmac.new(b"paper-secret", payload.encode(), hashlib.sha256).hexdigest()
        ws.send(
            json.dumps(
                {
                    "id": "s1",
                    "method": "userDataStream.subscribe.signature",
                    "params": {**params, "signature": signature},
                }
            )
        )
        (answer,) = receive(ws, 1)
        assert (answer["id"], answer["status"]) == ("s1", 200)
        subscription = answer["result"]["subscriptionId"]

        client = http_client(service.base_url)
        time.sleep(0.2)  # a book to trade against
        bid = Decimal(client.get_orderbook_ticker(symbol="TRUMPUSDC")["bidPrice"])
        client.order_limit_buy(
            symbol="TRUMPUSDC",
            quantity="0.500",
            price=str(bid - Decimal("0.50")),
            newClientOrderId="ws-1",
        )
        client.cancel_order(symbol="TRUMPUSDC", origClientOrderId="ws-1")
        events = receive(ws, 4)
    assert {e["subscriptionId"] for e in events} == {subscription}
    kinds = [(e["event"]["e"], e["event"].get("x")) for e in events]
    assert kinds == [
        ("executionReport", "NEW"),
        ("outboundAccountPosition", None),
        ("executionReport", "CANCELED"),
        ("outboundAccountPosition", None),
    ]
    assert events[0]["event"]["c"] == "ws-1"
    assert service.ws is not None
    assert [p.event["e"] for p in service.ws.server.pushed][:2] == [
        "executionReport",
        "outboundAccountPosition",
    ]


def test_the_cli_mounts_the_websocket_server(capsys: pytest.CaptureFixture[str]) -> None:
    from flipbot_dev.cli import main

    assert main(["exchange", "serve", "--hours", "0.2", "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "WebSocket: ws://127.0.0.1:" in out
    assert "BINANCE_WS_API_URL=ws://127.0.0.1:" in out
    assert main(["exchange", "serve", "--hours", "0.2", "--duration", "0", "--no-ws"]) == 0
    assert "WebSocket" not in capsys.readouterr().out
