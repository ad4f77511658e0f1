"""What a consultation costs, and the daily AI budget that stops consulting once spent.

Prices are USD per million tokens, input and output, by model name. The defaults are
the list prices of OpenAI's cheap chat models when this table was written; override them
with ``AI_PRICE_TABLE`` (JSON ``{"model": [input, output], ...}``) when they change or
when another OpenAI-compatible endpoint is used. A model that is in no table is charged
:data:`UNKNOWN_MODEL_PRICE`, deliberately high, so the daily budget still bounds spending.
Cached input tokens are charged at the full input price: the cost is an upper bound.

The budget (:class:`DailyBudget`) lives in process memory: it counts what *this* warm
Lambda sandbox (or this replay) spent since the start of the current UTC day. Several
concurrent sandboxes, or a cold start, each start from zero, so the real daily spend can
exceed the limit by that factor; a budget shared through DynamoDB is the next step.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flipbot.domain.errors import ConfigurationError

__all__ = [
    "DEFAULT_PRICES",
    "UNKNOWN_MODEL_PRICE",
    "DailyBudget",
    "ModelPrice",
    "PriceTable",
    "parse_price_table",
]

_MILLION = Decimal(1_000_000)
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens."""

    input_per_million: Decimal
    output_per_million: Decimal

    def cost(self, tokens_in: int, tokens_out: int) -> Decimal:
        return (
            Decimal(tokens_in) * self.input_per_million
            + Decimal(tokens_out) * self.output_per_million
        ) / _MILLION


def _price(input_usd: str, output_usd: str) -> ModelPrice:
    return ModelPrice(Decimal(input_usd), Decimal(output_usd))


DEFAULT_PRICES: Mapping[str, ModelPrice] = {
    "gpt-4o-mini": _price("0.15", "0.60"),
    "gpt-4o": _price("2.50", "10.00"),
    "gpt-4.1-nano": _price("0.10", "0.40"),
    "gpt-4.1-mini": _price("0.40", "1.60"),
    "gpt-4.1": _price("2.00", "8.00"),
    "gpt-5-nano": _price("0.05", "0.40"),
    "gpt-5-mini": _price("0.25", "2.00"),
    "gpt-5": _price("1.25", "10.00"),
}
"""List prices (USD per 1M tokens in/out) of common OpenAI models; override when they move."""

UNKNOWN_MODEL_PRICE = _price("10", "30")
"""Charged for a model that no table names: high on purpose, so the budget still holds."""


class PriceTable:
    """Looks a model up by exact name, then by the longest known prefix.

    ``gpt-4o-mini-2024-07-18`` is priced as ``gpt-4o-mini``; a provider prefix such as
    ``openai/`` (OpenRouter's naming) is ignored.
    """

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices: dict[str, ModelPrice] = dict(DEFAULT_PRICES if prices is None else prices)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of ``model``, or ``None`` when no entry matches."""
        for name in (model, model.rsplit("/", 1)[-1]):
            if name in self.prices:
                return self.prices[name]
            matches = [known for known in self.prices if name.startswith(known + "-")]
            if matches:
                return self.prices[max(matches, key=len)]
        return None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> Decimal:
        """USD for one call; unknown models at :data:`UNKNOWN_MODEL_PRICE`."""
        price = self.lookup(model) or UNKNOWN_MODEL_PRICE
        return price.cost(tokens_in, tokens_out)


def parse_price_table(text: str) -> dict[str, ModelPrice]:
    """``{"model": [input, output], ...}`` (USD per 1M tokens) on top of the defaults.

    An empty text gives the defaults. Raises :class:`ConfigurationError` naming
    ``AI_PRICE_TABLE`` when the text is not such an object of non-negative numbers.
    """
    prices = dict(DEFAULT_PRICES)
    if not text.strip():
        return prices
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigurationError("AI_PRICE_TABLE is not JSON") from None
    if not isinstance(raw, dict):
        raise ConfigurationError('AI_PRICE_TABLE must be {"model": [input, output], ...}')
    for model, pair in raw.items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigurationError(f"AI_PRICE_TABLE[{model!r}] must be [input, output]")
        try:
            price = ModelPrice(Decimal(str(pair[0])), Decimal(str(pair[1])))
        except InvalidOperation:
            raise ConfigurationError(f"AI_PRICE_TABLE[{model!r}] is not two numbers") from None
        values = (price.input_per_million, price.output_per_million)
        if not all(v.is_finite() and v >= 0 for v in values):
            raise ConfigurationError(f"AI_PRICE_TABLE[{model!r}] must be non-negative numbers")
        prices[str(model)] = price
    return prices


class DailyBudget:
    """USD the AI may cost per UTC day, counted in this process (see the module notes).

    ``now_ms`` is the clock (epoch milliseconds); the digital twin passes its virtual
    clock so that replayed days are budgeted like real ones. A limit of ``0`` disables
    AI consultation. Spending may exceed the limit by at most the call that crossed it:
    the check happens before a call, the charge after it.
    """

    def __init__(self, limit_usd: Decimal, *, now_ms: Callable[[], int]) -> None:
        if not limit_usd.is_finite() or limit_usd < 0:
            raise ConfigurationError(f"AI_DAILY_BUDGET_USD={limit_usd} must be >= 0")
        self.limit_usd = limit_usd
        self._now_ms = now_ms
        self._day = -1
        self._spent = Decimal(0)
        self._lock = threading.Lock()

    def day(self) -> int:
        """Today as days since the epoch (UTC), by the budget's clock."""
        return self._now_ms() // _DAY_MS

    def _roll(self) -> None:
        day = self.day()
        if day != self._day:
            self._day, self._spent = day, Decimal(0)

    def spent(self) -> Decimal:
        """USD spent so far today (UTC)."""
        with self._lock:
            self._roll()
            return self._spent

    def remaining(self) -> Decimal:
        """USD left today; never negative."""
        return max(Decimal(0), self.limit_usd - self.spent())

    def exhausted(self) -> bool:
        """True once today's spending reached the limit."""
        return self.spent() >= self.limit_usd

    def charge(self, usd: Decimal) -> None:
        """Add the cost of a call made today."""
        with self._lock:
            self._roll()
            self._spent += usd
