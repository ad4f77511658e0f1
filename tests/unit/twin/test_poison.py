"""The poison world: the real listener core, fed a replayed market and the paper
exchange's execution reports with seeded poison among them, drops or counts every bad
message, never raises, and publishes only what the sane messages say."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from flipbot.domain.model import MarketSnapshot
from flipbot.events import OrderUpdated, PriceTicked, StreamGapDetected
from flipbot.listener import core
from flipbot.streams import events_for_execution_report
from flipbot_dev.paper import PaperExchange
from flipbot_dev.replay.data import BookEvent, MarketData, TradeEvent
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin import poison
from flipbot_dev.twin.poison import MARKET_KINDS, USER_KINDS, PoisonListener, Published

SEEDS = (1, 2, 3)
RATE = 0.3
HOURS = 2.0  # about 3,500 trades and book tops: 7,000 sane market frames, 400 reports
ORDER_EVENTS = ("OrderUpdated", "OrderFilled")


@dataclass
class Run:
    """What a replay published, beside what its sane messages said."""

    listener: PoisonListener
    symbol: str
    ticks: list[tuple[Decimal, Decimal]] = field(default_factory=list)  # published, sane
    snapshots: list[tuple[MarketSnapshot | None, Decimal]] = field(default_factory=list)
    orders: list[Published] = field(default_factory=list)
    expected_orders: list[Published] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    last_price: Decimal = Decimal(0)
    reports: int = 0


def _replay(data: MarketData, seed: int, rate: float) -> Run:
    """The sample market through a paper exchange and the poison listener; the bot's
    stand-in places small orders at the book (filled or canceled later), and every
    executionReport goes through the listener, bare or WebSocket-API wrapped."""
    now = data.first_ms
    exchange = PaperExchange(
        [data.symbol],
        clock=lambda: now,
        balances={"USDC": Decimal(10**6), "TRUMP": Decimal(10**4)},
    )
    run = Run(PoisonListener(data.symbol, seed=seed, rate=rate), data.symbol)
    orders = random.Random(7)  # the same sane world whatever the poison's seed
    book: BookEvent | None = None
    for index, event in enumerate(data.events):
        now = event.time_ms
        if isinstance(event, TradeEvent):
            exchange.on_trade(now, event.price, event.qty, event.is_buyer_maker)
            run.last_price = event.price
            published = run.listener.market_trade(event)
        else:
            exchange.on_book(now, event.bid, event.bid_qty, event.ask, event.ask_qty)
            book = event
            published = run.listener.market_book(event)
        # what a PriceTicked must say: the last trade's price, the book's mid before one
        sane = run.last_price or (book.bid + book.ask) / 2 if book else run.last_price
        for detail_type, detail in published:
            if detail_type == "PriceTicked":
                run.ticks.append((PriceTicked.model_validate(detail).price, sane))
        if book is not None and index % 12 == 0:
            side = orders.choice(["BUY", "SELL"])
            price = book.bid if side == "BUY" else book.ask
            exchange.place_order(data.symbol, side, "LIMIT", "0.5", price, "GTC", f"p{index}")
        if index % 40 == 0 and (open_orders := exchange.open_orders(data.symbol)):
            exchange.cancel_order(data.symbol, order_id=open_orders[0]["orderId"])
        for report in exchange.drain():
            if report["e"] != "executionReport":
                continue
            run.reports += 1
            run.expected_orders += events_for_execution_report(report)
            message = report if orders.random() < 0.5 else {"subscriptionId": 0, "event": report}
            for detail_type, detail in run.listener.execution_report(message):
                if detail_type in ORDER_EVENTS:
                    run.orders.append((detail_type, detail))
                else:
                    assert detail_type == "StreamGapDetected"
                    run.gaps.append(detail)
        if index % 100 == 0:
            run.snapshots.append((run.listener.snapshot(now), run.last_price))
    run.snapshots.append((run.listener.snapshot(now), run.last_price))
    return run


@pytest.fixture(scope="module")
def market() -> MarketData:
    return generate_sample(seed=7, hours=HOURS)


@pytest.fixture(scope="module")
def clean(market: MarketData) -> Run:
    return _replay(market, seed=0, rate=0.0)


@pytest.fixture(scope="module", params=SEEDS)
def poisoned(request: pytest.FixtureRequest, market: MarketData) -> Run:
    return _replay(market, seed=request.param, rate=RATE)


def test_given_poison_at_every_seed_then_every_kind_is_injected_and_nothing_breaks(
    poisoned: Run,
) -> None:
    stats = poisoned.listener.stats.as_dict()
    # Given a few thousand sane messages, with poison before or after 30% of them
    assert stats["sane_market"] > 5000
    assert poisoned.reports > 200
    # Then every kind of poison was fed to the listener core
    assert {k for k, n in stats["injected"]["market"].items() if n} == set(MARKET_KINDS)
    assert {k for k, n in stats["injected"]["user"].items() if n} == set(USER_KINDS)
    # And nothing raised, nothing poisoned was published, no sane message was lost
    assert poisoned.listener.violations() == []
    assert stats["violations"] == 0


def test_given_poison_then_the_published_prices_are_the_sane_trades(
    poisoned: Run, clean: Run
) -> None:
    # Every PriceTicked carries the last sane trade's price (the book's mid before one)
    assert poisoned.ticks
    assert [published for published, sane in poisoned.ticks if published != sane] == []
    # And every snapshot the last sane trade's price, as without poison
    assert [(s.last_price if s else None, sane) for s, sane in poisoned.snapshots] == [
        (s.last_price if s else None, sane) for s, sane in clean.snapshots
    ]
    final, sane = poisoned.snapshots[-1]
    assert final is not None
    assert final.last_price == sane == poisoned.last_price


def test_given_poison_then_the_order_updates_are_the_reports_unchanged(
    poisoned: Run, clean: Run
) -> None:
    # Every sane report's events, in order, and nothing else
    assert poisoned.orders == poisoned.expected_orders
    assert poisoned.orders == clean.orders
    assert {OrderUpdated.model_validate(d).symbol for _, d in poisoned.orders} == {poisoned.symbol}
    # Unreadable poison frames are user stream gaps (reconcile looks at the exchange)
    assert poisoned.gaps
    assert {StreamGapDetected.model_validate(g).stream for g in poisoned.gaps} == {"user"}
    assert clean.gaps == []


def test_given_poison_then_the_listener_counts_what_it_dropped(poisoned: Run) -> None:
    stats = poisoned.listener.stats.as_dict()
    outcomes = stats["outcomes"]

    def count(prefix: str, outcome: str) -> int:
        return sum(n for k, n in outcomes.items() if k.startswith(prefix) and k.endswith(outcome))

    # The ListenerBadMessages count is exactly the poison dropped as invalid
    assert stats["bad"]["market"] == count("market.", ":invalid") > 0
    assert stats["bad"]["user"] == count("user.", ":invalid") == len(poisoned.gaps)
    # Sane messages were all taken; poison of another symbol ignored, repeats dropped
    assert count("market.sane", "") == outcomes["market.sane:accepted"] == stats["sane_market"]
    assert outcomes["market.other_symbol:ignored"] == stats["injected"]["market"]["other_symbol"]
    assert outcomes["market.out_of_order:duplicates"] == stats["injected"]["market"]["out_of_order"]
    assert outcomes["user.other_symbol:ignored"] == stats["injected"]["user"]["other_symbol"]


def test_given_the_same_seed_then_the_same_poison_and_results(market: MarketData) -> None:
    first, again = (_replay(market, seed=5, rate=RATE) for _ in range(2))
    assert first.listener.stats.as_dict() == again.listener.stats.as_dict()
    assert first.ticks == again.ticks
    assert first.orders == again.orders


def test_given_no_poison_then_nothing_is_injected(clean: Run) -> None:
    stats = clean.listener.stats.as_dict()
    assert sum(stats["injected"]["market"].values()) == sum(stats["injected"]["user"].values())
    assert sum(stats["injected"]["market"].values()) == 0
    assert stats["bad"] == {"market": 0, "user": 0}
    assert clean.listener.violations() == []
    assert clean.orders == clean.expected_orders


def test_a_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        PoisonListener("TRUMPUSDC", seed=1, rate=1.5)


# --- the poison world would catch a listener that let poison through ----------------------
@pytest.fixture
def short_market(market: MarketData) -> MarketData:
    return market.between(market.first_ms, market.first_ms + 30 * 60_000)


def _leaky_number(value: Any, low: float, high: float) -> float:
    number = float(value)  # a type check only, as the listener had before the poison world
    if type(value) is not str or not low <= number <= high:
        raise ValueError(value)
    return number


def test_given_a_pipeline_that_reads_any_number_then_violations_name_the_poison(
    short_market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "_number", _leaky_number)
    run = _replay(short_market, seed=1, rate=RATE)
    found = "\n".join(run.listener.violations())
    assert "poison odd_number" in found
    assert "was accepted" in found


def test_given_a_pipeline_that_keeps_any_trade_id_then_sane_trades_are_reported_lost(
    short_market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core, "MAX_ID", 10**40)
    run = _replay(short_market, seed=1, rate=RATE)
    found = "\n".join(run.listener.violations())
    assert "poison huge_id" in found
    assert "sane trade dropped (duplicates)" in found or "sane bookTicker dropped" in found


def test_given_an_order_stream_of_every_symbol_then_other_symbols_are_violations(
    short_market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    def every_symbol(queue: core.OutboundQueue, *, symbol: str) -> core.OrderStream:
        return core.OrderStream(queue)  # publishes the reports of every symbol

    monkeypatch.setattr(poison, "OrderStream", every_symbol)
    run = _replay(short_market, seed=3, rate=1.0)
    found = "\n".join(run.listener.violations())
    assert "OrderUpdated published from poison other_symbol" in found


def test_given_a_pipeline_that_raises_then_it_is_a_violation_not_a_crash(
    short_market: MarketData, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = core.MarketPipeline.feed

    def fragile(self: core.MarketPipeline, raw: str | bytes, recv_ms: int) -> str | None:
        if isinstance(raw, str) and raw.startswith("[[[["):
            raise RecursionError("maximum recursion depth exceeded")
        return original(self, raw, recv_ms)

    monkeypatch.setattr(core.MarketPipeline, "feed", fragile)
    run = _replay(short_market, seed=2, rate=RATE)
    assert any("MarketPipeline.feed raised RecursionError" in v for v in run.listener.violations())
