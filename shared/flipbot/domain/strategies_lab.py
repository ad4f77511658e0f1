"""The strategy lab: more decision makers behind :class:`flipbot.ports.DecisionMaker`.

* :class:`AdaptiveStrategy` (``adaptive``) — margin, entry price and order timeout adapt
  to volatility, order-book imbalance and the volume profile; a fee-aware minimum margin,
  a slippage cap against the volume-weighted fair price, and short timeouts on volatile
  markets so that an unfilled buy is re-priced at the fresh book.
* :class:`MaCrossStrategy` (``ma-cross``) — MA(9)/MA(21) crossover on 5-minute candles,
  a 1.5 % take-profit, and a trading session that stops buying on a profit target, a
  maximum loss or a time limit (:class:`TradingSession`).

Like :mod:`flipbot.domain.strategy`, nothing here reads a clock, the environment or a
network: answers depend only on what the decision maker is given. ``adaptive`` is pure
(each answer depends on its request alone). ``ma-cross`` also remembers what it saw: it
builds its candles from the snapshots of the consultations it answers, and its session
reads the recorded P&L through a :class:`SessionLedger` it is given. The same sequence of
requests gives the same answers.

Prices are proposals: the use cases still apply the exchange filters and the guards (price
band, profit floor) afterwards. A SELL proposal is never placed below the cycle's profit
floor. ``ma-cross``'s 1 % stop-loss is the one exit below it, and the cycle enforces it,
not the strategy: selecting ``ma-cross`` sets the ``StopLoss`` default to 1 %
(:data:`flipbot.domain.guards.STRATEGY_STOP_LOSS`). Once the last price is at or under
``entry * (1 - stop_loss)``, the sell leg places the exit at the best ask without asking
the strategy (see :mod:`flipbot.app.consult`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Protocol

from flipbot.domain.decision import Decision, DecisionRequest, PriceRange
from flipbot.domain.guards import STRATEGY_STOP_LOSS
from flipbot.domain.model import MarketSnapshot, Side
from flipbot.domain.strategy import WAIT_RECHECK_SECONDS, aim_from_target, unit_of, wait
from flipbot.domain.strategy import round_down as _down
from flipbot.domain.strategy import round_up as _up
from flipbot.domain.strategy import sell_floor as _floor_of

__all__ = [
    "LAB_STRATEGIES",
    "AdaptiveStrategy",
    "CandleCloses",
    "CrossSignal",
    "MaCrossStrategy",
    "SessionLedger",
    "SessionLimits",
    "TradingSession",
    "cross_signal",
    "session_stop_reason",
]

LAB_STRATEGIES = ("adaptive", "ma-cross")
"""Names of the decision makers defined in this module."""

_ZERO = Decimal(0)
_ONE = Decimal(1)


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


# ============================================================================ adaptive


class AdaptiveStrategy:
    """Offline decisions whose margin, entry and timeout adapt to the market.

    Inputs from the snapshot: ``σ`` = volatility (stdev of 1-minute log returns),
    ``imb`` = order-book imbalance in ``[-1, 1]`` (0 when unknown), the *volume profile*:
    the 15-minute VWAP (the volume-weighted fair price; the mid when unknown) and the
    taker buy/sell ratio ``flow`` (1 when unknown). ``hourly = σ × √60``.

    **BUY leg** (``WAIT`` with confidence 0 without a book or the volatility)

    * *Confidence* starts at ``0.82`` and adds: ``+0.06 × imb``; flow ``≥ 1.2`` ``+0.03``,
      ``< 0.8`` ``-0.05``, ``< 0.5`` ``-0.10``; the last price vs the fair price, in
      units of ``band = max(σ × √15, 0.1 %)``: below ``+0.03``, more than one band above
      ``-0.05``; MA7 trend DOWN ``-0.08``; a *wild* market (``σ > 1 %``) ``-0.20``; a
      *quiet* one, whose expected two-hour move ``hourly × √2`` does not cover
      ``fees + min_net_margin``, ``-0.10``. Clamped to ``[0, 0.99]``; ``BUY`` from
      ``request.min_confidence``.
    * *Price* — ``bid × (1 - discount)`` rounded down, with
      ``discount = σ × (0.5 - 0.4 × imb)`` clamped to ``[0, max_discount]``: bids heavier
      than asks (support) → closer to the bid; asks heavier → deeper.
    * *Max slippage* — the price is capped at ``fair × (1 + max_slippage)``: the bot never
      pays more than 0.2 % over the volume-weighted fair price. When that cap is more
      than ``max_discount`` under the bid (the market ran away) the answer is ``WAIT``.
    * *Timeout and re-pricing* — ``base_timeout_seconds × reference_volatility / σ``
      clamped to ``[min_timeout_seconds, max_timeout_seconds]`` (60-600 s): a volatile
      market cancels an unfilled buy sooner, and the next consultation re-prices it at the
      fresh book.

    **SELL leg** (confidence ``0.95``; ``WAIT`` without an entry price)

    * ``margin = hourly × margin_volatility_factor × (1 + 0.5 × imb) × flow_factor``
      (``flow_factor`` 1.2 when takers buy, ``flow ≥ 1.2``; 0.8 when they sell,
      ``flow < 0.8``; 1 otherwise), clamped to ``[min_net_margin, target_profit]``: a
      volatile market, a bid-heavy book and buying takers ask for more;
    * fee-aware: ``price = entry × (1 + fees + margin)`` rounded up, so the margin is
      *after* fees and never under ``min_net_margin`` (0.3 %); never below the request's
      profit floor either.
    """

    name: str = "adaptive"

    def __init__(
        self,
        *,
        min_net_margin: Decimal = Decimal("0.003"),
        max_slippage: Decimal = Decimal("0.002"),
        max_discount: Decimal = Decimal("0.005"),
        margin_volatility_factor: float = 0.5,
        base_timeout_seconds: int = 300,
        reference_volatility: float = 0.002,
        min_timeout_seconds: int = 60,
        max_timeout_seconds: int = 600,
        sell_confidence: float = 0.95,
    ) -> None:
        self.min_net_margin = min_net_margin
        self.max_slippage = max_slippage
        self.max_discount = max_discount
        self.margin_volatility_factor = margin_volatility_factor
        self.base_timeout_seconds = base_timeout_seconds
        self.reference_volatility = reference_volatility
        self.min_timeout_seconds = min_timeout_seconds
        self.max_timeout_seconds = max_timeout_seconds
        self.sell_confidence = sell_confidence

    def decide(self, request: DecisionRequest) -> Decision:
        if request.leg is Side.BUY:
            return self._buy(request)
        return self._sell(request)

    def timeout(self, volatility: float | None) -> int:
        """Seconds a buy may rest: shorter on volatile markets (re-priced sooner)."""
        if volatility is None or volatility <= 0:
            return self.max_timeout_seconds
        scaled = self.base_timeout_seconds * self.reference_volatility / volatility
        return int(_clamp(round(scaled), self.min_timeout_seconds, self.max_timeout_seconds))

    def margin(self, request: DecisionRequest) -> Decimal:
        """The sell margin over entry after fees (fraction); see the class docstring."""
        snap = request.snapshot
        low, high = self.min_net_margin, max(self.min_net_margin, request.target_profit)
        if snap.volatility is None:
            return low
        hourly = float(snap.volatility) * math.sqrt(60)
        imbalance = _clamp(float(snap.imbalance), -1, 1) if snap.imbalance is not None else 0.0
        flow = float(snap.buy_sell_ratio) if snap.buy_sell_ratio is not None else 1.0
        flow_factor = 1.2 if flow >= 1.2 else 0.8 if flow < 0.8 else 1.0
        raw = hourly * self.margin_volatility_factor * (1 + 0.5 * imbalance) * flow_factor
        margin = Decimal(repr(round(raw, 6)))
        return min(high, max(low, margin)).quantize(Decimal("0.0001"), rounding=ROUND_CEILING)

    def confidence(self, request: DecisionRequest) -> tuple[float, list[str]]:
        """The BUY confidence and one note per feature; see the class docstring."""
        snap = request.snapshot
        if snap.volatility is None:
            raise ValueError("confidence needs the volatility")
        volatility = float(snap.volatility)
        last = float(snap.last_price)
        fair = float(self._fair(snap))
        band = max(volatility * math.sqrt(15), 0.001)
        score, notes = 0.82, []
        imbalance = _clamp(float(snap.imbalance), -1, 1) if snap.imbalance is not None else 0.0
        score += 0.06 * imbalance
        notes.append(f"book imbalance {imbalance:+.2f} ({0.06 * imbalance:+.3f})")
        if snap.buy_sell_ratio is not None:
            flow = float(snap.buy_sell_ratio)
            if flow >= 1.2:
                flow_score = 0.03
            elif flow >= 0.8:
                flow_score = 0.0
            else:
                flow_score = -0.05 if flow >= 0.5 else -0.10
            score += flow_score
            notes.append(f"taker buy/sell {flow:.2f} ({flow_score:+.2f})")
        gap = (last / fair - 1) / band if fair > 0 else 0.0
        value_score = 0.03 if gap < 0 else -0.05 if gap > 1 else 0.0
        score += value_score
        notes.append(f"last vs fair price {fair:g}: {gap:+.2f} bands ({value_score:+.2f})")
        if snap.ma7_trend.upper() == "DOWN":
            score -= 0.08
            notes.append("MA7 trend DOWN (-0.08)")
        hourly = volatility * math.sqrt(60)
        needed = float(request.fee_rate_round_trip + self.min_net_margin)
        if volatility > 0.01:
            score -= 0.20
            notes.append(f"wild market: {volatility:.3%}/min (-0.20)")
        elif hourly * math.sqrt(2) < needed:
            score -= 0.10
            notes.append(f"quiet market: {hourly:.2%}/h cannot cover {needed:.2%} (-0.10)")
        return round(_clamp(score, 0.0, 0.99), 3), notes

    @staticmethod
    def _fair(snap: MarketSnapshot) -> Decimal:
        if snap.vwap is not None and snap.vwap > 0:
            return snap.vwap
        if snap.book is not None:
            return snap.book.mid
        return snap.last_price

    def _buy(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        if snap.book is None or snap.volatility is None:
            missing = [
                n
                for n, v in (("order book", snap.book), ("volatility", snap.volatility))
                if v is None
            ]
            return wait(snap, f"WAIT: not enough market data ({', '.join(missing)} missing)")
        confidence, notes = self.confidence(request)
        volatility = float(snap.volatility)
        imbalance = _clamp(float(snap.imbalance), -1, 1) if snap.imbalance is not None else 0.0
        discount = Decimal(
            repr(
                round(
                    _clamp(volatility * (0.5 - 0.4 * imbalance), 0.0, float(self.max_discount)), 6
                )
            )
        )
        bid = snap.book.bid
        unit = unit_of(bid, snap.book.ask)
        fair = self._fair(snap)
        cap = _down(fair * (1 + self.max_slippage), unit)
        price = _down(bid * (1 - discount), unit)
        slippage_note = f"fair {fair}, slippage cap {cap}"
        if cap < price:
            if cap < bid * (1 - self.max_discount):
                return wait(
                    snap,
                    f"WAIT: bid {bid} ran more than {self.max_slippage:.1%} above "
                    f"the fair price {fair} ({'; '.join(notes)})",
                    confidence,
                )
            price, slippage_note = cap, f"capped at fair {fair} + {self.max_slippage:.1%}"
        timeout = self.timeout(volatility)
        act = confidence >= request.min_confidence
        reasoning = "; ".join(
            [
                *notes,
                f"confidence {confidence:.3f} vs minimum {request.min_confidence:.2f}",
                f"{'BUY' if act else 'WAIT'} at {price}: {float(discount):.3%} under the bid {bid} "
                f"({slippage_note})",
                f"timeout {timeout} s",
            ]
        )
        low = _down(bid * (1 - self.max_discount), unit)
        return Decision(
            action="BUY" if act else "WAIT",
            base_price=price,
            price_range=PriceRange(low=min(low, price), high=max(price, min(bid, cap))),
            confidence=confidence,
            reasoning=reasoning,
            timeout_seconds=timeout if act else WAIT_RECHECK_SECONDS,
        )

    def _sell(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        entry = request.entry_price
        if entry is None:
            return wait(snap, "WAIT: no entry price for the SELL leg")
        fees = request.fee_rate_round_trip
        margin = self.margin(request)
        floor = _floor_of(request, entry)
        unit = unit_of(snap.book.bid if snap.book else None, entry)
        target = entry * (1 + fees + margin)
        price, step_note = aim_from_target(request, _up(max(floor, target), unit), unit)
        high = max(price, _up(entry * (1 + fees + max(margin, request.target_profit)), unit))
        return Decision(
            action="SELL",
            base_price=price,
            price_range=PriceRange(low=min(floor, price), high=high),
            confidence=self.sell_confidence,
            reasoning=(
                f"SELL at {price}: entry {entry} × (1 + fees {fees} + margin {margin}) "
                f"(volatility {snap.volatility}, imbalance {snap.imbalance}, "
                f"taker buy/sell {snap.buy_sell_ratio}; minimum {self.min_net_margin} after "
                f"fees); {step_note + '; ' if step_note else ''}floor {floor}"
            ),
            timeout_seconds=self.timeout(
                None if snap.volatility is None else float(snap.volatility)
            ),
            suggested_margin=margin,
        )


# ============================================================================ session


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """When a trading session stops buying. ``None`` disables a condition.

    * ``profit_target``: realized P&L after fees and AI cost (quote) that ends the session;
    * ``max_loss``: a loss (positive quote amount) that ends it, counting realized P&L and
      the open position marked at the last price;
    * ``time_limit_ms``: how long the session lasts from its start.
    """

    profit_target: Decimal | None = None
    max_loss: Decimal | None = None
    time_limit_ms: int | None = None


class SessionLedger(Protocol):
    """What a session needs from the books: the P&L so far and when it started."""

    def realized_pnl(self) -> Decimal:
        """Realized P&L of the closed cycles after fees and AI cost (quote)."""
        ...

    def started_ms(self) -> int | None:
        """When the session's first cycle opened; ``None`` before it did."""
        ...


