"""Hard limits applied in code to every decision before an order is placed.

A decision maker (the AI or the offline strategy) only proposes; :func:`check_buy` and
:func:`check_sell` turn an acceptable proposal into an :class:`OrderRequest` or raise
:class:`GuardRejected` naming the guard and the offending value. Guard names:
``action``, ``confidence``, ``price``, ``book``, ``spread``, ``price_band``,
``profit_floor``, ``balance``, ``quantity``, ``min_notional`` and ``filters`` (a symbol
filter failed; the message is Binance's, followed by the offending value).

Every price from outside (the decision's, the book's) is checked finite and within
:data:`PRICE_RANGE` before any arithmetic, so a value such as ``1e308`` or ``1e-308``
is refused by its guard (``price``, ``book``) rather than failing a rounding step.

The one exit below the profit floor is a stop-loss, and only when one is configured:
:func:`stop_loss_triggered` says when, :func:`stop_exit_price` at what price, and
:func:`check_sell` takes ``below_floor=True`` for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from flipbot.domain.decision import Decision
from flipbot.domain.errors import FilterViolation, GuardRejected
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import BookTop, OrderRequest, Side

_ONE = Decimal(1)

PRICE_RANGE = (Decimal("1e-8"), Decimal("1e9"))
"""The prices any spot market can have: Binance quotes prices with at most 8 decimals,
and none near a billion. Inside it, rounding to any tick stays exact."""

STRATEGY_STOP_LOSS: dict[str, Decimal] = {"ma-cross": Decimal("0.01")}
"""The stop-loss a strategy brings with it when the ``StopLoss`` parameter is left empty.
Every other strategy (and ``ai``, the default) has none."""


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The bot's hard limits.

    * ``quote_per_cycle``: the most quote asset one buy may spend.
    * ``min_confidence``: decisions below it are refused.
    * ``min_profit``: the margin over entry plus fees the floor guarantees (fraction).
    * ``price_band``: how far below the best bid a buy may rest (fraction of the bid).
    * ``max_price_deviation``: how far above the mid a sell may rest (fraction of the
      mid); a sell at the profit floor is always allowed, however far the market fell.
    * ``stop_loss``: sell below entry by this fraction; ``None`` (default) never does.
    """

    quote_per_cycle: Decimal = Decimal("10")
    min_confidence: float = 0.8
    min_profit: Decimal = Decimal("0.01")
    price_band: Decimal = Decimal("0.02")
    max_price_deviation: Decimal = Decimal("0.10")
    stop_loss: Decimal | None = None


def check_buy(
    decision: Decision,
    book: BookTop,
    rules: SymbolRules,
    limits: RiskLimits,
    free_quote: Decimal,
    *,
    symbol: str,
    client_order_id: str,
    avg_price: Decimal | None = None,
) -> OrderRequest:
    """Turn a BUY decision into a resting maker order, or raise :class:`GuardRejected`.

    The price is floored to the tick, must stay below the best ask (a maker order) and
    no more than ``price_band`` below the best bid. The quantity spends
    ``min(quote_per_cycle, free_quote)`` at that price, rounded down to the step.
    ``avg_price`` (the exchange's average price) enables the ``PERCENT_PRICE`` checks.
    """
    _check_common(decision, Side.BUY, limits)
    _check_book(book)
    price = rules.floor_price(decision.base_price)
    if price <= 0:
        raise GuardRejected("price", f"{decision.base_price} floors to {price} at the tick")
    if price >= book.ask:
        raise GuardRejected("spread", f"buy price {price} >= best ask {book.ask}")
    lowest = book.bid * (_ONE - limits.price_band)
    if price < lowest:
        raise GuardRejected(
            "price_band",
            f"buy price {price} < best bid {book.bid} - {limits.price_band:%} = {lowest}",
        )
    if free_quote <= 0:
        raise GuardRejected("balance", f"free {rules.quote_asset} is {free_quote}")
    spend = min(limits.quote_per_cycle, free_quote)
    quantity = rules.size_buy(spend, price)
    if quantity <= 0:
        raise GuardRejected("quantity", f"{spend} {rules.quote_asset} buys nothing at {price}")
    _check_notional(rules, price, quantity)
    _validate(rules, Side.BUY, price, quantity, avg_price)
    return OrderRequest(symbol, Side.BUY, price, quantity, client_order_id)


