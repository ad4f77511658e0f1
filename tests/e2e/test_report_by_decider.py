"""P&L, win rate and fill rate by decider, on a replay where two deciders take part.

The local OpenAI-compatible endpoint refuses by turns: in one cycle it answers the buy
leg and refuses the sell leg (the AI buys, the offline fallback sells), in the next it
refuses the buy leg and answers the sell leg (the fallback buys, the AI sells). The
report's ``by_decider`` rows and ``flipbot pnl`` split the run by who decided each
cycle's buy leg, each cycle counted once, and the rows add up to the totals.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot.domain.model import Side
from flipbot_dev.cli import main
from flipbot_dev.fake_openai import FakeOpenAiServer, FakeReply, FakeRequest, refusal, valid
from flipbot_dev.metrics import Books
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.report import format_report
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
KEY = "sk-local-replay-0123456789"
HOURS = 2  # 30 min of warm-up, then a cycle of each kind and one open


class TakeTurns:
    """Answers one leg of each cycle and refuses the other, the legs swapping each cycle
    (a buy request after a sell request starts a cycle)."""

    def __init__(self) -> None:
        self.answer, self.refuse = valid(), refusal()
        self.cycle, self.last_leg = 0, ""

    def __call__(self, request: FakeRequest) -> FakeReply:
        leg = str((request.context or {}).get("leg", ""))
        if leg == "BUY" and self.last_leg == "SELL":
            self.cycle += 1
        self.last_leg = leg
        ai_leg = "BUY" if self.cycle % 2 == 0 else "SELL"
        return self.answer(request) if leg == ai_leg else self.refuse(request)


@pytest.fixture(scope="module")
def two_deciders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    out = tmp_path_factory.mktemp("by_decider")
    with (
        FakeOpenAiServer(TakeTurns(), api_key=KEY, lifetime=120) as server,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        env.delenv("AI_MODEL", raising=False)
        config = ReplayConfig(
            template=TEMPLATE,
            data=generate_sample(seed=7, hours=HOURS),
            symbol="TRUMPUSDC",
            decider="openai",
            progress=False,
            out_dir=out,
        )
        yield run_replay(config, out=io.StringIO()), out


def _buy_deciders(books: Books) -> Counter[str]:
    """Per decider, the closed cycles whose buy it decided: the consultation behind each
    cycle's filled buy order."""
    decided_by = {c.consultation_id: c.decided_by for c in books.consultations}
    closed = {t.cycle_id for t in books.trades}
    return Counter(
        decided_by[o.consultation_id]
        for o in books.orders
        if o.side is Side.BUY and o.status == "FILLED" and o.cycle_id in closed
    )


def _mixed_cycles(books: Books) -> set[str]:
    """Closed cycles whose placed buy and placed sell came from different deciders."""
    decided_by = {c.consultation_id: c.decided_by for c in books.consultations}
    legs: dict[str, dict[Side, set[str]]] = {}
    for o in books.orders:
        if o.order_id and o.consultation_id in decided_by:
            legs.setdefault(o.cycle_id, {}).setdefault(o.side, set()).add(
                decided_by[o.consultation_id]
            )
    closed = {t.cycle_id for t in books.trades}
    return {c for c, by in legs.items() if c in closed and by.get(Side.BUY) != by.get(Side.SELL)}


def _total(rows: list[dict[str, Any]], key: str) -> Any:
    return sum((Decimal(str(r[key])) for r in rows), Decimal(0))


def test_given_two_deciders_then_each_cycle_counts_once_for_its_buys_decider(
    two_deciders: tuple[dict[str, Any], Path],
) -> None:
    report, out = two_deciders
    books = load_tables(out / "tables")
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, report["violations"]
    rows = report["by_decider"]
    assert [r["decided_by"] for r in rows] == sorted({"ai:gpt-4o-mini", "fallback:offline"})
    assert _mixed_cycles(books), "no cycle was bought by one decider and sold by the other"
    assert {r["decided_by"]: r["cycles_completed"] for r in rows} == _buy_deciders(books)


def test_given_two_deciders_then_the_rows_add_up_to_the_reports_totals(
    two_deciders: tuple[dict[str, Any], Path],
) -> None:
    report, _ = two_deciders
    rows = report["by_decider"]
    assert all(r["cycles_completed"] > 0 for r in rows)
    assert _total(rows, "cycles_completed") == report["cycles_completed"]
    assert _total(rows, "cycles_open") == report["cycles_open"]
    assert _total(rows, "realized_pnl_usdc") == Decimal(report["realized_pnl_usdc"])
    assert _total(rows, "ai_cost_usdc") == Decimal(report["ai_cost_usdc"])
    assert _total(rows, "net_pnl_usdc") == Decimal(report["net_pnl_usdc"])
    assert _total(rows, "orders_placed") == report["orders_placed"]
    assert _total(rows, "orders_filled") == report["orders_filled"]
    # every decider's refused AI calls cost something: both rows carry AI cost
    assert all(Decimal(r["ai_cost_usdc"]) > 0 for r in rows)
    for r in rows:
        assert r["fill_rate"] == round(r["orders_filled"] / r["orders_placed"], 4)


def test_given_two_deciders_then_the_report_and_pnl_print_the_split(
    two_deciders: tuple[dict[str, Any], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    report, out = two_deciders
    text = format_report(report)
    assert "by decider" in text
    assert json.loads((out / "report.json").read_text())["by_decider"] == report["by_decider"]

    assert main(["pnl", "--run", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "by decider" in printed
    for r in report["by_decider"]:
        line = next(x for x in text.splitlines() if x.strip().startswith(r["decided_by"]))
        assert line.split()[1:3] == [str(r["cycles_completed"]), str(r["cycles_open"])]
        assert any(x.strip().startswith(r["decided_by"]) for x in printed.splitlines())

    assert main(["pnl", "--run", str(out), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    split = figures["by_decider"]
    # pnl counts the closed cycles' recorded AI cost, as its own totals do
    assert _total(split, "ai_cost_usdc") == Decimal(figures["ai_cost"])
    assert _total(split, "net_pnl_usdc") == Decimal(figures["net_pnl"])
    assert _total(split, "cycles_completed") == figures["cycles_completed"]
    keep = ("decided_by", "cycles_completed", "realized_pnl_usdc", "win_rate", "fill_rate")
    assert [{k: r[k] for k in keep} for r in split] == [
        {k: r[k] for k in keep} for r in report["by_decider"]
    ]
