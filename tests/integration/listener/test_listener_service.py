"""The listener process end to end: loopback Binance streams in, moto EventBridge out.

Acceptance: one ``OrderUpdated`` per execution report, in order, with the
right detail; killed connections and a silent subscription both end reconnected,
re-subscribed, with a ``StreamGapDetected`` published and no fill lost (each report is
either published once or falls inside a published gap window, which reconcile covers);
SIGTERM with a full queue publishes every queued order update before exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest

from flipbot.listener import health
from flipbot.listener.binance_ws import Connection, wall_ms

from .conftest import (
    SYMBOL,
    TABLE,
    Aws,
    Rig,
    expected_detail,
    report_key,
    run,
    start_rig,
    within_a_gap,
)

NOISY = ("botocore", "boto3", "urllib3", "websockets", "pynamodb")


def assert_no_fill_lost(rig: Rig, gaps: list[dict[str, Any]]) -> None:
    """Each pushed report is published exactly once, or hidden inside a published gap."""
    published = [report_key(d) for d in rig.publisher.of_type("OrderUpdated")]
    counts = Counter(published)
    assert all(n == 1 for n in counts.values()), "an execution report was published twice"
    for report in rig.reports():
        key = report_key(expected_detail(report))
        assert key in counts or within_a_gap(report["E"], gaps), f"lost: {key}"
    # The listener published every report it received (none stuck in the queue).
    assert rig.listener.orders.reports == len(published)


# --- the happy path -----------------------------------------------------------------------
def test_given_orders_on_the_exchange_then_one_order_updated_per_report_in_order(
    aws: Aws,
) -> None:
    async def scenario() -> tuple[Rig, int]:
        rig = await start_rig()
        await rig.place("BUY", "9.99", "2")  # NEW
        await rig.place("BUY", "9.50", "1")  # NEW
        await rig.place("SELL", "10.50", "1")  # NEW
        await rig.trade("9.98", "1")  # order 1: PARTIALLY_FILLED
        await rig.trade("9.97", "5")  # order 1: FILLED
        rig.exchange.cancel_order(SYMBOL, orig_client_order_id="fb-t00002-B1")
        await rig.server.push_exchange_events(rig.exchange)  # order 2: CANCELED
        await rig.trade("10.60", "3", buyer_maker=False)  # order 3: FILLED
        await rig.settle()
        # A snapshot is due every 0.2 s; on a loaded machine the first may come later.
        for _ in range(100):
            if rig.listener.snapshots_written:
                break
            await asyncio.sleep(0.05)
        return rig, await rig.stop()

    rig, status = run(scenario())
    assert status == 0
    reports = rig.reports()
    assert [r["X"] for r in reports] == [
        "NEW",
        "NEW",
        "NEW",
        "PARTIALLY_FILLED",
        "FILLED",
        "CANCELED",
        "FILLED",
    ]
    # Exactly one OrderUpdated per report, in the order of the reports, detail as parsed.
    assert rig.publisher.of_type("OrderUpdated") == [expected_detail(r) for r in reports]
    filled = [expected_detail(r) for r in reports if r["X"] == "FILLED"]
    assert rig.publisher.of_type("OrderFilled") == filled
    # What reached the bus (through the rule's SQS target) is the same.
    on_bus = aws.published()
    bus_updates = [e["detail"] for e in on_bus if e["detail-type"] == "OrderUpdated"]
    assert sorted(map(report_key, bus_updates)) == sorted(
        report_key(expected_detail(r)) for r in reports
    )
    assert {e["source"] for e in on_bus} == {"flipbot.listener"}
    assert "PriceTicked" in {e["detail-type"] for e in on_bus}
    gaps = rig.publisher.of_type("StreamGapDetected")
    assert [g["reason"] for g in gaps] == ["startup"]
    # The market snapshot went to MarketTable.
    item = aws.dynamodb.get_item(TableName=TABLE, Key={"symbol": {"S": SYMBOL}})["Item"]
    assert int(item["time_ms"]["N"]) > 0
    assert rig.listener.snapshots_written >= 1


# --- resilience ---------------------------------------------------------------------------
def test_given_connections_killed_mid_stream_then_reconnected_resubscribed_and_no_fill_lost(
    aws: Aws,
) -> None:
    async def scenario() -> Rig:
        rig = await start_rig()
        for round_ in range(3):
            for i in range(8):
                await rig.place("BUY", f"9.{50 + i:02d}", "1")
                await rig.trade(f"9.{40 + round_:02d}", "20")  # fills every resting buy
                await asyncio.sleep(0.005)
            subscribed, markets = rig.server.subscriptions_made, rig.server.connections["market"]
            dropped = await rig.server.drop_connections("all")
            assert dropped == 2
            # Pushed while nobody is subscribed: lost on the stream, inside the gap.
            await rig.place("BUY", "9.10", "1")
            await rig.wait_for(
                lambda s=subscribed, m=markets: (
                    rig.listener.live
                    and rig.server.subscriptions_made > s
                    and rig.server.connections["market"] > m
                ),
                3,
            )
        await rig.place("BUY", "9.20", "1")
        await rig.settle()
        await rig.stop()
        return rig

    rig = run(scenario())
    listener = rig.listener
    assert rig.server.subscriptions_made == listener.subscriptions >= 4  # startup + 3
    assert rig.server.connections["market"] >= 4
    gaps = rig.publisher.of_type("StreamGapDetected")
    user_gaps = [g for g in gaps if g["stream"] == "user"]
    assert len(user_gaps) >= 4  # startup + one per kill
    assert all(g["since_ms"] < g["until_ms"] for g in gaps)
    assert {g["stream"] for g in gaps} == {"user", "market"}
    assert ("user", "closed") in listener.reconnect_reasons
    undelivered = [p for p in rig.server.pushed if not p.deliveries]
    assert len(undelivered) >= 3  # the orders placed while disconnected...
    assert all(within_a_gap(p.event["E"], user_gaps) for p in undelivered)  # ...are covered
    assert_no_fill_lost(rig, user_gaps)


def test_given_a_silent_subscription_then_reconnected_resubscribed_and_gap_published(
    aws: Aws,
) -> None:
    async def scenario() -> Rig:
        rig = await start_rig()
        await rig.place("BUY", "9.90", "1")
        await rig.settle()
        rig.server.go_silent("user")  # the socket stays open: only silence tells
        await rig.place("BUY", "9.80", "1")  # swallowed by the silent server
        await rig.trade("9.70", "5")  # fills both, swallowed too
        await rig.wait_for(lambda: ("user", "silent") in rig.listener.reconnect_reasons)
        rig.server.go_silent("user", silent=False)
        await rig.wait_for(lambda: rig.listener.live and rig.listener.subscriptions >= 2)
        await rig.place("BUY", "9.60", "1")
        await rig.settle()
        await rig.stop()
        return rig

    rig = run(scenario())
    assert rig.listener.subscriptions >= 2
    gaps = [g for g in rig.publisher.of_type("StreamGapDetected") if g["stream"] == "user"]
    assert [g["reason"] for g in gaps][:2] == ["startup", "silent"]
    silent_gap = gaps[1]
    swallowed = [p.event for p in rig.server.pushed if not p.deliveries]
    assert [e["X"] for e in swallowed if e["e"] == "executionReport"] == ["NEW", "FILLED", "FILLED"]
    assert all(silent_gap["since_ms"] <= e["E"] <= silent_gap["until_ms"] for e in swallowed)
    assert_no_fill_lost(rig, gaps)
    assert rig.publisher.of_type("OrderUpdated")[-1]["price"] == "9.60000000"


def test_given_event_stream_terminated_then_resubscribed_with_a_gap(aws: Aws) -> None:
    async def scenario() -> Rig:
        rig = await start_rig()
        ended = await rig.server.terminate_subscriptions()
        assert ended == 1
        await rig.wait_for(lambda: rig.listener.subscriptions >= 2)
        await rig.place()
        await rig.settle()
        await rig.stop()
        return rig

    rig = run(scenario())
    reasons = [g["reason"] for g in rig.publisher.of_type("StreamGapDetected")]
    assert reasons == ["startup", "eventStreamTerminated"]
    assert len(rig.publisher.of_type("OrderUpdated")) == 1


@pytest.mark.parametrize("trigger", ["serverShutdown", "rotate"])
def test_given_server_shutdown_or_24h_rotation_then_hand_over_without_gap_or_duplicate(
    aws: Aws, trigger: str
) -> None:
    overrides = {"MAX_CONNECTION_AGE_SECONDS": "0.3"} if trigger == "rotate" else {}

    async def scenario() -> Rig:
        rig = await start_rig(**overrides)
        if trigger == "serverShutdown":
            await rig.server.server_shutdown("all")
        # Orders keep flowing through the hand-over until both streams have handed over;
        # the deadline only bounds a broken listener (a loaded machine may take longer
        # than one connection age to see both).
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            await rig.place("BUY", "9.90", "1")
            await rig.trade("9.80", "1")
            await asyncio.sleep(0.02)
            if {("user", trigger), ("market", trigger)} <= set(rig.listener.reconnect_reasons):
                break
        await rig.settle()
        await rig.stop()
        return rig

    rig = run(scenario())
    listener = rig.listener
    assert listener.subscriptions >= 2
    assert ("user", trigger) in listener.reconnect_reasons
    assert ("market", trigger) in listener.reconnect_reasons
    reasons = [g["reason"] for g in rig.publisher.of_type("StreamGapDetected")]
    assert reasons == ["startup"]  # hand-over: no gap
    assert all(p.deliveries for p in rig.server.pushed)
    published = [report_key(d) for d in rig.publisher.of_type("OrderUpdated")]
    assert published == [report_key(expected_detail(r)) for r in rig.reports()]


def record_trade_ids(rig: Rig) -> list[int]:
    """Every trade id the listener's market pipeline is fed, whatever the connection."""
    seen: list[int] = []
    feed = rig.listener.market.feed

    def recording(raw: str | bytes, recv_ms: int) -> str | None:
        message = json.loads(raw)
        data = message.get("data", message)
        if data.get("e") == "trade":
            seen.append(data["t"])
        return feed(raw, recv_ms)

    rig.listener.market.feed = recording  # type: ignore[method-assign]
    return seen


