"""The bundled sample market: a seeded, TRUMP-like trade stream generated on demand.

The sample is generated, not stored: :func:`generate_sample` builds the same stream
from the same seed on every machine (pure Python: ``random.Random`` and ``math``, prices
and quantities rounded to integers of ticks and steps before becoming ``Decimal``).

The model, minute by minute:

* **Volatility clustering** — the variance of 1-minute log returns follows GARCH(1,1):
  ``var = omega + alpha * r_prev**2 + beta * var_prev`` with ``alpha = 0.08``,
  ``beta = 0.90`` and an unconditional 1-minute volatility of 0.5 % (realised about
  0.4-0.7 %, a daily range of 12-25 %, like TRUMPUSDC in its first weeks of 2025).
* **Fat tails** — each minute's shock is a Student-t draw (5 degrees of freedom) scaled to
  unit variance, so 1-minute returns have excess kurtosis.
* **Two-way movement** — the log price is pulled toward a level (half-life about 40
  minutes) that itself wanders as a slow random walk (about 0.8 % a day): swings of
  1-3 % come and go several times an hour without a fixed rhythm, and the price stays
  around 26 USDC.
* **Order-flow regimes** — a persistent three-state regime (sellers, balanced, buyers)
  is re-drawn every 20 minutes on average; it tilts the taker side of trades (runs of buys
  or sells), the book quantities, and adds a small drift in its direction.
* **Trade arrivals** — bursts arrive as a Poisson process whose intensity is
  proportional to the current volatility; each burst holds one or more trades (1 + a
  geometric number, 2.2 on average) about 180 ms apart, 85 % of them on the side of the
  burst's first trade (one aggressive order filling against several makers): some 15
  trades a minute on average, a handful in calm minutes and dozens in volatile ones.
* **Intra-minute path** — the mid price moves from the minute's open to its close along a
  Brownian bridge sampled at the trade times.
* **Book and trades** — the book is 1 tick wide (2 ticks more often when volatile); a
  taker buy prints at the ask, a taker sell at the bid. The taker side leans with the
  last price move and the regime. Sizes are log-normal (median 2 TRUMP, 3 decimals);
  1 % of trades are large (about 30 TRUMP times a Pareto factor up to 40) and half of
  those print one tick through the book.

Every trade is preceded by a :class:`~flipbot_dev.replay.data.BookEvent`, and each minute ends
with one, so an exchange replaying the sample always has a book.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path

from flipbot_dev.replay.data import BookEvent, DataKind, MarketData, MarketEvent, TradeEvent

__all__ = ["DEFAULT_START_MS", "SAMPLE_SYMBOL", "generate_sample", "write_csv"]

DEFAULT_START_MS = 1_737_331_200_000
"""2025-01-20T00:00:00Z."""

SAMPLE_SYMBOL = "TRUMPUSDC"

_TICK_DECIMALS = 2
_STEP_DECIMALS = 3
_TICK = Decimal(1).scaleb(-_TICK_DECIMALS)
_STEP = Decimal(1).scaleb(-_STEP_DECIMALS)
_START_PRICE = 26.0
_MINUTE_MS = 60_000

# volatility (per 1-minute log return)
_SIGMA = 0.005
_ALPHA = 0.08
_BETA = 0.90
_OMEGA = _SIGMA**2 * (1 - _ALPHA - _BETA)
_T_DOF = 5.0
_MAX_SIGMA = 0.02
# drift
_REVERSION_PER_MINUTE = 1 / 60  # pull of the log price toward a slowly wandering level
_LEVEL_SIGMA = 0.0002  # per-minute random walk of that level
_REGIME_DRIFT = 0.12  # in units of the minute's sigma
_REGIME_SWITCH = 0.05  # per minute
# arrivals
_TRADES_PER_MINUTE = 15.0
_BURST_EXTRA_MEAN = 1.2  # extra trades per burst (geometric)
_BURST_GAP_MS = 180.0
_BURST_SAME_SIDE = 0.85  # a burst is mostly one aggressive order sweeping several makers
# sizes
_QTY_MEDIAN = 2.0
_QTY_LOG_SIGMA = 1.1
_LARGE_PROBABILITY = 0.01
_BOOK_QTY_MEDIAN = 60.0


def _student_t(rng: random.Random, dof: float) -> float:
    """A Student-t draw scaled to unit variance."""
    chi2 = rng.gammavariate(dof / 2, 2.0)
    return rng.gauss(0.0, 1.0) / math.sqrt(chi2 / dof) * math.sqrt((dof - 2) / dof)


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's product of uniforms; ``mean`` stays well below 700)."""
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _qty_steps(rng: random.Random, median: float, log_sigma: float) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), log_sigma) * 10**_STEP_DECIMALS + 0.5))


class _Decimals:
    """Interned ``Decimal`` values for integer ticks and steps."""

    def __init__(self, decimals: int) -> None:
        self._decimals = -decimals
        self._cache: dict[int, Decimal] = {}

    def __call__(self, units: int) -> Decimal:
        value = self._cache.get(units)
        if value is None:
            value = self._cache[units] = Decimal(units).scaleb(self._decimals)
        return value


