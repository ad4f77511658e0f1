"""The market streams: a combined-stream connection (trade, bookTicker, kline_1m,
depth10 of each of its symbols), as configured for :class:`SupervisedConnection`.

What is particular to it:

* **subscribe** - nothing to send: the streams are named in the URL, so the connection
  is subscribed as soon as it is open.
* **read** - every frame into :meth:`MarketPipeline.feed` (the hot path); only a
  ``serverShutdown`` concerns the supervisor.
* **stale** - silent after ``MARKET_SILENCE_SECONDS`` without a message; nothing to
  probe (the streams answer no request).
* **hand-over** - both connections deliver while they overlap: the pipeline drops what
  it already has by trade and book update ids. The old connection is closed once the new
  one delivered its first message.
* **gaps** - the pipeline forgets the last ids (the new connection does not overlap the
  lost one). No gap at start-up: market data before the process does not matter to it.
"""

from __future__ import annotations

import logging

from flipbot.listener.binance_ws import Connection
from flipbot.listener.core import SHUTDOWN, MarketPipeline, MarketRouter
from flipbot.listener.settings import ListenerSettings
from flipbot.listener.supervised import StreamConfig

log = logging.getLogger("flipbot.listener")


class MarketStreams(StreamConfig):
    """Trades, book tops, klines and depth of a group of symbols (``group``: which of
    :meth:`ListenerSettings.market_stream_groups`), into the :class:`MarketRouter`."""

    name = "market"
    label = "market streams"

    def __init__(
        self,
        settings: ListenerSettings,
        pipeline: MarketRouter | MarketPipeline,
        group: int = 0,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.group = group
        if group:
            self.label = f"market streams ({group + 1})"
        self.silence_seconds = settings.market_silence_seconds
        self.url = settings.market_url(group)

    def on_message(self, conn: Connection, text: str, recv_ms: int) -> None:
        if self.pipeline.feed(text, recv_ms) == SHUTDOWN:
            conn.signal(SHUTDOWN)

    async def subscribe(self, conn: Connection, *, handover: bool) -> None:
        conn.subscribed_ms = conn.opened_ms
        streams = self.settings.market_stream_groups()[self.group]
        log.info("market streams connected: %s", ", ".join(streams))

    def on_gap(self) -> None:
        self.pipeline.reset_sequence()