def check_sell(
    decision: Decision,
    book: BookTop,
    rules: SymbolRules,
    limits: RiskLimits,
    held_qty: Decimal,
    floor_price: Decimal,
    *,
    symbol: str,
    client_order_id: str,
    avg_price: Decimal | None = None,
    below_floor: bool = False,
) -> OrderRequest:
    """Turn a SELL decision into a resting maker order, or raise :class:`GuardRejected`.

    The price is rounded up to the tick and must be at least ``floor_price``, above the
    best bid (a maker order) and at most ``max(mid * (1 + max_price_deviation),
    floor_price)``: an absurdly high ask never fills, but the floor itself stays allowed
    when the market has fallen far below it. The quantity is ``held_qty`` rounded down
    to the step.

    ``below_floor=True`` is the stop-loss exit: the floor does not apply, and it is
    refused unless ``limits.stop_loss`` is set. The price must still rest above the best
    bid, so a stop-loss sells at the market's ask, never into the bids.
    """
    _check_common(decision, Side.SELL, limits)
    _check_book(book)
    if below_floor and limits.stop_loss is None:
        raise GuardRejected("stop_loss", "a sell below the floor needs a configured stop-loss")
    price = rules.ceil_price(decision.base_price)
    if price < floor_price and not below_floor:
        raise GuardRejected("profit_floor", f"sell price {price} < floor {floor_price}")
    if price <= book.bid:
        raise GuardRejected("spread", f"sell price {price} <= best bid {book.bid}")
    highest = max(book.mid * (_ONE + limits.max_price_deviation), floor_price)
    if price > highest:
        raise GuardRejected(
            "price_band",
            f"sell price {price} > max(mid {book.mid} + {limits.max_price_deviation:%}, "
            f"floor {floor_price}) = {highest}",
        )
    quantity = rules.floor_qty(held_qty)
    if quantity <= 0:
        raise GuardRejected("quantity", f"held {held_qty} rounds down to {quantity}")
    _check_notional(rules, price, quantity)
    _validate(rules, Side.SELL, price, quantity, avg_price)
    return OrderRequest(symbol, Side.SELL, price, quantity, client_order_id)


def sell_target_price(
    entry_price: Decimal,
    fee_rate_round_trip: Decimal,
    target_profit: Decimal,
    floor_price: Decimal,
    book: BookTop,
    rules: SymbolRules,
    limits: RiskLimits,
) -> Decimal:
    """Where a sell aims first: ``entry × (1 + fees + target_profit)`` rounded up to the
    tick, but no higher than :func:`check_sell` lets a sell rest (``mid × (1 +
    max_price_deviation)``, rounded down) and never under the floor or at the bid."""
    target = rules.ceil_price(entry_price * (_ONE + fee_rate_round_trip + target_profit))
    highest = rules.floor_price(book.mid * (_ONE + limits.max_price_deviation))
    return max(min(target, highest), floor_price, book.bid + rules.tick_size)


def stop_loss_triggered(entry_price: Decimal, last_price: Decimal, limits: RiskLimits) -> bool:
    """True when ``last_price <= entry * (1 - stop_loss)``; never without a stop-loss."""
    if limits.stop_loss is None:
        return False
    return last_price <= entry_price * (_ONE - limits.stop_loss)


def stop_price(entry_price: Decimal, limits: RiskLimits) -> Decimal | None:
    """The price at or under which the stop-loss fires: ``entry * (1 - stop_loss)``."""
    if limits.stop_loss is None:
        return None
    return entry_price * (_ONE - limits.stop_loss)


def stop_exit_price(book: BookTop, rules: SymbolRules) -> Decimal:
    """Where a stop-loss sell rests: at the best ask, the lowest maker price there is.

    When the ask is one tick above the bid that is the same as ``bid + tick``; a wider
    spread keeps the order at the front of the asks instead of giving the spread away.
    """
    _check_book(book)
    return max(rules.ceil_price(book.ask), book.bid + rules.tick_size)


def _check_common(decision: Decision, side: Side, limits: RiskLimits) -> None:
    if decision.action != side.value:
        raise GuardRejected("action", f"expected {side.value}, got {decision.action}")
    if not decision.confidence >= limits.min_confidence:  # NaN-safe
        raise GuardRejected(
            "confidence", f"{decision.confidence} < minimum {limits.min_confidence}"
        )
    price = decision.base_price
    if not _is_price(price):
        low, high = PRICE_RANGE
        raise GuardRejected("price", f"{price} is not a positive finite price in [{low}, {high}]")


def _check_book(book: BookTop) -> None:
    if not (_is_price(book.bid) and _is_price(book.ask) and book.bid < book.ask):
        raise GuardRejected("book", f"unusable book: bid {book.bid}, ask {book.ask}")


def _is_price(value: Decimal) -> bool:
    low, high = PRICE_RANGE
    return value.is_finite() and low <= value <= high


def check_filters(rules: SymbolRules, side: Side, price: Decimal, quantity: Decimal) -> None:
    """The exchange's checks of a LIMIT order at ``price`` for ``quantity`` (the minimum
    notional and the symbol's filters); raises :class:`GuardRejected` as the guards do."""
    _check_notional(rules, price, quantity)
    _validate(rules, side, price, quantity, None)


def _check_notional(rules: SymbolRules, price: Decimal, quantity: Decimal) -> None:
    notional = price * quantity
    if rules.notional_filter is not None and notional < rules.min_notional:
        raise GuardRejected(
            "min_notional",
            f"{quantity} x {price} = {notional} < minNotional {rules.min_notional}",
        )


def _validate(
    rules: SymbolRules, side: Side, price: Decimal, qty: Decimal, avg_price: Decimal | None
) -> None:
    try:
        rules.validate(side, price, qty, avg_price=avg_price)
    except FilterViolation as exc:
        raise GuardRejected("filters", f"{exc} ({exc.value})") from exc
