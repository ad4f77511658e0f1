"""Binance user-data stream messages -> the bot's event models.

Used by the listener (and by the local twin in its place). Accepts the WebSocket-API
wrapper ``{"subscriptionId", "event"}`` and the bare event alike.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from flipbot.domain.errors import InvalidEvent
from flipbot.domain.guards import PRICE_RANGE
from flipbot.domain.model import OrderStatus
from flipbot.events import OrderFilled, OrderUpdated

STATUSES = frozenset(OrderStatus)
"""``X``: Binance's order statuses."""
EXECUTION_TYPES = frozenset(
    {"NEW", "CANCELED", "REPLACED", "REJECTED", "TRADE", "EXPIRED", "TRADE_PREVENTION", "AMENDMENT"}
)
"""``x``: Binance's execution types."""
MAX_INT64 = 2**63 - 1
MAX_PRICE = PRICE_RANGE[1]
MAX_QTY = Decimal("1e11")  # Binance's largest LOT_SIZE maxQty is 9.2e10
MAX_QUOTE = MAX_PRICE * MAX_QTY
_decimal = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch  # as Binance writes amounts


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    inner = message.get("event")
    return inner if isinstance(inner, dict) else message


def order_update_from_execution_report(message: dict[str, Any]) -> OrderUpdated:
    """Translate one ``executionReport``; raises ``InvalidEvent`` naming the bad field.

    Each field must have its documented type: ids and times integers (not numbers in
    strings, floats or booleans) within int64, amounts plain decimal strings as Binance
    writes them (digits and at most one point: nothing negative, no exponent, NaN or
    infinity) up to what a market can hold, a known status and execution type. A report
    that does not is refused whole, never half read.
    """
    e = unwrap(message)
    if e.get("e") != "executionReport":
        raise InvalidEvent(f"not an executionReport: e={e.get('e')!r}")
    if not isinstance(e.get("m"), bool):
        raise InvalidEvent(f"executionReport has a malformed field: m={e.get('m')!r}")
    try:
        if e["X"] not in STATUSES or e["x"] not in EXECUTION_TYPES:
            status, execution = str(e["X"])[:40], str(e["x"])[:40]
            raise InvalidEvent(
                f"executionReport has an unknown status: X={status!r}, x={execution!r}"
            )
        if type(e["s"]) is not str or not e["s"]:
            raise InvalidEvent(f"executionReport has a malformed field: s={str(e['s'])[:40]!r}")
        fields: dict[str, Any] = {
            "symbol": e["s"],
            "order_id": _integer(e, "i", 0),
            "client_order_id": e["c"],
            "orig_client_order_id": e.get("C") or "",
            "side": e["S"],
            "order_type": e["o"],
            "status": e["X"],
            "execution_type": e["x"],
            "price": _amount(e, "p", MAX_PRICE),
            "orig_qty": _amount(e, "q", MAX_QTY),
            "executed_qty": _amount(e, "z", MAX_QTY),
            "cumulative_quote_qty": _amount(e, "Z", MAX_QUOTE),
            "last_qty": _amount(e, "l", MAX_QTY),
            "last_price": _amount(e, "L", MAX_PRICE),
            "last_quote_qty": _amount(e, "Y", MAX_QUOTE, optional=True),
            "commission": _amount(e, "n", MAX_QUOTE, optional=True),
            "commission_asset": e.get("N"),
            "trade_id": _integer(e, "t", -1),
            "is_maker": e["m"],
            "event_time_ms": _integer(e, "E", 1),
            "transaction_time_ms": _integer(e, "T", 1),
            "expiry_reason": e.get("eR") or "",
        }
    except KeyError as missing:
        raise InvalidEvent(f"executionReport lacks field {missing}") from None
    except (InvalidOperation, TypeError, ValueError) as bad:
        raise InvalidEvent(f"executionReport has a malformed field: {bad}") from None
    model = OrderFilled if fields["status"] == "FILLED" else OrderUpdated
    try:
        return model(**fields)
    except ValidationError as exc:
        names = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidEvent(f"executionReport has a malformed field: {names}") from None


def _integer(e: dict[str, Any], key: str, low: int) -> int:
    value = e[key]
    if type(value) is not int or not low <= value <= MAX_INT64:
        raise InvalidEvent(f"executionReport has a malformed field: {key}={str(value)[:40]!r}")
    return value


def _amount(e: dict[str, Any], key: str, high: Decimal, *, optional: bool = False) -> Decimal:
    value = (e.get(key) or "0") if optional else e[key]
    if type(value) is not str or _decimal(value) is None:
        raise InvalidEvent(f"executionReport has a malformed field: {key}={str(value)[:40]!r}")
    amount = Decimal(value)
    if amount > high:
        raise InvalidEvent(f"executionReport has an amount out of range: {key}={value[:40]}")
    return amount


def events_for_execution_report(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The (detail-type, detail) pairs to publish: OrderUpdated always, OrderFilled on FILLED."""
    return events_for_update(order_update_from_execution_report(message))


def events_for_update(update: OrderUpdated) -> list[tuple[str, dict[str, Any]]]:
    """:func:`events_for_execution_report` of an already translated report."""
    detail = update.model_dump(mode="json")
    out = [("OrderUpdated", detail)]
    if update.status == "FILLED":
        out.append(("OrderFilled", detail))
    return out
