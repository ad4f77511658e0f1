"""A deterministic Binance spot matching engine for one account.

:class:`PaperExchange` keeps the account's orders, trades and balances for one or more
symbols and fills resting orders from a replayed market: :meth:`PaperExchange.on_trade`
(public trades) and :meth:`PaperExchange.on_book` (best bid/ask). Nothing reads the wall
clock: time comes from the ``clock`` callable (epoch ms), ids are sequential, money is
``Decimal`` kept at Binance's 8 decimals.

Every state change appends the user-data event Binance would push (``executionReport``,
then ``outboundAccountPosition``) to :attr:`PaperExchange.outbox`, a plain list the caller
drains. The events are the bare event objects; the WebSocket API delivers each wrapped as
``{"subscriptionId": n, "event": {...}}`` (see :func:`ws_api_envelope`).

Only what the bot needs is emulated: ``LIMIT`` (``GTC``, ``IOC``, ``FOK``) and
``LIMIT_MAKER`` orders, Binance's rejections with their exact codes and messages, maker
and taker fees with the commission asset Binance would charge.

Fill model (resting orders never match each other; they match the replayed market):

* ``"through"`` (default): a resting BUY fills only when a trade prints strictly below
  its price, a SELL strictly above. ``"touch"``: at or through the price.
* A fill happens at the order's own price, as maker, for at most the traded quantity;
  one trade is shared by the eligible orders in price-time priority (best price first,
  then the oldest order).
* An order that crosses the book when placed takes liquidity at once, as taker, at the
  best opposite price and for at most the quantity shown there; the rest stays on the
  book (``GTC``) or expires (``IOC``). ``FOK`` fills entirely or expires.
* A book update alone never fills a resting order.

executionReport conventions (all fields of Binance's documented example are present):
decimals are 8-decimal strings; ``n`` is ``"0"`` and ``N`` ``null`` until a trade;
``t`` is -1 without a trade; on a cancel ``c`` is the cancel request's client order id
and ``C`` the order's own (``C`` is ``""`` otherwise); ``E`` and ``T`` are the trade's
time for fills from :meth:`PaperExchange.on_trade` and the clock's for API actions;
``I`` counts executions; ``W`` is the order's creation time; ``v`` is -1 (no
self-trade prevention happens here); ``V`` is the symbol's default STP mode. An
order that expires carries Binance's expiry reason (``eR`` on its reports,
``expiryReason`` in its REST views): ``UNFILLED_IOC_QUANTITY_EXPIRED``,
``UNFILLED_FOK_ORDER_EXPIRED``, or what :meth:`PaperExchange.expire_order` is given.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation
from typing import Any, Literal

from flipbot.domain.errors import FilterViolation
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import Side
from flipbot_dev.paper import errors as e
from flipbot_dev.paper.errors import BinanceError
from flipbot_dev.paper.symbols import default_symbol_info

CommissionMode = Literal["base", "quote", "bnb"]
FillModel = Literal["through", "touch"]
TradeListener = Callable[[str, int, Decimal, Decimal, bool], None]

Q8 = Decimal("0.00000001")
ZERO = Decimal(0)
_DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ORDER_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_OPEN = ("NEW", "PARTIALLY_FILLED")
_TIME_IN_FORCE = ("GTC", "IOC", "FOK")
_AVG_PRICE_MINS = 5


def fmt8(value: Decimal) -> str:
    """Binance's decimal string: 8 decimals, never an exponent (``26.13`` -> ``"26.13000000"``)."""
    return format(value.quantize(Q8, rounding=ROUND_HALF_UP), "f")


def ws_api_envelope(event: Mapping[str, Any], subscription_id: int = 0) -> dict[str, Any]:
    """Wrap a user-data event the way the WebSocket API delivers it."""
    return {"subscriptionId": subscription_id, "event": dict(event)}


