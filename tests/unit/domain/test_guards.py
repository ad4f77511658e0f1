"""Hard guards: every rule refuses with its name and the offending value."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

from flipbot.domain.decision import Decision
from flipbot.domain.errors import GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import (
    RiskLimits,
    check_buy,
    check_sell,
    stop_exit_price,
    stop_loss_triggered,
    stop_price,
)
from flipbot.domain.model import BookTop, OrderRequest, Side

D = Decimal
LIMITS = RiskLimits()
FLOOR = D("10.12")  # entry 10 x (1 + 0.002 + 0.01)


def _decision(action: str, price: str, confidence: float = 0.9) -> Decision:
    return Decision(action=action, base_price=D(price), confidence=confidence)  # type: ignore[arg-type]


def _book(bid: str, ask: str) -> BookTop:
    return BookTop(bid=D(bid), bid_qty=D("10"), ask=D(ask), ask_qty=D("10"))


def _buy(
    rules: SymbolRules, book: BookTop, decision: Decision, free: str = "100", **kw: Any
) -> OrderRequest:
    return check_buy(
        decision, book, rules, LIMITS, D(free), symbol="TRUMPUSDC", client_order_id="B1", **kw
    )


def _sell(
    rules: SymbolRules, book: BookTop, decision: Decision, held: str = "0.9995", **kw: Any
) -> OrderRequest:
    qty = D(held)
    return check_sell(
        decision, book, rules, LIMITS, qty, FLOOR, symbol="TRUMPUSDC", client_order_id="S1", **kw
    )


# --- buy --------------------------------------------------------------------------------
def test_given_an_acceptable_buy_then_a_maker_order_for_the_cycle_amount(
    rules: SymbolRules, book: BookTop
) -> None:
    order = _buy(rules, book, _decision("BUY", "10.009"))
    assert order == OrderRequest("TRUMPUSDC", Side.BUY, D("10.00"), D("1.000"), "B1")
    assert (str(order.price), str(order.quantity)) == ("10.00", "1.000")


def test_given_less_free_quote_than_the_cycle_amount_then_the_order_shrinks(
    rules: SymbolRules, book: BookTop
) -> None:
    order = _buy(rules, book, _decision("BUY", "9.99"), free="7.50")
    assert (order.price, order.quantity) == (D("9.99"), D("0.750"))
    assert order.price * order.quantity <= D("7.50")


def test_given_a_price_inside_the_spread_then_it_is_still_a_maker_buy(
    rules: SymbolRules, book: BookTop
) -> None:
    assert _buy(rules, book, _decision("BUY", "10.01")).price == D("10.01")


@pytest.mark.parametrize(
    ("decision", "free", "expected"),
    [
        (_decision("SELL", "10"), "100", ("action", "SELL")),
        (_decision("WAIT", "10"), "100", ("action", "WAIT")),
        (_decision("BUY", "10", confidence=0.79), "100", ("confidence", "0.79")),
        (_decision("BUY", "-1"), "100", ("price", "-1")),
        (_decision("BUY", "0"), "100", ("price", "0")),
        (_decision("BUY", "0.001"), "100", ("price", "0.001")),  # floors to 0.00
        (_decision("BUY", "10.02"), "100", ("spread", "10.02")),  # at the ask: would take
        (_decision("BUY", "10.50"), "100", ("spread", "10.50")),
        (_decision("BUY", "9.79"), "100", ("price_band", "9.79")),  # bid 10.00 - 2 % = 9.80
        (_decision("BUY", "10"), "0", ("balance", "0")),
        (_decision("BUY", "10"), "-3", ("balance", "-3")),
        (_decision("BUY", "10"), "4.99", ("min_notional", "4.990")),
    ],
)
def test_given_a_bad_buy_then_the_named_guard_refuses_it_showing_the_value(
    rules: SymbolRules, book: BookTop, decision: Decision, free: str, expected: tuple[str, str]
) -> None:
    guard, shows = expected
    with pytest.raises(GuardRejected) as info:
        _buy(rules, book, decision, free=free)
    assert info.value.guard == guard
    assert shows in str(info.value)


@pytest.mark.parametrize(
    ("price", "confidence"),
    [("9.80", 0.9), ("10.01", 0.9), ("10", 0.8), ("10", 1.0)],
)
def test_given_buys_on_the_limits_then_they_pass(
    rules: SymbolRules, book: BookTop, price: str, confidence: float
) -> None:
    assert _buy(rules, book, _decision("BUY", price, confidence)).price == D(price)


def test_given_a_nan_price_that_bypassed_validation_then_the_price_guard_refuses_it(
    rules: SymbolRules, book: BookTop
) -> None:
    decision = Decision.model_construct(action="BUY", base_price=D("NaN"), confidence=0.9)
    with pytest.raises(GuardRejected) as info:
        _buy(rules, book, decision)
    assert info.value.guard == "price"


@pytest.mark.parametrize("price", ["1e308", "1e28", "-1e308", "1e-308", "5e-324"])
@pytest.mark.parametrize("leg", ["BUY", "SELL"])
def test_given_a_price_out_of_any_market_s_range_then_the_price_guard_refuses_it_naming_it(
    rules: SymbolRules, book: BookTop, leg: str, price: str
) -> None:
    # Given an answer with a huge or tiny price, When it is checked, Then it is refused by
    # the price guard with the value in the reason (not an arithmetic error)
    decision = _decision(leg, price)
    check = _buy if leg == "BUY" else _sell
    with pytest.raises(GuardRejected) as info:
        check(rules, book, decision)
    assert info.value.guard == "price"
    assert str(D(price)) in str(info.value)


@pytest.mark.parametrize(("bid", "ask"), [("NaN", "10"), ("9.99", "Infinity"), ("1e308", "2e308")])
def test_given_a_book_with_a_value_no_market_has_then_the_book_guard_refuses(
    rules: SymbolRules, bid: str, ask: str
) -> None:
    with pytest.raises(GuardRejected) as info:
        _buy(rules, _book(bid, ask), _decision("BUY", "9.99"))
    assert info.value.guard == "book"


@pytest.mark.parametrize(("bid", "ask"), [("0", "10"), ("10.02", "10.00"), ("10", "10")])
def test_given_an_unusable_book_then_the_book_guard_refuses(
    rules: SymbolRules, bid: str, ask: str
) -> None:
    with pytest.raises(GuardRejected) as info:
        _buy(rules, _book(bid, ask), _decision("BUY", "9.99"))
    assert info.value.guard == "book"


def test_given_a_coarse_step_and_a_high_price_then_nothing_can_be_bought(
    rules: SymbolRules,
) -> None:
    coarse = dataclasses.replace(rules, step_size=D("1"), min_qty=D("1"))
    with pytest.raises(GuardRejected) as info:
        _buy(coarse, _book("20", "20.01"), _decision("BUY", "20"))
    assert info.value.guard == "quantity"


def test_given_the_average_price_then_exchange_filters_are_enforced_too(
    rules: SymbolRules, book: BookTop
) -> None:
    # bidMultiplierUp 1.2: a buy at 10 needs an average price of at least 8.34
    with pytest.raises(GuardRejected) as info:
        _buy(rules, book, _decision("BUY", "10"), avg_price=D("8"))
    assert info.value.guard == "filters"
    assert "Filter failure: PERCENT_PRICE_BY_SIDE" in str(info.value)
    assert "price=10.00" in str(info.value)


def test_given_a_lot_size_cap_then_the_filters_guard_refuses(
    rules: SymbolRules, book: BookTop
) -> None:
    tiny_cap = dataclasses.replace(rules, max_qty=D("0.5"), min_qty=D("0.6"))
    with pytest.raises(GuardRejected) as info:
        _buy(tiny_cap, book, _decision("BUY", "10"))
    assert (info.value.guard, "Filter failure: LOT_SIZE" in str(info.value)) == ("filters", True)


# --- sell -------------------------------------------------------------------------------
def test_given_an_acceptable_sell_then_a_maker_order_for_what_is_held(
    rules: SymbolRules, book: BookTop
) -> None:
    order = _sell(rules, book, _decision("SELL", "10.121"))
    assert order == OrderRequest("TRUMPUSDC", Side.SELL, D("10.13"), D("0.999"), "S1")
    assert (str(order.price), str(order.quantity)) == ("10.13", "0.999")


@pytest.mark.parametrize(
    ("decision", "book", "held", "expected"),
    [
        (_decision("BUY", "10.2"), ("10", "10.02"), "1", ("action", "BUY")),
        (_decision("SELL", "10.2", 0.5), ("10", "10.02"), "1", ("confidence", "0.5")),
        (_decision("SELL", "0"), ("10", "10.02"), "1", ("price", "0")),
        (_decision("SELL", "10.11"), ("10", "10.02"), "1", ("profit_floor", "10.11")),
        (_decision("SELL", "10.20"), ("10.20", "10.22"), "1", ("spread", "10.20")),
        (_decision("SELL", "10.15"), ("10.20", "10.22"), "1", ("spread", "10.15")),
        (_decision("SELL", "11.03"), ("10", "10.04"), "1", ("price_band", "11.03")),  # > 11.022
        (_decision("SELL", "10.13"), ("8", "8.02"), "1", ("price_band", "10.13")),
        (_decision("SELL", "10.2"), ("10", "10.02"), "0.0009", ("quantity", "0.0009")),
        (_decision("SELL", "10.2"), ("10", "10.02"), "0.4", ("min_notional", "4.080")),
    ],
)
def test_given_a_bad_sell_then_the_named_guard_refuses_it_showing_the_value(
    rules: SymbolRules,
    decision: Decision,
    book: tuple[str, str],
    held: str,
    expected: tuple[str, str],
) -> None:
    guard, shows = expected
    with pytest.raises(GuardRejected) as info:
        _sell(rules, _book(*book), decision, held=held)
    assert info.value.guard == guard
    assert shows in str(info.value)


def test_given_a_price_just_under_the_floor_then_rounding_up_to_the_tick_saves_it(
    rules: SymbolRules, book: BookTop
) -> None:
    assert _sell(rules, book, _decision("SELL", "10.111")).price == FLOOR


def test_given_the_highest_price_in_the_band_then_the_sell_passes(rules: SymbolRules) -> None:
    # mid 10.02 x 1.10 = 11.022
    assert _sell(rules, _book("10", "10.04"), _decision("SELL", "11.02")).price == D("11.02")


def test_given_a_crashed_market_then_selling_at_the_floor_stays_allowed(
    rules: SymbolRules,
) -> None:
    # mid 8.01 x 1.10 = 8.811 is below the floor: the floor itself is the ceiling
    order = _sell(rules, _book("8", "8.02"), _decision("SELL", "10.12"))
    assert order.price == FLOOR


def test_given_the_average_price_then_sell_side_filters_are_enforced(
    rules: SymbolRules, book: BookTop
) -> None:
    # askMultiplierDown 0.8: a sell at 10.13 is refused when the average is above 12.66
    with pytest.raises(GuardRejected) as info:
        _sell(rules, book, _decision("SELL", "10.13"), avg_price=D("13"))
    assert "PERCENT_PRICE_BY_SIDE" in str(info.value)


# --- stop-loss --------------------------------------------------------------------------
def test_given_no_stop_loss_then_it_never_triggers() -> None:
    assert not stop_loss_triggered(D("10"), D("0.01"), LIMITS)


@pytest.mark.parametrize(("last", "triggered"), [("9.50", True), ("9.00", True), ("9.51", False)])
def test_given_a_five_percent_stop_loss_then_it_triggers_at_or_below_it(
    last: str, triggered: bool
) -> None:
    limits = RiskLimits(stop_loss=D("0.05"))
    assert stop_loss_triggered(D("10"), D(last), limits) is triggered


def test_default_limits_match_the_documented_configuration() -> None:
    assert RiskLimits(D("10"), 0.8, D("0.01"), D("0.02"), D("0.10"), None) == LIMITS


# --- the stop-loss exit ----------------------------------------------------------------
STOP = RiskLimits(stop_loss=D("0.01"))


def _stop_sell(rules: SymbolRules, book: BookTop, price: str, limits: RiskLimits) -> OrderRequest:
    return check_sell(
        _decision("SELL", price, 1.0),
        book,
        rules,
        limits,
        D("0.9995"),
        FLOOR,
        symbol="TRUMPUSDC",
        client_order_id="S2",
        below_floor=True,
    )


def test_given_a_stop_loss_then_the_exit_may_rest_below_the_floor_at_the_ask(
    rules: SymbolRules, book: BookTop
) -> None:
    exit_price = stop_exit_price(book, rules)
    assert exit_price == D("10.02")  # the best ask
    order = _stop_sell(rules, book, str(exit_price), STOP)
    assert (order.price, order.quantity) == (D("10.02"), D("0.999"))
    assert order.price < FLOOR


def test_given_no_stop_loss_then_a_below_floor_exit_is_refused_by_name(
    rules: SymbolRules, book: BookTop
) -> None:
    with pytest.raises(GuardRejected) as refused:
        _stop_sell(rules, book, "10.02", LIMITS)
    assert refused.value.guard == "stop_loss"


def test_given_a_stop_exit_at_or_under_the_bid_then_it_is_refused_as_a_taker(
    rules: SymbolRules, book: BookTop
) -> None:
    with pytest.raises(GuardRejected) as refused:
        _stop_sell(rules, book, "10.00", STOP)
    assert refused.value.guard == "spread"
    assert "10.00" in str(refused.value)


def test_given_a_one_tick_spread_then_the_exit_is_the_ask_and_never_the_bid(
    rules: SymbolRules,
) -> None:
    assert stop_exit_price(_book("10.00", "10.01"), rules) == D("10.01")
    assert stop_exit_price(_book("10.00", "10.005"), rules) == D("10.01")  # off-tick ask


def test_given_a_stop_loss_then_the_stop_price_is_entry_times_one_minus_it() -> None:
    assert stop_price(D("25.90"), STOP) == D("25.641")
    assert stop_price(D("25.90"), LIMITS) is None
