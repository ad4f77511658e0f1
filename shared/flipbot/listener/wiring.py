"""Logging and adapters of the listener process (its composition root).

Production: :class:`~flipbot.adapters.aws.EventBridgePublisher` on the custom bus,
:class:`~flipbot.adapters.dynamodb.DynamoMarket` on ``MARKET_TABLE``, CloudWatch
metrics. ``--dry-run``: events and metrics are logged, no snapshot is written, no AWS
call is made (local runs and the image's smoke test).

Logs are one JSON object a line (the Powertools format the functions use), through
:class:`flipbot.observability.ScrubbingFormatter`: the API key and secret are replaced
by ``***`` wherever they would appear, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flipbot.listener.metrics import CloudWatchMetrics, LogMetrics, MetricsSink
from flipbot.listener.settings import ListenerSettings

log = logging.getLogger("flipbot.listener")


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """JSON lines on stdout (``flipbot.observability.ScrubbingFormatter``), secrets scrubbed."""
    from flipbot.observability import ScrubbingFormatter, register_secret

    register_secret(*secrets)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ScrubbingFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("flipbot").propagate = True  # everything through the root handler
    for noisy in ("botocore", "boto3", "urllib3", "websockets", "pynamodb"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class LogPublisher:
    """Publisher for ``--dry-run``: counts and logs what would be published."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for detail_type, detail in items:
            self.counts[detail_type] += 1
            if detail_type != "PriceTicked":
                log.info("dry run: %s %s", detail_type, json.dumps(detail, default=str))


def production_adapters(settings: ListenerSettings) -> tuple[Any, Any, MetricsSink]:
    """``(publisher, market writer, metrics)`` on AWS, with short network timeouts."""
    import boto3
    from botocore.config import Config

    from flipbot.adapters.aws import EventBridgePublisher
    from flipbot.adapters.dynamodb import repositories
    from flipbot.events import SOURCE
    from flipbot.settings import Tables

    config = Config(
        connect_timeout=3,
        read_timeout=5,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    region = settings.region or None
    session = boto3.session.Session(region_name=region)
    publisher = EventBridgePublisher(
        session.client("events", config=config), settings.event_bus_name, SOURCE
    )
    # Only the market repository is used; the other table names are never touched.
    tables = Tables(
        cycles="", orders="", fills="", trades="", consultations="", market=settings.market_table
    )
    market = repositories(tables, region=region).market
    metrics = CloudWatchMetrics(
        session.client("cloudwatch", config=config),
        namespace=settings.metrics_namespace,
        service=settings.service_name,
    )
    return publisher, market, metrics


def dry_run_adapters() -> tuple[LogPublisher, None, LogMetrics]:
    return LogPublisher(), None, LogMetrics()


def run_listener(settings: ListenerSettings, *, dry_run: bool = False) -> int:
    """Build the adapters and run the process until SIGTERM; the exit status."""
    import asyncio

    from flipbot.listener.service import Listener

    publisher, market, metrics = dry_run_adapters() if dry_run else production_adapters(settings)

    async def main() -> int:
        listener = Listener(settings, publisher=publisher, market_writer=market, metrics=metrics)
        return await listener.run()

    return asyncio.run(main())