def test_given_server_shutdown_then_new_connections_open_before_the_server_drops_the_old(
    aws: Aws,
) -> None:
    grace = 0.4

    async def scenario() -> tuple[Rig, list[int], list[Connection]]:
        rig = await start_rig(shutdown_grace_s=grace)
        trade_ids = record_trade_ids(rig)
        await rig.place("BUY", "9.90", "1")
        await rig.trade("9.80", "1")
        await rig.settle()
        old_user, old_market = rig.listener.user, rig.listener.market_conn
        assert old_user is not None
        assert old_market is not None
        assert await rig.server.server_shutdown("all") == 2
        # Orders keep coming on the user stream until the server has closed what it told;
        # the market is quiet, so the market hand-over is still waiting for the new
        # connection's first message when the grace runs out: the server drops the old one.
        while not all(n.ended_ms for n in rig.server.notices):
            await rig.place("BUY", "9.70", "1")
            await asyncio.sleep(0.02)
        # Only the new connections are left: what comes now must reach them.
        for price in ("9.95", "9.60", "9.94"):
            await rig.trade(price, "2")
            await rig.place("BUY", "9.50", "1")
        await rig.settle()
        await rig.wait_for(lambda: trade_ids[-1:] == [rig.trade_id])
        new_user, new_market = rig.listener.user, rig.listener.market_conn
        assert new_user is not None
        assert new_market is not None
        await rig.stop()
        return rig, trade_ids, [old_user, old_market, new_user, new_market]

    rig, trade_ids, (old_user, old_market, new_user, new_market) = run(scenario())
    notices = {n.kind: n for n in rig.server.notices}
    assert sorted(notices) == ["market", "user"]
    # The server enforced the shutdown: nothing it told outlived the grace (the market
    # connection it had to drop itself); each stream had its new connection by then.
    assert notices["market"].dropped
    assert old_market.ended.result() == "closed"
    assert old_market.opened_ms < new_market.opened_ms <= old_market.ended_ms
    assert new_user.subscribed_ms <= old_user.ended_ms
    for notice in notices.values():
        assert notice.ended_ms is not None
        assert notice.ended_ms <= notice.close_at_ms + 1000
    assert ("user", "serverShutdown") in rig.listener.reconnect_reasons
    assert ("market", "serverShutdown") in rig.listener.reconnect_reasons
    # No gap and no message lost: every report delivered and published once, in order;
    # every trade reached the market pipeline.
    gaps = rig.publisher.of_type("StreamGapDetected")
    assert [g["reason"] for g in gaps] == ["startup"]
    assert all(p.deliveries for p in rig.server.pushed)
    published = [report_key(d) for d in rig.publisher.of_type("OrderUpdated")]
    assert published == [report_key(expected_detail(r)) for r in rig.reports()]
    assert_no_fill_lost(rig, gaps)
    assert sorted(set(trade_ids)) == list(range(1, rig.trade_id + 1))


