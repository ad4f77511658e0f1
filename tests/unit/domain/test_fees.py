"""Commission rates, the profit floor and fee accounting."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot.domain.fees import (
    FeeSchedule,
    commission_in_quote,
    commissions_by_asset,
    net_base_quantity,
    profit_floor,
    realized_pnl,
)
from flipbot.domain.model import Fill, Side

D = Decimal
VIP0 = FeeSchedule(maker=D("0.001"), taker=D("0.001"))


def _payload(**discount: Any) -> dict[str, Any]:
    return {
        "symbol": "TRUMPUSDC",
        "standardCommission": {"maker": "0.001", "taker": "0.001", "buyer": "0", "seller": "0"},
        "taxCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
        "specialCommission": {"maker": "0", "taker": "0", "buyer": "0", "seller": "0"},
        "discount": {
            "enabledForAccount": True,
            "enabledForSymbol": True,
            "discountAsset": "BNB",
            "discount": "0.25000000",
        }
        | discount,
    }


# --- parsing GET /api/v3/account/commission ---------------------------------------------
def test_given_the_documented_commission_payload_then_the_three_blocks_add_up(
    payloads: Path,
) -> None:
    payload = json.loads((payloads / "rest" / "get_account_commission.json").read_text())
    fees = FeeSchedule.from_commission_payload(payload)
    # standard + tax + special
    assert fees.maker == D("0.00000010") + D("0.00000112") + D("0.01000000")
    assert fees.taker == D("0.00000020") + D("0.00000114") + D("0.02000000")
    assert (fees.bnb_discount, fees.pay_with_bnb) == (D("0.75"), True)
    # the BNB discount reduces the standard part only
    assert fees.rate(is_maker=True) == D("0.00000010") * D("0.25") + D("0.00000112") + D("0.01")
    assert fees.rate(is_maker=False) == D("0.00000020") * D("0.25") + D("0.00000114") + D("0.02")


def test_given_pay_with_bnb_overridden_then_the_full_rate_applies(payloads: Path) -> None:
    payload = json.loads((payloads / "rest" / "get_account_commission.json").read_text())
    fees = FeeSchedule.from_commission_payload(payload, pay_with_bnb=False)
    assert fees.rate(is_maker=True) == fees.maker


@pytest.mark.parametrize(
    ("discount", "pays_with_bnb"),
    [
        ({}, True),
        ({"enabledForAccount": False}, False),
        ({"enabledForSymbol": False}, False),
        ({"discountAsset": "XYZ"}, False),
    ],
)
def test_given_discount_block_then_bnb_is_used_only_when_enabled_everywhere(
    discount: dict[str, Any], pays_with_bnb: bool
) -> None:
    fees = FeeSchedule.from_commission_payload(_payload(**discount))
    assert fees.pay_with_bnb is pays_with_bnb
    assert fees.rate(True) == (D("0.00075") if pays_with_bnb else D("0.001"))


def test_given_no_tax_special_or_discount_blocks_then_standard_rates_are_used() -> None:
    fees = FeeSchedule.from_commission_payload(
        {"standardCommission": {"maker": "0.0002", "taker": "0.0004"}}
    )
    assert (fees.maker, fees.taker, fees.pay_with_bnb) == (D("0.0002"), D("0.0004"), False)


@pytest.mark.parametrize(
    "payload",
    [{}, {"standardCommission": {"maker": "0.001"}}, {"standardCommission": {"maker": "x"}}],
    ids=["empty", "no-taker", "not-a-number"],
)
def test_given_malformed_commission_payload_then_configuration_error(
    payload: dict[str, Any],
) -> None:
    with pytest.raises(ConfigurationError):
        FeeSchedule.from_commission_payload(payload)


# --- rates ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fees", "maker", "taker", "round_trip"),
    [
        (VIP0, "0.001", "0.001", "0.002"),
        (FeeSchedule(D("0.001"), D("0.001"), pay_with_bnb=True), "0.00075", "0.00075", "0.0015"),
        (FeeSchedule(D("0.0002"), D("0.0005")), "0.0002", "0.0005", "0.0004"),
    ],
)
def test_given_a_schedule_then_rates_and_maker_round_trip(
    fees: FeeSchedule, maker: str, taker: str, round_trip: str
) -> None:
    assert fees.rate(is_maker=True) == D(maker)
    assert fees.rate(is_maker=False) == D(taker)
    assert fees.round_trip() == D(round_trip)


def test_given_taker_legs_then_round_trip_adds_the_matching_rates() -> None:
    fees = FeeSchedule(D("0.0002"), D("0.0005"))
    assert fees.round_trip(maker_buy=False, maker_sell=True) == D("0.0007")
    assert fees.round_trip(maker_buy=True, maker_sell=False) == D("0.0007")
    assert fees.round_trip(maker_buy=False, maker_sell=False) == D("0.0010")


# --- profit floor -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("entry", "tick", "floor"),
    [
        ("10", None, "10.120"),  # 10 x (1 + 0.002 + 0.01)
        ("10", "0.01", "10.12"),
        ("10.005", "0.01", "10.13"),  # 10.12506 rounds up
        ("26.13", "0.01", "26.45"),  # 26.44356 rounds up
        ("0.00001234", "0.00000001", "0.00001249"),
    ],
)
def test_given_entry_and_fees_then_floor_is_entry_times_one_plus_fees_plus_margin(
    entry: str, tick: str | None, floor: str
) -> None:
    tick_size = None if tick is None else D(tick)
    result = profit_floor(D(entry), VIP0, D("0.01"), tick_size)
    assert result == D(floor)
    if tick_size is not None:
        assert result % tick_size == 0


def test_given_taker_legs_then_floor_uses_their_rates() -> None:
    fees = FeeSchedule(D("0.001"), D("0.002"))
    assert profit_floor(D("10"), fees, D("0"), maker_buy=False, maker_sell=False) == D("10.040")


@pytest.mark.parametrize("entry", ["0.0123", "1", "9.87", "26.13", "61837.64"])
def test_given_a_fill_at_the_floor_then_profit_after_fees_is_about_min_profit(entry: str) -> None:
    fees, min_profit, qty, e = VIP0, D("0.01"), D("3"), D(entry)
    floor = profit_floor(e, fees, min_profit)
    spent, received = e * qty, floor * qty
    pnl = realized_pnl(spent, received, spent * fees.rate(True) + received * fees.rate(True))
    # first-order formula: short of min_profit by fee x (fees + margin) only
    assert spent * min_profit * D("0.998") <= pnl <= spent * min_profit


@pytest.mark.parametrize("entry", ["0", "-1"])
def test_given_non_positive_entry_then_value_error(entry: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        profit_floor(D(entry), VIP0, D("0.01"))


# --- commissions ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("asset", "net"),
    [("TRUMP", "0.999"), ("USDC", "1.000"), ("BNB", "1.000")],
)
def test_given_a_buy_commission_then_only_base_asset_commission_reduces_what_can_be_sold(
    asset: str, net: str
) -> None:
    assert net_base_quantity(D("1.000"), D("0.001"), asset, "TRUMP") == D(net)


@pytest.mark.parametrize(
    ("commission", "asset", "bnb_price", "expected"),
    [
        ("0.0101", "USDC", None, "0.0101"),  # quote: as is
        ("0.01", "TRUMP", None, "0.12"),  # base: at the trade price 12
        ("0.0101", "BNB", "600", "6.06"),  # BNB: at the BNB price in USDC
    ],
)
def test_given_a_commission_then_it_is_valued_in_the_quote_asset(
    commission: str, asset: str, bnb_price: str | None, expected: str
) -> None:
    bnb = None if bnb_price is None else D(bnb_price)
    value = commission_in_quote(D(commission), asset, D("12"), "TRUMP", "USDC", bnb_price=bnb)
    assert value == D(expected)


def test_given_bnb_is_the_base_asset_then_trade_price_values_it() -> None:
    assert commission_in_quote(D("0.001"), "BNB", D("600"), "BNB", "USDC") == D("0.6")


def test_given_bnb_commission_without_bnb_price_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="BNB"):
        commission_in_quote(D("0.001"), "BNB", D("12"), "TRUMP", "USDC")


def test_given_an_unrelated_commission_asset_then_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="'ETH'"):
        commission_in_quote(D("0.001"), "ETH", D("12"), "TRUMP", "USDC", bnb_price=D("600"))


def _fill(trade_id: int, commission: str, asset: str) -> Fill:
    return Fill(
        symbol="TRUMPUSDC",
        order_id=1,
        client_order_id="fb-c000001-B1",
        trade_id=trade_id,
        side=Side.BUY,
        price=D("10"),
        qty=D("0.5"),
        quote_qty=D("5"),
        commission=D(commission),
        commission_asset=asset,
        is_maker=True,
        time_ms=1,
    )


def test_given_fills_then_commissions_are_summed_per_asset() -> None:
    fills = [_fill(1, "0.0005", "TRUMP"), _fill(2, "0.0004", "TRUMP"), _fill(3, "0.01", "BNB")]
    assert commissions_by_asset(fills) == {"TRUMP": D("0.0009"), "BNB": D("0.01")}
    assert commissions_by_asset([]) == {}


def test_given_a_closed_cycle_then_pnl_is_received_minus_spent_minus_quote_fees() -> None:
    # Given a buy of 1.000 TRUMP for 10 USDC paying 0.001 TRUMP commission
    sellable = net_base_quantity(D("1.000"), D("0.001"), "TRUMP", "TRUMP")
    # When the 0.999 left are sold at 10.12 paying 0.1 % in USDC
    received = sellable * D("10.12")
    sell_fee = commission_in_quote(received * D("0.001"), "USDC", D("10.12"), "TRUMP", "USDC")
    # Then the base commission is not counted twice: only the quote fee is subtracted
    assert realized_pnl(D("10"), received, sell_fee) == D("10.10988") - D("10") - D("0.01010988")
