"""The listener against the loopback Binance WebSocket server and moto.

* ``aws``: moto's EventBridge (the bus, a rule on ``source: flipbot.listener`` with an
  SQS target that captures what was published), DynamoDB (``MarketTable`` built from
  ``template.yaml``'s key schema) and CloudWatch.
* :class:`Rig`: one scenario - a :class:`~flipbot_dev.paper.ws.BinanceWsServer`, a
  :class:`~flipbot_dev.paper.engine.PaperExchange` on the wall clock whose execution
  reports the server pushes, and a :class:`~flipbot.listener.service.Listener` with the
  production adapters on moto, its publisher wrapped to record each published batch in
  call order. Timeouts are short so that every scenario ends in well under 5 seconds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flipbot.listener.binance_ws import wall_ms
from flipbot.listener.service import Listener
from flipbot.listener.settings import ListenerSettings
from flipbot.listener.wiring import production_adapters
from flipbot.streams import order_update_from_execution_report
from flipbot_dev.paper import PaperExchange
from flipbot_dev.paper.ws import BinanceWsServer
from flipbot_dev.twin.iam import Authorizer, Where, load_principals
from flipbot_dev.twin.runner import LISTENER
from flipbot_dev.twin.template import load_template, translate

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
SYMBOL = "TRUMPUSDC"
KEY = "listenerTestApiKey0001"
SECRET = "listenerTestApiSecret0001"
BUS = "flipbot-test-bus"
TABLE = "flipbot-test-MarketTable"

FAST = {
    "USER_PROBE_SECONDS": "0.25",
    "USER_SILENCE_SECONDS": "1.5",
    "MARKET_SILENCE_SECONDS": "5",
    "REQUEST_TIMEOUT_SECONDS": "1",
    "HANDOVER_TIMEOUT_SECONDS": "1.5",
    "RECONNECT_BASE_SECONDS": "0.02",
    "RECONNECT_MAX_SECONDS": "0.1",
    "STOP_TIMEOUT_SECONDS": "3",
    "SNAPSHOT_SECONDS": "0.2",
    "PRICE_TICK_SECONDS": "0.5",
    "METRICS_SECONDS": "0.3",
    "HEALTH_PORT": "0",
}


@dataclass
class Aws:
    sqs: Any
    queue_url: str
    dynamodb: Any
    cloudwatch: Any

    def published(self) -> list[dict[str, Any]]:
        """Every event delivered to the SQS target so far (EventBridge envelopes)."""
        out: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        table = load_template(ROOT / "template.yaml").tables["MarketTable"]
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(**table.create_table_kwargs(TABLE))
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="captured")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(
            Name="all-listener-events",
            EventBusName=BUS,
            EventPattern=json.dumps({"source": ["flipbot.listener"]}),
        )
        events.put_targets(
            Rule="all-listener-events",
            EventBusName=BUS,
            Targets=[{"Id": "capture", "Arn": queue_arn}],
        )
        # The listener makes its AWS calls from its executor's threads: each is authorized
        # against the template's ListenerTaskRole, as in its ECS task. The test's own
        # calls (this thread) are not checked.
        authorizer = _listener_authorizer(
            table_arn=dynamodb.describe_table(TableName=TABLE)["Table"]["TableArn"],
            bus_arn=events.describe_event_bus(Name=BUS)["Arn"],
        )
        with authorizer.installed():
            yield Aws(sqs, queue_url, dynamodb, boto3.client("cloudwatch", region_name=REGION))
        assert not authorizer.denied, [d.describe(authorizer.where) for d in authorizer.denied]


@functools.cache
def _translated() -> dict[str, Any]:
    return translate(ROOT / "template.yaml")


def _listener_authorizer(*, table_arn: str, bus_arn: str) -> Authorizer:
    refs = {
        "MarketTable": TABLE,
        "EventBus": BUS,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": "flipbot-test",
    }
    attrs = {("MarketTable", "Arn"): table_arn, ("EventBus", "Arn"): bus_arn}
    role = load_principals(_translated(), refs, attrs)[LISTENER]
    return Authorizer({LISTENER: role}, Where(REGION, ACCOUNT), default_principal=LISTENER)


class RecordingPublisher:
    """Wraps the real publisher: records every batch it published, in call order.

    ``gate`` (a ``threading.Event``), when given, holds every call until it is set.
    """

    def __init__(self, inner: Any, gate: threading.Event | None = None) -> None:
        self.inner = inner
        self.gate = gate
        self.items: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        self.inner.publish_many(items)
        with self._lock:
            self.items.extend((t, dict(d)) for t, d in items)

    def of_type(self, detail_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [d for t, d in self.items if t == detail_type]


def listener_settings(base_url: str, **overrides: str) -> ListenerSettings:
    env = {
        "SYMBOL": SYMBOL,
        "EVENT_BUS_NAME": BUS,
        "MARKET_TABLE": TABLE,
        "BINANCE_API_KEY": KEY,
        "BINANCE_API_SECRET": SECRET,
        "BINANCE_BASE_URL": base_url,
        "AWS_DEFAULT_REGION": REGION,
        **FAST,
        **overrides,
    }
    return ListenerSettings.from_env(env)


@dataclass
class Rig:
    """A server, an exchange and a running listener (see the module docstring)."""

    server: BinanceWsServer
    listener: Listener
    publisher: RecordingPublisher
    exchange: PaperExchange
    task: asyncio.Task[int]
    orders_placed: int = 0
    trade_id: int = 0
    price: Decimal = field(default=Decimal("10.00"))

    # --- exchange side -------------------------------------------------------------------
    async def place(self, side: str = "BUY", price: str = "9.99", qty: str = "1") -> str:
        """Place a resting order on the exchange and push its execution report(s)."""
        self.orders_placed += 1
        client_order_id = f"fb-t{self.orders_placed:05d}-{side[0]}1"
        self.exchange.place_order(
            SYMBOL,
            side,
            "LIMIT",
            quantity=qty,
            price=price,
            time_in_force="GTC",
            new_client_order_id=client_order_id,
        )
        await self.server.push_exchange_events(self.exchange)
        return client_order_id

    async def trade(self, price: str, qty: str = "0.5", *, buyer_maker: bool = True) -> None:
        """A public trade: fills what it reaches on the exchange and goes out on the stream."""
        now = wall_ms()
        self.trade_id += 1
        self.exchange.on_trade(now, price, qty, buyer_maker)
        await self.server.push_exchange_events(self.exchange)
        data = {
            "e": "trade",
            "E": now,
            "s": SYMBOL,
            "t": self.trade_id,
            "p": price,
            "q": qty,
            "T": now,
            "m": buyer_maker,
            "M": True,
        }
        await self.server.publish(f"{SYMBOL.lower()}@trade", data)

    def reports(self) -> list[dict[str, Any]]:
        """Every executionReport the server pushed, in push order."""
        return [p.event for p in self.server.pushed if p.event.get("e") == "executionReport"]

    # --- listener side -------------------------------------------------------------------
    async def settle(self, timeout: float = 4.0) -> None:
        """Wait until the last report pushed (and delivered) is published and the queue is empty.

        Reports travel in order, so everything the listener received before it is
        published by then too.
        """
        last = next(
            (
                p.event
                for p in reversed(self.server.pushed)
                if p.deliveries and p.event.get("e") == "executionReport"
            ),
            None,
        )
        wanted = report_key(expected_detail(last)) if last is not None else None

        def settled() -> bool:
            listener = self.listener
            published = {report_key(d) for d in self.publisher.of_type("OrderUpdated")}
            return (
                (wanted is None or wanted in published)
                and not listener.queue.critical_pending
                and not listener._in_flight
            )

        await self.wait_for(settled, timeout)

    async def wait_for(self, condition: Any, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.01)

    async def stop(self) -> int:
        self.listener.request_stop("test done")
        return await asyncio.wait_for(self.task, 5)


def run(scenario: Any, limit: float = 8.0) -> Any:
    """Run one scenario coroutine, failing it after ``limit`` seconds."""
    return asyncio.run(asyncio.wait_for(scenario, limit))


async def start_rig(
    *,
    gate: threading.Event | None = None,
    handle_signals: bool = False,
    shutdown_grace_s: float = 10.0,
    **overrides: str,
) -> Rig:
    """``shutdown_grace_s``: how long the server keeps a connection it told of
    ``serverShutdown``; ``overrides``: listener settings by environment name."""
    server = BinanceWsServer(
        api_key=KEY, api_secret=SECRET, lifetime_s=15, shutdown_grace_s=shutdown_grace_s
    )
    await server.start()
    settings = listener_settings(server.base_url, **overrides)
    inner, market, metrics = production_adapters(settings)
    publisher = RecordingPublisher(inner, gate)
    listener = Listener(settings, publisher=publisher, market_writer=market, metrics=metrics)
    task = asyncio.create_task(listener.run(handle_signals=handle_signals))
    await listener.wait_live(3)
    exchange = PaperExchange(
        [SYMBOL], clock=wall_ms, balances={"USDC": Decimal("100000"), "TRUMP": Decimal("1000")}
    )
    exchange.on_book(wall_ms(), "10.00", "50", "10.01", "50")
    exchange.drain()
    return Rig(server, listener, publisher, exchange, task)


def expected_detail(report: Mapping[str, Any]) -> dict[str, Any]:
    return order_update_from_execution_report(dict(report)).model_dump(mode="json")


def report_key(detail: Mapping[str, Any]) -> tuple[Any, ...]:
    """Identifies one execution report in an ``OrderUpdated`` detail."""
    return (
        detail["order_id"],
        detail["execution_type"],
        detail["status"],
        detail["executed_qty"],
        detail["trade_id"],
    )


def within_a_gap(event_ms: int, gaps: Sequence[Mapping[str, Any]]) -> bool:
    return any(g["since_ms"] <= event_ms <= g["until_ms"] for g in gaps)


@pytest.fixture(autouse=True)
def _listener_logs_reach_the_root_logger(flipbot_logs_reach_caplog: None) -> None:
    """The listener logs through the root logger, where ``caplog`` reads it."""
