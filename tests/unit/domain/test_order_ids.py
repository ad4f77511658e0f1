"""Client order ids: the stack's own, another stack's on the same account, manual ones."""

from __future__ import annotations

import re

import pytest

from flipbot.domain.model import Side
from flipbot.domain.order_ids import (
    BINANCE_CLIENT_ORDER_ID,
    DEFAULT_PREFIX,
    PREFIX_PATTERN,
    client_order_id,
    follow_up_client_order_id,
    is_system_client_order_id,
    longest_cycle_order_id,
    other_stack_prefix,
    parse_client_order_id,
)

OURS, THEIRS = "fb1a2b3c4d", "fb9f8e7d6c"
LONGEST_PREFIX = "fb" + "9" * 13
LARGEST_ORDER_ID = 2**63 - 1  # Binance's order ids are 64-bit: 19 digits


def test_given_a_prefix_then_a_cycle_s_ids_and_a_follow_up_sell_carry_it() -> None:
    assert client_order_id("c000001", Side.BUY, 1, prefix=OURS) == "fb1a2b3c4d-c000001-B1"
    assert client_order_id("c000012", "SELL", 3, prefix=OURS) == "fb1a2b3c4d-c000012-S3"
    assert follow_up_client_order_id(12345, prefix=OURS) == "fb1a2b3c4d-m12345"
    # without a stack (local tools) the ids read as they always have
    assert client_order_id("c000001", Side.BUY, 1, prefix=DEFAULT_PREFIX) == "fb-c000001-B1"
    assert follow_up_client_order_id(7, prefix=DEFAULT_PREFIX) == "fb-m7"


def test_the_longest_ids_are_within_binance_s_rule() -> None:
    # Given the longest prefix allowed and the largest order id Binance can give
    assert re.fullmatch(PREFIX_PATTERN, LONGEST_PREFIX)
    assert not re.fullmatch(PREFIX_PATTERN, LONGEST_PREFIX + "9")
    follow_up = follow_up_client_order_id(LARGEST_ORDER_ID, prefix=LONGEST_PREFIX)
    cycle = client_order_id("c999999", Side.SELL, 99, prefix=LONGEST_PREFIX)
    # Then both fit ^[A-Za-z0-9_-]{1,36}$, the follow-up sell exactly
    assert len(follow_up) == 36
    assert BINANCE_CLIENT_ORDER_ID.match(follow_up)
    assert BINANCE_CLIENT_ORDER_ID.match(cycle)
    # and a deployed stack's (fb + 8 hex digits) leaves room to spare
    assert len(follow_up_client_order_id(LARGEST_ORDER_ID, prefix=OURS)) == 31


def test_given_the_stack_s_own_cycle_id_then_it_parses() -> None:
    assert parse_client_order_id("fb1a2b3c4d-c000001-B1", prefix=OURS) == ("c000001", Side.BUY, 1)
    assert parse_client_order_id("fb1a2b3c4d-c000012-S10", prefix=OURS) == (
        "c000012",
        Side.SELL,
        10,
    )
    assert parse_client_order_id("fb-c000001-B1", prefix="fb") == ("c000001", Side.BUY, 1)


@pytest.mark.parametrize(
    "coid",
    ["fb9f8e7d6c-c000001-B1", "fb-c000001-B1", "fb1a2b3c4d-m12345", "web_abc", "fb1a2b3c4d-x"],
)
def test_given_any_other_id_then_it_does_not_parse_as_a_cycle_s(coid: str) -> None:
    assert parse_client_order_id(coid, prefix=OURS) is None


@pytest.mark.parametrize(
    ("coid", "ours", "theirs"),
    [
        ("fb1a2b3c4d-c000001-B1", True, ""),
        ("fb1a2b3c4d-m12345", True, ""),
        ("fb9f8e7d6c-c000001-B1", False, THEIRS),  # another stack's cycle
        ("fb9f8e7d6c-m12345", False, THEIRS),  # another stack's follow-up sell
        ("fb-c000001-S2", False, "fb"),  # a stack without its own prefix
        ("web_5f1c0d2e", False, ""),  # the Binance app: manual
        ("ios_a1b2c3", False, ""),
        ("paper00000000000000001", False, ""),
        ("fb9f8e7d6c-hand-made", False, ""),  # not a stack's shape: manual
        ("x-fb9f8e7d6c-c000001-B1", False, ""),
    ],
)
def test_given_an_id_then_it_is_the_stack_s_another_stack_s_or_manual(
    coid: str, ours: bool, theirs: str
) -> None:
    assert is_system_client_order_id(coid, prefix=OURS) is ours
    assert other_stack_prefix(coid, prefix=OURS) == theirs


def test_given_the_default_prefix_then_a_deployed_stack_s_ids_are_another_stack_s() -> None:
    assert not is_system_client_order_id("fb1a2b3c4d-c000001-B1", prefix=DEFAULT_PREFIX)
    assert other_stack_prefix("fb1a2b3c4d-c000001-B1", prefix=DEFAULT_PREFIX) == OURS
    assert other_stack_prefix("fb-c000001-B1", prefix=DEFAULT_PREFIX) == ""


def test_given_another_symbol_s_cycle_then_its_ids_carry_the_symbol_and_parse_back() -> None:
    coid = client_order_id("BTCUSDC_c000004", Side.SELL, 2, prefix=OURS)
    assert coid == "fb1a2b3c4d-BTCUSDC_c000004-S2"
    assert parse_client_order_id(coid, prefix=OURS) == ("BTCUSDC_c000004", Side.SELL, 2)
    assert is_system_client_order_id(coid, prefix=OURS)
    # another stack's orders on another symbol are still another stack's
    assert other_stack_prefix(f"{THEIRS}-BTCUSDC_c000004-S2", prefix=OURS) == THEIRS
    assert other_stack_prefix(f"{THEIRS}-BTCUSDC_m991", prefix=OURS) == THEIRS
    assert parse_client_order_id(f"{THEIRS}-BTCUSDC_c000004-S2", prefix=OURS) is None
    # a follow-up sell on another symbol names it: order ids are numbered per symbol
    follow_up = follow_up_client_order_id(991, prefix=OURS, symbol_part="BTCUSDC")
    assert follow_up == "fb1a2b3c4d-BTCUSDC_m991"
    assert parse_client_order_id(follow_up, prefix=OURS) is None  # not a cycle's order


def test_the_longest_cycle_order_id_of_a_symbol_is_what_must_fit() -> None:
    assert longest_cycle_order_id(OURS, "") == "fb1a2b3c4d-c999999-B999"
    longest = longest_cycle_order_id(OURS, "TRUMPUSDC")
    assert longest == "fb1a2b3c4d-TRUMPUSDC_c999999-B999"
    assert BINANCE_CLIENT_ORDER_ID.match(longest)
    assert not BINANCE_CLIENT_ORDER_ID.match(longest_cycle_order_id(LONGEST_PREFIX, "TRUMPUSDC"))
