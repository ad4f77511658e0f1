"""Binance spot symbol filters: parsing exchangeInfo, Decimal rounding and validation.

The bot uses :class:`SymbolRules` to round and pre-validate its orders; the paper exchange
uses the same object to reject orders exactly as Binance does, so both agree by
construction.

Conventions:

* A zero bound in ``PRICE_FILTER`` or ``LOT_SIZE`` (``minPrice``, ``maxPrice``,
  ``tickSize``, ``minQty``, ``maxQty``, ``stepSize``) disables that rule, as on Binance.
* Every Decimal parsed from exchangeInfo is normalised (``"0.01000000"`` -> ``0.01``),
  and rounded prices and quantities carry the tick's or step's exponent
  (tick ``0.01``: ``26.13``, never ``26.1300000``).
* :meth:`SymbolRules.validate` checks a LIMIT order; the ``applyToMarket`` flags only
  matter for MARKET orders and are kept for completeness.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from flipbot.domain.errors import ConfigurationError, FilterViolation
from flipbot.domain.model import Side

_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class PercentPrice:
    """``PERCENT_PRICE``: ``avgPrice * multiplier_down <= price <= avgPrice * multiplier_up``."""

    multiplier_up: Decimal
    multiplier_down: Decimal
    avg_price_mins: int = 5


@dataclass(frozen=True, slots=True)
class PercentPriceBySide:
    """``PERCENT_PRICE_BY_SIDE``: the ``PERCENT_PRICE`` band, one per order side."""

    bid_multiplier_up: Decimal
    bid_multiplier_down: Decimal
    ask_multiplier_up: Decimal
    ask_multiplier_down: Decimal
    avg_price_mins: int = 1


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """The trading rules of one symbol, as exchangeInfo states them.

    ``notional_filter`` names the filter carrying ``min_notional``: ``"NOTIONAL"``,
    the legacy ``"MIN_NOTIONAL"``, or ``None`` when the symbol has neither.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = _ZERO
    min_price: Decimal = _ZERO
    max_price: Decimal = _ZERO
    step_size: Decimal = _ZERO
    min_qty: Decimal = _ZERO
    max_qty: Decimal = _ZERO
    min_notional: Decimal = _ZERO
    max_notional: Decimal | None = None
    notional_filter: str | None = "NOTIONAL"
    apply_min_notional_to_market: bool = True
    apply_max_notional_to_market: bool = False
    percent_price: PercentPrice | None = None
    percent_price_by_side: PercentPriceBySide | None = None
    max_num_orders: int | None = None

    # --- parsing ------------------------------------------------------------------------
    @classmethod
    def from_exchange_info(cls, payload: Mapping[str, Any], symbol: str) -> SymbolRules:
        """Find ``symbol`` in a ``GET /api/v3/exchangeInfo`` response and parse it.

        Raises :class:`ConfigurationError` naming the symbol when it is not listed.
        """
        wanted = symbol.upper()
        symbols = payload.get("symbols") or []
        for info in symbols:
            if str(info.get("symbol", "")).upper() == wanted:
                return cls.from_symbol_info(info)
        listed = ", ".join(str(s.get("symbol")) for s in symbols[:10]) or "none"
        raise ConfigurationError(f"symbol {symbol!r} not found in exchangeInfo (listed: {listed})")

    @classmethod
    def from_symbol_info(cls, info: Mapping[str, Any]) -> SymbolRules:
        """Parse one ``symbols[]`` entry of exchangeInfo; unknown filters are ignored."""
        try:
            symbol, base, quote = info["symbol"], info["baseAsset"], info["quoteAsset"]
        except KeyError as exc:
            raise ConfigurationError(f"exchangeInfo symbol entry lacks {exc.args[0]!r}") from exc
        fields: dict[str, Any] = {}
        has_notional = False
        for raw in info.get("filters") or []:
            kind = raw.get("filterType")
            try:
                if kind == "PRICE_FILTER":
                    fields["tick_size"] = _dec(raw["tickSize"])
                    fields["min_price"] = _dec(raw["minPrice"])
                    fields["max_price"] = _dec(raw["maxPrice"])
                elif kind == "LOT_SIZE":
                    fields["step_size"] = _dec(raw["stepSize"])
                    fields["min_qty"] = _dec(raw["minQty"])
                    fields["max_qty"] = _dec(raw["maxQty"])
                elif kind == "NOTIONAL":
                    has_notional = True
                    max_notional = _dec(raw.get("maxNotional", "0"))
                    fields["min_notional"] = _dec(raw["minNotional"])
                    fields["max_notional"] = max_notional or None
                    fields["notional_filter"] = "NOTIONAL"
                    fields["apply_min_notional_to_market"] = bool(raw.get("applyMinToMarket"))
                    fields["apply_max_notional_to_market"] = bool(raw.get("applyMaxToMarket"))
                elif kind == "MIN_NOTIONAL" and not has_notional:
                    fields["min_notional"] = _dec(raw["minNotional"])
                    fields["max_notional"] = None
                    fields["notional_filter"] = "MIN_NOTIONAL"
                    fields["apply_min_notional_to_market"] = bool(raw.get("applyToMarket"))
                elif kind == "PERCENT_PRICE":
                    fields["percent_price"] = PercentPrice(
                        multiplier_up=_dec(raw["multiplierUp"]),
                        multiplier_down=_dec(raw["multiplierDown"]),
                        avg_price_mins=int(raw.get("avgPriceMins", 5)),
                    )
                elif kind == "PERCENT_PRICE_BY_SIDE":
                    fields["percent_price_by_side"] = PercentPriceBySide(
                        bid_multiplier_up=_dec(raw["bidMultiplierUp"]),
                        bid_multiplier_down=_dec(raw["bidMultiplierDown"]),
                        ask_multiplier_up=_dec(raw["askMultiplierUp"]),
                        ask_multiplier_down=_dec(raw["askMultiplierDown"]),
                        avg_price_mins=int(raw.get("avgPriceMins", 1)),
                    )
                elif kind == "MAX_NUM_ORDERS":
                    fields["max_num_orders"] = int(raw["maxNumOrders"])
            except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
                raise ConfigurationError(f"{symbol}: malformed {kind} filter {raw!r}") from exc
        fields.setdefault("notional_filter", None)
        return cls(symbol=symbol, base_asset=base, quote_asset=quote, **fields)

    # --- rounding -----------------------------------------------------------------------
    def floor_price(self, price: Decimal) -> Decimal:
        """The largest tick multiple ``<= price`` (``price`` itself when ticks are off)."""
        return floor_to_step(price, self.tick_size)

    def ceil_price(self, price: Decimal) -> Decimal:
        """The smallest tick multiple ``>= price`` (``price`` itself when ticks are off)."""
        return ceil_to_step(price, self.tick_size)

    def floor_qty(self, qty: Decimal) -> Decimal:
        """The largest step multiple ``<= qty`` (``qty`` itself when steps are off)."""
        return floor_to_step(qty, self.step_size)

    def sellable_qty(self, held: Decimal, price: Decimal) -> Decimal:
        """What of ``held`` one limit sell at ``price`` can carry: the step multiple, or
        ``0`` when that is below the minimum notional (dust)."""
        qty = self.floor_qty(held)
        if qty <= 0 or qty * price < self.min_notional:
            return _ZERO
        return qty

    def size_buy(self, quote_amount: Decimal, price: Decimal) -> Decimal:
        """The largest step-multiple quantity with ``price * qty <= quote_amount``.

        Capped at ``max_qty`` when that bound is enabled; ``0`` when not even one step
        fits. ``price`` must be positive.
        """
        if price <= 0:
            raise ValueError(f"price must be positive, got {price}")
        if quote_amount <= 0:
            return self.floor_qty(_ZERO)
        with localcontext() as ctx:
            ctx.rounding = ROUND_FLOOR  # never exceed the exact quotient
            raw = quote_amount / price
        qty = self.floor_qty(raw)
        if self.max_qty and qty > self.max_qty:
            qty = self.floor_qty(self.max_qty)
        return qty

    # --- validation ---------------------------------------------------------------------
    def validate(
        self, side: Side | str, price: Decimal, qty: Decimal, *, avg_price: Decimal | None = None
    ) -> None:
        """Check a LIMIT order as Binance does; raise :class:`FilterViolation` on failure.

        Order of checks: ``PRICE_FILTER``, ``PERCENT_PRICE`` / ``PERCENT_PRICE_BY_SIDE``
        (only when ``avg_price`` is given), ``LOT_SIZE``, ``NOTIONAL`` / ``MIN_NOTIONAL``.
        The violation's ``value`` names the offending value and the bound it broke.
        """
        side = Side(side)
        self._check_price(price)
        if avg_price is not None:
            self._check_percent_price(side, price, avg_price)
        self._check_lot_size(qty)
        self._check_notional(price * qty)

    def validate_open_orders(self, open_orders: int) -> None:
        """Raise ``MAX_NUM_ORDERS`` when one more order would exceed the symbol's cap."""
        if self.max_num_orders is not None and open_orders >= self.max_num_orders:
            _fail("MAX_NUM_ORDERS", f"openOrders={open_orders} maxNumOrders={self.max_num_orders}")

    def _check_price(self, price: Decimal) -> None:
        if not price.is_finite() or price <= 0:
            _fail("PRICE_FILTER", f"price={price:f} must be positive")
        if self.min_price and price < self.min_price:
            _fail("PRICE_FILTER", f"price={price:f} minPrice={self.min_price:f}")
        if self.max_price and price > self.max_price:
            _fail("PRICE_FILTER", f"price={price:f} maxPrice={self.max_price:f}")
        if self.tick_size and price % self.tick_size:
            _fail("PRICE_FILTER", f"price={price:f} tickSize={self.tick_size:f}")

    def _check_percent_price(self, side: Side, price: Decimal, avg_price: Decimal) -> None:
        if (pp := self.percent_price) is not None:
            _check_band("PERCENT_PRICE", price, avg_price, pp.multiplier_down, pp.multiplier_up)
        if (by_side := self.percent_price_by_side) is not None:
            if side is Side.BUY:
                down, up = by_side.bid_multiplier_down, by_side.bid_multiplier_up
            else:
                down, up = by_side.ask_multiplier_down, by_side.ask_multiplier_up
            _check_band("PERCENT_PRICE_BY_SIDE", price, avg_price, down, up)

    def _check_lot_size(self, qty: Decimal) -> None:
        if not qty.is_finite() or qty <= 0:
            _fail("LOT_SIZE", f"quantity={qty:f} must be positive")
        if self.min_qty and qty < self.min_qty:
            _fail("LOT_SIZE", f"quantity={qty:f} minQty={self.min_qty:f}")
        if self.max_qty and qty > self.max_qty:
            _fail("LOT_SIZE", f"quantity={qty:f} maxQty={self.max_qty:f}")
        if self.step_size and qty % self.step_size:
            _fail("LOT_SIZE", f"quantity={qty:f} stepSize={self.step_size:f}")

    def _check_notional(self, notional: Decimal) -> None:
        kind = self.notional_filter
        if kind is None:
            return
        if notional < self.min_notional:
            _fail(kind, f"notional={notional:f} minNotional={self.min_notional:f}")
        if self.max_notional is not None and notional > self.max_notional:
            _fail(kind, f"notional={notional:f} maxNotional={self.max_notional:f}")


