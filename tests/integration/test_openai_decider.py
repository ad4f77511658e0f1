"""The real ``openai`` client over HTTP against the local fake endpoint, and the wiring.

The fake server listens on loopback; the client is built exactly as in production
(:func:`openai_client`), only ``base_url`` points at the server. The composition tests
read the OpenAI key from a moto Secrets Manager secret, as the deployed function does.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

import flipbot_dev.fake_openai as fs
from flipbot.adapters.openai_decider import OpenAiDecisionMaker, decider_from_env, openai_client
from flipbot.ai.fallback import FallbackDecisionMaker
from flipbot.ai.voting import VotingDecisionMaker
from flipbot.composition import Container
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.errors import AiUnavailable, ConfigurationError, GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import RiskLimits, check_buy, check_sell
from flipbot.domain.model import BookTop, MarketSnapshot, OrderRequest, Side
from flipbot.domain.strategy import OfflineStrategy
from flipbot.settings import Settings
from flipbot_dev.commands.replay import decider_name

KEY = "sk-proj-LocalTestKey0123456789"
BOOK = BookTop(Decimal("10.00"), Decimal("50"), Decimal("10.02"), Decimal("40"))
ENTRY, FLOOR, HELD = Decimal("10.00"), Decimal("10.12"), Decimal("0.99")
LIMITS = RiskLimits()
RULES = SymbolRules(
    symbol="TRUMPUSDC",
    base_asset="TRUMP",
    quote_asset="USDC",
    tick_size=Decimal("0.01"),
    min_price=Decimal("0.01"),
    max_price=Decimal("100000"),
    step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
    max_qty=Decimal("900000"),
    min_notional=Decimal("5"),
    max_notional=Decimal("9000000"),
)


def _request(leg: Side) -> DecisionRequest:
    snapshot = MarketSnapshot(
        symbol="TRUMPUSDC",
        time_ms=1_737_331_200_000,
        last_price=Decimal("10.01"),
        book=BOOK,
        ma5=Decimal("10.02"),
        ma7=Decimal("10.01"),
        ma7_trend="FLAT",
        ma20=Decimal("10.00"),
        vwap=Decimal("10.00"),
        volatility=Decimal("0.002"),
        imbalance=Decimal("0.05"),
        buy_sell_ratio=Decimal("1.0"),
    )
    sell = leg is Side.SELL
    return DecisionRequest(
        leg=leg,
        symbol="TRUMPUSDC",
        snapshot=snapshot,
        quote_per_cycle=Decimal("10"),
        min_confidence=0.8,
        min_profit=Decimal("0.01"),
        target_profit=Decimal("0.05"),
        fee_rate_round_trip=Decimal("0.002"),
        entry_price=ENTRY if sell else None,
        floor_price=FLOOR if sell else None,
        quantity=HELD if sell else None,
    )


def _place(decision: Decision, leg: Side) -> tuple[str, OrderRequest | None]:
    """The consult's verdict and the order it would place (a rejected sell: the floor)."""
    if leg is Side.BUY:
        if decision.action != "BUY":
            return "WAIT", None
        try:
            return "PLACE", check_buy(
                decision,
                BOOK,
                RULES,
                LIMITS,
                Decimal("100"),
                symbol="TRUMPUSDC",
                client_order_id="fb-c000001-B1",
            )
        except GuardRejected as rejected:
            return f"REJECTED:{rejected.guard}", None
    try:
        return "PLACE", check_sell(
            decision,
            BOOK,
            RULES,
            LIMITS,
            HELD,
            FLOOR,
            symbol="TRUMPUSDC",
            client_order_id="fb-c000001-S1",
        )
    except GuardRejected as rejected:
        safe = Decision(action="SELL", base_price=FLOOR, confidence=1.0)
        return f"REJECTED:{rejected.guard}", check_sell(
            safe,
            BOOK,
            RULES,
            LIMITS,
            HELD,
            FLOOR,
            symbol="TRUMPUSDC",
            client_order_id="fb-c000001-S1",
        )


