"""Fault profiles and the one function that applies a fault, whatever the transport."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
import requests

from flipbot_dev.paper import BinanceRestApp, PaperExchange, make_client
from flipbot_dev.paper.faults import (
    PROFILES,
    Answer,
    Fault,
    FaultInjector,
    FaultKind,
    Lost,
    profile,
    serve,
)
from flipbot_dev.paper.transport import InProcessAdapter

ORDER = "/api/v3/order"
SIGNED = {"symbol": "TRUMPUSDC", "timestamp": "1", "signature": "x"}
REQUESTS = [
    ("POST", ORDER, SIGNED),
    ("DELETE", ORDER, SIGNED),
    ("GET", ORDER, SIGNED),
    ("GET", "/api/v3/ping", {}),
]


def decisions(injector: FaultInjector, n: int) -> list[Fault | None]:
    return [injector(*REQUESTS[i % len(REQUESTS)]) for i in range(n)]


def kinds(faults: list[Fault | None]) -> Counter[FaultKind | None]:
    return Counter(f.kind if f else None for f in faults)


def test_profiles_are_named_and_documented() -> None:
    assert list(PROFILES) == ["none", "flaky", "drop-after-accept", "slow", "rate-limit", "skew"]
    assert all(p.summary for p in PROFILES.values())
    assert profile("slow") is PROFILES["slow"]
    with pytest.raises(ValueError, match="choose one of none, flaky"):
        profile("sometimes")


@pytest.mark.parametrize("name", list(PROFILES))
def test_the_same_seed_makes_the_same_decisions(name: str, clock: Any) -> None:
    first = decisions(profile(name).injector(5, clock), 400)
    assert first == decisions(profile(name).injector(5, clock), 400)
    if name not in ("none", "rate-limit"):  # rate-limit decisions depend on time too
        assert first != decisions(profile(name).injector(6, clock), 400)


def test_none_never_injects(clock: Any) -> None:
    assert set(decisions(profile("none").injector(1, clock), 400)) == {None}


def test_flaky_answers_5xx_and_unknown_order_timeouts() -> None:
    faults = decisions(profile("flaky").injector(1), 4000)
    counted = kinds(faults)
    assert 150 < counted[FaultKind.HTTP_5XX] < 250  # 5 % of 4000
    timeouts = [f for f in faults if f and f.kind is FaultKind.BINANCE_ERROR]
    assert {(f.code, f.status) for f in timeouts} == {(-1007, 503)}
    assert 20 < len(timeouts) < 80  # 5 % of the 1000 placements (less those 5XX)
    assert {f.processed for f in timeouts} == {True, False}


def test_drop_after_accept_hits_order_placements_and_cancels_only() -> None:
    injector = profile("drop-after-accept").injector(2)
    hit: Counter[str] = Counter()
    for i in range(4000):
        method, path, params = REQUESTS[i % len(REQUESTS)]
        fault = injector(method, path, params)
        if fault is not None:
            assert fault == Fault.drop_response()
            hit[method + path] += 1
    assert set(hit) == {"POST" + ORDER, "DELETE" + ORDER}
    assert 250 < hit["POST" + ORDER] < 350  # 30 % of 1000


def test_slow_delays_within_its_range() -> None:
    faults = [f for f in decisions(profile("slow").injector(3), 2000) if f]
    assert 500 < len(faults) < 700
    assert all(f.kind is FaultKind.SLOW and 0.05 <= f.delay_s <= 0.25 for f in faults)


def test_skew_fails_signed_requests_both_ways() -> None:
    injector = profile("skew").injector(4)
    faults = [injector("GET", "/api/v3/ping", {}) for _ in range(200)]
    assert set(faults) == {None}
    skews = {f.skew_ms for f in decisions(injector, 2000) if f}
    assert skews == {61_000, -61_000}


def test_rate_limit_then_ban_for_a_client_that_does_not_back_off(clock: Any) -> None:
    always = dataclasses.replace(profile("rate-limit"), rate_limit=1.0, retry_after_s=2)
    injector = always.injector(0, clock)
    ping = ("GET", "/api/v3/ping", {})
    assert injector(*ping) == Fault.rate_limited(2)
    clock.advance(1_500)
    assert injector(*ping) == Fault.rate_limited(1)  # still limited: 0.5 s left, rounded up
    assert injector(*ping) == Fault.rate_limited(1)
    assert injector(*ping) == Fault.banned(10)  # the 3rd request sent while limited
    clock.advance(9_001)
    assert injector(*ping) == Fault.banned(1)
    clock.advance(999)
    assert injector(*ping) == Fault.rate_limited(2)  # the ban is over; a new limit starts

    polite = always.injector(0, clock)
    for _ in range(5):  # honouring Retry-After never leads to a ban
        assert polite(*ping) == Fault.rate_limited(2)
        clock.advance(2_000)


def test_rate_limit_needs_a_clock() -> None:
    with pytest.raises(ValueError, match="needs a clock"):
        profile("rate-limit").injector(0)("GET", "/api/v3/ping", {})


def test_a_test_hook_wins_without_shifting_the_profiles_draws(clock: Any) -> None:
    plain = decisions(profile("flaky").injector(9, clock), 50)
    hooked = profile("flaky").injector(
        9, clock, hook=lambda m, p, _: Fault.connection_error() if p == "/api/v3/ping" else None
    )
    mixed = decisions(hooked, 50)
    for i, (a, b) in enumerate(zip(plain, mixed, strict=True)):
        expected = Fault.connection_error() if REQUESTS[i % 4][1] == "/api/v3/ping" else a
        assert b == expected
    assert hooked.injected[FaultKind.CONNECTION_ERROR] == 12


# --- serve: what each fault does to a request ------------------------------------------------
def place(app: BinanceRestApp, fault: Fault | None) -> Answer | Lost:
    params = {
        "symbol": "TRUMPUSDC",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "1",
        "price": "9.99",
    }
    return serve(app, "POST", ORDER, params, {}, payload=None, fault=fault)


@pytest.fixture
def open_app(exchange: PaperExchange) -> BinanceRestApp:
    """An app without authentication trouble: placements go through ``handle`` unsigned."""
    app = BinanceRestApp(exchange)
    app._routes[("POST", "order")] = dataclasses.replace(
        app._routes[("POST", "order")], signed=False
    )
    return app


@pytest.mark.parametrize(
    ("fault", "outcome", "placed"),
    [
        (None, 200, 1),
        (Fault.drop_response(), Lost(processed=True), 1),
        (Fault.connection_error(), Lost(processed=False), 0),
        (Fault.http_5xx(), 503, 0),
        (Fault.rate_limited(3), 429, 0),
        (Fault.banned(9), 418, 0),
        (Fault.slow(0.2), 200, 1),
        (Fault.binance_error(-1007, "Timeout", 503, processed=True), 503, 1),
        (Fault.binance_error(-1001, "Internal error", 500), 500, 0),
    ],
)
def test_serve_applies_each_fault(
    open_app: BinanceRestApp,
    exchange: PaperExchange,
    fault: Fault | None,
    outcome: Any,
    placed: int,
) -> None:
    result = place(open_app, fault)
    if isinstance(outcome, Lost):
        assert result == outcome
    else:
        assert isinstance(result, Answer)
        assert result.status == outcome
        assert result.delay_s == (fault.delay_s if fault else 0.0)
    assert len(exchange.open_orders()) == placed


def test_serve_shifts_the_clock_for_a_skewed_signed_request(app: BinanceRestApp) -> None:
    client_ms = app.clock()
    params = {"timestamp": str(client_ms), "signature": "0" * 64}
    result = serve(
        app,
        "GET",
        "/api/v3/account",
        params,
        {"X-MBX-APIKEY": "PaperKey01"},
        payload=None,
        fault=Fault.timestamp_skew(-61_000),
    )
    assert isinstance(result, Answer)
    assert json.loads(result.body)["code"] == -1022  # the signature is checked first
    skewed = serve(
        app, "GET", "/api/v3/time", {}, {}, payload=None, fault=Fault.timestamp_skew(-61_000)
    )
    assert isinstance(skewed, Answer)
    assert json.loads(skewed.body) == {"serverTime": client_ms}  # only the check is skewed


# --- the in-process transport ---------------------------------------------------------------
def test_in_process_slow_answers_sleep_or_time_out(
    app: BinanceRestApp, exchange: PaperExchange
) -> None:
    slept: list[float] = []
    adapter = InProcessAdapter(app, lambda *_: Fault.slow(0.3), sleep=slept.append)
    session = requests.Session()
    session.mount("https://", adapter)
    url = "https://api.binance.com/api/v3/ping"
    assert session.get(url, timeout=1).json() == {}
    assert slept == [0.3]
    with pytest.raises(requests.exceptions.ReadTimeout):
        session.get(url, timeout=(1, 0.3))
    assert slept == [0.3]

    client = make_client(
        app,
        "PaperKey01",
        "paper-secret-01",
        faults=lambda m, *_: Fault.slow(20) if m == "POST" else None,
    )
    with pytest.raises(requests.exceptions.ReadTimeout):  # python-binance waits 10 s at most
        client.order_limit_buy(symbol="TRUMPUSDC", quantity="1", price="9.99")
    assert len(exchange.open_orders()) == 1  # processed: the outcome is unknown
