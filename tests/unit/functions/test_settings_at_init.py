"""A function deployed without what its settings model requires fails its cold start, with
the variable's name, instead of its first order; outside a Lambda sandbox importing a
handler checks nothing."""

from __future__ import annotations

import pytest
from function_handlers import load_handler

from flipbot.domain.errors import ConfigurationError

TABLES = {
    "SYMBOL": "TRUMPUSDC",
    "CYCLES_TABLE": "cycles",
    "ORDERS_TABLE": "orders",
    "FILLS_TABLE": "fills",
    "TRADES_TABLE": "trades",
    "CONSULTATIONS_TABLE": "consultations",
    "MARKET_TABLE": "market",
}


@pytest.mark.parametrize(
    ("function", "missing"),
    [
        ("reconcile", "STATE_MACHINE_ARN"),
        ("on_order_update", "STATE_MACHINE_ARN"),
        ("place_order", "BINANCE_SECRET_ARN"),
        ("consult_ai", "BINANCE_SECRET_ARN"),
    ],
)
def test_given_a_sandbox_without_a_required_variable_then_init_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch, function: str, missing: str
) -> None:
    env = {**TABLES, "BINANCE_SECRET_ARN": "arn:b", "STATE_MACHINE_ARN": "arn:s"}
    env.pop(missing)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", f"flipbot-{function}")
    with pytest.raises(ConfigurationError, match=missing):
        load_handler(monkeypatch, function)
    # with it, the same module loads
    monkeypatch.setenv(missing, "arn:given")
    assert callable(load_handler(monkeypatch, function).handler)
