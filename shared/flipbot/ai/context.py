"""The market context the model decides from, and optional outside signals.

:func:`build_context` turns a :class:`~flipbot.domain.decision.DecisionRequest` into a
JSON-ready dict: price and book (the best bid and ask, and the top 10 levels of each
side with their imbalance, ``depth_top10`` and ``imbalance_top10``), moving averages
(MA5/MA7/MA20) and VWAP, order-book imbalance, 24 h high/low/volume and where the price
sits in that range, the last minute's price and volume change against the minute before
(percent), volatility (per minute and per hour), order flow (taker buy/sell ratio, large
trades), fees, and the cycle's constraints (minimum confidence, minimum and target profit, quote per
cycle, price band). On the sell leg it adds the position: entry price, profit floor,
quantity held, the profit the current price would give (gross and after fees), the
target price and how much of the target profit the current price gives, which sell
attempt this is and how many re-pricing steps there are, and the momentum (MA7 trend,
MA5 against MA20). ``trading_context`` says how the bot's last closed trades went: the
last one's profit after fees and AI cost, the average time an order took to fill, and
the share of trades that made money. Unknown values are ``null`` so the model sees
that they are unknown. Anything the listener puts in ``MarketSnapshot.extra`` (a BTC
correlation, for instance) is passed on under ``signals.market``.

Context providers add outside signals (Fear & Greed index, news or social sentiment)
behind one small interface, :class:`ContextProvider`. None is on unless configured.
:func:`gather_signals` runs them side by side under one time limit; a provider that
fails or is late is left out and logged, never blocking the decision.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from flipbot.domain.decision import DecisionRequest
from flipbot.domain.model import Side

__all__ = [
    "ContextProvider",
    "StaticContextProvider",
    "build_context",
    "gather_signals",
]

logger = logging.getLogger(__name__)

_MAX_SIGNAL_CHARS = 200


class ContextProvider(Protocol):
    """A source of outside signals for the prompt (Fear & Greed, news sentiment, ...).

    ``fetch`` returns a few short name/value pairs for ``symbol``. It may raise or be
    slow: :func:`gather_signals` bounds it in time and drops what fails.
    """

    name: str

    def fetch(self, symbol: str) -> Mapping[str, str]: ...


class StaticContextProvider:
    """Fixed signals, e.g. an operator's note or a value set by another job."""

    def __init__(self, name: str, values: Mapping[str, str]) -> None:
        self.name = name
        self._values = dict(values)

    def fetch(self, symbol: str) -> Mapping[str, str]:
        return dict(self._values)


