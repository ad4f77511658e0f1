"""Model prices, the price table from configuration, and the per-UTC-day budget."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.ai.cost import (
    UNKNOWN_MODEL_PRICE,
    DailyBudget,
    ModelPrice,
    PriceTable,
    parse_price_table,
)
from flipbot.domain.errors import ConfigurationError

DAY = 86_400_000


def test_cost_is_usd_per_million_tokens_in_and_out() -> None:
    table = PriceTable()
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == Decimal("0.15")
    assert table.cost("gpt-4o-mini", 2000, 500) == Decimal("0.0006")


@pytest.mark.parametrize(
    ("model", "known"),
    [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ],
)
def test_dated_and_provider_prefixed_names_find_their_model(model: str, known: str) -> None:
    table = PriceTable()
    assert table.lookup(model) == table.prices[known]


def test_an_unknown_model_is_charged_the_high_default() -> None:
    table = PriceTable()
    assert table.lookup("deepseek-chat") is None
    assert table.cost("deepseek-chat", 1_000_000, 1_000_000) == (
        UNKNOWN_MODEL_PRICE.input_per_million + UNKNOWN_MODEL_PRICE.output_per_million
    )


def test_the_configured_table_adds_and_overrides_models() -> None:
    prices = parse_price_table('{"deepseek-chat": [0.27, 1.10], "gpt-4o-mini": ["0.1", "0.5"]}')
    assert prices["deepseek-chat"] == ModelPrice(Decimal("0.27"), Decimal("1.1"))
    assert prices["gpt-4o-mini"] == ModelPrice(Decimal("0.1"), Decimal("0.5"))
    assert "gpt-4o" in prices
    assert parse_price_table("") == parse_price_table("  ")


@pytest.mark.parametrize(
    "text",
    ["not json", "[1, 2]", '{"m": [1]}', '{"m": ["a", 1]}', '{"m": [-1, 1]}', '{"m": ["NaN", 1]}'],
)
def test_a_malformed_table_is_a_configuration_error_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigurationError, match="AI_PRICE_TABLE"):
        parse_price_table(text)


def test_the_budget_counts_per_utc_day_and_resets_at_midnight() -> None:
    now = [3 * DAY + DAY - 1]  # 23:59:59.999
    budget = DailyBudget(Decimal("1.00"), now_ms=lambda: now[0])
    budget.charge(Decimal("0.60"))
    assert not budget.exhausted()
    assert budget.remaining() == Decimal("0.40")
    budget.charge(Decimal("0.50"))
    assert budget.exhausted()
    assert budget.remaining() == 0
    now[0] += 1  # 00:00 UTC
    assert budget.spent() == 0
    assert not budget.exhausted()


def test_a_zero_budget_is_spent_from_the_start_and_a_negative_one_is_refused() -> None:
    assert DailyBudget(Decimal(0), now_ms=lambda: 0).exhausted()
    with pytest.raises(ConfigurationError, match="AI_DAILY_BUDGET_USD"):
        DailyBudget(Decimal("-1"), now_ms=lambda: 0)
