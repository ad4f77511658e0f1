"""Interfaces between the use cases (``flipbot.app``) and the outside world.

The domain and the use cases depend on these protocols only; adapters implement them
(``flipbot.adapters``) and the composition root (``flipbot.composition``) wires them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from flipbot.domain.decision import Decision, DecisionRequest
    from flipbot.domain.fees import FeeSchedule
    from flipbot.domain.filters import SymbolRules
    from flipbot.domain.model import (
        Balance,
        BookTop,
        Fill,
        MarketSnapshot,
        OrderRequest,
        OrderState,
    )


class Clock(Protocol):
    def now_ms(self) -> int: ...


class ExchangePort(Protocol):
    """The bot's view of Binance spot. Raises only ``flipbot.domain.errors`` types."""

    def symbol_rules(self, symbol: str) -> SymbolRules: ...

    def fee_schedule(self, symbol: str) -> FeeSchedule: ...

    def book_top(self, symbol: str) -> BookTop: ...

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
    """Answers 'at what price, how sure?' for one leg. AI and offline strategies alike."""

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
    def engaged(self) -> bool: ...


MoneyMap = Mapping[str, Decimal]