def session_stop_reason(
    limits: SessionLimits,
    *,
    realized: Decimal,
    unrealized: Decimal,
    started_ms: int | None,
    now_ms: int,
) -> str | None:
    """The first stop condition met (profit target, max loss, time limit), or ``None``."""
    if limits.profit_target is not None and realized >= limits.profit_target:
        return f"profit target reached: realized P&L {realized:.4f} >= {limits.profit_target}"
    total = realized + unrealized
    if limits.max_loss is not None and total <= -limits.max_loss:
        return (
            f"max loss reached: P&L {total:.4f} (realized {realized:.4f}, open "
            f"{unrealized:.4f}) <= -{limits.max_loss}"
        )
    if limits.time_limit_ms is not None and started_ms is not None:
        elapsed = now_ms - started_ms
        if elapsed >= limits.time_limit_ms:
            return (
                f"time limit reached: {elapsed / 3_600_000:.2f} h >= "
                f"{limits.time_limit_ms / 3_600_000:g} h"
            )
    return None


class TradingSession:
    """A session of cycles that stops buying once a :class:`SessionLimits` condition holds.

    The session starts at the ledger's ``started_ms`` (or at the first request it sees).
    The realized P&L is read from the ledger on the first request, whenever a BUY leg
    follows a SELL leg (a cycle closed) and at least every ``refresh_ms`` otherwise.
    Once stopped it stays stopped (the reason is kept); the position held is still sold.
    """

    def __init__(
        self,
        limits: SessionLimits,
        ledger: SessionLedger | None = None,
        *,
        refresh_ms: int = 900_000,
    ) -> None:
        self.limits = limits
        self.ledger = ledger
        self.refresh_ms = refresh_ms
        self.stopped: str | None = None
        self.stopped_ms: int | None = None
        self._first_seen_ms: int | None = None
        self._started_ms: int | None = None
        self._realized = _ZERO
        self._read_ms: int | None = None
        self._last_leg: Side | None = None

    def _read_ledger(self, leg: Side, now: int) -> None:
        if self.ledger is None:
            return
        due = (
            self._read_ms is None
            or now - self._read_ms >= self.refresh_ms
            or (leg is Side.BUY and self._last_leg is Side.SELL)
        )
        if due:
            self._realized = self.ledger.realized_pnl()
            self._read_ms = now
        if self._started_ms is None:
            self._started_ms = self.ledger.started_ms()

    def check(self, request: DecisionRequest) -> str | None:
        """Evaluate the limits at this request; the stop reason once stopped."""
        now = request.snapshot.time_ms
        if self._first_seen_ms is None:
            self._first_seen_ms = now
        if self.stopped is not None:
            return self.stopped
        self._read_ledger(request.leg, now)
        self._last_leg = request.leg
        realized, started = self._realized, self._started_ms
        unrealized = _ZERO
        if request.leg is Side.SELL and request.entry_price and request.quantity:
            unrealized = request.quantity * (request.snapshot.last_price - request.entry_price)
        reason = session_stop_reason(
            self.limits,
            realized=realized,
            unrealized=unrealized,
            started_ms=started if started is not None else self._first_seen_ms,
            now_ms=now,
        )
        if reason is not None:
            self.stopped, self.stopped_ms = reason, now
        return reason


