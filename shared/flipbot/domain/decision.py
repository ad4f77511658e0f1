"""The answer schema every decision maker returns (AI and offline strategy alike)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flipbot.domain.entities import TradeRecord
from flipbot.domain.model import BookDepth, MarketSnapshot, Side


class PriceRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    low: Decimal
    high: Decimal


class SellPlan(BaseModel):
    """The sell a buy leg's answer plans for once its buy fills: checked against the live
    market when the sell leg starts, and placed as planned when it still holds."""

    model_config = ConfigDict(frozen=True)

    price: Decimal = Field(description="the planned sell limit price")
    confidence: float = Field(ge=0.0, le=1.0)
    timeout_seconds: int = Field(default=900, ge=0, description="how long the sell may rest")
    suggested_margin: Decimal | None = None


class Decision(BaseModel):
    """One leg's decision: act (place a limit order near ``base_price``) or wait."""

    model_config = ConfigDict(frozen=True)

    action: Literal["BUY", "SELL", "WAIT"]
    base_price: Decimal = Field(description="limit price the maker proposes")
    price_range: PriceRange | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = ""
    timeout_seconds: int = Field(default=900, ge=0, description="how long the order may rest")
    suggested_margin: Decimal | None = Field(default=None, description="sell margin over entry")
    #: the AI's reading of the market (trend, support, resistance, summary), audited
    market_analysis: dict[str, str] | None = None
    #: BUY leg only: the sell planned for after the fill (None: no plan, ask then)
    sell_plan: SellPlan | None = None


class TradingContext(BaseModel):
    """How the bot's last closed trades went, for the decision maker."""

    model_config = ConfigDict(frozen=True)

    #: how many closed trades these figures cover (the last ones, at most
    #: :data:`TRADING_CONTEXT_TRADES`)
    trades: int = Field(ge=0)
    #: the last trade's realized P&L after fees and AI cost (quote)
    last_profit: Decimal | None = None
    #: seconds from placing to filling, buy and sell averaged over the trades
    avg_fill_time: float | None = None
    #: the share of the trades that made money after fees and AI cost, 0..1
    success_rate: float | None = None


#: how many of the last closed trades :func:`trading_context` sums up
TRADING_CONTEXT_TRADES = 20


def trading_context(trades: Sequence[TradeRecord]) -> TradingContext:
    """The :class:`TradingContext` of ``trades`` (in the order they closed): the last
    :data:`TRADING_CONTEXT_TRADES` of them."""
    last = list(trades)[-TRADING_CONTEXT_TRADES:]
    if not last:
        return TradingContext(trades=0)
    net = [t.realized_pnl - t.ai_cost_usd for t in last]
    fills = [t.buy_fill_seconds + t.sell_fill_seconds for t in last]
    return TradingContext(
        trades=len(last),
        last_profit=net[-1],
        avg_fill_time=round(sum(fills) / (2 * len(fills)), 1),
        success_rate=round(sum(1 for n in net if n > 0) / len(net), 4),
    )


class DecisionRequest(BaseModel):
    """What a decision maker is told: the leg, the market and the cycle's constraints."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    leg: Side
    symbol: str
    snapshot: MarketSnapshot
    quote_per_cycle: Decimal
    min_confidence: float
    min_profit: Decimal
    target_profit: Decimal
    fee_rate_round_trip: Decimal
    entry_price: Decimal | None = None  # SELL leg only
    floor_price: Decimal | None = None  # SELL leg only: the lowest acceptable price
    quantity: Decimal | None = None  # SELL leg only: what is held
    #: SELL leg only: entry x (1 + fees + target_profit), within the floor and what the
    #: book allows (no higher than the guards let a sell rest): where a sell aims first
    target_price: Decimal | None = None
    #: SELL leg only: which sell of the cycle this is (1: the first; each re-pricing or
    #: refused placement adds one)
    sell_attempt: int = Field(default=1, ge=1)
    #: SELL leg only: how many times a sell steps down from the target toward the floor
    #: (0: the first sell rests until it fills, so it is not put at the target)
    reprice_steps: int = Field(default=0, ge=0)
    #: how the bot's last closed trades went (None: not looked up)
    trading_context: TradingContext | None = None
    #: the top levels of the order book when the consultation began (None: not read)
    depth: BookDepth | None = None
