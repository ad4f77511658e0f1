"""The digital twin's replay loop: market data in, the deployed system trading, a report out.

One process runs what ``sam deploy`` ships: the functions of ``template.yaml`` (the
same handler files), the state machine from ``statemachine/trade_cycle.asl.json``, the
tables and rules of the template, on moto. A paper exchange stands in for Binance and
is reached through the real python-binance client; this loop stands in for the
listener: it feeds the exchange and the indicators with the replayed market, writes
the market snapshot, and publishes every ``executionReport`` as the listener does.

Time is virtual: the loop moves the clock from one market event to the next, firing
Wait states, order timeouts, retry intervals and scheduled rules on the way. Same data,
same seed, same settings: the same report, byte for byte.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from flipbot_dev.replay.data import BookEvent, MarketData, TradeEvent

#: in the poison world, the chance that a market or user-stream message comes with a bad one
POISON_RATE = 0.02
#: and that an executionReport does (a cycle has a handful)
POISON_USER_RATE = 0.5
PAPER_KEY = "paperTwinApiKey0000000000000000000000000000000000000000000000000"
PAPER_SECRET = "paperTwinApiSecret00000000000000000000000000000000000000000000000"


@dataclass(frozen=True, kw_only=True)
class ReplayConfig:
    data: MarketData
    symbol: str
    #: the SAM template the twin deploys; its folder holds the functions' code and the
    #: layers it names (the project root)
    template: Path
    out_dir: Path | None = None
    quote_balance: Decimal = Decimal("100")
    parameters: Mapping[str, str] = field(default_factory=dict)  # template parameter overrides
    snapshot_every_ms: int = 60_000  # price samples kept for the plots
    warmup_ms: int = 30 * 60_000  # indicators need history before the first consult
    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    fill_model: str = "through"
    decider: str = "offline"
    max_cycles: int = 0
    progress: bool = True
    exchange: str = "inprocess"  # or "loopback": python-binance over HTTP on 127.0.0.1
    chaos: str = "none"  # a profile of flipbot_dev.twin.chaos.PROFILES
    #: (minutes after the first event, action): "wipe_and_recover" empties every table and
    #: invokes the reconcile function's recovery from the exchange alone; the actions of
    #: :data:`BY_HAND` are what a person does in the console or the Binance app.
    interventions: tuple[tuple[int, str], ...] = ()
    chaos_seed: int = 0
    #: authorize every AWS call against its caller's role (as AWS does); off only to
    #: measure what the check costs
    iam: bool = True
    #: a table dump (:func:`flipbot_dev.twin.tables_dump.dump_tables`) written into the tables
    #: before the replay starts: a stack with a past, to see what its history costs
    history: Path | None = None
    #: the markets of the stack's other symbols (its ``Symbols``), one each; ``data`` is
    #: ``symbol``'s, the stack's own
    others: tuple[MarketData, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every symbol the replayed stack trades, its own first."""
        return (self.symbol, *(d.symbol for d in self.others))

    def data_of(self, symbol: str) -> MarketData:
        """The market replayed for ``symbol``."""
        if symbol == self.symbol:
            return self.data
        return next(d for d in self.others if d.symbol == symbol)

    def __post_init__(self) -> None:
        """Check every value before anything is deployed: a replay that would fail on a
        bad value minutes in (an unknown intervention, say) fails here, naming it."""
        from flipbot.app.lab import STRATEGIES
        from flipbot.domain.errors import ConfigurationError
        from flipbot_dev.paper.server import TRANSPORTS
        from flipbot_dev.twin.chaos import PROFILES
        from flipbot_dev.twin.world import WORLD_SCENARIOS

        def bad(name: str, value: object, expected: str) -> ConfigurationError:
            return ConfigurationError(f"replay {name}={value!r}: {expected}")

        if not self.template.is_file():
            raise bad("template", str(self.template), "no such file")
        if self.history is not None and not self.history.is_file():
            raise bad("history", str(self.history), "no such file")
        if not self.quote_balance > 0:
            raise bad("quote_balance", str(self.quote_balance), "must be positive")
        for name in ("maker_fee", "taker_fee"):
            fee = getattr(self, name)
            if not Decimal(0) <= fee < Decimal("0.1"):
                raise bad(name, str(fee), "a fraction of the trade's value in [0, 0.1)")
        if self.snapshot_every_ms <= 0:
            raise bad("snapshot_every_ms", self.snapshot_every_ms, "must be positive")
        for name in ("warmup_ms", "max_cycles", "chaos_seed"):
            if getattr(self, name) < 0:
                raise bad(name, getattr(self, name), "must not be negative")
        choices: dict[str, tuple[str, tuple[str, ...]]] = {
            "fill_model": (self.fill_model, ("through", "touch")),
            "decider": (self.decider, STRATEGIES),
            "exchange": (self.exchange, TRANSPORTS),
            "chaos": (self.chaos, ("none", *PROFILES)),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise bad(name, value, f"choose one of {', '.join(allowed)}")
        if len(set(self.symbols)) != len(self.symbols):
            raise bad("symbols", ",".join(self.symbols), "each symbol once")
        if self.others and self.chaos in WORLD_SCENARIOS:
            raise bad(
                "chaos",
                self.chaos,
                "the hostile-world scenarios replay one symbol; with several, use a delivery "
                f"profile ({', '.join(p for p in PROFILES if p not in WORLD_SCENARIOS)})",
            )
        actions = ("wipe_and_recover", *BY_HAND)
        for minutes, action in self.interventions:
            if action not in actions:
                raise bad("interventions", action, f"choose one of {', '.join(actions)}")
            if minutes < 0:
                raise bad("interventions", minutes, "minutes after the first event, not negative")


@dataclass
class ReplayState:
    """What the loop observes while it runs (for the report and the progress line)."""

    events: int = 0
    published: int = 0
    schedules_fired: int = 0
    recoveries: int = 0
    max_position_quote: Decimal = Decimal(0)
    last_price: Decimal = Decimal(0)
    price_path: list[tuple[int, Decimal]] = field(default_factory=list)
    #: every error a state caught into Reconcile: (virtual time, cycle, error, its cause)
    caught: list[tuple[int, str, str, str]] = field(default_factory=list)
    #: every intervention by hand: (virtual time, action, what it did)
    by_hand: list[tuple[int, str, str]] = field(default_factory=list)
    #: what was withdrawn from the account by hand, per asset
    withdrawn: dict[str, Decimal] = field(default_factory=dict)
    #: each symbol's last price and price samples (the stack's own symbol's are also
    #: ``last_price`` and ``price_path``)
    last_prices: dict[str, Decimal] = field(default_factory=dict)
    price_paths: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)

    def of_symbol(self, symbol: str) -> ReplayState:
        """This state as one symbol's report reads it: its prices."""
        from dataclasses import replace

        return replace(
            self,
            last_price=self.last_prices.get(symbol, Decimal(0)),
            price_path=self.price_paths.get(symbol, []),
        )


