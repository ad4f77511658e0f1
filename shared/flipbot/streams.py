"""Binance user-data stream messages -> the bot's event models.

Used by the listener (and by the local twin in its place). Accepts the WebSocket-API
wrapper ``{"subscriptionId", "event"}`` and the bare event alike.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from flipbot.domain.errors import InvalidEvent
from flipbot.events import OrderFilled, OrderUpdated


def unwrap(message: dict[str, Any]) -> dict[str, Any]:
    inner = message.get("event")
    return inner if isinstance(inner, dict) else message


def order_update_from_execution_report(message: dict[str, Any]) -> OrderUpdated:
    """Translate one ``executionReport``; raises ``InvalidEvent`` naming the bad field.

    Each field must have its documented type and every amount be a finite number, not
    negative: a report that does not is refused whole, never half read.
    """
    e = unwrap(message)
    if e.get("e") != "executionReport":
        raise InvalidEvent(f"not an executionReport: e={e.get('e')!r}")
    if not isinstance(e.get("m"), bool):
        raise InvalidEvent(f"executionReport has a malformed field: m={e.get('m')!r}")
    try:
        fields: dict[str, Any] = {
            "symbol": e["s"],
            "order_id": int(e["i"]),
            "client_order_id": e["c"],
            "orig_client_order_id": e.get("C") or "",
            "side": e["S"],
            "order_type": e["o"],
            "status": e["X"],
            "execution_type": e["x"],
            "price": Decimal(e["p"]),
            "orig_qty": Decimal(e["q"]),
            "executed_qty": Decimal(e["z"]),
            "cumulative_quote_qty": Decimal(e["Z"]),
            "last_qty": Decimal(e["l"]),
            "last_price": Decimal(e["L"]),
            "last_quote_qty": Decimal(e.get("Y") or "0"),
            "commission": Decimal(e.get("n") or "0"),
            "commission_asset": e.get("N"),
            "trade_id": int(e["t"]),
            "is_maker": e["m"],
            "event_time_ms": int(e["E"]),
            "transaction_time_ms": int(e["T"]),
            "expiry_reason": e.get("eR") or "",
        }
    except KeyError as missing:
        raise InvalidEvent(f"executionReport lacks field {missing}") from None
    except (InvalidOperation, TypeError, ValueError) as bad:
        raise InvalidEvent(f"executionReport has a malformed field: {bad}") from None
    negative = [k for k, v in fields.items() if isinstance(v, Decimal) and v.is_signed()]
    if negative:
        raise InvalidEvent(f"executionReport has negative amounts: {', '.join(negative)}")
    model = OrderFilled if fields["status"] == "FILLED" else OrderUpdated
    try:
        return model(**fields)
    except ValidationError as exc:
        names = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidEvent(f"executionReport has a malformed field: {names}") from None


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
