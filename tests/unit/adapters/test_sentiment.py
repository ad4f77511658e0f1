"""The Fear & Greed and news sentiment providers, against a local HTTP server.

The server (127.0.0.1, a free port, one thread per request) answers each path with a
scripted reply and counts the requests; a fake clock drives the caches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from flipbot.adapters.sentiment import (
    FearGreedProvider,
    HttpSentimentProvider,
    base_asset,
    sentiment_providers,
)
from flipbot.ai.context import gather_signals
from flipbot.domain.errors import (
    ConfigurationError,
    RetryableError,
    SignalUnavailable,
    TerminalError,
)

pytestmark = pytest.mark.usefixtures("flipbot_logs_reach_caplog")

TOKEN = "tok-Xq7Lm2Pv9RsWz4"
FEAR_GREED = {
    "name": "Fear and Greed Index",
    "data": [
        {
            "value": "40",
            "value_classification": "Fear",
            "timestamp": "1551157200",
            "time_until_update": "68499",
        }
    ],
    "metadata": {"error": None},
}
NEWS = {"score": 0.35, "label": "bullish", "sources": 12}


@dataclass
class Reply:
    body: Any = None  #: bytes as they are, anything else as JSON
    status: int = 200
    delay_s: float = 0.0
    trickle_s: float = 0.0  #: the body is sent a byte at a time, this long apart
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class Feed:
    """A scripted HTTP server: ``replies[path]``, and every request it was sent."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()  # set at teardown: delayed replies stop waiting
        self._lock = threading.Lock()
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with feed._lock:
                    feed.seen.append(Seen(parts.path, parse_qs(parts.query), dict(self.headers)))
                reply = feed.replies.get(parts.path, Reply({"error": "no route"}, status=404))
                if reply.delay_s:
                    feed.release.wait(reply.delay_s)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = body.encode() if isinstance(body, str) else body
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not reply.trickle_s:
                        self.wfile.write(data)
                    for i in range(len(data) if reply.trickle_s else 0):
                        self.wfile.write(data[i : i + 1])
                        self.wfile.flush()
                        if feed.release.wait(reply.trickle_s):
                            break
                except OSError:  # the client gave up (a timeout test)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.path == path)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def feed() -> Iterator[Feed]:
    feed = Feed()
    thread = threading.Thread(
        target=feed.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield feed
    feed.release.set()
    feed.server.shutdown()
    feed.server.server_close()
    thread.join(timeout=2)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def fear_greed(feed: Feed, clock: Clock, **kwargs: Any) -> FearGreedProvider:
    return FearGreedProvider(feed.url, now_s=clock, **kwargs)


def news(feed: Feed, clock: Clock, **kwargs: Any) -> HttpSentimentProvider:
    return HttpSentimentProvider(f"{feed.url}/sentiment", now_s=clock, **kwargs)


# ---------------------------------------------------------------------- Fear & Greed


def test_fear_greed_reads_the_latest_index_and_its_label(feed: Feed, clock: Clock) -> None:
    # Given the documented answer
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    # When it is fetched
    values = fear_greed(feed, clock).fetch("TRUMPUSDC")
    # Then the index and its label come back, asked for as limit=1
    assert values == {"fear_greed_index": "40", "fear_greed_label": "Fear"}
    assert [(s.path, s.query) for s in feed.seen] == [("/fng/", {"limit": ["1"]})]
    assert feed.seen[0].headers["Accept"] == "application/json"


def test_fear_greed_is_market_wide_one_request_serves_every_symbol(
    feed: Feed, clock: Clock
) -> None:
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    provider = fear_greed(feed, clock)
    first = provider.fetch("TRUMPUSDC")
    clock.now += 299
    assert provider.fetch("BTCUSDT") == first
    assert feed.count("/fng/") == 1


def test_fear_greed_asks_again_once_its_answer_is_older_than_the_ttl(
    feed: Feed, clock: Clock
) -> None:
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    provider = fear_greed(feed, clock, ttl_s=300)
    provider.fetch("TRUMPUSDC")
    # When the index changes and the TTL passes
    feed.replies["/fng/"] = Reply(
        {"data": [{"value": 55, "value_classification": "Greed"}], "metadata": {"error": None}}
    )
    clock.now += 300
    # Then the new value is read
    assert provider.fetch("TRUMPUSDC") == {"fear_greed_index": "55", "fear_greed_label": "Greed"}
    assert feed.count("/fng/") == 2


@pytest.mark.parametrize(
    ("body", "reason", "named"),
    [
        pytest.param(b"<html>busy</html>", "not_json", "not JSON", id="html"),
        pytest.param(b"", "not_json", "not JSON", id="empty"),
        pytest.param([1, 2], "malformed", "answer is a list", id="list"),
        pytest.param({"data": [], "metadata": {"error": None}}, "malformed", "data", id="no-data"),
        pytest.param({"metadata": {"error": None}}, "malformed", "data is null", id="data-absent"),
        pytest.param(
            {"data": [{"value_classification": "Fear"}]},
            "malformed",
            "data[0].value is null",
            id="value-absent",
        ),
        pytest.param(
            {"data": [{"value": "forty", "value_classification": "Fear"}]},
            "malformed",
            'data[0].value is "forty"',
            id="value-text",
        ),
        pytest.param(
            {"data": [{"value": "140", "value_classification": "Greed"}]},
            "out_of_range",
            "data[0].value 140 is outside 0..100",
            id="value-140",
        ),
        pytest.param(
            {"data": [{"value": "40"}]},
            "malformed",
            "data[0].value_classification is null",
            id="label-absent",
        ),
        pytest.param(
            {"data": [], "metadata": {"error": "Rate limit exceeded"}},
            "api_error",
            'metadata.error is "Rate limit exceeded"',
            id="metadata-error",
        ),
        pytest.param(b"x" * 70_000, "too_large", "over 65536 bytes", id="huge"),
    ],
)
def test_a_malformed_fear_greed_answer_is_a_typed_error_naming_the_problem(
    feed: Feed, clock: Clock, body: Any, reason: str, named: str
) -> None:
    feed.replies["/fng/"] = Reply(body)
    with pytest.raises(SignalUnavailable) as caught:
        fear_greed(feed, clock).fetch("TRUMPUSDC")
    # never a state-machine error: the consultation goes on without the signal
    assert not isinstance(caught.value, (RetryableError, TerminalError))
    assert (caught.value.provider, caught.value.reason) == ("fear_greed", reason)
    assert named in str(caught.value)
    assert str(caught.value).startswith("fear_greed: ")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "http_500"), (503, "http_503"), (404, "http_404"), (429, "rate_limited")],
)
def test_an_http_error_is_a_typed_error_naming_the_status_and_host(
    feed: Feed, clock: Clock, status: int, reason: str
) -> None:
    feed.replies["/fng/"] = Reply({"error": "nope"}, status=status)
    with pytest.raises(SignalUnavailable) as caught:
        fear_greed(feed, clock).fetch("TRUMPUSDC")
    assert caught.value.reason == reason
    assert str(caught.value) == f"fear_greed: HTTP {status} from 127.0.0.1"


