"""Offline decision makers on hand-made snapshots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.model import BookTop, MarketSnapshot, Side
from flipbot.domain.strategy import FixedMarginStrategy, OfflineStrategy
from flipbot.ports import DecisionMaker

FEES = Decimal("0.002")
MIN_PROFIT = Decimal("0.01")
TARGET_PROFIT = Decimal("0.05")


def snapshot(**overrides: Any) -> MarketSnapshot:
    """A calm, neutral TRUMPUSDC market: flat trend, price at its averages, balanced flow."""
    values: dict[str, Any] = {
        "symbol": "TRUMPUSDC",
        "time_ms": 1_737_331_200_000,
        "last_price": Decimal("26.12"),
        "book": BookTop(Decimal("26.12"), Decimal("40"), Decimal("26.13"), Decimal("40")),
        "ma5": Decimal("26.12"),
        "ma7": Decimal("26.12"),
        "ma7_trend": "FLAT",
        "ma20": Decimal("26.10"),
        "vwap": Decimal("26.11"),
        "volatility": Decimal("0.002"),
        "imbalance": Decimal("0"),
        "buy_sell_ratio": Decimal("1"),
        "high_24h": Decimal("27.00"),
        "low_24h": Decimal("25.20"),
    }
    values.update(overrides)
    return MarketSnapshot(**values)


def request(
    leg: Side = Side.BUY, snap: MarketSnapshot | None = None, **extra: Any
) -> DecisionRequest:
    return DecisionRequest(
        leg=leg,
        symbol="TRUMPUSDC",
        snapshot=snap or snapshot(),
        quote_per_cycle=Decimal("10"),
        min_confidence=0.8,
        min_profit=MIN_PROFIT,
        target_profit=TARGET_PROFIT,
        fee_rate_round_trip=FEES,
        **extra,
    )


def sell_request(entry: str = "26.10", floor: str | None = None, **snap: Any) -> DecisionRequest:
    entry_price = Decimal(entry)
    floor_price = Decimal(floor) if floor else entry_price * (1 + FEES + MIN_PROFIT)
    return request(
        Side.SELL,
        snapshot(**snap),
        entry_price=entry_price,
        floor_price=floor_price,
        quantity=Decimal("0.383"),
    )


def buy(**snap: Any) -> Decision:
    return OfflineStrategy().decide(request(Side.BUY, snapshot(**snap)))


# ------------------------------------------------------------------ BUY leg


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ({"book": None}, "order book"),
        ({"ma7": None}, "MA7"),
        ({"ma20": None}, "MA20"),
        ({"volatility": None}, "volatility"),
        ({"ma7": None, "ma20": None, "volatility": None, "book": None}, "20 minutes"),
    ],
)
def test_waits_with_zero_confidence_without_data(missing: dict[str, Any], reason: str) -> None:
    decision = buy(**missing)

    assert decision.action == "WAIT"
    assert decision.confidence == 0.0
    assert reason in decision.reasoning
    assert decision.base_price == Decimal("26.12")


def test_neutral_market_buys_a_little_under_the_bid() -> None:
    decision = buy()

    assert decision.action == "BUY"
    assert 0.8 <= decision.confidence < 0.9
    bid = Decimal("26.12")
    assert bid * Decimal("0.99") < decision.base_price < bid
    assert decision.base_price == decision.base_price.quantize(Decimal("0.01"))
    assert decision.price_range is not None
    assert decision.price_range.low <= decision.base_price <= decision.price_range.high == bid
    assert 300 <= decision.timeout_seconds <= 3600


def test_reasoning_lists_every_feature() -> None:
    reasoning = buy().reasoning

    for feature in ("MA7 trend", "MA20", "VWAP", "imbalance", "buy/sell ratio", "24h range"):
        assert feature in reasoning
    assert "volatility 0.200%/min" in reasoning
    assert "confidence" in reasoning


def test_a_dip_in_a_rising_market_with_support_scores_high() -> None:
    decision = buy(
        last_price=Decimal("25.95"),
        book=BookTop(Decimal("25.95"), Decimal("90"), Decimal("25.96"), Decimal("10")),
        ma7_trend="UP",
        imbalance=Decimal("0.8"),
        buy_sell_ratio=Decimal("1.5"),
    )

    assert decision.action == "BUY"
    assert decision.confidence >= 0.9


@pytest.mark.parametrize(
    "conditions",
    [
        pytest.param({"ma7_trend": "DOWN"}, id="down-trend"),
        pytest.param(
            {"ma7_trend": "DOWN", "last_price": Decimal("25.40"), "buy_sell_ratio": Decimal("0.4")},
            id="sharp-drop",
        ),
        pytest.param(
            {
                "last_price": Decimal("26.60"),
                "vwap": Decimal("26.20"),
                "high_24h": Decimal("26.70"),
            },
            id="stretched-above-averages",
        ),
        pytest.param({"volatility": Decimal("0.015")}, id="wild"),
        pytest.param({"volatility": Decimal("0.0002")}, id="quiet"),
        pytest.param({"buy_sell_ratio": Decimal("0.3")}, id="sellers-dominate"),
    ],
)
def test_unfavourable_conditions_score_below_the_minimum(conditions: dict[str, Any]) -> None:
    decision = buy(**conditions)

    assert decision.confidence < 0.8
    assert decision.action == "WAIT"
    assert decision.base_price < Decimal("26.12") or "last_price" in conditions


def test_higher_volatility_buys_deeper_and_rests_shorter() -> None:
    calm = buy(volatility=Decimal("0.001"))
    busy = buy(volatility=Decimal("0.006"))

    assert busy.base_price < calm.base_price
    assert busy.timeout_seconds < calm.timeout_seconds
    assert calm.timeout_seconds <= 3600
    assert busy.timeout_seconds >= 300


def test_discount_is_capped() -> None:
    strategy = OfflineStrategy(max_discount=Decimal("0.002"))
    decision = strategy.decide(request(snap=snapshot(volatility=Decimal("0.009"))))

    # 26.12 × (1 - 0.2 %) = 26.0678, rounded down to the tick
    assert decision.base_price == Decimal("26.06")
    assert "0.200% under the bid" in decision.reasoning


def test_missing_optional_features_are_neutral() -> None:
    decision = buy(vwap=None, imbalance=None, buy_sell_ratio=None, high_24h=None, low_24h=None)

    assert decision.action == "BUY"
    assert "VWAP unknown" in decision.reasoning


def test_decisions_are_deterministic() -> None:
    req = request()
    assert OfflineStrategy().decide(req) == OfflineStrategy().decide(req)
    sell = sell_request()
    assert OfflineStrategy().decide(sell) == OfflineStrategy().decide(sell)


# ------------------------------------------------------------------ SELL leg


def test_sell_is_confident_and_above_entry_fees_and_min_profit() -> None:
    decision = OfflineStrategy().decide(sell_request("26.10"))

    assert decision.action == "SELL"
    assert decision.confidence >= 0.9
    assert decision.base_price >= Decimal("26.10") * (1 + FEES + MIN_PROFIT)
    assert decision.suggested_margin is not None
    assert MIN_PROFIT <= decision.suggested_margin <= TARGET_PROFIT
    assert decision.base_price == decision.base_price.quantize(Decimal("0.01"))
    assert decision.price_range is not None
    assert decision.price_range.low <= decision.base_price <= decision.price_range.high


def test_sell_margin_grows_with_volatility_within_bounds() -> None:
    strategy = OfflineStrategy()
    margins = [
        strategy.decide(sell_request(volatility=Decimal(v))).suggested_margin or Decimal(0)
        for v in ("0.0005", "0.003", "0.01", "0.2")
    ]

    assert margins == sorted(margins)
    assert margins[0] > MIN_PROFIT
    assert margins[-1] == TARGET_PROFIT
    unknown = strategy.decide(sell_request(volatility=None))
    assert unknown.suggested_margin == MIN_PROFIT
    assert unknown.action == "SELL"


@pytest.mark.parametrize("entry", ["26.10", "25.37", "0.1234", "30"])
@pytest.mark.parametrize("floor_bump", ["0", "0.001", "0.03", "0.2"])
@pytest.mark.parametrize("volatility", [None, "0.001", "0.004"])
def test_sell_is_never_below_the_floor(entry: str, floor_bump: str, volatility: str | None) -> None:
    floor = Decimal(entry) * (1 + FEES + MIN_PROFIT + Decimal(floor_bump))
    req = sell_request(
        entry, str(floor), volatility=None if volatility is None else Decimal(volatility)
    )

    for strategy in (OfflineStrategy(), FixedMarginStrategy()):
        decision = strategy.decide(req)
        assert decision.action == "SELL"
        assert decision.base_price >= floor


def test_sell_without_entry_waits() -> None:
    req = request(Side.SELL)

    for strategy in (OfflineStrategy(), FixedMarginStrategy()):
        decision = strategy.decide(req)
        assert decision.action == "WAIT"
        assert decision.confidence == 0.0


def test_sell_floor_defaults_to_entry_fees_and_min_profit() -> None:
    req = request(Side.SELL, entry_price=Decimal("26.10"), quantity=Decimal("0.383"))

    decision = OfflineStrategy().decide(req)

    assert decision.base_price >= Decimal("26.10") * (1 + FEES + MIN_PROFIT)


# ------------------------------------------------------------------ fixed margin


def test_fixed_margin_buys_at_the_bid_and_sells_at_min_profit() -> None:
    strategy = FixedMarginStrategy()

    bought = strategy.decide(request())
    assert (bought.action, bought.base_price, bought.confidence) == ("BUY", Decimal("26.12"), 1.0)

    sold = strategy.decide(sell_request("26.10"))
    # 26.10 × 1.012 = 26.4132, rounded up to the tick
    assert (sold.action, sold.base_price, sold.confidence) == ("SELL", Decimal("26.42"), 1.0)

    waiting = strategy.decide(request(snap=snapshot(book=None)))
    assert (waiting.action, waiting.confidence) == ("WAIT", 0.0)


def test_both_strategies_are_decision_makers() -> None:
    makers: list[DecisionMaker] = [OfflineStrategy(), FixedMarginStrategy()]

    assert [m.name for m in makers] == ["offline", "fixed"]
    for maker in makers:
        assert isinstance(maker.decide(request()), Decision)
