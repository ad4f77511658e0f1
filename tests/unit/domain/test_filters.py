"""Symbol filters: exchangeInfo parsing, Decimal rounding and Binance's validation rules."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError, FilterViolation
from flipbot.domain.filters import (
    PercentPrice,
    PercentPriceBySide,
    SymbolRules,
    ceil_to_step,
    floor_to_step,
)
from flipbot.domain.model import Side

D = Decimal
CAPTURE = "real_captures/cryptofeed_exchangeInfo_BTCUSDT_DOGEUSDT_SHIBUSDT_2021-10-11.json"


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _symbol_info(*filters: dict[str, Any], symbol: str = "TRUMPUSDC") -> dict[str, Any]:
    return {"symbol": symbol, "baseAsset": "TRUMP", "quoteAsset": "USDC", "filters": list(filters)}


def _violation(rules: SymbolRules, side: str, price: str, qty: str, **kw: Any) -> FilterViolation:
    with pytest.raises(FilterViolation) as info:
        rules.validate(side, D(price), D(qty), **kw)
    return info.value


# --- parsing the real documented filter payloads ----------------------------------------
def test_given_every_documented_filter_when_parsed_then_rules_hold_their_values(
    payloads: Path,
) -> None:
    filters = {p.stem: load_json(p) for p in sorted((payloads / "filters").glob("*.json"))}
    rules = SymbolRules.from_symbol_info(_symbol_info(*filters.values()))

    price, lot, notional = filters["PRICE_FILTER"], filters["LOT_SIZE"], filters["NOTIONAL"]
    assert (rules.tick_size, rules.min_price, rules.max_price) == (
        D(price["tickSize"]),
        D(price["minPrice"]),
        D(price["maxPrice"]),
    )
    assert (rules.step_size, rules.min_qty, rules.max_qty) == (
        D(lot["stepSize"]),
        D(lot["minQty"]),
        D(lot["maxQty"]),
    )
    # NOTIONAL wins over the legacy MIN_NOTIONAL, whichever comes first in the list
    assert rules.notional_filter == "NOTIONAL"
    assert (rules.min_notional, rules.max_notional) == (
        D(notional["minNotional"]),
        D(notional["maxNotional"]),
    )
    assert rules.apply_min_notional_to_market is notional["applyMinToMarket"]
    by_side = filters["PERCENT_PRICE_BY_SIDE"]
    assert rules.percent_price_by_side == PercentPriceBySide(
        D(by_side["bidMultiplierUp"]),
        D(by_side["bidMultiplierDown"]),
        D(by_side["askMultiplierUp"]),
        D(by_side["askMultiplierDown"]),
        by_side["avgPriceMins"],
    )
    pp = filters["PERCENT_PRICE"]
    assert rules.percent_price == PercentPrice(
        D(pp["multiplierUp"]), D(pp["multiplierDown"]), pp["avgPriceMins"]
    )
    assert rules.max_num_orders == filters["MAX_NUM_ORDERS"]["maxNumOrders"]


def test_given_real_filters_then_parsed_decimals_have_no_trailing_zeros(payloads: Path) -> None:
    price = load_json(payloads / "filters" / "PRICE_FILTER.json")
    lot = load_json(payloads / "filters" / "LOT_SIZE.json")
    rules = SymbolRules.from_symbol_info(_symbol_info(price, lot))
    # "0.00000100" / "0.00100000" / "100000.00000000" as Binance writes them
    assert (str(rules.tick_size), str(rules.step_size), str(rules.max_qty)) == (
        "0.000001",
        "0.001",
        "100000",
    )


def test_given_only_legacy_min_notional_then_it_is_the_notional_filter(payloads: Path) -> None:
    legacy = load_json(payloads / "filters" / "MIN_NOTIONAL.json")
    rules = SymbolRules.from_symbol_info(_symbol_info(legacy))
    assert rules.notional_filter == "MIN_NOTIONAL"
    assert rules.min_notional == D(legacy["minNotional"])
    assert rules.max_notional is None


def test_given_real_filter_bounds_when_validating_then_edges_pass_and_beyond_fails(
    payloads: Path,
) -> None:
    names = ("PRICE_FILTER", "LOT_SIZE", "NOTIONAL")
    rules = SymbolRules.from_symbol_info(
        _symbol_info(*(load_json(payloads / "filters" / f"{n}.json") for n in names))
    )
    # min notional 10: exactly 10 passes, one tick less fails
    rules.validate(Side.BUY, D("10"), D("1"))
    assert _violation(rules, "BUY", "9.999999", "1").filter_type == "NOTIONAL"
    assert _violation(rules, "BUY", "10.0000001", "1").filter_type == "PRICE_FILTER"
    assert _violation(rules, "SELL", "10", "100000.001").filter_type == "LOT_SIZE"
    # max notional 10000
    assert "maxNotional=10000" in str(_violation(rules, "BUY", "100.000001", "100").value)


@pytest.mark.parametrize(
    ("symbol", "tick", "step", "min_notional"),
    [
        ("BTCUSDT", "0.01", "0.00001", "10"),
        ("DOGEUSDT", "0.0001", "1", "10"),
        ("SHIBUSDT", "0.00000001", "1", "10"),
    ],
)
def test_given_real_exchange_info_capture_when_parsed_then_symbol_rules_match(
    payloads: Path, symbol: str, tick: str, step: str, min_notional: str
) -> None:
    capture = payloads / CAPTURE
    rules = SymbolRules.from_exchange_info(load_json(capture), symbol)
    assert (rules.symbol, rules.quote_asset) == (symbol, "USDT")
    assert (format(rules.tick_size, "f"), format(rules.step_size, "f")) == (tick, step)
    assert (rules.notional_filter, rules.min_notional) == ("MIN_NOTIONAL", D(min_notional))
    assert rules.percent_price == PercentPrice(D("5"), D("0.2"), 5)
    assert rules.max_num_orders == 200


def test_given_real_capture_when_validating_btc_order_then_legacy_message_is_used(
    payloads: Path,
) -> None:
    capture = payloads / CAPTURE
    rules = SymbolRules.from_exchange_info(load_json(capture), "btcusdt")
    rules.validate(Side.BUY, D("55000.01"), D("0.00020"))  # 11.0 USDT
    error = _violation(rules, "BUY", "55000.01", "0.00018")  # 9.9 USDT
    assert (error.filter_type, str(error), error.code) == (
        "MIN_NOTIONAL",
        "Filter failure: MIN_NOTIONAL",
        -1013,
    )


def test_given_documented_exchange_info_with_empty_filters_then_every_rule_is_off(
    payloads: Path,
) -> None:
    payload = load_json(payloads / "rest" / "get_exchangeInfo.json")
    rules = SymbolRules.from_exchange_info(payload, "ETHBTC")
    assert (rules.base_asset, rules.quote_asset, rules.notional_filter) == ("ETH", "BTC", None)
    rules.validate(Side.SELL, D("0.0000001234"), D("0.00000077"))  # nothing to violate


def test_given_unknown_symbol_when_looked_up_then_configuration_error_names_it() -> None:
    payload = {"symbols": [_symbol_info(symbol="ETHBTC")]}
    with pytest.raises(ConfigurationError, match=r"'TRUMPUSDC'.*ETHBTC"):
        SymbolRules.from_exchange_info(payload, "TRUMPUSDC")


@pytest.mark.parametrize(
    "info",
    [
        {"symbol": "X", "quoteAsset": "USDC", "filters": []},
        _symbol_info({"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1"}),
        _symbol_info({"filterType": "LOT_SIZE", "minQty": "x", "maxQty": "1", "stepSize": "1"}),
        _symbol_info({"filterType": "NOTIONAL", "minNotional": "NaN"}),
    ],
    ids=["no-base-asset", "no-tick-size", "bad-number", "nan"],
)
def test_given_malformed_symbol_info_when_parsed_then_configuration_error(
    info: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError):
        SymbolRules.from_symbol_info(info)


def test_given_unsupported_filters_when_parsed_then_they_are_ignored() -> None:
    rules = SymbolRules.from_symbol_info(
        _symbol_info(
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0", "maxQty": "5", "stepSize": "0"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10},
        )
    )
    assert rules == SymbolRules("TRUMPUSDC", "TRUMP", "USDC", notional_filter=None)


# --- zero bounds disable a rule ---------------------------------------------------------
def test_given_zero_price_and_lot_bounds_then_those_rules_are_disabled() -> None:
    rules = SymbolRules.from_symbol_info(
        _symbol_info(
            {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0"},
            {"filterType": "LOT_SIZE", "minQty": "0.0", "maxQty": "0.0", "stepSize": "0.0"},
        )
    )
    rules.validate(Side.BUY, D("0.000000001"), D("123456789.123456789"))
    assert rules.floor_price(D("26.1379")) == D("26.1379")
    assert rules.floor_qty(D("0.12345")) == D("0.12345")


@pytest.mark.parametrize(
    ("field", "price", "qty"),
    [
        ("min_price", "0.50", "20"),
        ("max_price", "99999999", "1"),
        ("tick_size", "26.13579", "1"),
        ("min_qty", "26.13", "0.500"),
        ("max_qty", "26.13", "99999999"),
        ("step_size", "26.13", "1.0001"),
    ],
)
def test_given_one_bound_zeroed_then_only_that_check_is_skipped(
    rules: SymbolRules, field: str, price: str, qty: str
) -> None:
    strict = dataclasses.replace(rules, notional_filter=None, min_price=D(1), min_qty=D(1))
    with pytest.raises(FilterViolation):
        strict.validate(Side.BUY, D(price), D(qty))
    disabled: dict[str, Any] = {field: D(0)}
    dataclasses.replace(strict, **disabled).validate(Side.BUY, D(price), D(qty))


# --- rounding ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "value", "floor", "ceil"),
    [
        ("0.01", "26.135", "26.13", "26.14"),
        ("0.01", "26.13", "26.13", "26.13"),
        ("0.01", "26.1300000", "26.13", "26.13"),
        ("0.01", "26", "26.00", "26.00"),
        ("0.01000000", "26.139999", "26.13", "26.14"),
        ("0.00000100", "0.0000015", "0.000001", "0.000002"),
        ("1.00000000", "7.5", "7", "8"),
        ("10.00000000", "75", "70", "80"),
        ("0.05", "1.01", "1.00", "1.05"),
        ("0.001", "0.0009", "0.000", "0.001"),
    ],
)
def test_given_a_step_when_rounding_then_exact_multiple_with_the_step_exponent(
    step: str, value: str, floor: str, ceil: str
) -> None:
    assert str(floor_to_step(D(value), D(step))) == floor
    assert str(ceil_to_step(D(value), D(step))) == ceil


def test_given_rules_when_rounding_then_price_uses_tick_and_qty_uses_step(
    rules: SymbolRules,
) -> None:
    assert str(rules.floor_price(D("26.1399"))) == "26.13"
    assert str(rules.ceil_price(D("26.1301"))) == "26.14"
    assert str(rules.floor_qty(D("0.38279"))) == "0.382"


def test_given_many_values_when_rounding_then_results_bracket_the_value_within_one_step() -> None:
    rng = random.Random(7)
    for _ in range(500):
        step = D(rng.choice(["0.01", "0.001", "0.00000001", "0.5", "1", "10"]))
        value = D(rng.randint(1, 10**9)) / D(10 ** rng.randint(0, 8))
        down, up = floor_to_step(value, step), ceil_to_step(value, step)
        assert down <= value <= up
        assert up - down in (D(0), step)
        assert down % step == 0
        assert up % step == 0


# --- sizing a buy -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("quote", "price", "qty"),
    [
        ("10", "10.00", "1.000"),
        ("10", "3.00", "3.333"),
        ("10", "26.13", "0.382"),
        ("10", "10.01", "0.999"),
        ("0.001", "10", "0.000"),
        ("0", "10", "0.000"),
        ("-5", "10", "0.000"),
    ],
)
def test_given_quote_and_price_when_sizing_a_buy_then_largest_affordable_step_multiple(
    rules: SymbolRules, quote: str, price: str, qty: str
) -> None:
    assert str(rules.size_buy(D(quote), D(price))) == qty


def test_given_random_amounts_when_sizing_then_one_more_step_would_overspend(
    rules: SymbolRules,
) -> None:
    rng = random.Random(11)
    for _ in range(500):
        quote = D(rng.randint(1, 10**6)) / 100
        price = D(rng.randint(1, 10**7)) / 100
        qty = rules.size_buy(quote, price)
        assert qty * price <= quote
        assert (qty + rules.step_size) * price > quote
        assert qty % rules.step_size == 0


def test_given_a_quotient_that_context_rounding_would_push_up_then_sizing_stays_affordable(
    rules: SymbolRules,
) -> None:
    # 2.99...9 / 3 rounds to 1.000 at 28 digits; one full step would overspend
    quote = D("2.9999999999999999999999999999")
    assert rules.size_buy(quote, D("3")) == D("0.999")


def test_given_max_qty_when_sizing_a_large_buy_then_quantity_is_capped(
    rules: SymbolRules,
) -> None:
    capped = dataclasses.replace(rules, max_qty=D("2.5"))
    assert capped.size_buy(D("1000"), D("10")) == D("2.500")


def test_given_non_positive_price_when_sizing_then_value_error(rules: SymbolRules) -> None:
    with pytest.raises(ValueError, match="positive"):
        rules.size_buy(D("10"), D("0"))


# --- validation -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "price", "qty", "expected"),
    [
        ("BUY", "26.135", "1", ("PRICE_FILTER", "price=26.135 tickSize=0.01")),
        ("BUY", "0.001", "10000", ("PRICE_FILTER", "price=0.001 minPrice=0.01")),
        ("SELL", "100000.01", "1", ("PRICE_FILTER", "price=100000.01 maxPrice=100000")),
        ("BUY", "0", "1", ("PRICE_FILTER", "price=0 must be positive")),
        ("BUY", "-1", "1", ("PRICE_FILTER", "price=-1 must be positive")),
        ("BUY", "10", "0.0005", ("LOT_SIZE", "quantity=0.0005 minQty=0.001")),
        ("BUY", "10", "1.0005", ("LOT_SIZE", "quantity=1.0005 stepSize=0.001")),
        ("BUY", "0.01", "900000.001", ("LOT_SIZE", "quantity=900000.001 maxQty=900000")),
        ("SELL", "10", "0", ("LOT_SIZE", "quantity=0 must be positive")),
        ("BUY", "10", "0.499", ("NOTIONAL", "notional=4.990 minNotional=5")),
        ("SELL", "10000", "900.001", ("NOTIONAL", "notional=9000010.000 maxNotional=9000000")),
    ],
)
def test_given_an_order_breaking_a_filter_when_validated_then_binance_error(
    rules: SymbolRules, side: str, price: str, qty: str, expected: tuple[str, str]
) -> None:
    kind, value = expected
    error = _violation(rules, side, price, qty)
    assert (error.filter_type, str(error), error.value, error.code) == (
        kind,
        f"Filter failure: {kind}",
        value,
        -1013,
    )


def test_given_a_valid_order_when_validated_then_nothing_is_raised(rules: SymbolRules) -> None:
    rules.validate(Side.BUY, D("26.13"), D("0.382"), avg_price=D("26.20"))
    rules.validate("SELL", D("5.00"), D("1.000"))  # exactly min notional


@pytest.mark.parametrize(
    ("price", "qty", "avg", "first"),
    [
        ("26.135", "0.0001", None, "PRICE_FILTER"),  # price before lot size
        ("26.13", "0.0001", None, "LOT_SIZE"),  # lot size before notional
        ("99.99", "0.0001", "10", "PERCENT_PRICE_BY_SIDE"),  # percent price before lot size
        ("99.999", "1", "10", "PRICE_FILTER"),  # price filter before percent price
    ],
)
def test_given_several_failures_then_the_first_in_binance_order_is_reported(
    rules: SymbolRules, price: str, qty: str, avg: str | None, first: str
) -> None:
    avg_price = None if avg is None else D(avg)
    assert _violation(rules, "BUY", price, qty, avg_price=avg_price).filter_type == first


@pytest.mark.parametrize(
    ("side", "price", "ok"),
    [
        ("BUY", "12.00", True),  # avg 10 x bidMultiplierUp 1.2
        ("BUY", "12.01", False),
        ("BUY", "2.00", True),  # avg 10 x bidMultiplierDown 0.2
        ("BUY", "1.99", False),
        ("SELL", "50.00", True),  # avg 10 x askMultiplierUp 5
        ("SELL", "50.01", False),
        ("SELL", "8.00", True),  # avg 10 x askMultiplierDown 0.8
        ("SELL", "7.99", False),
    ],
)
def test_given_percent_price_by_side_then_each_side_has_its_band(
    rules: SymbolRules, side: str, price: str, ok: bool
) -> None:
    if ok:
        rules.validate(side, D(price), D("100"), avg_price=D("10"))
    else:
        error = _violation(rules, side, price, "100", avg_price=D("10"))
        assert str(error) == "Filter failure: PERCENT_PRICE_BY_SIDE"
        assert f"price={price}" in str(error.value)


def test_given_no_average_price_then_percent_price_is_not_checked(rules: SymbolRules) -> None:
    rules.validate(Side.BUY, D("99.99"), D("1"))


@pytest.mark.parametrize(
    ("price", "ok"), [("13.00", True), ("13.01", False), ("7.00", True), ("6.99", False)]
)
def test_given_percent_price_then_price_stays_within_multipliers_of_average(
    rules: SymbolRules, price: str, ok: bool
) -> None:
    legacy = dataclasses.replace(
        rules, percent_price_by_side=None, percent_price=PercentPrice(D("1.3"), D("0.7"))
    )
    if ok:
        legacy.validate(Side.SELL, D(price), D("1"), avg_price=D("10"))
    else:
        error = _violation(legacy, "SELL", price, "1", avg_price=D("10"))
        assert (error.filter_type, str(error)) == ("PERCENT_PRICE", "Filter failure: PERCENT_PRICE")


def test_given_legacy_min_notional_then_its_own_message_is_used(rules: SymbolRules) -> None:
    legacy = dataclasses.replace(rules, notional_filter="MIN_NOTIONAL", max_notional=None)
    error = _violation(legacy, "BUY", "10", "0.4")
    assert (error.filter_type, str(error)) == ("MIN_NOTIONAL", "Filter failure: MIN_NOTIONAL")
    legacy.validate(Side.BUY, D("10000"), D("900000"))  # no maximum


@pytest.mark.parametrize(("open_orders", "ok"), [(0, True), (199, True), (200, False)])
def test_given_max_num_orders_when_one_more_is_placed_then_cap_applies(
    rules: SymbolRules, open_orders: int, ok: bool
) -> None:
    if ok:
        rules.validate_open_orders(open_orders)
    else:
        with pytest.raises(FilterViolation, match="MAX_NUM_ORDERS") as info:
            rules.validate_open_orders(open_orders)
        assert info.value.value == "openOrders=200 maxNumOrders=200"
