"""A wired bot without Step Functions: real DynamoDB adapter (moto, tables from the
template), real python-binance client against the paper exchange, a recording workflow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flipbot.adapters.aws import StaticKillSwitch
from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.adapters.dynamodb import repositories
from flipbot.domain.decision import Decision, DecisionRequest
from flipbot.domain.indicators import MarketIndicators
from flipbot.ports import Repositories
from flipbot.settings import Settings, Tables
from flipbot.streams import order_update_from_execution_report
from flipbot_dev.paper.engine import PaperExchange
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.paper.transport import FaultHook, make_client
from flipbot_dev.twin.template import load_template

ROOT = Path(__file__).resolve().parents[3]
KEY, SECRET = "testKey0123456789", "testSecret0123456789"
START_MS = 1_737_331_200_000  # 2025-01-20T00:00Z


@dataclass
class Clock:
    now: int = START_MS

    def now_ms(self) -> int:
        return self.now


@dataclass
class RecordingWorkflow:
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    causes: list[str] = field(default_factory=list)  # of the failures, in order

    def task_succeeded(self, task_token: str, output: Any) -> None:
        self.calls.append(("success", task_token, dict(output)))

    def task_failed(self, task_token: str, error: str, cause: str) -> None:
        self.calls.append(("failure", task_token, error))
        self.causes.append(cause)

    def task_heartbeat(self, task_token: str) -> None:
        self.calls.append(("heartbeat", task_token, None))

    running: list[tuple[str, str]] = field(default_factory=list)

    def running_cycles(self) -> list[tuple[str, str]]:
        return list(self.running)

    def start_cycle(self, name: str, cycle_input: Any) -> None:
        from flipbot.domain.errors import ExecutionExists

        if any(kind == "start" and used == name for kind, used, _ in self.calls):
            raise ExecutionExists(f"an execution named {name} exists already")  # as AWS says
        self.calls.append(("start", name, dict(cycle_input)))

    def stop_cycle(self, execution_arn: str, cause: str) -> None:
        self.calls.append(("stop", execution_arn, cause))

    ended: list[tuple[str, str]] = field(default_factory=list)

    def ended_cycles(self) -> list[tuple[str, str]]:
        return list(self.ended)


@dataclass
class ScriptedDecider:
    """Answers what the test says, and remembers what it was asked."""

    answers: list[Decision] = field(default_factory=list)
    requests: list[DecisionRequest] = field(default_factory=list)
    name: str = "scripted"

    def decide(self, request: DecisionRequest) -> Decision:
        self.requests.append(request)
        return self.answers.pop(0)


@dataclass
class Bot:
    """Implements ``flipbot.ports.Services`` with test-controlled parts."""

    settings: Settings
    repos: Repositories
    clock: Clock
    workflow: RecordingWorkflow
    kill_switch: StaticKillSwitch
    exchange: BinanceExchange
    decider: ScriptedDecider
    paper: PaperExchange
    faults: list[FaultHook | None]

    def for_symbol(self, symbol: str) -> Bot:
        """The same parts as ``symbol``'s chain sees them (its own settings)."""
        if symbol == self.settings.symbol:
            return self
        return replace(self, settings=self.settings.for_symbol(symbol))

    def market(self, bid: str, ask: str, *, minutes: int = 40) -> None:
        """Give the exchange a book and the market table a snapshot with history."""
        indicators = MarketIndicators(self.settings.symbol)
        mid = (Decimal(bid) + Decimal(ask)) / 2
        for minute in range(minutes):
            t = self.clock.now - (minutes - minute) * 60_000
            indicators.on_trade(t, mid, Decimal("1"), minute % 2 == 0)
        indicators.on_book(Decimal(bid), Decimal("50"), Decimal(ask), Decimal("50"))
        self.paper.on_book(self.clock.now, bid, "50", ask, "50", symbol=self.settings.symbol)
        self.repos.market.put(indicators.snapshot(self.clock.now))

    def trade(self, price: str, qty: str, *, taker_sold: bool = True) -> None:
        self.clock.now += 1_000
        self.paper.on_trade(self.clock.now, price, qty, taker_sold, symbol=self.settings.symbol)

    def first_buy(
        self, *, price: str = "25.90", qty: str = "0.385", token: str = "token-1"
    ) -> dict[str, Any]:
        """Cycle c000001, ready to buy on a 25.95/25.96 market, places its first buy (it
        rests on the book, its task token waiting); returns place_order's result."""
        from flipbot.app.orders import place_order
        from flipbot.domain.cycle import CycleState
        from flipbot.domain.entities import Cycle
        from flipbot.domain.model import Side

        self.repos.cycles.create(
            Cycle("c000001", "TRUMPUSDC", CycleState.READY_TO_BUY, START_MS, START_MS)
        )
        self.market("25.95", "25.96")
        return place_order(
            self,
            cycle_id="c000001",
            leg=Side.BUY,
            attempt=1,
            price=Decimal(price),
            quantity=Decimal(qty),
            task_token=token,
        )

    def bought(self, cycle_id: str = "c000001") -> None:
        """``cycle_id`` (created when absent) bought 0.385 at 25.90 on a 25.95/25.96
        market, a trade at 25.80 filled it (0.384 held after the commission) and the
        order update is applied."""
        from flipbot.app.fills import apply_order_update
        from flipbot.app.orders import place_order
        from flipbot.domain.cycle import CycleState
        from flipbot.domain.entities import Cycle
        from flipbot.domain.model import Side

        if self.repos.cycles.get(cycle_id) is None:
            self.repos.cycles.create(
                Cycle(cycle_id, "TRUMPUSDC", CycleState.READY_TO_BUY, START_MS, START_MS)
            )
        self.market("25.95", "25.96")
        place_order(
            self,
            cycle_id=cycle_id,
            leg=Side.BUY,
            attempt=1,
            price=Decimal("25.90"),
            quantity=Decimal("0.385"),
            task_token=f"token-{cycle_id}-b",
        )
        self.trade("25.80", "1.000")
        for update in self.updates():
            apply_order_update(update, self.repos, self.workflow, self.clock.now)

    def updates(self) -> list[Any]:
        """The executionReports the exchange emitted since last asked, as OrderUpdated."""
        events = self.paper.drain()
        return [
            order_update_from_execution_report(e) for e in events if e.get("e") == "executionReport"
        ]


