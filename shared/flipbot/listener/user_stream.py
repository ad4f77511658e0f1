"""The user data stream: a WebSocket API connection subscribed with
``userDataStream.subscribe.signature``, as configured for :class:`SupervisedConnection`.

What is particular to it:

* **subscribe** - a signed request on the open connection; the stream is live once
  Binance confirms it (``subscribed_ms``). Nothing here logs the request's parameters.
* **read** - every frame through :meth:`OrderStream.read`; answers to requests resolve
  them, ``executionReport`` goes to :meth:`OrderStream.on_execution_report`, and every
  event's time ``E`` is kept (``last_event_ms``: a gap starts no later than it).
  ``eventStreamTerminated`` of the connection's subscription ends it (unless it is being
  handed over: then it is the expected answer to the unsubscribe).
* **stale** - silent after ``USER_SILENCE_SECONDS``; after ``USER_PROBE_SECONDS``
  without a message ``session.subscriptions`` asks whether the subscription still exists
  (an answer without it ends the connection: ``"subscription lost"``).
* **hand-over** - the new connection's reports are held back until the old subscription
  is unsubscribed (everything the old one delivered before the confirmation has been
  processed by then) and the old connection is closed; then they are released. A report
  delivered on both is published once (:class:`OrderStream` drops the repeat).
* **gaps** - from the start of the process (nobody listened before it); reconcile
  recovers what a gap may have hidden.
"""

from __future__ import annotations

import logging
from typing import Any

from websockets.exceptions import WebSocketException

from flipbot.listener.binance_ws import Connection, WsApiError, subscribe_signature_params, wall_ms
from flipbot.listener.core import SHUTDOWN, OrderStream
from flipbot.listener.settings import ListenerSettings
from flipbot.listener.supervised import CONNECT_ERRORS, StreamConfig, describe

log = logging.getLogger("flipbot.listener")


class UserDataStream(StreamConfig):
    """Execution reports of the account, into :class:`OrderStream`."""

    name = "user"
    label = "user data stream"
    reports_startup = True

    def __init__(self, settings: ListenerSettings, orders: OrderStream) -> None:
        self.settings = settings
        self.orders = orders
        self.silence_seconds = settings.user_silence_seconds
        self.probe_seconds = settings.user_probe_seconds
        self.url = settings.ws_api_url

    def on_message(self, conn: Connection, text: str, recv_ms: int) -> None:
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

    async def subscribe(self, conn: Connection, *, handover: bool) -> None:
        s = self.settings
        if handover:
            conn.held = []
        params = subscribe_signature_params(
            s.api_key.get_secret_value(),
            s.api_secret.get_secret_value(),
            timestamp_ms=wall_ms(),
            recv_window_ms=s.recv_window_ms,
        )
        result: Any = await conn.request(
            "userDataStream.subscribe.signature", params, timeout=s.request_timeout_seconds
        )
        conn.subscription_id = int((result or {}).get("subscriptionId", 0))
        conn.subscribed_ms = conn.last_event_ms = wall_ms()
        log.info("user data stream subscribed (subscriptionId %s)", conn.subscription_id)

    async def probe(self, conn: Connection) -> None:
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

    async def retire(self, old: Connection) -> bool:
        old.retiring = True
        try:
            await old.request(
                "userDataStream.unsubscribe",
                {"subscriptionId": old.subscription_id},
                timeout=self.settings.handover_timeout_seconds,
            )
        except CONNECT_ERRORS as exc:
            log.warning("user stream: old subscription not confirmed (%s)", describe(exc))
            return False
        return True

    def release(self, new: Connection) -> None:
        held, new.held = new.held or [], None
        for message, recv_ms in held:
            self.orders.on_execution_report(message, recv_ms)
