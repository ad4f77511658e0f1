"""Binance error codes and messages as the paper exchange reports them.

Every message is Binance's wire text (``errors.md`` of binance-spot-api-docs), so code
that handles a real Binance error handles the paper one the same way. The engine raises
:class:`BinanceError`; the REST app turns it into ``{"code": ..., "msg": ...}`` with the
HTTP status Binance uses for that code.
"""

from __future__ import annotations

# --- codes -------------------------------------------------------------------------------
UNKNOWN = -1000
DISCONNECTED = -1001
TOO_MANY_REQUESTS = -1003
TIMEOUT = -1007
INVALID_MESSAGE = -1013
TOO_MANY_ORDERS = -1015
UNSUPPORTED_OPERATION = -1020
INVALID_TIMESTAMP = -1021
INVALID_SIGNATURE = -1022
ILLEGAL_CHARS = -1100
MANDATORY_PARAM_EMPTY_OR_MALFORMED = -1102
PARAM_NOT_REQUIRED = -1106
INVALID_TIF = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
BAD_SYMBOL = -1121
NEW_ORDER_REJECTED = -2010
CANCEL_REJECTED = -2011
NO_SUCH_ORDER = -2013
BAD_API_KEY_FMT = -2014
REJECTED_MBX_KEY = -2015
NO_REFERENCE_PRICE = -2043

# --- messages ----------------------------------------------------------------------------
MSG_UNKNOWN = "An unknown error occurred while processing the request."
MSG_DISCONNECTED = "Internal error; unable to process your request. Please try again."
MSG_TIMEOUT = (
    "Timeout waiting for response from backend server. "
    "Send status unknown; execution status unknown."
)
MSG_TOO_MUCH_WEIGHT = (
    "Too much request weight used; current limit is {limit} request weight per {interval}. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
MSG_IP_BANNED = (
    "Way too much request weight used; IP banned until {until_ms}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
MSG_TOO_MANY_ORDERS = "Too many new orders; current limit is {limit} orders per {interval}."
MSG_UNSUPPORTED_OPERATION = "This operation is not supported."
MSG_OUTSIDE_RECV_WINDOW = "Timestamp for this request is outside of the recvWindow."
MSG_AHEAD_OF_SERVER = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_INVALID_SIGNATURE = "Signature for this request is not valid."
MSG_ILLEGAL_CHARS_PARAM = (
    "Illegal characters found in parameter '{name}'; legal range is '{legal}'."
)
MSG_ILLEGAL_CHARS = "Illegal characters found in a parameter."
MSG_MALFORMED = "A mandatory parameter was not sent, was empty/null, or malformed."
MSG_MANDATORY_PARAM = "Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
MSG_EITHER_PARAM = "Param '{first}' or '{second}' must be sent, but both were empty/null!"
MSG_CANNOT_BE_GREATER = "'{name}' contains unexpected value. Cannot be greater than {limit}."
MSG_PARAM_NOT_REQUIRED = "Parameter '{name}' sent when not required."
MSG_INVALID_TIF = "Invalid timeInForce."
MSG_INVALID_ORDER_TYPE = "Invalid orderType."
MSG_INVALID_SIDE = "Invalid side."
MSG_BAD_SYMBOL = "Invalid symbol."
MSG_NO_SUCH_ORDER = "Order does not exist."
MSG_BAD_API_KEY_FMT = "API-key format invalid."
MSG_REJECTED_MBX_KEY = "Invalid API-key, IP, or permissions for action."
# Matching-engine messages carried by -2010 / -2011.
MSG_DUPLICATE_ORDER = "Duplicate order sent."
MSG_INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
MSG_WOULD_MATCH_AND_TAKE = "Order would immediately match and take."
MSG_UNKNOWN_ORDER = "Unknown order sent."
MSG_MARKET_CLOSED = "Market is closed."
MSG_NO_REFERENCE_PRICE = "This symbol doesn't have a reference price."
# HTTP 451 (code 0): Binance does not serve the place the request came from.
MSG_RESTRICTED_LOCATION = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you "
    "received this message in error."
)
# HTTP 403 from the web application firewall in front of the API: an HTML page, not JSON.
WAF_BLOCKED_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">\n'
    "<HTML><HEAD><TITLE>ERROR: The request could not be satisfied</TITLE></HEAD>\n"
    "<BODY><H1>403 ERROR</H1><H2>The request could not be satisfied.</H2>\n"
    '<HR noshade size="1px">Request blocked.\n</BODY></HTML>\n'
)

DECIMAL_LEGAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
CLIENT_ORDER_ID_LEGAL_RANGE = r"^[a-zA-Z0-9-_]{1,36}$"

# HTTP status per code where Binance does not answer 400.
_HTTP_STATUS = {
    BAD_API_KEY_FMT: 401,
    REJECTED_MBX_KEY: 401,
    TOO_MANY_REQUESTS: 429,
    TOO_MANY_ORDERS: 429,
    DISCONNECTED: 500,
    UNKNOWN: 500,
    TIMEOUT: 503,
}


def http_status_for(code: int) -> int:
    """The HTTP status Binance answers with for an error ``code`` (400 unless listed)."""
    return _HTTP_STATUS.get(code, 400)


class BinanceError(Exception):
    """A request refused with a Binance error code and its exact message."""

    def __init__(self, code: int, msg: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status if http_status is not None else http_status_for(code)

    def payload(self) -> dict[str, int | str]:
        """The JSON body Binance sends: ``{"code": -2010, "msg": "..."}``."""
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> BinanceError:
    """-1102 for a missing or empty mandatory parameter."""
    return BinanceError(MANDATORY_PARAM_EMPTY_OR_MALFORMED, MSG_MANDATORY_PARAM.format(name=name))


def either(first: str, second: str) -> BinanceError:
    """-1102 when neither of two alternative parameters was sent."""
    return BinanceError(
        MANDATORY_PARAM_EMPTY_OR_MALFORMED, MSG_EITHER_PARAM.format(first=first, second=second)
    )


def illegal_chars(name: str, legal: str) -> BinanceError:
    """-1100 for a parameter outside its legal pattern."""
    return BinanceError(ILLEGAL_CHARS, MSG_ILLEGAL_CHARS_PARAM.format(name=name, legal=legal))


def malformed() -> BinanceError:
    """-1102 for a request that cannot be read (its framing, not one named parameter)."""
    return BinanceError(MANDATORY_PARAM_EMPTY_OR_MALFORMED, MSG_MALFORMED)


def illegal_chars_anywhere() -> BinanceError:
    """-1100 for text that is not UTF-8 (or not ASCII where a URL is)."""
    return BinanceError(ILLEGAL_CHARS, MSG_ILLEGAL_CHARS)
