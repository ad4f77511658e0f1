"""The state machine's contracts: each task's input and output, and the execution's state.

``statemachine/trade_cycle.asl.json`` passes these between the functions: a handler
parses its input with the request model (``InvalidEvent`` names each bad field) and
returns ``<Result>.model_dump(mode="json")``, validated on the way out (an output field
the model does not declare is an error, not a silent extra). :class:`CycleDocument` is
the execution's state document, the shape every ``$.`` path of the definition reads;
tests/unit/test_contracts.py walks the definition against these models.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flipbot.domain.cycle import CYCLE_ID_PATTERN, cycle_id_for
from flipbot.domain.errors import InvalidEvent
from flipbot.domain.model import Side

#: ``c000001``... (six digits at least: the millionth cycle is ``c1000000``), and
#: ``BTCUSDC_c000001``... for a symbol other than the stack's ``Symbol``
CYCLE_ID = CYCLE_ID_PATTERN


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def parse(cls, event: Any) -> Self:
        """Validate an incoming event; ``InvalidEvent`` names each offending field and value."""
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'event'}={e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            )
            raise InvalidEvent(f"{cls.__name__}: {problems}") from None


class ConsultRequest(_Request):
    cycle_id: str = Field(pattern=CYCLE_ID)
    leg: Side
    attempt: int = Field(ge=1)
    #: ``decide`` a leg's next order, or ``check`` whether a resting sell should stay.
    purpose: Literal["decide", "check"] = "decide"
    #: ``check`` only: the resting sell is re-priced once it has rested this long (0: never)
    reprice_seconds: int = Field(default=0, ge=0)
    #: the caller's definition re-prices a resting sell (its CheckSell passes
    #: ``reprice_seconds``); an execution of an older definition does not say so, and its
    #: sells are placed to rest until they fill
    reprices: bool = False


class PlaceOrderRequest(_Request):
    task_token: str = Field(min_length=1)
    cycle_id: str = Field(pattern=CYCLE_ID)
    leg: Side
    attempt: int = Field(ge=1)
    price: Decimal = Field(gt=0, allow_inf_nan=False)
    quantity: Decimal = Field(gt=0, allow_inf_nan=False)
    consultation_id: str = ""


class CancelOrderRequest(_Request):
    cycle_id: str = Field(pattern=CYCLE_ID)
    leg: Side
    attempt: int = Field(ge=1)


class RecordTradeRequest(_Request):
    cycle_id: str = Field(pattern=CYCLE_ID)


class CycleReconcileRequest(_Request):
    source: str = "cycle"
    cycle_id: str = Field(pattern=CYCLE_ID)
    error: dict[str, Any] | None = None


# --- outputs ----------------------------------------------------------------------------
class ConsultAction(StrEnum):
    """What the cycle does after a leg's consultation (``BuyGate``/``SellGate``)."""

    PLACE = "PLACE"
    WAIT = "WAIT"
    DUST = "DUST"  # nothing sellable is held: the cycle is recorded as it stands
    END = "END"  # the buy leg's symbol left SYMBOLS: its chain ends before it buys


class SellCheckAction(StrEnum):
    """Whether a resting sell stays (``SellCheckGate``)."""

    KEEP = "KEEP"
    REPLACE = "REPLACE"


class Resume(StrEnum):
    """Where a cycle goes on after the reconcile task (``ResumeAfterReconcile``)."""

    CONSULT_BUY = "CONSULT_BUY"
    CONSULT_SELL = "CONSULT_SELL"
    RECORD = "RECORD"
    STOP = "STOP"
    FAIL = "FAIL"


class ResumeAt(StrEnum):
    """Where a recovered execution starts (``ResumeAt``), given in its input."""

    WAIT_BUY = "WAIT_BUY"
    WAIT_SELL = "WAIT_SELL"
    CONSULT_SELL = "CONSULT_SELL"


class _Kept(BaseModel):
    """What a task's ResultSelector (or a Pass state) keeps of its output in the state
    document (:class:`CycleDocument`); each task's answer extends what is kept of it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _Result(_Kept):
    def dump(self) -> dict[str, Any]:
        """What the handler returns (JSON types, JSON names): the fields the answer set;
        an optional one it left out stays out."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class DecisionKept(_Kept):
    """``$.buy_decision``, ``$.sell_decision``: what the Place states and gates read."""

    action: ConsultAction
    price: str | None  # a Decimal as text, PLACE only
    quantity: str | None
    wait_seconds: int = Field(ge=0)
    timeout_seconds: int = Field(ge=0)
    heartbeat_seconds: int = Field(ge=0)
    consultation_id: str
    confidence: float
    reason: str
    guard: str  # the guard that rejected the decision, "" when none did
    #: a sell: how long it rests before it is re-priced a step lower (0: until it fills);
    #: required, since CheckSell reads it from every sell decision
    reprice_seconds: int = Field(ge=0)


