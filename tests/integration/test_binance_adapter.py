"""BinanceExchange driving the real python-binance Client against the paper exchange.

Nothing leaves the process: the client's session is served by the paper REST app, and
sockets are blocked for the whole module.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.domain.errors import (
    ClockSkew,
    ConfigurationError,
    DuplicateOrder,
    ExchangeUnavailable,
    FilterViolation,
    FlipbotError,
    InsufficientBalance,
    IpBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RestrictedLocation,
    SymbolNotTrading,
    TerminalError,
    UnknownOrderOutcome,
)
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import Balance, BookTop, OrderRequest, OrderStatus, Side
from flipbot_dev.paper import BinanceRestApp, Fault, PaperExchange, default_symbol_info, make_client

D = Decimal
T0 = 1_700_000_000_000
SYMBOL = "TRUMPUSDC"
API_KEY = "PaperKeyXyZ0123456789"
API_SECRET = "s3cr3t-PAPER-secret-0123456789"


class FaultPlan:
    """A fault hook: ``once(fault, method, path)`` arms one fault for the next match."""

    def __init__(self) -> None:
        self.pending: list[tuple[Fault, str | None, str | None]] = []

    def once(self, fault: Fault, method: str | None = None, path: str | None = None) -> None:
        self.pending.append((fault, method, path))

    def __call__(self, method: str, path: str, _params: Mapping[str, str]) -> Fault | None:
        for i, (fault, want_method, want_path) in enumerate(self.pending):
            if (want_method in (None, method)) and (want_path in (None, path)):
                del self.pending[i]
                return fault
        return None


class Env:
    def __init__(self) -> None:
        self.now = T0
        self.exchange = PaperExchange(
            [SYMBOL],
            clock=lambda: self.now,
            balances={"USDC": D("100"), "TRUMP": D("5")},
        )
        self.exchange.on_book(T0, "10.00", "5", "10.01", "5")
        self.app = BinanceRestApp(self.exchange, api_key=API_KEY, api_secret=API_SECRET)
        self.faults = FaultPlan()
        self.adapter = BinanceExchange(
            make_client(self.app, API_KEY, API_SECRET, faults=self.faults)
        )


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def env() -> Env:
    return Env()


def request(
    cid: str = "fb-c000001-B1", side: Side = Side.BUY, qty: str = "1.000", price: str = "9.99"
) -> OrderRequest:
    return OrderRequest(SYMBOL, side, D(price), D(qty), cid)


# --- happy paths ---------------------------------------------------------------------------
def test_place_query_list_and_cancel(env: Env) -> None:
    placed = env.adapter.place_limit(request())
    assert (placed.status, placed.client_order_id, placed.order_id) == (
        OrderStatus.NEW,
        "fb-c000001-B1",
        1,
    )
    assert (placed.price, placed.orig_qty, placed.executed_qty) == (D("9.99"), D("1"), D(0))
    assert placed.time_ms == T0

    assert env.adapter.get_order(SYMBOL, "fb-c000001-B1") == placed
    assert env.adapter.open_orders(SYMBOL) == [placed]

    env.now += 1000
    canceled = env.adapter.cancel_order(SYMBOL, "fb-c000001-B1")
    assert (canceled.status, canceled.client_order_id, canceled.time_ms) == (
        OrderStatus.CANCELED,
        "fb-c000001-B1",
        T0 + 1000,
    )
    found = env.adapter.get_order(SYMBOL, "fb-c000001-B1")
    assert found is not None
    assert found.status is OrderStatus.CANCELED
    assert env.adapter.open_orders(SYMBOL) == []
    assert env.adapter.get_order(SYMBOL, "fb-unknown") is None
    with pytest.raises(OrderNotFound):
        env.adapter.cancel_order(SYMBOL, "fb-c000001-B1")


def test_an_order_the_exchange_expired_says_why_others_name_no_reason(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    expiring = env.adapter.place_limit(request())
    live = env.adapter.place_limit(request("fb-c000002-B1"))
    env.exchange.expire_order(SYMBOL, expiring.order_id, "INSUFFICIENT_LIQUIDITY")

    expired = env.adapter.get_order(SYMBOL, "fb-c000001-B1")
    assert expired is not None
    assert (expired.status, expired.expiry_reason) == (
        OrderStatus.EXPIRED,
        "INSUFFICIENT_LIQUIDITY",
    )
    assert live.expiry_reason == ""  # no expiryReason in the response
    # Binance's "NONE" names no reason either
    view = env.exchange.get_order
    monkeypatch.setattr(
        env.exchange, "get_order", lambda *a, **k: {**view(*a, **k), "expiryReason": "NONE"}
    )
    read = env.adapter.get_order(SYMBOL, "fb-c000002-B1")
    assert read is not None
    assert (read.status, read.expiry_reason) == (OrderStatus.NEW, "")


def test_fills_trades_and_balances(env: Env) -> None:
    buy = env.adapter.place_limit(request())
    env.exchange.on_trade(T0 + 5, "9.98", "0.4", True)
    env.exchange.on_trade(T0 + 6, "9.98", "1", True)
    sell = env.adapter.place_limit(request("fb-c000001-S1", Side.SELL, "0.999", "10.05"))
    env.exchange.on_trade(T0 + 7, "10.06", "2", False)

    fills = env.adapter.my_trades(SYMBOL, order_id=buy.order_id)
    assert [(f.trade_id, f.qty, f.commission, f.commission_asset) for f in fills] == [
        (1, D("0.4"), D("0.0004"), "TRUMP"),
        (2, D("0.6"), D("0.0006"), "TRUMP"),
    ]
    assert all(f.client_order_id == "fb-c000001-B1" and f.side is Side.BUY for f in fills)
    assert all(f.is_maker for f in fills)

    every = env.adapter.my_trades(SYMBOL)
    assert [(f.client_order_id, f.side) for f in every] == [
        ("fb-c000001-B1", Side.BUY),
        ("fb-c000001-B1", Side.BUY),
        ("fb-c000001-S1", Side.SELL),
    ]
    assert every[-1].order_id == sell.order_id
    assert every[-1].quote_qty == D("10.03995")

    balances = env.adapter.balances()
    # 100 - 9.99 + 10.03995 - 0.01003995 ; 5 + 0.999 - 0.999
    assert balances == {
        "USDC": Balance("USDC", D("100.03991005"), D(0)),
        "TRUMP": Balance("TRUMP", D("5"), D(0)),
    }


def test_my_trades_pages_through_more_than_one_page(env: Env) -> None:
    env.exchange.deposit("USDC", "1000")
    order = env.adapter.place_limit(request(qty="100.000"))
    for i in range(1001):
        env.exchange.on_trade(T0 + i, "9.98", "0.001", True)
    fills = env.adapter.my_trades(SYMBOL, order_id=order.order_id)
    assert len(fills) == 1001
    assert [f.trade_id for f in fills] == list(range(1, 1002))


def test_reference_data_is_read_once_and_cached(env: Env) -> None:
    requests_seen: list[str] = []
    original = env.faults.__call__

    def spy(method: str, path: str, params: Mapping[str, str]) -> Fault | None:
        requests_seen.append(path)
        return original(method, path, params)

    env.adapter = BinanceExchange(make_client(env.app, API_KEY, API_SECRET, faults=spy))
    rules = env.adapter.symbol_rules(SYMBOL)
    assert rules == SymbolRules.from_symbol_info(default_symbol_info(SYMBOL))
    assert env.adapter.symbol_rules(SYMBOL) is rules
    fees = env.adapter.fee_schedule(SYMBOL)
    assert (fees.maker, fees.taker, fees.pay_with_bnb) == (D("0.001"), D("0.001"), False)
    assert env.adapter.fee_schedule(SYMBOL) is fees
    assert requests_seen == ["/api/v3/exchangeInfo", "/api/v3/account/commission"]
    assert env.adapter.book_top(SYMBOL) == BookTop(D("10"), D("5"), D("10.01"), D("5"))


# --- rejections ----------------------------------------------------------------------------
def test_filter_violation_names_the_filter(env: Env) -> None:
    with pytest.raises(FilterViolation) as info:
        env.adapter.place_limit(request(qty="1.0005"))
    assert (info.value.filter_type, info.value.code) == ("LOT_SIZE", -1013)
    assert str(info.value) == "Filter failure: LOT_SIZE"
    with pytest.raises(FilterViolation) as info:
        env.adapter.place_limit(request(qty="0.100"))
    assert info.value.filter_type == "NOTIONAL"


def test_minus_2010_subtypes_are_told_apart(env: Env) -> None:
    env.adapter.place_limit(request())
    with pytest.raises(DuplicateOrder) as duplicate:
        env.adapter.place_limit(request())
    assert (duplicate.value.code, duplicate.value.value) == (-2010, "fb-c000001-B1")
    with pytest.raises(InsufficientBalance):
        env.adapter.place_limit(request("fb-c000002-B1", qty="20.000"))
    env.faults.once(Fault.binance_error(-2010, "Market is closed."), "POST")
    with pytest.raises(SymbolNotTrading):
        env.adapter.place_limit(request("fb-c000003-B1"))
    env.faults.once(Fault.binance_error(-2010, "Order would immediately match and take."), "POST")
    with pytest.raises(OrderRejected) as other:
        env.adapter.place_limit(request("fb-c000004-B1"))
    assert type(other.value) is OrderRejected
    assert other.value.code == -2010


def test_bad_signature_and_bad_key_are_configuration_errors(env: Env) -> None:
    wrong_secret = BinanceExchange(make_client(env.app, API_KEY, "not-the-secret"))
    with pytest.raises(ConfigurationError, match="-1022"):
        wrong_secret.balances()
    wrong_key = BinanceExchange(make_client(env.app, "SomeOtherKey", API_SECRET))
    with pytest.raises(ConfigurationError, match="-2015"):
        wrong_key.open_orders(SYMBOL)


def test_stale_timestamp_raises_clock_skew_and_resyncs_the_client(env: Env) -> None:
    # Given a client signing with the wall clock while the server is on T0 (2023)
    adapter = BinanceExchange(make_client(env.app, API_KEY, API_SECRET, follow_app_clock=False))
    # When it calls a signed endpoint, Then -1021 is ClockSkew
    with pytest.raises(ClockSkew, match="-1021"):
        adapter.balances()
    # And the offset was corrected, so the retry goes through
    assert adapter.balances()["USDC"].free == D("100")


# --- transport faults ----------------------------------------------------------------------
FaultCase = tuple[Fault, str | None, Callable[[BinanceExchange], Any], type[FlipbotError]]
FAULT_CASES: dict[str, FaultCase] = {
    "429 on a read": (Fault.rate_limited(30), None, lambda a: a.balances(), RateLimited),
    "418 on a create": (Fault.banned(120), None, lambda a: a.place_limit(request()), IpBanned),
    "503 on a create": (
        Fault.http_5xx(),
        None,
        lambda a: a.place_limit(request()),
        UnknownOrderOutcome,
    ),
    "503 on a read": (
        Fault.http_5xx(),
        None,
        lambda a: a.get_order(SYMBOL, "x"),
        ExchangeUnavailable,
    ),
    "connection error on a create": (
        Fault.connection_error(),
        None,
        lambda a: a.place_limit(request()),
        UnknownOrderOutcome,
    ),
    "connection error on a read": (
        Fault.connection_error(),
        None,
        lambda a: a.open_orders(SYMBOL),
        ExchangeUnavailable,
    ),
    "timeout on a read": (
        Fault.drop_response(),
        None,
        lambda a: a.book_top(SYMBOL),
        ExchangeUnavailable,
    ),
    "-1007 on a create": (
        Fault.binance_error(
            -1007, "Timeout waiting for response from backend server.", processed=True
        ),
        "POST",
        lambda a: a.place_limit(request()),
        UnknownOrderOutcome,
    ),
    "-1003 on a read": (
        Fault.binance_error(-1003, "Too many requests queued.", status=400),
        None,
        lambda a: a.open_orders(SYMBOL),
        RateLimited,
    ),
    "-1021 from skew": (
        Fault.timestamp_skew(),
        None,
        lambda a: a.my_trades(SYMBOL),
        ClockSkew,
    ),
}


@pytest.mark.parametrize("case", FAULT_CASES.values(), ids=FAULT_CASES.keys())
def test_each_fault_maps_to_its_domain_error(env: Env, case: FaultCase) -> None:
    fault, method, call, expected = case
    env.faults.once(fault, method)
    with pytest.raises(expected) as info:
        call(env.adapter)
    error = info.value
    assert type(error) is expected
    if isinstance(error, RateLimited | IpBanned) and fault.retry_after:
        assert error.retry_after == fault.retry_after
    if isinstance(error, UnknownOrderOutcome):
        assert error.client_order_id == "fb-c000001-B1"
    assert error.retryable


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.restricted_location(), 451), (Fault.waf_blocked(), 403)],
    ids=["451 restricted location", "403 from the firewall"],
)
def test_a_refused_location_is_a_configuration_error_not_a_rejection(
    env: Env, fault: Fault, status: int
) -> None:
    # Given Binance refuses where the request comes from, When an order is placed
    env.faults.once(fault, "POST")
    with pytest.raises(RestrictedLocation) as info:
        env.adapter.place_limit(request())
    # Then the error is terminal configuration, never an order rejection to retry around
    error = info.value
    assert isinstance(error, ConfigurationError)
    assert isinstance(error, TerminalError)
    assert not isinstance(error, OrderRejected)
    assert not error.retryable
    message = str(error)
    assert f"HTTP {status}" in message
    assert "region Binance serves" in message
    # The firewall's HTML page is summarized, not pasted in
    assert "<" not in message
    assert len(message) < 400
    assert env.exchange.open_orders(SYMBOL) == []


def test_a_restricted_location_refuses_every_call_with_451(env: Env) -> None:
    # Given the paper exchange treats the caller as in a restricted location
    env.app.location_restricted = True
    # Then public and signed endpoints alike answer 451, which the adapter names
    for call in (
        lambda a: a.book_top(SYMBOL),
        lambda a: a.balances(),
        lambda a: a.symbol_rules(SYMBOL),
    ):
        with pytest.raises(RestrictedLocation, match="restricted location"):
            call(env.adapter)


def test_dropped_response_after_accept_leaves_exactly_one_order(env: Env) -> None:
    # Given the exchange accepts the order but the answer is lost
    env.faults.once(Fault.drop_response(), "POST", "/api/v3/order")
    with pytest.raises(UnknownOrderOutcome) as info:
        env.adapter.place_limit(request())
    assert info.value.client_order_id == "fb-c000001-B1"
    # When the bot looks the order up instead of blind-retrying
    found = env.adapter.get_order(SYMBOL, info.value.client_order_id)
    # Then it is there, once; and a retry of the same intent is refused as a duplicate
    assert found is not None
    assert found.status is OrderStatus.NEW
    with pytest.raises(DuplicateOrder):
        env.adapter.place_limit(request())
    assert [o.client_order_id for o in env.adapter.open_orders(SYMBOL)] == ["fb-c000001-B1"]
    assert len(env.exchange.all_orders(SYMBOL)) == 1


# --- secrets -------------------------------------------------------------------------------
def test_secrets_never_appear_in_errors_or_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    attempts: Iterator[tuple[Fault | None, Callable[[BinanceExchange], Any]]] = iter(
        [
            (Fault.drop_response(), lambda a: a.place_limit(request())),
            (Fault.connection_error(), lambda a: a.balances()),
            (Fault.http_5xx(), lambda a: a.cancel_order(SYMBOL, "x")),
            (Fault.timestamp_skew(), lambda a: a.open_orders(SYMBOL)),
            (None, lambda a: a.place_limit(request(qty="0.001"))),
            (None, lambda a: a.cancel_order(SYMBOL, "ghost")),
        ]
    )
    for fault, call in attempts:
        if fault is not None:
            env.faults.once(fault)
        with pytest.raises(FlipbotError) as info:
            call(env.adapter)
        errors.append(info.value)
    wrong = BinanceExchange(make_client(env.app, API_KEY, "wrong-" + API_SECRET))
    with pytest.raises(ConfigurationError) as info:
        wrong.balances()
    errors.append(info.value)

    for error in errors:
        text = f"{error!s} {error!r} {error.args!r}"
        assert API_SECRET not in text
        assert API_KEY not in text
        assert "signature=" not in text
        assert error.__cause__ is None
    assert API_SECRET not in caplog.text
    assert API_KEY not in caplog.text
