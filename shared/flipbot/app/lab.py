"""The strategy lab's decision makers by name, wired to the recorded books.

``ma-cross`` runs a trading session (:class:`~flipbot.domain.strategies_lab.TradingSession`)
whose limits are the settings' (``Settings.session_limits``: ``SESSION_PROFIT_TARGET``,
default ``0.5 × QUOTE_PER_CYCLE``; ``SESSION_MAX_LOSS``, default ``0.2 × QUOTE_PER_CYCLE``;
``SESSION_TIME_LIMIT_HOURS``, default 168; ``off`` disables one) and whose P&L comes from
the trades table. The session starts when cycle ``c000001`` opened.
"""

from __future__ import annotations

from decimal import Decimal

from flipbot.domain.cycle import cycle_id_for
from flipbot.domain.entities import ZERO
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


def build_decider(
    name: str,
    *,
    repos: Repositories,
    symbol: str,
    limits: SessionLimits,
) -> DecisionMaker | None:
    """The lab decision maker called ``name``; ``None`` for names it does not define.

    ``ai`` without an AI key is the offline strategy (the consult path stays the same).
    """
    if name == "adaptive":
        return AdaptiveStrategy()
    if name == "ma-cross":
        session = TradingSession(limits, RecordedLedger(repos, symbol))
        return MaCrossStrategy(session=session)
    if name == "ai":
        from flipbot.domain.strategy import OfflineStrategy

        return OfflineStrategy()
    return None
