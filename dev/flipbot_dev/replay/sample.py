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
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from flipbot_dev.replay.data import BookEvent, DataKind, MarketData, MarketEvent, TradeEvent

__all__ = [
    "DEFAULT_START_MS",
    "SAMPLE_SYMBOL",
    "SampleProfile",
    "generate_markets",
    "generate_sample",
    "write_csv",
]

DEFAULT_START_MS = 1_737_331_200_000
"""2025-01-20T00:00:00Z."""

SAMPLE_SYMBOL = "TRUMPUSDC"

_TICK_DECIMALS = 2
_STEP_DECIMALS = 3
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


def _qty_steps(
    rng: random.Random, median: float, log_sigma: float, decimals: int = _STEP_DECIMALS
) -> int:
    return max(1, int(rng.lognormvariate(math.log(median), log_sigma) * 10**decimals + 0.5))


@dataclass(frozen=True)
class SampleProfile:
    """What makes one symbol's sample its own: its price, the tick and lot step it is
    quoted in (Binance's for that pair), how much a trade and the book's top hold, and
    its 1-minute volatility. The default is the TRUMP-like sample's."""

    start_price: float = _START_PRICE
    tick_decimals: int = _TICK_DECIMALS
    step_decimals: int = _STEP_DECIMALS
    qty_median: float = _QTY_MEDIAN
    book_qty_median: float = _BOOK_QTY_MEDIAN
    sigma: float = _SIGMA


#: the profiles of the pairs a multi-symbol sample knows (ticks and steps as Binance's
#: spot filters have them, and as the paper exchange lists them); any other symbol gets a
#: 10-quote pair quoted like the paper exchange's default (tick 0.01, step 0.001)
PROFILES: dict[str, SampleProfile] = {
    "TRUMPUSDC": SampleProfile(),
    "BTCUSDC": SampleProfile(97_000.0, 2, 5, 0.002, 0.6, 0.0025),
    "BTCUSDT": SampleProfile(97_000.0, 2, 5, 0.002, 0.6, 0.0025),
    "ETHUSDC": SampleProfile(3_400.0, 2, 4, 0.05, 12.0, 0.003),
    "ETHUSDT": SampleProfile(3_400.0, 2, 4, 0.05, 12.0, 0.003),
    "SOLUSDC": SampleProfile(190.0, 2, 3, 0.8, 150.0, 0.004),
    "BNBUSDC": SampleProfile(690.0, 2, 3, 0.2, 40.0, 0.003),
    "DOGEUSDC": SampleProfile(0.33, 5, 0, 600.0, 90_000.0, 0.0045),
}
_OTHER = SampleProfile(10.0, 2, 3, 5.0, 150.0, 0.004)

#: how much of each minute's shock the symbols of a multi-symbol sample share
MARKET_CORRELATION = 0.6


def profile_of(symbol: str) -> SampleProfile:
    """The sample profile of ``symbol`` (see :data:`PROFILES`)."""
    return PROFILES.get(symbol.upper(), _OTHER)


