"""A withdrawal from the paper account: only what is free leaves; the account says so."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot_dev.paper import PaperExchange

D = Decimal


def test_given_base_free_and_locked_when_withdrawn_then_only_the_free_part_leaves(
    exchange: PaperExchange,
) -> None:
    # Given: TRUMP in the account, 1 of it locked by a resting sell
    exchange.place_order("TRUMPUSDC", "SELL", "LIMIT", "1", "10.50", "GTC", "s1")
    free, locked = exchange.balance("TRUMP")
    exchange.drain()
    # When: everything that can be withdrawn is
    taken = exchange.withdraw("TRUMP")
    # Then: the free part is gone, the locked part stays with its order
    assert taken == free
    assert exchange.balance("TRUMP") == (D(0), locked)
    update = exchange.drain()[-1]
    assert update["e"] == "outboundAccountPosition"
    assert update["B"] == [{"a": "TRUMP", "f": "0.00000000", "l": "1.00000000"}]


def test_given_more_than_is_free_when_withdrawn_then_it_is_refused_and_nothing_moves(
    exchange: PaperExchange,
) -> None:
    before = exchange.balance("TRUMP")
    with pytest.raises(ValueError, match=f"cannot withdraw 11 TRUMP: {before[0]} free"):
        exchange.withdraw("TRUMP", "11")
    assert exchange.balance("TRUMP") == before
