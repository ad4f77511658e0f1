"""``sam local invoke`` without a container: the template's functions on moto, in process.

:func:`local_stack` builds every resource of ``template.yaml`` in ``moto.mock_aws``
with the twin (functions from ``CodeUri`` + ``Handler``, each with the template's
environment), a paper exchange behind the real python-binance client, and the twin's
moto hooks. :meth:`LocalStack.invoke` calls a function through the Lambda API, as
``sam local invoke <LogicalId> -e events/<file>`` does, and returns what Lambda would:
the result, or the error payload (``errorType``, ``errorMessage``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
SYMBOL = "TRUMPUSDC"
START_MS = 1_748_858_400_000  # 2025-06-02T10:00Z, the morning of the event fixtures
PAPER_KEY = "eventTestApiKey0000000000000000000000000000000000000000000000000"
PAPER_SECRET = "eventTestApiSecret000000000000000000000000000000000000000000000"


class VirtualClock:
    """The functions' clock: the scheduler's virtual time, like the twin's."""

    def __init__(self, scheduler: Any) -> None:
        self._scheduler = scheduler

    def now_ms(self) -> int:
        return int(self._scheduler.now_ms)


@dataclass
class Invocation:
    payload: Any
    error_type: str | None  # None when the function returned normally

    @property
    def error_message(self) -> str:
        return str(self.payload.get("errorMessage", "")) if self.error_type else ""


@dataclass
class LocalStack:
    cloud: Any  # flipbot_dev.twin.cloud.LocalCloud
    registry: Any  # flipbot_dev.twin.moto_hooks.LambdaRegistry
    scheduler: Any  # flipbot_dev.twin.moto_hooks.VirtualScheduler
    exchange: Any  # flipbot_dev.paper.engine.PaperExchange
    lambda_client: Any

    def invoke(self, logical_id: str, event: Mapping[str, Any]) -> Invocation:
        response = self.lambda_client.invoke(
            FunctionName=self.cloud.function_names[logical_id], Payload=json.dumps(event)
        )
        payload = json.loads(response["Payload"].read() or b"null")
        error = response.get("FunctionError")
        return Invocation(payload, payload.get("errorType", "Unhandled") if error else None)

    def seed_market(self, bid: str, ask: str, minutes: int = 30) -> None:
        """A quiet market around ``bid``/``ask`` on the exchange and in MarketTable."""
        from flipbot.adapters.dynamodb import repositories
        from flipbot.domain.indicators import MarketIndicators
        from flipbot.settings import Settings

        indicators = MarketIndicators(SYMBOL)
        low, high = Decimal(bid), Decimal(ask)
        for minute in range(minutes):
            now = self.scheduler.now_ms
            price = low if minute % 2 else high
            indicators.on_trade(now, price, Decimal("5"), bool(minute % 2))
            indicators.on_book(low, Decimal("100"), high, Decimal("100"))
            self.exchange.on_book(now, low, Decimal("100"), high, Decimal("100"))
            self.scheduler.now_ms += 60_000
        settings = Settings.from_env(self.cloud.environment_of("ConsultAiFunction"))
        repos = repositories(settings.tables, region="us-east-1")
        repos.market.put(indicators.snapshot(self.scheduler.now_ms))
        self.exchange.outbox.clear()


def event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


@contextmanager
def local_stack(
    *,
    secrets: Mapping[str, dict[str, str]] | None = None,
    extra_env: Mapping[str, str] | None = None,
    quote_balance: str = "100",
) -> Iterator[LocalStack]:
    """The deployed stack of ``template.yaml`` on moto, for the duration of the block."""
    import boto3
    from moto import mock_aws

    from flipbot import composition
    from flipbot_dev.paper.engine import PaperExchange
    from flipbot_dev.paper.rest import BinanceRestApp
    from flipbot_dev.paper.transport import make_client
    from flipbot_dev.twin import cloud as local_cloud
    from flipbot_dev.twin.moto_hooks import LambdaRegistry, VirtualScheduler, install

    scheduler = VirtualScheduler(now_ms=START_MS)
    registry = LambdaRegistry()
    binance = (secrets or {}).get("BinanceApiSecret") or {
        "api_key": PAPER_KEY,
        "api_secret": PAPER_SECRET,
    }
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        install(scheduler, registry),
    ):
        exchange = PaperExchange(
            [SYMBOL], clock=scheduler.time_ms, balances={"USDC": Decimal(quote_balance)}
        )
        rest = BinanceRestApp(
            exchange, api_key=binance["api_key"], api_secret=binance["api_secret"]
        )
        wiring = composition.Wiring(
            factories={
                "clock": lambda _: VirtualClock(scheduler),
                "binance_client": lambda _: lambda key, secret: make_client(rest, key, secret),
            }
        )
        containers = composition.Containers(wiring)
        registry.services = lambda _name: containers.for_env(os.environ)
        cloud = local_cloud.build(
            TEMPLATE,
            registry,
            secrets={
                "BinanceApiSecret": binance,
                "OpenAiApiSecret": {},
                **{k: v for k, v in (secrets or {}).items() if k != "BinanceApiSecret"},
            },
            extra_env=extra_env,
        )
        yield LocalStack(
            cloud=cloud,
            registry=registry,
            scheduler=scheduler,
            exchange=exchange,
            lambda_client=boto3.client("lambda", region_name=local_cloud.REGION),
        )
