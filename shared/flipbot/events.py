"""EventBridge detail models: one pydantic model per detail-type (past tense).

Shared by the listener that publishes and the handlers that parse; the JSON files in
``events/`` feed both ``sam local invoke`` and the contract tests.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer

SOURCE = "flipbot.listener"

# Decimals travel as plain fixed-point strings ("26.13000000", never "2.613E+1").
Dec = Annotated[
    Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")
]


class _Detail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class OrderUpdated(_Detail):
    """One Binance ``executionReport``, normalised. ``trade_id`` is -1 when nothing traded."""

    symbol: str
    order_id: int
    client_order_id: str
    orig_client_order_id: str = ""  # set on cancels: the id of the order being canceled
    side: Literal["BUY", "SELL"]
    order_type: str
    status: str  # X: NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, ...
    execution_type: str  # x: NEW, TRADE, CANCELED, REJECTED, EXPIRED, ...
    price: Dec
    orig_qty: Dec
    executed_qty: Dec  # z: cumulative filled quantity
    cumulative_quote_qty: Dec  # Z
    last_qty: Dec  # l
    last_price: Dec  # L
    last_quote_qty: Dec  # Y
    commission: Dec  # n
    commission_asset: str | None  # N
    trade_id: int  # t
    is_maker: bool  # m
    event_time_ms: int  # E
    transaction_time_ms: int  # T
    expiry_reason: str = ""  # eR: why the exchange expired the order; absent before 2026-03

    def foreign_symbol(self, symbols: Collection[str], cycle_symbol: str = "") -> str:
        """Why this update is not for the stack: ``""`` when it is. ``cycle_symbol`` is the
        symbol of the cycle its client order id names (``""``: it names none): a cycle's
        report must be of that symbol, and a cycle whose symbol left ``symbols`` is still
        followed until it ends."""
        if cycle_symbol and cycle_symbol != self.symbol:
            return (
                f"order {self.client_order_id} is of a {cycle_symbol} cycle, "
                f"the report says {self.symbol!r}"
            )
        if self.symbol in symbols or cycle_symbol:
            return ""
        return f"symbol {self.symbol!r} is not one of the stack's ({', '.join(symbols)})"


class OrderFilled(OrderUpdated):
    """Published alongside ``OrderUpdated`` when an order reaches FILLED."""


class PriceTicked(_Detail):
    symbol: str
    price: Dec
    bid: Dec | None = None
    ask: Dec | None = None
    time_ms: int


class StreamGapDetected(_Detail):
    stream: Literal["user", "market"]
    reason: str
    since_ms: int
    until_ms: int


def foreign_envelope(source: str, detail_type: str, expected: str) -> str:
    """Why an EventBridge event is not an ``expected`` event of the listener; ``""`` when it is.

    The rule's pattern already asks for both; a function invoked another way (a forged
    or misrouted event, a direct invoke) checks them itself before reading the detail.
    """
    if source != SOURCE:
        return f"source {source!r} is not {SOURCE!r}"
    if detail_type != expected:
        return f"detail-type {detail_type!r} is not {expected!r}"
    return ""


DETAIL_TYPES: dict[str, type[_Detail]] = {
    "OrderUpdated": OrderUpdated,
    "OrderFilled": OrderFilled,
    "PriceTicked": PriceTicked,
    "StreamGapDetected": StreamGapDetected,
}