def slowed(open_connection: Any, seconds: float) -> Any:
    """``open_connection`` taking ``seconds`` longer (a slow network)."""

    async def opener(**options: Any) -> Any:
        await asyncio.sleep(seconds)
        return await open_connection(**options)

    return opener


def test_given_server_shutdown_and_a_new_connection_slower_than_the_grace_then_a_gap_each(
    aws: Aws,
) -> None:
    grace, slow = 0.1, 0.4

    async def scenario() -> tuple[Rig, list[int], dict[int, tuple[int, int]]]:
        rig = await start_rig(shutdown_grace_s=grace)
        trade_ids = record_trade_ids(rig)
        listener = rig.listener
        for stream in listener.streams:  # from now on connecting takes `slow`
            stream.connect = slowed(stream.connect, slow)  # type: ignore[method-assign]
        await rig.place("BUY", "9.90", "1")
        await rig.trade("9.80", "1")
        await rig.settle()
        assert await rig.server.server_shutdown("all") == 2
        traded: dict[int, tuple[int, int]] = {}  # trade id: pushed between these times
        reasons = {("user", "serverShutdown"), ("market", "serverShutdown")}
        deadline = time.monotonic() + 3
        while not reasons <= set(listener.reconnect_reasons):
            assert time.monotonic() < deadline, "no hand-over"
            await rig.place("BUY", "9.70", "1")
            before = wall_ms()
            await rig.trade("9.65", "2")  # fills the buy just placed
            traded[rig.trade_id] = (before, wall_ms())
            await asyncio.sleep(0.02)
        await rig.place("BUY", "9.60", "1")
        await rig.trade("9.50", "2")
        await rig.settle()
        await rig.wait_for(lambda: trade_ids[-1:] == [rig.trade_id])
        await rig.stop()
        return rig, trade_ids, traded

    rig, trade_ids, traded = run(scenario())
    assert all(n.dropped for n in rig.server.notices)
    gaps = rig.publisher.of_type("StreamGapDetected")
    late = "serverShutdown: hand-over incomplete"
    assert [(g["stream"], g["reason"]) for g in gaps if g["reason"] != "startup"] in (
        [("user", late), ("market", late)],
        [("market", late), ("user", late)],
    )
    # What went out while neither connection was there is lost on the stream, inside a gap.
    undelivered = [p for p in rig.server.pushed if not p.deliveries]
    assert undelivered
    assert_no_fill_lost(rig, [g for g in gaps if g["stream"] == "user"])
    market_gaps = [g for g in gaps if g["stream"] == "market"]
    missed = sorted(set(range(1, rig.trade_id + 1)) - set(trade_ids))
    assert missed
    for trade_id in missed:
        pushed_from, pushed_until = traded[trade_id]
        assert within_a_gap(pushed_from, market_gaps)
        assert within_a_gap(pushed_until, market_gaps)


