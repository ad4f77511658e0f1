"""The paper exchange over real HTTP on loopback: what ``flipbot exchange serve`` runs.

* :class:`PaperHttpServer` serves a :class:`~flipbot_dev.paper.rest.BinanceRestApp` at
  ``http://127.0.0.1:<port>`` (``ThreadingHTTPServer``, HTTP/1.1 keep-alive), with the
  faults of :mod:`flipbot_dev.paper.faults` applied exactly as the in-process transport
  applies them. It only ever binds to 127.0.0.1.
* :class:`MarketReplayer` feeds recorded market data into the exchange on the wall
  clock, ``speed`` times faster than recorded; event times are shifted so the first
  event happens when the replay starts, and the exchange's clock is the wall clock.
* :func:`start_exchange` puts both together, with the loopback WebSocket server of
  :mod:`flipbot_dev.paper.ws` on another port when asked (``ws_port``): the replayed market
  on Binance's market streams (:mod:`flipbot_dev.paper.market_streams`) and the account's
  user-data events on the WebSocket API, and returns an :class:`ExchangeService`.
* :func:`http_client` is a real python-binance ``Client`` pointed at a server.

Point the bot (or any python-binance code) at a server with ``BINANCE_BASE_URL=
http://127.0.0.1:<port>`` (the bot's setting) or ``client.API_URL =
"http://127.0.0.1:<port>/api"``, with the server's API key and secret; the listener at
the WebSocket server with ``BINANCE_STREAM_URL=ws://127.0.0.1:<ws port>`` and
``BINANCE_WS_API_URL=ws://127.0.0.1:<ws port>/ws-api/v3``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from binance.client import Client

from flipbot_dev.paper import errors as e
from flipbot_dev.paper.engine import FillModel, PaperExchange
from flipbot_dev.paper.faults import Answer, FaultHook, Lost, profile, serve
from flipbot_dev.paper.market_streams import MarketStreamBuilder
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.paper.symbols import default_symbol_info
from flipbot_dev.paper.transport import AppClockOffset, split_request
from flipbot_dev.replay.data import BookEvent, MarketData, MarketEvent, TradeEvent

if TYPE_CHECKING:
    from flipbot_dev.paper.ws import BinanceWsServer, ThreadedWsServer

LOOPBACK = "127.0.0.1"
_JSON = "application/json;charset=UTF-8"
_CONTENT_LENGTH_RE = re.compile(r"^[0-9]{1,12}$")


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def wall_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    paper: PaperHttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (or a fault that dropped it) is not a server error."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _BadRequest(Exception):
    """A request the server cannot read: answered 400 with a Binance error body."""

    def __init__(self, error: e.BinanceError) -> None:
        super().__init__(error.msg)
        self.error = error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per response (headers and body): no Nagle / delayed-ACK stall
    server: _Server
    # What http.server answers a request it cannot parse (bad request line, headers too
    # long, unknown method): Binance's error body instead of an HTML page.
    error_content_type = _JSON
    default_request_version = "HTTP/1.0"  # status line and headers even on a garbled one
    error_message_format = _dumps(e.malformed().payload())

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.paper.idle_timeout_s)  # idle keep-alives end
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.paper._connections.add(self.connection)

    def finish(self) -> None:
        self.server.paper._connections.discard(self.connection)
        super().finish()

    def version_string(self) -> str:
        return "flipbot-paper"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _read_request(self) -> tuple[str, str]:
        """``(query, body)`` as text, or :class:`_BadRequest` for what cannot be read.

        The body is read only when ``Content-Length`` is a plain number of at most the
        server's ``max_body_bytes``; a body shorter than announced (the client stopped
        sending, or closed) and text that is not UTF-8 are refused.
        """
        if not self.path.isascii():
            raise _BadRequest(e.illegal_chars_anywhere())
        query = urlsplit(self.path).query
        if self.headers.get("Transfer-Encoding") is not None:
            raise _BadRequest(e.malformed())
        declared = self.headers.get_all("Content-Length") or []
        if not declared:
            return query, ""
        if len(declared) > 1 or not _CONTENT_LENGTH_RE.match(declared[0].strip()):
            raise _BadRequest(e.malformed())
        length = int(declared[0].strip())
        if length > self.server.paper.max_body_bytes:
            raise _BadRequest(e.malformed())
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            data = b""
        if len(data) < length:
            raise _BadRequest(e.malformed())
        try:
            return query, data.decode("utf-8")
        except UnicodeDecodeError:
            raise _BadRequest(e.illegal_chars_anywhere()) from None

    def _serve(self, method: str) -> None:
        paper = self.server.paper
        try:
            query, body = self._read_request()
            params, payload = split_request(query, body)
        except _BadRequest as bad:
            self.close_connection = True  # what is left of the request is not read
            self._answer(bad.error.http_status, {"Content-Type": _JSON}, bad.error.payload())
            return
        path = urlsplit(self.path).path
        headers = dict(self.headers.items())
        with paper.lock:
            try:
                fault = paper.faults(method, path, params) if paper.faults else None
                outcome = serve(
                    paper.app, method, path, params, headers, payload=payload, fault=fault
                )
            except Exception as error:  # a defect of the paper exchange, not of the request
                paper.internal_errors.append(error)
                unknown = e.BinanceError(e.UNKNOWN, e.MSG_UNKNOWN)
                outcome = Answer(500, {"Content-Type": _JSON}, _dumps(unknown.payload()))
            paper.requests += 1
            if paper.on_request is not None:
                paper.on_request()
        if isinstance(outcome, Lost):
            self.close_connection = True  # the connection ends without a response
            return
        if outcome.delay_s > 0:
            time.sleep(min(outcome.delay_s, paper.max_delay_s))
        self._send(outcome.status, outcome.headers, outcome.body.encode())

    def _answer(self, status: int, headers: Mapping[str, str], body: Any) -> None:
        self._send(status, headers, _dumps(body).encode())

    def _send(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:  # the client gave up (its timeout): nothing to answer to
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log = self.server.paper.log
        if log is not None:
            log(f"{self.address_string()} {format % args}")


class PaperHttpServer:
    """Binance's REST API for ``app`` at ``http://127.0.0.1:<port>`` (0: any free port).

    ``faults`` is a fault hook (:mod:`flipbot_dev.paper.faults`). ``lock`` serialises every
    request with whatever else touches the exchange (the market replay). Slow answers
    wait at most ``max_delay_s``; idle keep-alive connections close after
    ``idle_timeout_s`` (a client that sends on one just as it closes gets a connection
    error, as with any server: keep it longer than the client's pauses where that must
    not happen), and all of them when the server stops. ``log`` receives one line per
    request when given; ``on_request`` is called after each request, under ``lock``.

    A request that cannot be read (``Content-Length`` not a number or above
    ``max_body_bytes``, a body shorter than announced, text that is not UTF-8, a request
    line or headers http.server refuses) is answered with Binance's error body,
    ``{"code": -1102 or -1100, "msg": ...}``, and its connection closed. An exception
    from the exchange itself is answered 500 (-1000) and kept in ``internal_errors``.
    """

    def __init__(
        self,
        app: BinanceRestApp,
        *,
        port: int = 0,
        faults: FaultHook | None = None,
        lock: threading.Lock | threading.RLock | None = None,
        max_delay_s: float = 30.0,
        idle_timeout_s: float = 5.0,
        max_body_bytes: int = 65_536,
        log: Callable[[str], None] | None = None,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.faults = faults
        self.on_request = on_request
        self.lock = lock or threading.RLock()
        self.max_delay_s = max_delay_s
        self.idle_timeout_s = idle_timeout_s
        self.max_body_bytes = max_body_bytes
        self.log = log
        self.requests = 0
        self.internal_errors: list[Exception] = []
        self._connections: set[socket.socket] = set()
        self._httpd = _Server((LOOPBACK, port), _Handler)
        self._httpd.paper = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: python-binance's ``API_URL`` is this plus ``/api``."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> PaperHttpServer:
        """Serve in a daemon thread; returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"paper-http-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting requests, end the open connections, close the listening socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        for connection in list(self._connections):
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()

    def __enter__(self) -> PaperHttpServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def http_client(
    base_url: str,
    api_key: str = "paper",
    api_secret: str = "paper-secret",
    *,
    clock: Callable[[], int] | None = None,
    timeout_s: float | None = None,
) -> Client:
    """A real python-binance ``Client`` talking HTTP to ``base_url`` (no proxies).

    ``clock`` (epoch ms) timestamps signed requests instead of the wall clock (a server
    on a virtual clock); ``timeout_s`` overrides python-binance's request timeout.
    """
    client = Client(api_key, api_secret, ping=False)
    client.API_URL = base_url.rstrip("/") + "/api"
    client.session.trust_env = False  # loopback: never through a proxy from the environment
    if clock is not None:
        client.timestamp_offset = AppClockOffset(clock)
    if timeout_s is not None:
        client.REQUEST_TIMEOUT = timeout_s
    return client


