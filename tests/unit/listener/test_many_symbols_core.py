"""The listener's side of several symbols: which streams go on which connection, and the
router that hands each message to its symbol's pipeline."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot.listener.core import SHUTDOWN, MarketRouter, OutboundQueue
from flipbot.listener.settings import ListenerSettings

from .conftest import T0

ENV = {
    "SYMBOL": "TRUMPUSDC",
    "EVENT_BUS_NAME": "bus",
    "MARKET_TABLE": "market",
    "BINANCE_API_KEY": "k" * 64,
    "BINANCE_API_SECRET": "s" * 64,
}


def _settings(**env: str) -> ListenerSettings:
    return ListenerSettings.from_env({**ENV, **env})


def test_each_symbol_s_four_streams_stay_on_one_connection_within_the_limit() -> None:
    s = _settings(SYMBOLS="TRUMPUSDC,ETHUSDC,SOLUSDC", MARKET_STREAMS_PER_CONNECTION="9")
    groups = s.market_stream_groups()
    # the reference pair's kline rides on the first connection, within its limit
    assert groups == [
        [
            "trumpusdc@trade",
            "trumpusdc@bookTicker",
            "trumpusdc@kline_1m",
            "trumpusdc@depth10",
            "ethusdc@trade",
            "ethusdc@bookTicker",
            "ethusdc@kline_1m",
            "ethusdc@depth10",
            "btcusdc@kline_1m",
        ],
        ["solusdc@trade", "solusdc@bookTicker", "solusdc@kline_1m", "solusdc@depth10"],
    ]
    assert all(len(g) <= 9 for g in groups)
    assert s.market_url(1).endswith(
        "/stream?streams=solusdc@trade/solusdc@bookTicker/solusdc@kline_1m/solusdc@depth10"
    )


def test_a_traded_reference_pair_is_not_followed_twice() -> None:
    s = _settings(SYMBOLS="TRUMPUSDC,BTCUSDC")
    assert s.reference_symbol == "BTCUSDC"
    assert s.market_streams().count("btcusdc@kline_1m") == 1
    assert len(s.market_stream_groups()) == 1


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SYMBOLS": "TRUMPUSDC,BTC"}, "SYMBOLS has 'BTC'"),
        ({"SYMBOLS": "BTCUSDC,btcusdc"}, "names a symbol twice"),
        ({"MARKET_STREAMS_PER_CONNECTION": "2000"}, "MARKET_STREAMS_PER_CONNECTION"),
    ],
)
def test_bad_symbols_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        _settings(**env)


def _frame(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data})


def _trade(symbol: str, trade_id: int, price: str, t: int) -> str:
    data = {
        "e": "trade",
        "E": t,
        "s": symbol,
        "t": trade_id,
        "p": price,
        "q": "1",
        "T": t,
        "m": True,
        "M": True,
    }
    return _frame(f"{symbol.lower()}@trade", data)


def _kline(symbol: str, minute: int, close: str) -> str:
    start = T0 + minute * 60_000
    data = {
        "e": "kline",
        "E": start + 60_000,
        "s": symbol,
        "k": {
            "t": start,
            "T": start + 59_999,
            "s": symbol,
            "i": "1m",
            "c": close,
            "v": "5",
            "x": True,
        },
    }
    return _frame(f"{symbol.lower()}@kline_1m", data)


def test_the_router_gives_each_symbol_its_own_market_and_ticks() -> None:
    queue = OutboundQueue(100)
    router = MarketRouter(["TRUMPUSDC", "ETHUSDC"], queue, reference_symbol="BTCUSDC")
    router.feed(_trade("TRUMPUSDC", 1, "10.00", T0), T0)
    router.feed(_trade("ETHUSDC", 1, "3500.00", T0), T0)  # same trade id, another symbol
    depth = {"lastUpdateId": 7, "bids": [["3499.9", "2"]], "asks": [["3500.1", "1"]]}
    router.feed(_frame("ethusdc@depth10", depth), T0)  # a partial book names no symbol
    snapshots = {s.symbol: s for s in router.poll(T0 + 1)}
    assert snapshots["TRUMPUSDC"].last_price == 10
    assert snapshots["ETHUSDC"].last_price == 3500
    assert snapshots["ETHUSDC"].extra["depth_levels"] == "1"
    assert "depth_levels" not in snapshots["TRUMPUSDC"].extra
    ticks = [item.detail for item in queue.next_batch()]
    assert sorted((t["symbol"], t["price"]) for t in ticks) == [
        ("ETHUSDC", "3500.00"),
        ("TRUMPUSDC", "10.00"),
    ]
    # nothing was taken for a duplicate: trade ids are each symbol's own
    assert sum(p.duplicates for p in router.pipelines.values()) == 0


def test_the_reference_pair_s_klines_reach_every_symbol_s_correlation() -> None:
    router = MarketRouter(["TRUMPUSDC", "ETHUSDC"], OutboundQueue(100), reference_symbol="BTCUSDC")
    for minute in range(25):
        at = T0 + (minute + 1) * 60_000  # received as the minute closes
        router.feed(_kline("BTCUSDC", minute, f"{97000 + (minute % 3) * 10}"), at)
        router.feed(_kline("TRUMPUSDC", minute, f"{10 + (minute % 3) * 0.01:.2f}"), at)
        router.feed(_kline("ETHUSDC", minute, f"{3500 - (minute % 3)}"), at)
    assert router.invalid == 0
    trump = router.pipelines["TRUMPUSDC"].correlation.value()
    eth = router.pipelines["ETHUSDC"].correlation.value()
    assert trump is not None
    assert trump > 0.99
    assert eth is not None
    assert eth < -0.99


def test_a_control_message_and_garbage_are_handled_once() -> None:
    router = MarketRouter(["TRUMPUSDC", "ETHUSDC"], OutboundQueue(100))
    shutdown = _frame("!serverShutdown", {"e": "serverShutdown", "E": T0})
    assert router.feed(shutdown, T0) == SHUTDOWN
    assert router.feed("{not json", T0) is None
    assert router.feed(_frame("ethusdc@trade", {"e": "trade", "s": "ETHUSDC"}), T0) is None
    assert router.invalid == 2
    assert router.take_bad() == 2
    assert router.take_bad() == 0
