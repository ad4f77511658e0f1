"""The bot's Binance spot adapter: :class:`flipbot.ports.ExchangePort` over python-binance.

:class:`BinanceExchange` wraps a python-binance ``Client`` (live, testnet, or the paper
exchange through :func:`flipbot_dev.paper.make_client`) and speaks domain types only: every
library or transport error leaves as a :mod:`flipbot.domain.errors` type, decided by
HTTP status and Binance error code. The one exception is -2010, whose subtypes share a
code: there Binance's documented message picks :class:`DuplicateOrder`,
:class:`InsufficientBalance` or :class:`SymbolNotTrading`, anything else is
:class:`OrderRejected`.

==========================================  ==============================================
Binance / transport                         domain error
==========================================  ==============================================
HTTP 451, HTTP 403 (the WAF; an HTML body)  ``RestrictedLocation`` (a configuration error)
HTTP 418                                    ``IpBanned`` (``retry_after`` from Retry-After)
HTTP 429, -1003, -1015                      ``RateLimited`` (``retry_after``)
HTTP 5XX, timeouts, connection errors,      ``UnknownOrderOutcome`` on a create-order,
-1000, -1001, -1006, -1007, -1008           ``ExchangeUnavailable`` otherwise
-1021                                       ``ClockSkew`` (the client's offset is resynced)
-1013                                       ``FilterViolation`` (filter type from the message)
-2010                                       ``DuplicateOrder`` / ``InsufficientBalance`` /
                                            ``SymbolNotTrading`` ('Market is closed.':
                                            CANCEL_ONLY, HALT, BREAK) / ``OrderRejected``
-2043 (no reference price)                  ``SymbolNotTrading`` (a configuration error)
-2013, -2011                                ``OrderNotFound`` (``get_order`` returns None)
-1022, -2014, -2015, -1121                  ``ConfigurationError``
any other 4XX                               ``OrderRejected`` (with the code)
==========================================  ==============================================

Messages name the operation, symbol, client order id, HTTP status and Binance's code and
message; they never carry the API key, the secret, a signature or a request URL.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException, BinanceRequestException

from flipbot.domain.errors import (
    ClockSkew,
    ConfigurationError,
    DuplicateOrder,
    ExchangeUnavailable,
    FilterViolation,
    FlipbotError,
    InsufficientBalance,
    IpBanned,
    OrderNotFound,
    OrderRejected,
    RateLimited,
    RestrictedLocation,
    SymbolNotTrading,
    UnknownOrderOutcome,
)
from flipbot.domain.fees import FeeSchedule
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import (
    Balance,
    BookDepth,
    BookTop,
    Fill,
    OrderRequest,
    OrderState,
    OrderStatus,
    Side,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_MSG_DUPLICATE = "Duplicate order sent."
_MSG_INSUFFICIENT = "Account has insufficient balance for requested action."
_MSG_MARKET_CLOSED = "Market is closed."
_NO_REFERENCE_PRICE = -2043
_FILTER_RE = re.compile(r"Filter failure: ([A-Z_]+)")
_UNKNOWN_STATUS_CODES = frozenset({-1000, -1001, -1006, -1007, -1008})
_RATE_LIMIT_CODES = frozenset({-1003, -1015})
_CREDENTIAL_CODES = frozenset({-1022, -2014, -2015})
_NOT_FOUND_CODES = frozenset({-2013, -2011})
# 451: a restricted location; 403: Binance's web application firewall refused the request.
_LOCATION_STATUSES = frozenset({451, 403})
_TAG_RE = re.compile(r"<[^>]*>")
_BRIEF = 240
_PAGE = 1000


def _text(value: Decimal) -> str:
    """A Decimal as Binance expects it: plain digits, never an exponent."""
    return format(value, "f")


def _brief(text: str) -> str:
    """An error body fit for a message: markup dropped, whitespace folded, cut short (a
    firewall answers with an HTML page)."""
    plain = " ".join(_TAG_RE.sub(" ", text).split())
    return plain if len(plain) <= _BRIEF else plain[: _BRIEF - 3].rstrip() + "..."


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


class BinanceExchange:
    """:class:`~flipbot.ports.ExchangePort` over a python-binance ``Client``.

    Symbol rules and fee schedules are fetched once per symbol and cached for the life
    of the instance (a warm Lambda keeps them). With ``resync_clock_on_skew`` a -1021
    answer re-reads the server time and corrects ``client.timestamp_offset`` before
    ``ClockSkew`` is raised, so the retry is signed with a good timestamp.
    """

    def __init__(self, client: Client, *, resync_clock_on_skew: bool = True) -> None:
        self._client = client
        self._resync_on_skew = resync_clock_on_skew
        self._rules: dict[str, SymbolRules] = {}
        self._fees: dict[str, FeeSchedule] = {}

    # --- reference data -----------------------------------------------------------------
    def symbol_rules(self, symbol: str) -> SymbolRules:
        """The symbol's filters from ``GET /api/v3/exchangeInfo?symbol=...`` (cached)."""
        if symbol not in self._rules:
            # ``get_symbol_info`` downloads every symbol; ask for this one only.
            payload = self._call(
                "symbol_rules",
                symbol,
                lambda: self._client._get("exchangeInfo", data={"symbol": symbol}),
            )
            self._rules[symbol] = SymbolRules.from_exchange_info(payload, symbol)
        return self._rules[symbol]

    def fee_schedule(self, symbol: str) -> FeeSchedule:
        """The account's commission on ``symbol`` (``GET /api/v3/account/commission``, cached)."""
        if symbol not in self._fees:
            payload = self._call(
                "fee_schedule",
                symbol,
                lambda: self._client.v3_get_account_commission(symbol=symbol),
            )
            self._fees[symbol] = FeeSchedule.from_commission_payload(payload)
        return self._fees[symbol]

    def book_top(self, symbol: str) -> BookTop:
        """Best bid and ask (``GET /api/v3/ticker/bookTicker``)."""
        ticker = self._call(
            "book_top", symbol, lambda: self._client.get_orderbook_ticker(symbol=symbol)
        )
        return BookTop(
            bid=Decimal(ticker["bidPrice"]),
            bid_qty=Decimal(ticker["bidQty"]),
            ask=Decimal(ticker["askPrice"]),
            ask_qty=Decimal(ticker["askQty"]),
        )

    def order_book(self, symbol: str, limit: int = 10) -> BookDepth:
        """The top ``limit`` levels of each side (``GET /api/v3/depth``, weight 5 up to
        100 levels), best first."""
        book = self._call(
            "order_book", symbol, lambda: self._client.get_order_book(symbol=symbol, limit=limit)
        )
        return BookDepth(
            bids=tuple((Decimal(p), Decimal(q)) for p, q, *_ in book.get("bids", ())),
            asks=tuple((Decimal(p), Decimal(q)) for p, q, *_ in book.get("asks", ())),
        )

    # --- orders -------------------------------------------------------------------------
    def place_limit(self, request: OrderRequest) -> OrderState:
        """Place a LIMIT GTC order under ``request.client_order_id``.

        Raises ``UnknownOrderOutcome`` when the request may have reached the matching
        engine without an answer: look the order up before doing anything else.
        """
        payload = self._call(
            "place_limit",
            request.symbol,
            lambda: self._client.create_order(
                symbol=request.symbol,
                side=str(request.side),
                type="LIMIT",
                timeInForce="GTC",
                quantity=_text(request.quantity),
                price=_text(request.price),
                newClientOrderId=request.client_order_id,
                newOrderRespType="RESULT",
            ),
            client_order_id=request.client_order_id,
            creating=True,
            order_values=f"price={_text(request.price)} quantity={_text(request.quantity)}",
        )
        return _order_state(payload)

    def get_order(self, symbol: str, client_order_id: str) -> OrderState | None:
        """The order with that client order id, or ``None`` when Binance does not know it."""
        try:
            payload = self._call(
                "get_order",
                symbol,
                lambda: self._client.get_order(symbol=symbol, origClientOrderId=client_order_id),
                client_order_id=client_order_id,
            )
        except OrderNotFound:
            return None
        return _order_state(payload)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel by client order id; ``OrderNotFound`` when no open order has that id."""
        payload = self._call(
            "cancel_order",
            symbol,
            lambda: self._client.cancel_order(symbol=symbol, origClientOrderId=client_order_id),
            client_order_id=client_order_id,
        )
        # The response's clientOrderId is the cancel request's; the order's is origClientOrderId.
        return _order_state(payload, client_order_id=payload["origClientOrderId"])

    def open_orders(self, symbol: str | None = None) -> Sequence[OrderState]:
        """Open orders on ``symbol``, or on every symbol of the account when ``None``
        (``GET /api/v3/openOrders``: weight 6 for one symbol, 80 for all), oldest first."""
        params = {"symbol": symbol} if symbol else {}
        payload = self._call(
            "open_orders", symbol or "", partial(self._client.get_open_orders, **params)
        )
        return [_order_state(o) for o in payload]

    def my_trades(self, symbol: str, *, order_id: int | None = None) -> Sequence[Fill]:
        """Every trade of the account on ``symbol`` (of one order when ``order_id``), oldest first.

        Pages through ``GET /api/v3/myTrades`` by ``fromId``; client order ids, which that
        endpoint does not return, come from the orders endpoints.
        """
        trades: list[dict[str, Any]] = []
        from_id = 0
        while True:
            params: dict[str, Any] = {"symbol": symbol, "fromId": from_id, "limit": _PAGE}
            if order_id is not None:
                params["orderId"] = order_id
            page = self._call("my_trades", symbol, partial(self._client.get_my_trades, **params))
            trades.extend(page)
            if len(page) < _PAGE:
                break
            from_id = int(page[-1]["id"]) + 1
        client_ids = self._client_order_ids(symbol, {int(t["orderId"]) for t in trades})
        return [
            Fill(
                symbol=t["symbol"],
                order_id=int(t["orderId"]),
                client_order_id=client_ids.get(int(t["orderId"]), ""),
                trade_id=int(t["id"]),
                side=Side.BUY if t["isBuyer"] else Side.SELL,
                price=Decimal(t["price"]),
                qty=Decimal(t["qty"]),
                quote_qty=Decimal(t["quoteQty"]),
                commission=Decimal(t["commission"]),
                commission_asset=t["commissionAsset"],
                is_maker=bool(t["isMaker"]),
                time_ms=int(t["time"]),
            )
            for t in trades
        ]

    def balances(self) -> Mapping[str, Balance]:
        """Non-zero balances by asset (``GET /api/v3/account?omitZeroBalances=true``)."""
        payload = self._call(
            "balances", "", lambda: self._client.get_account(omitZeroBalances="true")
        )
        return {
            b["asset"]: Balance(
                asset=b["asset"], free=Decimal(b["free"]), locked=Decimal(b["locked"])
            )
            for b in payload["balances"]
        }

    def resync_clock(self) -> None:
        """Set ``client.timestamp_offset`` to the server time minus the local time.

        Left alone when the offset is not a plain number: such a client manages its own
        time (the paper exchange's :func:`~flipbot_dev.paper.make_client` does).
        """
        if not isinstance(self._client.timestamp_offset, int | float):
            return
        server = self._call("resync_clock", "", self._client.get_server_time)
        self._client.timestamp_offset = int(server["serverTime"]) - int(time.time() * 1000)

    # --- internals ----------------------------------------------------------------------
    def _client_order_ids(self, symbol: str, order_ids: set[int]) -> dict[int, str]:
        if not order_ids:
            return {}
        if len(order_ids) == 1:
            (only,) = order_ids
            order = self._call(
                "my_trades", symbol, lambda: self._client.get_order(symbol=symbol, orderId=only)
            )
            return {only: order["clientOrderId"]}
        found: dict[int, str] = {}
        start = min(order_ids)
        while True:
            page = self._call(
                "my_trades",
                symbol,
                partial(self._client.get_all_orders, symbol=symbol, orderId=start, limit=_PAGE),
            )
            found.update({int(o["orderId"]): o["clientOrderId"] for o in page})
            if order_ids <= found.keys() or len(page) < _PAGE:
                return found
            start = int(page[-1]["orderId"]) + 1

    def _call(
        self,
        op: str,
        symbol: str,
        fn: Callable[[], T],
        *,
        client_order_id: str | None = None,
        creating: bool = False,
        order_values: str | None = None,
    ) -> T:
        try:
            return fn()
        except (BinanceAPIException, BinanceRequestException, requests.RequestException) as exc:
            error = self._translate(
                exc,
                op=op,
                symbol=symbol,
                client_order_id=client_order_id,
                creating=creating,
                order_values=order_values,
            )
        if isinstance(error, ClockSkew) and self._resync_on_skew and op != "resync_clock":
            try:
                self.resync_clock()
            except FlipbotError:
                logger.warning("clock resync after -1021 failed", extra={"op": op})
        if isinstance(error, UnknownOrderOutcome):
            logger.warning(
                "order outcome unknown",
                extra={"op": op, "symbol": symbol, "client_order_id": client_order_id},
            )
        raise error

    @staticmethod
    def _translate(
        exc: Exception,
        *,
        op: str,
        symbol: str,
        client_order_id: str | None,
        creating: bool,
        order_values: str | None,
    ) -> FlipbotError:
        where = f"{op} {symbol}".strip()
        if client_order_id:
            where += f" [{client_order_id}]"

        def unknown(text: str) -> FlipbotError:
            if creating and client_order_id:
                return UnknownOrderOutcome(text, client_order_id)
            return ExchangeUnavailable(text)

        if isinstance(exc, BinanceAPIException):
            status, code, msg = exc.status_code, exc.code, str(exc.message or "")
            text = f"{where}: HTTP {status}, code {code}: {msg}"
            retry_after = _retry_after(exc.response)
            if status in _LOCATION_STATUSES:
                return RestrictedLocation(
                    f"{where}: Binance refuses requests from this location (HTTP {status}): "
                    f"{_brief(msg)} Deploy in an AWS region Binance serves (README, Deploy)."
                )
            if status == 418:
                return IpBanned(text, retry_after)
            if status == 429 or code in _RATE_LIMIT_CODES:
                return RateLimited(text, retry_after)
            if status >= 500 or code in _UNKNOWN_STATUS_CODES:
                return unknown(text)
            if code == -1021:
                return ClockSkew(text)
            if code == -1013:
                match = _FILTER_RE.search(msg)
                return FilterViolation(match.group(1) if match else "UNKNOWN", msg, order_values)
            if code == -2010:
                if msg == _MSG_DUPLICATE:
                    return DuplicateOrder(text, code=code, value=client_order_id)
                if msg == _MSG_INSUFFICIENT:
                    return InsufficientBalance(text, code=code, value=order_values)
                if msg == _MSG_MARKET_CLOSED:
                    return SymbolNotTrading(f"{text} (the symbol is not trading)", code=code)
                return OrderRejected(text, code=code, value=order_values)
            if code == _NO_REFERENCE_PRICE:
                return SymbolNotTrading(text, code=code)
            if code in _NOT_FOUND_CODES:
                return OrderNotFound(text)
            if code in _CREDENTIAL_CODES:
                return ConfigurationError(f"{where}: Binance refused the API credentials: {text}")
            if code == -1121:
                return ConfigurationError(f"{where}: Binance does not list this symbol: {text}")
            return OrderRejected(text, code=code)
        if isinstance(exc, BinanceRequestException):
            return unknown(f"{where}: unreadable response from Binance")
        # requests: timeouts, connection errors and the like. Their text holds the URL.
        return unknown(f"{where}: {type(exc).__name__} talking to Binance")


def _order_state(payload: Mapping[str, Any], *, client_order_id: str | None = None) -> OrderState:
    time_ms = payload.get("updateTime") or payload.get("transactTime") or payload.get("time") or 0
    return OrderState(
        symbol=payload["symbol"],
        order_id=int(payload["orderId"]),
        client_order_id=client_order_id or payload["clientOrderId"],
        side=Side(payload["side"]),
        price=Decimal(payload["price"]),
        orig_qty=Decimal(payload["origQty"]),
        executed_qty=Decimal(payload["executedQty"]),
        cumulative_quote_qty=Decimal(payload["cummulativeQuoteQty"]),
        status=OrderStatus(payload["status"]),
        time_ms=int(time_ms),
        expiry_reason=_expiry_reason(payload.get("expiryReason")),
        placed_ms=int(payload.get("time") or 0),
    )


def _expiry_reason(value: Any) -> str:
    """Binance's ``expiryReason`` when it names a reason (absent and ``NONE`` do not)."""
    return "" if value in (None, "", "NONE") else str(value)