def generate_markets(
    symbols: Sequence[str],
    seed: int = 7,
    hours: float = 24,
    start_ms: int = DEFAULT_START_MS,
    correlation: float = MARKET_CORRELATION,
) -> dict[str, MarketData]:
    """One correlated market per symbol: each minute's shock is a common market draw
    (weight ``correlation`` of its variance) plus the symbol's own; each symbol has its
    :func:`profile_of`, its own seed (``seed`` and its place in ``symbols``) for everything
    else, and the shared draws come from ``seed`` alone. The same arguments always give
    the same markets."""
    if not symbols:
        raise ValueError("generate_markets needs at least one symbol")
    if not 0 <= correlation < 1:
        raise ValueError(f"correlation must be in [0, 1), got {correlation}")
    return {
        symbol: generate_sample(
            seed=seed * 1_000 + index,
            hours=hours,
            start_ms=start_ms,
            symbol=symbol,
            profile=profile_of(symbol),
            market_seed=seed,
            correlation=correlation,
        )
        for index, symbol in enumerate(symbols)
    }


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
    *,
    profile: SampleProfile | None = None,
    market_seed: int = 0,
    correlation: float = 0.0,
) -> MarketData:
    """A seeded TRUMP-like stream of trades and books (see the module docstring), or
    another pair's with its ``profile``; with ``correlation`` above 0, that share of each
    minute's shock is drawn from ``market_seed`` (see :func:`generate_markets`).

    The same arguments always give the same events, on any machine.
    """
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    p = profile or SampleProfile()
    rng = random.Random(seed)
    market = random.Random(market_seed) if correlation > 0 else None
    shared, own = math.sqrt(correlation), math.sqrt(1 - correlation)
    tick_scale, lot = 10**p.tick_decimals, p.step_decimals
    base_sigma = p.sigma
    omega = base_sigma**2 * (1 - _ALPHA - _BETA)
    max_sigma = _MAX_SIGMA * base_sigma / _SIGMA
    price_of = _Decimals(p.tick_decimals)
    qty_of = _Decimals(lot)
    end_ms = start_ms + round(hours * 3_600_000)
    log_price = level = math.log(p.start_price)
    variance = base_sigma**2
    last_return = 0.0
    regime = 0
    events: list[MarketEvent] = []
    append = events.append

    minute_start = start_ms
    while minute_start < end_ms:
        # volatility and the minute's return
        variance = omega + _ALPHA * last_return**2 + _BETA * variance
        sigma = min(math.sqrt(variance), max_sigma)
        if rng.random() < _REGIME_SWITCH:
            regime = rng.choice((-1, 0, 1))
        level += _LEVEL_SIGMA * rng.gauss(0.0, 1.0)
        drift = -_REVERSION_PER_MINUTE * (log_price - level) + _REGIME_DRIFT * regime * sigma
        shock = _student_t(rng, _T_DOF)
        if market is not None:  # the market's share of the shock, the same for every symbol
            shock = shared * _student_t(market, _T_DOF) + own * shock
        minute_return = drift + sigma * shock
        last_return = minute_return

        # trade times: Poisson bursts, busier when volatile
        intensity = _TRADES_PER_MINUTE * (sigma / base_sigma) / (1 + _BURST_EXTRA_MEAN)
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
        wide_probability = min(0.6, 0.15 * sigma / base_sigma)
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
            mid = math.exp(log_price + path) * tick_scale
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
                qty = _qty_steps(rng, p.qty_median * 15, 0.4, lot) * min(
                    40, int(rng.paretovariate(1.8))
                )
                through = 1 if rng.random() < 0.5 else 0
            else:
                qty = _qty_steps(rng, p.qty_median, _QTY_LOG_SIGMA, lot)
                through = 0
            tilt = 0.35 * regime
            bid_qty = _qty_steps(rng, p.book_qty_median * (1 + tilt), 0.8, lot)
            ask_qty = _qty_steps(rng, p.book_qty_median * (1 - tilt), 0.8, lot)
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
            mid = math.exp(log_price) * tick_scale
            bid = max(1, math.floor(mid))
            tilt = 0.35 * regime
            bid_qty = _qty_steps(rng, p.book_qty_median * (1 + tilt), 0.8, lot)
            ask_qty = _qty_steps(rng, p.book_qty_median * (1 - tilt), 0.8, lot)
            append(
                BookEvent(
                    close_ms, price_of(bid), qty_of(bid_qty), price_of(bid + 1), qty_of(ask_qty)
                )
            )
        minute_start += _MINUTE_MS

    source = f"generate_sample(seed={seed}, hours={hours}, start_ms={start_ms})"
    if profile is not None or market is not None:
        source = (
            f"generate_sample({symbol}, seed={seed}, hours={hours}, start_ms={start_ms}, "
            f"market_seed={market_seed}, correlation={correlation})"
        )
    return MarketData(
        symbol=symbol,
        source=source,
        kind=DataKind.SAMPLE,
        events=tuple(events),
        tick=Decimal(1).scaleb(-p.tick_decimals),
        step=Decimal(1).scaleb(-lot),
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