class _TwinClock:
    def __init__(self, scheduler: Any) -> None:
        self._s = scheduler

    def now_ms(self) -> int:
        return int(self._s.now_ms)


def _decider_factory(name: str) -> Callable[[Any], Any]:
    import os

    # "openai" reads the CLI's environment as it is now: during an invocation os.environ
    # also holds the function's (template) variables, e.g. an empty OPENAI_BASE_URL.
    cli_env = dict(os.environ) if name == "openai" else {}

    def build(container: Any) -> Any:
        from flipbot.domain import strategy

        if name == "fixed":
            return strategy.FixedMarginStrategy()
        if name == "offline":
            return strategy.OfflineStrategy()
        if name == "openai":  # the CLI's OPENAI_API_KEY / OPENAI_BASE_URL, offline fallback
            from flipbot.adapters.openai_decider import decider_from_env

            return decider_from_env(
                cli_env,
                fallback=strategy.OfflineStrategy(),
                now_ms=container.clock.now_ms,
                default_model=container.settings.ai_model,
                default_models=container.settings.ai_models,
                price_band=container.settings.price_band,
            )
        from flipbot.app.lab import STRATEGIES, build_decider

        lab = build_decider(
            name,
            repos=container.repos,
            symbol=container.settings.symbol,
            limits=container.settings.session_limits,
        )
        if lab is not None:
            return lab
        raise ValueError(f"unknown decision maker {name!r}: choose one of {', '.join(STRATEGIES)}")

    return build


