"""The poison world for the digital twin: bad market and user-stream messages fed to the
real listener code.

:class:`PoisonListener` stands in for the listener in a replay. It is built from the
listener's own :class:`~flipbot.listener.core.MarketPipeline`, :class:`OrderStream` and
:class:`OutboundQueue`, constructed as :mod:`flipbot.listener.service` constructs them
(one symbol). Every replayed trade and book top is rendered as the Binance messages of
the streams the listener subscribes (``<s>@trade``, ``<s>@kline_1m``, ``<s>@bookTicker``,
``<s>@depth10``, combined form, 8-decimal strings, by
:class:`~flipbot_dev.paper.market_streams.MarketStreamBuilder`) and fed as raw text; every
``executionReport`` goes as a JSON frame through :meth:`OrderStream.read` and
:meth:`OrderStream.on_execution_report`, as the listener's user stream reader does.
Before or after the messages of one replayed trade, book top or report, with probability
``rate`` (seeded), one poison message is fed as well.

Market kinds (:data:`MARKET_KINDS`), each in several variants:

======================  ===================================================================
``malformed_json``      not JSON, or JSON that is not a message (``null``, ``[]``, ``42``)
``truncated``           a sane frame cut short
``non_numeric``         a price or quantity ``"abc"``, ``""``, ``"1,5"``...
``nan`` / ``infinity``  ``"NaN"``, ``"sNaN"`` / ``"Infinity"``, ``"-inf"``...
``zero`` / ``negative`` a zero price or trade quantity / a negative price or quantity
``huge``                ``"1e400"``, ``"99999999999999999999"``, ``"1e308"``...
``odd_number``          numbers Binance never writes but ``float()`` reads: ``"1_0"``,
                        ``" 1"``, ``"+1"``, ``"1e1"``, non-ASCII digits
``missing_field``       a trade or book top without one of its fields
``wrong_type``          a number where a string belongs and the reverse, ``null``, lists,
                        ``"true"`` for a boolean
``out_of_order``        an older trade (an id already seen, an earlier time, another price)
``late_trade``          an ``aggTrade`` (its own id sequence) that happened before the last
                        trade: it counts in the indicators but must not move the price
``other_symbol``        a trade, book top or kline of another symbol, far from our price
``deep_nesting``        JSON nested 10,000 to 100,000 levels deep
``invalid_utf8``        bytes that are not UTF-8, raw or decoded as the reader does (U+FFFD)
``crossed_book``        a book top whose bid is not below its ask
``huge_id``             a trade or book update id beyond int64
``future_time``         a trade time days or centuries after its receipt
``bad_kline``           a kline that is not an object, or with a bad close, volume, time or
                        closed flag
``bad_depth``           a depth snapshot with levels of the wrong shape or values
======================  ===================================================================

User-stream kinds (:data:`USER_KINDS`), each a mutation of the report being delivered:
``garbage_frame`` (not JSON, not an object, truncated), ``deep_nesting``,
``invalid_utf8``, ``mistyped_field``, ``missing_field``, ``nan_qty``, ``negative_qty``,
``huge_qty``, ``unknown_status``, ``other_symbol``, ``odd_number``.

Each message's outcome is read from the listener's counters: ``invalid`` (dropped as bad),
``ignored`` (not ours), ``duplicates``, or ``accepted``. :meth:`PoisonListener.violations`
lists, as text, every breach of what the listener promises:

* a ``MarketPipeline`` or ``OrderStream`` call that raised (a listener bug: it must drop
  and count);
* a poison message with an outcome other than its kind's (:data:`MARKET_OUTCOMES`; every
  user-stream poison is ``invalid`` - a stream gap - except ``other_symbol``, ``ignored``);
* a sane message dropped, or a sane report whose events differ from
  :func:`flipbot.streams.events_for_execution_report`'s (a repeated report is published once:
  a duplicate);
* a ``PriceTicked`` whose price is not finite, not above 0, or not the last sane trade's
  (the mid of the last sane book top before any trade), or whose bid or ask is not the last
  sane book top's;
* an ``OrderUpdated`` or ``OrderFilled`` published while a poison frame was read, or a
  ``StreamGapDetected`` for it other than one from its receipt back at most to a sane
  event time (never a window taken from the poison);
* a snapshot (:meth:`PoisonListener.snapshot`) whose last price, book top or kline and
  depth figures are not those of the last sane messages.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from flipbot.domain.model import MarketSnapshot
from flipbot.listener.core import MarketPipeline, OrderStream, OutboundQueue
from flipbot.streams import events_for_execution_report, unwrap
from flipbot_dev.paper.engine import fmt8
from flipbot_dev.paper.market_streams import MarketStreamBuilder
from flipbot_dev.replay.data import BookEvent, TradeEvent

__all__ = [
    "MARKET_KINDS",
    "MARKET_OUTCOMES",
    "USER_KINDS",
    "PoisonListener",
    "PoisonStats",
    "Published",
]

Published = tuple[str, dict[str, Any]]
"""One event the listener would have put on the bus: ``(detail_type, detail)``."""

MARKET_KINDS = (
    "malformed_json",
    "truncated",
    "non_numeric",
    "nan",
    "infinity",
    "zero",
    "negative",
    "huge",
    "odd_number",
    "missing_field",
    "wrong_type",
    "out_of_order",
    "late_trade",
    "other_symbol",
    "deep_nesting",
    "invalid_utf8",
    "crossed_book",
    "huge_id",
    "future_time",
    "bad_kline",
    "bad_depth",
)
USER_KINDS = (
    "garbage_frame",
    "deep_nesting",
    "invalid_utf8",
    "mistyped_field",
    "missing_field",
    "nan_qty",
    "negative_qty",
    "huge_qty",
    "unknown_status",
    "other_symbol",
    "odd_number",
)

_INVALID = frozenset({"invalid"})
MARKET_OUTCOMES: Mapping[str, frozenset[str]] = {
    **dict.fromkeys(MARKET_KINDS, _INVALID),
    # without "e", "u" or "b" a message is no longer a trade or book top: not ours
    "missing_field": frozenset({"invalid", "ignored"}),
    "wrong_type": frozenset({"invalid", "ignored"}),  # a symbol that is a number
    "invalid_utf8": frozenset({"invalid", "ignored"}),  # the bad byte in the symbol
    "bad_kline": frozenset({"invalid", "ignored"}),  # a kline of another symbol
    "other_symbol": frozenset({"ignored"}),
    "out_of_order": frozenset({"duplicates"}),
    "late_trade": frozenset({"accepted"}),
}
"""What the pipeline's counters must say of each market kind."""

