"""The market context sent to the model, and context providers that never block."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from flipbot.ai.context import StaticContextProvider, build_context, gather_signals
from flipbot.ai.prompt import PROMPT_VERSION, build_messages, context_from_messages


def test_the_buy_context_holds_every_market_feature_and_the_constraints(market: Any) -> None:
    context = build_context(market.buy(), price_band=Decimal("0.02"))
    m = context["market"]
    assert context["leg"] == "BUY"
    assert context["time"] == "2025-01-20T00:00:00+00:00"
    assert (m["last_price"], m["best_bid"], m["best_ask"]) == ("10.01", "10.00", "10.02")
    assert (m["ma5"], m["ma7"], m["ma20"], m["vwap"]) == ("10.02", "10.01", "9.98", "9.99")
    assert m["ma7_trend"] == "UP"
    assert m["order_book_imbalance"] == pytest.approx(0.11)
    assert m["taker_buy_sell_ratio"] == pytest.approx(1.05)
    assert m["large_trades"] == 3
    assert (m["high_24h"], m["low_24h"], m["volume_24h"]) == ("10.60", "9.40", "123456.7")
    assert m["spread_pct"] == pytest.approx(0.2)
    assert m["volatility_1m_pct"] == pytest.approx(0.2)
    assert m["volatility_1h_pct"] == pytest.approx(0.2 * 60**0.5, abs=1e-4)
    assert m["position_in_24h_range_pct"] == pytest.approx(50.8333, abs=1e-3)
    assert context["costs"] == {"fee_rate_round_trip": "0.002"}
    assert context["constraints"] == {
        "min_confidence": 0.8,
        "min_profit": "0.01",
        "target_profit": "0.05",
        "quote_per_cycle": "10",
        "price_band": "0.02",
    }
    assert "position" not in context
    assert "signals" not in context


def test_the_sell_context_adds_entry_floor_profit_and_momentum(market: Any) -> None:
    position = build_context(market.sell())["position"]
    assert position["entry_price"] == "10.00"
    assert position["floor_price"] == "10.12"
    assert position["quantity"] == "0.99"
    assert position["profit_now_pct"] == pytest.approx(0.1)
    assert position["profit_now_after_fees_pct"] == pytest.approx(-0.1)
    assert position["momentum"]["ma7_trend"] == "UP"
    assert position["momentum"]["ma5_vs_ma20_pct"] == pytest.approx(0.4008, abs=1e-4)


def test_unknown_features_are_null_not_guessed(market: Any) -> None:
    request = market.buy(
        book=None,
        ma5=None,
        ma20=None,
        vwap=None,
        volatility=None,
        imbalance=None,
        buy_sell_ratio=None,
        high_24h=None,
        low_24h=None,
    )
    m = build_context(request)["market"]
    for key in (
        "best_bid",
        "best_ask",
        "spread_pct",
        "ma5",
        "ma20",
        "vwap",
        "price_vs_ma20_pct",
        "volatility_1m_pct",
        "volatility_1h_pct",
        "order_book_imbalance",
        "taker_buy_sell_ratio",
        "position_in_24h_range_pct",
    ):
        assert m[key] is None, key
    json.dumps(build_context(request))  # JSON-ready


def test_snapshot_extras_and_provider_signals_are_passed_on(market: Any) -> None:
    request = market.buy(extra={"btc_correlation_1h": "0.42"})
    context = build_context(request, signals={"fear_greed": {"value": "71", "label": "Greed"}})
    assert context["signals"] == {
        "market": {"btc_correlation_1h": "0.42"},
        "fear_greed": {"value": "71", "label": "Greed"},
    }


def test_the_prompt_round_trips_the_context(market: Any) -> None:
    context = build_context(market.sell())
    messages = build_messages(context)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert f"prompt {PROMPT_VERSION}" in messages[1]["content"]
    assert context_from_messages(messages) == json.loads(json.dumps(context))
    assert context_from_messages([{"role": "user", "content": "no context"}]) is None


class _Failing:
    name = "news"

    def fetch(self, symbol: str) -> Mapping[str, str]:
        raise ConnectionError("news API down")


class _Hanging:
    name = "social"

    def __init__(self) -> None:
        self.release = threading.Event()

    def fetch(self, symbol: str) -> Mapping[str, str]:
        self.release.wait(5)
        return {"sentiment": "late"}


def test_no_providers_means_no_signals_and_no_threads() -> None:
    before = threading.active_count()
    assert gather_signals([], "TRUMPUSDC") == {}
    assert threading.active_count() == before


def test_a_failing_or_hanging_provider_is_left_out_without_blocking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hanging = _Hanging()
    started = time.monotonic()
    signals = gather_signals(
        [StaticContextProvider("fear_greed", {"value": "71"}), _Failing(), hanging],
        "TRUMPUSDC",
        timeout=0.2,
    )
    hanging.release.set()
    assert time.monotonic() - started < 1.0
    assert signals == {"fear_greed": {"value": "71"}}
    assert "news failed: ConnectionError" in caplog.text
    assert "social gave no answer" in caplog.text


def test_the_book_top_levels_and_their_imbalance_are_in_the_market(market: Any) -> None:
    from flipbot.domain.model import BookDepth

    depth = BookDepth(
        bids=((Decimal("10.00"), Decimal("50")), (Decimal("9.99"), Decimal("30"))),
        asks=((Decimal("10.02"), Decimal("40")),),
    )
    context = build_context(market.buy().model_copy(update={"depth": depth}))["market"]
    assert context["depth_top10"] == {
        "bids": [["10.00", "50"], ["9.99", "30"]],
        "asks": [["10.02", "40"]],
    }
    assert context["imbalance_top10"] == pytest.approx(0.3333)  # (80 - 40) / 120
    unread = build_context(market.buy())["market"]
    assert (unread["depth_top10"], unread["imbalance_top10"]) == (None, None)


def test_the_correlation_with_btc_is_in_the_market_and_null_when_unknown(market: Any) -> None:
    request = market.buy(btc_correlation=Decimal("0.8123"))
    assert build_context(request)["market"]["btc_correlation"] == 0.8123
    assert build_context(market.buy())["market"]["btc_correlation"] is None
