"""The listener process: two supervised streams, a publisher, a clock, a health endpoint.

Tasks of one asyncio loop:

* **user stream** - a WebSocket API connection subscribed with
  ``userDataStream.subscribe.signature``. Every ``executionReport`` goes to
  :class:`~flipbot.listener.core.OrderStream`, which publishes those of the symbol. When
  nothing arrived for ``USER_PROBE_SECONDS`` it asks ``session.subscriptions`` (the
  answer proves the connection is alive, and that the subscription still exists);
  nothing at all for ``USER_SILENCE_SECONDS`` means a silent stream.
* **market stream** - one combined-stream connection (trade, bookTicker, kline_1m,
  depth10) feeding :class:`~flipbot.listener.core.MarketPipeline`; silent after
  ``MARKET_SILENCE_SECONDS`` without a message.
* **publisher** - PutEvents batches from the outbound queue, one call at a time (order
  updates stay in order), in a worker thread; a failed batch goes back to the front.
* **clock** - once a second: the throttle's time rule, the ``MarketSnapshot`` write
  (at most every ``SNAPSHOT_SECONDS``), the metrics (every ``METRICS_SECONDS``).

Connection life cycle (both streams). A connection that closes, goes silent, loses
its subscription or receives ``eventStreamTerminated`` is dropped; the stream
reconnects with exponential back-off and jitter, subscribes again, and then queues a
``StreamGapDetected`` whose window bounds the event time of anything the gap may have
hidden: ``since_ms`` is the earlier of the last message received and the last event's
time ``E`` on the lost connection, ``until_ms`` the moment the new subscription was
confirmed, each widened by ``GAP_MARGIN_MS`` for clock skew. Reconcile recovers any
fill in between. The listener also queues one at start-up (``reason="startup"``,
since the process start): nobody listened before it.

Before Binance's 24 h cut (``MAX_CONNECTION_AGE_SECONDS``) and on ``serverShutdown``
the stream hands over without a gap: a new connection subscribes first, its events are
held back, the old subscription is unsubscribed (everything it delivered before the
confirmation has been processed by then), the old connection closes, and the held
events are released; reports delivered on both connections are published once.
Binance closes a connection shortly after its ``serverShutdown``: a hand-over that
finds the old connection already closed before the new one was subscribed (market: open)
queues a ``StreamGapDetected`` from the last message on the old connection, with the
reason ``"serverShutdown: hand-over incomplete"``.

SIGTERM (or SIGINT): the streams close, the publisher drains the queue (order updates
first) for up to ``STOP_TIMEOUT_SECONDS`` minus a margin, and the process exits 0, or 1
if order updates were left unpublished (their client order ids are logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

from websockets.exceptions import WebSocketException

from flipbot.domain.model import MarketSnapshot
from flipbot.listener import health
from flipbot.listener.binance_ws import (
    Connection,
    WsApiError,
    open_socket,
    subscribe_signature_params,
    wall_ms,
)
from flipbot.listener.core import SHUTDOWN, MarketPipeline, OrderStream, OutboundQueue
from flipbot.listener.metrics import LagHistogram, LogMetrics, MetricsSink
from flipbot.listener.settings import ListenerSettings

log = logging.getLogger("flipbot.listener")

Stream = Literal["user", "market"]
_CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException, WsApiError, ConnectionError)
_HANDOVER = ("rotate", SHUTDOWN)
#: Widening of a gap's window on both sides, for clock skew between Binance and the task.
GAP_MARGIN_MS = 1000


class Publisher(Protocol):
    """What publishes events: ``flipbot.adapters.aws.EventBridgePublisher`` in production."""

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...


class MarketWriter(Protocol):
    """What stores the snapshot: ``flipbot.adapters.dynamodb.DynamoMarket`` in production."""

    def put(self, snapshot: MarketSnapshot) -> None: ...


class Backoff:
    """Exponential back-off, "equal jitter": a delay in ``[d/2, d]``, ``d`` doubling to ``cap``."""

    def __init__(
        self, base: float, cap: float, *, rng: Callable[[], float] = random.random
    ) -> None:
        self.base = base
        self.cap = max(cap, base)
        self.attempt = 0
        self._rng = rng

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt = min(self.attempt + 1, 32)
        return float(ceiling / 2 + self._rng() * ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` seconds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(timeout, 0))


def _describe(exc: BaseException) -> str:
    text = str(exc)[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Listener:
    """The whole process; :meth:`run` returns the exit status."""

    def __init__(
        self,
        settings: ListenerSettings,
        *,
        publisher: Publisher,
        market_writer: MarketWriter | None = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        s = settings
        self.settings = s
        self.publisher = publisher
        self.market_writer = market_writer
        self.metrics: MetricsSink = metrics or LogMetrics()
        self._publisher_wake = asyncio.Event()
        self.queue = OutboundQueue(s.queue_capacity, notify=self._publisher_wake.set)
        self.market = MarketPipeline(
            s.symbol,
            self.queue,
            tick_bps=s.price_tick_bps,
            tick_seconds=s.price_tick_seconds,
            snapshot_seconds=s.snapshot_seconds,
            large_trade_quote=s.large_trade_quote,
        )
        self.orders = OrderStream(self.queue, symbol=s.symbol)
        self.user: Connection | None = None
        self.market_conn: Connection | None = None
        # Counters, for the health body, the metrics and the tests.
        self.published: Counter[str] = Counter()
        self.publish_failures = 0
        self.subscriptions = 0
        self.reconnects = 0
        self.reconnect_reasons: deque[tuple[str, str]] = deque(maxlen=100)
        self.gaps = 0
        self.snapshots_written = 0
        self.exit_code = 0
        self.health_port: int | None = None
        self.started_ms = wall_ms()
        self._unreported_reconnects = 0
        self._unreported_bad = 0
        self._stop = asyncio.Event()
        self._user_wake = asyncio.Event()
        self._market_wake = asyncio.Event()
        self._user_down_since = 0.0
        self._market_down_since = 0.0
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="listener-io")
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._snapshot_busy = False
        self._metrics_busy = False

    # --- life cycle ---------------------------------------------------------------------
    def request_stop(self, why: str = "stop requested") -> None:
        if not self._stop.is_set():
            log.info("%s: stopping (draining the outbound queue)", why)
        self._stop.set()
        self._user_wake.set()
        self._market_wake.set()

    @property
    def live(self) -> bool:
        """Both streams connected (the user stream subscribed)."""
        user, market = self.user, self.market_conn
        return (
            user is not None
            and not user.ended.done()
            and market is not None
            and not market.ended.done()
        )

    async def wait_live(self, timeout: float) -> None:
        """Wait until :attr:`live` (tests and the first log line); ``TimeoutError`` otherwise."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.live:
            if loop.time() >= deadline:
                raise TimeoutError("the listener did not connect both streams in time")
            await asyncio.sleep(0.01)

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`), drain, return the exit status."""
        loop = asyncio.get_running_loop()
        s = self.settings
        self.started_ms = wall_ms()
        self._user_down_since = self._market_down_since = loop.time()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        server = await health.serve(self.health_state, s.health_host, s.health_port)
        self.health_port = int(server.sockets[0].getsockname()[1])
        log.info(
            "listener started: %s, market %s, user %s, health http://%s:%d/health",
            s.symbol,
            s.market_url(),
            s.ws_api_url,
            s.health_host,
            self.health_port,
        )
        publisher = asyncio.create_task(self._publish_loop(), name="publisher")
        workers = [
            asyncio.create_task(self._guard(self._user_loop()), name="user-stream"),
            asyncio.create_task(self._guard(self._market_loop()), name="market-stream"),
            asyncio.create_task(self._guard(self._clock_loop()), name="clock"),
        ]
        try:
            await self._stop.wait()
        finally:
            deadline = loop.time() + s.drain_seconds
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._drain(deadline)
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            for task in list(self._side_tasks):
                task.cancel()
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 1)
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._executor.shutdown(wait=False, cancel_futures=True)
        return self._final_status()

    async def _guard(self, work: Any) -> None:
        """Run a worker; an unexpected error stops the process (ECS starts a new task)."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("listener task failed; stopping")
            self.exit_code = 1
            self.request_stop("task failure")

    async def _drain(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        pending = len(self.queue)
        while (len(self.queue) or self._in_flight) and loop.time() < deadline:
            self._publisher_wake.set()
            await asyncio.sleep(0.005)
        log.info(
            "drained: %d of %d queued events published or in flight; %d left",
            pending - len(self.queue),
            pending,
            len(self.queue),
        )

    def _final_status(self) -> int:
        left = self.queue.critical_items()
        if left:
            ids = [str(item.detail.get("client_order_id", item.detail_type)) for item in left]
            log.error(
                "exiting with %d order/gap event(s) unpublished (reconcile will repair): %s",
                len(left),
                ", ".join(ids[:50]),
            )
            return 1
        log.info(
            "stopped: published %s; %d PriceTicked dropped",
            dict(self.published),
            self.queue.dropped,
        )
        return self.exit_code

    # --- health -------------------------------------------------------------------------
    def health_state(self) -> tuple[bool, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        now = loop.time()
        max_gap = self.settings.health_max_gap_seconds

        def stream(conn: Connection | None, down_since: float) -> tuple[bool, dict[str, Any]]:
            live = conn is not None and not conn.ended.done()
            body: dict[str, Any] = {"live": live}
            if conn is not None and live:
                body["last_message_age_s"] = round(now - conn.last_rx, 3)
                body["connection_age_s"] = round(now - conn.opened, 1)
            else:
                body["down_for_s"] = round(now - down_since, 1)
            return live or now - down_since < max_gap, body

        user_ok, user = stream(self.user, self._user_down_since)
        market_ok, market = stream(self.market_conn, self._market_down_since)
        healthy = user_ok and market_ok and not self._stop.is_set()
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "user": user,
            "market": market,
            "queue": {
                "pending": len(self.queue),
                "order_updates": self.queue.critical_pending,
                "dropped_ticks": self.queue.dropped,
            },
            "published": sum(self.published.values()),
            "reconnects": self.reconnects,
            "gaps": self.gaps,
        }

    # --- user data stream ---------------------------------------------------------------
    def _on_user_message(self, conn: Connection, text: str, recv_ms: int) -> None:
        message = self.orders.read(text, recv_ms)  # None: unreadable, counted, a gap
        if message is None:
            return
        if "id" in message and ("status" in message or "result" in message or "error" in message):
            conn.resolve(message)
            return
        event = message.get("event")
        if not isinstance(event, dict):
            event = message
        kind = event.get("e")
        event_ms = event.get("E")
        if isinstance(event_ms, int):
            conn.last_event_ms = event_ms
        if kind == "executionReport":
            if conn.held is not None:
                conn.held.append((message, recv_ms))
            else:
                self.orders.on_execution_report(message, recv_ms)
        elif kind == "eventStreamTerminated":
            ours = message.get("subscriptionId") in (None, conn.subscription_id)
            if ours and not conn.retiring:
                conn.end("eventStreamTerminated")
        elif kind == SHUTDOWN:
            conn.signal(SHUTDOWN)

    async def _open_user(self, *, hold: bool = False) -> Connection:
        s = self.settings
        ws = await open_socket(s.ws_api_url, open_timeout=s.request_timeout_seconds)
        conn = Connection(ws, "user", self._on_user_message, self._user_wake)
        if hold:
            conn.held = []
        try:
            params = subscribe_signature_params(
                s.api_key.get_secret_value(),
                s.api_secret.get_secret_value(),
                timestamp_ms=wall_ms(),
                recv_window_ms=s.recv_window_ms,
            )
            result = await conn.request(
                "userDataStream.subscribe.signature", params, timeout=s.request_timeout_seconds
            )
        except BaseException:
            await conn.close("subscribe failed", abort=True)
            raise
        conn.subscription_id = int((result or {}).get("subscriptionId", 0))
        conn.subscribed_ms = conn.last_event_ms = wall_ms()
        self.subscriptions += 1
        log.info("user data stream subscribed (subscriptionId %s)", conn.subscription_id)
        return conn

    async def _probe(self, conn: Connection) -> None:
        try:
            result = await conn.request(
                "session.subscriptions", timeout=self.settings.request_timeout_seconds
            )
        except WsApiError as exc:  # it answered: the connection is alive
            log.debug("user stream probe refused: %s", exc)
            return
        except (TimeoutError, ConnectionError, WebSocketException):
            return  # silence detection decides
        if isinstance(result, list):
            ids = {item.get("subscriptionId") for item in result if isinstance(item, dict)}
            if conn.subscription_id not in ids:
                conn.end("subscription lost")

    async def _watch_user(self, conn: Connection) -> str:
        """Wait until ``conn`` needs attention; return why."""
        loop = asyncio.get_running_loop()
        s = self.settings
        last_probe = loop.time()
        probe: asyncio.Task[None] | None = None
        try:
            while True:
                if self._stop.is_set():
                    return "stop"
                if conn.ended.done():
                    return conn.ended.result()
                if conn.notice:
                    return conn.notice
                now = loop.time()
                age = now - conn.opened
                quiet = now - conn.last_rx
                if age >= s.max_connection_age_seconds:
                    return "rotate"
                if quiet >= s.user_silence_seconds:
                    return "silent"
                since_probe = now - max(last_probe, conn.last_rx)
                if since_probe >= s.user_probe_seconds and (probe is None or probe.done()):
                    last_probe = now
                    since_probe = 0
                    probe = asyncio.create_task(self._probe(conn))
                timeout = min(
                    s.max_connection_age_seconds - age,
                    s.user_silence_seconds - quiet,
                    s.user_probe_seconds - since_probe,
                    1.0,
                )
                self._user_wake.clear()
                await _wait(self._user_wake, timeout)
        finally:
            if probe is not None:
                probe.cancel()

    async def _handover_user(self, old: Connection, reason: str) -> Connection | None:
        """Subscribe anew, retire ``old`` without a gap; ``None`` if the new one failed."""
        s = self.settings
        log.info("user stream: %s; subscribing on a new connection before leaving the old", reason)
        try:
            new = await self._open_user(hold=True)
        except _CONNECT_ERRORS as exc:
            log.warning("user stream hand-over failed (%s); reconnecting", _describe(exc))
            return None
        complete = not old.ended.done()
        try:
            if complete:
                old.retiring = True
                await old.request(
                    "userDataStream.unsubscribe",
                    {"subscriptionId": old.subscription_id},
                    timeout=s.handover_timeout_seconds,
                )
        except _CONNECT_ERRORS as exc:
            log.warning("user stream: old subscription not confirmed (%s)", _describe(exc))
            complete = False
        except BaseException:  # stopping in the middle: leave nothing open
            await new.close("stopping", abort=True)
            raise
        await old.close(f"handed over ({reason})")
        held, new.held = new.held or [], None
        for message, recv_ms in held:
            self.orders.on_execution_report(message, recv_ms)
        if not complete:
            since = min(old.last_rx_ms, old.last_event_ms)
            self._gap("user", f"{reason}: hand-over incomplete", since, new.subscribed_ms)
        return new

    async def _user_loop(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        backoff = Backoff(s.reconnect_base_seconds, s.reconnect_max_seconds)
        conn: Connection | None = None
        lost_ms, reason = self.started_ms, "startup"
        try:
            while not self._stop.is_set():
                if conn is None:
                    try:
                        conn = await self._open_user()
                    except _CONNECT_ERRORS as exc:
                        delay = backoff.next()
                        log.warning(
                            "user data stream: %s; retrying in %.2fs", _describe(exc), delay
                        )
                        await _wait(self._stop, delay)
                        continue
                    self.user = conn
                    self._gap("user", reason, lost_ms, conn.subscribed_ms)
                reason = await self._watch_user(conn)
                if reason == "stop":
                    break
                if reason in _HANDOVER:
                    new = await self._handover_user(conn, reason)
                    if new is not None:
                        conn = self.user = new
                        self._count_reconnect("user", reason)
                        continue
                if loop.time() - conn.opened >= max(1.0, s.reconnect_max_seconds):
                    backoff.reset()
                lost_ms = min(conn.last_rx_ms, conn.last_event_ms)
                self.user = None
                self._user_down_since = loop.time()
                await conn.close(reason, abort=True)
                conn = None
                self._count_reconnect("user", reason)
                delay = backoff.next()
                log.warning("user data stream lost (%s); reconnecting in %.2fs", reason, delay)
                await _wait(self._stop, delay)
        finally:
            self.user = None
            if conn is not None:
                await conn.close("stopping", abort=True)

    # --- market streams -----------------------------------------------------------------
    def _on_market_message(self, conn: Connection, text: str, recv_ms: int) -> None:
        if self.market.feed(text, recv_ms) == SHUTDOWN:
            conn.signal(SHUTDOWN)

    async def _open_market(self) -> Connection:
        s = self.settings
        ws = await open_socket(s.market_url(), open_timeout=s.request_timeout_seconds)
        return Connection(ws, "market", self._on_market_message, self._market_wake)

    async def _watch_market(self, conn: Connection) -> str:
        loop = asyncio.get_running_loop()
        s = self.settings
        while True:
            if self._stop.is_set():
                return "stop"
            if conn.ended.done():
                return conn.ended.result()
            if conn.notice:
                return conn.notice
            now = loop.time()
            age, quiet = now - conn.opened, now - conn.last_rx
            if age >= s.max_connection_age_seconds:
                return "rotate"
            if quiet >= s.market_silence_seconds:
                return "silent"
            self._market_wake.clear()
            timeout = min(s.max_connection_age_seconds - age, s.market_silence_seconds - quiet, 1.0)
            await _wait(self._market_wake, timeout)

    async def _handover_market(self, old: Connection, reason: str) -> Connection | None:
        """Connect anew and close ``old`` once the new one delivers (ids drop the overlap).

        When ``old`` was closed before the new connection was open (the server's grace
        after ``serverShutdown`` ran out first), the two never overlapped: a gap.
        """
        loop = asyncio.get_running_loop()
        log.info("market streams: %s; connecting anew before leaving the old connection", reason)
        try:
            new = await self._open_market()
        except _CONNECT_ERRORS as exc:
            log.warning("market hand-over failed (%s); reconnecting", _describe(exc))
            return None
        if old.ended.done():
            self.market.reset_sequence()
            self._gap("market", f"{reason}: hand-over incomplete", old.last_rx_ms, new.opened_ms)
        deadline = loop.time() + self.settings.handover_timeout_seconds
        try:
            while not new.messages and not new.ended.done() and loop.time() < deadline:
                await asyncio.sleep(0.01)
        except BaseException:  # stopping in the middle: leave nothing open
            await new.close("stopping", abort=True)
            raise
        await old.close(f"handed over ({reason})")
        return new

    async def _market_loop(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        backoff = Backoff(s.reconnect_base_seconds, s.reconnect_max_seconds)
        conn: Connection | None = None
        lost_ms: int | None = None
        reason = ""
        try:
            while not self._stop.is_set():
                if conn is None:
                    try:
                        conn = await self._open_market()
                    except _CONNECT_ERRORS as exc:
                        delay = backoff.next()
                        log.warning("market streams: %s; retrying in %.2fs", _describe(exc), delay)
                        await _wait(self._stop, delay)
                        continue
                    self.market_conn = conn
                    log.info("market streams connected: %s", ", ".join(s.market_streams()))
                    if lost_ms is not None:
                        self.market.reset_sequence()
                        self._gap("market", reason, lost_ms, conn.opened_ms)
                reason = await self._watch_market(conn)
                if reason == "stop":
                    break
                if reason in _HANDOVER:
                    new = await self._handover_market(conn, reason)
                    if new is not None:
                        conn = self.market_conn = new
                        self._count_reconnect("market", reason)
                        continue
                if loop.time() - conn.opened >= max(1.0, s.reconnect_max_seconds):
                    backoff.reset()
                lost_ms = conn.last_rx_ms
                self.market_conn = None
                self._market_down_since = loop.time()
                await conn.close(reason, abort=True)
                conn = None
                self._count_reconnect("market", reason)
                delay = backoff.next()
                log.warning("market streams lost (%s); reconnecting in %.2fs", reason, delay)
                await _wait(self._stop, delay)
        finally:
            self.market_conn = None
            if conn is not None:
                await conn.close("stopping", abort=True)

    # --- publishing, snapshots, metrics -------------------------------------------------
    def _gap(self, stream: Stream, reason: str, since_ms: int, until_ms: int) -> None:
        since_ms -= GAP_MARGIN_MS
        until_ms += GAP_MARGIN_MS
        self.gaps += 1
        self.orders.gap(stream, reason, since_ms, until_ms)
        log.warning(
            "%s stream gap %d..%d (%.1fs, %s): StreamGapDetected queued",
            stream,
            since_ms,
            until_ms,
            (until_ms - since_ms) / 1000,
            reason,
        )

    def _count_reconnect(self, stream: str, reason: str) -> None:
        self.reconnects += 1
        self._unreported_reconnects += 1
        self.reconnect_reasons.append((stream, reason))

    async def _publish_loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff(0.2, 5.0)
        while True:
            batch = self.queue.next_batch()
            if not batch:
                self._publisher_wake.clear()
                await self._publisher_wake.wait()
                continue
            items = [(item.detail_type, item.detail) for item in batch]
            self._in_flight = len(batch)
            try:
                await loop.run_in_executor(self._executor, self.publisher.publish_many, items)
            except asyncio.CancelledError:
                self.queue.requeue(batch)
                raise
            except Exception as exc:
                self.publish_failures += 1
                self.queue.requeue(batch)
                delay = backoff.next()
                log.warning(
                    "PutEvents failed (%s); %d event(s) back in the queue, retry in %.2fs",
                    _describe(exc),
                    len(batch),
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            finally:
                self._in_flight = 0
            backoff.reset()
            self.published.update(item.detail_type for item in batch)

    async def _clock_loop(self) -> None:
        loop = asyncio.get_running_loop()
        s = self.settings
        interval = min(1.0, s.price_tick_seconds / 2, s.snapshot_seconds / 2, s.metrics_seconds)
        next_metrics = loop.time() + s.metrics_seconds
        while True:
            await asyncio.sleep(interval)
            snapshot = self.market.poll(wall_ms())
            if snapshot is not None and self.market_writer is not None and not self._snapshot_busy:
                self._spawn(self._write_snapshot(snapshot))
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + s.metrics_seconds
                if not self._metrics_busy:
                    self._spawn(self._flush_metrics())

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _write_snapshot(self, snapshot: MarketSnapshot) -> None:
        writer = self.market_writer
        if writer is None:
            return
        self._snapshot_busy = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, writer.put, snapshot)
            self.snapshots_written += 1
        except Exception as exc:
            log.warning("market snapshot not written: %s", _describe(exc))
        finally:
            self._snapshot_busy = False

    async def _flush_metrics(self) -> None:
        self._metrics_busy = True
        healthy, _ = self.health_state()
        lag = LagHistogram()
        lag.merge(self.market.lag.take())
        lag.merge(self.orders.lag.take())
        reconnects, self._unreported_reconnects = self._unreported_reconnects, 0
        bad = self._unreported_bad + self.market.take_bad() + self.orders.take_bad()
        self._unreported_bad = 0
        counts = lag.take()
        heartbeat = 1 if healthy and self.live else 0

        def put() -> None:
            self.metrics.put(
                heartbeat=heartbeat, reconnects=reconnects, lag_ms=counts, bad_messages=bad
            )

        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, put)
        except Exception as exc:
            self._unreported_reconnects += reconnects
            self._unreported_bad += bad
            log.warning("metrics not sent: %s", _describe(exc))
        finally:
            self._metrics_busy = False