def run_replay(config: ReplayConfig, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Replay ``config.data`` through the whole system; return (and write) the report."""
    import logging
    import warnings

    import boto3
    from moto import mock_aws

    from flipbot import composition
    from flipbot.adapters.aws import EventBridgePublisher
    from flipbot.adapters.dynamodb import repositories
    from flipbot.app.contracts import CycleInput
    from flipbot.domain.cycle import cycle_id_for
    from flipbot.domain.indicators import MarketIndicators
    from flipbot.events import SOURCE
    from flipbot.settings import Settings
    from flipbot.streams import events_for_execution_report
    from flipbot_dev.paper.engine import PaperExchange
    from flipbot_dev.paper.rest import BinanceRestApp
    from flipbot_dev.paper.server import ClientLink
    from flipbot_dev.twin import cloud as local_cloud
    from flipbot_dev.twin import monitoring
    from flipbot_dev.twin.chaos import Chaos
    from flipbot_dev.twin.limits import Limits
    from flipbot_dev.twin.moto_hooks import LambdaRegistry, VirtualScheduler, install
    from flipbot_dev.twin.reads import ReadMeter
    from flipbot_dev.twin.report import StackBooks, build_report, combine_reports, write_outputs
    from flipbot_dev.twin.world import OTHER_SYMBOL, WORLD_SCENARIOS, World, WorldContext

    # A function that fails before adding a metric makes Powertools warn; the failure
    # itself is what matters and is retried and reported.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # moto's ASL interpreter logs every handled error (timeouts, Catch, IsPresent on an
    # absent path) at ERROR; the report and the executions' history tell what happened.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    data = config.data
    if not data.events:
        raise ValueError(f"{data.source}: no market events to replay")
    started = time.monotonic()
    scheduler = VirtualScheduler(now_ms=data.first_ms)
    registry = LambdaRegistry()
    state = ReplayState()
    # The template's Strategy parameter follows the decision maker (it also selects the
    # strategy's own stop-loss); "openai" is the template's "ai".
    hostile_ai = config.chaos == "ai-hostile"  # every consultation meets a hostile model
    strategy = "ai" if config.decider == "openai" or hostile_ai else config.decider
    several = {"Symbols": ",".join(config.symbols)} if config.others else {}
    parameters = {
        "Symbol": config.symbol,
        "Strategy": strategy,
        **several,
        **config.parameters,
    }
    chaos = Chaos(config.chaos, config.chaos_seed) if config.chaos != "none" else None
    world = World(config.chaos, config.chaos_seed) if config.chaos in WORLD_SCENARIOS else None
    # Poison: the listener's own code reads the replay's market and user-stream messages,
    # bad ones among them; what it publishes and writes is what the bot gets.
    poison = None
    if config.chaos == "poison":
        from flipbot_dev.twin.poison import PoisonListener

        poison = PoisonListener(
            config.symbol, config.chaos_seed, rate=POISON_RATE, user_rate=POISON_USER_RATE
        )
    # The listener logs each bad message at ERROR; the report counts them instead.
    listener_log = logging.getLogger("flipbot.listener")
    listener_level = listener_log.level
    if poison is not None:
        listener_log.setLevel(logging.CRITICAL)
    # In the hostile world the account also trades another symbol, by hand.
    symbols = [config.symbol, OTHER_SYMBOL] if world and config.symbol != OTHER_SYMBOL else []
    limits = Limits()

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        install(scheduler, registry, limits),
        ClientLink(config.exchange) as link,
        ExitStack() as cleanup,
    ):
        exchange = PaperExchange(
            symbols or list(config.symbols),
            clock=scheduler.time_ms,
            maker=config.maker_fee,
            taker=config.taker_fee,
            balances={_quote_asset(config.symbol): config.quote_balance},
            fill_model=config.fill_model,  # type: ignore[arg-type]
        )
        rest = BinanceRestApp(exchange, api_key=PAPER_KEY, api_secret=PAPER_SECRET)
        faults = chaos.exchange_fault if chaos else None
        ai_stats = None
        decider = _decider_factory(config.decider)
        if hostile_ai:
            from flipbot_dev.twin.hostile_ai import hostile_decider_factory

            decider, ai_stats = hostile_decider_factory(config.chaos_seed)
        factories: dict[str, composition.Factory] = {
            "clock": lambda _: _TwinClock(scheduler),
            "binance_client": lambda _: link.client_factory(rest, faults=faults),
            "decider": decider,
        }
        decorators: dict[str, Callable[[Any], Any]] = {}
        if chaos is not None:
            decorators = {
                "repos": lambda part: chaos.wrap(part, "dynamodb"),
                "exchange": lambda part: chaos.wrap(part, "exchange"),
                "workflow": lambda part: chaos.wrap(part, "stepfunctions"),
            }
        # each function's sandbox keeps its warm container, built with the twin's wiring
        containers = composition.Containers(composition.Wiring(factories, decorators))
        registry.services = lambda _name: containers.for_env(os.environ)
        extra_env = {"MAX_CYCLES": str(config.max_cycles)} if config.max_cycles else {}
        cloud = local_cloud.build(
            config.template,
            registry,
            parameters=parameters,
            secrets={
                "BinanceApiSecret": {"api_key": PAPER_KEY, "api_secret": PAPER_SECRET},
                "OpenAiApiSecret": {},
            },
            extra_env=extra_env,
            with_iam=config.iam,
        )
        # From here on every AWS call is authorized against its caller's role: the
        # functions' (the registry runs each under its own), the state machine's (moto's
        # execution threads), the listener's (this loop, where it stands in for it).
        env = cloud.environment_of("ConsultAiFunction")
        settings = Settings.from_env(env)
        repos = repositories(settings.tables, region=local_cloud.REGION)
        if config.history is not None:  # the stack's past, written as deploy-time data
            _write_history(repos, config.history)
        authorizer = cleanup.enter_context(_enforced(cloud.authorizer))
        reads = ReadMeter(scheduler.time_ms, data.first_ms)
        if authorizer is not None:  # it sees every call a principal makes
            authorizer.observer = reads
        _limits_of(cloud, limits)
        if chaos is not None and chaos.concurrent:  # invocations of a function may overlap
            registry.parallel = frozenset(cloud.function_names.values())
        as_listener = partial(authorizer.acting_as, LISTENER) if authorizer else nullcontext
        publisher = EventBridgePublisher(
            boto3.client("events", region_name=local_cloud.REGION),
            cloud.bus_name,
            SOURCE,
            sleep=lambda _: None,
        )
        sfn = boto3.client("stepfunctions", region_name=local_cloud.REGION)
        indicators_of = {symbol: MarketIndicators(symbol) for symbol in config.symbols}
        initial_balances = _balances(exchange)
        consult_function = cloud.function_names["ConsultAiFunction"]

        def fresh_snapshot(function_name: str, _event: dict[str, Any]) -> None:
            # The listener keeps MarketTable at most a few seconds old; the twin writes
            # the snapshot of this virtual instant right before each consultation.
            if function_name != consult_function:
                return
            symbol = settings.symbol_of_cycle(str(_event.get("cycle_id") or ""))
            own = indicators_of.get(symbol)
            if own is not None and own.has_data:
                with as_listener():
                    now = scheduler.now_ms
                    listened = poison.snapshot(now) if poison is not None else None
                    repos.market.put(listened or own.snapshot(now))

        reconcile_name = cloud.function_names["ReconcileFunction"]

        def before_invoke(function_name: str, event: dict[str, Any]) -> None:
            fresh_snapshot(function_name, event)
            if function_name == reconcile_name and event.get("source") == "cycle":
                error = event.get("error") or {}
                error = error if isinstance(error, dict) else {}
                state.caught.append(
                    (
                        scheduler.now_ms,
                        str(event.get("cycle_id", "")),
                        str(error.get("Error", "")),
                        str(error.get("Cause", ""))[:500],
                    )
                )
            if chaos is not None:
                chaos.arm()

        registry.before_invoke = before_invoke
        metric_samples: list[Any] = []  # what CloudWatch would extract from the functions' logs
        registry.after_output = lambda _name, text: metric_samples.extend(
            monitoring.emf_samples(text, scheduler.now_ms)
        )
        start_at = data.first_ms + config.warmup_ms
        started_cycles: set[str] = set()
        positions: dict[str, Decimal] = {}
        schedule_due = {s.rule_name: data.first_ms + s.every_ms for s in cloud.schedules}
        progress = _Progress(
            sum(len(config.data_of(sym).events) for sym in config.symbols),
            out if config.progress else None,
        )
        seen_cycles: set[str] = set()
        closers = (
            cloud.function_names["RecordTradeFunction"],
            cloud.function_names["ReconcileFunction"],
        )
        announced = [0, 0]  # closers' invocations, trade rows: when last announced
        ddb = boto3.client("dynamodb", region_name=local_cloud.REGION)

        def trade_rows() -> int:
            return int(ddb.describe_table(TableName=settings.tables.trades)["Table"]["ItemCount"])

        def drain(final: bool = False) -> None:
            if not exchange.outbox and not final:
                return
            final_drain = final
            while exchange.outbox or final:
                batch, exchange.outbox[:] = list(exchange.outbox), []
                reports = [m for m in batch if m.get("event", m).get("e") == "executionReport"]
                if world is not None:
                    world.observe(reports)
                gap = False
                if chaos is not None:
                    reports, gap = chaos.deliveries(reports)
                    if final:
                        late, restart_gap = chaos.flush()
                        reports += late
                        gap = gap or restart_gap
                final = False
                if chaos is not None and chaos.concurrent:
                    registry.deferred = []  # the batch's deliveries run at once, below
                for message in reports:
                    with as_listener():
                        publisher.publish_many(
                            poison.execution_report(message)
                            if poison is not None
                            else events_for_execution_report(message)
                        )
                    state.published += 1
                    scheduler.settle()
                if gap:  # the listener reconnected: it says so, and reconcile catches up
                    with as_listener():
                        publisher.publish(
                            "StreamGapDetected",
                            {
                                "stream": "user",
                                "reason": "reconnected",
                                "since_ms": scheduler.now_ms,
                                "until_ms": scheduler.now_ms,
                            },
                        )
                    scheduler.settle()
                if registry.deferred is not None and chaos is not None:
                    chaos.stats.overlapped += _overlapping(registry.deferred)
                    registry.deliver_deferred()
                    registry.deferred = None
                    scheduler.settle()
            # a cycle closes in RecordTrade (reconcile calls it too) and writes its trade
            # row: the cycles are read again once one of them ran and the row count moved
            closings = sum(registry.invocations.get(name, 0) for name in closers)
            if closings != announced[0] or final_drain:
                announced[0] = closings
                rows = trade_rows()
                if rows != announced[1] or final_drain:
                    announced[1] = rows
                    _announce_closed_cycles(repos, seen_cycles, out)

        def advance(target_ms: int) -> None:
            while True:
                due = [(t, name) for name, t in schedule_due.items() if t <= target_ms]
                if not due:
                    break
                when, name = min(due)
                scheduler.advance_to(when)
                target = next(s for s in cloud.schedules if s.rule_name == name)
                registry.invoke_async(target.function_name, _scheduled_event(name, when))
                state.schedules_fired += 1
                schedule_due[name] = when + target.every_ms
                scheduler.settle()
                drain()
            scheduler.advance_to(target_ms)
            drain()

        pending = sorted(
            (data.first_ms + minutes * 60_000, action) for minutes, action in config.interventions
        )
        reconcile_function = cloud.function_names["ReconcileFunction"]

        def publish_as_listener(events: list[tuple[str, dict[str, Any]]]) -> None:
            with as_listener():
                publisher.publish_many(events)
            scheduler.settle()

        world_ctx = WorldContext(
            exchange=exchange,
            symbol=config.symbol,
            state=state,
            sfn=sfn,
            cloud=cloud,
            now_ms=lambda: int(scheduler.now_ms),
            publish=publish_as_listener,
            invoke=lambda logical_id, ev: registry.invoke(cloud.function_names[logical_id], ev),
            by_hand=BY_HAND,
        )
        next_sample_of = dict.fromkeys(config.symbols, data.first_ms)
        for symbol, event in _market_events(config):
            while pending and pending[0][0] <= event.time_ms:
                at, action = pending.pop(0)
                advance(at)
                if action == "wipe_and_recover":
                    _wipe_tables(cloud)
                    registry.invoke(reconcile_function, {"source": "recover"})
                    state.recoveries += 1
                elif action in BY_HAND:
                    did = BY_HAND[action](sfn, cloud, exchange, config.symbol, state)
                    state.by_hand.append((scheduler.now_ms, action, did))
                else:
                    raise ValueError(f"unknown intervention {action!r}")
                scheduler.settle()
                drain()
            if event.time_ms > scheduler.now_ms:
                advance(event.time_ms)
            if isinstance(event, TradeEvent):
                indicators_of[symbol].on_trade(
                    event.time_ms, event.price, event.qty, event.is_buyer_maker
                )
                if poison is not None:
                    poison.market_trade(event)
                exchange.on_trade(
                    event.time_ms,
                    event.price,
                    event.qty,
                    event.is_buyer_maker,
                    symbol=symbol,
                )
                state.last_prices[symbol] = event.price
                if symbol == config.symbol:
                    state.last_price = event.price
            elif isinstance(event, BookEvent):
                indicators_of[symbol].on_book(event.bid, event.bid_qty, event.ask, event.ask_qty)
                if poison is not None:
                    poison.market_book(event)
                exchange.on_book(
                    event.time_ms,
                    event.bid,
                    event.bid_qty,
                    event.ask,
                    event.ask_qty,
                    symbol=symbol,
                )
            state.events += 1
            last = state.last_prices.get(symbol, Decimal(0))
            if event.time_ms >= next_sample_of[symbol] and last > 0:
                state.price_paths.setdefault(symbol, []).append((event.time_ms, last))
                next_sample_of[symbol] = event.time_ms + config.snapshot_every_ms
            # the deploy starts the stack's own chain; reconcile starts the others' chains
            if (
                symbol == config.symbol
                and symbol not in started_cycles
                and event.time_ms >= start_at
                and last > 0
            ):
                first = cycle_id_for(1, settings.symbol_part(symbol))
                sfn.start_execution(
                    stateMachineArn=cloud.state_machine_arn,
                    name=first,
                    input=json.dumps(CycleInput.first(settings.symbol_part(symbol))),
                )
                started_cycles.add(symbol)
            scheduler.settle()
            drain()
            if world is not None:
                acted = world.tick(world_ctx, start_at + 10 * 60_000, data.last_ms - 60 * 60_000)
                if acted is not None:
                    state.by_hand.append((scheduler.now_ms, config.chaos, acted))
                    scheduler.settle()
                    drain()
            positions[symbol] = _base_total(exchange, symbol) * last
            state.max_position_quote = max(
                state.max_position_quote, sum(positions.values(), Decimal(0))
            )
            progress.update(state.events, scheduler.now_ms)
        scheduler.settle()
        drain(final=True)
        progress.done()
        executions = _executions(sfn, cloud.state_machine_arn)
        stuck = _stuck_waits(sfn, cloud.state_machine_arn, repos)
        _stop_running(sfn, cloud.state_machine_arn)
        for asset, amount in state.withdrawn.items():  # gone by hand, not by a fill
            initial_balances[asset] = initial_balances.get(asset, Decimal(0)) - amount
        state.price_path = state.price_paths.get(config.symbol, [])
        if config.others:
            books = StackBooks.read(repos)
            per_symbol = {
                symbol: build_report(
                    config=config,
                    settings=settings,
                    repos=repos,
                    exchange=exchange,
                    initial_balances=initial_balances,
                    state=state.of_symbol(symbol),
                    symbol=symbol,
                    books=books,
                )
                for symbol in config.symbols
            }
            report = combine_reports(
                per_symbol,
                config=config,
                exchange=exchange,
                repos=repos,
                books=books,
                initial_balances=initial_balances,
                state=state,
            )
        else:
            report = build_report(
                config=config,
                settings=settings,
                repos=repos,
                exchange=exchange,
                initial_balances=initial_balances,
                state=state,
            )
        report["executions"] = executions
        report["dead_letters"] = len(registry.dead_letters)
        report["recoveries"] = state.recoveries
        if state.by_hand:
            from flipbot_dev.twin.report import iso

            report["by_hand"] = [f"{iso(at)} {action}: {did}" for at, action, did in state.by_hand]
        cycles = repos.cycles.all()
        running = {name.split("-", 1)[0] for name in executions["running"]}
        open_cycles = {c.cycle_id for c in cycles if c.state.value not in ("COMPLETED", "STOPPED")}
        report["invariants"]["every_cycle_completed_or_running"] = (
            open_cycles <= running and not executions["failed"]
        )
        halts = silent_halts(cycles, running, _metric_total(metric_samples, "CycleHalted"))
        report["invariants"]["no_silent_halt"] = not halts
        report["violations"]["silent_halts"] = halts
        stopped = [c for c in cycles if c.state.value == "STOPPED"]
        if stopped:
            report["cycles_stopped"] = {c.cycle_id: c.stop_reason for c in stopped}
        # one execution at a time in each symbol's chain (two of one cycle count twice)
        per_chain = Counter(
            settings.symbol_of_cycle(name.split("-", 1)[0]) for name in executions["running"]
        )
        report["invariants"]["one_cycle_at_a_time"] = all(n <= 1 for n in per_chain.values())
        report["invariants"]["no_wait_without_live_order"] = not stuck
        report["violations"]["waits_without_live_order"] = stuck
        for symbol, own in report.get("symbols", {}).items():  # the same, chain by chain
            mine = settings.symbol_of_cycle
            own["invariants"]["every_cycle_completed_or_running"] = {
                c for c in open_cycles if mine(c) == symbol
            } <= running and not [
                n
                for n in executions["failed"]
                if mine(n.split(":", 1)[0].split("-", 1)[0]) == symbol
            ]
            own_halts = [h for h in halts if mine(h.split(":", 1)[0]) == symbol]
            own["invariants"]["no_silent_halt"] = not own_halts
            own["violations"]["silent_halts"] = own_halts
            own["invariants"]["one_cycle_at_a_time"] = per_chain.get(symbol, 0) <= 1
            own_stuck = [w for w in stuck if mine(w.split(" ", 1)[0]) == symbol]
            own["invariants"]["no_wait_without_live_order"] = not own_stuck
            own["violations"]["waits_without_live_order"] = own_stuck
        if chaos is not None:
            if world is not None:
                chaos.stats.injections.update(world.injections)
            if poison is not None:
                found = poison.stats.as_dict()
                for stream, kinds in found["injected"].items():
                    chaos.stats.injections.update(
                        {f"{stream}_{k}": n for k, n in kinds.items() if n}
                    )
                report["poison"] = found
                report["invariants"]["listener_drops_poison"] = not poison.violations()
                report["violations"]["listener_poison"] = poison.violations()[:20]
            if ai_stats is not None:
                injected = ai_stats.as_dict()["injections"]
                chaos.stats.injections.update({f"ai_{k}": n for k, n in injected.items() if n})
                report["ai_hostile"] = ai_stats.as_dict()
            report["chaos"] = {
                "profile": chaos.profile,
                "seed": chaos.seed,
                **chaos.stats.as_dict(),
            }
        report["errors_caught"] = dict(sorted(Counter(c[2] for c in state.caught).items()))
        if authorizer is not None:
            report["iam"] = authorizer.summary() | {"grants": authorizer.usage()}
            report["invariants"]["iam_every_call_allowed"] = not authorizer.denied
            report["violations"]["iam_denied_calls"] = report["iam"]["denied"]
            closed = [c.closed_ms for c in repos.cycles.all() if c.state.value == "COMPLETED"]
            report["dynamodb_reads"] = reads.summary() | {
                "cycles_closed_by_day": _per_day(closed, data.first_ms, len(reads.by_day))
            }
        report["limits"] = limits.report({name: lid for lid, name in cloud.function_names.items()})
        slowest = limits.slowest({name: lid for lid, name in cloud.function_names.items()})
        report["invocations"] = {
            logical_id: registry.invocations.get(name, 0)
            for logical_id, name in sorted(cloud.function_names.items())
        }
        report["metrics_emitted"] = monitoring.emitted(metric_samples)
        report["alarms"] = monitoring.alarms_report(
            cloud.template,
            parameters,
            metric_samples,
            data.first_ms,
            scheduler.now_ms,
            not_in_replay=monitoring.listener_metric_names(),
        )
        if config.out_dir is not None:  # the books, for flipbot status / history / pnl
            from flipbot_dev.twin.tables_dump import dump_tables

            dump_tables(repos, config.symbols, config.out_dir / "tables")
    listener_log.setLevel(listener_level)
    if config.out_dir is not None:
        write_outputs(
            report, repos_snapshot=report.pop("_trades"), out_dir=config.out_dir, state=state
        )
    else:
        report.pop("_trades")
    elapsed = time.monotonic() - started
    print(
        f"replayed {state.events:,} market events in {elapsed:.1f}s "
        f"({state.published} order updates, {state.schedules_fired} scheduled runs, "
        f"{sum(registry.async_retries.values())} async retries)",
        file=out,
    )
    print(
        "  longest invocation (real seconds, against each Timeout): "
        + ", ".join(f"{fn} {seconds:.2f}" for fn, seconds in slowest.items()),
        file=out,
    )
    from flipbot_dev.twin.report import iso

    for when, cycle_id, name, cause in state.caught:
        print(
            f"  caught into Reconcile: {name or '?'} in {cycle_id} at {iso(when)}: {cause}",
            file=out,
        )
    return report


def _market_events(config: ReplayConfig) -> Iterator[tuple[str, Any]]:
    """``(symbol, event)`` of every replayed market, in time order (on equal times, the
    stack's own symbol first, then ``others`` in their order)."""
    if not config.others:
        symbol = config.symbol
        return ((symbol, event) for event in config.data.events)
    import heapq

    def keyed(index: int, symbol: str) -> Iterator[tuple[int, int, str, Any]]:
        for event in config.data_of(symbol).events:
            yield event.time_ms, index, symbol, event

    streams = [keyed(index, symbol) for index, symbol in enumerate(config.symbols)]
    return ((symbol, event) for _, _, symbol, event in heapq.merge(*streams))


def _per_day(times_ms: list[int], start_ms: int, days: int) -> list[int]:
    """How many of ``times_ms`` fall in each virtual day from ``start_ms``."""
    from flipbot_dev.twin.reads import DAY_MS

    counts = [0] * max(days, max(((t - start_ms) // DAY_MS + 1 for t in times_ms), default=0))
    for t in times_ms:
        counts[max(0, (t - start_ms) // DAY_MS)] += 1
    return counts


#: the principal of the listener's task (its role's logical id in the template)
LISTENER = "ListenerTaskRole"


def _limits_of(cloud: Any, limits: Any) -> None:
    """The template's side of the limits: each function's Timeout, its environment's size."""
    for logical_id, function in cloud.template.functions.items():
        name = cloud.function_names[logical_id]
        if function.timeout is not None:
            limits.timeouts[name] = function.timeout
    for name, size in sorted(cloud.environment_sizes.items()):
        limits.see("lambda_environment", size, name)


def _overlapping(deliveries: list[tuple[str, dict[str, Any]]]) -> int:
    """How many deliveries run alongside another of the same function."""
    per_function = Counter(name for name, _ in deliveries)
    return sum(n for n in per_function.values() if n > 1)


@contextmanager
def _enforced(authorizer: Any) -> Iterator[Any]:
    """Install ``authorizer`` for the block (nothing when IAM is not enforced)."""
    if authorizer is None:
        yield None
        return
    with authorizer.installed():
        yield authorizer


def _quote_asset(symbol: str) -> str:
    from flipbot_dev.paper.symbols import default_symbol_info

    return str(default_symbol_info(symbol)["quoteAsset"])


def _balances(exchange: Any) -> dict[str, Decimal]:
    account = exchange.account()
    return {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}


def _base_total(exchange: Any, symbol: str) -> Decimal:
    free, locked = exchange.balance(exchange.symbol_info(symbol)["baseAsset"])
    return Decimal(free + locked)


def _scheduled_event(rule_name: str, when_ms: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(when_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": f"twin-{rule_name}-{when_ms}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": stamp,
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:123456789012:rule/{rule_name}"],
        "detail": {},
    }


def _executions(sfn: Any, state_machine_arn: str) -> dict[str, list[str]]:
    """Execution names by outcome: running (waiting), succeeded, stopped (replaced by a
    recovery), failed (with their error)."""
    out: dict[str, list[str]] = {"running": [], "succeeded": [], "stopped": [], "failed": []}
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:
            status = execution["status"]
            if status == "RUNNING":
                out["running"].append(execution["name"])
            elif status == "SUCCEEDED":
                out["succeeded"].append(execution["name"])
            elif status == "ABORTED":
                out["stopped"].append(execution["name"])
            else:
                detail = sfn.describe_execution(executionArn=execution["executionArn"])
                out["failed"].append(
                    f"{execution['name']}: {status} {detail.get('error', '')}".strip()
                )
    return {k: sorted(v) for k, v in out.items()}


def silent_halts(cycles: list[Any], running: set[str], halted_counted: float) -> list[str]:
    from flipbot.app.consult import SYMBOL_REMOVED

    """Cycles that halted in silence: neither completed, nor running, nor stopped with a
    reason; and stopped cycles the ``CycleHalted`` metric (its alarm) did not count."""
    out = []
    stopped = 0
    for cycle in cycles:
        state = cycle.state.value
        if state == "COMPLETED" or (cycle.cycle_id in running and state != "STOPPED"):
            continue
        if state == "STOPPED" and cycle.stop_reason.endswith(SYMBOL_REMOVED):
            continue  # its symbol was taken out of SYMBOLS: meant, not an incident
        if state == "STOPPED" and cycle.stop_reason:
            stopped += 1
        elif state == "STOPPED":
            out.append(f"{cycle.cycle_id}: STOPPED with no reason")
        else:
            out.append(f"{cycle.cycle_id}: {state}, no running execution, no reason")
    if halted_counted < stopped:
        out.append(f"{stopped} cycle(s) stopped, CycleHalted counted {halted_counted:g}")
    return out


def _metric_total(samples: list[Any], name: str) -> float:
    return float(sum(s.value * s.count for s in samples if s.metric.name == name))


def _stop_executions(sfn: Any, cloud: Any, exchange: Any, symbol: str, state: Any) -> str:
    """Stop every running execution, as the console's "Stop execution" does."""
    running = sfn.list_executions(stateMachineArn=cloud.state_machine_arn, statusFilter="RUNNING")
    names = []
    for execution in running["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"], cause="stopped by hand")
        names.append(execution["name"])
    return "stopped " + (", ".join(sorted(names)) or "nothing")


def _withdraw_base(sfn: Any, cloud: Any, exchange: Any, symbol: str, state: Any) -> str:
    """Cancel the resting sells in the Binance app, then withdraw every unit of the base
    asset from the account."""
    base = exchange.symbol_info(symbol)["baseAsset"]
    canceled = [
        exchange.cancel_order(symbol, order_id=o["orderId"])["clientOrderId"]
        for o in exchange.open_orders(symbol)
        if o["side"] == "SELL"
    ]
    taken = exchange.withdraw(base)
    state.withdrawn[base] = state.withdrawn.get(base, Decimal(0)) + taken
    return f"canceled {len(canceled)} sell(s), withdrew {taken} {base}"


def _start_duplicate(sfn: Any, cloud: Any, exchange: Any, symbol: str, state: Any) -> str:
    """Start a second execution of the running cycle, with the same input, under another
    name (a start-execution by hand, or a deploy script run twice)."""
    running = sfn.list_executions(stateMachineArn=cloud.state_machine_arn, statusFilter="RUNNING")
    names = []
    for execution in running["executions"]:
        cycle_id = execution["name"].split("-")[0]
        name = f"{cycle_id}-by-hand-{len(state.by_hand) + 1}"
        sfn.start_execution(
            stateMachineArn=cloud.state_machine_arn,
            name=name,
            input=json.dumps({"cycle_id": cycle_id, "attempt": 1, "sell_attempt": 1}),
        )
        names.append(name)
    return "started " + (", ".join(sorted(names)) or "nothing")


#: interventions by hand (``ReplayConfig.interventions``): each returns what it did
BY_HAND: dict[str, Callable[[Any, Any, Any, str, Any], str]] = {
    "stop_execution": _stop_executions,
    "withdraw_base": _withdraw_base,
    "start_duplicate": _start_duplicate,
}


def _write_history(repos: Any, directory: Path) -> None:
    """The books of ``directory`` into the tables, as they were."""
    from flipbot_dev.twin.tables_dump import load_tables

    books = load_tables(directory)
    for cycle in books.cycles:
        repos.cycles.create(cycle)
    for order in books.orders:
        repos.orders.put(order)
    for fill in books.fills:
        repos.fills.add(fill)
    for trade in books.trades:
        repos.trades.add(trade)
    for consultation in books.consultations:
        repos.consultations.add(consultation)


def _wipe_tables(cloud: Any) -> None:
    """Delete every item of every table of the template (a lost or emptied database)."""
    import boto3

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for logical_id, table in cloud.template.tables.items():
        name = cloud.refs[logical_id]
        keys = [attr for attr, _ in table.key_schema]
        for page in ddb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                ddb.delete_item(TableName=name, Key={k: item[k] for k in keys})


def _stuck_waits(sfn: Any, state_machine_arn: str, repos: Any) -> list[str]:
    """Executions waiting for a fill of an order that is not live on the exchange's book.

    A wait for a task token is alive only while its order rests (NEW or partially
    filled) with that wait's token; anything else would wait forever.
    """
    from flipbot.app.reconcile import cycle_of_execution

    stuck = []
    running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    orders = repos.orders.all() if running["executions"] else []  # one scan for all of them
    waited = {  # cycles with a live order whose wait is on: not stuck, whatever their state
        o.cycle_id
        for o in orders
        if o.status in ("NEW", "PARTIALLY_FILLED") and o.token_state == "WAITING"
    }
    for execution in running["executions"]:
        cycle = cycle_of_execution(execution["name"])  # a recovered or continued one's too
        if cycle in waited:
            continue
        history = sfn.get_execution_history(
            executionArn=execution["executionArn"], reverseOrder=True
        )["events"]
        entered = next(
            (
                e["stateEnteredEventDetails"]["name"]
                for e in history
                if "stateEnteredEventDetails" in e
            ),
            "",
        )
        if entered in ("PlaceBuy", "PlaceSell"):
            stuck.append(f"{cycle} waits in {entered} with no live order")
    return stuck


def _stop_running(sfn: Any, state_machine_arn: str) -> None:
    """End executions still waiting when the data runs out (as a redeploy would)."""
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        for execution in page["executions"]:
            sfn.stop_execution(
                executionArn=execution["executionArn"],
                error="ReplayEnded",
                cause="the replayed market data ended",
            )


def _announce_closed_cycles(repos: Any, seen: set[str], out: TextIO) -> None:
    """One line per completed cycle, as it closes."""
    from flipbot.domain.cycle import CycleState

    for cycle in repos.cycles.all():
        if cycle.state is CycleState.COMPLETED and cycle.cycle_id not in seen:
            seen.add(cycle.cycle_id)
            print(
                f"  cycle {cycle.cycle_id}: bought {cycle.bought_qty} @ {cycle.entry_price:.4f}, "
                f"sold {cycle.sold_qty} for {cycle.received_quote:.4f} -> "
                f"P&L {cycle.realized_pnl:+.4f} (fees {cycle.fees_quote:.4f})",
                file=out,
            )


class _Progress:
    """A progress line on stderr-like output, at most every half second."""

    def __init__(self, total: int, out: TextIO | None) -> None:
        self.total = total
        self.out = out
        self.last = 0.0

    def update(self, done: int, now_ms: int) -> None:
        if self.out is None:
            return
        now = time.monotonic()
        if now - self.last < 0.5 and done < self.total:
            return
        self.last = now
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
        width = 30
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"\r  [{bar}] {100 * done / max(self.total, 1):5.1f}%  {stamp} UTC",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def done(self) -> None:
        if self.out is not None:
            print(file=sys.stderr)
