"""Core value objects shared by every layer. Money is always ``Decimal``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderStatus(StrEnum):
    """Binance spot order statuses (``X`` in an executionReport)."""

    NEW = "NEW"
    PENDING_NEW = "PENDING_NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
        OrderStatus.EXPIRED_IN_MATCH,
    }
)


class Origin(StrEnum):
    """Who placed an order: the bot (SYSTEM) or a person on the exchange (MANUAL)."""

    SYSTEM = "SYSTEM"
    MANUAL = "MANUAL"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A LIMIT GTC order the bot wants on the book."""

    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    client_order_id: str


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the exchange says about one order."""

    symbol: str
    order_id: int
    client_order_id: str
    side: Side
    price: Decimal
    orig_qty: Decimal
    executed_qty: Decimal
    cumulative_quote_qty: Decimal
    status: OrderStatus
    time_ms: int
    # Why the exchange expired it (Binance's expiryReason); "" when it names none.
    expiry_reason: str = ""
    # When it was placed (Binance's ``time``, which order queries and open-order lists
    # carry); 0 when the answer does not say (a create or cancel answer). Not compared:
    # it adds nothing to which state the order is in.
    placed_ms: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade (execution) of one order; unique by (order_id, trade_id)."""

    symbol: str
    order_id: int
    client_order_id: str
    trade_id: int
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    is_maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class BookTop:
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class BookDepth:
    """The top levels of the order book, best first: ``(price, quantity)`` pairs."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]

    def top(self) -> BookTop | None:
        """The best bid and ask, or ``None`` when a side is empty."""
        if not self.bids or not self.asks:
            return None
        (bid, bid_qty), (ask, ask_qty) = self.bids[0], self.asks[0]
        return BookTop(bid=bid, bid_qty=bid_qty, ask=ask, ask_qty=ask_qty)

    def imbalance(self) -> Decimal | None:
        """``(bid qty - ask qty) / (bid qty + ask qty)`` over the levels: -1 (only asks)
        to 1 (only bids); ``None`` for an empty book."""
        bids = sum((q for _, q in self.bids), Decimal(0))
        asks = sum((q for _, q in self.asks), Decimal(0))
        total = bids + asks
        return None if total <= 0 else round((bids - asks) / total, 4)

    def depth_at(self, side: Side, price: Decimal, band: Decimal) -> Decimal:
        """What ``side`` holds from its best level to ``price`` widened by ``band``: for
        bids, the levels at or above ``price x (1 - band)``; for asks, at or under
        ``price x (1 + band)``. A price better than the side's best (inside the spread)
        counts from the best level."""
        if side is Side.BUY:
            edge = min(price, self.bids[0][0]) * (1 - band) if self.bids else price
            return sum((q for p, q in self.bids if p >= edge), Decimal(0))
        edge = max(price, self.asks[0][0]) * (1 + band) if self.asks else price
        return sum((q for p, q in self.asks if p <= edge), Decimal(0))


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything the consult step knows about the market at one instant."""

    symbol: str
    time_ms: int
    last_price: Decimal
    book: BookTop | None = None
    ma5: Decimal | None = None
    ma7: Decimal | None = None
    ma7_trend: str = "FLAT"  # UP / DOWN / FLAT
    ma20: Decimal | None = None
    vwap: Decimal | None = None
    volatility: Decimal | None = None  # stdev of 1-minute log returns
    imbalance: Decimal | None = None  # (bid_qty - ask_qty) / (bid_qty + ask_qty), -1..1
    buy_sell_ratio: Decimal | None = None  # taker-buy volume / taker-sell volume
    large_trades: int = 0
    high_24h: Decimal | None = None
    low_24h: Decimal | None = None
    volume_24h: Decimal | None = None
    #: the last closed minute against the one before: close / close - 1 and
    #: volume / volume - 1 (None until two minutes closed, or after a minute without volume)
    price_change_1m: Decimal | None = None
    volume_change_1m: Decimal | None = None
    #: the correlation of the last hour's 1-minute returns with the reference pair's
    #: (``CORRELATION_SYMBOL``, BTC by default), -1..1; None: not followed or too little data
    btc_correlation: Decimal | None = None
    extra: dict[str, str] = field(default_factory=dict)
