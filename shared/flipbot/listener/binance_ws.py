"""Binance WebSocket plumbing: request signing and one connection with its reader task.

Why ``websockets`` directly rather than python-binance's socket manager: since the
listenKey retirement python-binance (>= 1.0.30) subscribes the user data stream over
the WebSocket API, but it does not subscribe again after its connection drops, its
reconnect loop is internal (no hook tells the caller that, when, or for how long the
stream was down, so no ``StreamGapDetected`` with ``since``/``until`` could be
published), it cannot hold two connections for a gap-free hand-over before the 24 h
cut, and importing it costs ~0.45 s and pulls aiohttp. ``websockets`` is already
installed with python-binance; on top of it the listener owns the whole life cycle:
connect, sign and subscribe, probe, detect silence, rotate, re-subscribe.

A :class:`Connection` reads its socket in its own task and hands every text frame to
``on_message`` with the receive time; WebSocket-API responses are matched to
:meth:`Connection.request` calls by id. Nothing here logs a request's parameters: the
subscribe request carries the API key and a signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("flipbot.listener")

_ids = itertools.count(1)


class WsApiError(Exception):
    """A WebSocket API request answered with an error (``code`` is Binance's, e.g. -1022)."""

    def __init__(self, method: str, status: int, code: int, message: str) -> None:
        super().__init__(f"{method}: HTTP {status}, Binance {code}: {message}")
        self.status = status
        self.code = code


def wall_ms() -> int:
    """Epoch milliseconds (the clock Binance's event times use)."""
    return time.time_ns() // 1_000_000


def signature_payload(params: Mapping[str, object]) -> str:
    """What Binance signs: every parameter but ``signature``, sorted by name, as ``k=v&k=v``."""
    return "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "signature")


def sign_hmac(params: Mapping[str, object], secret: str) -> str:
    """HMAC-SHA256 of :func:`signature_payload` with the API secret, hex encoded."""
    payload = signature_payload(params).encode()
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def subscribe_signature_params(
    api_key: str, api_secret: str, *, timestamp_ms: int, recv_window_ms: int
) -> dict[str, object]:
    """Signed parameters of ``userDataStream.subscribe.signature`` (HMAC key)."""
    params: dict[str, object] = {
        "apiKey": api_key,
        "recvWindow": recv_window_ms,
        "timestamp": timestamp_ms,
    }
    params["signature"] = sign_hmac(params, api_secret)
    return params


async def open_socket(url: str, *, open_timeout: float) -> ClientConnection:
    """Connect with the listener's options: no compression, client pings every 20 s."""
    return await connect(
        url,
        open_timeout=open_timeout,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
        compression=None,
        max_size=2**22,
        max_queue=256,
    )


class Connection:
    """One WebSocket read by its own task.

    ``on_message(connection, text, recv_ms)`` runs for every frame, in order, on the
    event loop. :attr:`ended` resolves with the reason the connection is over
    (``"closed"`` when the peer or the network closed it, or the reason given to
    :meth:`end`); ``wake`` is set whenever something happens a supervisor should look at.
    """

    def __init__(
        self,
        ws: ClientConnection,
        name: str,
        on_message: Callable[[Connection, str, int], None],
        wake: asyncio.Event,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.ws = ws
        self.name = name
        self.on_message = on_message
        self.wake = wake
        self.opened = loop.time()
        self.opened_ms = wall_ms()
        self.last_rx = self.opened
        self.last_rx_ms = self.opened_ms
        self.ended_ms = 0
        self.ended: asyncio.Future[str] = loop.create_future()
        self.notice: str | None = None  # e.g. "serverShutdown": the peer asks us to move
        self.subscription_id: int | None = None
        self.subscribed_ms = 0
        self.last_event_ms = 0  # Binance's time (E) of the last event received
        self.messages = 0
        # While not None, the supervisor holds this connection's events back (hand-over).
        self.held: list[tuple[dict[str, Any], int]] | None = None
        self.retiring = False  # being handed over: its end-of-stream event is expected
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read(), name=f"read-{name}")

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        on_message = self.on_message
        try:
            async for frame in self.ws:
                now_ms = time.time_ns() // 1_000_000
                self.last_rx = loop.time()
                self.last_rx_ms = now_ms
                self.messages += 1
                # invalid UTF-8 becomes U+FFFD: the message is refused as unreadable
                text = frame if isinstance(frame, str) else frame.decode(errors="replace")
                on_message(self, text, now_ms)
        except ConnectionClosed:
            pass
        except Exception:  # a bug in a handler must not leave the stream half alive
            log.exception("%s: reader failed", self.name)
            self.end("reader failed")
        finally:
            self.end("closed")

    def end(self, reason: str) -> None:
        """Mark the connection over (first reason wins) and fail pending requests."""
        if not self.ended.done():
            self.ended_ms = wall_ms()
            self.ended.set_result(reason)
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError(f"{self.name}: {reason}"))
            self._pending.clear()
            self.wake.set()

    def signal(self, notice: str) -> None:
        """Record a notice from the peer (``serverShutdown``) and wake the supervisor."""
        self.notice = notice
        self.wake.set()

    def resolve(self, message: Mapping[str, Any]) -> bool:
        """Complete the request ``message`` answers; ``False`` when it answers none."""
        future = self._pending.pop(str(message.get("id")), None)
        if future is None or future.done():
            return False
        future.set_result(dict(message))
        return True

    async def request(
        self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float
    ) -> Any:
        """Send a WebSocket API request; return its ``result`` or raise :class:`WsApiError`."""
        if self.ended.done():
            raise ConnectionError(f"{self.name}: {self.ended.result()}")
        request_id = f"fb-{next(_ids)}"
        body: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            body["params"] = dict(params)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self.ws.send(json.dumps(body))
            response = await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(request_id, None)
        status = int(response.get("status", 200))
        if status != 200 or "error" in response:
            error = response.get("error") or {}
            raise WsApiError(method, status, int(error.get("code", 0)), str(error.get("msg", "")))
        return response.get("result")

    async def close(self, reason: str, *, abort: bool = False) -> None:
        """End the connection: a close handshake, or ``abort`` the transport at once."""
        self.end(reason)
        if abort:
            transport = self.ws.transport
            if transport is not None:
                transport.abort()
        else:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
