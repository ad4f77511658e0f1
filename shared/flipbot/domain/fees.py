"""Commission rates, the profit floor and fee accounting.

Rates are fractions of the traded notional (``0.001`` = 0.1 %). Binance charges, per
trade, ``standard + tax + special`` commission; paying with BNB reduces the standard
part only: ``standard * (1 - discount) + tax + special``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from flipbot.domain.errors import ConfigurationError
from flipbot.domain.filters import ceil_to_step
from flipbot.domain.model import Fill

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Maker and taker commission rates of one symbol for this account.

    ``maker`` and ``taker`` are the full rates (standard + tax + special).
    ``undiscounted_maker`` / ``undiscounted_taker`` are the parts of them the BNB discount
    does not reduce (tax + special); zero when the whole rate is standard.
    ``bnb_discount`` is the fraction taken off the standard rate when ``pay_with_bnb``.
    """

    maker: Decimal
    taker: Decimal
    bnb_discount: Decimal = Decimal("0.25")
    pay_with_bnb: bool = False
    undiscounted_maker: Decimal = _ZERO
    undiscounted_taker: Decimal = _ZERO

    @classmethod
    def from_commission_payload(
        cls, payload: Mapping[str, Any], *, pay_with_bnb: bool | None = None
    ) -> FeeSchedule:
        """Parse ``GET /api/v3/account/commission``.

        The three blocks (``standardCommission``, ``taxCommission``,
        ``specialCommission``) add up. Paying with BNB defaults to what the ``discount``
        block says (enabled for the account and the symbol, discount asset BNB); pass
        ``pay_with_bnb`` to override it, e.g. when the account holds no BNB.
        """
        try:
            standard = payload["standardCommission"]
            extra = [payload.get("taxCommission") or {}, payload.get("specialCommission") or {}]
            maker_extra = sum((Decimal(block.get("maker", "0")) for block in extra), _ZERO)
            taker_extra = sum((Decimal(block.get("taker", "0")) for block in extra), _ZERO)
            maker = Decimal(standard["maker"]) + maker_extra
            taker = Decimal(standard["taker"]) + taker_extra
            discount = payload.get("discount") or {}
            rate = Decimal(discount.get("discount", "0"))
        except (KeyError, TypeError, InvalidOperation) as exc:
            raise ConfigurationError(f"malformed commission payload: {payload!r}") from exc
        enabled = (
            bool(discount.get("enabledForAccount"))
            and bool(discount.get("enabledForSymbol"))
            and discount.get("discountAsset", "BNB") == "BNB"
        )
        return cls(
            maker=maker,
            taker=taker,
            bnb_discount=rate,
            pay_with_bnb=enabled if pay_with_bnb is None else pay_with_bnb,
            undiscounted_maker=maker_extra,
            undiscounted_taker=taker_extra,
        )

    def rate(self, is_maker: bool) -> Decimal:
        """The effective rate of one trade, the BNB discount applied when paying with BNB."""
        full, fixed = (
            (self.maker, self.undiscounted_maker)
            if is_maker
            else (self.taker, self.undiscounted_taker)
        )
        if not self.pay_with_bnb:
            return full
        return (full - fixed) * (_ONE - self.bnb_discount) + fixed

    def round_trip(self, maker_buy: bool = True, maker_sell: bool = True) -> Decimal:
        """The rate of one buy plus one sell."""
        return self.rate(maker_buy) + self.rate(maker_sell)


def profit_floor(
    entry_price: Decimal,
    fees: FeeSchedule,
    min_profit: Decimal,
    tick_size: Decimal | None = None,
    *,
    maker_buy: bool = True,
    maker_sell: bool = True,
) -> Decimal:
    """The lowest acceptable sell price: ``entry * (1 + round_trip + min_profit)``.

    ``round_trip`` is ``fees.round_trip(maker_buy, maker_sell)``. The fee term is
    first-order: the exact break-even differs by a product of two rates (about 1e-6 at
    0.1 % fees), far below any sensible ``min_profit``. Rounded up to ``tick_size`` when
    given, so the floor is itself a valid price that still clears the target.
    """
    if entry_price <= 0:
        raise ValueError(f"entry price must be positive, got {entry_price}")
    floor = entry_price * (_ONE + fees.round_trip(maker_buy, maker_sell) + min_profit)
    return ceil_to_step(floor, tick_size) if tick_size else floor


def net_base_quantity(
    qty: Decimal, commission: Decimal, commission_asset: str, base_asset: str
) -> Decimal:
    """What is left to sell after a buy: commission paid in the base asset is deducted.

    Commission in the quote asset or in BNB leaves the bought quantity untouched.
    """
    return qty - commission if commission_asset == base_asset else qty


def commission_in_quote(
    commission: Decimal,
    commission_asset: str,
    price: Decimal,
    base_asset: str,
    quote_asset: str,
    *,
    bnb_price: Decimal | None = None,
) -> Decimal:
    """Value a commission in the quote asset.

    The base asset is valued at the trade ``price``; BNB (when it is neither base nor
    quote) at ``bnb_price``, the price of one BNB in the quote asset.
    Raises :class:`ConfigurationError` when the asset cannot be valued.
    """
    if commission_asset == quote_asset:
        return commission
    if commission_asset == base_asset:
        return commission * price
    if commission_asset == "BNB":
        if bnb_price is None:
            raise ConfigurationError(
                f"commission of {commission} BNB needs a BNB price in {quote_asset}"
            )
        return commission * bnb_price
    raise ConfigurationError(f"cannot value commission asset {commission_asset!r} in {quote_asset}")


def commissions_by_asset(fills: Iterable[Fill]) -> dict[str, Decimal]:
    """Total commission of some fills, per commission asset."""
    totals: dict[str, Decimal] = {}
    for fill in fills:
        totals[fill.commission_asset] = totals.get(fill.commission_asset, _ZERO) + fill.commission
    return totals


def realized_pnl(quote_spent: Decimal, quote_received: Decimal, fees_quote: Decimal) -> Decimal:
    """Profit of a closed cycle in the quote asset: ``received - spent - fees``.

    ``quote_spent`` and ``quote_received`` are gross (the orders' cumulative quote
    quantities). ``fees_quote`` counts the commissions the quote amounts do not already
    reflect: those paid in the quote asset or in BNB. A buy commission paid in the base
    asset is already counted through the smaller quantity sold; do not add it again.
    """
    return quote_received - quote_spent - fees_quote
