"""The structured answer the model gives, and how it becomes a :class:`Decision`.

:class:`AiAnswer` is sent to the endpoint as a strict JSON schema (structured outputs),
so a compliant model can only answer with these fields. Numbers are JSON numbers; they
become ``Decimal`` through their shortest decimal text, so ``0.1234`` stays ``0.1234``.

:func:`to_decision` is deliberately narrow: it checks the *shape* of the answer (finite
numbers, confidence within 0..1) and nothing about its *sense*. Whether a price is
absurd, crosses the spread, sits below the profit floor or comes with too little
confidence is for the hard guards (:mod:`flipbot.domain.guards`), applied by the consult
to every answer, whoever gave it.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flipbot.domain.decision import Decision, PriceRange, SellPlan
from flipbot.domain.model import Side

__all__ = [
    "MAX_TIMEOUT_SECONDS",
    "AiAnswer",
    "AnswerPriceRange",
    "BuyStrategy",
    "InvalidAnswer",
    "MarketAnalysis",
    "SellStrategy",
    "to_decision",
]

MAX_TIMEOUT_SECONDS = 86_400
"""Order timeouts the model suggests are clamped to ``[0, MAX_TIMEOUT_SECONDS]``."""


class AnswerPriceRange(BaseModel):
    """The band of prices the model would still accept for this leg."""

    model_config = ConfigDict(extra="forbid")

    low: float = Field(description="lowest acceptable limit price, quote currency")
    high: float = Field(description="highest acceptable limit price, quote currency")


class BuyStrategy(BaseModel):
    """How the buy order should behave once placed."""

    model_config = ConfigDict(extra="forbid")

    timeout_seconds: int = Field(
        description="how long the buy order may rest unfilled before it is cancelled "
        "and the bot asks again"
    )


class SellStrategy(BaseModel):
    """How the sell order should be priced and how long it may rest."""

    model_config = ConfigDict(extra="forbid")

    suggested_margin: float = Field(
        description="profit over entry price plus fees, as a fraction (0.02 = 2 %)"
    )
    timeout_seconds: int = Field(
        description="how long the sell order may rest before the bot re-prices it"
    )
    price: float | None = Field(
        default=None,
        description="on the BUY leg: the limit price you plan to sell at once the buy fills "
        "(null: no plan); on the SELL leg: null",
    )
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="on the BUY leg: 0..1, how sure you are of that sell plan (null: no plan)",
    )


class MarketAnalysis(BaseModel):
    """The model's reading of the market behind its price (kept in the audit)."""

    model_config = ConfigDict(extra="forbid")

    trend: Literal["UP", "DOWN", "SIDEWAYS"] = Field(description="the short-term trend")
    support: float = Field(description="the nearest support price, quote currency")
    resistance: float = Field(description="the nearest resistance price, quote currency")
    summary: str = Field(description="one sentence: what the market is doing")


class AiAnswer(BaseModel):
    """The model's proposal for one leg of a cycle."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["BUY", "SELL", "WAIT"] = Field(
        description="BUY on the buy leg, SELL on the sell leg, or WAIT to ask again later"
    )
    base_price: float = Field(description="limit price for this leg, quote currency")
    price_range: AnswerPriceRange
    confidence: float = Field(ge=0, le=1, description="0..1: how sure you are")
    reasoning: str = Field(description="one or two sentences: why this price")
    buy_strategy: BuyStrategy
    sell_strategy: SellStrategy
    market_analysis: MarketAnalysis


class InvalidAnswer(ValueError):
    """The answer parsed as JSON but cannot be a decision (non-finite number, bad range)."""


def _decimal(value: float, field: str) -> Decimal:
    if not math.isfinite(value):
        raise InvalidAnswer(f"{field} is not a finite number")
    return Decimal(repr(float(value)))


def _timeout(seconds: int) -> int:
    return max(0, min(MAX_TIMEOUT_SECONDS, int(seconds)))


def _sell_plan(strategy: SellStrategy) -> SellPlan | None:
    """The buy answer's plan for the sell: its price and confidence (both, or no plan),
    its timeout and margin. A price that is not finite makes the answer invalid; whether
    the plan makes sense is for the guards, when the sell leg starts."""
    if strategy.price is None or strategy.confidence is None:
        return None
    if not math.isfinite(strategy.confidence):
        raise InvalidAnswer("sell_strategy.confidence is not a finite number")
    return SellPlan(
        price=_decimal(strategy.price, "sell_strategy.price"),
        confidence=strategy.confidence,
        timeout_seconds=_timeout(strategy.timeout_seconds),
        suggested_margin=_decimal(strategy.suggested_margin, "sell_strategy.suggested_margin"),
    )


def to_decision(answer: AiAnswer, leg: Side) -> Decision:
    """The :class:`Decision` for ``leg``: the leg's strategy supplies timeout and margin;
    on the buy leg, a ``sell_strategy`` with a price and a confidence is the sell plan.

    Raises :class:`InvalidAnswer` when a number is not finite or the confidence is outside
    ``0..1``. Prices are passed through as given (even zero, negative or absurd ones): the
    guards reject those with a recorded reason.
    """
    base_price = _decimal(answer.base_price, "base_price")
    low = _decimal(answer.price_range.low, "price_range.low")
    high = _decimal(answer.price_range.high, "price_range.high")
    plan = None
    if leg is Side.BUY:
        timeout = _timeout(answer.buy_strategy.timeout_seconds)
        margin = None
        plan = _sell_plan(answer.sell_strategy)
    else:
        timeout = _timeout(answer.sell_strategy.timeout_seconds)
        margin = _decimal(answer.sell_strategy.suggested_margin, "sell_strategy.suggested_margin")
    if not math.isfinite(answer.confidence):
        raise InvalidAnswer("confidence is not a finite number")
    try:
        return Decision(
            action=answer.action,
            base_price=base_price,
            price_range=PriceRange(low=min(low, high), high=max(low, high)),
            confidence=answer.confidence,
            reasoning=answer.reasoning.strip(),
            timeout_seconds=timeout,
            suggested_margin=margin,
            market_analysis={
                "trend": answer.market_analysis.trend,
                "support": repr(answer.market_analysis.support),
                "resistance": repr(answer.market_analysis.resistance),
                "summary": answer.market_analysis.summary.strip()[:300],
            },
            sell_plan=plan,
        )
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise InvalidAnswer(f"answer does not fit a decision ({fields})") from None
