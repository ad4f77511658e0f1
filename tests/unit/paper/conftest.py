"""Fixtures for the paper exchange tests: a settable clock and ready-made exchanges."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.paper import BinanceRestApp, PaperExchange

T0 = 1_700_000_000_000
PAYLOADS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "binance_payloads"


class Clock:
    """A manual epoch-ms clock: ``clock()`` reads it, ``advance(ms)`` moves it."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_exchange(clock: Clock) -> Callable[..., PaperExchange]:
    """Build a TRUMPUSDC exchange with a 10.00/10.01 book; keywords go to PaperExchange."""

    def build(**kwargs: Any) -> PaperExchange:
        kwargs.setdefault("balances", {"USDC": Decimal("1000"), "TRUMP": Decimal("10")})
        exchange = PaperExchange(kwargs.pop("symbols", ["TRUMPUSDC"]), clock=clock, **kwargs)
        exchange.on_book(clock(), "10.00", "5", "10.01", "5")
        exchange.drain()
        return exchange

    return build


@pytest.fixture
def exchange(make_exchange: Callable[..., PaperExchange]) -> PaperExchange:
    return make_exchange()


@pytest.fixture
def app(exchange: PaperExchange) -> BinanceRestApp:
    return BinanceRestApp(exchange, api_key="PaperKey01", api_secret="paper-secret-01")


@pytest.fixture
def payloads() -> Path:
    """``../shared/data/binance_payloads`` next to the repository (skips when absent)."""
    if not PAYLOADS.exists():
        pytest.skip(f"Binance's documented payloads are not available: {PAYLOADS} is absent")
    return PAYLOADS