def create_tables(settings: Settings) -> None:
    template = load_template(ROOT / "template.yaml")
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    names = {
        "CyclesTable": settings.tables.cycles,
        "OrdersTable": settings.tables.orders,
        "FillsTable": settings.tables.fills,
        "TradesTable": settings.tables.trades,
        "ConsultationsTable": settings.tables.consultations,
        "MarketTable": settings.tables.market,
    }
    for logical_id, name in names.items():
        ddb.create_table(**template.tables[logical_id].create_table_kwargs(name))


def make_bot(settings: Settings, balances: dict[str, str] | None = None) -> Bot:
    """A bot on fresh tables and a paper exchange listing every symbol of ``settings``
    (inside ``mock_aws``)."""
    create_tables(settings)
    clock = Clock()
    paper = PaperExchange(
        list(settings.symbols), clock=clock.now_ms, balances=balances or {"USDC": "100"}
    )
    app = BinanceRestApp(paper, api_key=KEY, api_secret=SECRET)
    faults: list[FaultHook | None] = [None]

    def hook(method: str, path: str, params: Any) -> Any:
        return faults[0](method, path, params) if faults[0] else None

    client = make_client(app, KEY, SECRET, faults=hook)
    return Bot(
        settings=settings,
        repos=repositories(settings.tables, region="us-east-1"),
        clock=clock,
        workflow=RecordingWorkflow(),
        kill_switch=StaticKillSwitch(False),
        exchange=BinanceExchange(client),
        decider=ScriptedDecider(),
        paper=paper,
        faults=faults,
    )


def bot_settings(**changes: Any) -> Settings:
    """The tests' stack: TRUMPUSDC, 10 USDC a cycle, confidence 0.8, 1 % over fees."""
    return Settings(
        symbol="TRUMPUSDC",
        quote_per_cycle=Decimal("10"),
        min_confidence=0.8,
        min_profit=Decimal("0.01"),
        target_profit=Decimal("0.05"),
        price_band=Decimal("0.02"),
        tables=Tables(
            cycles="cycles",
            orders="orders",
            fills="fills",
            trades="trades",
            consultations="consultations",
            market="market",
        ),
        **changes,
    )


@pytest.fixture
def bot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield make_bot(bot_settings())