# --- shutdown -----------------------------------------------------------------------------
def test_given_sigterm_with_a_full_queue_then_every_order_update_is_published_before_exit(
    aws: Aws,
) -> None:
    gate = threading.Event()  # PutEvents is held until SIGTERM: the queue fills up

    async def scenario() -> tuple[Rig, int, float]:
        rig = await start_rig(
            gate=gate,
            handle_signals=True,
            QUEUE_CAPACITY="10",
            PRICE_TICK_BPS="1",
            STOP_TIMEOUT_SECONDS="4.5",
        )
        for i in range(12):
            await rig.place("BUY", f"9.{10 + i:02d}", "1")
        for i in range(12):  # every trade moves the price > 1 bp: a PriceTicked each
            await rig.trade(f"{9.0 - i * 0.01:.2f}", "0.001")
        await rig.wait_for(lambda: rig.listener.orders.reports >= 12 + 12)
        queue = rig.listener.queue
        assert queue.critical_pending > queue.capacity  # over capacity: order updates kept
        assert queue.dropped > 0  # ticks were dropped instead
        started = time.monotonic()
        signal.raise_signal(signal.SIGTERM)
        gate.set()
        status = await asyncio.wait_for(rig.task, 5)
        return rig, status, time.monotonic() - started

    rig, status, elapsed = run(scenario())
    assert status == 0
    assert elapsed < rig.listener.settings.stop_timeout_seconds
    assert rig.listener.queue.critical_pending == 0
    expected = [expected_detail(r) for r in rig.reports()]
    assert rig.publisher.of_type("OrderUpdated") == expected
    on_bus = [e for e in aws.published() if e["detail-type"] == "OrderUpdated"]
    assert len(on_bus) == len(expected)


