"""The circuit breakers' rules, each on its own (flipbot.domain.breakers)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.domain.breakers import (
    DAY_MS,
    Breaker,
    BreakerInputs,
    BreakerLimits,
    ClosedTrade,
    tripped,
)

NOON = 20_000 * DAY_MS + DAY_MS // 2  # 12:00 UTC on some day
HOUR = 3_600_000


def _trades(*pnl_at: tuple[str, int]) -> list[ClosedTrade]:
    return [ClosedTrade(at, Decimal(pnl)) for pnl, at in pnl_at]


def test_given_every_breaker_off_then_nothing_trips_whatever_happened() -> None:
    inputs = BreakerInputs(
        now_ms=NOON,
        volatility=0.5,
        failures=99,
        last_failure_ms=NOON,
        trades=_trades(("-100", NOON - 1)),
        last_stop_loss_ms=NOON - 1,
    )
    assert tripped(BreakerLimits(), inputs) is None


@pytest.mark.parametrize(("volatility", "trips"), [(0.031, True), (0.03, False), (None, False)])
def test_given_the_volatility_then_buying_pauses_only_above_the_limit(
    volatility: float | None, trips: bool
) -> None:
    limits = BreakerLimits(max_volatility=Decimal("0.03"))
    trip = tripped(limits, BreakerInputs(now_ms=NOON, volatility=volatility))
    assert (trip is not None) is trips
    if trip is not None:
        assert trip.breaker is Breaker.VOLATILITY
        assert trip.reason == "1-minute volatility 3.1000% > 3%"
        assert trip.until_ms == 0  # resumes when the market calms down


def test_given_failures_in_a_row_then_buying_pauses_for_the_cooldown_after_the_last() -> None:
    limits = BreakerLimits(max_failures=5, cooldown_ms=900_000)
    last = NOON - 60_000

    def at(now: int, failures: int = 5) -> Breaker | None:
        trip = tripped(limits, BreakerInputs(now_ms=now, failures=failures, last_failure_ms=last))
        return None if trip is None else trip.breaker

    assert at(NOON, failures=4) is None
    assert at(NOON) is Breaker.FAILURES
    assert at(last + 900_000 - 1) is Breaker.FAILURES
    assert at(last + 900_000) is None  # the cooldown is over: ask again
    trip = tripped(limits, BreakerInputs(now_ms=NOON, failures=6, last_failure_ms=last))
    assert trip is not None
    assert trip.until_ms == last + 900_000


def test_given_the_days_losses_then_buying_pauses_until_the_next_utc_day() -> None:
    limits = BreakerLimits(daily_loss=Decimal("5"))
    midnight = NOON - DAY_MS // 2
    yesterday_and_today = _trades(("-9", midnight - 1), ("-3", midnight + HOUR), ("1", NOON - HOUR))
    assert tripped(limits, BreakerInputs(now_ms=NOON, trades=yesterday_and_today)) is None
    losing = [*yesterday_and_today, *_trades(("-3", NOON - 1))]  # today: -3 + 1 - 3 = -5
    trip = tripped(limits, BreakerInputs(now_ms=NOON, trades=losing))
    assert trip is not None
    assert trip.breaker is Breaker.DAILY_LOSS
    assert trip.reason == "realized P&L today -5.0000 <= -5"
    assert trip.until_ms == midnight + DAY_MS
    assert tripped(limits, BreakerInputs(now_ms=midnight + DAY_MS, trades=losing)) is None


def test_given_a_fall_from_the_peak_within_the_window_then_buying_pauses() -> None:
    limits = BreakerLimits(max_drawdown=Decimal("4"), drawdown_window_ms=DAY_MS)
    # +3, +2 (peak 5), -2, -2 (1: 4 under the peak)
    trades = _trades(("3", NOON - 5 * HOUR), ("2", NOON - 4 * HOUR), ("-2", NOON - 3 * HOUR))
    assert tripped(limits, BreakerInputs(now_ms=NOON, trades=trades)) is None
    trades += _trades(("-2", NOON - 2 * HOUR))
    trip = tripped(limits, BreakerInputs(now_ms=NOON, trades=trades))
    assert trip is not None
    assert trip.breaker is Breaker.DRAWDOWN
    assert "fell 4.0000 from its peak in the last 24 h (limit 4)" in trip.reason
    # a day on, the losing trades have left the window
    later = NOON + DAY_MS - HOUR
    assert tripped(limits, BreakerInputs(now_ms=later, trades=trades)) is None


def test_given_a_loss_from_the_start_then_the_peak_is_the_start() -> None:
    limits = BreakerLimits(max_drawdown=Decimal("4"))
    trades = _trades(("-4", NOON - HOUR))
    trip = tripped(limits, BreakerInputs(now_ms=NOON, trades=trades))
    assert trip is not None
    assert trip.breaker is Breaker.DRAWDOWN


def test_given_a_stop_loss_exit_then_buying_pauses_for_its_cooldown() -> None:
    limits = BreakerLimits(stop_loss_cooldown_ms=HOUR)
    stop = NOON - 10 * 60_000
    trip = tripped(limits, BreakerInputs(now_ms=NOON, last_stop_loss_ms=stop))
    assert trip is not None
    assert trip.breaker is Breaker.STOP_LOSS_COOLDOWN
    assert trip.reason == "a stop-loss exit filled 600 s ago (cooldown 3600 s)"
    assert trip.until_ms == stop + HOUR
    assert tripped(limits, BreakerInputs(now_ms=stop + HOUR, last_stop_loss_ms=stop)) is None


def test_given_several_breakers_holding_then_the_first_in_order_is_named() -> None:
    limits = BreakerLimits(max_volatility=Decimal("0.01"), daily_loss=Decimal("1"))
    inputs = BreakerInputs(now_ms=NOON, volatility=0.02, trades=_trades(("-2", NOON - 1)))
    trip = tripped(limits, inputs)
    assert trip is not None
    assert trip.breaker is Breaker.VOLATILITY