def gather_signals(
    providers: Sequence[ContextProvider], symbol: str, *, timeout: float = 2.0
) -> dict[str, dict[str, str]]:
    """``{provider name: {signal: value}}`` from the providers that answered in time.

    Providers run in parallel; the call returns after at most ``timeout`` seconds
    whatever they do. Failures and late answers are logged (type only) and left out.
    """
    if not providers:
        return {}
    results: dict[str, dict[str, str]] = {}
    pool = ThreadPoolExecutor(max_workers=len(providers), thread_name_prefix="ctx")
    try:
        futures = {pool.submit(p.fetch, symbol): p.name for p in providers}
        done, late = wait(futures, timeout=timeout)
        for future in done:
            name = futures[future]
            error = future.exception()
            if error is not None:
                logger.warning("context provider %s failed: %s", name, type(error).__name__)
                continue
            values = future.result()
            results[name] = {
                str(k)[:_MAX_SIGNAL_CHARS]: str(v)[:_MAX_SIGNAL_CHARS] for k, v in values.items()
            }
        for future in late:
            logger.warning(
                "context provider %s gave no answer within %ss", futures[future], timeout
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return dict(sorted(results.items()))


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _pct(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value * 100, 4)


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _ratio(a: Decimal | None, b: Decimal | None) -> float | None:
    """``a / b - 1`` as a float, or ``None`` when either is unknown or ``b`` is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return float(a / b) - 1


def _depth(request: DecisionRequest) -> dict[str, Any]:
    """The book's top levels (``depth_top10``: bids and asks, best first, as
    ``[price, quantity]``) and their imbalance (``imbalance_top10``, -1..1)."""
    depth = request.depth
    if depth is None:
        return {"depth_top10": None, "imbalance_top10": None}
    imbalance = depth.imbalance()
    return {
        "depth_top10": {
            "bids": [[str(p), str(q)] for p, q in depth.bids[:10]],
            "asks": [[str(p), str(q)] for p, q in depth.asks[:10]],
        },
        "imbalance_top10": None if imbalance is None else float(imbalance),
    }


def build_context(
    request: DecisionRequest,
    *,
    price_band: Decimal | None = None,
    signals: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The prompt's context for ``request`` (see the module docstring); JSON-ready.

    Prices and quantities are strings (exact decimals); derived figures are percentages
    rounded to 4 decimals.
    """
    snap = request.snapshot
    book = snap.book
    last = snap.last_price
    volatility = None if snap.volatility is None else float(snap.volatility)
    range_position = None
    if snap.high_24h is not None and snap.low_24h is not None and snap.high_24h > snap.low_24h:
        range_position = _pct(float((last - snap.low_24h) / (snap.high_24h - snap.low_24h)))
    market: dict[str, Any] = {
        "last_price": str(last),
        "best_bid": _s(book.bid) if book else None,
        "best_bid_qty": _s(book.bid_qty) if book else None,
        "best_ask": _s(book.ask) if book else None,
        "best_ask_qty": _s(book.ask_qty) if book else None,
        "spread_pct": _pct(_ratio(book.ask, book.bid)) if book else None,
        "ma5": _s(snap.ma5),
        "ma7": _s(snap.ma7),
        "ma7_trend": snap.ma7_trend,
        "ma20": _s(snap.ma20),
        "vwap": _s(snap.vwap),
        "price_vs_ma20_pct": _pct(_ratio(last, snap.ma20)),
        "price_vs_vwap_pct": _pct(_ratio(last, snap.vwap)),
        "order_book_imbalance": None if snap.imbalance is None else float(snap.imbalance),
        "volatility_1m_pct": _pct(volatility),
        "volatility_1h_pct": None if volatility is None else _pct(volatility * math.sqrt(60)),
        "taker_buy_sell_ratio": None if snap.buy_sell_ratio is None else float(snap.buy_sell_ratio),
        "large_trades": snap.large_trades,
        "high_24h": _s(snap.high_24h),
        "low_24h": _s(snap.low_24h),
        "volume_24h": _s(snap.volume_24h),
        "position_in_24h_range_pct": range_position,
        "price_change_1m": _pct(_float(snap.price_change_1m)),
        "volume_change_1m": _pct(_float(snap.volume_change_1m)),
        "btc_correlation": _float(snap.btc_correlation),
        **_depth(request),
    }
    context: dict[str, Any] = {
        "leg": request.leg.value,
        "symbol": request.symbol,
        "time": datetime.fromtimestamp(snap.time_ms / 1000, tz=UTC).isoformat(timespec="seconds"),
        "market": market,
        "costs": {"fee_rate_round_trip": str(request.fee_rate_round_trip)},
        "constraints": {
            "min_confidence": request.min_confidence,
            "min_profit": str(request.min_profit),
            "target_profit": str(request.target_profit),
            "quote_per_cycle": str(request.quote_per_cycle),
            "price_band": _s(price_band),
        },
    }
    if request.leg is Side.SELL:
        entry = request.entry_price
        gross = _ratio(last, entry)
        context["position"] = {
            "entry_price": _s(entry),
            "floor_price": _s(request.floor_price),
            "quantity": _s(request.quantity),
            "profit_now_pct": _pct(gross),
            "profit_now_after_fees_pct": None
            if gross is None
            else _pct(gross - float(request.fee_rate_round_trip)),
            "target_price": _s(request.target_price),
            "profit_now_of_target_pct": None
            if gross is None or request.target_profit <= 0
            else _pct((gross - float(request.fee_rate_round_trip)) / float(request.target_profit)),
            "price_to_target_pct": _pct(_ratio(request.target_price, last)),
            "sell_attempt": request.sell_attempt,
            "reprice_steps": request.reprice_steps,
            "momentum": {
                "ma7_trend": snap.ma7_trend,
                "ma5_vs_ma20_pct": _pct(_ratio(snap.ma5, snap.ma20)),
            },
        }
    if request.trading_context is not None:
        history = request.trading_context
        context["trading_context"] = {
            "trades": history.trades,
            "last_profit": _s(history.last_profit),
            "avg_fill_time": history.avg_fill_time,
            "success_rate": history.success_rate,
        }
    outside: dict[str, dict[str, str]] = {}
    if snap.extra:
        outside["market"] = {str(k): str(v) for k, v in sorted(snap.extra.items())}
    for name, values in (signals or {}).items():
        outside[name] = dict(values)
    if outside:
        context["signals"] = outside
    return context
