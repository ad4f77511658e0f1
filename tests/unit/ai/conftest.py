"""Fixtures for the AI tests: a calm TRUMPUSDC market, its symbol rules, and the real
``openai`` client wired to the fake endpoint through ``httpx2.MockTransport`` (no
socket; a scripted delay becomes a read timeout)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from flipbot.adapters.openai_decider import OpenAiDecisionMaker, openai_client
from flipbot.domain.decision import DecisionRequest
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import RiskLimits
from flipbot.domain.model import BookTop, MarketSnapshot, Side
from flipbot_dev.fake_openai import FakeOpenAiServer, Responder

API_KEY = "sk-test-Zq8vN3kP0sEcReT"


class Market:
    """Requests on one market: best bid 10.00, ask 10.02, entry 10.00, floor 10.12."""

    time_ms = 1_737_331_200_000  # 2025-01-20T00:00Z
    book = BookTop(
        bid=Decimal("10.00"), bid_qty=Decimal("50"), ask=Decimal("10.02"), ask_qty=Decimal("40")
    )
    entry = Decimal("10.00")
    floor = Decimal("10.12")  # entry x (1 + 0.002 fees + 0.01 min profit), at the tick
    held = Decimal("0.99")
    limits = RiskLimits()

    def snapshot(self, **changes: Any) -> MarketSnapshot:
        values: dict[str, Any] = {
            "symbol": "TRUMPUSDC",
            "time_ms": self.time_ms,
            "last_price": Decimal("10.01"),
            "book": self.book,
            "ma5": Decimal("10.02"),
            "ma7": Decimal("10.01"),
            "ma7_trend": "UP",
            "ma20": Decimal("9.98"),
            "vwap": Decimal("9.99"),
            "volatility": Decimal("0.002"),
            "imbalance": Decimal("0.11"),
            "buy_sell_ratio": Decimal("1.05"),
            "large_trades": 3,
            "high_24h": Decimal("10.60"),
            "low_24h": Decimal("9.40"),
            "volume_24h": Decimal("123456.7"),
        }
        values.update(changes)
        return MarketSnapshot(**values)

    def buy(self, **snapshot_changes: Any) -> DecisionRequest:
        return DecisionRequest(
            leg=Side.BUY,
            symbol="TRUMPUSDC",
            snapshot=self.snapshot(**snapshot_changes),
            quote_per_cycle=Decimal("10"),
            min_confidence=0.8,
            min_profit=Decimal("0.01"),
            target_profit=Decimal("0.05"),
            fee_rate_round_trip=Decimal("0.002"),
        )

    def sell(self, **snapshot_changes: Any) -> DecisionRequest:
        return self.buy(**snapshot_changes).model_copy(
            update={
                "leg": Side.SELL,
                "entry_price": self.entry,
                "floor_price": self.floor,
                "quantity": self.held,
            }
        )


@pytest.fixture
def market() -> Market:
    return Market()


@pytest.fixture
def rules() -> SymbolRules:
    """TRUMPUSDC-like rules: 2-decimal prices, 3-decimal quantities, 5 USDC min notional."""
    return SymbolRules(
        symbol="TRUMPUSDC",
        base_asset="TRUMP",
        quote_asset="USDC",
        tick_size=Decimal("0.01"),
        min_price=Decimal("0.01"),
        max_price=Decimal("100000"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        max_qty=Decimal("900000"),
        min_notional=Decimal("5"),
        max_notional=Decimal("9000000"),
    )


MakeDecider = Callable[..., tuple[OpenAiDecisionMaker, FakeOpenAiServer]]


@pytest.fixture
def make_decider() -> MakeDecider:
    """``make_decider(script, **decider_kwargs) -> (decider, endpoint)`` on a mock transport."""

    def make(
        script: Responder | None = None, **kwargs: Any
    ) -> tuple[OpenAiDecisionMaker, FakeOpenAiServer]:
        endpoint = FakeOpenAiServer(script, api_key=API_KEY)
        http = httpx2.Client(transport=endpoint.mock_transport())
        client = openai_client(API_KEY, base_url="http://fake.invalid/v1", http_client=http)
        kwargs.setdefault("timeout", 1.0)
        kwargs.setdefault("max_retries", 2)
        return OpenAiDecisionMaker(client, "gpt-4o-mini", **kwargs), endpoint

    return make


@pytest.fixture
def api_key() -> str:
    """The key the mock endpoint expects (and that must never appear in logs or errors)."""
    return API_KEY


@pytest.fixture(autouse=True)
def _flipbot_logs(flipbot_logs_reach_caplog: None) -> None:
    """Every test here reads the ``flipbot`` loggers' records through ``caplog``."""