def test_a_slow_server_times_out_quickly_with_a_typed_error(feed: Feed, clock: Clock) -> None:
    feed.replies["/fng/"] = Reply(FEAR_GREED, delay_s=3)
    provider = fear_greed(feed, clock, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(SignalUnavailable) as caught:
        provider.fetch("TRUMPUSDC")
    assert time.monotonic() - started < 1.0
    assert caught.value.reason == "timeout"
    assert "no complete answer from 127.0.0.1 within 0.2s" in str(caught.value)


def test_a_body_trickling_in_times_out_at_the_timeout_not_per_byte(
    feed: Feed, clock: Clock
) -> None:
    # Given a server that sends a byte every 0.05 s: no single read waits 0.3 s
    feed.replies["/fng/"] = Reply(FEAR_GREED, trickle_s=0.05)
    provider = fear_greed(feed, clock, timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(SignalUnavailable) as caught:
        provider.fetch("TRUMPUSDC")
    assert time.monotonic() - started < 0.8
    assert caught.value.reason == "timeout"


def test_an_unreachable_server_is_a_connection_error(clock: Clock) -> None:
    # Given a port nothing listens on (bound, then closed)
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    with pytest.raises(SignalUnavailable) as caught:
        FearGreedProvider(f"http://127.0.0.1:{port}", now_s=clock).fetch("TRUMPUSDC")
    assert caught.value.reason == "connection"
    assert "127.0.0.1 unreachable" in str(caught.value)


# ---------------------------------------------------------------------- failures kept briefly


def test_a_failure_is_not_cached_as_an_answer_but_held_briefly(feed: Feed, clock: Clock) -> None:
    # Given a provider that fails once
    feed.replies["/fng/"] = Reply({"error": "down"}, status=503)
    provider = fear_greed(feed, clock, failure_ttl_s=30)
    with pytest.raises(SignalUnavailable):
        provider.fetch("TRUMPUSDC")
    # When it recovers, within the failure hold: the failure is repeated without a request
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    clock.now += 29
    with pytest.raises(SignalUnavailable) as caught:
        provider.fetch("TRUMPUSDC")
    assert caught.value.reason == "http_503"
    assert "(cached, next try in 1s)" in str(caught.value)
    assert feed.count("/fng/") == 1
    # Then after the hold it is asked again and its answer served
    clock.now += 1
    assert provider.fetch("TRUMPUSDC")["fear_greed_index"] == "40"
    assert feed.count("/fng/") == 2


def test_a_429_holds_the_failure_as_long_as_retry_after_asks(feed: Feed, clock: Clock) -> None:
    feed.replies["/fng/"] = Reply({}, status=429, headers={"Retry-After": "120"})
    provider = fear_greed(feed, clock, failure_ttl_s=30)
    with pytest.raises(SignalUnavailable):
        provider.fetch("TRUMPUSDC")
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    clock.now += 119
    with pytest.raises(SignalUnavailable) as caught:
        provider.fetch("TRUMPUSDC")
    assert caught.value.reason == "rate_limited"
    assert "(cached, next try in 1s)" in str(caught.value)
    assert feed.count("/fng/") == 1
    clock.now += 1
    assert provider.fetch("TRUMPUSDC")["fear_greed_label"] == "Fear"


# ---------------------------------------------------------------------- news sentiment


def test_news_sentiment_asks_for_the_base_asset_and_sends_the_token(
    feed: Feed, clock: Clock
) -> None:
    feed.replies["/sentiment"] = Reply(NEWS)
    values = news(feed, clock, token=TOKEN).fetch("TRUMPUSDC")
    assert values == {
        "news_sentiment": "0.35",
        "news_sentiment_label": "bullish",
        "news_sentiment_sources": "12",
    }
    (seen,) = feed.seen
    assert seen.query == {"symbol": ["TRUMP"]}
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"


def test_news_sentiment_keeps_the_urls_own_query_and_needs_only_a_score(
    feed: Feed, clock: Clock
) -> None:
    feed.replies["/sentiment"] = Reply({"score": "-0.12345"})
    provider = HttpSentimentProvider(f"{feed.url}/sentiment?lang=en", now_s=clock)
    assert provider.fetch("BTCUSDT") == {"news_sentiment": "-0.123"}
    (seen,) = feed.seen
    assert seen.query == {"lang": ["en"], "symbol": ["BTC"]}
    assert "Authorization" not in seen.headers


def test_news_sentiment_is_cached_per_base_asset(feed: Feed, clock: Clock) -> None:
    feed.replies["/sentiment"] = Reply(NEWS)
    provider = news(feed, clock, ttl_s=60)
    provider.fetch("TRUMPUSDC")
    provider.fetch("TRUMPUSDT")  # same asset: from the cache
    provider.fetch("BTCUSDT")
    assert [s.query["symbol"] for s in feed.seen] == [["TRUMP"], ["BTC"]]
    clock.now += 60
    provider.fetch("TRUMPUSDC")
    assert [s.query["symbol"] for s in feed.seen] == [["TRUMP"], ["BTC"], ["TRUMP"]]


@pytest.mark.parametrize(
    ("body", "reason", "named"),
    [
        pytest.param(b"{not json", "not_json", "not JSON", id="not-json"),
        pytest.param({"label": "bullish"}, "malformed", "score is missing", id="no-score"),
        pytest.param({"score": None}, "malformed", "score is null", id="score-null"),
        pytest.param({"score": "high"}, "malformed", 'score is "high"', id="score-text"),
        pytest.param({"score": True}, "malformed", "score is true", id="score-bool"),
        pytest.param(b'{"score": NaN}', "malformed", "score is NaN", id="score-nan"),
        pytest.param({"score": 1.5}, "out_of_range", "score 1.5 is outside -1..1", id="1.5"),
        pytest.param({"score": 0.1, "label": 7}, "malformed", "label is 7", id="label-number"),
        pytest.param({"score": 0.1, "label": "x" * 33}, "malformed", "label", id="label-long"),
        pytest.param({"score": 0.1, "sources": "many"}, "malformed", "sources", id="sources"),
        pytest.param({"score": 0.1, "sources": -1}, "out_of_range", "sources -1", id="neg"),
    ],
)
def test_a_malformed_news_answer_is_a_typed_error_naming_the_problem(
    feed: Feed, clock: Clock, body: Any, reason: str, named: str
) -> None:
    feed.replies["/sentiment"] = Reply(body)
    with pytest.raises(SignalUnavailable) as caught:
        news(feed, clock).fetch("TRUMPUSDC")
    assert (caught.value.provider, caught.value.reason) == ("news", reason)
    assert named in str(caught.value)


def test_a_redirect_is_not_followed_so_the_token_stays_with_its_host(
    feed: Feed, clock: Clock
) -> None:
    feed.replies["/sentiment"] = Reply({}, status=302, headers={"Location": "/elsewhere"})
    feed.replies["/elsewhere"] = Reply(NEWS)
    with pytest.raises(SignalUnavailable) as caught:
        news(feed, clock, token=TOKEN).fetch("TRUMPUSDC")
    assert caught.value.reason == "http_302"
    assert feed.count("/elsewhere") == 0


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply({"error": f"bad token {TOKEN}"}, status=401), id="401"),
        pytest.param(Reply({"score": f"Bearer {TOKEN}"}), id="echoed-in-a-field"),
        pytest.param(Reply(NEWS, delay_s=3), id="timeout"),
    ],
)
def test_the_token_is_never_in_an_error_message_nor_a_log(
    feed: Feed, clock: Clock, reply: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    feed.replies["/sentiment"] = reply
    provider = news(feed, clock, token=TOKEN, timeout_s=0.2)
    caplog.set_level(logging.DEBUG)
    errors = []
    for _ in range(2):  # fresh, then cached
        with pytest.raises(SignalUnavailable) as caught:
            provider.fetch("TRUMPUSDC")
        errors.append(caught.value)
    assert feed.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert caplog.records, "a fresh failure is logged"
    assert all(TOKEN not in f"{e} {e.detail} {e!r}" for e in errors)
    tracebacks = "".join("".join(traceback.format_exception(e)) for e in errors)
    assert TOKEN not in tracebacks
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(provider)


# ---------------------------------------------------------------------- with gather_signals


def test_gather_signals_leaves_out_a_slow_and_a_failing_provider(
    feed: Feed, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    # Given Fear & Greed answering, news hanging and a second news source failing
    feed.replies["/fng/"] = Reply(FEAR_GREED)
    feed.replies["/sentiment"] = Reply(NEWS, delay_s=3)
    feed.replies["/social"] = Reply({"error": "down"}, status=500)
    providers = [
        fear_greed(feed, clock),
        news(feed, clock, timeout_s=2.0),
        HttpSentimentProvider(f"{feed.url}/social", name="social", now_s=clock),
    ]
    # When the signals are gathered under a short limit
    started = time.monotonic()
    signals = gather_signals(providers, "TRUMPUSDC", timeout=0.5)
    # Then only Fear & Greed's values arrive, at the limit at most
    assert time.monotonic() - started < 1.0
    assert signals == {"fear_greed": {"fear_greed_index": "40", "fear_greed_label": "Fear"}}
    assert "context provider social failed: SignalUnavailable" in caplog.text
    assert "context provider news gave no answer" in caplog.text


# ---------------------------------------------------------------------- factory and names


def test_the_factory_makes_only_the_configured_providers() -> None:
    assert sentiment_providers("", "") == []
    assert sentiment_providers("  ", "") == []
    (only,) = sentiment_providers("https://api.alternative.me", "")
    assert isinstance(only, FearGreedProvider)
    assert only.url == "https://api.alternative.me/fng/?limit=1"
    both = sentiment_providers(
        "https://api.alternative.me/", "https://news.example/v1/sentiment", TOKEN, timeout_s=1.5
    )
    assert [p.name for p in both] == ["fear_greed", "news"]
    assert isinstance(both[1], HttpSentimentProvider)
    assert both[1].timeout_s == 1.5


@pytest.mark.parametrize(
    ("fear_greed_url", "news_url", "token"),
    [
        ("ftp://api.alternative.me", "", ""),
        ("", "news.example/sentiment?key=k-123456", ""),
        ("", "file:///etc/passwd", ""),
        ("", "https://news.example/s", f"{TOKEN}\r\nX-Evil: 1"),
    ],
)
def test_the_factory_refuses_a_bad_url_or_token_without_repeating_it(
    fear_greed_url: str, news_url: str, token: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        sentiment_providers(fear_greed_url, news_url, token)
    assert "k-123456" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_negative_ttl_or_a_zero_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="timeout_s=0"):
        FearGreedProvider(timeout_s=0)
    with pytest.raises(ConfigurationError, match="ttl_s=-1"):
        HttpSentimentProvider("https://news.example/s", ttl_s=-1)


@pytest.mark.parametrize(
    ("symbol", "asset"),
    [
        ("TRUMPUSDC", "TRUMP"),
        ("BTCUSDT", "BTC"),
        ("ETHBTC", "ETH"),
        ("BTCFDUSD", "BTC"),
        ("USDCUSDT", "USDC"),
        ("trumpusdc", "TRUMP"),
        ("USDC", "USDC"),
        ("XYZ", "XYZ"),
    ],
)
def test_the_base_asset_is_the_symbol_without_its_quote(symbol: str, asset: str) -> None:
    assert base_asset(symbol) == asset
