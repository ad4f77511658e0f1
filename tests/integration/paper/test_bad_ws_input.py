"""Bad frames on the paper exchange's WebSocket endpoints: an error frame, never a dead
connection handler. Frames are sent as a broken or hostile client would send them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from flipbot_dev.paper.ws import BinanceWsServer

NOT_UTF8 = b"\xff\xfe\x80{"
DEEP = "[" * 100_000 + "]" * 100_000
GARBAGE: list[str | bytes] = [
    NOT_UTF8,
    DEEP,
    "{not json",
    "[]",
    "42",
    '{"method": 7, "id": 1}',
    '{"method": "ping", "id": {"nested": [1, 2]}}',
    '{"method": "ping", "id": true}',
    '{"method": "ping", "id": "' + "x" * 100 + '"}',
    '{"method": "ping", "params": [1, 2]}',
    '{"method": "SUBSCRIBE", "params": 5}',
]


async def answer(ws: ClientConnection, frame: str | bytes) -> dict[str, Any]:
    await ws.send(frame)
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return reply


def run(scenario: Any) -> Any:
    return asyncio.run(asyncio.wait_for(scenario, 20))


@pytest.mark.parametrize("frame", GARBAGE, ids=range(len(GARBAGE)))
def test_the_websocket_api_answers_garbage_with_an_error_frame(frame: str | bytes) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], BinanceWsServer]:
        async with (
            BinanceWsServer() as server,
            connect(f"{server.ws_url}/ws-api/v3", max_size=None) as ws,
        ):
            # Given a WebSocket API connection, When it sends a frame that is no request
            error = await answer(ws, frame)
            # Then the same connection still answers a good request
            pong = await answer(ws, json.dumps({"id": "p", "method": "ping"}))
            return error, pong, server

    error, pong, server = run(scenario())
    assert error["status"] == 400
    assert error["error"]["code"] in (-1102, -1020)
    assert (pong["id"], pong["status"]) == ("p", 200)
    assert server.internal_errors == []


def test_an_unsubscribe_with_a_subscription_id_that_is_not_a_number_is_refused() -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with BinanceWsServer() as server, connect(f"{server.ws_url}/ws-api/v3") as ws:
            request = {"id": 1, "method": "userDataStream.unsubscribe"}
            refused = await answer(ws, json.dumps({**request, "params": {"subscriptionId": "x"}}))
            pong = await answer(ws, json.dumps({"id": 2, "method": "ping"}))
            assert server.internal_errors == []
            return refused, pong

    refused, pong = run(scenario())
    assert (refused["id"], refused["status"], refused["error"]["code"]) == (1, 400, -1102)
    assert pong["status"] == 200


@pytest.mark.parametrize("frame", GARBAGE, ids=range(len(GARBAGE)))
def test_a_market_stream_answers_garbage_with_an_error_frame(frame: str | bytes) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any], BinanceWsServer]:
        async with (
            BinanceWsServer() as server,
            connect(f"{server.ws_url}/ws/trumpusdc@trade", max_size=None) as ws,
        ):
            error = await answer(ws, frame)
            listed = await answer(ws, json.dumps({"id": 3, "method": "LIST_SUBSCRIPTIONS"}))
            return error, listed, server

    error, listed, server = run(scenario())
    assert "result" not in error
    assert error["error"]["code"] in (1, 2, 3)
    assert listed == {"result": ["trumpusdc@trade"], "id": 3}
    assert server.internal_errors == []


def test_a_text_frame_that_is_not_utf8_closes_only_that_connection() -> None:
    async def scenario() -> tuple[int | None, dict[str, Any], BinanceWsServer]:
        async with BinanceWsServer() as server:
            async with connect(f"{server.ws_url}/ws-api/v3") as bad:
                # Given a text frame whose payload is not UTF-8: a WebSocket protocol error
                await bad.send(NOT_UTF8, text=True)
                await bad.wait_closed()
                code = bad.close_code
            # Then another connection is served as before
            async with connect(f"{server.ws_url}/ws-api/v3") as good:
                pong = await answer(good, json.dumps({"id": 1, "method": "ping"}))
            return code, pong, server

    code, pong, server = run(scenario())
    assert code == 1007  # invalid frame payload data, as RFC 6455 has it
    assert pong["status"] == 200
    assert server.internal_errors == []
