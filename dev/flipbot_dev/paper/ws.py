"""Binance's WebSocket endpoints on loopback: market streams and the WebSocket API.

:class:`BinanceWsServer` is an asyncio ``websockets`` server bound to 127.0.0.1 only,
closed automatically after ``lifetime_s`` (a test can never leave it running; ``None``
for a long-lived server). One port serves what Binance serves on two hosts:

* **market streams** - ``/stream?streams=a/b`` (combined: ``{"stream", "data"}``) and
  ``/ws/<stream>`` (raw); ``SUBSCRIBE`` / ``UNSUBSCRIBE`` requests on either.
  :meth:`BinanceWsServer.publish` sends one payload to every connection following its
  stream; :meth:`BinanceWsServer.replay` sends a recorded sequence.
* **WebSocket API** - ``/ws-api/v3``: ``userDataStream.subscribe.signature`` (HMAC
  signature checked as Binance checks it: -2015 wrong key, -1021 timestamp outside
  ``recvWindow``, -1022 bad signature), ``userDataStream.unsubscribe`` (followed by
  ``eventStreamTerminated``), ``session.subscriptions``, ``ping``, ``time``. User data
  events go to every subscription wrapped as ``{"subscriptionId", "event"}``
  (:meth:`BinanceWsServer.push_user_event`, or
  :meth:`BinanceWsServer.push_exchange_events` to forward a
  :class:`~flipbot_dev.paper.engine.PaperExchange`'s outbox).

Faults for resilience tests: :meth:`~BinanceWsServer.drop_connections` (the transport
is aborted, no close frame), :meth:`~BinanceWsServer.go_silent` (nothing is sent any
more, answers included; WebSocket pings are still answered, as by a live but stuck
server), :meth:`~BinanceWsServer.server_shutdown` (Binance's ``serverShutdown``: each
connection told is closed ``shutdown_grace_s`` later, as Binance closes it, so a client
that does not move in time loses its stream) and
:meth:`~BinanceWsServer.terminate_subscriptions` (``eventStreamTerminated``).

Every user event pushed is recorded in :attr:`BinanceWsServer.pushed` (the last
``history``) with its push time and how many subscriptions took it; every connection
told of a shutdown in :attr:`BinanceWsServer.notices`, with when it ended and whether
the server had to close it.
:class:`ThreadedWsServer` runs a server on its own event loop thread, for synchronous
code and other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

LOOPBACK = "127.0.0.1"
WS_API_PATH = "/ws-api/v3"

Kind = Literal["market", "user"]
Target = Literal["market", "user", "all"]
T = TypeVar("T")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ShutdownNotice:
    """A connection told of ``serverShutdown``: when, and how its connection ended.

    ``ended_ms`` stays ``None`` while the connection is open; ``dropped`` is true when
    the grace ran out and the server closed it, false when the client left first.
    """

    kind: Kind
    notified_ms: int
    close_at_ms: int
    ended_ms: int | None = None
    dropped: bool = False


@dataclass(eq=False)
class _Client:
    kind: Kind
    ws: ServerConnection
    combined: bool = False
    streams: set[str] = field(default_factory=set)
    subscriptions: set[int] = field(default_factory=set)
    notice: ShutdownNotice | None = None


@dataclass(frozen=True)
class PushedEvent:
    """A user data event the server pushed: when, what, and to how many subscriptions."""

    time_ms: int
    event: dict[str, Any]
    deliveries: int


def _error(request_id: Any, status: int, code: int, message: str) -> dict[str, Any]:
    return {"id": request_id, "status": status, "error": {"code": code, "msg": message}}


def _check_id(request_id: Any) -> None:
    """A request ``id`` is a number, a string of at most 36 characters, or null."""
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise TypeError("id is not a number, a string or null")
    if isinstance(request_id, str) and len(request_id) > 36:
        raise ValueError("id is too long")


def _subscription_id(value: Any) -> int | None:
    """``subscriptionId`` as sent: absent, or a whole number (-1 when it is not one)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return -1


