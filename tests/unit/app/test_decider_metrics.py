"""P&L, win rate and fill rate by decider (``flipbot_dev.metrics.by_decider``) from the
books, and ``flipbot pnl`` printing them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

from flipbot.adapters.dynamodb import body_of
from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import ConsultationRecord, Cycle, OrderRecord, TradeRecord
from flipbot.domain.model import Fill, Side
from flipbot_dev.cli import main
from flipbot_dev.metrics import (
    NO_DECIDER,
    Books,
    book_metrics,
    by_decider,
    cycle_owners,
    fill_figures,
)
from flipbot_dev.twin.tables_dump import TABLES

D = Decimal
S = 1000  # ms per second
AI, FALLBACK = "ai:gpt-4o-mini", "fallback:offline"


def _order(coid: str, side: Side, created: int, status: str, **kw: Any) -> OrderRecord:
    filled = D("1") if status == "FILLED" else D("0")
    return OrderRecord(
        coid,
        "TESTUSDC",
        side,
        D("10"),
        D("1"),
        cycle_id=kw.pop("cycle_id", coid.split("-")[1]),
        status=status,
        order_id=kw.pop("order_id", created),
        executed_qty=filled,
        created_ms=created,
        consultation_id=kw.pop("consultation_id", f"k-{coid}"),
        **kw,
    )


def _consultation(
    consultation_id: str, cycle_id: str, leg: Side, t: int, by: str, cost: str
) -> ConsultationRecord:
    return ConsultationRecord(
        consultation_id,
        cycle_id,
        leg,
        t,
        by,
        "v1",
        "h",
        str(leg),
        D("10"),
        0.9,
        "why",
        "PLACE",
        cost_usd=D(cost),
    )


def _asked(coid: str, t: int, by: str, cost: str) -> ConsultationRecord:
    leg = Side.BUY if coid.split("-")[2].startswith("B") else Side.SELL
    return _consultation(f"k-{coid}", coid.split("-")[1], leg, t, by, cost)


def _trade(cycle: str, closed: int, pnl: str, ai: str) -> TradeRecord:
    return TradeRecord(
        "TESTUSDC",
        cycle,
        0,
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


def _fill(coid: str, side: Side, t: int) -> Fill:
    return Fill("TESTUSDC", t, coid, t, side, D("10"), D("1"), D("10"), D("0.01"), "USDC", True, t)


@pytest.fixture
def books() -> Books:
    """c000001: the AI bought, the fallback sold (won). c000002: an AI buy timed out
    unfilled, the fallback's second buy filled, the AI sold (lost). c000003: open, the AI
    said wait. The sell that follows a manual buy rests (cycle ``manual``)."""
    cycles = [
        Cycle("c000001", "TESTUSDC", CycleState.COMPLETED, 0, 0, closed_ms=100 * S),
        Cycle("c000002", "TESTUSDC", CycleState.COMPLETED, 100 * S, 0, closed_ms=900 * S),
        Cycle("c000003", "TESTUSDC", CycleState.BUYING, 900 * S, 0),
    ]
    orders = [
        _order("fb-c000001-B1", Side.BUY, 10 * S, "FILLED"),
        _order("fb-c000001-S1", Side.SELL, 20 * S, "FILLED"),
        _order("fb-c000002-B1", Side.BUY, 110 * S, "CANCELED"),
        _order("fb-c000002-B2", Side.BUY, 300 * S, "FILLED"),
        _order("fb-c000002-S1", Side.SELL, 400 * S, "FILLED"),
        _order("fb-m42", Side.SELL, 500 * S, "NEW", cycle_id="manual", consultation_id=""),
    ]
    fills = [
        _fill("fb-c000001-B1", Side.BUY, 15 * S),
        _fill("fb-c000001-S1", Side.SELL, 90 * S),
        _fill("fb-c000002-B2", Side.BUY, 310 * S),
        _fill("fb-c000002-S1", Side.SELL, 890 * S),
    ]
    consultations = [
        _asked("fb-c000001-B1", 5 * S, AI, "0.002"),
        _asked("fb-c000001-S1", 15 * S, FALLBACK, "0.001"),
        _asked("fb-c000002-B1", 105 * S, AI, "0.002"),
        _asked("fb-c000002-B2", 295 * S, FALLBACK, "0.001"),
        _asked("fb-c000002-S1", 310 * S, AI, "0.002"),
        _consultation("k-c000003-wait", "c000003", Side.BUY, 905 * S, AI, "0.004"),
    ]
    trades = [
        _trade("c000001", 100 * S, "0.18", "0.003"),
        _trade("c000002", 900 * S, "-0.05", "0.005"),
    ]
    return Books(cycles, orders, fills, trades, consultations)


def _total(rows: list[dict[str, Any]], key: str) -> Decimal:
    return sum((D(str(r[key])) for r in rows), D(0))


def test_given_mixed_legs_then_a_cycle_belongs_to_who_decided_the_buy_that_bought(
    books: Books,
) -> None:
    owners = cycle_owners(books)
    assert owners["c000001"] == AI  # the fallback's sell does not move it
    assert owners["c000002"] == FALLBACK  # the AI's unfilled buy does not count
    assert owners["c000003"] == AI  # no buy yet: its last buy consultation
    assert owners["manual"] == NO_DECIDER  # no consultation speaks for it


def test_given_books_then_each_cycle_is_counted_once_and_the_rows_add_up(
    books: Books,
) -> None:
    totals = book_metrics(books)
    modes: tuple[Literal["trades", "consultations"], ...] = ("trades", "consultations")
    for mode in modes:
        rows = by_decider(books, ai_cost=mode)
        assert [r["decided_by"] for r in rows] == sorted(r["decided_by"] for r in rows)
        assert _total(rows, "cycles_completed") == totals["cycles_completed"]
        assert _total(rows, "cycles_open") == sum(
            1 for c in books.cycles if c.state is not CycleState.COMPLETED
        )
        assert _total(rows, "realized_pnl_usdc") == totals["realized_pnl"]
        assert _total(rows, "orders_placed") == totals["orders_placed"]
        assert _total(rows, "orders_filled") == totals["orders_filled"]
    by_trades = by_decider(books, ai_cost="trades")
    assert _total(by_trades, "ai_cost_usdc") == totals["ai_cost"]
    assert _total(by_trades, "net_pnl_usdc") == totals["net_pnl"]
    by_consultations = by_decider(books, ai_cost="consultations")
    every_consultation = sum((c.cost_usd for c in books.consultations), D(0))
    assert _total(by_consultations, "ai_cost_usdc") == every_consultation
    assert _total(by_consultations, "net_pnl_usdc") == totals["realized_pnl"] - every_consultation


def test_given_books_then_a_rows_win_rate_and_fill_rate_are_its_own_cycles(
    books: Books,
) -> None:
    rows = {r["decided_by"]: r for r in by_decider(books, ai_cost="trades")}
    owners = cycle_owners(books)
    for name, row in rows.items():
        own_orders = [o for o in books.orders if owners[o.cycle_id] == name]
        assert {k: row[k] for k in ("orders_placed", "orders_filled", "fill_rate")} == (
            fill_figures(own_orders)
        )
        own_trades = [t for t in books.trades if owners[t.cycle_id] == name]
        wins = [t for t in own_trades if t.realized_pnl - t.ai_cost_usd > 0]
        assert row["win_rate"] == (len(wins) / len(own_trades) if own_trades else 0.0)
    assert rows[AI]["win_rate"] == 1.0
    assert rows[FALLBACK]["win_rate"] == 0.0
    assert rows[NO_DECIDER]["cycles_completed"] == 0


def test_given_an_open_cycle_then_its_ai_cost_counts_only_where_the_totals_count_it(
    books: Books,
) -> None:
    open_cost = sum((c.cost_usd for c in books.consultations if c.cycle_id == "c000003"), D(0))
    closed = {r["decided_by"]: r for r in by_decider(books, ai_cost="trades")}
    every = {r["decided_by"]: r for r in by_decider(books, ai_cost="consultations")}
    assert D(every[AI]["ai_cost_usdc"]) - D(closed[AI]["ai_cost_usdc"]) == open_cost
    assert every[FALLBACK]["ai_cost_usdc"] == closed[FALLBACK]["ai_cost_usdc"]


def test_given_a_run_when_pnl_runs_then_it_prints_the_split_and_puts_it_in_its_json(
    books: Books, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tables = tmp_path / "tables"
    tables.mkdir()
    for name in TABLES:
        rows = [body_of(row) for row in getattr(books, name)]
        (tables / f"{name}.json").write_text(json.dumps(rows))

    assert main(["pnl", "--run", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "by decider" in text
    expected = by_decider(books, ai_cost="trades")
    for row in expected:
        line = next(x for x in text.splitlines() if x.strip().startswith(row["decided_by"]))
        cells = line.split()
        assert cells[1:3] == [str(row["cycles_completed"]), str(row["cycles_open"])]
        assert D(cells[3]) == D(row["net_pnl_usdc"]).quantize(D("0.0001"))

    assert main(["pnl", "--run", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_decider"] == expected
