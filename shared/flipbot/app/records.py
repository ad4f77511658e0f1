"""What the bot persists, as plain dataclasses; repositories map them to storage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Protocol, Self

from flipbot.domain.cycle import CycleState
from flipbot.domain.errors import RetryableError
from flipbot.domain.model import Fill, Origin, Side

ZERO = Decimal(0)


def cycle_id_for(sequence: int) -> str:
    return f"c{sequence:06d}"


def cycle_sequence(cycle_id: str) -> int:
    return int(cycle_id.lstrip("c"))


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
    stop_reason: str = ""  # why a STOPPED cycle was stopped
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
    status: str = "PENDING"  # PENDING until the exchange answers, then Binance's status
    order_id: int = 0
    executed_qty: Decimal = ZERO
    cumulative_quote_qty: Decimal = ZERO
    task_token: str = ""
    token_state: str = ""  # WAITING, SUCCEEDED, FAILED
    cancel_requested: bool = False
    consultation_id: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    reject_reason: str = ""
    floor_price: Decimal = ZERO  # sells: the cycle's profit floor when it was placed
    unknown_since_ms: int = 0  # when a create-order's outcome became unknown
    exit_reason: str = ""  # sells: "STOP_LOSS" for the one exit allowed below the floor
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


STOP_LOSS_VERDICT = "PLACE:STOP_LOSS"
"""The verdict of a sell placed by the stop-loss rule, below the profit floor."""


def stop_loss_extra(last_price: Decimal, stop_price: Decimal | None) -> dict[str, str]:
    """What a stop-loss consultation records beside its verdict (its ``extra``)."""
    return {"last_price": str(last_price), "stop_price": str(stop_price)}


def stop_loss_evidence(
    record: ConsultationRecord | None, cycle_id: str
) -> tuple[Decimal, Decimal] | None:
    """``(last price, stop price)`` when ``record`` justifies a stop-loss sell of ``cycle_id``.

    That is: the stop-loss rule decided it (verdict ``PLACE:STOP_LOSS``) for that cycle,
    and the last price it saw was at or under the stop price. ``None`` otherwise.
    """
    if record is None or record.verdict != STOP_LOSS_VERDICT or record.cycle_id != cycle_id:
        return None
    try:
        last = Decimal(record.extra["last_price"])
        stop = Decimal(record.extra["stop_price"])
    except (KeyError, ArithmeticError):
        return None
    return (last, stop) if last <= stop else None


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
    verdict: str  # PLACE, PLACE:STOP_LOSS, WAIT or REJECTED:<guard>
    verdict_reason: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: Decimal = ZERO
    latency_ms: int = 0
    raw_answer: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class CycleRepository(Protocol):
    def get(self, cycle_id: str) -> Cycle | None: ...
    def create(self, cycle: Cycle) -> Cycle:
        """Store a new cycle, or return the stored one when it already exists."""
        ...

    def save(self, cycle: Cycle) -> Cycle:
        """Optimistic write: fails with ``ConcurrentUpdate`` when ``version`` moved on."""
        ...

    def all(self) -> list[Cycle]: ...


class OrderRepository(Protocol):
    def get(self, client_order_id: str) -> OrderRecord | None: ...
    def create(self, order: OrderRecord) -> OrderRecord:
        """Store a new order, or return the stored one when the id exists already."""
        ...

    def put(self, order: OrderRecord) -> None: ...
    def update(
        self, client_order_id: str, change: Callable[[OrderRecord | None], OrderRecord]
    ) -> OrderRecord:
        """Read, apply ``change`` (``None``: no order yet), write over exactly what was read;
        read and apply again when another writer came first (none of them is lost)."""
        ...

    def claim_token(self, client_order_id: str, token: str, outcome: str) -> bool:
        """Mark the order's task token used; True only for the first caller with that token."""
        ...

    def open_orders(self, symbol: str) -> list[OrderRecord]:
        """Orders of ``symbol`` that are not final (placed, or about to be)."""
        ...

    def all(self) -> list[OrderRecord]: ...


class FillRepository(Protocol):
    def add(self, fill: Fill) -> bool:
        """Record a fill; False when (client order id, trade id) was recorded already."""
        ...

    def for_order(self, client_order_id: str) -> list[Fill]: ...
    def all(self) -> list[Fill]: ...


class TradeRepository(Protocol):
    def add(self, trade: TradeRecord) -> bool: ...
    def get(self, symbol: str, cycle_id: str) -> TradeRecord | None: ...
    def all(self, symbol: str) -> list[TradeRecord]: ...


class ConsultationRepository(Protocol):
    def add(self, record: ConsultationRecord) -> None: ...
    def get(self, consultation_id: str) -> ConsultationRecord | None: ...
    def for_cycle(self, cycle_id: str) -> list[ConsultationRecord]: ...
    def all(self) -> list[ConsultationRecord]: ...


class MarketRepository(Protocol):
    def put(self, snapshot: Any) -> None: ...
    def get(self, symbol: str) -> Any: ...


class ConcurrentUpdate(RetryableError):
    """Another writer changed the item first; re-read and apply again."""


@dataclass(frozen=True)
class Repositories:
    cycles: CycleRepository
    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    consultations: ConsultationRepository
    market: MarketRepository
