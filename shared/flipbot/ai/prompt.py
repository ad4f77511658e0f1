"""The versioned prompt: a fixed system message and a user message carrying the context.

Change :data:`PROMPT_VERSION` whenever the wording or the context layout changes: every
consultation record stores it, so answers (and their accuracy) can be compared by
version. The user message is one line of text followed by the context as compact JSON;
:func:`context_from_messages` reads that JSON back (the local fake endpoint uses it to
answer like a model that read the market).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PROMPT_VERSION", "SYSTEM_PROMPT", "build_messages", "context_from_messages"]

PROMPT_VERSION = "flip-v3"

SYSTEM_PROMPT = """\
You price limit orders for a spot-market flip bot on Binance. Each cycle buys with one \
resting LIMIT order below the market, then sells what it bought with one LIMIT order \
above the entry price. You are asked about ONE leg, named in the context ("leg").

Code enforces these limits whatever you answer; an answer that breaks one is rejected:
- BUY: the price must be below the best ask (the order must rest on the book) and not \
lower than the best bid minus price_band (a fraction); quote_per_cycle is the most spent.
- SELL: the price must be at or above position.floor_price (entry + fees + min_profit).

On the SELL leg, aim for position.target_price (the target profit, within what the book \
allows) on the first sell (position.sell_attempt 1). A later attempt means the sell before \
it rested unfilled past its timeout: step toward the floor, about one of \
position.reprice_steps steps each time. position.profit_now_of_target_pct is how much of \
the target the current price would give after fees.
- Any action with confidence below constraints.min_confidence is not acted on.

Answer with the JSON schema only:
- action: "BUY" on the buy leg, "SELL" on the sell leg, or "WAIT" when no price is good now.
- base_price: the limit price for this leg, in the quote currency.
- price_range: the lowest and highest limit price you would still accept.
- confidence: 0..1.
- reasoning: one or two short sentences citing the context.
- buy_strategy.timeout_seconds: how long a buy may rest unfilled before asking again.
- sell_strategy.suggested_margin: profit over entry plus fees, as a fraction; \
sell_strategy.timeout_seconds: how long a sell may rest before it is re-priced (code \
bounds it).
- On the BUY leg, also plan the sell for once the buy fills: sell_strategy.price (the \
limit price you would sell at, at or above the buy price x (1 + fees + min_profit)) and \
sell_strategy.confidence (0..1). When the buy fills, code checks that plan against the \
live market and places it without asking you again if it still holds. Null for no plan. \
On the SELL leg both are null.
- market_analysis: your reading of the market: trend (UP, DOWN or SIDEWAYS), the nearest \
support and resistance prices, and a one-sentence summary.
market.price_change_1m and market.volume_change_1m are the last closed minute against the \
one before, in percent. market.depth_top10 holds the order book's top levels (bids and \
asks, best first, [price, quantity]); market.imbalance_top10 is their bid-ask imbalance \
(-1 only asks .. 1 only bids). market.btc_correlation is how the last hour's 1-minute \
returns moved with BTC's (-1..1). A buy is also bounded by code to a share of the bids \
near its price and to a small premium over the mid.
trading_context tells how the bot's last closed trades went: last_profit (quote, after \
fees and AI cost), avg_fill_time (seconds an order took to fill), success_rate (0..1).
Use only the data in the context; a null value is unknown."""


def build_messages(context: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat messages for one consultation (system, then user with the context)."""
    leg = context.get("leg", "?")
    user = f"Leg: {leg}. Context (prompt {PROMPT_VERSION}):\n" + json.dumps(
        context, sort_keys=True, separators=(",", ":")
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": user},
    ]


def context_from_messages(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The context JSON of the last user message built by :func:`build_messages`, if any."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if not isinstance(content, str) or "\n" not in content:
            return None
        try:
            value = json.loads(content.split("\n", 1)[1])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    return None
