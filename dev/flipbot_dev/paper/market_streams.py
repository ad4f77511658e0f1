"""Binance market-stream messages for a replayed market, as ``(stream, payload)`` pairs.

:class:`MarketStreamBuilder` turns the trades and book tops fed to a paper exchange into
what Binance's market streams would carry for the symbol; ``flipbot exchange serve``
publishes them on its loopback WebSocket server:

===========================================  ===============================================
stream                                       sent on
===========================================  ===============================================
``<s>@trade``, ``<s>@aggTrade``              every trade (one trade per aggregate)
``<s>@kline_1m``                             every trade (the open minute, ``x`` false);
                                             the previous minute once more, closed (``x``
                                             true), when a trade opens a new minute
``<s>@bookTicker``                           every book top
``<s>@depth5`` / ``10`` / ``20`` (also with   every book top: the top level of each side
``@100ms``)
``<s>@depth`` (also ``@depth@100ms``)         every book top: ``depthUpdate`` with the new
                                             top levels, and the old ones at quantity 0
                                             when the price moved
===========================================  ===============================================

Trade ids and book update ids count from 1, like the REST views of the same exchange
(the first update id is the exchange's ``lastUpdateId`` after the first book). Decimals
are 8-decimal strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot_dev.paper.engine import fmt8
from flipbot_dev.paper.tape import MINUTE_MS, Candle, bucket_start

Message = tuple[str, dict[str, Any]]
PARTIAL_DEPTHS = (5, 10, 20)


class MarketStreamBuilder:
    """Market-stream messages of one symbol, built from its trades and book tops."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol.upper()
        self._s = symbol.lower()
        self._trade_id = 0
        self._update_id = 0
        self._candle: Candle | None = None
        self._top: tuple[Decimal, Decimal] | None = None  # (bid, ask) of the last book

    def on_trade(
        self, time_ms: int, price: Decimal, qty: Decimal, is_buyer_maker: bool
    ) -> list[Message]:
        """``trade``, ``aggTrade`` and ``kline_1m`` messages for one trade."""
        self._trade_id += 1
        tid = self._trade_id
        s, symbol = self._s, self.symbol
        trade = {
            "e": "trade",
            "E": time_ms,
            "s": symbol,
            "t": tid,
            "p": fmt8(price),
            "q": fmt8(qty),
            "T": time_ms,
            "m": is_buyer_maker,
            "M": True,
        }
        agg = {
            "e": "aggTrade",
            "E": time_ms,
            "s": symbol,
            "a": tid,
            "p": fmt8(price),
            "q": fmt8(qty),
            "f": tid,
            "l": tid,
            "T": time_ms,
            "m": is_buyer_maker,
            "M": True,
        }
        messages: list[Message] = [(f"{s}@trade", trade), (f"{s}@aggTrade", agg)]
        minute = bucket_start(time_ms, MINUTE_MS)
        candle = self._candle
        if candle is not None and candle.open_time != minute:
            messages.append((f"{s}@kline_1m", self._kline(candle, time_ms, closed=True)))
            candle = None
        if candle is None:
            candle = self._candle = Candle(minute, price, price, price, price)
        candle.add(tid, price, qty, not is_buyer_maker)
        messages.append((f"{s}@kline_1m", self._kline(candle, time_ms, closed=False)))
        return messages

    def on_book(
        self, time_ms: int, bid: Decimal, bid_qty: Decimal, ask: Decimal, ask_qty: Decimal
    ) -> list[Message]:
        """``bookTicker``, partial and diff ``depth`` messages for one book top."""
        self._update_id += 1
        u, s, symbol = self._update_id, self._s, self.symbol
        bids = [[fmt8(bid), fmt8(bid_qty)]] if bid_qty else []
        asks = [[fmt8(ask), fmt8(ask_qty)]] if ask_qty else []
        messages: list[Message] = [
            (
                f"{s}@bookTicker",
                {
                    "u": u,
                    "s": symbol,
                    "b": fmt8(bid),
                    "B": fmt8(bid_qty),
                    "a": fmt8(ask),
                    "A": fmt8(ask_qty),
                },
            ),
        ]
        partial = {"lastUpdateId": u, "bids": bids, "asks": asks}
        for levels in PARTIAL_DEPTHS:
            messages.append((f"{s}@depth{levels}", partial))
            messages.append((f"{s}@depth{levels}@100ms", partial))
        diff_bids, diff_asks = [*bids], [*asks]
        if self._top is not None:
            old_bid, old_ask = self._top
            if old_bid != bid:
                diff_bids.append([fmt8(old_bid), fmt8(Decimal(0))])
            if old_ask != ask:
                diff_asks.append([fmt8(old_ask), fmt8(Decimal(0))])
        self._top = (bid, ask)
        diff = {
            "e": "depthUpdate",
            "E": time_ms,
            "s": symbol,
            "U": u,
            "u": u,
            "b": diff_bids,
            "a": diff_asks,
        }
        messages.append((f"{s}@depth", diff))
        messages.append((f"{s}@depth@100ms", diff))
        return messages

    def _kline(self, c: Candle, event_ms: int, *, closed: bool) -> dict[str, Any]:
        return {
            "e": "kline",
            "E": event_ms,
            "s": self.symbol,
            "k": {
                "t": c.open_time,
                "T": c.open_time + MINUTE_MS - 1,
                "s": self.symbol,
                "i": "1m",
                "f": c.first_id,
                "L": c.last_id,
                "o": fmt8(c.open),
                "c": fmt8(c.close),
                "h": fmt8(c.high),
                "l": fmt8(c.low),
                "v": fmt8(c.volume),
                "n": c.trades,
                "x": closed,
                "q": fmt8(c.quote_volume),
                "V": fmt8(c.taker_buy_base),
                "Q": fmt8(c.taker_buy_quote),
                "B": "0",
            },
        }
