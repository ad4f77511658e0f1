"""The listener's hot path on >= 1,000,000 recorded market messages, on one core.

Messages: the real BTCUSDT ``trade`` and ``bookTicker`` streams of
``../shared/data/trades/`` (about 93,000 messages over 11 minutes, merged in time
order), written as Binance's combined-stream JSON (``{"stream", "data"}``) and replayed
back to back until there are ``--messages`` of them (each lap shifted in time, trade and
update ids, so the indicators and the dedup see a continuous stream). The benchmark is
skipped, with the reason, when the data is absent.

Path measured: ``MarketPipeline.feed`` (``json.loads``, dispatch, indicators, the
``PriceTicked`` throttle at the template's defaults: 20 bps / 60 s), and once per
recorded second ``poll`` (time rule, a ``MarketSnapshot`` every 10 s) and the batcher
(``OutboundQueue.next_batch``) into a stub publisher. Nothing else runs: no sockets,
no AWS.

Figures:

* **throughput** (messages/s, median of ``--rounds``, the process pinned to one CPU),
  beside a bare ``json.loads`` loop over the same messages, and their ratio;
* **added latency**: each message timed alone (``perf_counter_ns`` around the same
  work; the timer's own cost is included), p50 / p99 / p99.9 / max, and the same for
  the messages that emitted a ``PriceTicked``;
* **memory**: RSS sampled every 100,000 messages during a pass (the messages are built
  before, so growth is the pipeline's own) and the process's peak RSS.

Also printed: the ``PriceTicked`` volume and EventBridge cost the throttle gives on a
day of the bundled TRUMP-like sample (``flipbot_dev.replay.sample``), for a few settings.

``python -m bench.listener [--messages N] [--rounds R]``; writes
``bench/results/listener.json``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "trades"
TRADES = DATA / "BTCUSDT_trades_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
BOOKS = DATA / "BTCUSDT_bookTicker_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
SYMBOL = "BTCUSDT"
TARGET_MSGS_PER_S = 50_000
EVENTBRIDGE_USD_PER_MILLION = 1.00
DAYS_PER_MONTH = 30


def build_messages(count: int) -> list[tuple[int, str]]:
    """``count`` ``(receive time ms, combined-stream JSON)`` pairs, laps of the recording."""
    lap: list[tuple[int, int, tuple[str, ...]]] = []  # (time, order, fields)
    with TRADES.open(newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for i, (time_ms, price, qty, maker) in enumerate(rows):
            flag = "true" if maker == "true" else "false"
            lap.append((int(time_ms), 1, (str(i + 1), price, qty, flag)))
    with BOOKS.open(newline="") as f:
        rows = csv.reader(f)
        next(rows)
        for recv_ms, update_id, bid, bid_qty, ask, ask_qty in rows:
            lap.append((int(recv_ms), 0, (update_id, bid, bid_qty, ask, ask_qty)))
    lap.sort(key=lambda row: (row[0], row[1]))
    first, last = lap[0][0], lap[-1][0]
    span = last - first + 1000
    trades = sum(1 for row in lap if row[1] == 1)
    update_ids = [int(row[2][0]) for row in lap if row[1] == 0]
    id_span = max(update_ids) - min(update_ids) + 1
    out: list[tuple[int, str]] = []
    n = 0
    while len(out) < count:
        shift, id_shift, trade_shift = n * span, n * id_span, n * trades
        for recorded, kind, fields in lap:
            t = recorded + shift
            if kind:
                trade_id, price, qty, maker = fields
                text = (
                    f'{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t + 1},'
                    f'"s":"BTCUSDT","t":{int(trade_id) + trade_shift},"p":"{price}",'
                    f'"q":"{qty}","T":{t},"m":{maker},"M":true}}}}'
                )
                out.append((t + 1, text))
            else:
                update_id, bid, bid_qty, ask, ask_qty = fields
                text = (
                    f'{{"stream":"btcusdt@bookTicker","data":{{"u":{int(update_id) + id_shift},'
                    f'"s":"BTCUSDT","b":"{bid}","B":"{bid_qty}","a":"{ask}","A":"{ask_qty}"}}}}'
                )
                out.append((t, text))
            if len(out) == count:
                break
        n += 1
    return out


class StubPublisher:
    def __init__(self) -> None:
        self.calls = 0
        self.events = 0

    def publish_many(self, items: Sequence[tuple[str, Any]]) -> None:
        self.calls += 1
        self.events += len(items)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _pipeline() -> tuple[Any, Any, StubPublisher]:
    from flipbot.listener.core import MarketPipeline, OutboundQueue

    queue = OutboundQueue(10_000)
    pipeline = MarketPipeline(SYMBOL, queue, tick_bps=20, tick_seconds=60, snapshot_seconds=10)
    return pipeline, queue, StubPublisher()


def run_loads(messages: list[tuple[int, str]]) -> float:
    loads = json.loads
    started = time.perf_counter()
    for _, text in messages:
        loads(text)
    return time.perf_counter() - started


def run_pipeline(
    messages: list[tuple[int, str]], rss: list[float] | None = None
) -> tuple[float, dict[str, int]]:
    pipeline, queue, publisher = _pipeline()
    feed, poll, next_batch = pipeline.feed, pipeline.poll, queue.next_batch
    publish = publisher.publish_many
    next_poll = messages[0][0] + 1000
    snapshots = 0
    started = time.perf_counter()
    for i, (recv_ms, text) in enumerate(messages):
        feed(text, recv_ms)
        if recv_ms >= next_poll:
            if poll(recv_ms) is not None:
                snapshots += 1
            while batch := next_batch():
                publish([(item.detail_type, item.detail) for item in batch])
            next_poll = recv_ms + 1000
        if rss is not None and i % 100_000 == 0:
            rss.append(rss_mb())
    elapsed = time.perf_counter() - started
    counts = {
        "messages": pipeline.messages,
        "price_ticks": pipeline.ticks,
        "snapshots": snapshots,
        "publish_calls": publisher.calls,
        "events_published": publisher.events,
        "invalid": pipeline.invalid,
        "duplicates": pipeline.duplicates,
        "queue_left": len(queue),
    }
    return elapsed, counts


def run_latency(messages: list[tuple[int, str]]) -> tuple[array[int], array[int]]:
    pipeline, queue, publisher = _pipeline()
    feed, poll, next_batch = pipeline.feed, pipeline.poll, queue.next_batch
    publish = publisher.publish_many
    clock = time.perf_counter_ns
    latencies: array[int] = array("q", bytes(8 * len(messages)))
    tick_latencies: array[int] = array("q")
    next_poll = messages[0][0] + 1000
    for i, (recv_ms, text) in enumerate(messages):
        ticks = pipeline.ticks
        started = clock()
        feed(text, recv_ms)
        if recv_ms >= next_poll:
            poll(recv_ms)
            while batch := next_batch():
                publish([(item.detail_type, item.detail) for item in batch])
            next_poll = recv_ms + 1000
        spent = clock() - started
        latencies[i] = spent
        if pipeline.ticks != ticks:
            tick_latencies.append(spent)
    return latencies, tick_latencies


def quantiles_us(values: array[int]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return {}

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] / 1000, 2)

    return {
        "p50": at(0.5),
        "p99": at(0.99),
        "p99_9": at(0.999),
        "max": round(ordered[-1] / 1000, 2),
    }


def eventbridge_volume() -> list[dict[str, Any]]:
    """PriceTicked a day on the bundled TRUMP-like sample, for a few throttle settings."""
    from flipbot.listener.core import MarketPipeline, OutboundQueue
    from flipbot_dev.replay.data import TradeEvent
    from flipbot_dev.replay.sample import generate_sample

    data = generate_sample(seed=7, hours=24.0)
    days = (data.last_ms - data.first_ms) / 86_400_000
    trades_per_min = sum(1 for _ in data.trades()) / (days * 1440)
    rows = []
    for bps, seconds in ((20, 60), (10, 60), (50, 60), (20, 10), (50, 300)):
        queue = OutboundQueue(10**6)
        pipeline = MarketPipeline("TRUMPUSDC", queue, tick_bps=bps, tick_seconds=seconds)
        trade_id = update_id = 0
        next_poll = data.first_ms + 1000
        for event in data:
            t = event.time_ms
            if isinstance(event, TradeEvent):
                trade_id += 1
                message = {
                    "e": "trade", "E": t, "s": "TRUMPUSDC", "t": trade_id, "p": str(event.price),
                    "q": str(event.qty), "T": t, "m": event.is_buyer_maker, "M": True,
                }  # fmt: skip
            else:
                update_id += 1
                message = {
                    "u": update_id, "s": "TRUMPUSDC", "b": str(event.bid), "B": str(event.bid_qty),
                    "a": str(event.ask), "A": str(event.ask_qty),
                }  # fmt: skip
            while next_poll <= t:  # the process polls every second, trades or not
                pipeline.poll(next_poll)
                next_poll += 1000
            pipeline.feed(json.dumps(message), t)
        per_day = pipeline.ticks / days
        per_month = per_day * DAYS_PER_MONTH
        rows.append(
            {
                "tick_bps": bps,
                "tick_seconds": seconds,
                "trades_per_min": round(trades_per_min, 1),
                "price_ticked_per_day": round(per_day),
                "price_ticked_per_month": round(per_month),
                "usd_per_month": round(per_month * EVENTBRIDGE_USD_PER_MILLION / 1e6, 3),
            }
        )
    return rows


def _pin_one_cpu() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity)"


def _write(figures: dict[str, float], details: dict[str, Any]) -> Path:
    try:
        from bench.common import write_result
    except ImportError:  # bench/common.py absent: the same shape, written here
        results = ROOT / "bench" / "results"
        results.mkdir(parents=True, exist_ok=True)
        path = results / "listener.json"
        result = {
            "name": "listener",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cores": os.cpu_count(),
                "machine": platform.machine(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "unit": "us per message",
            "figures": figures,
            "baseline": "json_loads",
            "ratios": {k: round(v / figures["json_loads"], 3) for k, v in figures.items()},
            "details": details,
        }
        path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        return path
    return write_result(
        "listener", figures, unit="us per message", baseline="json_loads", details=details
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.listener", description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(list(argv) if argv is not None else None)
    for path in (TRADES, BOOKS):
        if not path.is_file():
            print(f"bench.listener skipped: recorded data not found at {path}")
            return 0
    pinned = _pin_one_cpu()
    started = time.perf_counter()
    messages = build_messages(args.messages)
    built_s = time.perf_counter() - started
    print(f"{len(messages):,} messages built in {built_s:.1f} s ({pinned})")

    warm = messages[:50_000]
    run_loads(warm)
    run_pipeline(warm)
    gc.collect()
    loads_s: list[float] = []
    path_s: list[float] = []
    counts: dict[str, int] = {}
    rss_samples: list[float] = []
    for round_ in range(args.rounds):
        loads_s.append(run_loads(messages))
        samples: list[float] | None = rss_samples if round_ == 0 else None
        elapsed, counts = run_pipeline(messages, samples)
        path_s.append(elapsed)
    n = len(messages)
    loads_rate = n / statistics.median(loads_s)
    path_rate = n / statistics.median(path_s)
    latencies, tick_latencies = run_latency(messages)
    latency = quantiles_us(latencies)
    tick_latency = quantiles_us(tick_latencies)
    del latencies
    growth = max(rss_samples) - rss_samples[0]
    volume = eventbridge_volume()

    print(f"listener path : {path_rate:>10,.0f} msg/s  (target >= {TARGET_MSGS_PER_S:,})")
    print(f"json.loads    : {loads_rate:>10,.0f} msg/s")
    print(f"ratio         : {path_rate / loads_rate:.2f} of a bare json.loads loop")
    print(f"added latency : p50 {latency['p50']} us, p99 {latency['p99']} us, "
          f"p99.9 {latency['p99_9']} us, max {latency['max']} us")  # fmt: skip
    print(f"  with a tick : p50 {tick_latency.get('p50')} us, p99 {tick_latency.get('p99')} us "
          f"({len(tick_latencies)} ticks)")  # fmt: skip
    print(f"memory        : RSS {rss_samples[0]:.1f} -> {max(rss_samples):.1f} MB during a pass "
          f"(+{growth:.1f} MB over {n:,} messages); peak RSS {peak_rss_mb():.1f} MB "
          f"(includes the {n:,} prepared messages)")  # fmt: skip
    print(f"counts        : {counts}")
    print("EventBridge volume on a day of the bundled TRUMP-like sample (PriceTicked only):")
    for row in volume:
        print(f"  {row['tick_bps']:>3} bps / {row['tick_seconds']:>3} s: "
              f"{row['price_ticked_per_day']:>6,}/day, {row['price_ticked_per_month']:>9,}/month, "
              f"${row['usd_per_month']:.2f}/month "
              f"({row['trades_per_min']} trades/min)")  # fmt: skip

    figures = {
        "json_loads": round(1e6 / loads_rate, 3),
        "listener_path": round(1e6 / path_rate, 3),
    }
    details = {
        "messages": n,
        "rounds": args.rounds,
        "cpu": pinned,
        "msgs_per_s": {"listener_path": round(path_rate), "json_loads": round(loads_rate)},
        "ratio_to_json_loads": round(path_rate / loads_rate, 3),
        "target_msgs_per_s": TARGET_MSGS_PER_S,
        "meets_target": path_rate >= TARGET_MSGS_PER_S,
        "added_latency_us": latency,
        "added_latency_with_tick_us": tick_latency,
        "ticks_timed": len(tick_latencies),
        "rss_mb_samples_every_100k": [round(x, 1) for x in rss_samples],
        "rss_growth_mb": round(growth, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "counts": counts,
        "eventbridge_volume": volume,
        "source": [str(TRADES.name), str(BOOKS.name)],
    }
    path = _write(figures, details)
    print(f"results: {path}")
    return 0 if path_rate >= TARGET_MSGS_PER_S else 1


if __name__ == "__main__":
    sys.exit(main())
