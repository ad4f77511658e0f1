"""Heartbeat, lag and reconnect metrics of the listener.

The task's logs go through the ``awslogs`` driver, which does not extract Embedded
Metric Format, so the listener calls CloudWatch ``PutMetricData`` itself, once a
minute: namespace ``flipbot``, one dimension ``service=flipbot`` (what the template's
alarm and dashboard read):

* ``ListenerHeartbeat`` (Count): 1 while both streams are live, 0 otherwise. The alarm
  fires after five minutes without a 1 (missing data counts as breaching).
* ``ListenerLagMs`` (Milliseconds): receive time minus Binance's event time ``E`` of
  every trade and execution report, sent as a value/count histogram so the dashboard's
  p50/p99 are real percentiles.
* ``Reconnects`` (Count): reconnections since the previous flush (any stream, any reason).
* ``ListenerBadMessages`` (Count): market and user-stream messages dropped as bad
  (unreadable, mistyped, a value no market has) since the previous flush.

:class:`LagHistogram` is on the hot path: one dict increment per sample, buckets
bounded (exact to 100 ms, then coarser: at most ~340 of them, capped at 10 minutes), so
memory stays flat at any message rate.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

log = logging.getLogger("flipbot.listener")

_MAX_VALUES_PER_DATUM = 150  # PutMetricData: at most 150 distinct values per metric datum
_MAX_LAG_MS = 600_000


def lag_bucket(lag_ms: int) -> int:
    """The histogram bucket of a lag: exact up to 100 ms, then 10 / 100 / 10,000 ms steps."""
    if lag_ms <= 100:
        return lag_ms if lag_ms > 0 else 0
    if lag_ms <= 1000:
        return lag_ms - lag_ms % 10
    if lag_ms <= 10_000:
        return lag_ms - lag_ms % 100
    return min(lag_ms - lag_ms % 10_000, _MAX_LAG_MS)


class LagHistogram:
    """Counts of lag values (ms) since the last :meth:`take`."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def add(self, lag_ms: int) -> None:
        if not 0 <= lag_ms <= 100:
            lag_ms = lag_bucket(lag_ms)
        counts = self.counts
        counts[lag_ms] = counts.get(lag_ms, 0) + 1

    def take(self) -> dict[int, int]:
        """The counts so far; the histogram starts again empty."""
        counts, self.counts = self.counts, {}
        return counts

    def merge(self, other: dict[int, int]) -> None:
        for value, count in other.items():
            self.counts[value] = self.counts.get(value, 0) + count


def percentile(counts: dict[int, int], q: float) -> int | None:
    """The ``q`` quantile (0..1) of a value/count histogram; ``None`` when empty."""
    total = sum(counts.values())
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > rank:
            return value
    return max(counts)


class MetricsSink(Protocol):
    def put(
        self, *, heartbeat: int, reconnects: int, lag_ms: dict[int, int], bad_messages: int = 0
    ) -> None: ...


class CloudWatchMetrics:
    """``MetricsSink`` on CloudWatch ``PutMetricData`` (blocking: call it off the event loop)."""

    def __init__(
        self, client: Any, *, namespace: str = "flipbot", service: str = "flipbot"
    ) -> None:
        self._cw = client
        self._namespace = namespace
        self._dimensions = [{"Name": "service", "Value": service}]

    def metric_data(
        self, *, heartbeat: int, reconnects: int, lag_ms: dict[int, int], bad_messages: int = 0
    ) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = [
            {
                "MetricName": "ListenerHeartbeat",
                "Dimensions": self._dimensions,
                "Value": float(heartbeat),
                "Unit": "Count",
            },
            {
                "MetricName": "Reconnects",
                "Dimensions": self._dimensions,
                "Value": float(reconnects),
                "Unit": "Count",
            },
            {
                "MetricName": "ListenerBadMessages",
                "Dimensions": self._dimensions,
                "Value": float(bad_messages),
                "Unit": "Count",
            },
        ]
        values = sorted(lag_ms)
        for start in range(0, len(values), _MAX_VALUES_PER_DATUM):
            chunk = values[start : start + _MAX_VALUES_PER_DATUM]
            data.append(
                {
                    "MetricName": "ListenerLagMs",
                    "Dimensions": self._dimensions,
                    "Values": [float(v) for v in chunk],
                    "Counts": [float(lag_ms[v]) for v in chunk],
                    "Unit": "Milliseconds",
                }
            )
        return data

    def put(
        self, *, heartbeat: int, reconnects: int, lag_ms: dict[int, int], bad_messages: int = 0
    ) -> None:
        data = self.metric_data(
            heartbeat=heartbeat, reconnects=reconnects, lag_ms=lag_ms, bad_messages=bad_messages
        )
        self._cw.put_metric_data(Namespace=self._namespace, MetricData=data)


class LogMetrics:
    """``MetricsSink`` that only logs (``--dry-run`` and local runs)."""

    def __init__(self) -> None:
        self.calls: deque[dict[str, Any]] = deque(maxlen=1000)

    def put(
        self, *, heartbeat: int, reconnects: int, lag_ms: dict[int, int], bad_messages: int = 0
    ) -> None:
        self.calls.append(
            {
                "heartbeat": heartbeat,
                "reconnects": reconnects,
                "lag_ms": lag_ms,
                "bad_messages": bad_messages,
            }
        )
        log.info(
            "metrics heartbeat=%d reconnects=%d bad_messages=%d lag_p50=%s lag_p99=%s samples=%d",
            heartbeat,
            reconnects,
            bad_messages,
            percentile(lag_ms, 0.5),
            percentile(lag_ms, 0.99),
            sum(lag_ms.values()),
        )
