"""Interfaces between the use cases (``flipbot.app``) and the outside world.

The domain and the use cases depend on these protocols only; adapters implement them
(``flipbot.adapters``) and the composition root (``flipbot.composition``) wires them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flipbot.domain.decision import Decision, DecisionRequest
    from flipbot.domain.entities import ConsultationRecord, Cycle, OrderRecord, TradeRecord
    from flipbot.domain.fees import FeeSchedule
    from flipbot.domain.filters import SymbolRules
    from flipbot.domain.model import (
        Balance,
        BookDepth,
        BookTop,
        Fill,
        MarketSnapshot,
        OrderRequest,
        OrderState,
        Side,
    )
    from flipbot.settings import Settings


class Clock(Protocol):
    def now_ms(self) -> int: ...


class ExchangePort(Protocol):
    """The bot's view of Binance spot. Raises only ``flipbot.domain.errors`` types."""

    def symbol_rules(self, symbol: str) -> SymbolRules: ...

    def fee_schedule(self, symbol: str) -> FeeSchedule: ...

    def book_top(self, symbol: str) -> BookTop: ...

    def order_book(self, symbol: str, limit: int = 10) -> BookDepth:
        """The top ``limit`` levels of each side, best first."""
        ...

    def place_limit(self, request: OrderRequest) -> OrderState:
        """Place a LIMIT GTC order. Raises ``UnknownOrderOutcome`` when the outcome is unknown."""
        ...

    def get_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """The order by client order id, or ``None`` when the exchange does not know it."""
        ...

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState: ...

    def open_orders(self, symbol: str) -> Sequence[OrderState]: ...

    def my_trades(self, symbol: str, *, order_id: int | None = None) -> Sequence[Fill]: ...

    def balances(self) -> Mapping[str, Balance]: ...


class DecisionMaker(Protocol):
    """Answers 'at what price, how sure?' for one leg. AI and offline strategies alike.

    A decision maker whose ``reprices_sells`` attribute is false (one whose sells follow
    its own exit rules) takes no part in the sell leg's target-first re-pricing; without
    the attribute it does.
    """

    name: str

    def decide(self, request: DecisionRequest) -> Decision: ...


class MarketSource(Protocol):
    def snapshot(self, symbol: str) -> MarketSnapshot | None: ...


class EventPublisher(Protocol):
    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class WorkflowPort(Protocol):
    """Step Functions callbacks."""

    def task_succeeded(self, task_token: str, output: Mapping[str, Any]) -> None: ...

    def task_failed(self, task_token: str, error: str, cause: str) -> None: ...

    def task_heartbeat(self, task_token: str) -> None: ...

    def running_cycles(self) -> list[tuple[str, str]]:
        """(execution name, execution ARN) of every running cycle."""
        ...

    def start_cycle(self, name: str, cycle_input: Mapping[str, Any]) -> None: ...

    def stop_cycle(self, execution_arn: str, cause: str) -> None: ...

    def ended_cycles(self) -> list[tuple[str, str]]:
        """(execution name, status) of the latest executions that ended without succeeding:
        ``ABORTED`` (stopped), ``FAILED`` or ``TIMED_OUT``, newest first."""
        ...


class KillSwitch(Protocol):
    def engaged(self, symbol: str = "") -> bool:
        """New orders are stopped: for every symbol, or for ``symbol`` alone."""
        ...


MoneyMap = Mapping[str, Decimal]


# --- storage ---------------------------------------------------------------------------
class CycleRepository(Protocol):
    def get(self, cycle_id: str) -> Cycle | None: ...
    def create(self, cycle: Cycle) -> Cycle:
        """Store a new cycle, or return the stored one when it already exists."""
        ...

    def save(self, cycle: Cycle) -> Cycle:
        """Optimistic write: fails with ``ConcurrentUpdate`` when ``version`` moved on."""
        ...

    def all(self) -> list[Cycle]: ...
    def open_cycles(self, symbol: str) -> list[Cycle]:
        """The cycles of ``symbol`` not ended yet (read by index, not by scanning)."""
        ...


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
    def recent(self, symbol: str, limit: int) -> list[TradeRecord]:
        """The last ``limit`` trades of ``symbol`` (by cycle id), in the order they closed."""
        ...


class ConsultationRepository(Protocol):
    def add(self, record: ConsultationRecord) -> None: ...
    def get(self, consultation_id: str) -> ConsultationRecord | None: ...
    def for_cycle(self, cycle_id: str) -> list[ConsultationRecord]: ...
    def any_for_leg(self, cycle_id: str, leg: Side) -> bool:
        """Whether a consultation of ``cycle_id``'s ``leg`` is on record (one item read)."""
        ...

    def all(self) -> list[ConsultationRecord]: ...


class MarketRepository(Protocol):
    def put(self, snapshot: Any) -> None: ...
    def get(self, symbol: str) -> Any: ...


@dataclass(frozen=True)
class Repositories:
    cycles: CycleRepository
    orders: OrderRepository
    fills: FillRepository
    trades: TradeRepository
    consultations: ConsultationRepository
    market: MarketRepository


# --- what the use cases are given ------------------------------------------------------
class Services(Protocol):
    """Built lazily by ``flipbot.composition``: a function pays only for what it touches."""

    @property
    def settings(self) -> Settings: ...
    @property
    def repos(self) -> Repositories: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def workflow(self) -> WorkflowPort: ...
    @property
    def kill_switch(self) -> KillSwitch: ...
    @property
    def exchange(self) -> ExchangePort: ...
    @property
    def decider(self) -> DecisionMaker: ...
    def for_symbol(self, symbol: str) -> Services:
        """The same parts as ``symbol``'s cycle chain uses them."""
        ...
