"""Three models voting through the whole twin: three local OpenAI-compatible endpoints,
one of them failing every request. The replay completes cycles, each consultation's
record keeps every model's vote and cost, and the failed model never blocks a vote."""

from __future__ import annotations

import json
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from ai_replay import replay_with_ai

from flipbot_dev.fake_openai import FakeOpenAiServer, server_error, valid
from flipbot_dev.twin.tables_dump import Books

KEY = "sk-local-vote-0123456789"
MODELS = ("model-a", "model-b", "model-c")


@pytest.fixture(scope="module")
def voted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Books]:
    tmp = tmp_path_factory.mktemp("vote")
    responders = [valid(confidence=0.9), server_error(retry_after_ms=1), valid(confidence=0.85)]
    with ExitStack() as stack:
        servers = [
            stack.enter_context(FakeOpenAiServer(r, api_key=KEY, lifetime=300)) for r in responders
        ]
        env = {
            "OPENAI_API_KEY": KEY,
            "AI_MODELS": ",".join(
                f"{m}@{s.base_url}" for m, s in zip(MODELS, servers, strict=True)
            ),
            "AI_PRICE_TABLE": json.dumps({m: [1, 2] for m in MODELS}),
        }
        report, books = replay_with_ai(tmp, env, hours=3, max_cycles=2)
        assert servers[1].request_count > 0, "the failing model was never asked"
    return report, books


def test_given_three_models_one_failing_then_the_replay_completes_cycles(
    voted: tuple[dict[str, Any], Books],
) -> None:
    report, books = voted
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    assert report["cycles_completed"] >= 1
    assert {t.cycle_id for t in books.trades}


def test_each_consultation_records_every_vote_and_its_cost(
    voted: tuple[dict[str, Any], Books],
) -> None:
    _, books = voted
    asked = [c for c in books.consultations if c.decided_by.startswith("vote:")]
    assert asked, "no consultation was decided by the vote"
    for record in asked:
        assert record.decided_by == "vote:" + "+".join(MODELS)
        votes = [json.loads(record.extra[f"vote.{n}"]) for n in (1, 2, 3)]
        assert [v["model"] for v in votes] == list(MODELS)
        assert (votes[1]["error"], votes[1]["action"]) == ("server_error", None)
        assert votes[0]["error"] == votes[2]["error"] == ""
        assert "2 of 3 models agree" in record.extra["vote.outcome"]
        # the record's cost is the sum of the votes' costs, each counted once
        assert record.cost_usd == sum(Decimal(v["cost_usd"]) for v in votes) > 0
        # the price is the median (here the mean) of the two answers, confidence the lower
        assert record.confidence == min(votes[0]["confidence"], votes[2]["confidence"])
        prices = [Decimal(votes[0]["price"]), Decimal(votes[2]["price"])]
        assert record.price == sum(prices) / 2