def generate_sample(
    seed: int = 7,
    hours: float = 24,
    start_ms: int = DEFAULT_START_MS,
    symbol: str = SAMPLE_SYMBOL,
) -> MarketData:
    """A seeded TRUMP-like stream of trades and books (see the module docstring).

    The same arguments always give the same events, on any machine.
    """
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    rng = random.Random(seed)
    price_of = _Decimals(_TICK_DECIMALS)
    qty_of = _Decimals(_STEP_DECIMALS)
    end_ms = start_ms + round(hours * 3_600_000)
    log_price = level = math.log(_START_PRICE)
    variance = _SIGMA**2
    last_return = 0.0
    regime = 0
    events: list[MarketEvent] = []
    append = events.append

    minute_start = start_ms
    while minute_start < end_ms:
        # volatility and the minute's return
        variance = _OMEGA + _ALPHA * last_return**2 + _BETA * variance
        sigma = min(math.sqrt(variance), _MAX_SIGMA)
        if rng.random() < _REGIME_SWITCH:
            regime = rng.choice((-1, 0, 1))
        level += _LEVEL_SIGMA * rng.gauss(0.0, 1.0)
        drift = -_REVERSION_PER_MINUTE * (log_price - level) + _REGIME_DRIFT * regime * sigma
        minute_return = drift + sigma * _student_t(rng, _T_DOF)
        last_return = minute_return

        # trade times: Poisson bursts, busier when volatile
        intensity = _TRADES_PER_MINUTE * (sigma / _SIGMA) / (1 + _BURST_EXTRA_MEAN)
        times: list[tuple[int, int]] = []  # (offset in the minute, burst number)
        for burst in range(_poisson(rng, min(intensity, 200.0))):
            t = rng.random() * _MINUTE_MS
            times.append((int(t), burst))
            while rng.random() < _BURST_EXTRA_MEAN / (1 + _BURST_EXTRA_MEAN):
                t += rng.expovariate(1 / _BURST_GAP_MS)
                if t >= _MINUTE_MS:
                    break
                times.append((int(t), burst))
        times.sort()
        burst_sides: dict[int, bool] = {}

        # mid path: Brownian bridge from 0 to minute_return, sampled at the trade times
        bridge_sigma = 0.7 * sigma
        wide_probability = min(0.6, 0.15 * sigma / _SIGMA)
        path, at = 0.0, 0
        previous = 0.0
        for offset, burst in times:
            if offset > at:
                remaining = _MINUTE_MS - at
                step = offset - at
                mean = path + (minute_return - path) * step / remaining
                spread_var = step * (_MINUTE_MS - offset) / remaining / _MINUTE_MS
                path = mean + bridge_sigma * math.sqrt(spread_var) * rng.gauss(0.0, 1.0)
                at = offset
            mid = math.exp(log_price + path) * 10**_TICK_DECIMALS
            spread = 2 if rng.random() < wide_probability else 1
            bid = max(1, math.floor(mid - spread / 2 + 0.5))
            ask = bid + spread
            move = (path - previous) / max(sigma * 0.3, 1e-9)
            previous = path
            if burst in burst_sides and rng.random() < _BURST_SAME_SIDE:
                taker_buys = burst_sides[burst]
            else:
                buy_probability = 0.5 + 0.15 * regime + 0.3 * math.tanh(move)
                taker_buys = rng.random() < min(0.95, max(0.05, buy_probability))
            burst_sides[burst] = taker_buys
            large = rng.random() < _LARGE_PROBABILITY
            if large:
                qty = _qty_steps(rng, _QTY_MEDIAN * 15, 0.4) * min(40, int(rng.paretovariate(1.8)))
                through = 1 if rng.random() < 0.5 else 0
            else:
                qty = _qty_steps(rng, _QTY_MEDIAN, _QTY_LOG_SIGMA)
                through = 0
            tilt = 0.35 * regime
            bid_qty = _qty_steps(rng, _BOOK_QTY_MEDIAN * (1 + tilt), 0.8)
            ask_qty = _qty_steps(rng, _BOOK_QTY_MEDIAN * (1 - tilt), 0.8)
            time_ms = minute_start + offset
            if time_ms >= end_ms:
                break
            append(
                BookEvent(time_ms, price_of(bid), qty_of(bid_qty), price_of(ask), qty_of(ask_qty))
            )
            price = ask + through if taker_buys else max(1, bid - through)
            append(TradeEvent(time_ms, price_of(price), qty_of(qty), not taker_buys))

        log_price += minute_return
        close_ms = minute_start + _MINUTE_MS - 1
        if close_ms < end_ms:
            mid = math.exp(log_price) * 10**_TICK_DECIMALS
            bid = max(1, math.floor(mid))
            tilt = 0.35 * regime
            bid_qty = _qty_steps(rng, _BOOK_QTY_MEDIAN * (1 + tilt), 0.8)
            ask_qty = _qty_steps(rng, _BOOK_QTY_MEDIAN * (1 - tilt), 0.8)
            append(
                BookEvent(
                    close_ms, price_of(bid), qty_of(bid_qty), price_of(bid + 1), qty_of(ask_qty)
                )
            )
        minute_start += _MINUTE_MS

    return MarketData(
        symbol=symbol,
        source=f"generate_sample(seed={seed}, hours={hours}, start_ms={start_ms})",
        kind=DataKind.SAMPLE,
        events=tuple(events),
        tick=_TICK,
        step=_STEP,
    )


def write_csv(data: MarketData, path: str | Path) -> Path:
    """Write the trades of ``data`` as a trades CSV (``time_ms,price,qty,is_buyer_maker``).

    Book events are not written; :func:`flipbot_dev.replay.data.load_market_data` synthesizes
    a book in front of every trade when reading the file back. Returns the path.
    """
    target = Path(path)
    lines = ["time_ms,price,qty,is_buyer_maker"]
    lines.extend(
        f"{t.time_ms},{t.price},{t.qty},{'true' if t.is_buyer_maker else 'false'}"
        for t in data.trades()
    )
    target.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n")
    return target
