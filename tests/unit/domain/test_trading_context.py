"""The trading context the decision maker is told: how the last closed trades went."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.ai.context import build_context
from flipbot.domain.decision import DecisionRequest, TradingContext, trading_context
from flipbot.domain.entities import TradeRecord
from flipbot.domain.model import MarketSnapshot, Side


def _trade(n: int, pnl: str, *, ai_cost: str = "0", buy_s: float = 30, sell_s: float = 90):
    return TradeRecord(
        symbol="TRUMPUSDC",
        cycle_id=f"c{n:06d}",
        opened_ms=n * 1000,
        closed_ms=n * 1000 + 500,
        quantity=Decimal("1"),
        entry_price=Decimal("10"),
        exit_price=Decimal("10.2"),
        spent_quote=Decimal("10"),
        received_quote=Decimal("10.2"),
        fees_quote=Decimal("0.02"),
        ai_cost_usd=Decimal(ai_cost),
        realized_pnl=Decimal(pnl),
        buy_fill_seconds=buy_s,
        sell_fill_seconds=sell_s,
    )


def _request(snapshot: MarketSnapshot, **given: Any) -> DecisionRequest:
    return DecisionRequest(
        leg=Side.BUY,
        symbol="TRUMPUSDC",
        snapshot=snapshot,
        quote_per_cycle=Decimal("10"),
        min_confidence=0.8,
        min_profit=Decimal("0.01"),
        target_profit=Decimal("0.05"),
        fee_rate_round_trip=Decimal("0.002"),
        **given,
    )


def test_given_no_trade_then_the_context_says_none_and_nothing_else() -> None:
    assert trading_context([]) == TradingContext(trades=0)


def test_given_trades_then_the_last_twenty_are_summed_up_after_ai_cost() -> None:
    # Given: 5 old losing trades, then 20 of which 15 made money and 5 lost
    trades = [_trade(n, "-1") for n in range(5)]
    trades += [_trade(5 + n, "0.10" if n % 4 else "-0.05") for n in range(20)]
    trades[-1] = _trade(24, "0.10", ai_cost="0.15")  # made money before its AI cost only
    context = trading_context(trades)
    assert context.trades == 20
    assert context.last_profit == Decimal("-0.05")
    assert context.avg_fill_time == 60.0  # (30 + 90) / 2
    assert context.success_rate == 0.7  # 14 of 20 after AI cost


def test_given_a_trading_context_then_the_prompt_carries_it_under_the_seed_names() -> None:
    snapshot = MarketSnapshot(symbol="TRUMPUSDC", time_ms=0, last_price=Decimal("10"))
    request = _request(
        snapshot, trading_context=trading_context([_trade(1, "0.2", buy_s=10, sell_s=20)])
    )
    assert build_context(request)["trading_context"] == {
        "trades": 1,
        "last_profit": "0.2",
        "avg_fill_time": 15.0,
        "success_rate": 1.0,
    }


def test_given_the_last_minutes_changes_then_the_prompt_carries_them_in_percent() -> None:
    snapshot = MarketSnapshot(
        symbol="TRUMPUSDC",
        time_ms=0,
        last_price=Decimal("10"),
        price_change_1m=Decimal("0.01"),
        volume_change_1m=Decimal("-0.25"),
    )
    request = _request(snapshot)
    market = build_context(request)["market"]
    assert (market["price_change_1m"], market["volume_change_1m"]) == (1.0, -25.0)
    assert "trading_context" not in build_context(request)  # not looked up: not told
