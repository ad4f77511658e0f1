"""Fixtures for the pure domain tests: real Binance payloads and hand-made symbol rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from flipbot.domain.filters import PercentPriceBySide, SymbolRules
from flipbot.domain.model import BookTop

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PAYLOADS = SHARED_DATA / "binance_payloads"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real Binance data not available: {path} is absent")
    return path


@pytest.fixture
def payloads() -> Path:
    """``../shared/data/binance_payloads`` (skips the test when absent)."""
    return _require(PAYLOADS)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (skips the test when absent)."""
    return _require(SHARED_DATA)


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
        percent_price_by_side=PercentPriceBySide(
            bid_multiplier_up=Decimal("1.2"),
            bid_multiplier_down=Decimal("0.2"),
            ask_multiplier_up=Decimal("5"),
            ask_multiplier_down=Decimal("0.8"),
            avg_price_mins=5,
        ),
        max_num_orders=200,
    )


@pytest.fixture
def book() -> BookTop:
    return BookTop(
        bid=Decimal("10.00"), bid_qty=Decimal("50"), ask=Decimal("10.02"), ask_qty=Decimal("40")
    )