def _check_band(kind: str, price: Decimal, avg: Decimal, down: Decimal, up: Decimal) -> None:
    if price > avg * up:
        _fail(kind, f"price={price:f} > avgPrice*multiplierUp={avg * up:f}")
    if price < avg * down:
        _fail(kind, f"price={price:f} < avgPrice*multiplierDown={avg * down:f}")


def _fail(kind: str, value: str) -> None:
    raise FilterViolation(kind, f"Filter failure: {kind}", value)


def _dec(raw: Any) -> Decimal:
    """Parse an exchangeInfo number (``"0.01000000"`` -> ``0.01``, ``"10.00"`` -> ``10``)."""
    value = Decimal(str(raw))
    if not value.is_finite():
        raise ValueError(f"not a finite number: {raw!r}")
    return _canonical(value)


def _canonical(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (``1E+1`` -> ``10``)."""
    value = value.normalize()
    return value.quantize(_ONE) if value == value.to_integral_value() else value


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` ``<= value``, carrying the step's exponent.

    ``value`` itself when ``step`` is zero (the rule is disabled).
    """
    return _round_to(value, step, up=False)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of ``step`` ``>= value``, carrying the step's exponent.

    ``value`` itself when ``step`` is zero (the rule is disabled).
    """
    return _round_to(value, step, up=True)


def _round_to(value: Decimal, step: Decimal, *, up: bool) -> Decimal:
    if not step:
        return value
    remainder = value % step  # exact; has the sign of ``value``
    if remainder < 0:
        remainder += step
    rounded = value - remainder
    if up and remainder:
        rounded += step
    return rounded.quantize(_canonical(step))