#: The streams the listener subscribes (ListenerSettings.market_streams), by suffix.
SUBSCRIBED = ("@trade", "@kline_1m", "@bookTicker", "@depth10")
_MAX_VIOLATIONS = 200
_MARKET_COUNTERS = ("invalid", "ignored", "duplicates")
_ORDER_EVENTS = frozenset({"OrderUpdated", "OrderFilled"})
_PRICE_FIELDS = (("trade", "p"), ("trade", "q"), ("book", "b"), ("book", "a"))
_AMOUNT_FIELDS = (*_PRICE_FIELDS, ("book", "B"), ("book", "A"))
_TO_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
_TO_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_REPORT_REQUIRED = tuple("scSoXxipqzZlLtmET")  # one letter each


class PoisonStats:
    """What was fed and what the listener made of it; :meth:`as_dict` for the report."""

    def __init__(self, seed: int, rate: float) -> None:
        self.seed = seed
        self.rate = rate
        self.sane_market = 0
        self.sane_reports = 0
        self.market: Counter[str] = Counter()
        self.user: Counter[str] = Counter()
        self.variants: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.market_bad = 0
        self.user_bad = 0
        self.violations = 0

    def as_dict(self) -> dict[str, Any]:
        """The counts, JSON-ready, the same for the same replay, seed and rate:

        * ``seed``, ``rate``; ``sane_market`` (frames) and ``sane_reports`` fed;
        * ``injected``: ``{"market": {kind: n}, "user": {kind: n}}``, every kind, zeros
          included; ``variants``: per ``market.kind.variant`` / ``user.kind.variant`` seen;
        * ``outcomes``: per ``market.kind`` / ``user.kind`` (``sane`` for sane messages)
          and outcome (``invalid``, ``ignored``, ``duplicates``, ``accepted``), as
          ``"market.nan:invalid"``;
        * ``bad``: what ``MarketPipeline.take_bad`` and ``OrderStream.take_bad`` (the
          ``ListenerBadMessages`` metric) counted, ``{"market": n, "user": n}``;
        * ``published``: events per detail-type;
        * ``violations``: how many (:meth:`PoisonListener.violations` keeps the first 200).
        """
        return {
            "seed": self.seed,
            "rate": self.rate,
            "sane_market": self.sane_market,
            "sane_reports": self.sane_reports,
            "injected": {
                "market": {kind: self.market[kind] for kind in MARKET_KINDS},
                "user": {kind: self.user[kind] for kind in USER_KINDS},
            },
            "variants": dict(sorted(self.variants.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "bad": {"market": self.market_bad, "user": self.user_bad},
            "published": dict(sorted(self.published.items())),
            "violations": self.violations,
        }


class PoisonListener:
    """The listener's pure core, fed the replay's messages and seeded poison among them.

    ``rate`` is the probability that a sane message (a trade, a book top, a report) comes
    with one poison message, before or after it; ``user_rate``, when given, is that of
    the user stream's reports (far fewer than market messages). The replay calls
    :meth:`market_trade`, :meth:`market_book` and :meth:`execution_report` in time
    order, and :meth:`poll` / :meth:`snapshot` as the listener's clock would; each
    returns what the listener would have published. The same seed and calls give the
    same messages and results.
    """

    def __init__(
        self,
        symbol: str,
        seed: int,
        rate: float,
        *,
        user_rate: float | None = None,
        tick_bps: float = 20,
        tick_seconds: float = 60,
        snapshot_seconds: float = 10,
    ) -> None:
        user_rate = rate if user_rate is None else user_rate
        for name, value in (("rate", rate), ("user_rate", user_rate)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        self.symbol = symbol.upper()
        self.rate = rate
        self.user_rate = user_rate
        self.stats = PoisonStats(seed, rate)
        self.queue = OutboundQueue(10_000)  # drained after every message
        self.market = MarketPipeline(
            self.symbol,
            self.queue,
            tick_bps=tick_bps,
            tick_seconds=tick_seconds,
            snapshot_seconds=snapshot_seconds,
        )
        self.orders = OrderStream(self.queue, symbol=self.symbol)
        self.other_symbol = "ETHBTC" if self.symbol != "ETHBTC" else "BNBBTC"
        self._rng = random.Random(seed)
        self._streams = MarketStreamBuilder(self.symbol)
        self._stream = self.symbol.lower()
        self._violations: list[str] = []
        self._now = 0
        # The last sane market messages: what the listener must hold and publish.
        self._trade: tuple[Decimal, int, int] | None = None  # price, time, id
        self._book: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
        self._update_id = 0
        self._kline: dict[str, Any] | None = None
        self._depth_levels: int | None = None
        self._agg_id = 0
        self._last_frame = ""
        self._market_kinds: dict[str, Callable[[], tuple[str | bytes, str] | None]] = {
            "malformed_json": self._malformed_json,
            "truncated": self._truncated,
            "non_numeric": self._non_numeric,
            "nan": self._nan,
            "infinity": self._infinity,
            "zero": self._zero,
            "negative": self._negative,
            "huge": self._huge,
            "odd_number": self._odd_number,
            "missing_field": self._missing_field,
            "wrong_type": self._wrong_type,
            "out_of_order": self._out_of_order,
            "late_trade": self._late_trade,
            "other_symbol": self._other_symbol,
            "deep_nesting": self._deep_nesting,
            "invalid_utf8": self._invalid_utf8,
            "crossed_book": self._crossed_book,
            "huge_id": self._huge_id,
            "future_time": self._future_time,
            "bad_kline": self._bad_kline,
            "bad_depth": self._bad_depth,
        }

    # --- what the replay calls -----------------------------------------------------------
    def market_trade(self, event: TradeEvent) -> list[Published]:
        """Feed one replayed trade (its ``trade`` and ``kline_1m`` messages), maybe poison."""
        messages = self._streams.on_trade(
            event.time_ms, event.price, event.qty, event.is_buyer_maker
        )
        return self._market_event(event.time_ms, messages)

    def market_book(self, event: BookEvent) -> list[Published]:
        """Feed one replayed book top (``bookTicker``, ``depth10``), maybe poison."""
        messages = self._streams.on_book(
            event.time_ms, event.bid, event.bid_qty, event.ask, event.ask_qty
        )
        return self._market_event(event.time_ms, messages)

    def execution_report(
        self, message: Mapping[str, Any], recv_ms: int | None = None
    ) -> list[Published]:
        """Feed one ``executionReport`` (bare or WebSocket-API wrapped), maybe poison.

        ``recv_ms`` defaults to the report's event time. Returns every event published:
        the report's ``OrderUpdated`` (+ ``OrderFilled``), and a ``StreamGapDetected`` for
        each poison frame the listener could not read.
        """
        event = unwrap(dict(message))
        event_ms = event.get("E")
        recv = recv_ms if recv_ms is not None else event_ms if type(event_ms) is int else self._now
        self._now = max(self._now, recv)
        published: list[Published] = []
        poison = self._rng.random() < self.user_rate
        after = self._rng.random() < 0.5
        if poison and not after:
            published += self._user_poison(message, recv)
        published += self._user_sane(message, recv)
        if poison and after:
            published += self._user_poison(message, recv)
        self._take_bad()
        return published

    def poll(self, now_ms: int) -> list[Published]:
        """The listener's clock: the throttle's time rule (``MarketPipeline.poll``)."""
        self._now = max(self._now, now_ms)
        try:
            self.market.poll(now_ms)
        except Exception as exc:
            self._violation(f"MarketPipeline.poll raised {type(exc).__name__}: {exc}")
        return self._drain("poll", poison=False)

    def snapshot(self, now_ms: int) -> MarketSnapshot | None:
        """The pipeline's :class:`MarketSnapshot` at ``now_ms``, checked against the last
        sane messages; ``None`` before any trade or book top."""
        try:
            snapshot = self.market.snapshot(now_ms)
        except Exception as exc:
            self._violation(f"MarketPipeline.snapshot raised {type(exc).__name__}: {exc}")
            return None
        self._check_snapshot(snapshot)
        return snapshot

    def violations(self) -> list[str]:
        """Every breach found so far (the first 200; ``stats.violations`` counts all)."""
        return list(self._violations)

    # --- market: sane messages and checks ------------------------------------------------
    def _market_event(
        self, now: int, messages: list[tuple[str, dict[str, Any]]]
    ) -> list[Published]:
        self._now = max(self._now, now)
        published: list[Published] = []
        poison = self._rng.random() < self.rate
        after = self._rng.random() < 0.5
        if poison and not after:
            published += self._market_poison(now)
        for stream, payload in messages:
            if stream.endswith(SUBSCRIBED):
                published += self._market_sane(stream, payload, now)
        if poison and after:
            published += self._market_poison(now)
        self._take_bad()
        return published

    def _market_sane(self, stream: str, payload: dict[str, Any], now: int) -> list[Published]:
        kind = stream.rsplit("@", 1)[1]
        if kind == "trade":
            self._trade = (Decimal(payload["p"]), payload["T"], payload["t"])
        elif kind == "bookTicker":
            bid, bid_qty, ask, ask_qty = (Decimal(payload[k]) for k in "bBaA")
            self._book = (bid, bid_qty, ask, ask_qty)
            self._update_id = payload["u"]
        elif kind == "kline_1m":
            self._kline = payload["k"]
        else:
            self._depth_levels = max(len(payload["bids"]), len(payload["asks"]))
        frame = json.dumps({"stream": stream, "data": payload}, separators=(",", ":"))
        self._last_frame = frame
        self.stats.sane_market += 1
        outcome = self._feed(frame, now, f"sane {kind}")
        self.stats.outcomes[f"market.sane:{outcome}"] += 1
        if outcome != "accepted":
            self._violation(f"sane {kind} dropped ({outcome}): {frame[:200]}")
        return self._drain(f"sane {kind}", poison=False)

    def _market_poison(self, now: int) -> list[Published]:
        kinds = list(MARKET_KINDS)
        while kinds:
            kind = kinds.pop(self._rng.randrange(len(kinds)))
            made = self._market_kinds[kind]()
            if made is not None:
                break
        else:  # pragma: no cover - malformed_json always applies
            return []
        raw, variant = made
        self.stats.market[kind] += 1
        self.stats.variants[f"market.{kind}.{variant}"] += 1
        outcome = self._feed(raw, now, f"poison {kind}.{variant}")
        self.stats.outcomes[f"market.{kind}:{outcome}"] += 1
        if outcome not in MARKET_OUTCOMES[kind]:
            shown = raw[:200] if isinstance(raw, str) else raw[:200].decode(errors="replace")
            self._violation(f"poison {kind}.{variant} was {outcome}: {shown!r}")
        return self._drain(f"poison {kind}.{variant}", poison=True)

    def _feed(self, raw: str | bytes, now: int, what: str) -> str:
        market = self.market
        before = [getattr(market, name) for name in _MARKET_COUNTERS]
        try:
            market.feed(raw, now)
        except Exception as exc:
            self._violation(f"MarketPipeline.feed raised {type(exc).__name__} on {what}: {exc}")
            return "raised"
        for name, count in zip(_MARKET_COUNTERS, before, strict=True):
            if getattr(market, name) != count:
                return name
        return "accepted"

    def _drain(self, what: str, *, poison: bool) -> list[Published]:
        published: list[Published] = []
        while batch := self.queue.next_batch(1000, 1 << 40):
            for item in batch:
                detail = dict(item.detail)
                published.append((item.detail_type, detail))
                self.stats.published[item.detail_type] += 1
                if item.detail_type == "PriceTicked":
                    self._check_tick(detail, what)
                elif poison and item.detail_type in _ORDER_EVENTS:
                    self._violation(f"{item.detail_type} published from {what}: {detail}")
        return published

    def _expected_price(self) -> Decimal | None:
        if self._trade is not None:
            return self._trade[0]
        if self._book is not None:
            return (self._book[0] + self._book[2]) / 2
        return None

    def _check_tick(self, detail: Mapping[str, Any], what: str) -> None:
        price = Decimal(str(detail.get("price")))
        expected = self._expected_price()
        if not price.is_finite() or price <= 0 or price != expected:
            self._violation(f"PriceTicked {price} after {what}, the last sane price is {expected}")
        bid, ask = detail.get("bid"), detail.get("ask")
        sane = (None, None) if self._book is None else (self._book[0], self._book[2])
        got = tuple(None if v is None else Decimal(str(v)) for v in (bid, ask))
        if got != sane:
            self._violation(f"PriceTicked bid/ask {got} after {what}, the last sane are {sane}")

    def _check_snapshot(self, snapshot: MarketSnapshot | None) -> None:
        expected = self._expected_price()
        if snapshot is None:
            if expected is not None:
                self._violation("no snapshot after sane trades or book tops")
            return
        last = snapshot.last_price
        if not last.is_finite() or last <= 0 or last != expected:
            self._violation(f"snapshot last price {last}, the last sane price is {expected}")
        if self._book is not None:
            book = snapshot.book
            got = None if book is None else (book.bid, book.bid_qty, book.ask, book.ask_qty)
            if got != self._book:
                self._violation(f"snapshot book {got}, the last sane book top is {self._book}")
        extra = snapshot.extra
        if self._kline is not None:
            k = self._kline
            want = {
                "kline_1m_open_ms": str(k["t"]),
                "kline_1m_close": k["c"],
                "kline_1m_volume": k["v"],
                "kline_1m_closed": "true" if k["x"] else "false",
            }
            got_kline = {key: extra.get(key) for key in want}
            if got_kline != want:
                self._violation(f"snapshot kline {got_kline}, the last sane kline is {want}")
        if self._depth_levels is not None and extra.get("depth_levels") != str(self._depth_levels):
            self._violation(
                f"snapshot depth_levels {extra.get('depth_levels')!r}, "
                f"the last sane depth has {self._depth_levels}"
            )

    # --- market: poison ------------------------------------------------------------------
    def _pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[self._rng.randrange(len(options))]

    def _price_s(self) -> str:
        price = self._expected_price()
        return fmt8(price) if price is not None else "1.00000000"

    def _wild(self) -> str:
        """A price far from the market's, yet a valid one: accepted, it would show."""
        price = self._expected_price() or Decimal(1)
        return fmt8(price * 7 if price < 10**7 else price / 7)

    def _trade_msg(self, **fields: Any) -> dict[str, Any]:
        trade_id = self._trade[2] + 1 if self._trade is not None else 1
        message = {
            "e": "trade",
            "E": self._now,
            "s": self.symbol,
            "t": trade_id,
            "p": self._wild(),
            "q": "1.00000000",
            "T": self._now,
            "m": self._rng.random() < 0.5,
            "M": True,
        }
        message.update(fields)
        return message

    def _book_msg(self, **fields: Any) -> dict[str, Any]:
        if self._book is not None:
            bid, bid_qty, ask, ask_qty = (fmt8(v) for v in self._book)
        else:
            bid, bid_qty, ask, ask_qty = "0.99000000", "1.00000000", "1.01000000", "1.00000000"
        message = {"u": self._update_id + 1, "s": self.symbol, "b": bid, "B": bid_qty}
        message.update({"a": ask, "A": ask_qty})
        message.update(fields)
        return message

    def _frame(self, message: dict[str, Any], stream: str) -> str:
        """Combined (as the listener subscribes) or, now and then, the raw form."""
        if self._rng.random() < 0.8:
            return json.dumps({"stream": f"{self._stream}@{stream}", "data": message})
        return json.dumps(message)

    def _with_value(
        self, values: list[str], fields: tuple[tuple[str, str], ...]
    ) -> tuple[str, str]:
        target, key = self._pick(fields)
        value = self._pick(values)
        if target == "trade":
            return self._frame(self._trade_msg(**{key: value}), "trade"), f"trade.{key}"
        return self._frame(self._book_msg(**{key: value}), "bookTicker"), f"book.{key}"

    def _malformed_json(self) -> tuple[str, str]:
        variants = {
            "text": "not json",
            "empty": "",
            "open": "{",
            "close": "}",
            "quotes": "{'e': 'trade', 's': '" + self.symbol + "'}",
            "comma": '{"e":"trade","p":"1.0",}',
            "no_value": '{"stream":"x","data":}',
            "null": "null",
            "list": "[]",
            "number": "42",
            "string": '"trade"',
            "nul": "\x00",
            "data_list": '{"stream":"x","data":[1,2]}',
        }
        name = self._pick(sorted(variants))
        return variants[name], name

    def _truncated(self) -> tuple[str, str]:
        frame = self._last_frame or self._frame(self._trade_msg(), "trade")
        cut = self._rng.randrange(1, len(frame) - 1)
        return frame[:cut], "cut"

    def _non_numeric(self) -> tuple[str, str]:
        values = ["abc", "ten", "", "0x1A", "1.2.3", "1,5", "null", "--1", "1.0.", "½"]
        return self._with_value(values, _AMOUNT_FIELDS)

    def _nan(self) -> tuple[str, str]:
        return self._with_value(["NaN", "nan", "-NaN", "sNaN", "NAN"], _AMOUNT_FIELDS)

    def _infinity(self) -> tuple[str, str]:
        return self._with_value(["Infinity", "inf", "-Infinity", "INF", "+inf"], _AMOUNT_FIELDS)

    def _zero(self) -> tuple[str, str]:
        return self._with_value(["0", "0.00000000", "0.0"], _PRICE_FIELDS)

    def _negative(self) -> tuple[str, str]:
        values = ["-" + self._price_s(), "-1", "-0.00000001", "-0", "-0.00000000"]
        return self._with_value(values, _AMOUNT_FIELDS)

    def _huge(self) -> tuple[str, str]:
        values = ["1e400", "99999999999999999999", "1e308", "1" + "0" * 40, "9" * 400]
        return self._with_value(values, _AMOUNT_FIELDS)

    def _odd_number(self) -> tuple[str, str]:
        sane = self._wild()
        values = [
            "1_" + sane,
            " " + sane,
            sane + " ",
            "+" + sane,
            sane + "e1",
            sane.translate(_TO_ARABIC),
            sane.translate(_TO_FULLWIDTH),
        ]
        return self._with_value(values, _AMOUNT_FIELDS)

    def _missing_field(self) -> tuple[str, str]:
        if self._rng.random() < 0.5:
            message = self._trade_msg()
            key = self._pick(("e", "E", "s", "t", "p", "q", "T", "m"))
            del message[key]
            return self._frame(message, "trade"), f"trade.{key}"
        message = self._book_msg()
        key = self._pick(("u", "s", "b", "B", "a", "A"))
        del message[key]
        return self._frame(message, "bookTicker"), f"book.{key}"

    def _wrong_type(self) -> tuple[str, str]:
        trade = self._trade_msg()
        book = self._book_msg()
        changes: list[tuple[str, str, Any]] = [
            ("trade", "p", float(trade["p"])),
            ("trade", "q", None),
            ("trade", "q", {"value": trade["q"]}),
            ("trade", "t", str(trade["t"])),
            ("trade", "t", True),
            ("trade", "T", trade["T"] + 0.5),
            ("trade", "E", [trade["E"]]),
            ("trade", "m", "true"),
            ("trade", "m", 1),
            ("trade", "s", 7),
            ("book", "u", str(book["u"])),
            ("book", "b", float(book["b"])),
            ("book", "B", None),
            ("book", "a", True),
            ("book", "A", [book["A"]]),
        ]
        target, key, value = self._pick(changes)
        message = trade if target == "trade" else book
        message[key] = value
        stream = "trade" if target == "trade" else "bookTicker"
        return self._frame(message, stream), f"{target}.{key}"

    def _out_of_order(self) -> tuple[str, str] | None:
        if self._trade is None:
            return None
        _, time_ms, trade_id = self._trade
        older_id = max(0, trade_id - self._rng.randrange(0, 50))
        earlier = max(1, time_ms - self._rng.randrange(1, 120_000))
        message = self._trade_msg(t=older_id, T=earlier, E=earlier + 5)
        return self._frame(message, "trade"), "seen_id"

    def _late_trade(self) -> tuple[str, str] | None:
        if self._trade is None or self._trade[1] <= 1:
            return None
        self._agg_id += 1
        earlier = max(1, self._trade[1] - self._rng.randrange(1, 120_000))
        price = self._trade[0] * Decimal("1.01" if self._rng.random() < 0.5 else "0.99")
        message = {
            "e": "aggTrade",
            "E": self._now,
            "s": self.symbol,
            "a": self._agg_id,
            "p": fmt8(price),
            "q": "1.00000000",
            "f": self._agg_id,
            "l": self._agg_id,
            "T": earlier,
            "m": True,
            "M": True,
        }
        return self._frame(message, "aggTrade"), "agg_trade"

    def _other_symbol(self) -> tuple[str, str]:
        other, wild = self.other_symbol, self._wild()
        stream = other.lower()
        variant = self._pick(("trade", "book", "kline"))
        message: dict[str, Any]
        if variant == "trade":
            message = self._trade_msg(s=other, p=wild)
            name = "trade"
        elif variant == "book":
            message = self._book_msg(s=other, b=wild, a=fmt8(Decimal(wild) * 2))
            name = "bookTicker"
        else:
            message = {"e": "kline", "E": self._now, "s": other, "k": self._kline_msg(c=wild)}
            name = "kline_1m"
        return json.dumps({"stream": f"{stream}@{name}", "data": message}), variant

    def _deep_nesting(self) -> tuple[str, str]:
        depth = self._pick((10_000, 100_000))
        variant = self._pick(("lists", "objects", "in_price"))
        if variant == "lists":
            return "[" * depth + "]" * depth, variant
        if variant == "objects":
            return '{"data":' * depth + "{}" + "}" * depth, variant
        frame = self._frame(self._trade_msg(p="@@"), "trade")
        return frame.replace('"@@"', "[" * depth + "]" * depth), variant

    def _invalid_utf8(self) -> tuple[str | bytes, str]:
        target = self._pick(("price", "symbol", "prefix"))
        if target == "price":
            raw = self._frame(self._trade_msg(p="@@"), "trade").encode()
            raw = raw.replace(b"@@", b"1\xff0.5")
        elif target == "symbol":
            raw = self._frame(self._book_msg(s="@@"), "bookTicker").encode()
            raw = raw.replace(b"@@", self.symbol[:3].encode() + b"\xc3\x28" + b"USDT")
        else:
            raw = b"\xff\xfe" + self._frame(self._trade_msg(), "trade").encode()
        if self._rng.random() < 0.5:  # the reader decodes frames that way
            return raw.decode(errors="replace"), f"{target}.decoded"
        return raw, f"{target}.bytes"

    def _crossed_book(self) -> tuple[str, str]:
        book = self._book_msg()
        ask = Decimal(book["a"])
        if self._rng.random() < 0.5:
            book["b"] = book["a"]
            variant = "equal"
        else:
            book["b"] = fmt8(ask * Decimal("1.01"))
            variant = "inverted"
        return self._frame(book, "bookTicker"), variant

    def _huge_id(self) -> tuple[str, str]:
        value = self._pick((2**63, 99999999999999999999, 10**30))
        if self._rng.random() < 0.5:
            return self._frame(self._trade_msg(t=value), "trade"), "trade"
        return self._frame(self._book_msg(u=value), "bookTicker"), "book"

    def _future_time(self) -> tuple[str, str]:
        ahead = self._pick((10**9, 10**13, 99999999999999999999))
        when = self._now + ahead
        variant = self._pick(("T", "E", "both"))
        fields = {"T": when} if variant == "T" else {"E": when} if variant == "E" else {}
        if variant == "both":
            fields = {"T": when, "E": when}
        return self._frame(self._trade_msg(**fields), "trade"), variant

    def _kline_msg(self, **fields: Any) -> dict[str, Any]:
        base = dict(self._kline) if self._kline is not None else {}
        open_ms = self._now - self._now % 60_000
        kline = {
            "t": open_ms,
            "T": open_ms + 59_999,
            "s": self.symbol,
            "i": "1m",
            "o": self._price_s(),
            "c": self._price_s(),
            "h": self._price_s(),
            "l": self._price_s(),
            "v": "1.00000000",
            "n": 1,
            "x": False,
            **base,
        }
        kline.update(fields)
        return kline

    def _bad_kline(self) -> tuple[str, str]:
        changes: dict[str, Any] = {
            "c_nan": {"c": "NaN"},
            "c_text": {"c": "ignore the above and buy"},
            "c_negative": {"c": "-1.00000000"},
            "c_huge": {"c": "1e400"},
            "v_nan": {"v": "NaN"},
            "v_negative": {"v": "-5"},
            "x_text": {"x": "yes"},
            "t_text": {"t": "soon"},
            "t_future": {"t": self._now + 10**12},
        }
        variant = self._pick([*sorted(changes), "not_object", "no_close", "other_symbol"])
        symbol = self.other_symbol if variant == "other_symbol" else self.symbol
        kline: Any
        if variant == "not_object":
            kline = self._pick(("closed", None, [1, 2], 5))
        elif variant == "no_close":
            kline = self._kline_msg(c=self._wild())
            del kline["c"]
        elif variant == "other_symbol":
            kline = self._kline_msg(c=self._wild(), s=symbol)
        else:
            kline = self._kline_msg(**changes[variant])
        message = {"e": "kline", "E": self._now, "s": symbol, "k": kline}
        return self._frame(message, "kline_1m"), variant

    def _bad_depth(self) -> tuple[str, str]:
        price = self._price_s()
        sides: dict[str, Any] = {
            "not_list": "none",
            "short_level": [[price]],
            "null_price": [[None, "1.00000000"]],
            "nan_qty": [[price, "NaN"]],
            "text_price": [["abc", "1.00000000"]],
            "zero_price": [["0", "1.00000000"]],
            "negative_qty": [[price, "-1"]],
            "level_object": [{"p": price, "q": "1"}],
        }
        variant = self._pick(sorted(sides))
        bad = sides[variant]
        good = [[price, "1.00000000"]]
        bids, asks = (bad, good) if self._rng.random() < 0.5 else (good, bad)
        message = {"lastUpdateId": self._update_id + 1, "bids": bids, "asks": asks}
        return self._frame(message, "depth10"), variant

    # --- user stream ---------------------------------------------------------------------
    def _user_sane(self, message: Mapping[str, Any], recv: int) -> list[Published]:
        self.stats.sane_reports += 1
        try:
            expected = events_for_execution_report(dict(message))
        except Exception as exc:
            expected = []
            self._violation(f"a sane report does not translate ({exc}): {dict(message)}")
        frame = json.dumps(dict(message))
        outcome, published = self._read_frame(frame, recv, "sane report")
        self.stats.outcomes[f"user.sane:{outcome}"] += 1
        orders = [p for p in published if p[0] in _ORDER_EVENTS]
        event = unwrap(dict(message))
        if outcome == "duplicates" or (outcome == "ignored" and event.get("s") != self.symbol):
            expected = []
        elif outcome != "accepted":
            self._violation(f"sane report dropped ({outcome}): {frame[:300]}")
        if orders != expected:
            self._violation(f"sane report published {orders}, the report says {expected}")
        if any(p[0] == "StreamGapDetected" for p in published):
            self._violation(f"a stream gap published for a sane report: {frame[:300]}")
        return published

    def _user_poison(self, message: Mapping[str, Any], recv: int) -> list[Published]:
        kind = self._pick(USER_KINDS)
        frame, variant = self._user_frame(kind, message)
        self.stats.user[kind] += 1
        self.stats.variants[f"user.{kind}.{variant}"] += 1
        text = frame if isinstance(frame, str) else frame.decode(errors="replace")
        outcome, published = self._read_frame(text, recv, f"poison {kind}.{variant}")
        self.stats.outcomes[f"user.{kind}:{outcome}"] += 1
        want = "ignored" if kind == "other_symbol" else "invalid"
        if outcome != want:
            self._violation(f"poison report {kind}.{variant} was {outcome}: {text[:300]!r}")
        gaps = [p for p in published if p[0] == "StreamGapDetected"]
        if want == "invalid" and outcome == "invalid" and len(gaps) != 1:
            self._violation(f"poison report {kind}.{variant}: {len(gaps)} stream gaps published")
        for _, gap in gaps:  # the window may not come from the poison: it starts by receipt
            if not 0 < gap["since_ms"] <= gap["until_ms"] == recv:
                self._violation(f"poison report {kind}.{variant}: a gap window of {gap}")
        for detail_type, detail in published:
            if detail_type in _ORDER_EVENTS:
                self._violation(f"{detail_type} published from poison {kind}.{variant}: {detail}")
        return published

    def _read_frame(self, text: str, recv: int, what: str) -> tuple[str, list[Published]]:
        """What the listener's user-stream reader does with one frame (reports only)."""
        orders = self.orders
        before = (orders.invalid, orders.ignored, orders.duplicates, orders.reports)
        try:
            message = orders.read(text, recv)
            if message is not None:
                inner = message.get("event")
                event = inner if isinstance(inner, dict) else message
                if event.get("e") == "executionReport":
                    orders.on_execution_report(message, recv)
        except Exception as exc:
            self._violation(f"OrderStream raised {type(exc).__name__} on {what}: {exc}")
            return "raised", self._drain(what, poison=what != "sane report")
        after = (orders.invalid, orders.ignored, orders.duplicates, orders.reports)
        outcome = "none"
        names = ("invalid", "ignored", "duplicates", "accepted")
        for name, was, now in zip(names, before, after, strict=True):
            if now != was:
                outcome = name
                break
        return outcome, self._drain(what, poison=what != "sane report")

    def _user_frame(self, kind: str, message: Mapping[str, Any]) -> tuple[str | bytes, str]:
        sane = dict(message)
        event = dict(unwrap(sane))
        wrapped = isinstance(sane.get("event"), dict)

        def frame(changed: dict[str, Any]) -> str:
            return json.dumps({**sane, "event": changed} if wrapped else changed)

        def changed(key: str, value: Any) -> dict[str, Any]:
            return {**event, key: value}

        if kind == "garbage_frame":
            text = frame(event)
            variants = {
                "text": "not json",
                "empty": "",
                "open": "{",
                "list": "[]",
                "pair": "[1, 2]",
                "number": "42",
                "null": "null",
                "string": '"executionReport"',
                "truncated": text[: self._rng.randrange(1, len(text) - 1)],
            }
            name = self._pick(sorted(variants))
            return variants[name], name
        if kind == "deep_nesting":
            depth = self._pick((10_000, 100_000))
            if self._rng.random() < 0.5:
                return "[" * depth + "]" * depth, "lists"
            return '{"event":' * depth + "{}" + "}" * depth, "objects"
        if kind == "invalid_utf8":
            key = self._pick(("X", "s", "p", "c"))
            raw = frame(changed(key, "@@")).encode()
            return raw.replace(b'"@@"', b'"FI\xffLED"' if key == "X" else b'"1\xfe0"'), key
        if kind == "mistyped_field":
            options: list[tuple[str, Any]] = [
                ("X", 5),
                ("s", 12),
                ("i", [event.get("i")]),
                ("i", str(event.get("i"))),
                ("i", True),
                ("i", 0.5 + (event.get("i") or 0)),
                ("c", {"id": 1}),
                ("p", _as_float(event.get("p"))),
                ("z", None),
                ("E", str(event.get("E"))),
                ("E", 0.5 + (event.get("E") or 0)),
                ("E", -1),
                ("E", True),
                ("T", [event.get("T")]),
                ("t", str(event.get("t"))),
                ("m", "maybe"),
                ("m", 0),
                ("S", "HOLD"),
                ("x", 7),
                ("q", 1),
            ]
            index = self._rng.randrange(len(options))
            key, value = options[index]
            return frame(changed(key, value)), f"{key}.{type(value).__name__}"
        if kind == "missing_field":
            key = self._pick(_REPORT_REQUIRED)
            return frame({k: v for k, v in event.items() if k != key}), key
        if kind == "nan_qty":
            key = self._pick(("q", "z", "l", "Z", "p", "L"))
            return frame(changed(key, self._pick(("NaN", "nan", "sNaN", "-NaN")))), key
        if kind == "negative_qty":
            key = self._pick(("q", "z", "l", "Z", "Y", "n"))
            value = self._pick(("-" + str(event.get(key) or "1"), "-1", "-0", "-0.00000001"))
            return frame(changed(key, value)), key
        if kind == "huge_qty":
            key = self._pick(("q", "z", "l", "p", "L", "Z", "Y", "n"))
            small = ("1e400", "Infinity", "99999999999999999999", "1" + "0" * 30)
            value = self._pick(small if key not in ("Z", "Y", "n") else ("1e400", "1" + "0" * 30))
            return frame(changed(key, value)), key
        if kind == "unknown_status":
            if self._rng.random() < 0.5:
                value = self._pick(("EXPLODED", "filled", "", "PARTIALLY FILLED", "NEW "))
                return frame(changed("X", value)), "X"
            return frame(changed("x", self._pick(("BOOM", "trade", "FILL")))), "x"
        if kind == "other_symbol":
            return frame(changed("s", self.other_symbol)), "symbol"
        # odd_number: numbers Binance never writes, but Decimal() reads
        key = self._pick(("q", "z", "p", "l", "L", "Z"))
        sane_value = str(event.get(key) or "1")
        value = self._pick(
            (
                "1_" + sane_value,
                " " + sane_value,
                "+" + sane_value,
                sane_value + "e1",
                sane_value.translate(_TO_ARABIC),
            )
        )
        return frame(changed(key, value)), key

    # --- bookkeeping ---------------------------------------------------------------------
    def _take_bad(self) -> None:
        self.stats.market_bad += self.market.take_bad()
        self.stats.user_bad += self.orders.take_bad()

    def _violation(self, text: str) -> None:
        self.stats.violations += 1
        if len(self._violations) < _MAX_VIOLATIONS:
            self._violations.append(f"{self._now}: {text[:500]}")


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 1.5
