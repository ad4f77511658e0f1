"""Trading metrics from the books, and the lab's decision makers by name."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.lab import STRATEGIES, RecordedLedger, build_decider
from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import ConsultationRecord, Cycle, OrderRecord, TradeRecord
from flipbot.domain.errors import ConfigurationError
from flipbot.domain.model import Fill, Side
from flipbot.domain.strategies_lab import AdaptiveStrategy, MaCrossStrategy, SessionLimits
from flipbot.settings import Settings
from flipbot_dev.metrics import (
    Books,
    book_metrics,
    buy_and_hold_return_pct,
    equity_path,
    max_drawdown_pct,
    position_intervals,
    time_in_position_pct,
)

D = Decimal
S = 1000  # ms per second


def _order(coid: str, side: Side, created: int, status: str = "FILLED", **kw: Any) -> OrderRecord:
    cycle = coid.split("-")[1]
    return OrderRecord(
        coid,
        "TESTUSDC",
        side,
        D(kw.pop("price", "10")),
        D("1"),
        cycle_id=cycle,
        status=status,
        order_id=kw.pop("order_id", 1),
        created_ms=created,
        consultation_id=kw.pop("consultation_id", f"k-{coid}"),
        **kw,
    )


def _fill(coid: str, side: Side, t: int, price: str = "10", trade_id: int = 1) -> Fill:
    p = D(price)
    return Fill("TESTUSDC", 1, coid, trade_id, side, p, D("1"), p, p * D("0.001"), "USDC", True, t)


def _consultation(coid: str, leg: Side, t: int, verdict: str = "PLACE") -> ConsultationRecord:
    return ConsultationRecord(
        f"k-{coid}",
        coid.split("-")[1],
        leg,
        t,
        "offline",
        "v1",
        "h",
        str(leg),
        D("10"),
        0.9,
        "why",
        verdict,
    )


def _trade(cycle: str, opened: int, closed: int, pnl: str, ai: str = "0") -> TradeRecord:
    return TradeRecord(
        "TESTUSDC",
        cycle,
        opened,
        closed,
        D("1"),
        D("10"),
        D("10.2"),
        D("10"),
        D("10.2"),
        D("0.02"),
        D(ai),
        D(pnl),
        0.0,
        0.0,
    )


@pytest.fixture
def books() -> Books:
    """Cycle 1: consulted at 0 s, buy placed at 60 s, filled at 120 s, sell placed at 120 s,
    filled at 720 s, closed at 721 s. Cycle 2: a buy that timed out and a second one resting.
    """
    c1 = Cycle(
        "c000001", "TESTUSDC", CycleState.COMPLETED, created_ms=0, updated_ms=0, closed_ms=721 * S
    )
    c2 = Cycle("c000002", "TESTUSDC", CycleState.BUYING, created_ms=721 * S, updated_ms=0)
    orders = [
        _order("fb-c000001-B1", Side.BUY, 60 * S),
        _order("fb-c000001-S1", Side.SELL, 120 * S, price="10.2"),
        _order("fb-c000002-B1", Side.BUY, 781 * S, status="CANCELED"),
        _order("fb-c000002-B2", Side.BUY, 1000 * S, status="NEW"),
        _order("fb-c000002-B3", Side.BUY, 1000 * S, status="REJECTED", order_id=0),
    ]
    fills = [
        _fill("fb-c000001-B1", Side.BUY, 120 * S),
        _fill("fb-c000001-S1", Side.SELL, 720 * S, "10.2", trade_id=2),
    ]
    consultations = [
        _consultation("fb-c000001-B1", Side.BUY, 0),
        _consultation("fb-c000001-S1", Side.SELL, 120 * S),
        _consultation("fb-c000002-B1", Side.BUY, 781 * S),
        _consultation("fb-c000002-B2", Side.BUY, 1000 * S),
    ]
    trades = [_trade("c000001", 0, 721 * S, "0.18", ai="0.01")]
    return Books([c1, c2], orders, fills, trades, consultations)


def test_given_books_then_fill_rate_fill_time_and_profit_per_trade_follow_the_orders(
    books: Books,
) -> None:
    m = book_metrics(books)
    assert m["orders_placed"] == 4  # the order the exchange never saw does not count
    assert m["orders_filled"] == 2
    assert m["fill_rate"] == 0.5
    assert m["avg_fill_seconds"] == (60 + 600) / 2
    assert m["net_pnl"] == D("0.17")
    assert m["net_pnl_per_trade"] == D("0.17")
    assert m["win_rate"] == 1.0


def test_given_books_then_ai_accuracy_counts_proposals_that_filled_and_profitable_cycles(
    books: Books,
) -> None:
    ai = book_metrics(books)["ai_accuracy"]
    assert ai["buy_proposals"] == 3
    assert ai["buy_price_fill_rate"] == round(1 / 3, 4)
    assert ai["sell_price_fill_rate"] == 1.0
    assert ai["price_fill_rate"] == 0.5
    assert ai["profitable_cycles"] == 1.0


def test_given_books_then_latency_per_stage_comes_from_order_and_fill_times(
    books: Books,
) -> None:
    lat = book_metrics(books)["latency_seconds"]
    assert lat["buy_wait"]["count"] == 2  # both cycles placed a buy
    assert lat["buy_wait"]["max"] == 60.0
    assert lat["buy_fill"] == {"count": 1, "avg": 60.0, "p50": 60.0, "max": 60.0}
    assert lat["sell_place"]["avg"] == 0.0
    assert lat["sell_fill"]["avg"] == 600.0
    assert lat["record"]["avg"] == 1.0
    assert lat["cycle"] == {"count": 1, "avg": 721.0, "p50": 721.0, "max": 721.0}
    assert lat["consult_to_order"]["count"] == 4
    assert lat["consult_to_order"]["max"] == 60.0


def test_given_fills_and_prices_then_the_equity_path_values_the_position_at_each_price(
    books: Books,
) -> None:
    prices = [(0, D("10")), (300 * S, D("9")), (900 * S, D("11"))]
    path = equity_path({"USDC": D("100")}, books.fills, prices, "TEST", "USDC")
    assert path[0] == (0, 100.0)
    # bought 1 at 10 (fee 0.01 USDC), valued at 9 at 300 s
    assert path[2] == (300 * S, pytest.approx(100 - 10 - 0.01 + 9))
    # sold at 10.2 (fee 0.0102): flat again
    assert path[-1][1] == pytest.approx(100 - 10.01 + 10.2 - 0.0102)
    assert max_drawdown_pct(v for _, v in path) == pytest.approx(1.01, abs=0.01)


def test_given_spans_then_time_in_position_counts_overlaps_once(books: Books) -> None:
    spans = position_intervals(books, end_ms=1200 * S)
    assert spans == [(120 * S, 720 * S)]
    assert time_in_position_pct(spans, 0, 1200 * S) == 50.0
    assert time_in_position_pct([(0, 10), (5, 20)], 0, 40) == 50.0
    assert time_in_position_pct([], 10, 10) == 0.0


def test_given_prices_then_buy_and_hold_pays_the_fee_both_ways() -> None:
    assert buy_and_hold_return_pct(D("100"), D("110"), D("0")) == 10.0
    assert buy_and_hold_return_pct(D("100"), D("100"), D("0.001")) == pytest.approx(-0.1999)
    assert max_drawdown_pct([100, 120, 90, 130]) == 25.0


TABLES = {
    "SYMBOL": "TESTUSDC",
    **{f"{name}_TABLE": name.lower() for name in ("CYCLES", "ORDERS", "FILLS", "TRADES")},
    "CONSULTATIONS_TABLE": "consultations",
    "MARKET_TABLE": "market",
}


def session_limits(env: dict[str, str], quote_per_cycle: D) -> SessionLimits:
    """The session limits the settings read from ``env``."""
    given = {**TABLES, **env, "QUOTE_PER_CYCLE": str(quote_per_cycle)}
    return Settings.from_env(given).session_limits


def test_given_no_environment_then_session_limits_scale_with_the_quote_per_cycle() -> None:
    limits = session_limits({}, D("10"))
    assert limits.profit_target == D("5")
    assert limits.max_loss == D("2")
    assert limits.time_limit_ms == 168 * 3_600_000


def test_given_session_variables_then_they_are_used_and_off_disables() -> None:
    env = {
        "SESSION_PROFIT_TARGET": "1.5",
        "SESSION_MAX_LOSS": "off",
        "SESSION_TIME_LIMIT_HOURS": "0.5",
    }
    limits = session_limits(env, D("10"))
    assert (limits.profit_target, limits.max_loss, limits.time_limit_ms) == (
        D("1.5"),
        None,
        1_800_000,
    )


@pytest.mark.parametrize("value", ["abc", "-1", "0", "NaN"])
def test_given_a_bad_session_variable_then_the_configuration_error_names_it(value: str) -> None:
    with pytest.raises(ConfigurationError, match="SESSION_MAX_LOSS"):
        session_limits({"SESSION_MAX_LOSS": value}, D("10"))


class _Repos:
    class trades:
        @staticmethod
        def all(symbol: str) -> list[TradeRecord]:
            return [_trade("c000001", 5, 10, "0.3", ai="0.1"), _trade("c000002", 10, 20, "-0.1")]

    class cycles:
        @staticmethod
        def get(cycle_id: str) -> Cycle | None:
            if cycle_id != "c000001":
                return None
            return Cycle(cycle_id, "TESTUSDC", CycleState.COMPLETED, created_ms=5, updated_ms=9)


def test_given_recorded_trades_then_the_ledger_gives_net_pnl_and_the_first_cycle_start() -> None:
    ledger = RecordedLedger(_Repos(), "TESTUSDC")  # type: ignore[arg-type]
    assert ledger.realized_pnl() == D("0.1")
    assert ledger.started_ms() == 5


def test_given_lab_names_then_build_decider_returns_each_strategy_and_none_for_others() -> None:
    kw: dict[str, Any] = {
        "repos": _Repos(),
        "symbol": "TESTUSDC",
        "limits": session_limits({}, D("10")),
    }
    assert isinstance(build_decider("adaptive", **kw), AdaptiveStrategy)
    ma = build_decider("ma-cross", **kw)
    assert isinstance(ma, MaCrossStrategy)
    assert ma.session.limits.profit_target == D("5")
    ai = build_decider("ai", **kw)
    assert ai is not None
    assert ai.name == "offline"
    assert build_decider("fixed", **kw) is None
    assert {"ai", "adaptive", "fixed", "offline", "ma-cross"} <= set(STRATEGIES)
