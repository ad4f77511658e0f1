"""Models voting: AI_MODELS parsed with clear errors, every model asked through the real
``openai`` client, a failed model left out, each vote and its cost kept for the audit."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from flipbot.adapters.openai_decider import build_ai_decider
from flipbot.ai.voting import ModelSpec, VotingDecisionMaker, parse_ai_models
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable, ConfigurationError
from flipbot.domain.strategy import OfflineStrategy
from flipbot_dev.fake_openai import (
    FakeOpenAiServer,
    FakeReply,
    FakeRequest,
    server_error,
    slow,
    valid,
)

PRICES = '{"model-a": [1, 2], "model-b": [3, 4], "model-c": [5, 6]}'


def test_ai_models_lists_models_with_or_without_their_endpoint() -> None:
    assert parse_ai_models("") == ()
    assert parse_ai_models("a, b@https://h/v1, a") == (
        ModelSpec("a"),
        ModelSpec("b", "https://h/v1"),
    )
    assert parse_ai_models(" gpt-4o-mini , deepseek-chat@https://api.deepseek.com/v1") == (
        ModelSpec("gpt-4o-mini"),
        ModelSpec("deepseek-chat", "https://api.deepseek.com/v1"),
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("gpt-4o-mini,,x", "''"),
        ("gpt 4o", "'gpt 4o'"),
        ("m@ftp://host/v1?key=sk-123", "'m@host'"),  # the host only: a query may hold a key
        ("m@", "'m@?'"),
    ],
)
def test_a_bad_ai_models_entry_is_named_in_the_error(text: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match="AI_MODELS") as caught:
        parse_ai_models(text)
    assert named in str(caught.value)


def _by_model(failing: str = "", wait_for: str = "") -> Any:
    """Answers per model: model-a buys at the bid, model-b 2 cents lower, model-c 4 cents
    lower and less sure; ``failing`` answers 500; ``wait_for`` answers WAIT."""
    offsets = {"model-a": Decimal(0), "model-b": Decimal("0.02"), "model-c": Decimal("0.04")}
    confidence = {"model-a": 0.95, "model-b": 0.9, "model-c": 0.85}

    def respond(request: FakeRequest) -> FakeReply:
        model = request.model
        if model == failing:
            return server_error(retry_after_ms=1)(request)
        bid = Decimal(str(request.context["market"]["best_bid"]))  # type: ignore[index]
        fields: dict[str, Any] = {
            "base_price": float(bid - offsets[model]),
            "confidence": confidence[model],
        }
        if model == wait_for:
            fields["action"] = "WAIT"
        return valid(**fields)(request)

    return respond


def _voters(respond: Any, **kw: Any) -> Any:
    endpoint = FakeOpenAiServer(respond, api_key="sk-vote-0123456789")
    return build_ai_decider(
        "sk-vote-0123456789",
        fallback=OfflineStrategy(),
        models=parse_ai_models("model-a,model-b,model-c"),
        base_url="http://fake.invalid/v1",
        now_ms=lambda: 1_737_331_200_000,
        price_table=PRICES,
        http_client=httpx2.Client(transport=endpoint.mock_transport()),
        timeout=1.0,
        max_retries=1,
        **kw,
    ), endpoint


def test_given_three_models_then_each_is_asked_and_the_median_buy_is_taken(market: Any) -> None:
    decider, endpoint = _voters(_by_model())
    decision = decider.decide(market.buy())
    assert sorted(r.model for r in endpoint.requests) == ["model-a", "model-b", "model-c"]
    assert decision.action == "BUY"
    assert decision.base_price == Decimal("9.98")  # the median of 10.00, 9.98, 9.96
    assert decision.confidence == 0.85
    call = decider.last_call
    assert call["decided_by"] == "vote:model-a+model-b+model-c"
    votes = [json.loads(call["audit_extra"][f"vote.{n}"]) for n in (1, 2, 3)]
    assert [v["model"] for v in votes] == ["model-a", "model-b", "model-c"]
    assert [Decimal(v["price"]) for v in votes] == [Decimal("10"), Decimal("9.98"), Decimal("9.96")]
    assert all(v["error"] == "" and Decimal(v["cost_usd"]) > 0 for v in votes)
    assert call["cost_usd"] == sum(Decimal(v["cost_usd"]) for v in votes)
    assert "3 of 3 models agree on BUY" in call["audit_extra"]["vote.outcome"]


def test_given_one_failing_model_then_the_other_two_decide_and_its_failure_is_audited(
    market: Any,
) -> None:
    decider, _ = _voters(_by_model(failing="model-b"))
    decision = decider.decide(market.buy())
    assert decision.base_price == Decimal("9.98")  # the mean of 10.00 and 9.96
    call = decider.last_call
    failed = json.loads(call["audit_extra"]["vote.2"])
    assert (failed["action"], failed["error"]) == (None, "server_error")
    assert call["decided_by"].startswith("vote:")
    assert "ai_error" not in call


def test_given_models_that_disagree_then_the_vote_waits(market: Any) -> None:
    decider, _ = _voters(_by_model(wait_for="model-c"))
    decision = decider.decide(market.buy())
    assert (decision.action, decision.confidence) == ("WAIT", 0.0)
    assert "models disagree" in decider.last_call["audit_extra"]["vote.outcome"]


def test_given_two_failing_models_then_the_fallback_decides_and_the_votes_stay_audited(
    market: Any,
) -> None:
    def respond(request: FakeRequest) -> FakeReply:
        if request.model == "model-a":
            return valid()(request)
        return server_error(retry_after_ms=1)(request)

    decider, _ = _voters(respond)
    decision = decider.decide(market.buy())
    assert decision == OfflineStrategy().decide(market.buy()).model_copy(
        update={"reasoning": decision.reasoning}
    )
    call = decider.last_call
    assert call["decided_by"] == "fallback:offline"
    assert call["ai_error"].startswith("vote: 1 of 3 models answered, 2 needed")
    assert json.loads(call["audit_extra"]["vote.1"])["error"] == ""
    assert call["cost_usd"] > 0


class _Member:
    """A decision maker answering ``answer`` after ``delay`` seconds (or raising it)."""

    def __init__(self, model: str, answer: Decision | Exception, delay: float = 0.0) -> None:
        self.model = self.name = model
        self.answer, self.delay = answer, delay
        self._local = threading.local()

    @property
    def last_call(self) -> dict[str, Any]:
        return dict(getattr(self._local, "call", {}))

    def decide(self, request: DecisionRequest) -> Decision:
        self._local.call = {"cost_usd": Decimal("0.5"), "tokens_in": 7, "latency_ms": 3}
        time.sleep(self.delay)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _buy(price: str) -> Decision:
    return Decision(action="BUY", base_price=Decimal(price), confidence=0.9)


def test_a_model_past_the_deadline_is_counted_as_timed_out_and_does_not_hold_the_vote(
    market: Any,
) -> None:
    voters = VotingDecisionMaker(
        [_Member("a", _buy("10")), _Member("b", _buy("11"), delay=30), _Member("c", _buy("12"))],
        deadline=0.05,
    )
    started = time.monotonic()
    decision = voters.decide(market.buy())
    assert time.monotonic() - started < 10  # not the slow member's 30 s
    assert decision.base_price == Decimal("11")  # the mean of 10 and 12
    slow = json.loads(voters.last_call["audit_extra"]["vote.2"])
    assert slow["error"] == "timeout"
    assert voters.last_call["cost_usd"] == Decimal("1.0")  # what the answering two cost


def test_when_every_model_is_over_the_budget_then_the_failure_says_so(market: Any) -> None:
    spent = AiUnavailable("budget: daily AI budget of 1 USD is spent", budget_spent=True)
    voters = VotingDecisionMaker([_Member("a", spent), _Member("b", spent)], deadline=1)
    with pytest.raises(AiUnavailable) as caught:
        voters.decide(market.buy())
    assert caught.value.budget_spent
    assert "a (budget)" in str(caught.value)


def test_a_member_that_crashes_is_a_failed_vote_not_a_failed_decision(market: Any) -> None:
    voters = VotingDecisionMaker(
        [_Member("a", _buy("10")), _Member("b", RuntimeError("bug")), _Member("c", _buy("10"))],
        deadline=1,
    )
    assert voters.decide(market.buy()).base_price == Decimal("10")
    assert json.loads(voters.last_call["audit_extra"]["vote.2"])["error"] == (
        "client_error (RuntimeError)"
    )


class _SlowSignal:
    """A sentiment source that answers after ``seconds``; counts its fetches."""

    name = "slow_signal"

    def __init__(self, seconds: float) -> None:
        self.seconds, self.fetches = seconds, 0

    def fetch(self, symbol: str) -> dict[str, str]:
        self.fetches += 1
        time.sleep(self.seconds)
        return {"mood": "calm"}


def test_the_signals_are_gathered_once_before_the_models_deadlines_start(market: Any) -> None:
    signal = _SlowSignal(1.5)  # with the 0.6 s answers, past deadline + grace (2 s)
    with FakeOpenAiServer(slow(0.6, then=valid()), api_key="sk-vote-0123456789") as server:
        decider = build_ai_decider(
            "sk-vote-0123456789",
            fallback=OfflineStrategy(),
            models=parse_ai_models("model-a,model-b,model-c"),
            base_url=server.base_url,
            now_ms=lambda: 1_737_331_200_000,
            timeout=1.0,
            max_retries=0,
            context_providers=[signal],
        )
        decision = decider.decide(market.buy())
        contexts = [r.context for r in server.requests]
    assert signal.fetches == 1
    assert decider.last_call["decided_by"] == "vote:model-a+model-b+model-c"
    assert decision.action == "BUY"
    assert all(c is not None and c["signals"]["slow_signal"] == {"mood": "calm"} for c in contexts)
