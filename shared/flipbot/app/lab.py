"""The strategy lab's decision makers by name, wired to the recorded books.

``ma-cross`` runs a trading session (:class:`~flipbot.domain.strategies_lab.TradingSession`)
whose limits come from the function environment and whose P&L comes from the trades
table:

* ``SESSION_PROFIT_TARGET``: realized P&L after fees and AI cost that ends the session
  (quote; default ``0.5 × QUOTE_PER_CYCLE``);
* ``SESSION_MAX_LOSS``: the loss, realized plus the open position, that ends it (quote;
  default ``0.2 × QUOTE_PER_CYCLE``);
* ``SESSION_TIME_LIMIT_HOURS``: the session's length from its first cycle (default 168).

``off`` disables a condition. The session starts when cycle ``c000001`` opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from flipbot.domain.cycle import cycle_id_for
from flipbot.domain.entities import ZERO
from flipbot.domain.errors import ConfigurationError
from flipbot.domain.strategies_lab import (
    AdaptiveStrategy,
    MaCrossStrategy,
    SessionLimits,
    TradingSession,
)
from flipbot.ports import DecisionMaker, Repositories

#: Every decision maker name the replay and the lab accept.
STRATEGIES = ("ai", "offline", "fixed", "openai", "adaptive", "ma-cross")


class RecordedLedger:
    """A session's P&L and start, read from the trades and cycles tables."""

    def __init__(self, repos: Repositories, symbol: str, first_cycle_id: str = cycle_id_for(1)):
        self.repos = repos
        self.symbol = symbol
        self.first_cycle_id = first_cycle_id

    def realized_pnl(self) -> Decimal:
        trades = self.repos.trades.all(self.symbol)
        return sum((t.realized_pnl - t.ai_cost_usd for t in trades), ZERO)

    def started_ms(self) -> int | None:
        first = self.repos.cycles.get(self.first_cycle_id)
        return first.created_ms if first is not None else None


def session_limits(env: Mapping[str, str], quote_per_cycle: Decimal) -> SessionLimits:
    """The session limits from ``env`` (see the module docstring)."""

    def amount(name: str, default: Decimal) -> Decimal | None:
        raw = (env.get(name) or "").strip()
        if raw.lower() == "off":
            return None
        if not raw:
            return default
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ConfigurationError(f"{name}={raw!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ConfigurationError(f"{name}={raw!r} must be a positive number or 'off'")
        return value

    hours = amount("SESSION_TIME_LIMIT_HOURS", Decimal(168))
    return SessionLimits(
        profit_target=amount("SESSION_PROFIT_TARGET", quote_per_cycle / 2),
        max_loss=amount("SESSION_MAX_LOSS", quote_per_cycle / 5),
        time_limit_ms=None if hours is None else int(hours * 3_600_000),
    )


def build_decider(
    name: str,
    *,
    repos: Repositories,
    symbol: str,
    quote_per_cycle: Decimal,
    env: Mapping[str, str],
) -> DecisionMaker | None:
    """The lab decision maker called ``name``; ``None`` for names it does not define.

    ``ai`` without an AI key is the offline strategy (the consult path stays the same).
    """
    if name == "adaptive":
        return AdaptiveStrategy()
    if name == "ma-cross":
        session = TradingSession(
            session_limits(env, quote_per_cycle), RecordedLedger(repos, symbol)
        )
        return MaCrossStrategy(session=session)
    if name == "ai":
        from flipbot.domain.strategy import OfflineStrategy

        return OfflineStrategy()
    return None
