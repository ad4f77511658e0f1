"""The stop-loss evidence rule: when a sell below the profit floor is justified.

A stop-loss sell is the one exit allowed under the floor. Its consultation records the
last price it saw and the stop price (:func:`stop_loss_extra`); a sell is justified only
by such a record of its own cycle whose last price was at or under the stop price.
"""

from __future__ import annotations

from decimal import Decimal

from flipbot.domain.entities import ConsultationRecord, Verdict

STOP_LOSS_VERDICT = Verdict.PLACE_STOP_LOSS
"""The verdict of a sell placed by the stop-loss rule, below the profit floor."""

STOP_LOSS_DECIDER = "stop-loss"
"""Who decided a stop-loss exit (``decided_by`` in its consultation and ConsultAi's answer)."""


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
