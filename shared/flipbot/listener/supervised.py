"""One supervised Binance connection: what the user stream and the market streams share.

A :class:`SupervisedConnection` keeps one live :class:`~flipbot.listener.binance_ws.Connection`
of one stream, configured by a :class:`StreamConfig` (what to connect to and subscribe,
how to read a frame, how the stream takes over from an older connection, what a gap
means to it). :meth:`SupervisedConnection.run` is the stream's task:

* **connect** - open the socket, subscribe (the configuration's step), and on failure
  retry with exponential back-off and jitter (:class:`Backoff`); the back-off starts
  over once a connection lived ``max(1 s, RECONNECT_MAX_SECONDS)``.
* **watch** - a connection is dropped when it closes, when nothing arrived for the
  stream's ``silence_seconds``, or when the configuration ends it (a lost subscription,
  an ``eventStreamTerminated``). A stream with ``probe_seconds`` asks the server whether
  it is still there after that long without a message.
* **report gaps** - after a dropped connection the stream reconnects, subscribes again,
  and queues a ``StreamGapDetected`` whose window bounds the event time of anything the
  gap may have hidden: ``since_ms`` is the earlier of the last message received and the
  last event time ``E`` the stream recorded on the lost connection, ``until_ms`` the
  moment the new connection was subscribed, each widened by :data:`GAP_MARGIN_MS` for
  clock skew. A stream that ``reports_startup`` queues one at its first connection too
  (``reason="startup"``, since the process start): nobody listened before it.
* **hand over** - before Binance's 24 h cut (``MAX_CONNECTION_AGE_SECONDS``, reason
  ``"rotate"``) and on a notice from the server (``serverShutdown``) the stream opens and
  subscribes a new connection first, lets the configuration retire the old one, waits
  (at most ``HANDOVER_TIMEOUT_SECONDS``) until the new one delivers, closes the old one
  and releases what the configuration held back. Binance closes a connection shortly
  after its ``serverShutdown``: a hand-over that finds the old connection already
  closed once the new one is subscribed, or whose old subscription could not be retired,
  queues a ``StreamGapDetected`` with the reason ``"<reason>: hand-over incomplete"``
  from the last message on the old connection. A hand-over whose new connection fails
  falls back to a reconnect.
* **count** - connections made, reconnects (each hand-over and each dropped connection,
  with its reason in the process-wide ``history``), gaps.
* **stop** - when ``stop`` is set the task returns, closing what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from websockets.exceptions import WebSocketException

from flipbot.listener.binance_ws import Connection, WsApiError, open_socket
from flipbot.listener.settings import ListenerSettings

log = logging.getLogger("flipbot.listener")

StreamName = Literal["user", "market"]
GapSink = Callable[[StreamName, str, int, int], None]

CONNECT_ERRORS = (OSError, TimeoutError, WebSocketException, WsApiError, ConnectionError)
"""What a failed connect, subscribe or request raises: retried, never fatal."""
GAP_MARGIN_MS = 1000
"""Widening of a gap's window on both sides, for clock skew between Binance and the task."""
ROTATE = "rotate"
"""The reason of a hand-over before Binance's 24 h cut."""


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


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` seconds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), max(timeout, 0))


def describe(exc: BaseException) -> str:
    """An exception for a log line: its type and the start of its message."""
    text = str(exc)[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class StreamConfig:
    """What one stream configures of its :class:`SupervisedConnection`.

    A subclass names the stream, says where it connects (:attr:`url`), how a new
    connection subscribes (:meth:`subscribe`) and how a frame is read
    (:meth:`on_message`, on the hot path). The defaults here are those of a stream that
    needs nothing more; a subclass overrides what differs for it.
    """

    name: StreamName
    label: str
    """How the logs call the stream."""
    url: str
    """Where a connection of the stream connects."""
    silence_seconds: float
    """Without a message for this long, the connection is dropped as silent."""
    probe_seconds: float | None = None
    """Without a message for this long, :meth:`probe` asks the server (``None``: never)."""
    reports_startup = False
    """Queue a gap at the first connection: what happened before it matters."""

    def on_message(self, conn: Connection, text: str, recv_ms: int) -> None:
        """One frame of ``conn``, received at ``recv_ms`` (the connection's reader calls it)."""
        raise NotImplementedError

    async def subscribe(self, conn: Connection, *, handover: bool) -> None:
        """Subscribe a new connection; set ``conn.subscribed_ms``. ``handover``: it takes
        over from an older connection (hold back what must not overtake that one's)."""
        raise NotImplementedError

    async def probe(self, conn: Connection) -> None:
        """Ask whether ``conn`` still delivers; end it if the answer says it does not."""

    async def retire(self, old: Connection) -> bool:
        """Let go of the subscription of a connection being handed over, while it is still
        open; ``False`` when that was not confirmed (the hand-over may have lost events)."""
        return True

    def release(self, new: Connection) -> None:
        """The old connection is closed: deliver what :meth:`subscribe` held back on ``new``."""

    def on_gap(self) -> None:
        """A gap is being reported: forget what assumed an unbroken stream."""


class SupervisedConnection:
    """One stream's connection, kept alive by :meth:`run` (see the module docstring)."""

    def __init__(
        self,
        config: StreamConfig,
        settings: ListenerSettings,
        *,
        stop: asyncio.Event,
        gap_sink: GapSink,
        history: deque[tuple[str, str]],
    ) -> None:
        """``gap_sink(stream, reason, since_ms, until_ms)`` queues a ``StreamGapDetected``;
        ``history`` (a bounded deque) receives ``(stream, reason)`` of every reconnect."""
        self.config = config
        self.name: StreamName = config.name
        self.settings = settings
        self.conn: Connection | None = None
        self.wake = asyncio.Event()
        self.down_since = 0.0
        self.connections = 0
        self.reconnects = 0
        self.gaps = 0
        self._stop = stop
        self._gap_sink = gap_sink
        self._history = history

    @property
    def live(self) -> bool:
        conn = self.conn
        return conn is not None and not conn.ended.done()

    def health(self, now: float) -> tuple[bool, dict[str, Any]]:
        """``(ok, body)``: ok while live or lost less than ``HEALTH_MAX_GAP_SECONDS`` ago."""
        conn, live = self.conn, self.live
        body: dict[str, Any] = {"live": live}
        if conn is not None and live:
            body["last_message_age_s"] = round(now - conn.last_rx, 3)
            body["connection_age_s"] = round(now - conn.opened, 1)
        else:
            body["down_for_s"] = round(now - self.down_since, 1)
        return live or now - self.down_since < self.settings.health_max_gap_seconds, body

    async def connect(self, *, handover: bool = False) -> Connection:
        """Open a connection and subscribe it; closed again if subscribing fails."""
        config = self.config
        s = self.settings
        ws = await open_socket(config.url, open_timeout=s.request_timeout_seconds)
        conn = Connection(ws, self.name, config.on_message, self.wake)
        try:
            await config.subscribe(conn, handover=handover)
        except BaseException:
            await conn.close("subscribe failed", abort=True)
            raise
        self.connections += 1
        return conn

    async def run(self, started_ms: int) -> None:
        """Connect, watch, hand over or reconnect until ``stop``; ``started_ms``: the
        process start (a startup gap's beginning)."""
        loop = asyncio.get_running_loop()
        s = self.settings
        label = self.config.label
        backoff = Backoff(s.reconnect_base_seconds, s.reconnect_max_seconds)
        conn: Connection | None = None
        lost_ms: int | None = started_ms if self.config.reports_startup else None
        reason = "startup"
        try:
            while not self._stop.is_set():
                if conn is None:
                    try:
                        conn = await self.connect()
                    except CONNECT_ERRORS as exc:
                        delay = backoff.next()
                        log.warning("%s: %s; retrying in %.2fs", label, describe(exc), delay)
                        await wait_event(self._stop, delay)
                        continue
                    self.conn = conn
                    if lost_ms is not None:
                        self._gap(reason, lost_ms, conn.subscribed_ms)
                reason = await self._watch(conn)
                if reason == "stop":
                    break
                if reason in (ROTATE, conn.notice):
                    new = await self._hand_over(conn, reason)
                    if new is not None:
                        conn = self.conn = new
                        self._count_reconnect(reason)
                        continue
                if loop.time() - conn.opened >= max(1.0, s.reconnect_max_seconds):
                    backoff.reset()
                lost_ms = self._lost_ms(conn)
                self.conn = None
                self.down_since = loop.time()
                await conn.close(reason, abort=True)
                conn = None
                self._count_reconnect(reason)
                delay = backoff.next()
                log.warning("%s lost (%s); reconnecting in %.2fs", label, reason, delay)
                await wait_event(self._stop, delay)
        finally:
            self.conn = None
            if conn is not None:
                await conn.close("stopping", abort=True)

    async def _watch(self, conn: Connection) -> str:
        """Wait until ``conn`` needs attention; return why."""
        loop = asyncio.get_running_loop()
        config = self.config
        max_age = self.settings.max_connection_age_seconds
        silence, probe_every = config.silence_seconds, config.probe_seconds
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
                age, quiet = now - conn.opened, now - conn.last_rx
                if age >= max_age:
                    return ROTATE
                if quiet >= silence:
                    return "silent"
                timeout = min(max_age - age, silence - quiet, 1.0)
                if probe_every is not None:
                    since_probe = now - max(last_probe, conn.last_rx)
                    if since_probe >= probe_every and (probe is None or probe.done()):
                        last_probe = now
                        since_probe = 0
                        probe = asyncio.create_task(config.probe(conn))
                    timeout = min(timeout, probe_every - since_probe)
                self.wake.clear()
                await wait_event(self.wake, timeout)
        finally:
            if probe is not None:
                probe.cancel()

    async def _hand_over(self, old: Connection, reason: str) -> Connection | None:
        """Subscribe a new connection, then let ``old`` go; ``None`` if the new one failed."""
        loop = asyncio.get_running_loop()
        label = self.config.label
        log.info("%s: %s; subscribing on a new connection before leaving the old", label, reason)
        try:
            new = await self.connect(handover=True)
        except CONNECT_ERRORS as exc:
            log.warning("%s hand-over failed (%s); reconnecting", label, describe(exc))
            return None
        incomplete = f"{reason}: hand-over incomplete"
        retired = True
        try:
            if old.ended.done():  # the server closed it first: the two never overlapped
                self._gap(incomplete, self._lost_ms(old), new.subscribed_ms)
            else:
                retired = await self.config.retire(old)
            deadline = loop.time() + self.settings.handover_timeout_seconds
            while not new.messages and not new.ended.done() and loop.time() < deadline:
                await asyncio.sleep(0.01)
        except BaseException:  # stopping in the middle: leave nothing open
            await new.close("stopping", abort=True)
            raise
        await old.close(f"handed over ({reason})")
        self.config.release(new)
        if not retired:
            self._gap(incomplete, self._lost_ms(old), new.subscribed_ms)
        return new

    @staticmethod
    def _lost_ms(conn: Connection) -> int:
        """Where a gap after ``conn`` starts: its last message, or the last event time the
        stream recorded on it when that is earlier."""
        if conn.last_event_ms:
            return min(conn.last_rx_ms, conn.last_event_ms)
        return conn.last_rx_ms

    def _gap(self, reason: str, since_ms: int, until_ms: int) -> None:
        since_ms -= GAP_MARGIN_MS
        until_ms += GAP_MARGIN_MS
        self.gaps += 1
        self.config.on_gap()
        self._gap_sink(self.name, reason, since_ms, until_ms)
        log.warning(
            "%s stream gap %d..%d (%.1fs, %s): StreamGapDetected queued",
            self.name,
            since_ms,
            until_ms,
            (until_ms - since_ms) / 1000,
            reason,
        )

    def _count_reconnect(self, reason: str) -> None:
        self.reconnects += 1
        self._history.append((self.name, reason))