class BinanceWsServer:
    """A loopback Binance WebSocket server (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str = "paper",
        api_secret: str = "paper-secret",
        lifetime_s: float | None = 60.0,
        clock: Callable[[], int] = wall_ms,
        history: int = 100_000,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.lifetime_s = lifetime_s
        self.clock = clock
        # How long a connection told of serverShutdown stays open (Binance gives no figure).
        self.shutdown_grace_s = shutdown_grace_s
        # The last ``history`` user events pushed and WS API requests (signature removed).
        self.pushed: deque[PushedEvent] = deque(maxlen=history)
        self.requests: deque[tuple[str, dict[str, Any]]] = deque(maxlen=history)
        self.connections: Counter[str] = Counter()  # accepted, by kind
        self.subscriptions_made = 0
        self.notices: list[ShutdownNotice] = []  # every connection told of a shutdown
        self.internal_errors: list[Exception] = []  # defects met serving a request
        self._clients: set[_Client] = set()
        self._silent: set[Kind] = set()
        self._ids = itertools.count(0)
        self._server: Server | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._closers: set[asyncio.Task[None]] = set()

    # --- life cycle ---------------------------------------------------------------------
    async def start(self, port: int = 0) -> BinanceWsServer:
        """Listen on 127.0.0.1 (``port`` 0: a free one); stops itself after ``lifetime_s``
        (``None``: runs until :meth:`stop`, for a long-lived ``flipbot exchange serve``)."""
        self._server = await serve(
            self._handle,
            LOOPBACK,
            port,
            process_request=self._route,
            compression=None,
            ping_interval=None,
        )
        if self.lifetime_s is not None:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(self.lifetime_s, lambda: loop.create_task(self.stop()))
        return self

    async def stop(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for closer in list(self._closers):
            closer.cancel()
        server, self._server = self._server, None
        if server is not None:
            for client in list(self._clients):
                self._abort(client)
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def __aenter__(self) -> BinanceWsServer:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        """What the bot's ``BINANCE_BASE_URL`` takes (it derives ``ws://`` from it)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{LOOPBACK}:{self.port}"

    def clients(self, kind: Kind) -> int:
        """Open connections of ``kind``."""
        return sum(1 for c in self._clients if c.kind == kind)

    def active_subscriptions(self) -> int:
        return sum(len(c.subscriptions) for c in self._clients if c.kind == "user")

    # --- market streams -----------------------------------------------------------------
    async def publish(self, stream: str, data: Mapping[str, Any]) -> int:
        """Send ``data`` to every market connection following ``stream``; how many got it."""
        combined = json.dumps({"stream": stream, "data": data}, separators=(",", ":"))
        raw = json.dumps(data, separators=(",", ":"))
        sent = 0
        for client in list(self._clients):
            if client.kind == "market" and stream in client.streams:
                sent += await self._send(client, combined if client.combined else raw)
        return sent

    async def replay(
        self, messages: Iterable[tuple[str, Mapping[str, Any]]], *, interval_s: float = 0.0
    ) -> int:
        """Publish ``(stream, data)`` pairs in order, ``interval_s`` apart; messages sent."""
        sent = 0
        for stream, data in messages:
            sent += await self.publish(stream, data)
            await asyncio.sleep(interval_s)
        return sent

    # --- user data stream ---------------------------------------------------------------
    async def push_user_event(self, event: Mapping[str, Any]) -> int:
        """Send ``event`` to every subscription (wrapped); how many subscriptions got it."""
        deliveries = 0
        for client in list(self._clients):
            if client.kind != "user":
                continue
            for subscription_id in sorted(client.subscriptions):
                envelope = {"subscriptionId": subscription_id, "event": event}
                deliveries += await self._send(client, json.dumps(envelope))
        self.pushed.append(PushedEvent(self.clock(), dict(event), deliveries))
        return deliveries

    async def push_exchange_events(self, exchange: Any, lock: Any = None) -> int:
        """Drain a :class:`~flipbot_dev.paper.engine.PaperExchange`'s outbox and push each event."""
        if lock is not None:
            with lock:
                events = exchange.drain()
        else:
            events = exchange.drain()
        for event in events:
            await self.push_user_event(event)
        return len(events)

    # --- faults -------------------------------------------------------------------------
    async def drop_connections(self, kind: Target = "all") -> int:
        """Abort the matching connections (no close frame, as a network failure would)."""
        dropped = [c for c in list(self._clients) if kind in ("all", c.kind)]
        for client in dropped:
            self._abort(client)
        await asyncio.sleep(0)
        return len(dropped)

    def go_silent(self, kind: Target = "all", silent: bool = True) -> None:
        """Stop (or resume) sending anything on connections of ``kind``, answers included."""
        kinds: tuple[Kind, ...] = ("market", "user") if kind == "all" else (kind,)
        for k in kinds:
            if silent:
                self._silent.add(k)
            else:
                self._silent.discard(k)

    async def server_shutdown(self, kind: Target = "all", *, grace_s: float | None = None) -> int:
        """Send Binance's ``serverShutdown`` notice to the open connections of ``kind``
        and close each one ``grace_s`` later (``shutdown_grace_s`` by default), as
        Binance does: a client has that long to open its new connection. Connections
        opened after the notice are not affected; a connection told twice keeps its
        first deadline. Returns how many connections were told."""
        grace = self.shutdown_grace_s if grace_s is None else grace_s
        now = self.clock()
        event = {"e": "serverShutdown", "E": now}
        sent = 0
        for client in list(self._clients):
            if kind not in ("all", client.kind):
                continue
            if client.kind == "user":
                sent += await self._send(client, json.dumps({"event": event}))
            elif client.combined:
                payload = {"stream": "!serverShutdown", "data": event}
                sent += await self._send(client, json.dumps(payload))
            else:
                sent += await self._send(client, json.dumps(event))
            if client.notice is None and client in self._clients:
                client.notice = ShutdownNotice(client.kind, now, now + int(grace * 1000))
                self.notices.append(client.notice)
                closer = asyncio.create_task(self._close_after(client, grace))
                self._closers.add(closer)
                closer.add_done_callback(self._closers.discard)
        return sent

    async def terminate_subscriptions(self) -> int:
        """End every user data subscription with ``eventStreamTerminated``."""
        ended = 0
        for client in list(self._clients):
            if client.kind == "user":
                for subscription_id in sorted(client.subscriptions):
                    await self._send(client, self._terminated(subscription_id))
                    ended += 1
                client.subscriptions.clear()
        return ended

    # --- connections --------------------------------------------------------------------
    def _route(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path in (WS_API_PATH, "/stream") or path.startswith("/ws"):
            return None
        return Response(
            HTTPStatus.NOT_FOUND.value, "Not Found", Headers([("Content-Length", "0")]), b""
        )

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        parts = urlsplit(request.path if request is not None else "/")
        if parts.path == WS_API_PATH:
            client = _Client("user", ws)
        elif parts.path == "/stream":
            streams = parse_qs(parts.query).get("streams", [""])[0]
            client = _Client(
                "market", ws, combined=True, streams=set(filter(None, streams.split("/")))
            )
        else:
            stream = parts.path[len("/ws/") :] if parts.path.startswith("/ws/") else ""
            client = _Client("market", ws, streams={stream} if stream else set())
        self._clients.add(client)
        self.connections[client.kind] += 1
        try:
            async for frame in ws:
                await self._on_frame(client, frame)
        except ConnectionClosed:
            pass
        finally:
            self._clients.discard(client)
            if client.notice is not None and client.notice.ended_ms is None:
                client.notice.ended_ms = self.clock()

    async def _on_frame(self, client: _Client, frame: str | bytes) -> None:
        """One request; whatever it holds, the connection lives on and gets an answer."""
        try:
            text = frame if isinstance(frame, str) else frame.decode("utf-8")
        except UnicodeDecodeError:
            text = ""  # not text: answered as a request that is not JSON
        try:
            if client.kind == "user":
                await self._on_api_request(client, text)
            else:
                await self._on_market_request(client, text)
        except ConnectionClosed:
            raise
        except Exception as error:  # a defect of the paper exchange, not of the request
            self.internal_errors.append(error)
            unknown = _error(None, 500, -1000, "An unknown error occurred.")
            await self._send(client, json.dumps(unknown))

    async def _send(self, client: _Client, text: str) -> int:
        if client.kind in self._silent:
            return 0
        try:
            await client.ws.send(text)
        except ConnectionClosed:
            return 0
        return 1

    def _abort(self, client: _Client) -> None:
        self._clients.discard(client)
        transport = client.ws.transport
        if transport is not None:
            transport.abort()

    async def _close_after(self, client: _Client, grace_s: float) -> None:
        """Close a connection told of the shutdown when its grace runs out (1001, going
        away); nothing more is sent on it from then. A client that left first is not
        touched."""
        await asyncio.sleep(grace_s)
        if client not in self._clients:
            return
        self._clients.discard(client)
        if client.notice is not None:
            client.notice.dropped = True
        try:
            await asyncio.wait_for(client.ws.close(1001, "server shutdown"), 1)
        except (TimeoutError, ConnectionClosed):
            self._abort(client)

    async def _on_market_request(self, client: _Client, text: str) -> None:
        try:
            request = json.loads(text)
            method, request_id = request["method"], request.get("id")
            params = [str(p) for p in request.get("params") or []]
            _check_id(request_id)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            await self._send(client, json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        if method == "SUBSCRIBE":
            client.streams.update(params)
            result: Any = None
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
            result = None
        elif method == "LIST_SUBSCRIPTIONS":
            result = sorted(client.streams)
        else:
            error = {"code": 1, "msg": f"Unknown method: {method}"}
            await self._send(client, json.dumps({"error": error, "id": request_id}))
            return
        await self._send(client, json.dumps({"result": result, "id": request_id}))

    async def _on_api_request(self, client: _Client, text: str) -> None:
        try:
            request = json.loads(text)
            method = str(request["method"])
            request_id = request.get("id")
            params = request.get("params") or {}
            if not isinstance(params, dict):
                raise TypeError("params is not an object")
            _check_id(request_id)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            await self._send(client, json.dumps(_error(None, 400, -1102, "Malformed request.")))
            return
        self.requests.append((method, {k: v for k, v in params.items() if k != "signature"}))
        after: list[str] = []
        if method == "userDataStream.subscribe.signature":
            response = self._subscribe(client, request_id, params)
        elif method == "userDataStream.unsubscribe":
            wanted = _subscription_id(params.get("subscriptionId"))
            ended = sorted(client.subscriptions if wanted is None else {wanted})
            if wanted is not None and wanted not in client.subscriptions:
                response = _error(request_id, 400, -1102, "Invalid subscriptionId.")
            else:
                client.subscriptions.difference_update(ended)
                response = {"id": request_id, "status": 200, "result": {}}
                after = [self._terminated(sid) for sid in ended]
        elif method == "session.subscriptions":
            result = [{"subscriptionId": sid} for sid in sorted(client.subscriptions)]
            response = {"id": request_id, "status": 200, "result": result}
        elif method == "ping":
            response = {"id": request_id, "status": 200, "result": {}}
        elif method == "time":
            response = {"id": request_id, "status": 200, "result": {"serverTime": self.clock()}}
        else:
            response = _error(request_id, 400, -1020, "This operation is not supported.")
        response["rateLimits"] = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
                "count": 2,
            }
        ]
        await self._send(client, json.dumps(response))
        for text_after in after:
            await self._send(client, text_after)

    def _subscribe(
        self, client: _Client, request_id: Any, params: dict[str, Any]
    ) -> dict[str, Any]:
        if params.get("apiKey") != self.api_key:
            return _error(request_id, 401, -2015, "Invalid API-key, IP, or permissions for action.")
        try:
            timestamp = int(params["timestamp"])
            recv_window = int(params.get("recvWindow", 5000))
            signature = str(params["signature"])
        except (KeyError, TypeError, ValueError):
            message = "A mandatory parameter was not sent, was empty/null, or malformed."
            return _error(request_id, 400, -1102, message)
        now = self.clock()
        if not now - min(recv_window, 60_000) <= timestamp <= now + 1000:
            message = "Timestamp for this request is outside of the recvWindow."
            return _error(request_id, 400, -1021, message)
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        expected = hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return _error(request_id, 400, -1022, "Signature for this request is not valid.")
        subscription_id = next(self._ids)
        client.subscriptions.add(subscription_id)
        self.subscriptions_made += 1
        return {"id": request_id, "status": 200, "result": {"subscriptionId": subscription_id}}

    def _terminated(self, subscription_id: int) -> str:
        event = {"e": "eventStreamTerminated", "E": self.clock()}
        return json.dumps({"subscriptionId": subscription_id, "event": event})


class ThreadedWsServer:
    """A :class:`BinanceWsServer` on its own event loop thread, driven from sync code.

    ``call(lambda server: server.publish(...))`` runs a coroutine of the server on its
    loop and returns the result::

        with ThreadedWsServer(api_key="k", api_secret="s") as ws:
            os.environ["BINANCE_BASE_URL"] = ws.base_url
            ws.call(lambda s: s.push_user_event(report))
    """

    def __init__(self, **kwargs: Any) -> None:
        self.server = BinanceWsServer(**kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="paper-ws", daemon=True)

    def start(self, port: int = 0) -> ThreadedWsServer:
        self._thread.start()
        self.call(lambda server: server.start(port))
        return self

    def call(self, work: Callable[[BinanceWsServer], Awaitable[T]], timeout: float = 10) -> T:
        async def run() -> T:
            return await work(self.server)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.call(lambda server: server.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def __enter__(self) -> ThreadedWsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
