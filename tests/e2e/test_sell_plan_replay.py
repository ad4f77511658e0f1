"""Both legs planned by one consultation, through the whole twin with the real OpenAI
client: the buy answer plans its sell (3 % over the bid, confidence 0.9), and each cycle's
first sell is placed from that plan without another request to the model."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from ai_replay import replay_with_ai

from flipbot.domain.model import Side
from flipbot_dev.fake_openai import FakeOpenAiServer, FakeReply, FakeRequest, valid
from flipbot_dev.twin.tables_dump import Books

KEY = "sk-local-sell-plan-0123456789"


class Planner:
    """Buys at the bid with a sell plan 3 % over it; counts the requests per leg."""

    def __init__(self) -> None:
        self.legs: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: FakeRequest) -> FakeReply:
        context = request.context or {}
        leg = str(context.get("leg"))
        with self._lock:
            self.legs[leg] += 1
        if leg != "BUY":
            return valid()(request)
        bid = Decimal(str(context["market"]["best_bid"]))
        plan = {
            "suggested_margin": 0.018,
            "timeout_seconds": 900,
            "price": float(round(bid * Decimal("1.03"), 2)),
            "confidence": 0.9,
        }
        return valid(sell_strategy=plan)(request)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Books, Planner]:
    tmp = tmp_path_factory.mktemp("plan")
    planner = Planner()
    with FakeOpenAiServer(planner, api_key=KEY, lifetime=300) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
        report, books = replay_with_ai(tmp, env, hours=6, max_cycles=2)
    return report, books, planner


def test_each_first_sell_comes_from_the_buy_answers_plan(
    planned: tuple[dict[str, Any], Books, Planner],
) -> None:
    report, books, planner = planned
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    assert report["cycles_completed"] >= 1
    by_id = {c.consultation_id: c for c in books.consultations}
    first_sells = [
        o for o in books.orders if o.side is Side.SELL and o.client_order_id.endswith("S1")
    ]
    assert first_sells
    for order in first_sells:
        record = by_id[order.consultation_id]
        assert record.decided_by.startswith("plan:ai:")
        bought_by = by_id[record.extra["sell_plan.from"]]
        assert order.price == Decimal(bought_by.extra["sell_plan.price"])
        assert record.cost_usd == 0
    # the model was asked about a sell only for re-pricings (attempt 2 on), never first
    sells_asked = [
        c for c in books.consultations if c.leg is Side.SELL and c.decided_by.startswith("ai:")
    ]
    assert planner.legs["SELL"] == len(sells_asked)
    assert all("-S1-" not in c.consultation_id for c in sells_asked)
