"""The risk manager: what a checked buy order must also respect, whoever priced it.

The guards (:mod:`flipbot.domain.guards`) decide whether an answer is acceptable at all;
the risk manager then fits the buy to the market, with the figures of the seed's adaptive
design as template parameters:

* **Max slippage** (``RiskMaxSlippage``, 0.2 %): a buy never pays more than that over the
  fair price, the mid of the live book: in a wide spread, a higher price is lowered to
  ``fair x (1 + max_slippage)``, on the tick, and the quantity raised to spend the same
  quote. When that cap is under the lowest price the guards allow the buy is refused
  (``slippage``) and the leg asks again (the mid never is: it is above the best bid).
* **Liquidity** (``RiskDepthBand``, 0.5 %): the book's depth at the order's price is what
  the top 10 levels on the order's side hold from the best price down to the order's
  price less the band. An empty side refuses the buy (``liquidity``).
* **Size by depth** (``RiskMaxDepthShare``, 10 %): the quantity is at most that share of
  the depth, cut down to the lot step; a cut order under the exchange's minimum refuses
  the buy (``liquidity``). A changed order is checked against the exchange's filters
  again (``min_notional``, ``filters``).
* **Min margin after fees** (``RiskMinMargin``, 0.3 %) is applied where every sell is
  bounded: the profit floor's margin is the larger of ``MinProfit`` and it.

Sells are not resized or moved: a sell must sell what is held, and its lower bound is
the profit floor. Each figure can be ``off``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from flipbot.domain.errors import GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import check_filters
from flipbot.domain.model import BookDepth, OrderRequest, Side

__all__ = ["RiskCheck", "RiskRules", "manage_buy"]


@dataclass(frozen=True, slots=True)
class RiskRules:
    """The risk manager's figures (``None``: that check is off)."""

    max_slippage: Decimal | None = Decimal("0.002")
    min_margin: Decimal | None = Decimal("0.003")
    depth_band: Decimal = Decimal("0.005")
    max_depth_share: Decimal | None = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class RiskCheck:
    """The buy as the risk manager lets it go, and what it found, for the audit."""

    order: OrderRequest
    notes: dict[str, str]

    @property
    def changed(self) -> str:
        """What was changed, in words ("" when nothing)."""
        return "; ".join(v for k, v in sorted(self.notes.items()) if k.endswith(".change"))


def manage_buy(
    order: OrderRequest,
    depth: BookDepth,
    fair: Decimal,
    lowest_price: Decimal,
    rules: SymbolRules,
    risk: RiskRules,
) -> RiskCheck:
    """Fit a guarded buy ``order`` to the market (see the module docstring).

    ``fair`` is the fair price (the consult passes the book's mid), ``lowest_price`` the
    lowest buy price the guards allow. Raises :class:`GuardRejected` (``slippage`` or
    ``liquidity``).
    """
    notes: dict[str, str] = {"risk.fair": str(fair)}
    price, quantity = order.price, order.quantity
    if risk.max_slippage is not None and fair > 0:
        cap = rules.floor_price(fair * (1 + risk.max_slippage))
        notes["risk.slippage_cap"] = str(cap)
        if price > cap:
            if cap < lowest_price:
                raise GuardRejected(
                    "slippage",
                    f"buy at {price} is over the fair price {fair} + {risk.max_slippage:.1%} "
                    f"= {cap}, and {cap} is under the lowest allowed buy {lowest_price}",
                )
            notes["risk.slippage.change"] = f"price {price} capped at {cap} (fair {fair})"
            # the same quote at the lower price: the quantity grows, the spend does not
            quantity = rules.size_buy(price * quantity, cap)
            price = cap
    on_book = depth.depth_at(Side.BUY, price, risk.depth_band)
    notes["risk.depth_qty"] = str(on_book)
    if on_book <= 0:
        raise GuardRejected(
            "liquidity",
            f"the book shows no bids from the best down to {price} less {risk.depth_band:.1%}",
        )
    if risk.max_depth_share is not None:
        allowed = rules.floor_qty(on_book * risk.max_depth_share)
        notes["risk.depth_share"] = str(round(quantity / on_book, 6))
        if quantity > allowed:
            if allowed < rules.min_qty or allowed * price < rules.min_notional:
                raise GuardRejected(
                    "liquidity",
                    f"{quantity} is over {risk.max_depth_share:.0%} of the {on_book} bid "
                    f"near {price}, and {allowed} is under the exchange's minimum",
                )
            notes["risk.size.change"] = (
                f"quantity {quantity} cut to {allowed}: "
                f"{risk.max_depth_share:.0%} of the {on_book} bid near {price}"
            )
            quantity = allowed
    if (price, quantity) != (order.price, order.quantity):
        check_filters(rules, Side.BUY, price, quantity)
    return RiskCheck(replace(order, price=price, quantity=quantity), notes)