# ============================================================================ ma-cross


class CandleCloses:
    """Closes of fixed-interval candles built from observed (time, price) samples.

    The close of a candle is the last price observed in it; a candle closes when a sample
    of a later candle arrives. Up to ``max_gap_candles`` candles without a sample repeat
    the previous close (as exchange klines do); a longer gap (the bot was not looking,
    e.g. while a sell rested) clears the history, which then has to fill again. Samples
    older than the newest one are ignored. At most ``capacity`` closes are kept.
    """

    def __init__(self, interval_ms: int, capacity: int, max_gap_candles: int = 1) -> None:
        if interval_ms <= 0 or capacity < 2:
            raise ValueError("need interval_ms > 0 and capacity >= 2")
        self.interval_ms = interval_ms
        self.capacity = capacity
        self.max_gap_candles = max_gap_candles
        self.closes: list[Decimal] = []
        self.resets = 0
        self._bucket: int | None = None
        self._last_ms = -1
        self._close = _ZERO

    def observe(self, time_ms: int, price: Decimal) -> None:
        if time_ms < self._last_ms or price <= 0:
            return
        self._last_ms = time_ms
        bucket = time_ms // self.interval_ms
        if self._bucket is None:
            self._bucket, self._close = bucket, price
            return
        if bucket == self._bucket:
            self._close = price
            return
        missing = bucket - self._bucket - 1
        if missing > self.max_gap_candles:
            self.closes.clear()
            self.resets += 1
        else:
            self.closes.extend([self._close] * (1 + missing))
            del self.closes[: max(0, len(self.closes) - self.capacity)]
        self._bucket, self._close = bucket, price


