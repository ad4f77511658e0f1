"""The risk manager: max slippage over the fair price, liquidity at the order's price,
size bounded by a share of that depth; and the book depth it reads."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.domain.errors import GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import BookDepth, BookTop, OrderRequest, Side
from flipbot.domain.risk import RiskRules, manage_buy

D = Decimal


def _book(
    *bids: tuple[str, str], asks: tuple[tuple[str, str], ...] = (("10.02", "40"),)
) -> BookDepth:
    return BookDepth(
        bids=tuple((D(p), D(q)) for p, q in bids), asks=tuple((D(p), D(q)) for p, q in asks)
    )


DEEP = _book(("10.00", "30"), ("9.99", "20"), ("9.98", "50"), ("9.90", "100"))


def _buy(price: str = "10.00", quantity: str = "0.999") -> OrderRequest:
    return OrderRequest("TRUMPUSDC", Side.BUY, D(price), D(quantity), "fb-c000001-B1")


def test_the_depth_at_a_price_counts_from_the_best_level_down_to_the_band() -> None:
    assert DEEP.depth_at(Side.BUY, D("10.00"), D("0.002")) == D("100")  # 10.00 .. 9.98
    assert DEEP.depth_at(Side.BUY, D("9.95"), D("0.005")) == D("100")  # 9.90 < 9.90025
    assert DEEP.depth_at(Side.BUY, D("9.94"), D("0.005")) == D("200")  # down to 9.8903
    assert DEEP.depth_at(Side.BUY, D("10.01"), D("0.001")) == D("50")  # inside the spread
    asks = _book(asks=(("10.02", "5"), ("10.05", "7"), ("10.20", "9")))
    assert asks.depth_at(Side.SELL, D("10.02"), D("0.005")) == D("12")


def test_the_top_and_the_imbalance_of_the_book() -> None:
    assert DEEP.top() == BookTop(bid=D("10.00"), bid_qty=D("30"), ask=D("10.02"), ask_qty=D("40"))
    assert DEEP.imbalance() == D("0.6667")  # (200 - 40) / 240
    assert _book(asks=()).top() is None
    assert BookDepth((), ()).imbalance() is None


def test_a_buy_within_every_limit_goes_as_it_is(rules: SymbolRules) -> None:
    checked = manage_buy(_buy(), DEEP, D("10.00"), D("9.80"), rules, RiskRules())
    assert checked.order == _buy()
    assert checked.changed == ""
    assert checked.notes["risk.depth_qty"] == "100"
    assert checked.notes["risk.slippage_cap"] == "10.02"


def test_a_buy_over_the_fair_price_plus_slippage_is_lowered_to_the_cap(rules: SymbolRules) -> None:
    # fair 9.95: cap 9.95 x 1.002 = 9.9699 -> 9.96 at the tick
    checked = manage_buy(_buy(), DEEP, D("9.95"), D("9.80"), rules, RiskRules())
    assert checked.order.price == D("9.96")
    assert checked.order.quantity == D("1.003")  # 9.99 USDC at the lower price
    assert checked.order.quantity * checked.order.price <= D("10.00") * D("0.999")
    assert "price 10.00 capped at 9.96 (fair 9.95)" in checked.changed


def test_a_market_run_away_from_its_fair_price_refuses_the_buy(rules: SymbolRules) -> None:
    with pytest.raises(
        GuardRejected, match=r"slippage: buy at 10.00 .* = 9.59, and 9.59 is under the lowest"
    ):
        manage_buy(_buy(), DEEP, D("9.58"), D("9.80"), rules, RiskRules())


def test_a_buy_larger_than_its_share_of_the_depth_is_cut(rules: SymbolRules) -> None:
    thin = _book(("10.00", "6"), ("9.99", "4"))  # 10 near the price: at most 1.0
    checked = manage_buy(_buy(quantity="1.5"), thin, D("10.00"), D("9.80"), rules, RiskRules())
    assert checked.order.quantity == D("1.000")
    assert "quantity 1.5 cut to 1.000: 10% of the 10 bid near 10.00" in checked.changed


def test_a_cut_under_the_minimum_notional_refuses_the_buy(rules: SymbolRules) -> None:
    thin = _book(("10.00", "3"))  # 10 % is 0.3: 3 USDC, under the 5 USDC minimum
    with pytest.raises(GuardRejected, match=r"liquidity: 0\.999 is over 10% of the 3 bid"):
        manage_buy(_buy(), thin, D("10.00"), D("9.80"), rules, RiskRules())


def test_an_empty_bid_side_refuses_the_buy(rules: SymbolRules) -> None:
    with pytest.raises(GuardRejected, match="liquidity: the book shows no bids"):
        manage_buy(_buy(), _book(), D("10.00"), D("9.80"), rules, RiskRules())


def test_each_limit_can_be_off(rules: SymbolRules) -> None:
    off = RiskRules(max_slippage=None, max_depth_share=None)
    thin = _book(("10.00", "3"))
    checked = manage_buy(_buy(), thin, D("9.00"), D("9.80"), rules, off)
    assert checked.order == _buy()
    assert "risk.slippage_cap" not in checked.notes


def test_a_changed_buy_is_checked_against_the_exchanges_filters_again(rules: SymbolRules) -> None:
    # 0.5 x 10.00 = 5.00 passes the 5 USDC minimum; cut to 10 % of 4.9 = 0.49, it does not
    thin = _book(("10.00", "4.9"))
    with pytest.raises(GuardRejected, match="liquidity"):
        manage_buy(_buy(quantity="0.5"), thin, D("10.00"), D("9.80"), rules, RiskRules())
    # capped at 9.96, 0.6 x 9.99 = 5.994 buys 0.601 (5.98596): still over the minimum
    capped = manage_buy(_buy("9.99", "0.6"), DEEP, D("9.95"), D("9.80"), rules, RiskRules())
    assert (capped.order.price, capped.order.quantity) == (D("9.96"), D("0.601"))
    # 0.501 x 9.99 = 5.005 buys 0.502 at 9.96: 4.99992, under the minimum notional
    with pytest.raises(GuardRejected, match=r"min_notional: 0\.502 x 9\.96"):
        manage_buy(_buy("9.99", "0.501"), DEEP, D("9.95"), D("9.80"), rules, RiskRules())


def test_a_capped_buy_keeps_within_the_lots_maximum_quantity(rules: SymbolRules) -> None:
    from dataclasses import replace

    small_lots = replace(rules, max_qty=D("1.000"))
    checked = manage_buy(
        _buy("10.00", "1.000"), DEEP, D("9.95"), D("9.80"), small_lots, RiskRules()
    )
    assert (checked.order.price, checked.order.quantity) == (D("9.96"), D("1.000"))
