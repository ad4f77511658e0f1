"""Typed inputs of the functions invoked by the state machine and the schedule."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flipbot.domain.errors import InvalidEvent
from flipbot.domain.model import Side

CYCLE_ID = r"^c\d{6}$"


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def parse(cls, event: Any) -> Any:
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
