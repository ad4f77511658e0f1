"""Binance spot REST API emulation over a :class:`~flipbot_dev.paper.engine.PaperExchange`.

:class:`BinanceRestApp` is a pure request handler: ``handle(method, path, params,
headers)`` returns ``(status, headers, body)`` with Binance's JSON bodies, HTTP statuses,
error codes and messages. It serves the endpoints python-binance's ``Client`` calls for
spot trading:

=====================================  ======  ======================================
path                                   signed  notes
=====================================  ======  ======================================
GET /api/v3/ping, /api/v3/time         no
GET /api/v3/exchangeInfo               no      ``symbol`` or ``symbols`` (JSON list)
GET /api/v3/ticker/bookTicker          no      ``symbol`` optional
GET /api/v3/ticker/price               no      ``symbol`` optional
GET /api/v3/avgPrice, /api/v3/depth    no      top of book only for depth
GET /api/v3/klines                     no      ``interval`` 1m to 1w, from the tape
GET /api/v3/ticker/24hr                no      ``symbol`` optional
GET /api/v3/account                    yes     ``omitZeroBalances``
GET /api/v3/account/commission         yes
POST / GET / DELETE /api/v3/order      yes     ``newOrderRespType`` ACK, RESULT, FULL
GET /api/v3/openOrders                 yes
GET /api/v3/allOrders                  yes     ``orderId``, ``limit``
GET /api/v3/myTrades                   yes     ``orderId``, ``fromId``, ``limit``
=====================================  ======  ======================================

Signed requests are checked as Binance does: the ``X-MBX-APIKEY`` header (-2014 /
-2015, HTTP 401), the HMAC-SHA256 ``signature`` over the query string followed by the
request body (-1022), then ``timestamp`` against ``recvWindow`` on the app's clock
(-1021).

Limits, as Binance enforces them per IP and account:

* every response carries ``X-MBX-USED-WEIGHT-1M`` (Binance's weights per endpoint);
  going over ``weight_limit`` in a minute answers HTTP 429 (-1003) with ``Retry-After``
  (seconds to the next minute), without processing the request;
* a client that keeps sending while refused is banned: the ``ban_after``-th refusal in
  one minute starts a ban of ``ban_ms`` (doubled for each further ban, at most 3 days)
  during which every request gets HTTP 418 (-1003 "IP banned until ...") with
  ``Retry-After``;
* new orders are counted per 10 s and per day (``X-MBX-ORDER-COUNT-10S`` / ``-1D`` on
  order responses); above ``order_limit_10s`` / ``order_limit_1d`` a new order gets
  HTTP 429 -1015.

``lookup_delay_ms`` reproduces Binance's eventual consistency: for that long after its
creation an order is unknown to ``GET /api/v3/order`` (-2013), so a client cannot take
"not found" right after a lost create-order response for "never placed".

Klines and 24-hour tickers come from a :class:`~flipbot_dev.paper.tape.MarketTape` that
records the trades replayed into the exchange.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flipbot_dev.paper import errors as e
from flipbot_dev.paper.engine import PaperExchange
from flipbot_dev.paper.errors import BinanceError
from flipbot_dev.paper.tape import INTERVALS_MS, MarketTape

API_PREFIX = "/api/v3/"
DEFAULT_RECV_WINDOW = 5000
MAX_RECV_WINDOW = 60000
_INTEGER_RE = re.compile(r"^[0-9]{1,20}$")
_INTEGER_LEGAL_RANGE = "^[0-9]{1,20}$"
_RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
_ACK_FIELDS = ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
_MAX_BAN_MS = 3 * 86_400_000
_BAD_INTERVAL = -1120
_MSG_BAD_INTERVAL = "Invalid interval."

Params = Mapping[str, str]
Handler = Callable[[Params], Any]
Weight = Callable[[Params], int]


@dataclass(frozen=True, slots=True)
class _Route:
    handler: Handler
    signed: bool
    weight: Weight


def _fixed(weight: int) -> Weight:
    return lambda _params: weight


def _with_symbol(with_symbol: int, without: int) -> Weight:
    return lambda params: with_symbol if params.get("symbol") else without


def _depth_weight(params: Params) -> int:
    raw = params.get("limit", "")
    limit = int(raw) if raw.isdigit() else 100
    for bound, weight in ((100, 5), (500, 25), (1000, 50)):
        if limit <= bound:
            return weight
    return 250


class BinanceRestApp:
    """The REST face of a paper exchange; one instance per account.

    ``clock`` (epoch ms) defaults to the exchange's clock and is the server time used for
    ``/api/v3/time``, the timestamp checks and the limit windows. ``tape`` defaults to a
    new :class:`MarketTape` listening to the exchange's trades.

    With :attr:`location_restricted` set, every request is answered HTTP 451 (code 0), as
    Binance answers callers from a location it does not serve.
    """

    location_restricted: bool = False

    def __init__(
        self,
        exchange: PaperExchange,
        *,
        api_key: str = "paper",
        api_secret: str = "paper-secret",
        clock: Callable[[], int] | None = None,
        weight_limit: int = 6000,
        ban_after: int = 10,
        ban_ms: int = 120_000,
        order_limit_10s: int = 100,
        order_limit_1d: int = 200_000,
        lookup_delay_ms: int = 0,
        tape: MarketTape | None = None,
    ) -> None:
        self.exchange = exchange
        self.clock = clock or exchange.clock
        self.weight_limit = weight_limit
        self.ban_after = ban_after
        self.ban_ms = ban_ms
        self.order_limit_10s = order_limit_10s
        self.order_limit_1d = order_limit_1d
        self.lookup_delay_ms = lookup_delay_ms
        if tape is None:
            tape = MarketTape()
            exchange.trade_listeners.append(tape.on_trade)
        self.tape = tape
        self._refused = 0  # requests refused with 429 in the current weight window
        self._banned_until = -1
        self._bans = 0
        self._api_key = api_key
        self._api_secret = api_secret.encode()
        self._weight_window = -1
        self._weight_used = 0
        self._orders_10s: tuple[int, int] = (-1, 0)
        self._orders_1d: tuple[int, int] = (-1, 0)
        self._routes: dict[tuple[str, str], _Route] = {
            ("GET", "ping"): _Route(lambda _p: {}, False, _fixed(1)),
            ("GET", "time"): _Route(lambda _p: {"serverTime": self.clock()}, False, _fixed(1)),
            ("GET", "exchangeInfo"): _Route(self._exchange_info, False, _fixed(20)),
            ("GET", "ticker/bookTicker"): _Route(self._book_ticker, False, _with_symbol(2, 4)),
            ("GET", "ticker/price"): _Route(self._ticker_price, False, _with_symbol(2, 4)),
            ("GET", "avgPrice"): _Route(self._avg_price, False, _fixed(2)),
            ("GET", "depth"): _Route(self._depth, False, _depth_weight),
            ("GET", "klines"): _Route(self._klines, False, _fixed(2)),
            ("GET", "ticker/24hr"): _Route(self._ticker_24hr, False, _with_symbol(2, 80)),
            ("GET", "account"): _Route(self._account, True, _fixed(20)),
            ("GET", "account/commission"): _Route(self._commission, True, _fixed(20)),
            ("POST", "order"): _Route(self._new_order, True, _fixed(1)),
            ("GET", "order"): _Route(self._get_order, True, _fixed(4)),
            ("DELETE", "order"): _Route(self._cancel_order, True, _fixed(1)),
            ("GET", "openOrders"): _Route(self._open_orders, True, _with_symbol(6, 80)),
            ("GET", "allOrders"): _Route(self._all_orders, True, _fixed(20)),
            ("GET", "myTrades"): _Route(self._my_trades, True, _fixed(20)),
        }

    # --- entry point --------------------------------------------------------------------
    def handle(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        payload: str | None = None,
        clock_skew_ms: int = 0,
    ) -> tuple[int, dict[str, str], str]:
        """Serve one request; never raises for a request Binance would refuse.

        ``params`` holds the query and body parameters, in the order sent. ``payload`` is
        the exact signed text (query string, then body, without ``signature``); when
        omitted it is rebuilt from ``params`` as ``k=v&...``. ``clock_skew_ms`` shifts
        the server clock for this request's timestamp check.
        """
        if self.location_restricted:
            restricted = BinanceError(0, e.MSG_RESTRICTED_LOCATION, http_status=451)
            return self._error(restricted)
        method = method.upper()
        endpoint = path[len(API_PREFIX) :] if path.startswith(API_PREFIX) else None
        route = self._routes.get((method, endpoint)) if endpoint is not None else None
        if route is None:
            known = endpoint is not None and any(p == endpoint for _, p in self._routes)
            error = BinanceError(e.UNSUPPORTED_OPERATION, e.MSG_UNSUPPORTED_OPERATION)
            return self._error(error, status=405 if known else 404)
        now = self.clock()
        if now < self._banned_until:
            return self._banned(now)
        over = self._spend_weight(route.weight(params), now)
        if over is not None:
            return over
        placing = (method, endpoint) == ("POST", "order")
        try:
            if route.signed:
                self._authenticate(params, headers, payload, now + clock_skew_ms)
            if placing:
                self._count_order(now)
            body = route.handler(params)
        except BinanceError as error:
            status, response_headers, text = self._error(error)
        else:
            status, response_headers, text = 200, self._headers(), _dumps(body)
        if placing:
            response_headers["X-MBX-ORDER-COUNT-10S"] = str(self._orders_10s[1])
            response_headers["X-MBX-ORDER-COUNT-1D"] = str(self._orders_1d[1])
        return status, response_headers, text

    # --- security -----------------------------------------------------------------------
    def _authenticate(
        self, params: Params, headers: Mapping[str, str], payload: str | None, server_ms: int
    ) -> None:
        key = next((v for k, v in headers.items() if k.lower() == "x-mbx-apikey"), "")
        if not key or not key.isalnum():
            raise BinanceError(e.BAD_API_KEY_FMT, e.MSG_BAD_API_KEY_FMT)
        if not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise BinanceError(e.REJECTED_MBX_KEY, e.MSG_REJECTED_MBX_KEY)
        timestamp = _int(params, "timestamp", required=True)
        signature = params.get("signature", "")
        if not signature:
            raise e.mandatory("signature")
        if payload is None:
            payload = "&".join(f"{k}={v}" for k, v in params.items() if k != "signature")
        expected = hmac.new(self._api_secret, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise BinanceError(e.INVALID_SIGNATURE, e.MSG_INVALID_SIGNATURE)
        recv_window = _int(params, "recvWindow") or DEFAULT_RECV_WINDOW
        if recv_window > MAX_RECV_WINDOW:
            raise BinanceError(
                e.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
                e.MSG_CANNOT_BE_GREATER.format(name="recvWindow", limit=MAX_RECV_WINDOW),
            )
        assert timestamp is not None
        if timestamp >= server_ms + 1000:
            raise BinanceError(e.INVALID_TIMESTAMP, e.MSG_AHEAD_OF_SERVER)
        if server_ms - timestamp > recv_window:
            raise BinanceError(e.INVALID_TIMESTAMP, e.MSG_OUTSIDE_RECV_WINDOW)

    # --- limits -------------------------------------------------------------------------
    def _spend_weight(self, weight: int, now: int) -> tuple[int, dict[str, str], str] | None:
        window = now // 60_000
        if window != self._weight_window:
            self._weight_window, self._weight_used = window, 0
            self._refused = 0
        self._weight_used += weight
        if self._weight_used <= self.weight_limit:
            return None
        self._refused += 1
        if self._refused >= self.ban_after:
            self._refused = 0
            self._banned_until = now + min(self.ban_ms * 2**self._bans, _MAX_BAN_MS)
            self._bans += 1
            return self._banned(now)
        retry_after = _seconds(((window + 1) * 60_000) - now)
        error = BinanceError(
            e.TOO_MANY_REQUESTS,
            e.MSG_TOO_MUCH_WEIGHT.format(limit=self.weight_limit, interval="1 MINUTE"),
            http_status=429,
        )
        status, headers, body = self._error(error)
        headers["Retry-After"] = str(retry_after)
        return status, headers, body

    def _banned(self, now: int) -> tuple[int, dict[str, str], str]:
        error = BinanceError(
            e.TOO_MANY_REQUESTS, e.MSG_IP_BANNED.format(until_ms=self._banned_until), 418
        )
        status, headers, body = self._error(error)
        headers["Retry-After"] = str(_seconds(self._banned_until - now))
        return status, headers, body

    def _count_order(self, now: int) -> None:
        ten_s, day = now // 10_000, now // 86_400_000
        self._orders_10s = (ten_s, (self._orders_10s[1] if self._orders_10s[0] == ten_s else 0) + 1)
        self._orders_1d = (day, (self._orders_1d[1] if self._orders_1d[0] == day else 0) + 1)
        for count, limit, interval in (
            (self._orders_10s[1], self.order_limit_10s, "10 SECOND"),
            (self._orders_1d[1], self.order_limit_1d, "1 DAY"),
        ):
            if count > limit:
                raise BinanceError(
                    e.TOO_MANY_ORDERS,
                    e.MSG_TOO_MANY_ORDERS.format(limit=limit, interval=interval),
                )

    def _headers(self) -> dict[str, str]:
        return {
            "Content-Type": "application/json;charset=UTF-8",
            "X-MBX-USED-WEIGHT-1M": str(self._weight_used),
        }

    def _error(
        self, error: BinanceError, status: int | None = None
    ) -> tuple[int, dict[str, str], str]:
        return status or error.http_status, self._headers(), _dumps(error.payload())

    # --- market data --------------------------------------------------------------------
    def _exchange_info(self, params: Params) -> Any:
        if params.get("symbol"):
            return self.exchange.exchange_info([params["symbol"]])
        if params.get("symbols"):
            try:
                names = json.loads(params["symbols"])
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                raise e.illegal_chars("symbols", '["SYMBOL",...]') from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise e.illegal_chars("symbols", '["SYMBOL",...]')
            return self.exchange.exchange_info(names)
        return self.exchange.exchange_info()

    def _book_ticker(self, params: Params) -> Any:
        if params.get("symbol"):
            return self.exchange.book_ticker(params["symbol"])
        return [self.exchange.book_ticker(s) for s in self.exchange.symbols]

    def _ticker_price(self, params: Params) -> Any:
        if params.get("symbol"):
            return self.exchange.ticker_price(params["symbol"])
        return [self.exchange.ticker_price(s) for s in self.exchange.symbols]

    def _avg_price(self, params: Params) -> Any:
        return self.exchange.avg_price(_required(params, "symbol"))

    def _depth(self, params: Params) -> Any:
        _limit(params, default=100, maximum=5000)
        return self.exchange.depth(_required(params, "symbol"))

    def _klines(self, params: Params) -> Any:
        symbol = self.exchange.symbol_info(_required(params, "symbol"))["symbol"]
        interval = _required(params, "interval")
        if interval not in INTERVALS_MS:
            raise BinanceError(_BAD_INTERVAL, _MSG_BAD_INTERVAL)
        return self.tape.klines(
            symbol,
            interval,
            start_ms=_int(params, "startTime"),
            end_ms=_int(params, "endTime"),
            limit=_limit(params, default=500, maximum=1000),
        )

    def _ticker_24hr(self, params: Params) -> Any:
        if params.get("symbol"):
            return self._one_ticker_24hr(params["symbol"])
        return [self._one_ticker_24hr(s) for s in self.exchange.symbols]

    def _one_ticker_24hr(self, symbol: str) -> dict[str, Any]:
        book = self.exchange.book_ticker(symbol)
        stats = self.tape.ticker_24hr(book["symbol"], self.clock())
        ordered = {k: stats[k] for k in list(stats)[:7]}
        ordered.update({k: book[k] for k in ("bidPrice", "bidQty", "askPrice", "askQty")})
        ordered.update({k: stats[k] for k in list(stats)[7:]})
        return ordered

    # --- account and orders -------------------------------------------------------------
    def _account(self, params: Params) -> Any:
        omit = params.get("omitZeroBalances", "false").lower() == "true"
        return self.exchange.account(omit_zero_balances=omit)

    def _commission(self, params: Params) -> Any:
        return self.exchange.commission_rates(_required(params, "symbol"))

    def _new_order(self, params: Params) -> Any:
        symbol = _required(params, "symbol")
        side = _required(params, "side")
        order_type = _required(params, "type")
        response_type = params.get("newOrderRespType") or (
            "FULL" if order_type in ("LIMIT", "MARKET") else "ACK"
        )
        if response_type not in _RESPONSE_TYPES:
            raise e.illegal_chars("newOrderRespType", "ACK, RESULT, FULL")
        full = self.exchange.place_order(
            symbol,
            side,
            order_type,
            quantity=params.get("quantity"),
            price=params.get("price"),
            time_in_force=params.get("timeInForce"),
            new_client_order_id=params.get("newClientOrderId"),
        )
        if response_type == "ACK":
            return {k: full[k] for k in _ACK_FIELDS}
        if response_type == "RESULT":
            return {k: v for k, v in full.items() if k != "fills"}
        return full

    def _get_order(self, params: Params) -> Any:
        symbol = _required(params, "symbol")
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        order = self.exchange.get_order(symbol, order_id, client_id)
        if self.clock() - int(order["time"]) < self.lookup_delay_ms:
            raise BinanceError(e.NO_SUCH_ORDER, e.MSG_NO_SUCH_ORDER)
        return order

    def _cancel_order(self, params: Params) -> Any:
        symbol = _required(params, "symbol")
        order_id = _int(params, "orderId")
        client_id = params.get("origClientOrderId") or None
        return self.exchange.cancel_order(
            symbol, order_id, client_id, new_client_order_id=params.get("newClientOrderId")
        )

    def _open_orders(self, params: Params) -> Any:
        return self.exchange.open_orders(params.get("symbol") or None)

    def _all_orders(self, params: Params) -> Any:
        symbol = _required(params, "symbol")
        limit = _limit(params, default=500, maximum=1000)
        return self.exchange.all_orders(symbol, _int(params, "orderId"), limit)

    def _my_trades(self, params: Params) -> Any:
        symbol = _required(params, "symbol")
        limit = _limit(params, default=500, maximum=1000)
        return self.exchange.my_trades(
            symbol, order_id=_int(params, "orderId"), from_id=_int(params, "fromId"), limit=limit
        )


# --- parameter helpers ---------------------------------------------------------------------
def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if not value:
        raise e.mandatory(name)
    return value


def _int(params: Params, name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if not value:
        if required:
            raise e.mandatory(name)
        return None
    if not _INTEGER_RE.match(value):
        raise e.illegal_chars(name, _INTEGER_LEGAL_RANGE)
    return int(value)


def _limit(params: Params, *, default: int, maximum: int) -> int:
    limit = _int(params, "limit")
    if limit is None:
        return default
    if limit > maximum:
        raise BinanceError(
            e.MANDATORY_PARAM_EMPTY_OR_MALFORMED,
            e.MSG_CANNOT_BE_GREATER.format(name="limit", limit=maximum),
        )
    return limit


def _seconds(ms: int) -> int:
    """Whole seconds, rounded up, at least 1 (a ``Retry-After`` value)."""
    return max(1, -(-ms // 1000))


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))
