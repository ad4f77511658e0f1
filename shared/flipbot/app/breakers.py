"""The circuit breakers at a buy consultation (see :mod:`flipbot.domain.breakers`).

What they read: the market snapshot's volatility, the cycle's own count of failed buy
consultations in a row, and the symbol's last :data:`TRADES_READ` closed trades (one
query, which the buy consultation's trading context shares). A trade that closed under
its entry price is a stop-loss exit: nothing else sells under the floor (a cycle that
sold nothing, its dust left, records an exit price of 0 and is not one).
"""

from __future__ import annotations

from collections.abc import Sequence

from flipbot.domain.breakers import BreakerInputs, ClosedTrade, Trip, tripped
from flipbot.domain.entities import Cycle, TradeRecord
from flipbot.domain.model import MarketSnapshot
from flipbot.ports import Services

__all__ = ["TRADES_READ", "check_breakers", "count_failure"]

#: how many of the last closed trades the loss and drawdown breakers read
TRADES_READ = 200


def check_breakers(
    services: Services,
    cycle: Cycle,
    snapshot: MarketSnapshot,
    now: int,
    recent: Sequence[TradeRecord],
) -> Trip | None:
    """The breaker that pauses this buy consultation, or ``None``; ``recent`` are the
    symbol's last :data:`TRADES_READ` closed trades, in the order they closed."""
    limits = services.settings.breaker_limits
    trades: list[ClosedTrade] = []
    last_stop: int | None = None
    for trade in recent:
        trades.append(ClosedTrade(trade.closed_ms, trade.realized_pnl - trade.ai_cost_usd))
        if 0 < trade.exit_price < trade.entry_price:  # a dust cycle sold nothing: 0
            last_stop = max(last_stop or 0, trade.closed_ms)
    return tripped(
        limits,
        BreakerInputs(
            now_ms=now,
            volatility=snapshot.volatility,
            failures=cycle.buy_failures,
            last_failure_ms=cycle.last_failure_ms,
            trades=trades,
            last_stop_loss_ms=last_stop,
        ),
    )


def count_failure(services: Services, cycle: Cycle, failed: bool, now: int) -> Cycle:
    """Record a buy consultation's outcome on the cycle: one more failure in a row, or
    none (written only when the count changes)."""
    if failed:
        return services.repos.cycles.save(
            cycle.evolve(buy_failures=cycle.buy_failures + 1, last_failure_ms=now, updated_ms=now)
        )
    if cycle.buy_failures:
        return services.repos.cycles.save(cycle.evolve(buy_failures=0, updated_ms=now))
    return cycle