@pytest.fixture(autouse=True)
def _flipbot_logs(flipbot_logs_reach_caplog: None) -> None:
    """Every test here reads the ``flipbot`` loggers' records through ``caplog``."""


@pytest.fixture
def server() -> Iterator[fs.FakeOpenAiServer]:
    with fs.FakeOpenAiServer(api_key=KEY, lifetime=60) as running:
        yield running


def _decider(
    server: fs.FakeOpenAiServer, script: fs.Responder, *, timeout: float = 2.0, max_retries: int = 2
) -> FallbackDecisionMaker:
    server.script = script
    client = openai_client(KEY, base_url=server.base_url)
    primary = OpenAiDecisionMaker(client, "gpt-4o-mini", timeout=timeout, max_retries=max_retries)
    return FallbackDecisionMaker(primary, OfflineStrategy())


CASES = [
    # case, leg, script, decided_by, ai_error prefix, verdict
    ("valid", Side.BUY, fs.valid(), "ai:gpt-4o-mini", None, "PLACE"),
    ("refusal", Side.BUY, fs.refusal(), "fallback:offline", "refusal", None),
    ("truncated", Side.BUY, fs.truncated(), "fallback:offline", "truncated", None),
    ("invalid_json", Side.BUY, fs.invalid_json(), "fallback:offline", "invalid_answer", None),
    ("429_then_success", Side.BUY, fs.sequence(fs.rate_limited()), "ai:gpt-4o-mini", None, "PLACE"),
    ("500", Side.BUY, fs.server_error(), "fallback:offline", "server_error", None),
    ("timeout", Side.BUY, fs.slow(3.0), "fallback:offline", "timeout", None),
    ("absurd_price", Side.BUY, fs.absurd(), "ai:gpt-4o-mini", None, "REJECTED:spread"),
    (
        "sell_below_floor",
        Side.SELL,
        fs.sell_below_floor(),
        "ai:gpt-4o-mini",
        None,
        "REJECTED:profit_floor",
    ),
    (
        "confidence_0.79",
        Side.BUY,
        fs.low_confidence(),
        "ai:gpt-4o-mini",
        None,
        "REJECTED:confidence",
    ),
]


@pytest.mark.parametrize(
    ("case", "leg", "script", "decided_by", "error", "verdict"), CASES, ids=[c[0] for c in CASES]
)
def test_given_the_endpoint_behaviour_then_the_documented_outcome_over_http(
    server: fs.FakeOpenAiServer,
    case: str,
    leg: Side,
    script: fs.Responder,
    decided_by: str,
    error: str | None,
    verdict: str | None,
) -> None:
    # A 500 gets one retry (the policy at work); a timeout none (its wait is the cost).
    retries = {"500": 1, "timeout": 0}.get(case, 2)
    decider = _decider(
        server, script, timeout=0.2 if case == "timeout" else 2.0, max_retries=retries
    )
    decision = decider.decide(_request(leg))  # never raises: the fallback answers
    call = decider.last_call
    assert call["decided_by"] == decided_by
    outcome, order = _place(decision, leg)
    if error is None:
        assert "ai_error" not in call
        assert outcome == verdict
    else:
        assert call["ai_error"].startswith(error)
        assert decision.reasoning.startswith("AI unavailable")
    if case in ("500", "timeout"):
        assert server.request_count == 1 + retries
    if case == "429_then_success":
        assert server.request_count == 2
        assert call["retries"] == 1
    if order is not None:  # whatever was answered, what would be placed respects the guards
        if order.side is Side.BUY:
            assert BOOK.bid * (1 - LIMITS.price_band) <= order.price < BOOK.ask
            assert order.price * order.quantity <= LIMITS.quote_per_cycle
        else:
            assert order.price >= FLOOR


