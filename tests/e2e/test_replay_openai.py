"""``flipbot replay --ai openai`` against a local OpenAI-compatible endpoint.

``--ai openai`` runs the replay with ``ReplayConfig(decider="openai")``, the AI decision
maker built from this process's ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY``; the test does
the same without the CLI's file outputs (plots are slow and not the point here).

The endpoint answers sensibly and absurdly by turns (a buy at ten times the ask, a sell
at a tenth of the floor, both with confidence 0.99). The whole deployed system trades on
the bundled sample: full cycles complete, every invariant holds, and the report counts
the guard rejections. Determinism is not asked of this mode (real HTTP, wall-clock
latencies), only correctness.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot_dev.fake_openai import FakeOpenAiServer, absurd, alternate, valid
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.tables_dump import load_tables

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

KEY = "sk-local-replay-0123456789"
HOURS = 2  # 30 min of warm-up, then three full cycles on the seed-7 sample


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay-openai")


@pytest.fixture(scope="module")
def replay_with_absurd_half(out: Path) -> Iterator[tuple[dict[str, Any], FakeOpenAiServer]]:
    with (
        FakeOpenAiServer(alternate(valid(), absurd()), api_key=KEY, lifetime=120) as server,
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
        yield run_replay(config, out=io.StringIO()), server


def test_given_absurd_answers_half_the_time_then_cycles_complete_and_invariants_hold(
    replay_with_absurd_half: tuple[dict[str, Any], FakeOpenAiServer],
) -> None:
    report, _ = replay_with_absurd_half
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"
    assert report["decided_by"] == "openai"
    assert report["cycles_completed"] >= 1
    assert report["violations"]["sells_below_floor"] == []
    assert report["violations"]["cycles_over_cap"] == []


def test_every_consultation_asked_the_endpoint_and_the_absurd_half_was_rejected(
    replay_with_absurd_half: tuple[dict[str, Any], FakeOpenAiServer],
) -> None:
    report, server = replay_with_absurd_half
    assert server.request_count == report["consultations"] >= 4
    absurd_answers = server.request_count // 2  # requests 1, 3, 5, ...
    assert report["guard_rejections"] == absurd_answers
    assert Decimal(report["ai_cost_usdc"]) > 0
    legs = {request.context["leg"] for request in server.requests if request.context}
    assert legs == {"BUY", "SELL"}
    assert all(request.model == "gpt-4o-mini" for request in server.requests)


def test_each_answers_market_analysis_is_in_the_audit(
    replay_with_absurd_half: tuple[dict[str, Any], FakeOpenAiServer], out: Path
) -> None:
    report, _ = replay_with_absurd_half
    asked = [c for c in load_tables(out / "tables").consultations if c.decided_by.startswith("ai:")]
    assert len(asked) == report["consultations"]
    assert {c.extra.get("market_analysis.trend") for c in asked} == {"SIDEWAYS"}
    assert all(c.extra["market_analysis.summary"] for c in asked)