def _sma(values: list[Decimal], n: int, end: int) -> Decimal:
    """Average of ``values[end - n:end]``."""
    return sum(values[end - n : end], _ZERO) / n


@dataclass(frozen=True, slots=True)
class CrossSignal:
    """The fast/slow moving averages of the closed candles and their last crossings.

    ``state`` is ``BULLISH`` (fast above slow), ``BEARISH`` (fast at or below slow) or
    ``UNKNOWN`` (fewer than ``slow`` closes). ``crossed_up_ago`` / ``crossed_down_ago``:
    candles since the fast average last crossed above / below the slow one (0 = on the
    last closed candle), ``None`` when not seen in the history.
    """

    state: str
    fast: Decimal | None = None
    slow: Decimal | None = None
    crossed_up_ago: int | None = None
    crossed_down_ago: int | None = None


def cross_signal(closes: list[Decimal], fast: int, slow: int) -> CrossSignal:
    """Evaluate the MA(fast)/MA(slow) crossover on ``closes`` (oldest first)."""
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    n = len(closes)
    if n < slow:
        return CrossSignal("UNKNOWN")
    f_now, s_now = _sma(closes, fast, n), _sma(closes, slow, n)
    up = down = None
    above = f_now > s_now
    for end in range(n, slow, -1):  # compare candle end-1 with end-2
        f_prev, s_prev = _sma(closes, fast, end - 1), _sma(closes, slow, end - 1)
        f_cur, s_cur = _sma(closes, fast, end), _sma(closes, slow, end)
        if up is None and f_cur > s_cur and f_prev <= s_prev:
            up = n - end
        if down is None and f_cur <= s_cur and f_prev > s_prev:
            down = n - end
        if up is not None and down is not None:
            break
    return CrossSignal("BULLISH" if above else "BEARISH", f_now, s_now, up, down)