class ConsultResult(DecisionKept, _Result):
    """ConsultAi (``purpose: decide``): the leg's next order, or how long to wait."""

    #: who decided ("stop-loss", a model, "vote:...", "plan:...", "offline", "fallback:...");
    #: absent when no one was asked
    decided_by: str | None = None
    cost_usd: str | None = None
    ai_error: str | None = None
    #: true when the AI was not asked because its daily budget is spent (the metric the
    #: AiBudgetSpent alarm watches); left out otherwise
    ai_budget_spent: bool = False
    #: the circuit breaker that paused this buy consultation (the metric the
    #: CircuitBreaker alarm watches); left out otherwise
    breaker: str | None = None


class SellCheckKept(_Kept):
    """``$.sell_check``."""

    action: SellCheckAction
    reason: str


class SellCheckResult(SellCheckKept, _Result):
    """ConsultAi (``purpose: check``): keep the resting sell or replace it."""

    timeout_seconds: int = Field(ge=0)


class PlaceOrderResult(_Result):
    """PlaceOrder's own answer (its task waits for the order's callback, not this)."""

    client_order_id: str
    order_id: int
    status: str
    reason: str | None = None  # why the bot or the exchange refused it


class FillSummary(_Result):
    """The output a waiting Place task resumes with, kept whole (``$.buy_fill``,
    ``$.sell_fill``)."""

    client_order_id: str
    status: str
    executed_qty: str
    cumulative_quote_qty: str
    avg_price: str
    commissions: dict[str, str]
    fills: int = Field(ge=0)


class CancelKept(_Kept):
    """``$.buy_cancel``, ``$.sell_cancel``."""

    executed: bool
    status: str


class CancelResult(CancelKept, _Result):
    """CancelOrder: what the leg's order ended as, and whether any of it filled."""

    client_order_id: str


class RecordKept(_Kept):
    """``$.record``: the next cycle's id, and whether it starts."""

    next_cycle_id: str = Field(pattern=CYCLE_ID)
    #: ``continue`` in JSON (a Python keyword)
    continue_: bool = Field(alias="continue")


class RecordTradeResult(RecordKept, _Result):
    """RecordTrade: the closed cycle, and whether the next one starts."""

    realized_pnl: str
    closed: bool  # False on a retry that finds the trade recorded: counted once
    fill_seconds: dict[str, float] = Field(default_factory=dict)


class ReconcileKept(_Kept):
    """``$.reconcile``: where the cycle goes on, and why."""

    resume: Resume
    reason: str


class ReconcileCycleResult(ReconcileKept, _Result):
    """Reconcile (``source: cycle``): where the cycle goes on, and what was repaired."""

    repaired_fills: int = Field(ge=0)
    resumed: int = Field(ge=0)
    heartbeats: int = Field(ge=0)
    configuration_error: str | None = None
    halted: list[str] | None = None


# --- the execution's state document ------------------------------------------------------
class TaskError(_Kept):
    """What a Catch puts at ``$.error``: the error's name and its cause."""

    Error: str
    Cause: str = ""


class Lineage(_Kept):
    """``$.lineage``: the execution a cycle's long wait began in (``name``) and how many
    executions have continued it since (``generation``). A continuation is named
    ``<name>-continued-<generation>``."""

    name: str = Field(min_length=1, max_length=80)
    generation: int = Field(ge=0)


class TurnCount(_Kept):
    """``$.turns``: the wait-loop turns this execution has taken."""

    n: int = Field(ge=0)


class CycleInput(_Kept):
    """An execution's input: the first cycle's, the next cycle's, a recovered one's
    (which resumes at a Place state with the resting order as its decision), or one that
    continues a long wait (which carries its ``lineage``)."""

    cycle_id: str = Field(pattern=CYCLE_ID)
    attempt: int = Field(ge=1)
    sell_attempt: int = Field(ge=1)
    resume: ResumeAt | None = None
    buy_decision: DecisionKept | None = None
    sell_decision: DecisionKept | None = None
    started_by: str | None = Field(default=None, alias="AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID")
    lineage: Lineage | None = None

    @classmethod
    def first(cls, symbol_part: str) -> dict[str, Any]:
        """The input of a chain's first execution (``symbol_part``: ``""`` for the stack's
        ``Symbol``, the symbol for another's): its first cycle, from its first attempts."""
        first = cls(cycle_id=cycle_id_for(1, symbol_part), attempt=1, sell_attempt=1)
        return first.model_dump(exclude_none=True)


class CycleDocument(CycleInput):
    """The execution's state document: the input plus what each task keeps at its
    ``ResultPath``. Every ``$.`` path of the definition reads or writes a field of it."""

    turns: TurnCount | None = None
    buy_fill: FillSummary | None = None
    buy_cancel: CancelKept | None = None
    sell_fill: FillSummary | None = None
    sell_check: SellCheckKept | None = None
    sell_cancel: CancelKept | None = None
    record: RecordKept | None = None
    reconcile: ReconcileKept | None = None
    error: TaskError | None = None