def test_given_an_endpoint_that_trickles_its_answer_then_the_fallback_decides_at_the_deadline(
    server: fs.FakeOpenAiServer,
) -> None:
    # Given an endpoint that sends its answer a few bytes at a time over 20 s: each read
    # comes well within the 1 s timeout, the whole answer does not, with two retries left
    decider = _decider(server, fs.drip(20.0), timeout=1.0, max_retries=2)
    started = time.monotonic()
    # When the buy leg is consulted
    decision = decider.decide(_request(Side.BUY))
    elapsed = time.monotonic() - started
    # Then the call ends at its total deadline (1 s per attempt, 3 attempts), well before
    # the answer would have arrived, and the offline strategy decides
    assert elapsed < 10
    call = decider.last_call
    assert call["decided_by"] == "fallback:offline"
    assert call["ai_error"].startswith("timeout")
    assert "deadline" in call["ai_error"]
    assert decision.reasoning.startswith("AI unavailable")


def test_the_server_answers_in_openais_wire_format(server: fs.FakeOpenAiServer) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(
        server.base_url + "/chat/completions",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        completion = json.loads(response.read())
    assert completion["object"] == "chat.completion"
    assert set(completion) >= {"id", "object", "created", "model", "choices", "usage"}
    choice = completion["choices"][0]
    assert set(choice) >= {"index", "message", "finish_reason"}
    assert set(choice["message"]) >= {"role", "content", "refusal"}
    usage = completion["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_server_checks_the_key_and_the_path(server: fs.FakeOpenAiServer) -> None:
    wrong = OpenAiDecisionMaker(openai_client("sk-wrong", base_url=server.base_url), max_retries=0)
    with pytest.raises(AiUnavailable, match="HTTP 401 invalid_api_key"):
        wrong.decide(_request(Side.BUY))
    request = urllib.request.Request(server.base_url + "/embeddings", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 404
    assert json.loads(raised.value.read())["error"]["code"] == "unknown_url"


def test_the_server_is_bounded_and_stops_itself() -> None:
    with fs.FakeOpenAiServer(max_requests=1, lifetime=0.3) as bounded:
        decider = OpenAiDecisionMaker(
            openai_client("sk-x", base_url=bounded.base_url), max_retries=0
        )
        decider.decide(_request(Side.BUY))
        with pytest.raises(AiUnavailable, match="HTTP 503"):
            decider.decide(_request(Side.BUY))
        deadline = time.monotonic() + 3
        while bounded.running and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not bounded.running


def test_stopping_drops_a_slow_answer_at_once() -> None:
    server = fs.FakeOpenAiServer(fs.slow(30)).start()
    decider = OpenAiDecisionMaker(
        openai_client("sk-x", base_url=server.base_url), timeout=0.2, max_retries=0
    )
    with pytest.raises(AiUnavailable, match="timeout"):
        decider.decide(_request(Side.BUY))
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


# ---------------------------------------------------------------- wiring


def _env(**extra: str) -> dict[str, str]:
    return {
        "SYMBOL": "TRUMPUSDC",
        "CYCLES_TABLE": "c",
        "ORDERS_TABLE": "o",
        "FILLS_TABLE": "f",
        "TRADES_TABLE": "t",
        "CONSULTATIONS_TABLE": "cs",
        "MARKET_TABLE": "m",
        **extra,
    }


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def test_without_a_secret_the_offline_strategy_decides_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    decider = Container(_env()).decider
    assert isinstance(decider, OfflineStrategy)
    assert "AI off: OPENAI_SECRET_ARN is not set" in caplog.text


@pytest.mark.parametrize(
    "secret",
    [{"api_key": "FILL_ME"}, {}, {"api_key": "  "}],
    ids=["placeholder", "no_key", "blank"],
)
def test_with_no_usable_key_the_offline_strategy_decides_and_says_so(
    secrets: Any, caplog: pytest.LogCaptureFixture, secret: dict[str, str]
) -> None:
    arn = secrets.create_secret(
        Name=f"flipbot/openai-{len(caplog.records)}-{id(secret)}", SecretString=json.dumps(secret)
    )["ARN"]
    decider = Container(_env(OPENAI_SECRET_ARN=arn)).decider
    assert isinstance(decider, OfflineStrategy)
    assert "AI off" in caplog.text
    assert "offline strategy decides" in caplog.text


def test_with_a_key_the_ai_decides_behind_the_fallback(
    secrets: Any, server: fs.FakeOpenAiServer, caplog: pytest.LogCaptureFixture
) -> None:
    arn = secrets.create_secret(
        Name="flipbot/openai-real", SecretString=json.dumps({"api_key": KEY})
    )["ARN"]
    caplog.set_level(logging.DEBUG)
    env = _env(
        OPENAI_SECRET_ARN=arn,
        OPENAI_BASE_URL=server.base_url,
        AI_MODEL="gpt-4.1-mini",
        AI_DAILY_BUDGET_USD="0.5",
        AI_FALLBACK="wait",
    )
    decider = Container(env).decider
    assert isinstance(decider, FallbackDecisionMaker)
    assert isinstance(decider.primary, OpenAiDecisionMaker)
    assert decider.mode == "wait"
    assert decider.primary.budget is not None
    assert decider.primary.budget.limit_usd == Decimal("0.5")
    assert decider.decide(_request(Side.BUY)).action == "BUY"
    assert decider.last_call["decided_by"] == "ai:gpt-4.1-mini"
    assert server.requests[0].model == "gpt-4.1-mini"
    ours = [
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] in ("flipbot", "openai", "httpx2", "httpcore2")
    ]
    assert ours
    assert not [m for m in ours if KEY in m]


def test_with_ai_models_the_models_vote_each_endpoint_with_its_own_key(
    secrets: Any, caplog: pytest.LogCaptureFixture
) -> None:
    other_key = "sk-second-endpoint-9876543210"
    with (
        fs.FakeOpenAiServer(api_key=KEY, lifetime=60) as first,
        fs.FakeOpenAiServer(api_key=other_key, lifetime=60) as second,
    ):
        host = second.base_url.split("/")[2]  # 127.0.0.1:<port>
        arn = secrets.create_secret(
            Name="flipbot/openai-vote",
            SecretString=json.dumps({"api_key": KEY, f"api_key@{host}": other_key}),
        )["ARN"]
        env = _env(
            OPENAI_SECRET_ARN=arn,
            OPENAI_BASE_URL=first.base_url,
            AI_MODELS=f"model-a,model-b@{second.base_url}",
        )
        decider = Container(env).decider
        assert isinstance(decider, FallbackDecisionMaker)
        assert isinstance(decider.primary, VotingDecisionMaker)
        assert decider.decide(_request(Side.BUY)).action == "BUY"
        assert [r.model for r in first.requests] == ["model-a"]
        assert [r.model for r in second.requests] == ["model-b"]
    call = decider.last_call
    assert call["decided_by"] == "vote:model-a+model-b"
    assert "2 of 2 models agree on BUY" in call["audit_extra"]["vote.outcome"]
    assert other_key not in caplog.text
    assert KEY not in caplog.text


class _SentimentSource:
    """Fear & Greed at ``/fng/`` and a news sentiment at ``/news`` on loopback; it keeps
    each request's path, query and headers."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                source.seen.append((self.path, dict(self.headers)))
                body = (
                    {"data": [{"value": "22", "value_classification": "Extreme Fear"}]}
                    if self.path.startswith("/fng/")
                    else {"score": -0.4, "label": "bearish"}
                )
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sentiment() -> Iterator[_SentimentSource]:
    source = _SentimentSource()
    yield source
    source.close()


def test_configured_sentiment_reaches_the_prompt_and_the_token_stays_out_of_logs(
    secrets: Any,
    server: fs.FakeOpenAiServer,
    sentiment: _SentimentSource,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given Fear & Greed and a news source configured, the news token in the OpenAI secret
    token = "news-tok-9Qm2Lx7Pv"
    arn = secrets.create_secret(
        Name="flipbot/openai-sentiment",
        SecretString=json.dumps({"api_key": KEY, "news_token": token}),
    )["ARN"]
    caplog.set_level(logging.DEBUG)
    env = _env(
        OPENAI_SECRET_ARN=arn,
        OPENAI_BASE_URL=server.base_url,
        FEAR_GREED_URL=sentiment.url,
        NEWS_SENTIMENT_URL=f"{sentiment.url}/news",
    )
    # When the AI decides a buy
    assert Container(env).decider.decide(_request(Side.BUY)).action == "BUY"
    # Then both signals are in the prompt the model read
    context = server.requests[0].context
    assert context is not None
    assert context["signals"] == {
        "fear_greed": {"fear_greed_index": "22", "fear_greed_label": "Extreme Fear"},
        "news": {"news_sentiment": "-0.4", "news_sentiment_label": "bearish"},
    }
    # And the news source was asked for the base asset with the token, which no log shows
    news = [headers for path, headers in sentiment.seen if path.startswith("/news")]
    assert [h["Authorization"] for h in news] == [f"Bearer {token}"]
    assert ("/news?symbol=TRUMP", news[0]) in sentiment.seen
    ours = [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("flipbot", "openai")]
    assert ours
    assert not [m for m in ours if token in m]


def test_without_sentiment_urls_the_prompt_carries_no_outside_signal(
    secrets: Any, server: fs.FakeOpenAiServer
) -> None:
    arn = secrets.create_secret(
        Name="flipbot/openai-plain", SecretString=json.dumps({"api_key": KEY})
    )["ARN"]
    env = _env(OPENAI_SECRET_ARN=arn, OPENAI_BASE_URL=server.base_url)
    assert Container(env).decider.decide(_request(Side.BUY)).action == "BUY"
    context = server.requests[0].context
    assert context is not None
    assert "signals" not in context


@pytest.mark.parametrize("name", ["FEAR_GREED_URL", "NEWS_SENTIMENT_URL"])
@pytest.mark.parametrize("value", ["alternative.me", "ftp://host/x?key=sk-hidden", "https://"])
def test_a_bad_sentiment_url_fails_at_cold_start_naming_the_variable_not_the_url(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name) as caught:
        Settings.from_env(_env(**{name: value}))
    assert value not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AI_DAILY_BUDGET_USD", "lots"),
        ("AI_DAILY_BUDGET_USD", "-1"),
        ("AI_FALLBACK", "panic"),
        ("AI_PRICE_TABLE", '{"gpt-4o-mini": 1}'),
    ],
)
def test_bad_ai_settings_fail_at_cold_start_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env(_env(**{name: value}))


def test_the_ai_settings_have_cheap_safe_defaults() -> None:
    settings = Settings.from_env(_env())
    assert settings.ai_model == "gpt-4o-mini"
    assert settings.ai_daily_budget_usd == Decimal("1")
    assert settings.ai_fallback == "fallback"


def test_the_twin_without_a_key_runs_offline_and_says_so(
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offline = OfflineStrategy()
    assert decider_from_env({}, fallback=offline, now_ms=lambda: 0) is offline
    assert "AI off: OPENAI_API_KEY is not set" in caplog.text
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = argparse.Namespace(ai="openai", strategy="offline")
    assert decider_name(args) == "offline"
    assert "OPENAI_API_KEY is not set; the offline strategy decides" in capsys.readouterr().out
    assert decider_name(argparse.Namespace(ai=None, strategy="fixed")) == "fixed"
    assert decider_name(argparse.Namespace(ai="fixed", strategy="offline")) == "fixed"