# --- health and metrics -------------------------------------------------------------------
def test_given_a_running_listener_then_health_answers_and_metrics_reach_cloudwatch(
    aws: Aws,
) -> None:
    async def scenario() -> tuple[Rig, tuple[int, str], int, tuple[int, str]]:
        rig = await start_rig(HEALTH_MAX_GAP_SECONDS="0.3")
        port = rig.listener.health_port
        assert port
        await rig.place()
        await rig.trade("9.00", "1")
        ok = await asyncio.to_thread(health.check, "127.0.0.1", port)
        command = [sys.executable, "-m", "flipbot.listener.health", "--port", str(port)]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.DEVNULL, env={**os.environ}
        )
        exit_status = await process.wait()
        await asyncio.sleep(0.4)  # metrics every 0.3 s
        await rig.server.stop()  # Binance gone for longer than HEALTH_MAX_GAP_SECONDS
        await asyncio.sleep(0.6)
        down = await asyncio.to_thread(health.check, "127.0.0.1", port)
        await rig.stop()
        return rig, ok, exit_status, down

    _rig, ok, exit_status, down = run(scenario())
    assert ok[0] == 200
    assert '"status": "ok"' in ok[1]
    assert exit_status == 0
    assert down[0] == 503
    names = {m["MetricName"] for m in aws.cloudwatch.list_metrics(Namespace="flipbot")["Metrics"]}
    assert names == {"ListenerHeartbeat", "ListenerLagMs", "Reconnects", "ListenerBadMessages"}
    dims = {
        tuple((d["Name"], d["Value"]) for d in m["Dimensions"])
        for m in aws.cloudwatch.list_metrics(Namespace="flipbot")["Metrics"]
    }
    assert dims == {(("service", "flipbot"),)}


def test_given_debug_logging_then_no_secret_is_ever_logged(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    from flipbot.listener.wiring import configure_logging
    from flipbot.observability import forget_secrets

    from .conftest import KEY, SECRET

    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in NOISY}
    forget_secrets()
    configure_logging("DEBUG", secrets=[KEY, SECRET])
    try:

        async def scenario() -> None:
            rig = await start_rig()
            await rig.place()
            await rig.server.drop_connections("user")
            await rig.wait_for(lambda: rig.listener.subscriptions >= 2)
            logging.getLogger("flipbot.listener").debug("key=%s secret=%s", KEY, SECRET)
            await rig.stop()

        run(scenario())
    finally:
        handlers, level, levels = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, noisy_level in levels.items():
            logging.getLogger(name).setLevel(noisy_level)
        forget_secrets()
    out = capsys.readouterr().out
    assert "user data stream subscribed" in out
    assert "key=*** secret=***" in out
    assert KEY not in out
    assert SECRET not in out


def test_given_a_rejected_subscription_then_it_retries_with_back_off_and_turns_unhealthy() -> None:
    from flipbot.listener.service import Listener
    from flipbot.listener.wiring import LogPublisher
    from flipbot_dev.paper.ws import BinanceWsServer

    from .conftest import KEY, listener_settings

    async def scenario() -> tuple[Listener, BinanceWsServer, bool, int]:
        server = await BinanceWsServer(api_key=KEY, api_secret="notTheListenersSecret").start()
        settings = listener_settings(server.base_url, HEALTH_MAX_GAP_SECONDS="0.5")
        listener = Listener(settings, publisher=LogPublisher())
        task = asyncio.create_task(listener.run(handle_signals=False))
        await asyncio.sleep(1.0)
        healthy, _ = listener.health_state()
        listener.request_stop("test done")
        status = await asyncio.wait_for(task, 5)
        await server.stop()
        return listener, server, healthy, status

    listener, server, healthy, status = run(scenario())
    attempts = [m for m, _ in server.requests if m == "userDataStream.subscribe.signature"]
    assert 3 <= len(attempts) <= 20  # retried, with back-off (-1022 each time)
    assert listener.subscriptions == 0
    assert not healthy
    assert status == 0
    assert listener.gaps == 0  # never subscribed: no gap to report yet
