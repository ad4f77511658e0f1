"""The listener follows a reference pair (BTC by default) on the same connection and puts
the correlation of the two pairs' 1-minute returns into the market snapshot."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot.listener.core import MarketPipeline, OutboundQueue
from flipbot.listener.settings import ListenerSettings

from .conftest import T0

ENV = {
    "SYMBOL": "TRUMPUSDC",
    "EVENT_BUS_NAME": "bus",
    "MARKET_TABLE": "market",
    "BINANCE_API_KEY": "k" * 64,
    "BINANCE_API_SECRET": "s" * 64,
}


def _kline(symbol: str, minute: int, close: float, *, closed: bool = True) -> str:
    start = T0 + minute * 60_000
    data = {
        "t": start,
        "T": start + 59_999,
        "s": symbol,
        "i": "1m",
        "c": f"{close:.6f}",
        "v": "5",
        "x": closed,
    }
    stream = f"{symbol.lower()}@kline_1m"
    return json.dumps(
        {"stream": stream, "data": {"e": "kline", "E": start, "s": symbol, "k": data}}
    )


def _walk(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    prices = [60_000.0]
    for _ in range(n - 1):
        prices.append(prices[-1] * math.exp(rng.gauss(0, 0.002)))
    return prices


def _fed(pipeline: MarketPipeline, own: list[float], ref: list[float]) -> Any:
    book = {"u": 1, "s": "TRUMPUSDC", "b": "30.00", "B": "5", "a": "30.01", "A": "5"}
    pipeline.feed(json.dumps(book), T0)
    for minute, (a, b) in enumerate(zip(own, ref, strict=True)):
        now = T0 + (minute + 1) * 60_000
        pipeline.feed(_kline("BTCUSDC", minute, b), now)
        pipeline.feed(_kline("TRUMPUSDC", minute, a), now)
    return pipeline.snapshot(T0 + (len(own) + 1) * 60_000)


def test_the_snapshot_carries_the_correlation_with_the_reference_pair() -> None:
    pipeline = MarketPipeline("TRUMPUSDC", OutboundQueue(100), reference_symbol="BTCUSDC")
    btc = _walk(1, 61)
    snapshot = _fed(pipeline, [p / 2000 for p in btc], btc)
    assert snapshot.btc_correlation == 1
    assert pipeline.ignored == 0
    # the reference pair's klines do not stand in for the symbol's own
    assert snapshot.extra["kline_1m_close"] == f"{btc[-1] / 2000:.6f}"


def test_too_few_minutes_are_unknown_and_unclosed_minutes_do_not_count() -> None:
    pipeline = MarketPipeline("TRUMPUSDC", OutboundQueue(100), reference_symbol="BTCUSDC")
    btc = _walk(2, 10)
    assert _fed(pipeline, [p / 2000 for p in btc], btc).btc_correlation is None
    # forty minutes of both pairs, the reference's never closed: still unknown
    btc = _walk(4, 40)
    for minute, price in enumerate(btc, start=10):
        now = T0 + (minute + 1) * 60_000
        pipeline.feed(_kline("BTCUSDC", minute, price, closed=False), now)
        pipeline.feed(_kline("TRUMPUSDC", minute, price / 2000), now)
    assert pipeline.correlation.value() is None
    # the same minutes closed give the correlation
    for minute, price in enumerate(btc, start=10):
        pipeline.feed(_kline("BTCUSDC", minute, price), T0 + (minute + 1) * 60_000)
    assert pipeline.correlation.value() == 1.0


def test_without_a_reference_pair_its_klines_are_ignored() -> None:
    pipeline = MarketPipeline("TRUMPUSDC", OutboundQueue(100))
    btc = _walk(3, 30)
    snapshot = _fed(pipeline, [p / 2000 for p in btc], btc)
    assert snapshot.btc_correlation is None
    assert pipeline.ignored == 30


def test_the_reference_pair_is_followed_on_the_market_connection() -> None:
    settings = ListenerSettings.from_env(ENV)
    assert settings.reference_symbol == "BTCUSDC"
    assert settings.market_streams()[-1] == "btcusdc@kline_1m"
    off = ListenerSettings.from_env({**ENV, "CORRELATION_SYMBOL": "off"})
    assert off.reference_symbol == ""
    assert "btcusdc@kline_1m" not in off.market_url()
    itself = ListenerSettings.from_env({**ENV, "SYMBOL": "BTCUSDC"})
    assert itself.reference_symbol == ""
    assert itself.market_streams().count("btcusdc@kline_1m") == 1
    other = ListenerSettings.from_env({**ENV, "CORRELATION_SYMBOL": "ethusdc"})
    assert other.market_streams()[-1] == "ethusdc@kline_1m"


def test_a_bad_reference_pair_is_named_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="CORRELATION_SYMBOL='BTC/USDC'"):
        ListenerSettings.from_env({**ENV, "CORRELATION_SYMBOL": "BTC/USDC"})
