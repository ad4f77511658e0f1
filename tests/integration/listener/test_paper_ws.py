"""The loopback Binance WebSocket server: what Binance answers, as Binance answers it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from flipbot.listener.binance_ws import subscribe_signature_params
from flipbot_dev.paper.ws import BinanceWsServer, ThreadedWsServer

KEY, SECRET = "paperWsKey000001", "paperWsSecret000001"


def now_ms() -> int:
    return int(time.time() * 1000)


async def ask(ws: ClientConnection, method: str, params: dict[str, Any] | None = None) -> Any:
    await ws.send(json.dumps({"id": method, "method": method, "params": params or {}}))
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


def run(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 5))


@pytest.mark.parametrize(
    ("key", "secret", "age_ms", "status", "code"),
    [
        ("someoneElse00001", SECRET, 0, 401, -2015),
        (KEY, SECRET, 60_000, 400, -1021),
        (KEY, "notTheSecret0001", 0, 400, -1022),
    ],
)
def test_a_bad_subscribe_gets_binances_error(
    key: str, secret: str, age_ms: int, status: int, code: int
) -> None:
    async def scenario() -> dict[str, Any]:
        async with (
            BinanceWsServer(api_key=KEY, api_secret=SECRET) as server,
            connect(f"{server.ws_url}/ws-api/v3") as ws,
        ):
            params = subscribe_signature_params(
                key, secret, timestamp_ms=now_ms() - age_ms, recv_window_ms=5000
            )
            response: dict[str, Any] = await ask(ws, "userDataStream.subscribe.signature", params)
            assert server.active_subscriptions() == 0
            return response

    response = run(scenario())
    assert response["status"] == status
    assert response["error"]["code"] == code


def test_subscribe_events_subscriptions_and_unsubscribe() -> None:
    async def scenario() -> list[Any]:
        async with (
            BinanceWsServer(api_key=KEY, api_secret=SECRET) as server,
            connect(f"{server.ws_url}/ws-api/v3") as ws,
        ):
            params = subscribe_signature_params(
                KEY, SECRET, timestamp_ms=now_ms(), recv_window_ms=5000
            )
            subscribed = await ask(ws, "userDataStream.subscribe.signature", params)
            assert await server.push_user_event({"e": "balanceUpdate", "E": 1}) == 1
            event = json.loads(await ws.recv())
            listed = await ask(ws, "session.subscriptions")
            unsubscribed = await ask(ws, "userDataStream.unsubscribe", {"subscriptionId": 0})
            terminated = json.loads(await ws.recv())
            unknown = await ask(ws, "order.place")
            assert ("userDataStream.subscribe.signature", params) not in server.requests
            return [subscribed, event, listed, unsubscribed, terminated, unknown]

    subscribed, event, listed, unsubscribed, terminated, unknown = run(scenario())
    assert subscribed["result"] == {"subscriptionId": 0}
    assert event == {"subscriptionId": 0, "event": {"e": "balanceUpdate", "E": 1}}
    assert listed["result"] == [{"subscriptionId": 0}]
    assert (unsubscribed["status"], unsubscribed["result"]) == (200, {})
    assert terminated["event"]["e"] == "eventStreamTerminated"
    assert unknown["error"]["code"] == -1020


def test_market_streams_combined_raw_and_subscribe_requests() -> None:
    async def scenario() -> list[Any]:
        async with BinanceWsServer() as server:
            combined = await connect(f"{server.ws_url}/stream?streams=abc@trade/abc@bookTicker")
            raw = await connect(f"{server.ws_url}/ws")
            await raw.send(json.dumps({"method": "SUBSCRIBE", "params": ["abc@trade"], "id": 7}))
            answer = json.loads(await raw.recv())
            assert await server.publish("abc@trade", {"e": "trade", "t": 1}) == 2
            assert await server.publish("xyz@trade", {"e": "trade"}) == 0
            got = [json.loads(await combined.recv()), json.loads(await raw.recv())]
            await server.server_shutdown("market")
            got += [json.loads(await combined.recv()), json.loads(await raw.recv())]
            with pytest.raises(InvalidStatus):
                await connect(f"{server.ws_url}/elsewhere")
            await combined.close()
            await raw.close()
            return [answer, *got]

    answer, combined, raw, shutdown_combined, shutdown_raw = run(scenario())
    assert answer == {"result": None, "id": 7}
    assert combined == {"stream": "abc@trade", "data": {"e": "trade", "t": 1}}
    assert raw == {"e": "trade", "t": 1}
    assert shutdown_combined["stream"] == "!serverShutdown"
    assert shutdown_raw["e"] == "serverShutdown"


def test_given_a_server_shutdown_then_each_told_connection_is_closed_after_the_grace() -> None:
    async def scenario() -> tuple[list[Any], list[Any], bool, bool, BinanceWsServer]:
        async with BinanceWsServer(api_key=KEY, api_secret=SECRET, shutdown_grace_s=0.3) as server:
            combined = await connect(f"{server.ws_url}/stream?streams=abc@trade")
            raw = await connect(f"{server.ws_url}/ws/abc@trade")
            api = await connect(f"{server.ws_url}/ws-api/v3")
            params = subscribe_signature_params(
                KEY, SECRET, timestamp_ms=now_ms(), recv_window_ms=5000
            )
            await ask(api, "userDataStream.subscribe.signature", params)
            leaving = await connect(f"{server.ws_url}/ws/abc@trade")
            told = [combined, raw, api, leaving]
            assert await server.server_shutdown("all") == 4
            notices = [json.loads(await asyncio.wait_for(ws.recv(), 2)) for ws in told]
            await leaving.close()  # this client moves at once
            newcomer = await connect(f"{server.ws_url}/stream?streams=abc@trade")
            # Within the grace the old connections still carry the stream.
            assert await server.publish("abc@trade", {"e": "trade", "t": 1}) == 3
            assert await server.push_user_event({"e": "balanceUpdate", "E": 1}) == 1
            for ws in (combined, raw, api, newcomer):
                await asyncio.wait_for(ws.recv(), 2)
            # When the grace runs out the server closes them: 1001, going away.
            for ws in (combined, raw, api):
                await asyncio.wait_for(ws.wait_closed(), 2)
            codes = [ws.close_code for ws in (combined, raw, api)]
            # The connection opened after the notice carries on.
            after = await server.publish("abc@trade", {"e": "trade", "t": 2})
            got = json.loads(await asyncio.wait_for(newcomer.recv(), 2))
            await newcomer.close()
            return notices, codes, after == 1, got["data"]["t"] == 2, server

    notices, codes, one_left, newcomer_served, server = run(scenario())
    assert notices[0] == {"stream": "!serverShutdown", "data": notices[1]}
    assert notices[1]["e"] == "serverShutdown"
    assert notices[2] == {"event": notices[1]}
    assert codes == [1001, 1001, 1001]
    assert one_left
    assert newcomer_served
    assert sorted((n.kind, n.dropped) for n in server.notices) == [
        ("market", False),
        ("market", True),
        ("market", True),
        ("user", True),
    ]
    for notice in server.notices:
        assert notice.ended_ms is not None
        assert notice.close_at_ms - notice.notified_ms == 300
    dropped = [n for n in server.notices if n.dropped]
    assert all(n.ended_ms is not None and n.ended_ms >= n.close_at_ms for n in dropped)


def test_the_server_binds_loopback_only_and_stops_itself() -> None:
    async def scenario() -> bool:
        server = await BinanceWsServer(lifetime_s=0.2).start()
        assert server.base_url.startswith("http://127.0.0.1:")
        await asyncio.sleep(0.4)
        return server._server is None

    assert run(scenario())


def test_the_threaded_server_is_driven_from_sync_code() -> None:
    with ThreadedWsServer(api_key=KEY, api_secret=SECRET) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert server.call(lambda s: s.push_user_event({"e": "x"})) == 0
        assert len(server.server.pushed) == 1
