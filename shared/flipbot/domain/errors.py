"""One error taxonomy for the whole bot.

Adapters translate library errors (``BinanceAPIException``, ``ClientError``, OpenAI
errors) into these types; the state machine's ``Retry`` blocks name only the
retryable ones, and outcomes are decided by type, never by message text.
The class name is the error name Step Functions sees, so renaming one is an API change.
"""

from __future__ import annotations

from decimal import Decimal


class FlipbotError(Exception):
    """Base of every error the bot raises on purpose."""

    retryable: bool = False


# --- retryable: the same request may succeed later -------------------------------------
class RetryableError(FlipbotError):
    retryable = True


class ExchangeUnavailable(RetryableError):
    """5XX, connection refused, or a timeout before the request was sent."""


class RateLimited(RetryableError):
    """HTTP 429 (or -1003/-1015): back off for ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IpBanned(RetryableError):
    """HTTP 418: the IP is banned until ``retry_after``; every caller must stop."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClockSkew(RetryableError):
    """-1021: timestamp outside recvWindow; resync the clock and retry."""


class UnknownOrderOutcome(RetryableError):
    """A create-order call whose result is unknown (timeout after send, 5XX, -1007).

    Never blind-retry: look the order up by its client order id first.
    """

    def __init__(self, message: str, client_order_id: str) -> None:
        super().__init__(message)
        self.client_order_id = client_order_id


class OrderNotSettled(RetryableError):
    """A create-order's outcome is still unknown; look again later, do not re-send yet.

    ``unknown_since_ms`` is when the outcome became unknown: Binance may answer -2013 for a
    short while after accepting an order, so "not found" means "not yet" until a grace
    period has passed.
    """

    def __init__(self, message: str, unknown_since_ms: int = 0) -> None:
        super().__init__(message)
        self.unknown_since_ms = unknown_since_ms


# --- terminal: retrying the same request cannot help ----------------------------------
class ConcurrentUpdate(RetryableError):
    """Another writer changed the item first; re-read and apply again."""


class TerminalError(FlipbotError):
    retryable = False


class OrderRejected(TerminalError):
    """The exchange refused the order (filters, balance, duplicate id, ...)."""

    def __init__(self, message: str, code: int | None = None, value: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.value = value


class FilterViolation(OrderRejected):
    """-1013: a symbol filter (PRICE_FILTER, LOT_SIZE, NOTIONAL, ...) failed."""

    def __init__(self, filter_type: str, message: str, value: str | None = None) -> None:
        super().__init__(message, code=-1013, value=value)
        self.filter_type = filter_type


class InsufficientBalance(OrderRejected):
    """-2010 'Account has insufficient balance for requested action.'"""


class DuplicateOrder(OrderRejected):
    """-2010 'Duplicate order sent.': an order with that client order id exists."""


class OrderCanceled(TerminalError):
    """The exchange ended a waiting order (canceled, expired, rejected) without the fill
    its leg waited for: the leg is consulted again. Sent as a waiting task's failure."""


class OrderNotFound(TerminalError):
    """-2013 / -2011: the exchange does not know the order."""


class GuardRejected(TerminalError):
    """A hard guard refused a decision (confidence, floor, band, notional, ...)."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(f"{guard}: {message}")
        self.guard = guard


class InvalidTransition(TerminalError):
    """A cycle was asked to move to a state its current state cannot reach."""


class ConfigurationError(TerminalError):
    """Missing or invalid configuration; names the setting and the offending value."""


class RestrictedLocation(ConfigurationError):
    """Binance refuses requests from where they come from: HTTP 451 (a restricted location)
    or a 403 from its web application firewall. For a deployed stack that place is its AWS
    region; nothing but a deployment in a region Binance serves helps."""


class SymbolNotTrading(ConfigurationError):
    """The exchange takes no new order on the bot's symbol: its status is not TRADING
    (``CANCEL_ONLY``, ``HALT``, ``BREAK``: -2010 'Market is closed.'), or it has no
    reference price (-2043). Open orders can still be canceled. Retrying cannot help until
    Binance reopens the symbol, so the cycle fails at once with this message."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class CycleNotSold(TerminalError):
    """A cycle asked to close still holds base it can sell (its sell rests, or the exchange
    ended it part filled): it is not closed; the rest is sold first."""


class PositionGone(TerminalError):
    """The account holds less of the base asset than the cycle holds (withdrawn, or sold
    outside the bot): no sell of the cycle can be placed, and waiting will not bring the
    asset back. The cycle is stopped with this message as its reason."""

    def __init__(self, held: Decimal, available: Decimal, asset: str) -> None:
        super().__init__(
            f"position gone from the account: held {held} {asset}, account has {available} {asset}"
        )
        self.held = held
        self.available = available


class InvalidEvent(TerminalError):
    """An incoming event does not match its model; nothing was applied."""


class KillSwitchEngaged(TerminalError):
    """The operator's kill switch is on: no order may be placed."""


class AiUnavailable(RetryableError):
    """The AI endpoint failed (timeout, 5XX, 429, refusal, unparsable answer), or was not
    asked because the day's AI budget is spent (``budget_spent``)."""

    def __init__(self, message: str = "", *, budget_spent: bool = False) -> None:
        super().__init__(message)
        self.budget_spent = budget_spent


class SignalUnavailable(FlipbotError):
    """An outside signal the AI is given as context (market sentiment) could not be read.

    Neither retryable nor terminal for the cycle: the consultation goes on without that
    signal, so it never reaches the state machine. ``provider`` names the source,
    ``reason`` is a short code (``timeout``, ``http_503``, ``malformed``, ...) and
    ``retry_after`` (seconds, when the source said) how long to leave it alone."""

    def __init__(
        self, provider: str, reason: str, detail: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class ExecutionExists(TerminalError):
    """Step Functions has an execution of that name already (running or ended): a name
    is used once per state machine."""


class TaskNotWaiting(TerminalError):
    """A Step Functions task token that no execution waits on any more (timed out, used)."""


def error_type(name: str) -> type[FlipbotError] | None:
    """The class of this taxonomy that Step Functions reports as ``name``, if any."""
    pending: list[type[FlipbotError]] = [FlipbotError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None
