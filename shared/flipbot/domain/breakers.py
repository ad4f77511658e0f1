"""Circuit breakers: conditions under which the bot places no new buy for a while.

A breaker only pauses buying. A cycle that holds a position goes on selling it as usual
(never below the floor, the stop-loss aside), so nothing is abandoned. Each breaker is
off when its limit is ``None``; :func:`tripped` returns the first that holds, with the
reason, or ``None``:

* ``VOLATILITY``: the one-minute volatility is above ``max_volatility`` (a fraction);
  buying resumes when the market calms down.
* ``FAILURES``: the cycle's last ``max_failures`` buy consultations in a row failed (no
  answer, or an answer the guards refused; an order the exchange refuses after it was
  placed is not counted); buying resumes ``cooldown_ms`` after the last failure, and a
  new failure trips it again.
* ``DAILY_LOSS``: the trades closed since 00:00 UTC lost ``daily_loss`` (quote, after
  fees and AI cost) or more; buying resumes the next UTC day.
* ``DRAWDOWN``: the realized P&L of the trades closed in the last ``drawdown_window_ms``
  fell ``max_drawdown`` (quote) or more from its peak in that window; buying resumes when
  the losing trades leave the window.
* ``STOP_LOSS_COOLDOWN``: the last stop-loss exit filled less than
  ``stop_loss_cooldown_ms`` ago.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["Breaker", "BreakerInputs", "BreakerLimits", "ClosedTrade", "Trip", "tripped"]

DAY_MS = 86_400_000


class Breaker(StrEnum):
    VOLATILITY = "VOLATILITY"
    FAILURES = "FAILURES"
    DAILY_LOSS = "DAILY_LOSS"
    DRAWDOWN = "DRAWDOWN"
    STOP_LOSS_COOLDOWN = "STOP_LOSS_COOLDOWN"


@dataclass(frozen=True, slots=True)
class BreakerLimits:
    max_volatility: Decimal | None = None
    max_failures: int | None = None
    cooldown_ms: int = 900_000
    daily_loss: Decimal | None = None
    max_drawdown: Decimal | None = None
    drawdown_window_ms: int = 7 * DAY_MS
    stop_loss_cooldown_ms: int | None = None

    @property
    def reads_trades(self) -> bool:
        """Whether a breaker needs the closed trades."""
        return self.daily_loss is not None or self.max_drawdown is not None


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    closed_ms: int
    #: realized P&L after fees and AI cost (quote)
    net_pnl: Decimal


@dataclass(frozen=True, slots=True)
class BreakerInputs:
    now_ms: int
    volatility: Decimal | float | None = None
    #: failed buy attempts in a row (newest last) and when the last of them happened
    failures: int = 0
    last_failure_ms: int = 0
    #: closed trades, oldest first (those of the last drawdown window are enough)
    trades: Sequence[ClosedTrade] = ()
    #: when the last stop-loss exit filled, if one did
    last_stop_loss_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Trip:
    breaker: Breaker
    reason: str
    #: when buying may be asked again (0: as soon as the condition clears)
    until_ms: int = 0


def tripped(limits: BreakerLimits, inputs: BreakerInputs) -> Trip | None:
    """The first breaker that holds at ``inputs.now_ms`` (see the module docstring)."""
    now = inputs.now_ms
    if (
        limits.max_volatility is not None
        and inputs.volatility is not None
        and Decimal(str(inputs.volatility)) > limits.max_volatility
    ):
        return Trip(
            Breaker.VOLATILITY,
            f"1-minute volatility {inputs.volatility:.4%} > {limits.max_volatility:%}",
        )
    if limits.max_failures is not None and inputs.failures >= limits.max_failures:
        until = inputs.last_failure_ms + limits.cooldown_ms
        if now < until:
            return Trip(
                Breaker.FAILURES,
                f"{inputs.failures} failed buy attempts in a row (limit {limits.max_failures}); "
                f"paused {limits.cooldown_ms // 1000} s after the last",
                until,
            )
    if limits.daily_loss is not None:
        midnight = now - now % DAY_MS
        today = sum((t.net_pnl for t in inputs.trades if t.closed_ms >= midnight), Decimal(0))
        if today <= -limits.daily_loss:
            return Trip(
                Breaker.DAILY_LOSS,
                f"realized P&L today {today:.4f} <= -{limits.daily_loss}",
                midnight + DAY_MS,
            )
    if limits.max_drawdown is not None:
        since = now - limits.drawdown_window_ms
        running = peak = Decimal(0)
        for trade in inputs.trades:
            if trade.closed_ms < since:
                continue
            running += trade.net_pnl
            peak = max(peak, running)
        if peak - running >= limits.max_drawdown:
            return Trip(
                Breaker.DRAWDOWN,
                f"realized P&L fell {peak - running:.4f} from its peak in the last "
                f"{limits.drawdown_window_ms / 3_600_000:g} h (limit {limits.max_drawdown})",
            )
    if limits.stop_loss_cooldown_ms is not None and inputs.last_stop_loss_ms is not None:
        until = inputs.last_stop_loss_ms + limits.stop_loss_cooldown_ms
        if now < until:
            return Trip(
                Breaker.STOP_LOSS_COOLDOWN,
                f"a stop-loss exit filled {(now - inputs.last_stop_loss_ms) // 1000} s ago "
                f"(cooldown {limits.stop_loss_cooldown_ms // 1000} s)",
                until,
            )
    return None
