"""Client order ids: how a stack names its orders, and tells them from everyone else's.

Every order a stack places carries its own prefix, so that two stacks trading on one
Binance account never take each other's orders for their own:

* a cycle's order: ``<prefix>-<cycle>-<B|S><attempt>``, e.g. ``fb1a2b3c4d-c000001-B1``,
  or ``fb1a2b3c4d-BTCUSDC_c000001-B1`` for a cycle of a symbol other than the stack's
  ``Symbol`` (the cycle id carries its symbol);
* the sell that follows a manual buy: ``<prefix>-m<orderId>``, e.g. ``fb1a2b3c4d-m12345``,
  or ``fb1a2b3c4d-BTCUSDC_m12345`` on another symbol (Binance numbers each symbol's
  orders on their own, so the symbol keeps two follow-ups apart).

The prefix is ``fb`` and up to 13 lowercase letters or digits. A deployed stack gets
``fb`` + the first 8 hex digits of its CloudFormation stack id (``ORDER_ID_PREFIX``);
without one it is plain ``fb``, as local tools use. With the longest prefix and the
largest Binance order id (19 digits), ``<prefix>-m<orderId>`` is 36 characters, Binance's
limit for a client order id.

An id of that shape with another ``fb`` prefix is another stack's order: neither this
stack's own nor a manual one. Any other id is a manual order (the Binance app's
``web_...``, ``ios_...``, or another program's).
"""

from __future__ import annotations

import re

from flipbot.domain.model import Side

DEFAULT_PREFIX = "fb"
"""The prefix without a stack: local tools, the twin's defaults, the tests."""

PREFIX_PATTERN = r"^fb[0-9a-z]{0,13}$"
"""What ``ORDER_ID_PREFIX`` may be: ``fb`` and up to 13 lowercase letters or digits."""

BINANCE_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
"""What Binance accepts as a ``newClientOrderId`` whichever of its two statements holds:
the API documentation allows ``.``, ``:`` and ``/`` as well, its -1100 error names
``^[a-zA-Z0-9-_]{1,36}$``; this stack's ids keep to the narrower one."""

_ANY_STACK = re.compile(
    r"^(fb[0-9a-z]{0,13})-(?:((?:[A-Z0-9]{5,20}_)?c\d{6,})-([BS])(\d+)|(?:[A-Z0-9]{5,20}_)?m(\d+))$"
)

#: room kept for a cycle order's attempt number when checking that ids fit (``-B999``)
ATTEMPT_DIGITS = 3


def client_order_id(cycle_id: str, leg: Side | str, attempt: int, *, prefix: str) -> str:
    """Deterministic client order id for one intent: ``<prefix>-<cycle>-<B|S><attempt>``."""
    return f"{prefix}-{cycle_id}-{str(leg)[0]}{attempt}"


def follow_up_client_order_id(manual_order_id: int, *, prefix: str, symbol_part: str = "") -> str:
    """The sell that follows the manual buy with exchange id ``manual_order_id``;
    ``symbol_part`` is empty for the stack's ``Symbol``, else the buy's symbol."""
    middle = f"{symbol_part}_" if symbol_part else ""
    return f"{prefix}-{middle}m{manual_order_id}"


def longest_cycle_order_id(prefix: str, symbol_part: str) -> str:
    """The longest id a cycle order of ``symbol_part`` gets in its first million cycles
    (attempts up to 999): what must fit Binance's 36 characters."""
    cycle = f"{symbol_part}_c999999" if symbol_part else "c999999"
    return f"{prefix}-{cycle}-B{'9' * ATTEMPT_DIGITS}"


def parse_client_order_id(coid: str, *, prefix: str) -> tuple[str, Side, int] | None:
    """(cycle id, leg, attempt) of one of this stack's cycle orders, or None for any other id."""
    match = _ANY_STACK.match(coid)
    if match is None or match.group(1) != prefix or match.group(2) is None:
        return None
    _, cycle, leg, attempt, _ = match.groups()
    return cycle, Side.BUY if leg == "B" else Side.SELL, int(attempt)


def is_system_client_order_id(coid: str, *, prefix: str) -> bool:
    """This stack's own orders: a cycle's, or the sell that follows a manual buy."""
    return coid.startswith(f"{prefix}-")


def cycle_order_symbol_part(coid: str) -> str | None:
    """The symbol part of the cycle ``coid`` names when it is a cycle order of any stack
    (``fb…-<cycle>-<B|S><n>``): ``""`` for a cycle of the stack's ``Symbol``; None for
    any other id."""
    match = _ANY_STACK.match(coid)
    if match is None or match.group(2) is None:
        return None
    return match.group(2).rpartition("_")[0]


def other_stack_prefix(coid: str, *, prefix: str) -> str:
    """The prefix of the stack that placed ``coid`` when that is another stack; ``""`` when
    the id is this stack's own or a manual order's."""
    match = _ANY_STACK.match(coid)
    if match is None or match.group(1) == prefix:
        return ""
    return match.group(1)
