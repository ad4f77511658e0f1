"""The sell rule through the whole twin, with the real OpenAI client against a local
OpenAI-compatible endpoint that answers buys confidently and sells at confidence 0.5.

``SellRule=confident`` (the default, the seed's rule): the cycle buys, then places no
sell while the answers are unsure; it asks again each ``ReconsultSeconds`` and places the
first confident answer as given. ``SellRule=floor``: the unsure answer is refused and the
sell goes at the profit floor at once.
"""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ai_replay import replay_with_ai

from flipbot.domain.entities import ConsultationRecord, OrderRecord
from flipbot.domain.model import Side
from flipbot_dev.fake_openai import FakeOpenAiServer, FakeReply, FakeRequest, Responder, valid
from flipbot_dev.twin.tables_dump import Books

KEY = "sk-local-sell-rule-0123456789"
UNSURE_SELLS = 3


def unsure_sells_then_confident(unsure: int | None) -> Responder:
    """Buys: a sensible confident answer. Sells: ``unsure`` answers at confidence 0.5
    (``None``: every one), then sensible confident ones."""
    lock, sells = threading.Lock(), [0]
    confident, doubtful = valid(confidence=0.9), valid(confidence=0.5)

    def respond(request: FakeRequest) -> FakeReply:
        if (request.context or {}).get("leg") != "SELL":
            return confident(request)
        with lock:
            sells[0] += 1
            n = sells[0]
        return doubtful(request) if unsure is None or n <= unsure else confident(request)

    return respond


def _replay(tmp: Path, responder: Responder, **parameters: str) -> tuple[dict[str, Any], Books]:
    with FakeOpenAiServer(responder, api_key=KEY, lifetime=180) as server:
        env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": KEY}
        return replay_with_ai(tmp, env, hours=2, max_cycles=1, parameters=parameters)


def _sell_audit(books: Books) -> list[ConsultationRecord]:
    return sorted((c for c in books.consultations if c.leg is Side.SELL), key=lambda c: c.time_ms)


def _sells(books: Books) -> list[OrderRecord]:
    return sorted((o for o in books.orders if o.side is Side.SELL), key=lambda o: o.created_ms)


def _invariants_hold(report: dict[str, Any]) -> None:
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"


@pytest.fixture(scope="module")
def confident_rule(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Books]:
    return _replay(tmp_path_factory.mktemp("confident"), unsure_sells_then_confident(UNSURE_SELLS))


def test_given_the_default_rule_and_unsure_sells_then_no_sell_until_a_confident_answer(
    confident_rule: tuple[dict[str, Any], Books],
) -> None:
    report, books = confident_rule
    _invariants_hold(report)
    assert any(o.side is Side.BUY and o.executed_qty > 0 for o in books.orders)
    audit = _sell_audit(books)
    # the unsure answers were each refused for their confidence, and nothing was placed
    assert [c.verdict for c in audit[:UNSURE_SELLS]] == ["REJECTED:confidence"] * UNSURE_SELLS
    assert all(c.confidence == 0.5 for c in audit[:UNSURE_SELLS])
    confident = audit[UNSURE_SELLS]
    assert (confident.verdict, confident.confidence) == ("PLACE", 0.9)
    sells = _sells(books)
    assert sells, "the confident answer was not placed"
    assert sells[0].created_ms >= confident.time_ms
    assert sells[0].consultation_id == confident.consultation_id
    assert confident.price is not None
    assert sells[0].price >= confident.price  # as given, up to the tick
    assert sells[0].price - confident.price < Decimal("0.01")
    # each unsure answer was followed by a wait of ReconsultSeconds before asking again
    gaps = [b.time_ms - a.time_ms for a, b in itertools.pairwise(audit[: UNSURE_SELLS + 1])]
    assert all(gap >= 60_000 for gap in gaps), gaps


def test_given_sell_rule_floor_and_an_unsure_sell_then_it_sells_at_the_floor_at_once(
    tmp_path: Path,
) -> None:
    report, books = _replay(tmp_path, unsure_sells_then_confident(None), SellRule="floor")
    _invariants_hold(report)
    first = _sell_audit(books)[0]
    assert first.verdict == "REJECTED:confidence"
    sell = _sells(books)[0]
    assert sell.consultation_id == first.consultation_id
    (cycle,) = [c for c in books.cycles if c.cycle_id == sell.cycle_id]
    assert cycle.floor_price is not None
    assert sell.price == cycle.floor_price
