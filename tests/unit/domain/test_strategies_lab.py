"""The strategy lab's decision makers: adaptive, ma-cross and its trading session."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.domain.decision import DecisionRequest
from flipbot.domain.model import BookTop, MarketSnapshot, Side
from flipbot.domain.strategies_lab import (
    AdaptiveStrategy,
    CandleCloses,
    MaCrossStrategy,
    SessionLimits,
    TradingSession,
    cross_signal,
    session_stop_reason,
)

D = Decimal
FEES = D("0.002")
T0 = 1_700_000_100_000  # 20 s into a 5-minute candle
MINUTE = 60_000
HOUR = 3_600_000


def _snap(price: str = "100", *, t: int = T0, book: bool = True, **kw: Any) -> MarketSnapshot:
    p = D(price)
    top = (
        BookTop(
            bid=p - D("0.01"),
            bid_qty=D(kw.pop("bid_qty", "5")),
            ask=p + D("0.01"),
            ask_qty=D(kw.pop("ask_qty", "5")),
        )
        if book
        else None
    )
    values: dict[str, Any] = {
        "volatility": D("0.004"),
        "vwap": p,
        "imbalance": D("0"),
        "buy_sell_ratio": D("1"),
        "ma7_trend": "FLAT",
    }
    values.update(kw)
    return MarketSnapshot(symbol="TESTUSDC", time_ms=t, last_price=p, book=top, **values)


def _request(snap: MarketSnapshot, leg: Side = Side.BUY, **kw: Any) -> DecisionRequest:
    values: dict[str, Any] = {
        "leg": leg,
        "symbol": "TESTUSDC",
        "snapshot": snap,
        "quote_per_cycle": D("10"),
        "min_confidence": 0.8,
        "min_profit": D("0.01"),
        "target_profit": D("0.05"),
        "fee_rate_round_trip": FEES,
    }
    if leg is Side.SELL:
        values |= {"entry_price": D("100"), "floor_price": D("101.2"), "quantity": D("0.1")}
    values.update(kw)
    return DecisionRequest(**values)


# ----------------------------------------------------------------------------- adaptive


def test_given_no_book_or_volatility_when_adaptive_buys_then_it_waits_with_the_reason() -> None:
    adaptive = AdaptiveStrategy()
    no_book = adaptive.decide(_request(_snap(book=False)))
    no_vol = adaptive.decide(_request(_snap(volatility=None)))
    assert (no_book.action, no_vol.action) == ("WAIT", "WAIT")
    assert "order book" in no_book.reasoning
    assert "volatility" in no_vol.reasoning


def test_given_a_normal_market_when_adaptive_buys_then_it_bids_under_the_bid_quickly() -> None:
    decision = AdaptiveStrategy().decide(_request(_snap()))
    assert decision.action == "BUY"
    assert decision.confidence >= 0.8
    bid = D("99.99")
    # discount = σ × 0.5 = 0.2 % with a balanced book
    assert decision.base_price == D("99.79")
    assert decision.base_price < bid
    assert 60 <= decision.timeout_seconds <= 600


def test_given_bids_heavier_than_asks_then_adaptive_bids_closer_to_the_book() -> None:
    adaptive = AdaptiveStrategy()
    heavy_bids = adaptive.decide(_request(_snap(imbalance=D("0.8"))))
    heavy_asks = adaptive.decide(_request(_snap(imbalance=D("-0.8"))))
    assert heavy_bids.base_price > heavy_asks.base_price
    assert heavy_bids.confidence > heavy_asks.confidence


def test_given_more_volatility_then_the_buy_timeout_is_shorter_and_clamped() -> None:
    adaptive = AdaptiveStrategy()
    assert adaptive.timeout(0.001) > adaptive.timeout(0.004) > adaptive.timeout(0.009)
    assert adaptive.timeout(1e-9) == 600
    assert adaptive.timeout(0.5) == 60
    assert adaptive.timeout(None) == 600


def test_given_a_bid_just_above_the_fair_price_then_the_buy_is_capped_at_max_slippage() -> None:
    # fair (VWAP) 100, bid 100.29: bid × (1 - 0.05 %) is above fair + 0.2 % = 100.2
    snap = _snap("100.30", vwap=D("100"), volatility=D("0.001"))
    decision = AdaptiveStrategy().decide(_request(snap))
    assert decision.base_price == D("100.20")
    assert "capped" in decision.reasoning


def test_given_a_market_that_ran_away_from_the_fair_price_then_adaptive_waits() -> None:
    snap = _snap("101.50", vwap=D("100"), volatility=D("0.002"))
    decision = AdaptiveStrategy().decide(_request(snap))
    assert decision.action == "WAIT"
    assert "above the fair price" in decision.reasoning


def test_given_a_quiet_market_when_adaptive_buys_then_fees_are_not_covered_and_it_waits() -> None:
    decision = AdaptiveStrategy().decide(_request(_snap(volatility=D("0.0002"))))
    assert decision.action == "WAIT"
    assert "quiet market" in decision.reasoning


def test_given_any_market_when_adaptive_sells_then_the_margin_is_at_least_0_3_pct_after_fees() -> (
    None
):
    adaptive = AdaptiveStrategy()
    for volatility in ("0.00001", "0.001", "0.004", "0.02"):
        snap = _snap(volatility=D(volatility))
        request = _request(snap, Side.SELL, floor_price=D("100.1"), min_profit=D("0"))
        decision = adaptive.decide(request)
        assert decision.action == "SELL"
        assert decision.base_price >= D("100") * (1 + FEES + D("0.003"))
        assert decision.base_price >= D("100.1")
        assert decision.suggested_margin is not None
        assert D("0.003") <= decision.suggested_margin <= D("0.05")


def test_given_more_volatility_and_buying_takers_then_adaptive_asks_a_larger_margin() -> None:
    adaptive = AdaptiveStrategy()
    calm = adaptive.margin(_request(_snap(volatility=D("0.002")), Side.SELL))
    wild = adaptive.margin(_request(_snap(volatility=D("0.006")), Side.SELL))
    bought = adaptive.margin(
        _request(_snap(volatility=D("0.006"), buy_sell_ratio=D("2")), Side.SELL)
    )
    assert calm < wild < bought


def test_given_a_floor_above_the_margin_price_when_adaptive_sells_then_it_sells_at_the_floor() -> (
    None
):
    decision = AdaptiveStrategy().decide(_request(_snap(volatility=D("0.001")), Side.SELL))
    assert decision.base_price == D("101.2")


# ----------------------------------------------------------------------------- candles


def test_given_samples_in_three_candles_then_two_closes_with_the_last_price_of_each() -> None:
    candles = CandleCloses(300_000, capacity=10)
    for minute, price in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]):
        candles.observe(T0 + minute * MINUTE, D(price))
    # T0 is 20 s into a candle: minutes 0-4 | 5-9 | 10 (still open)
    assert candles.closes == [D("5"), D("10")]


def test_given_one_missing_candle_then_its_close_repeats_and_a_longer_gap_restarts() -> None:
    candles = CandleCloses(300_000, capacity=10)
    candles.observe(T0, D("1"))
    candles.observe(T0 + 10 * MINUTE, D("2"))  # skips one candle
    assert candles.closes == [D("1"), D("1")]
    candles.observe(T0 + 60 * MINUTE, D("3"))  # skips many: history restarts
    assert candles.closes == []
    assert candles.resets == 1


def test_given_a_sample_older_than_the_last_then_it_is_ignored() -> None:
    candles = CandleCloses(300_000, capacity=10)
    candles.observe(T0 + 10 * MINUTE, D("2"))
    candles.observe(T0, D("1"))
    candles.observe(T0 + 16 * MINUTE, D("3"))
    assert candles.closes == [D("2")]


def test_given_a_capacity_then_only_the_newest_closes_are_kept() -> None:
    candles = CandleCloses(300_000, capacity=3)
    for i in range(8):
        candles.observe(T0 + i * 5 * MINUTE, D(i + 1))
    assert candles.closes == [D(5), D(6), D(7)]


# ----------------------------------------------------------------------------- cross


def _falling_then_rising(n_down: int, n_up: int) -> list[Decimal]:
    down = [D(100) - i for i in range(n_down)]
    return down + [down[-1] + 2 * (i + 1) for i in range(n_up)]


def test_given_fewer_closes_than_the_slow_average_then_the_signal_is_unknown() -> None:
    assert cross_signal([D(1)] * 20, 9, 21).state == "UNKNOWN"


def test_given_a_fall_then_a_rise_then_the_golden_cross_is_found_with_its_age() -> None:
    closes = _falling_then_rising(25, 8)
    signal = cross_signal(closes, 9, 21)
    assert signal.state == "BULLISH"
    assert signal.crossed_up_ago is not None
    # the candle where it happened: fast above slow there, not on the candle before
    end = len(closes) - signal.crossed_up_ago
    mean = lambda xs: sum(xs, D(0)) / len(xs)  # noqa: E731
    assert mean(closes[end - 9 : end]) > mean(closes[end - 21 : end])
    assert mean(closes[end - 10 : end - 1]) <= mean(closes[end - 22 : end - 1])


def test_given_a_steady_fall_then_the_signal_is_bearish_without_a_golden_cross() -> None:
    signal = cross_signal([D(200) - i for i in range(30)], 9, 21)
    assert signal.state == "BEARISH"
    assert signal.crossed_up_ago is None


def test_given_fast_not_shorter_than_slow_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        cross_signal([D(1)] * 30, 21, 9)


# ----------------------------------------------------------------------------- ma-cross


def _feed(strategy: MaCrossStrategy, prices: list[Decimal], start: int = T0) -> list[Any]:
    """One BUY consultation a minute, at each price in turn."""
    return [
        strategy.decide(_request(_snap(str(p), t=start + i * MINUTE))) for i, p in enumerate(prices)
    ]


def _minutes(closes: list[Decimal]) -> list[Decimal]:
    """Five one-minute samples per 5-minute close."""
    return [c for c in closes for _ in range(5)]


def test_given_too_few_candles_when_ma_cross_is_asked_to_buy_then_it_waits_warming_up() -> None:
    decisions = _feed(MaCrossStrategy(), [D(100)] * 30)
    assert {d.action for d in decisions} == {"WAIT"}
    assert "warming up" in decisions[-1].reasoning


def test_given_a_golden_cross_when_ma_cross_is_asked_to_buy_then_it_buys_at_the_bid() -> None:
    strategy = MaCrossStrategy()
    decisions = _feed(strategy, _minutes(_falling_then_rising(25, 10)))
    buys = [d for d in decisions if d.action == "BUY"]
    assert buys, [d.reasoning for d in decisions[-5:]]
    first = buys[0]
    assert first.confidence >= 0.8
    assert "golden cross" in first.reasoning
    assert first.timeout_seconds == 300
    # bought at the bid of that minute's snapshot
    index = decisions.index(first)
    assert first.base_price == _minutes(_falling_then_rising(25, 10))[index] - D("0.01")


def test_given_a_cross_older_than_the_entry_window_then_ma_cross_waits() -> None:
    decisions = _feed(MaCrossStrategy(), _minutes(_falling_then_rising(25, 30)))
    assert decisions[-1].action == "WAIT"
    assert "no fresh golden cross" in decisions[-1].reasoning


def _sell(strategy: MaCrossStrategy, price: str, minute: int = 200, **kw: Any) -> Any:
    return strategy.decide(_request(_snap(price, t=T0 + minute * MINUTE), Side.SELL, **kw))


def test_given_a_bullish_market_when_ma_cross_sells_then_it_asks_the_take_profit() -> None:
    strategy = MaCrossStrategy()
    _feed(strategy, _minutes(_falling_then_rising(25, 10)))  # 175 minutes
    decision = _sell(strategy, "101", minute=175)
    assert strategy.signal().state == "BULLISH"
    assert decision.action == "SELL"
    assert decision.base_price == D("101.50")  # entry 100 × 1.015
    assert "take-profit" in decision.reasoning


def test_given_a_bearish_market_when_ma_cross_sells_then_it_offers_at_the_ask_above_the_floor() -> (
    None
):
    strategy = MaCrossStrategy()
    _feed(strategy, _minutes([D(200) - i for i in range(30)]))  # 150 minutes
    high = _sell(strategy, "103", minute=150)
    low = _sell(strategy, "100.5", minute=151)
    assert strategy.signal().state == "BEARISH"
    assert high.base_price == D("103.01")  # the ask
    assert "exit signal" in high.reasoning
    assert low.base_price == D("101.2")  # raised to the floor
    assert "raised to the floor" in low.reasoning


def test_given_the_price_under_the_stop_loss_then_ma_cross_itself_still_answers_at_the_floor() -> (
    None
):
    # The stop-loss exit is the cycle's (code places it without asking the strategy); the
    # strategy's own proposals never go below the floor, and name the stop level.
    decision = _sell(MaCrossStrategy(), "98.9")
    assert decision.base_price >= D("101.2")
    assert "stop-loss at 99" in decision.reasoning


# ----------------------------------------------------------------------------- session


class FakeLedger:
    def __init__(self, realized: str = "0", started: int | None = None) -> None:
        self.realized = D(realized)
        self.started = started
        self.reads = 0

    def realized_pnl(self) -> Decimal:
        self.reads += 1
        return self.realized

    def started_ms(self) -> int | None:
        return self.started


def test_given_no_limit_met_then_no_stop_reason() -> None:
    limits = SessionLimits(D("5"), D("2"), 24 * HOUR)
    assert (
        session_stop_reason(
            limits, realized=D("4.99"), unrealized=D("-1.99"), started_ms=T0, now_ms=T0 + 23 * HOUR
        )
        is None
    )
    assert (
        session_stop_reason(
            SessionLimits(), realized=D("1e9"), unrealized=D("-1e9"), started_ms=0, now_ms=10**15
        )
        is None
    )


def _stopping(limits: SessionLimits, ledger: FakeLedger, sell_price: str | None = None) -> Any:
    """A ma-cross whose session is checked once (a SELL at ``sell_price`` or a BUY)."""
    strategy = MaCrossStrategy(session=TradingSession(limits, ledger))
    if sell_price is not None:
        sell = _sell(strategy, sell_price)
        assert sell.action == "SELL"  # the position is still sold
    buy = strategy.decide(_request(_snap(t=T0 + 300 * MINUTE)))
    return strategy, buy


def test_given_the_profit_target_reached_then_ma_cross_stops_buying() -> None:
    strategy, buy = _stopping(SessionLimits(profit_target=D("5")), FakeLedger("5.2"))
    assert buy.action == "WAIT"
    assert "session stopped: profit target reached" in buy.reasoning
    assert strategy.session.stopped is not None


def test_given_the_max_loss_reached_by_the_open_position_then_ma_cross_stops_buying() -> None:
    # realized -0.5 and 0.1 held from 100 now at 85: -1.5 more, total -2.0
    strategy, buy = _stopping(SessionLimits(max_loss=D("2")), FakeLedger("-0.5"), "85")
    assert buy.action == "WAIT"
    assert "session stopped: max loss reached" in buy.reasoning
    assert strategy.session.stopped_ms == T0 + 200 * MINUTE  # seen at the SELL consultation


def test_given_the_time_limit_reached_then_ma_cross_stops_buying() -> None:
    ledger = FakeLedger(started=T0 + 300 * MINUTE - 24 * HOUR)
    strategy, buy = _stopping(SessionLimits(time_limit_ms=24 * HOUR), ledger)
    assert buy.action == "WAIT"
    assert "session stopped: time limit reached" in buy.reasoning
    assert strategy.session.stopped_ms == T0 + 300 * MINUTE


def test_given_no_ledger_start_then_the_time_limit_counts_from_the_first_request() -> None:
    session = TradingSession(SessionLimits(time_limit_ms=HOUR))
    assert session.check(_request(_snap(t=T0))) is None
    assert session.check(_request(_snap(t=T0 + HOUR - 1))) is None
    assert session.check(_request(_snap(t=T0 + HOUR))) is not None


def test_given_a_stopped_session_then_it_stays_stopped_even_if_the_pnl_recovers() -> None:
    ledger = FakeLedger("6")
    session = TradingSession(SessionLimits(profit_target=D("5")), ledger)
    assert session.check(_request(_snap())) is not None
    ledger.realized = D("0")
    assert session.check(_request(_snap(t=T0 + HOUR))) == session.stopped


def test_given_a_session_then_the_ledger_is_read_on_a_new_cycle_and_periodically_only() -> None:
    ledger = FakeLedger()
    session = TradingSession(SessionLimits(profit_target=D("5")), ledger, refresh_ms=15 * MINUTE)
    for minute in range(10):  # BUY leg, once a minute
        session.check(_request(_snap(t=T0 + minute * MINUTE)))
    assert ledger.reads == 1
    session.check(_request(_snap(t=T0 + 11 * MINUTE), Side.SELL))
    ledger.realized = D("5")
    session.check(_request(_snap(t=T0 + 12 * MINUTE)))  # SELL -> BUY: a cycle closed
    assert ledger.reads == 2
    assert session.stopped is not None