MarketListener = Callable[[MarketEvent], None]


class MarketReplayer:
    """Feeds ``data`` into ``exchange`` on the wall clock, ``speed`` times faster.

    The event recorded at ``t`` is fed at ``start + (t - data.first_ms) / speed`` with
    that time as its timestamp. Each batch is fed under ``lock``; afterwards the
    exchange's pending user-data events go to ``outbox`` (or are discarded when no one
    consumes them, so a long run does not accumulate them). ``listeners`` see every
    event as fed (with its shifted time).
    """

    def __init__(
        self,
        exchange: PaperExchange,
        data: MarketData,
        *,
        speed: float = 1.0,
        lock: threading.Lock | threading.RLock,
        clock: Callable[[], int] = wall_ms,
        outbox: Callable[[list[dict[str, Any]]], None] | None = None,
        listeners: list[MarketListener] | None = None,
        idle_s: float = 0.1,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.exchange = exchange
        self.data = data
        self.speed = speed
        self.lock = lock
        self.clock = clock
        self.outbox = outbox
        self.listeners = listeners if listeners is not None else []
        self.idle_s = idle_s
        self.fed = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_ms = 0

    def start(self) -> MarketReplayer:
        self.started_ms = self.clock()
        self._thread = threading.Thread(target=self._run, name="paper-replay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def due_ms(self, event: MarketEvent) -> int:
        """When (wall clock) ``event`` is fed, and the time it is stamped with."""
        return self.started_ms + int((event.time_ms - self.data.first_ms) / self.speed)

    def _run(self) -> None:
        events = self.data.events
        symbol = self.data.symbol
        index = 0
        while not self._stop.is_set():
            now = self.clock()
            with self.lock:
                while index < len(events) and self.due_ms(events[index]) <= now:
                    self._feed(events[index], symbol)
                    index += 1
                pending = self.exchange.drain()
            if pending and self.outbox is not None:
                self.outbox(pending)
            if index >= len(events):
                self.finished.set()
                wait = self.idle_s
            else:
                wait = min(self.idle_s, max(0.0, (self.due_ms(events[index]) - now) / 1000))
            self._stop.wait(wait)

    def _feed(self, event: MarketEvent, symbol: str) -> None:
        at = self.due_ms(event)
        if isinstance(event, TradeEvent):
            shifted: MarketEvent = TradeEvent(at, event.price, event.qty, event.is_buyer_maker)
            self.exchange.on_trade(at, event.price, event.qty, event.is_buyer_maker, symbol=symbol)
        else:
            assert isinstance(event, BookEvent)
            shifted = BookEvent(at, event.bid, event.bid_qty, event.ask, event.ask_qty)
            self.exchange.on_book(
                at, event.bid, event.bid_qty, event.ask, event.ask_qty, symbol=symbol
            )
        self.fed += 1
        for listener in self.listeners:
            listener(shifted)


@dataclass
class ExchangeConfig:
    """What ``flipbot exchange serve`` runs (see :func:`start_exchange`)."""

    data: MarketData
    port: int = 0
    speed: float = 1.0
    faults: str = "none"
    seed: int = 0
    api_key: str = "paper"
    api_secret: str = "paper-secret"
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    fill_model: FillModel = "through"
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    weight_limit: int = 6000
    ws_port: int | None = None  # None: no WebSocket server; 0: any free port
    ws_lifetime_s: float = 7 * 86_400.0  # the WebSocket server stops itself after this
    log: Callable[[str], None] | None = None


class _WsBridge:
    """Hands messages from any thread to the WebSocket server's event loop, in order."""

    def __init__(self, ws: ThreadedWsServer) -> None:
        self._loop, self._queue = ws.call(self._open)

    async def _open(self, server: BinanceWsServer) -> tuple[Any, Any]:
        import asyncio

        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._pump(server, queue))
        return asyncio.get_running_loop(), queue

    @staticmethod
    async def _pump(server: BinanceWsServer, queue: Any) -> None:
        while (item := await queue.get()) is not None:
            kind, payload = item
            if kind == "user":
                await server.push_user_event(payload)
            else:
                await server.publish(*payload)

    def _put(self, item: tuple[str, Any] | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def market(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        for message in messages:
            self._put(("market", message))

    def user(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self._put(("user", event))

    def close(self) -> None:
        self._put(None)


@dataclass
class ExchangeService:
    """A running paper exchange: HTTP server, market replay and optional WebSocket server."""

    exchange: PaperExchange
    app: BinanceRestApp
    http: PaperHttpServer
    replayer: MarketReplayer
    ws: ThreadedWsServer | None = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def ws_url(self) -> str | None:
        """``ws://127.0.0.1:<port>`` of the WebSocket server, if one runs."""
        return self.ws.server.ws_url if self.ws is not None else None

    @property
    def base_url(self) -> str:
        return self.http.base_url

    def stop(self) -> None:
        """Stop everything started, last started first."""
        for stop in reversed(self._stoppers):
            stop()
        self._stoppers.clear()

    def __enter__(self) -> ExchangeService:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_exchange(config: ExchangeConfig) -> ExchangeService:
    """Start a paper exchange replaying ``config.data`` and serving it on loopback."""
    symbol = config.data.symbol
    info = default_symbol_info(symbol)
    balances = dict(config.balances) or {info["quoteAsset"]: Decimal("1000")}
    exchange = PaperExchange(
        [info],
        clock=wall_ms,
        maker=config.maker_fee,
        taker=config.taker_fee,
        balances=balances,
        fill_model=config.fill_model,
    )
    app = BinanceRestApp(
        exchange,
        api_key=config.api_key,
        api_secret=config.api_secret,
        weight_limit=config.weight_limit,
    )
    lock = threading.RLock()
    faults = profile(config.faults).injector(config.seed, app.clock)
    http = PaperHttpServer(app, port=config.port, faults=faults, lock=lock, log=config.log)
    replayer = MarketReplayer(exchange, config.data, speed=config.speed, lock=lock)
    service = ExchangeService(exchange, app, http, replayer)
    try:
        if config.ws_port is not None:
            _mount_websocket(service, config)
        http.start()
        service._stoppers.append(http.stop)
        replayer.start()
        service._stoppers.append(replayer.stop)
    except BaseException:
        service.stop()
        raise
    return service


def _mount_websocket(service: ExchangeService, config: ExchangeConfig) -> None:
    """Serve the replayed market and the account's events on the loopback WebSocket server."""
    from flipbot_dev.paper.ws import ThreadedWsServer

    assert config.ws_port is not None
    ws = ThreadedWsServer(
        api_key=config.api_key,
        api_secret=config.api_secret,
        lifetime_s=config.ws_lifetime_s,
        clock=service.app.clock,
    ).start(config.ws_port)
    service.ws = ws
    service._stoppers.append(ws.stop)
    bridge = _WsBridge(ws)
    service._stoppers.append(bridge.close)
    builder = MarketStreamBuilder(config.data.symbol)

    def publish(event: MarketEvent) -> None:
        if isinstance(event, TradeEvent):
            bridge.market(
                builder.on_trade(event.time_ms, event.price, event.qty, event.is_buyer_maker)
            )
        else:
            assert isinstance(event, BookEvent)
            bridge.market(
                builder.on_book(event.time_ms, event.bid, event.bid_qty, event.ask, event.ask_qty)
            )

    exchange = service.exchange
    service.replayer.listeners.append(publish)
    service.replayer.outbox = bridge.user
    service.http.on_request = lambda: bridge.user(exchange.drain())


TRANSPORTS = ("inprocess", "loopback")


class ClientLink:
    """How python-binance clients reach a :class:`BinanceRestApp`: ``"inprocess"`` (the
    :class:`~flipbot_dev.paper.transport.InProcessAdapter`, no sockets) or ``"loopback"``
    (a :class:`PaperHttpServer` on 127.0.0.1, started on first use, stopped on exit).

    Either way signed requests are timestamped with the app's clock, so a virtual clock
    (the digital twin's) drives both the same way.
    """

    def __init__(self, transport: str = "inprocess", *, faults: FaultHook | None = None) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(
                f"unknown exchange transport {transport!r}: choose inprocess or loopback"
            )
        self.transport = transport
        self.faults = faults
        self.server: PaperHttpServer | None = None

    def client_factory(
        self, app: BinanceRestApp, *, faults: FaultHook | None = None
    ) -> Callable[[str, str], Client]:
        """``(api_key, api_secret) -> Client`` connected to ``app``; ``faults`` (else the
        link's) is the fault hook. Over loopback, the first call decides the server's."""
        from flipbot_dev.paper.transport import make_client

        hook = faults if faults is not None else self.faults
        if self.transport == "inprocess":
            return lambda key, secret: make_client(app, key, secret, faults=hook)
        if self.server is None:
            # Idle connections stay open (up to 10 min) so that no request of a run meets
            # a connection closing under it: that would be a fault no one asked for.
            self.server = PaperHttpServer(app, faults=hook, idle_timeout_s=600.0).start()
        url = self.server.base_url
        return lambda key, secret: http_client(url, key, secret, clock=app.clock)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> ClientLink:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
