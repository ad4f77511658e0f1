"""What the bot persists: cycles, orders, closed trades and consultations.

Plain frozen dataclasses; the repositories (:mod:`flipbot.ports`) map them to storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, Self

from flipbot.domain.cycle import CycleState
from flipbot.domain.model import Origin, Side

ZERO = Decimal(0)


class BotOrderStatus(StrEnum):
    """An order's status while the exchange has not told it, beside Binance's
    (:class:`~flipbot.domain.model.OrderStatus`)."""

    PENDING = "PENDING"  # recorded, not yet sent (or not yet answered)
    UNKNOWN = "UNKNOWN"  # sent, the answer lost: settled by reading the exchange
    REJECTED_BY_BOT = "REJECTED_BY_BOT"  # never sent: the bot refused it (kill switch, size)


class TokenState(StrEnum):
    """An order's Step Functions task token: waiting for the order, or used."""

    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ExitReason(StrEnum):
    """Why a sell may be placed below the profit floor (the one exception)."""

    STOP_LOSS = "STOP_LOSS"


class Verdict(StrEnum):
    """What a consultation's guards made of the decision (besides :func:`rejected_verdict`)."""

    PLACE = "PLACE"
    PLACE_STOP_LOSS = "PLACE:STOP_LOSS"  # placed by the stop-loss rule, below the floor
    WAIT = "WAIT"
    PAUSED = "PAUSED"  # a circuit breaker paused buying: no one was asked


REJECTED_PREFIX = "REJECTED:"


def rejected_verdict(guard: str) -> str:
    """The verdict of a decision the guard ``guard`` rejected: ``REJECTED:<guard>``."""
    return f"{REJECTED_PREFIX}{guard}"


class _Record:
    def evolve(self, **changes: Any) -> Self:
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class Cycle(_Record):
    """One buy -> sell round trip."""

    cycle_id: str
    symbol: str
    state: CycleState
    created_ms: int
    updated_ms: int
    buy_order_ids: tuple[str, ...] = ()
    sell_order_ids: tuple[str, ...] = ()
    bought_qty: Decimal = ZERO  # gross base bought
    spent_quote: Decimal = ZERO  # quote paid for it
    held_qty: Decimal = ZERO  # base the cycle may sell (net of base commission, minus sold)
    sold_qty: Decimal = ZERO
    received_quote: Decimal = ZERO
    fees_quote: Decimal = ZERO  # every commission of the cycle, valued in quote
    entry_price: Decimal = ZERO  # spent_quote / net base received
    floor_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    ai_cost_usd: Decimal = ZERO
    closed_ms: int = 0
    repairs: int = 0  # times reconcile put this cycle back on its path
    #: failed buy consultations in a row (no answer, or an answer the guards refused) and
    #: when the last was: the circuit breaker's FAILURES count
    buy_failures: int = 0
    last_failure_ms: int = 0
    stop_reason: str = ""  # why a STOPPED cycle was stopped
    #: base the chain's previous cycle closed with, less than a lot step it could sell:
    #: it is this cycle's too (in ``held_qty``), so a symbol's dust is sold once it adds up
    carried_qty: Decimal = ZERO
    version: int = 0


@dataclass(frozen=True)
class OrderRecord(_Record):
    """An order the bot placed (SYSTEM) or saw on the exchange (MANUAL)."""

    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    origin: Origin = Origin.SYSTEM
    cycle_id: str = ""
    attempt: int = 0
    status: str = BotOrderStatus.PENDING  # until the exchange answers, then Binance's status
    order_id: int = 0
    executed_qty: Decimal = ZERO
    cumulative_quote_qty: Decimal = ZERO
    task_token: str = ""
    token_state: str = ""  # a TokenState once a task waits on the order
    cancel_requested: bool = False
    consultation_id: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    reject_reason: str = ""
    floor_price: Decimal = ZERO  # sells: the cycle's profit floor when it was placed
    unknown_since_ms: int = 0  # when a create-order's outcome became unknown
    exit_reason: str = ""  # sells: an ExitReason for the one exit allowed below the floor
    expiry_reason: str = ""  # why the exchange expired it (Binance's eR), "" if it did not


@dataclass(frozen=True)
class TradeRecord:
    """A closed cycle, for history and P&L."""

    symbol: str
    cycle_id: str
    opened_ms: int
    closed_ms: int
    quantity: Decimal
    entry_price: Decimal
    exit_price: Decimal
    spent_quote: Decimal
    received_quote: Decimal
    fees_quote: Decimal
    ai_cost_usd: Decimal
    realized_pnl: Decimal
    buy_fill_seconds: float
    sell_fill_seconds: float


@dataclass(frozen=True)
class ConsultationRecord:
    """The audit of one decision: who decided, what it said, what the guards did."""

    consultation_id: str
    cycle_id: str
    leg: Side
    time_ms: int
    decided_by: str  # model name or "offline"
    prompt_version: str
    context_hash: str
    action: str
    price: Decimal | None
    confidence: float
    reasoning: str
    verdict: str  # a Verdict, or rejected_verdict(<guard>)
    verdict_reason: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: Decimal = ZERO
    latency_ms: int = 0
    raw_answer: str = ""
    extra: dict[str, str] = field(default_factory=dict)
