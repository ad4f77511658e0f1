"""The listener process: two supervised streams, a publisher, a clock, a health endpoint.

Tasks of one asyncio loop:

* **user stream** - :class:`~flipbot.listener.user_stream.UserDataStream`: a WebSocket
  API connection subscribed with ``userDataStream.subscribe.signature``; every
  ``executionReport`` goes to :class:`~flipbot.listener.core.OrderStream`, which
  publishes those of the stack's symbols (and of any stack's cycle order).
* **market streams** - :class:`~flipbot.listener.market_streams.MarketStreams`: one
  combined-stream connection (trade, bookTicker, kline_1m, depth10 of each symbol),
  more when the symbols' streams pass ``MARKET_STREAMS_PER_CONNECTION``, feeding
  :class:`~flipbot.listener.core.MarketRouter`: a
  :class:`~flipbot.listener.core.MarketPipeline` per symbol, each with its own
  indicators, ``PriceTicked`` throttle and snapshot.
* **publisher** - PutEvents batches from the outbound queue, one call at a time (order
  updates stay in order), in a worker thread; a failed batch goes back to the front.
* **clock** - once a second: the throttle's time rule, the ``MarketSnapshot`` write
  (at most every ``SNAPSHOT_SECONDS``), the metrics (every ``METRICS_SECONDS``).

Each stream is a :class:`~flipbot.listener.supervised.SupervisedConnection`, which
owns the connection life cycle both share: reconnect with back-off and jitter,
silence detection, rotation before Binance's 24 h cut, the hand-over on
``serverShutdown``, ``StreamGapDetected`` after a reconnect or an incomplete
hand-over, and the user stream's ``"startup"`` gap (nobody listened before the
process). Its module docstring tells the rules; each stream's module what is
particular to it.

SIGTERM (or SIGINT): the streams close, the publisher drains the queue (order updates
first) for up to ``STOP_TIMEOUT_SECONDS`` minus a margin, and the process exits 0, or 1
if order updates were left unpublished (their client order ids are logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from flipbot.domain.model import MarketSnapshot
from flipbot.listener import health
from flipbot.listener.binance_ws import Connection, wall_ms
from flipbot.listener.core import MarketRouter, OrderStream, OutboundQueue
from flipbot.listener.market_streams import MarketStreams
from flipbot.listener.metrics import LagHistogram, LogMetrics, MetricsSink
from flipbot.listener.settings import ListenerSettings
from flipbot.listener.supervised import Backoff, StreamConfig, SupervisedConnection, describe
from flipbot.listener.user_stream import UserDataStream

log = logging.getLogger("flipbot.listener")


class Publisher(Protocol):
    """What publishes events: ``flipbot.adapters.aws.EventBridgePublisher`` in production."""

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None: ...


class MarketWriter(Protocol):
    """What stores the snapshot: ``flipbot.adapters.dynamodb.DynamoMarket`` in production."""

    def put(self, snapshot: MarketSnapshot) -> None: ...


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
        self.market = MarketRouter(
            s.symbols,
            self.queue,
            tick_bps=s.price_tick_bps,
            tick_seconds=s.price_tick_seconds,
            snapshot_seconds=s.snapshot_seconds,
            large_trade_quote=s.large_trade_quote,
            reference_symbol=s.reference_symbol,
        )
        self.orders = OrderStream(self.queue, symbol=s.symbol, symbols=s.symbols)
        self._stop = asyncio.Event()
        self.reconnect_reasons: deque[tuple[str, str]] = deque(maxlen=100)
        self.user_stream = self._supervised(UserDataStream(s, self.orders))
        #: one connection per group of streams (``MARKET_STREAMS_PER_CONNECTION``)
        self.market_streams = tuple(
            self._supervised(MarketStreams(s, self.market, group))
            for group in range(len(s.market_stream_groups()))
        )
        self.market_stream = self.market_streams[0]
        self.streams = (self.user_stream, *self.market_streams)
        # Counters, for the health body, the metrics and the tests.
        self.published: Counter[str] = Counter()
        self.publish_failures = 0
        self.snapshots_written = 0
        self.exit_code = 0
        self.health_port: int | None = None
        self.started_ms = wall_ms()
        self._reported_reconnects = 0
        self._unreported_bad = 0
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="listener-io")
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._snapshot_busy = False
        self._metrics_busy = False

    def _supervised(self, config: StreamConfig) -> SupervisedConnection:
        return SupervisedConnection(
            config,
            self.settings,
            stop=self._stop,
            gap_sink=self.orders.gap,
            history=self.reconnect_reasons,
        )

    # --- life cycle ---------------------------------------------------------------------
    def request_stop(self, why: str = "stop requested") -> None:
        if not self._stop.is_set():
            log.info("%s: stopping (draining the outbound queue)", why)
        self._stop.set()
        for stream in self.streams:
            stream.wake.set()

    @property
    def user(self) -> Connection | None:
        """The user stream's live connection (the newer one during a hand-over)."""
        return self.user_stream.conn

    @property
    def market_conn(self) -> Connection | None:
        """The first market connection (the newer one during a hand-over)."""
        return self.market_stream.conn

    @property
    def subscriptions(self) -> int:
        """User data stream subscriptions made (hand-overs included)."""
        return self.user_stream.connections

    @property
    def reconnects(self) -> int:
        """Reconnects and hand-overs of every stream."""
        return sum(stream.reconnects for stream in self.streams)

    @property
    def gaps(self) -> int:
        """``StreamGapDetected`` queued after reconnects and incomplete hand-overs."""
        return sum(stream.gaps for stream in self.streams)

    @property
    def live(self) -> bool:
        """Every stream connected (the user stream subscribed)."""
        return all(stream.live for stream in self.streams)

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
        for stream in self.streams:
            stream.down_since = loop.time()
        signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        server = await health.serve(self.health_state, s.health_host, s.health_port)
        self.health_port = int(server.sockets[0].getsockname()[1])
        log.info(
            "listener started: %s, market %s, user %s, health http://%s:%d/health",
            ",".join(s.symbols),
            " ".join(s.market_url(g) for g in range(len(self.market_streams))),
            s.ws_api_url,
            s.health_host,
            self.health_port,
        )
        publisher = asyncio.create_task(self._publish_loop(), name="publisher")
        workers = [
            asyncio.create_task(
                self._guard(stream.run(self.started_ms)), name=f"{stream.name}-stream"
            )
            for stream in self.streams
        ]
        workers.append(asyncio.create_task(self._guard(self._clock_loop()), name="clock"))
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
        now = asyncio.get_running_loop().time()
        user_ok, user = self.user_stream.health(now)
        markets = [stream.health(now) for stream in self.market_streams]
        market_ok = all(ok for ok, _ in markets)
        healthy = user_ok and market_ok and not self._stop.is_set()
        body: dict[str, Any] = {}
        if len(markets) > 1:
            body["market_connections"] = [each for _, each in markets]
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "user": user,
            "market": markets[0][1],
            **body,
            "queue": {
                "pending": len(self.queue),
                "order_updates": self.queue.critical_pending,
                "dropped_ticks": self.queue.dropped,
            },
            "published": sum(self.published.values()),
            "reconnects": self.reconnects,
            "gaps": self.gaps,
        }

    # --- publishing, snapshots, metrics -------------------------------------------------
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
                    describe(exc),
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
            snapshots = self.market.poll(wall_ms())
            if snapshots and self.market_writer is not None and not self._snapshot_busy:
                self._spawn(self._write_snapshots(snapshots))
            if loop.time() >= next_metrics:
                next_metrics = loop.time() + s.metrics_seconds
                if not self._metrics_busy:
                    self._spawn(self._flush_metrics())

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _write_snapshots(self, snapshots: list[MarketSnapshot]) -> None:
        writer = self.market_writer
        if writer is None:
            return
        self._snapshot_busy = True
        loop = asyncio.get_running_loop()
        try:
            for snapshot in snapshots:  # one item per symbol
                try:
                    await loop.run_in_executor(self._executor, writer.put, snapshot)
                    self.snapshots_written += 1
                except Exception as exc:
                    log.warning(
                        "market snapshot of %s not written: %s", snapshot.symbol, describe(exc)
                    )
        finally:
            self._snapshot_busy = False

    async def _flush_metrics(self) -> None:
        self._metrics_busy = True
        healthy, _ = self.health_state()
        lag = LagHistogram()
        lag.merge(self.market.lag.take())
        lag.merge(self.orders.lag.take())
        total = self.reconnects
        reconnects, self._reported_reconnects = total - self._reported_reconnects, total
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
            self._reported_reconnects -= reconnects
            self._unreported_bad += bad
            log.warning("metrics not sent: %s", describe(exc))
        finally:
            self._metrics_busy = False
