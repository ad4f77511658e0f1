"""How several models' answers become one decision: the voting rule.

Each configured model answers the same request (or fails: timeout, HTTP error, an
answer that is not the schema). :func:`tally` combines the answers:

1. **Quorum.** More than half of the configured models must answer
   (:func:`quorum`: 2 of 3, 2 of 2, 3 of 4). Models that failed are left out of the
   vote; they do not block it. Without a quorum there is no decision, and the caller
   treats the vote as an unavailable AI (the fallback decides).
2. **Agreement on the action.** Every model that answered must give the same action
   (``BUY``, ``SELL`` or ``WAIT``). When they differ the decision is ``WAIT`` with
   confidence 0: the buy leg waits and asks again, the sell leg is treated as an unsure
   answer (under ``SellRule=floor`` it sells at the floor, otherwise it asks again).
3. **The numbers.** The price is the median of the answers' prices (the mean of the two
   middle ones for an even count, put on the tick later by the guards); the price range,
   timeout and suggested margin are the medians of those given; the confidence is the
   lowest one, so the vote is never surer than its least sure member. The market
   analysis is the first answering model's (in the configured order). A buy's sell plan
   is combined the same way (median price, lowest confidence) when every answer has one;
   otherwise the vote has no plan and the sell leg asks again.

The guards then check the combined decision exactly as they check a single model's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from flipbot.domain.decision import Decision, PriceRange, SellPlan

__all__ = ["Tally", "Vote", "quorum", "tally"]


@dataclass(frozen=True)
class Vote:
    """One model's part in a vote: its answer, or why it has none, and what it cost."""

    model: str
    decision: Decision | None
    #: the failure's code (``timeout``, ``server_error``, ...); empty when it answered
    error: str = ""
    cost_usd: Decimal = Decimal(0)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0

    @property
    def answered(self) -> bool:
        return self.decision is not None


@dataclass(frozen=True)
class Tally:
    """The vote's outcome: the combined decision (None: no quorum) and why."""

    decision: Decision | None
    #: every answering model gave the same action
    agreed: bool
    answered: int
    configured: int
    reason: str


def quorum(configured: int) -> int:
    """How many of ``configured`` models must answer for the vote to count."""
    return configured // 2 + 1


def tally(votes: Sequence[Vote]) -> Tally:
    """Combine ``votes`` by the rule of the module docstring."""
    answers = [(v.model, v.decision) for v in votes if v.decision is not None]
    configured, answered = len(votes), len(answers)
    if answered < quorum(configured):
        failed = ", ".join(f"{v.model} ({v.error or 'no answer'})" for v in votes if not v.answered)
        return Tally(
            None,
            False,
            answered,
            configured,
            f"{answered} of {configured} models answered, {quorum(configured)} needed; "
            f"failed: {failed}",
        )
    actions = sorted({d.action for _, d in answers})
    decisions = [d for _, d in answers]
    price = _median([d.base_price for d in decisions])
    if len(actions) > 1:
        split = "; ".join(
            f"{action} ({', '.join(m for m, d in answers if d.action == action)})"
            for action in actions
        )
        return Tally(
            Decision(
                action="WAIT",
                base_price=price,
                confidence=0.0,
                reasoning=f"models disagree: {split}",
                timeout_seconds=int(median(d.timeout_seconds for d in decisions)),
            ),
            False,
            answered,
            configured,
            f"models disagree: {split}",
        )
    lows = [d.price_range.low for d in decisions if d.price_range is not None]
    highs = [d.price_range.high for d in decisions if d.price_range is not None]
    margins = [d.suggested_margin for d in decisions if d.suggested_margin is not None]
    confidence = min(d.confidence for d in decisions)
    reason = (
        f"{answered} of {configured} models agree on {actions[0]}: median price {price} "
        f"of {', '.join(str(d.base_price) for d in decisions)}, lowest confidence {confidence}"
    )
    first = decisions[0]
    return Tally(
        Decision(
            action=actions[0],
            base_price=price,
            price_range=PriceRange(low=_median(lows), high=_median(highs)) if lows else None,
            confidence=confidence,
            reasoning=f"{reason}. {first.reasoning}"[:1000],
            timeout_seconds=int(median(d.timeout_seconds for d in decisions)),
            suggested_margin=_median(margins) if margins else None,
            market_analysis=next((d.market_analysis for d in decisions if d.market_analysis), None),
            sell_plan=_plan([d.sell_plan for d in decisions]),
        ),
        True,
        answered,
        configured,
        reason,
    )


def _plan(plans: Sequence[SellPlan | None]) -> SellPlan | None:
    """The answers' sell plans combined, when every answer has one."""
    given = [p for p in plans if p is not None]
    if not given or len(given) < len(plans):
        return None
    margins = [p.suggested_margin for p in given if p.suggested_margin is not None]
    return SellPlan(
        price=_median([p.price for p in given]),
        confidence=min(p.confidence for p in given),
        timeout_seconds=int(median(p.timeout_seconds for p in given)),
        suggested_margin=_median(margins) if margins else None,
    )


def _median(values: Sequence[Decimal]) -> Decimal:
    return Decimal(median(values))