def _q8(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    return value.quantize(Q8, rounding=rounding)


def _to_decimal(value: Decimal | str | int | float, name: str) -> Decimal:
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    if not _DECIMAL_RE.match(text):
        raise e.illegal_chars(name, e.DECIMAL_LEGAL_RANGE)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern already guards this
        raise e.illegal_chars(name, e.DECIMAL_LEGAL_RANGE) from None


_TIF_EXPIRY = {"IOC": "UNFILLED_IOC_QUANTITY_EXPIRED", "FOK": "UNFILLED_FOK_ORDER_EXPIRED"}


def _expiry(order: _Order) -> dict[str, str]:
    """``expiryReason`` on an order's REST views, once the order has one."""
    return {"expiryReason": order.expiry_reason} if order.expiry_reason else {}


@dataclass(slots=True)
class _Order:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    price: Decimal
    orig_qty: Decimal
    time: int
    stp_mode: str
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    status: str = "NEW"
    update_time: int = 0
    locked: Decimal = ZERO  # funds still locked for the unfilled part (quote or base)
    fee_reserve: Decimal = ZERO  # quote locked for commission ("quote" mode BUY only)
    expiry_reason: str = ""  # why it EXPIRED (Binance's expiryReason / eR); "" otherwise

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN


@dataclass(frozen=True, slots=True)
class _Trade:
    trade_id: int
    symbol: str
    order_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool


@dataclass(slots=True)
class _Book:
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    time: int


@dataclass(slots=True)
class _Market:
    info: dict[str, Any]
    rules: SymbolRules
    base: str
    quote: str
    book: _Book | None = None
    book_update_id: int = 0
    last_price: Decimal | None = None
    last_trade_time: int = 0
    recent: deque[tuple[int, Decimal, Decimal]] = field(default_factory=deque)
    trades: list[_Trade] = field(default_factory=list)
    next_trade_id: int = 1


class PaperExchange:
    """Binance spot semantics for one account, driven by replayed market data.

    ``symbols`` are ``exchangeInfo`` symbol entries, or symbol names for which
    :func:`~flipbot_dev.paper.symbols.default_symbol_info` builds one.
    ``commission_mode``: ``"base"`` (Binance's default: commission in the asset received,
    base for a BUY, quote for a SELL), ``"quote"`` (always the quote asset; a BUY locks
    the commission at the higher of the two rates on top of the notional and releases the
    unused part), or ``"bnb"`` (BNB at ``rate * (1 - bnb_discount) / bnb_price``, where
    ``bnb_price`` is BNB's price in the quote asset; falls back to the asset received when
    the free BNB balance cannot pay).
    """

    def __init__(
        self,
        symbols: Iterable[Mapping[str, Any] | str] | Mapping[str, Any] | str,
        *,
        clock: Callable[[], int],
        maker: Decimal | str = Decimal("0.001"),
        taker: Decimal | str = Decimal("0.001"),
        commission_mode: CommissionMode = "base",
        bnb_discount: Decimal | str = Decimal("0.25"),
        bnb_price: Decimal | str | None = None,
        balances: Mapping[str, Decimal | str | int] | None = None,
        fill_model: FillModel = "through",
        first_order_id: int = 1,
    ) -> None:
        if commission_mode not in ("base", "quote", "bnb"):
            raise ValueError(f"commission_mode must be base, quote or bnb, not {commission_mode!r}")
        if fill_model not in ("through", "touch"):
            raise ValueError(f"fill_model must be through or touch, not {fill_model!r}")
        if commission_mode == "bnb" and (bnb_price is None or Decimal(str(bnb_price)) <= 0):
            raise ValueError("commission_mode 'bnb' needs a positive bnb_price")
        self.clock = clock
        self.maker = Decimal(str(maker))
        self.taker = Decimal(str(taker))
        self.commission_mode: CommissionMode = commission_mode
        self.bnb_discount = Decimal(str(bnb_discount))
        self.bnb_price = Decimal(str(bnb_price)) if bnb_price is not None else None
        self.fill_model: FillModel = fill_model
        self.outbox: list[dict[str, Any]] = []
        # Symbols that never had a reference price: a new order gets -2043 (2026-04-16).
        self.without_reference_price: set[str] = set()
        #: Called with ``(symbol, time_ms, price, qty, is_buyer_maker)`` for every replayed
        #: public trade, before it fills anything (market history, market streams).
        self.trade_listeners: list[TradeListener] = []
        self._markets: dict[str, _Market] = {}
        if isinstance(symbols, str | Mapping):
            symbols = [symbols]
        for entry in symbols:
            info = default_symbol_info(entry) if isinstance(entry, str) else dict(entry)
            self._add_market(info)
        if not self._markets:
            raise ValueError("a paper exchange needs at least one symbol")
        self._free: dict[str, Decimal] = {}
        self._locked: dict[str, Decimal] = {}
        for asset, amount in (balances or {}).items():
            self._free[asset] = Decimal(str(amount))
            self._locked[asset] = ZERO
        self._orders: dict[int, _Order] = {}
        # Open orders per (symbol, side), in matching priority: best price, then oldest.
        self._resting: dict[tuple[str, str], list[_Order]] = {}
        self._by_client_id: dict[tuple[str, str], list[int]] = {}
        self._next_order_id = first_order_id
        self._next_execution_id = 1
        self._next_generated_id = 1
        self._account_update_time = 0

    # --- configuration and market data --------------------------------------------------
    def _add_market(self, info: dict[str, Any]) -> None:
        self._markets[info["symbol"]] = _Market(
            info=info,
            rules=SymbolRules.from_symbol_info(info),
            base=info["baseAsset"],
            quote=info["quoteAsset"],
        )

    @property
    def symbols(self) -> list[str]:
        """The symbols this exchange lists, in the order given."""
        return list(self._markets)

    def symbol_info(self, symbol: str) -> dict[str, Any]:
        """The ``exchangeInfo`` entry of ``symbol`` (-1121 when unknown)."""
        return self._market(symbol).info

    def rules(self, symbol: str) -> SymbolRules:
        """The parsed filters of ``symbol``."""
        return self._market(symbol).rules

    def deposit(self, asset: str, amount: Decimal | str) -> None:
        """Credit ``amount`` of ``asset`` to the free balance (emits an account update)."""
        self._free[asset] = self._free.get(asset, ZERO) + Decimal(str(amount))
        self._locked.setdefault(asset, ZERO)
        self._emit_account(self.clock(), [asset])

    def withdraw(self, asset: str, amount: Decimal | str | None = None) -> Decimal:
        """Take ``amount`` of ``asset`` (all of it when ``None``) out of the free balance, as
        a withdrawal from the account does; what is locked by open orders stays. Returns
        what was taken (emits an account update)."""
        free = self._free.get(asset, ZERO)
        taken = free if amount is None else Decimal(str(amount))
        if taken < 0 or taken > free:
            raise ValueError(f"cannot withdraw {taken} {asset}: {free} free")
        self._free[asset] = free - taken
        self._locked.setdefault(asset, ZERO)
        self._emit_account(self.clock(), [asset])
        return taken

    def on_book(
        self,
        time_ms: int,
        bid: Decimal | str,
        bid_qty: Decimal | str,
        ask: Decimal | str,
        ask_qty: Decimal | str,
        *,
        symbol: str | None = None,
    ) -> None:
        """Record the best bid and ask. Used for crossing checks, bookTicker and depth."""
        market = self._market(symbol)
        market.book = _Book(
            Decimal(str(bid)),
            Decimal(str(bid_qty)),
            Decimal(str(ask)),
            Decimal(str(ask_qty)),
            time_ms,
        )
        market.book_update_id += 1

    def on_trade(
        self,
        time_ms: int,
        price: Decimal | str,
        qty: Decimal | str,
        is_buyer_maker: bool,
        *,
        symbol: str | None = None,
    ) -> None:
        """Replay one public trade: resting orders it reaches fill as maker.

        ``is_buyer_maker`` is Binance's flag (``True``: the taker sold). It is recorded
        with the trade; eligibility depends on the price only (see the module docstring).
        """
        market = self._market(symbol)
        price = Decimal(str(price))
        qty = Decimal(str(qty))
        market.last_price = price
        market.last_trade_time = time_ms
        for listener in self.trade_listeners:
            listener(market.info["symbol"], time_ms, price, qty, is_buyer_maker)
        market.recent.append((time_ms, price, qty))
        self._prune_recent(market, time_ms)
        touch = self.fill_model == "touch"
        for side in ("BUY", "SELL"):
            eligible: list[_Order] = []
            for o in self._resting.get((market.info["symbol"], side), ()):
                if not self._reached(o, price, touch):
                    break  # the rest are further from the trade's price
                eligible.append(o)
            budget = qty
            for order in eligible:
                if budget <= 0:
                    break
                fill = min(order.remaining, budget)
                budget -= fill
                self._fill(market, order, order.price, fill, is_maker=True, time_ms=time_ms)

    @staticmethod
    def _priority(order: _Order) -> tuple[Decimal, int]:
        return (-order.price if order.side == "BUY" else order.price, order.order_id)

    def _rest(self, order: _Order) -> None:
        book = self._resting.setdefault((order.symbol, order.side), [])
        bisect.insort(book, order, key=self._priority)

    def _unrest(self, order: _Order) -> None:
        book = self._resting.get((order.symbol, order.side), [])
        for i, resting in enumerate(book):
            if resting is order:
                del book[i]
                return

    @staticmethod
    def _reached(order: _Order, price: Decimal, touch: bool) -> bool:
        if order.side == "BUY":
            return price <= order.price if touch else price < order.price
        return price >= order.price if touch else price > order.price

    # --- orders -------------------------------------------------------------------------
    def place_order(
        self,
        symbol: str,
        side: str,
        type: str = "LIMIT",
        quantity: Decimal | str | None = None,
        price: Decimal | str | None = None,
        time_in_force: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """Place an order; returns the ``FULL`` new-order response (with ``fills``).

        Raises :class:`BinanceError` with Binance's code and message: -1121 unknown
        symbol, -1117/-1116/-1115 bad side/type/timeInForce, -1102 missing parameter,
        -1100 malformed number or client order id, -1013 ``Filter failure: ...``,
        -2010 duplicate open client order id, insufficient balance, a LIMIT_MAKER
        that would take, or 'Market is closed.' (the symbol's status is not TRADING),
        -2043 a symbol in :attr:`without_reference_price`.
        """
        market = self._market(symbol)
        if market.info.get("status", "TRADING") != "TRADING":
            raise BinanceError(e.NEW_ORDER_REJECTED, e.MSG_MARKET_CLOSED)
        if market.info["symbol"] in self.without_reference_price:
            raise BinanceError(e.NO_REFERENCE_PRICE, e.MSG_NO_REFERENCE_PRICE)
        if side not in ("BUY", "SELL"):
            raise BinanceError(e.INVALID_SIDE, e.MSG_INVALID_SIDE)
        if type not in ("LIMIT", "LIMIT_MAKER"):
            raise BinanceError(e.INVALID_ORDER_TYPE, e.MSG_INVALID_ORDER_TYPE)
        if type == "LIMIT":
            if not time_in_force:
                raise e.mandatory("timeInForce")
            if time_in_force not in _TIME_IN_FORCE:
                raise BinanceError(e.INVALID_TIF, e.MSG_INVALID_TIF)
        elif time_in_force:
            raise BinanceError(
                e.PARAM_NOT_REQUIRED, e.MSG_PARAM_NOT_REQUIRED.format(name="timeInForce")
            )
        if quantity is None or quantity == "":
            raise e.mandatory("quantity")
        if price is None or price == "":
            raise e.mandatory("price")
        qty = _to_decimal(quantity, "quantity")
        limit = _to_decimal(price, "price")
        if new_client_order_id is None or new_client_order_id == "":
            new_client_order_id = self._generated_id()
        elif not _CLIENT_ORDER_ID_RE.match(new_client_order_id):
            raise e.illegal_chars("newClientOrderId", e.CLIENT_ORDER_ID_LEGAL_RANGE)

        # Filters first: a -1013 never reaches the matching engine.
        symbol_name = market.info["symbol"]
        try:
            market.rules.validate(Side(side), limit, qty, avg_price=self._avg_price(market))
            market.rules.validate_open_orders(
                len(self._resting.get((symbol_name, "BUY"), ()))
                + len(self._resting.get((symbol_name, "SELL"), ()))
            )
        except FilterViolation as exc:
            raise BinanceError(e.INVALID_MESSAGE, str(exc)) from None

        # Matching-engine checks (-2010).
        if any(
            self._orders[i].is_open
            for i in self._by_client_id.get((symbol_name, new_client_order_id), [])
        ):
            raise BinanceError(e.NEW_ORDER_REJECTED, e.MSG_DUPLICATE_ORDER)
        crosses = self._crosses(market, side, limit)
        if type == "LIMIT_MAKER" and crosses:
            raise BinanceError(e.NEW_ORDER_REJECTED, e.MSG_WOULD_MATCH_AND_TAKE)
        notional, reserve = self._lock_amounts(side, limit, qty)
        lock_asset = market.quote if side == "BUY" else market.base
        needed = notional + reserve if side == "BUY" else qty
        if self._free.get(lock_asset, ZERO) < needed:
            raise BinanceError(e.NEW_ORDER_REJECTED, e.MSG_INSUFFICIENT_BALANCE)
        if time_in_force == "FOK" and self._takeable(market, side, limit) < qty:
            return self._expire_unplaced(
                market,
                side=side,
                type_=type,
                price=limit,
                qty=qty,
                client_order_id=new_client_order_id,
            )

        now = self.clock()
        order = _Order(
            symbol=symbol_name,
            order_id=self._next_order_id,
            client_order_id=new_client_order_id,
            side=side,
            type=type,
            time_in_force=time_in_force or "GTC",
            price=limit,
            orig_qty=qty,
            time=now,
            update_time=now,
            stp_mode=market.info.get("defaultSelfTradePreventionMode", "NONE"),
            locked=needed - reserve,
            fee_reserve=reserve,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._by_client_id.setdefault((symbol_name, new_client_order_id), []).append(order.order_id)
        self._rest(order)
        self._move(lock_asset, needed, to_locked=True)
        self._emit_report(order, "NEW", now)
        self._emit_account(now, [lock_asset])

        fills: list[_Trade] = []
        if crosses:
            fills = self._take(market, order, now)
        if order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._close(order, "EXPIRED", now, expiry_reason=_TIF_EXPIRY[order.time_in_force])
        return self._new_order_response(order, fills, now)

    def cancel_order(
        self,
        symbol: str,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        new_client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """Cancel an open order; returns the ``DELETE /api/v3/order`` response.

        -2011 ``Unknown order sent.`` when no open order matches. The executionReport
        carries the cancel request's id in ``c`` and the order's id in ``C``, as on Binance.
        """
        market = self._market(symbol)
        if order_id is None and not orig_client_order_id:
            raise e.either("origClientOrderId", "orderId")
        order = self._find(market.info["symbol"], order_id, orig_client_order_id)
        if order is None or not order.is_open:
            raise BinanceError(e.CANCEL_REJECTED, e.MSG_UNKNOWN_ORDER)
        cancel_id = new_client_order_id or self._generated_id()
        now = self.clock()
        self._close(order, "CANCELED", now, client_order_id=cancel_id)
        return {
            "symbol": order.symbol,
            "origClientOrderId": order.client_order_id,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": cancel_id,
            "transactTime": now,
            "price": fmt8(order.price),
            "origQty": fmt8(order.orig_qty),
            "executedQty": fmt8(order.executed_qty),
            "origQuoteOrderQty": fmt8(ZERO),
            "cummulativeQuoteQty": fmt8(order.cum_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "selfTradePreventionMode": order.stp_mode,
        }

    def set_symbol_status(self, symbol: str, status: str) -> None:
        """Set ``symbol``'s ``status`` in exchangeInfo (``TRADING``, ``CANCEL_ONLY``,
        ``HALT``, ``BREAK``). Off ``TRADING`` a new order is refused (-2010 'Market is
        closed.'); open orders stay and can be canceled."""
        self._market(symbol).info["status"] = status

    def expire_order(
        self,
        symbol: str,
        order_id: int,
        reason: str = "EXCHANGE_CANCELED",
        *,
        in_match: bool = False,
    ) -> dict[str, Any]:
        """The exchange ends an open order itself (status EXPIRED, ``expiryReason`` /
        ``eR`` = ``reason``), what is filled staying filled; returns the order's view.

        ``in_match``: self-trade prevention ended it instead (another order of the same
        account met it; ``EXPIRE_MAKER`` is the default mode): status ``EXPIRED_IN_MATCH``,
        execution type ``TRADE_PREVENTION``, no expiry reason."""
        market = self._market(symbol)
        order = self._find(market.info["symbol"], order_id, None)
        if order is None or not order.is_open:
            raise BinanceError(e.CANCEL_REJECTED, e.MSG_UNKNOWN_ORDER)
        if in_match:
            self._close(order, "EXPIRED_IN_MATCH", self.clock())
        else:
            self._close(order, "EXPIRED", self.clock(), expiry_reason=reason)
        return self._order_view(order)

    def get_order(
        self, symbol: str, order_id: int | None = None, orig_client_order_id: str | None = None
    ) -> dict[str, Any]:
        """The ``GET /api/v3/order`` view; -2013 ``Order does not exist.`` when unknown.

        By client order id, the most recent order with that id is returned.
        """
        market = self._market(symbol)
        if order_id is None and not orig_client_order_id:
            raise e.either("origClientOrderId", "orderId")
        order = self._find(market.info["symbol"], order_id, orig_client_order_id)
        if order is None:
            raise BinanceError(e.NO_SUCH_ORDER, e.MSG_NO_SUCH_ORDER)
        return self._order_view(order)

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Open orders (``NEW``/``PARTIALLY_FILLED``), oldest first, of one or every symbol."""
        name = self._market(symbol).info["symbol"] if symbol is not None else None
        return [
            self._order_view(o)
            for o in self._orders.values()
            if o.is_open and (name is None or o.symbol == name)
        ]

    def all_orders(
        self, symbol: str, order_id: int | None = None, limit: int = 500
    ) -> list[dict[str, Any]]:
        """Every order of ``symbol``: from ``order_id`` up, else the most recent ``limit``."""
        name = self._market(symbol).info["symbol"]
        orders = [o for o in self._orders.values() if o.symbol == name]
        if order_id is not None:
            orders = [o for o in orders if o.order_id >= order_id][:limit]
        else:
            orders = orders[-limit:]
        return [self._order_view(o) for o in orders]

    def my_trades(
        self,
        symbol: str,
        order_id: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The account's trades on ``symbol`` (``GET /api/v3/myTrades``), oldest first.

        With ``from_id``: trades with id >= ``from_id``, the first ``limit`` of them;
        otherwise the most recent ``limit``. ``order_id`` narrows to one order.
        """
        market = self._market(symbol)
        trades = [t for t in market.trades if order_id is None or t.order_id == order_id]
        if from_id is not None:
            trades = [t for t in trades if t.trade_id >= from_id][:limit]
        else:
            trades = trades[-limit:]
        return [
            {
                "symbol": t.symbol,
                "id": t.trade_id,
                "orderId": t.order_id,
                "orderListId": -1,
                "price": fmt8(t.price),
                "qty": fmt8(t.qty),
                "quoteQty": fmt8(t.quote_qty),
                "commission": fmt8(t.commission),
                "commissionAsset": t.commission_asset,
                "time": t.time,
                "isBuyer": t.is_buyer,
                "isMaker": t.is_maker,
                "isBestMatch": True,
            }
            for t in trades
        ]

    # --- account ------------------------------------------------------------------------
    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """``(free, locked)`` of ``asset``; zeros when the account never held it."""
        return self._free.get(asset, ZERO), self._locked.get(asset, ZERO)

    def account(self, omit_zero_balances: bool = False) -> dict[str, Any]:
        """The ``GET /api/v3/account`` view."""
        balances = [
            {"asset": a, "free": fmt8(self._free[a]), "locked": fmt8(self._locked.get(a, ZERO))}
            for a in sorted(self._free)
            if not omit_zero_balances or self._free[a] or self._locked.get(a, ZERO)
        ]
        return {
            "makerCommission": int(self.maker * 10000),
            "takerCommission": int(self.taker * 10000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt8(self.maker),
                "taker": fmt8(self.taker),
                "buyer": fmt8(ZERO),
                "seller": fmt8(ZERO),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self._account_update_time,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 100000001,
        }

    def commission_rates(self, symbol: str) -> dict[str, Any]:
        """The ``GET /api/v3/account/commission`` view of ``symbol``."""
        name = self._market(symbol).info["symbol"]
        zeros = {
            "maker": fmt8(ZERO),
            "taker": fmt8(ZERO),
            "buyer": fmt8(ZERO),
            "seller": fmt8(ZERO),
        }
        return {
            "symbol": name,
            "standardCommission": {
                "maker": fmt8(self.maker),
                "taker": fmt8(self.taker),
                "buyer": fmt8(ZERO),
                "seller": fmt8(ZERO),
            },
            "specialCommission": dict(zeros),
            "taxCommission": dict(zeros),
            "discount": {
                "enabledForAccount": self.commission_mode == "bnb",
                "enabledForSymbol": True,
                "discountAsset": "BNB",
                "discount": fmt8(self.bnb_discount),
            },
        }

    # --- market views -------------------------------------------------------------------
    def exchange_info(self, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        """The ``GET /api/v3/exchangeInfo`` view of the listed (or all) symbols."""
        names = list(symbols) if symbols is not None else list(self._markets)
        entries = [self._market(s).info for s in names]
        return {
            "timezone": "UTC",
            "serverTime": self.clock(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {
                    "rateLimitType": "RAW_REQUESTS",
                    "interval": "MINUTE",
                    "intervalNum": 5,
                    "limit": 61000,
                },
            ],
            "exchangeFilters": [],
            "symbols": entries,
            "sors": [],
        }

    def book_ticker(self, symbol: str) -> dict[str, Any]:
        """``GET /api/v3/ticker/bookTicker`` for ``symbol`` (zeros before the first book)."""
        market = self._market(symbol)
        book = market.book
        return {
            "symbol": market.info["symbol"],
            "bidPrice": fmt8(book.bid if book else ZERO),
            "bidQty": fmt8(book.bid_qty if book else ZERO),
            "askPrice": fmt8(book.ask if book else ZERO),
            "askQty": fmt8(book.ask_qty if book else ZERO),
        }

    def ticker_price(self, symbol: str) -> dict[str, Any]:
        """``GET /api/v3/ticker/price``: the last trade price (else the book mid, else 0)."""
        market = self._market(symbol)
        price = market.last_price
        if price is None and market.book is not None:
            price = (market.book.bid + market.book.ask) / 2
        return {"symbol": market.info["symbol"], "price": fmt8(price or ZERO)}

    def avg_price(self, symbol: str) -> dict[str, Any]:
        """``GET /api/v3/avgPrice``: volume-weighted price of the last 5 minutes of trades."""
        market = self._market(symbol)
        price = self._avg_price(market)
        return {
            "mins": _AVG_PRICE_MINS,
            "price": fmt8(price or ZERO),
            "closeTime": market.last_trade_time,
        }

    def depth(self, symbol: str) -> dict[str, Any]:
        """``GET /api/v3/depth``: the top of the book only."""
        market = self._market(symbol)
        book = market.book
        return {
            "lastUpdateId": market.book_update_id,
            "bids": [[fmt8(book.bid), fmt8(book.bid_qty)]] if book and book.bid_qty else [],
            "asks": [[fmt8(book.ask), fmt8(book.ask_qty)]] if book and book.ask_qty else [],
        }

    # --- internals: lookup --------------------------------------------------------------
    def _market(self, symbol: str | None) -> _Market:
        if symbol is None:
            if len(self._markets) == 1:
                return next(iter(self._markets.values()))
            raise ValueError("this paper exchange lists several symbols: name one")
        market = self._markets.get(symbol.upper())
        if market is None:
            raise BinanceError(e.BAD_SYMBOL, e.MSG_BAD_SYMBOL)
        return market

    def _find(
        self, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> _Order | None:
        if order_id is not None:
            order = self._orders.get(order_id)
            if order is None or order.symbol != symbol:
                return None
            if client_order_id and order.client_order_id != client_order_id:
                return None
            return order
        ids = self._by_client_id.get((symbol, client_order_id or ""), [])
        return self._orders[ids[-1]] if ids else None

    def _generated_id(self) -> str:
        value = f"paper{self._next_generated_id:017d}"
        self._next_generated_id += 1
        return value

    # --- internals: prices --------------------------------------------------------------
    def _prune_recent(self, market: _Market, now: int) -> None:
        horizon = now - _AVG_PRICE_MINS * 60_000
        while market.recent and market.recent[0][0] < horizon:
            market.recent.popleft()

    def _avg_price(self, market: _Market) -> Decimal | None:
        self._prune_recent(market, max(self.clock(), market.last_trade_time))
        volume = sum((q for _, _, q in market.recent), ZERO)
        if volume > 0:
            return _q8(sum((p * q for _, p, q in market.recent), ZERO) / volume)
        if market.last_price is not None:
            return market.last_price
        if market.book is not None and market.book.bid > 0 and market.book.ask > 0:
            return _q8((market.book.bid + market.book.ask) / 2)
        return None

    @staticmethod
    def _crosses(market: _Market, side: str, price: Decimal) -> bool:
        book = market.book
        if book is None:
            return False
        if side == "BUY":
            return book.ask > 0 and price >= book.ask
        return book.bid > 0 and price <= book.bid

    def _takeable(self, market: _Market, side: str, price: Decimal) -> Decimal:
        if not self._crosses(market, side, price):
            return ZERO
        assert market.book is not None
        return market.book.ask_qty if side == "BUY" else market.book.bid_qty

    # --- internals: money ---------------------------------------------------------------
    def _lock_amounts(self, side: str, price: Decimal, qty: Decimal) -> tuple[Decimal, Decimal]:
        """(notional to lock, commission reserve) for a BUY; (qty, 0) for a SELL."""
        if side == "SELL":
            return qty, ZERO
        notional = _q8(price * qty, ROUND_UP)
        reserve = ZERO
        if self.commission_mode == "quote":
            reserve = _q8(notional * max(self.maker, self.taker), ROUND_UP)
        return notional, reserve

    def _move(self, asset: str, amount: Decimal, *, to_locked: bool) -> None:
        self._free.setdefault(asset, ZERO)
        self._locked.setdefault(asset, ZERO)
        if to_locked:
            self._free[asset] -= amount
            self._locked[asset] += amount
        else:
            self._locked[asset] -= amount
            self._free[asset] += amount

    def _add(self, asset: str, amount: Decimal) -> None:
        self._free[asset] = self._free.get(asset, ZERO) + amount
        self._locked.setdefault(asset, ZERO)

    def _commission(
        self, market: _Market, side: str, qty: Decimal, quote_qty: Decimal, rate: Decimal
    ) -> tuple[Decimal, str]:
        received_asset = market.base if side == "BUY" else market.quote
        received = qty if side == "BUY" else quote_qty
        if self.commission_mode == "bnb":
            assert self.bnb_price is not None
            amount = _q8(quote_qty * rate * (1 - self.bnb_discount) / self.bnb_price)
            if amount > 0 and self._free.get("BNB", ZERO) >= amount:
                return amount, "BNB"
        if self.commission_mode == "quote":
            return _q8(quote_qty * rate), market.quote
        return _q8(received * rate), received_asset

    # --- internals: execution -----------------------------------------------------------
    def _take(self, market: _Market, order: _Order, now: int) -> list[_Trade]:
        book = market.book
        assert book is not None
        if order.side == "BUY":
            qty = min(order.remaining, book.ask_qty)
            price = book.ask
        else:
            qty = min(order.remaining, book.bid_qty)
            price = book.bid
        if qty <= 0:
            return []
        trade = self._fill(market, order, price, qty, is_maker=False, time_ms=now)
        if order.side == "BUY":
            book.ask_qty -= qty
        else:
            book.bid_qty -= qty
        return [trade]

    def _fill(
        self,
        market: _Market,
        order: _Order,
        price: Decimal,
        qty: Decimal,
        *,
        is_maker: bool,
        time_ms: int,
    ) -> _Trade:
        rate = self.maker if is_maker else self.taker
        quote_qty = _q8(price * qty)
        commission, commission_asset = self._commission(market, order.side, qty, quote_qty, rate)
        touched = {market.base, market.quote, commission_asset}
        if order.side == "BUY":
            # Release the lock for this part (at the limit price), pay the fill price.
            release = min(order.locked, _q8(order.price * qty, ROUND_UP))
            if order.executed_qty + qty == order.orig_qty:
                release = order.locked
            order.locked -= release
            self._locked[market.quote] -= release
            self._free[market.quote] += release - quote_qty
            self._add(market.base, qty)
        else:
            order.locked -= qty
            self._locked[market.base] -= qty
            self._add(market.quote, quote_qty)
        self._pay_commission(order, market, commission, commission_asset)
        order.executed_qty += qty
        order.cum_quote += quote_qty
        order.update_time = time_ms
        trade = _Trade(
            trade_id=market.next_trade_id,
            symbol=order.symbol,
            order_id=order.order_id,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=commission_asset,
            time=time_ms,
            is_buyer=order.side == "BUY",
            is_maker=is_maker,
        )
        market.next_trade_id += 1
        market.trades.append(trade)
        if order.remaining == 0:
            order.status = "FILLED"
            self._unrest(order)
            self._release(order, market)
        else:
            order.status = "PARTIALLY_FILLED"
        self._emit_report(order, "TRADE", time_ms, trade=trade)
        self._emit_account(time_ms, sorted(touched))
        return trade

    def _pay_commission(self, order: _Order, market: _Market, amount: Decimal, asset: str) -> None:
        if amount <= 0:
            return
        if asset == market.quote and order.side == "BUY" and order.fee_reserve > 0:
            from_reserve = min(order.fee_reserve, amount)
            order.fee_reserve -= from_reserve
            self._locked[asset] -= from_reserve
            amount -= from_reserve
        self._free[asset] = self._free.get(asset, ZERO) - amount
        self._locked.setdefault(asset, ZERO)

    def _release(self, order: _Order, market: _Market) -> None:
        asset = market.quote if order.side == "BUY" else market.base
        leftover = order.locked + order.fee_reserve
        if leftover:
            self._move(asset, leftover, to_locked=False)
        order.locked = ZERO
        order.fee_reserve = ZERO

    def _close(
        self,
        order: _Order,
        status: str,
        now: int,
        *,
        client_order_id: str | None = None,
        expiry_reason: str = "",
    ) -> None:
        market = self._markets[order.symbol]
        order.status = status
        order.expiry_reason = expiry_reason
        order.update_time = now
        self._unrest(order)
        self._release(order, market)
        exec_type = {"CANCELED": "CANCELED", "EXPIRED_IN_MATCH": "TRADE_PREVENTION"}.get(
            status, "EXPIRED"
        )
        self._emit_report(order, exec_type, now, client_order_id=client_order_id)
        self._emit_account(now, [market.quote if order.side == "BUY" else market.base])

    def _expire_unplaced(
        self,
        market: _Market,
        *,
        side: str,
        type_: str,
        price: Decimal,
        qty: Decimal,
        client_order_id: str,
    ) -> dict[str, Any]:
        """A FOK that cannot fill entirely: created and expired at once, nothing locked."""
        now = self.clock()
        order = _Order(
            symbol=market.info["symbol"],
            order_id=self._next_order_id,
            client_order_id=client_order_id,
            side=side,
            type=type_,
            time_in_force="FOK",
            price=price,
            orig_qty=qty,
            time=now,
            update_time=now,
            stp_mode=market.info.get("defaultSelfTradePreventionMode", "NONE"),
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._by_client_id.setdefault((order.symbol, client_order_id), []).append(order.order_id)
        self._emit_report(order, "NEW", now)
        order.status = "EXPIRED"
        order.expiry_reason = _TIF_EXPIRY["FOK"]
        self._emit_report(order, "EXPIRED", now)
        return self._new_order_response(order, [], now)

    # --- internals: views and events ----------------------------------------------------
    def _order_view(self, order: _Order) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "price": fmt8(order.price),
            "origQty": fmt8(order.orig_qty),
            "executedQty": fmt8(order.executed_qty),
            "cummulativeQuoteQty": fmt8(order.cum_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "stopPrice": fmt8(ZERO),
            "icebergQty": fmt8(ZERO),
            "time": order.time,
            "updateTime": order.update_time,
            "isWorking": True,
            "workingTime": order.time,
            "origQuoteOrderQty": fmt8(ZERO),
            "selfTradePreventionMode": order.stp_mode,
            **_expiry(order),
        }

    def _new_order_response(self, order: _Order, fills: list[_Trade], now: int) -> dict[str, Any]:
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": -1,
            "clientOrderId": order.client_order_id,
            "transactTime": now,
            "price": fmt8(order.price),
            "origQty": fmt8(order.orig_qty),
            "executedQty": fmt8(order.executed_qty),
            "origQuoteOrderQty": fmt8(ZERO),
            "cummulativeQuoteQty": fmt8(order.cum_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "workingTime": order.time,
            "selfTradePreventionMode": order.stp_mode,
            **_expiry(order),
            "fills": [
                {
                    "price": fmt8(t.price),
                    "qty": fmt8(t.qty),
                    "commission": fmt8(t.commission),
                    "commissionAsset": t.commission_asset,
                    "tradeId": t.trade_id,
                }
                for t in fills
            ],
        }

    def _emit_report(
        self,
        order: _Order,
        exec_type: str,
        time_ms: int,
        *,
        trade: _Trade | None = None,
        client_order_id: str | None = None,
    ) -> None:
        execution_id = self._next_execution_id
        self._next_execution_id += 1
        self.outbox.append(
            {
                "e": "executionReport",
                "E": time_ms,
                "s": order.symbol,
                "c": client_order_id or order.client_order_id,
                "S": order.side,
                "o": order.type,
                "f": order.time_in_force,
                "q": fmt8(order.orig_qty),
                "p": fmt8(order.price),
                "P": fmt8(ZERO),
                "F": fmt8(ZERO),
                "g": -1,
                "C": order.client_order_id if client_order_id else "",
                "x": exec_type,
                "X": order.status,
                "r": "NONE",
                "i": order.order_id,
                "l": fmt8(trade.qty if trade else ZERO),
                "z": fmt8(order.executed_qty),
                "L": fmt8(trade.price if trade else ZERO),
                "n": fmt8(trade.commission) if trade else "0",
                "N": trade.commission_asset if trade else None,
                "T": time_ms,
                "t": trade.trade_id if trade else -1,
                "v": -1,
                "I": execution_id,
                "w": order.is_open,
                "m": trade.is_maker if trade else False,
                "M": False,
                "O": order.time,
                "Z": fmt8(order.cum_quote),
                "Y": fmt8(trade.quote_qty if trade else ZERO),
                "Q": fmt8(ZERO),
                "W": order.time,
                "V": order.stp_mode,
                **({"eR": order.expiry_reason} if order.expiry_reason else {}),
            }
        )

    def _emit_account(self, time_ms: int, assets: Iterable[str]) -> None:
        self._account_update_time = time_ms
        self.outbox.append(
            {
                "e": "outboundAccountPosition",
                "E": time_ms,
                "u": time_ms,
                "B": [
                    {
                        "a": a,
                        "f": fmt8(self._free.get(a, ZERO)),
                        "l": fmt8(self._locked.get(a, ZERO)),
                    }
                    for a in assets
                ],
            }
        )

    def drain(self) -> list[dict[str, Any]]:
        """Return and clear the pending user-data events, oldest first."""
        events = list(self.outbox)
        self.outbox.clear()
        return events