class MaCrossStrategy:
    """MA(9)/MA(21) crossover on 5-minute candles, take-profit 1.5 %, session limits.

    **Candles** — the strategy sees the market at each consultation (about once a
    minute while it waits to buy) and builds 5-minute closes from those snapshots
    (:class:`CandleCloses`). After a gap of more than one candle (a sell rested, a cold
    start) the history restarts: ``slow + 1`` candles (110 minutes) before a new signal.

    **BUY leg**

    * the session is stopped (:class:`TradingSession`) → ``WAIT`` with the reason;
    * a *golden cross* — MA(9) crossed above MA(21) on one of the last ``entry_window``
      closed candles and is still above → ``BUY`` at the best bid, confidence
      ``buy_confidence`` (0.9), resting ``buy_timeout_seconds`` (one candle);
    * otherwise ``WAIT`` (not enough candles, no fresh cross, or a bearish market).

    **SELL leg** (confidence 0.95)

    * *take-profit* — ``entry × (1 + take_profit)`` rounded up;
    * *exit signal* — when the averages are bearish (MA(9) at or below MA(21)) the
      position is offered at the best ask instead, to get out with the trend;
    * either way never below the profit floor the request gives (the cycle never sells
      below it, so both prices are raised to the floor when needed);
    * *stop-loss* — ``entry × (1 - stop_loss)``. The cycle enforces it (the ``StopLoss``
      parameter defaults to this strategy's 1 %): a resting sell is checked every
      ``SellRecheckSeconds`` and replaced by an exit at the best ask once the last price
      is at or under the stop. The strategy itself is not asked then; its answers stay at
      or above the floor.

    The exit signal is evaluated whenever the SELL leg is consulted (right after the buy
    fills, and again when a sell is re-consulted); a resting sell is not re-priced by it,
    nor by the cycle's target-first re-pricing (``reprices_sells`` is false).
    """

    name: str = "ma-cross"
    #: the seed's sells are its take-profit or its exit signal: never stepped down
    reprices_sells: bool = False

    def __init__(
        self,
        *,
        fast: int = 9,
        slow: int = 21,
        candle_ms: int = 300_000,
        take_profit: Decimal = Decimal("0.015"),
        stop_loss: Decimal = STRATEGY_STOP_LOSS["ma-cross"],
        entry_window: int = 2,
        buy_timeout_seconds: int = 300,
        buy_confidence: float = 0.9,
        sell_confidence: float = 0.95,
        session: TradingSession | None = None,
    ) -> None:
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
        self.fast, self.slow = fast, slow
        self.take_profit = take_profit
        self.stop_loss = stop_loss
        self.entry_window = entry_window
        self.buy_timeout_seconds = buy_timeout_seconds
        self.buy_confidence = buy_confidence
        self.sell_confidence = sell_confidence
        self.session = session or TradingSession(SessionLimits())
        self.candles = CandleCloses(candle_ms, capacity=slow + entry_window + 1)

    def signal(self) -> CrossSignal:
        """The crossover state of the candles seen so far."""
        return cross_signal(self.candles.closes, self.fast, self.slow)

    def decide(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        self.candles.observe(snap.time_ms, snap.last_price)
        stop = self.session.check(request)
        if request.leg is Side.BUY:
            if stop is not None:
                return wait(snap, f"WAIT: session stopped: {stop}")
            return self._buy(request)
        return self._sell(request, stop)

    def _describe(self, signal: CrossSignal) -> str:
        if signal.state == "UNKNOWN":
            need = self.slow + 1 - len(self.candles.closes)
            return f"{len(self.candles.closes)} closed 5m candles, {need} more needed"
        return f"MA{self.fast} {signal.fast:.8g} vs MA{self.slow} {signal.slow:.8g}: {signal.state}"

    def _buy(self, request: DecisionRequest) -> Decision:
        snap = request.snapshot
        if snap.book is None:
            return wait(snap, "WAIT: no order book yet")
        signal = self.signal()
        fresh = signal.crossed_up_ago is not None and signal.crossed_up_ago < self.entry_window
        if signal.state != "BULLISH" or not fresh:
            why = "no fresh golden cross" if signal.state != "UNKNOWN" else "warming up"
            return wait(snap, f"WAIT: {why} ({self._describe(signal)})")
        bid = snap.book.bid
        return Decision(
            action="BUY",
            base_price=bid,
            price_range=PriceRange(low=bid, high=bid),
            confidence=self.buy_confidence,
            reasoning=(
                f"BUY at the bid {bid}: golden cross {signal.crossed_up_ago} candle(s) "
                f"ago ({self._describe(signal)})"
            ),
            timeout_seconds=self.buy_timeout_seconds,
        )

    def _sell(self, request: DecisionRequest, stop: str | None) -> Decision:
        snap = request.snapshot
        entry = request.entry_price
        if entry is None:
            return wait(snap, "WAIT: no entry price for the SELL leg")
        floor = _floor_of(request, entry)
        unit = unit_of(snap.book.bid if snap.book else None, entry)
        take = _up(entry * (1 + self.take_profit), unit)
        signal = self.signal()
        notes = [self._describe(signal)]
        if signal.state == "BEARISH" and snap.book is not None:
            wanted, label = snap.book.ask, f"exit signal: offered at the ask {snap.book.ask}"
        else:
            wanted, label = take, f"take-profit {self.take_profit:.1%} at {take}"
        price = _up(max(floor, wanted), unit)
        if price > wanted:
            label += f", raised to the floor {floor}"
        notes.append(f"stop-loss at {entry * (1 - self.stop_loss):.8g}")
        if stop is not None:
            notes.append(f"session stopped: {stop}")
        return Decision(
            action="SELL",
            base_price=price,
            price_range=PriceRange(low=min(floor, price), high=max(price, _up(take, unit))),
            confidence=self.sell_confidence,
            reasoning=f"SELL at {price}: {label}; " + "; ".join(notes),
            suggested_margin=self.take_profit,
        )
