"""Reconcile: the exchange is the truth; DynamoDB and the waiting executions follow it.

Runs on a schedule, after every stream gap, and as the Catch target of every state in
the trade cycle. It records fills that no event delivered, resumes executions whose
order filled while nobody listened, keeps live waits alive with heartbeats, and tells a
failed cycle where it really stands.

No cycle halts in silence. On its schedule reconcile looks for an open cycle whose
execution ended without succeeding (stopped by hand in the console, failed, timed out)
and none runs for it now; and a cycle that is told to sell must still find its base asset
in the account. Either cycle is stopped: its live orders are canceled, what filled is
booked, and it becomes ``STOPPED`` with the reason (``execution stopped by hand (name)``,
``position gone from the account: held X, account has Y``); the function counts it in the
``CycleHalted`` metric, which an alarm watches. A stopped cycle is not restarted: whoever
stopped an execution by hand meant the bot to stop, and a withdrawn position cannot be
sold. A cycle whose sell had filled in full is closed as usual instead.

A symbol added to ``SYMBOLS`` starts trading on the next scheduled run: its chain's first
cycle is started when it never ran (no item for it) and no execution runs for it, once
the stack's own chain has run (the deploy starts that one when the secrets are set, so
nothing starts on a stack still being set up).
"""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

from flipbot.app.accounting import with_totals
from flipbot.app.contracts import CycleInput, Resume
from flipbot.app.fills import order_from_state, resume_waiting_task, sync_order_fills
from flipbot.app.orders import place_recorded
from flipbot.app.trades import record_trade
from flipbot.domain.cycle import CycleEvent, advance, cycle_id_for, is_final
from flipbot.domain.entities import BotOrderStatus, Cycle, OrderRecord, TokenState
from flipbot.domain.errors import (
    ConfigurationError,
    ExecutionExists,
    FlipbotError,
    OrderNotFound,
    OrderNotSettled,
    OrderRejected,
    PositionGone,
    error_type,
)
from flipbot.domain.filters import SymbolRules
from flipbot.domain.model import Fill, OrderRequest, Origin
from flipbot.ports import Services

MANUAL_CYCLE = "manual"

MAX_REPAIRS_PER_CYCLE = 5

#: why an open cycle with no running execution is stopped, by how its execution ended
ENDED_REASONS = {
    "ABORTED": "execution stopped by hand",
    "FAILED": "execution failed",
    "TIMED_OUT": "execution timed out",
}


def reconcile_open_orders(
    services: Services, symbols: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """Bring every open order item of ``symbols`` (default: the settings' symbol) up to
    date with the exchange, reading each symbol's by the open-orders index."""
    repos, exchange = services.repos, services.exchange
    now = services.clock.now_ms()
    repaired = resumed = heartbeats = 0
    for stored in (
        order
        for symbol in (symbols or (services.settings.symbol,))
        for order in repos.orders.open_orders(symbol)
    ):
        if stored.origin is not Origin.SYSTEM:
            continue
        if stored.status == BotOrderStatus.UNKNOWN:
            repaired += _settle_unknown(services, stored, now)
            continue
        if stored.order_id == 0:
            continue
        order, fills, found = sync_order_fills(stored, exchange, repos, now)
        repaired += found
        if resume_waiting_task(order, fills, repos, services.workflow):
            resumed += 1
        elif order.token_state == TokenState.WAITING and order.task_token:
            try:
                services.workflow.task_heartbeat(order.task_token)
                heartbeats += 1
            except FlipbotError:
                pass  # the task ended (timed out or canceled): nothing waits on this token
    return {"repaired_fills": repaired, "resumed": resumed, "heartbeats": heartbeats}


def reconcile_cycle(services: Services, *, cycle_id: str, error: Any = None) -> dict[str, Any]:
    """Decide where a cycle that hit an error resumes: CONSULT_BUY, CONSULT_SELL, RECORD or FAIL.

    A configuration error (a restricted location, refused credentials, ...) fails the
    cycle at once, naming the error and its message: no retry or repair can help until
    someone changes the deployment, and the exchange would only refuse again.
    """
    name = _error_name(error)
    cls = error_type(name)
    if cls is not None and issubclass(cls, ConfigurationError):
        return {
            "repaired_fills": 0,
            "resumed": 0,
            "heartbeats": 0,
            "resume": Resume.FAIL,
            "reason": f"{name}: {_error_message(error)}",
            "configuration_error": name,
        }
    repos, exchange = services.repos, services.exchange
    now = services.clock.now_ms()
    summary = reconcile_open_orders(services)
    cycle = repos.cycles.get(cycle_id)
    if cycle is None:
        return {**summary, "resume": Resume.CONSULT_BUY, "reason": "no cycle item: start afresh"}
    if is_final(cycle.state) and cycle.stop_reason:
        return {**summary, "resume": Resume.STOP, "reason": cycle.stop_reason}
    if cycle.repairs >= MAX_REPAIRS_PER_CYCLE:
        return {**summary, "resume": Resume.FAIL, "reason": f"{cycle.repairs} repairs already"}
    rules = exchange.symbol_rules(cycle.symbol)
    cycle = _settle_orders(services, cycle, rules, now)
    resume = _where(cycle, rules.floor_qty(cycle.held_qty) > 0)
    gone = _position_gone(services, cycle, rules) if resume == Resume.CONSULT_SELL else None
    if gone is not None:
        _halt(services, cycle, str(gone), now)
        return {**summary, "resume": Resume.STOP, "reason": str(gone), "halted": [cycle_id]}
    repos.cycles.save(cycle.evolve(repairs=cycle.repairs + 1, updated_ms=now))
    return {**summary, "resume": resume, "reason": f"after {_error_name(error)}"}


def reconcile_on_schedule(services: Services) -> dict[str, Any]:
    """The scheduled run, over every symbol: open orders brought up to date, a second
    execution of a cycle stopped, then halted cycles stopped. The running executions are
    listed once for all of it; a symbol removed from ``SYMBOLS`` whose cycle still runs
    is reconciled until that cycle ends."""
    s = services.settings
    running = services.workflow.running_cycles()
    finishing = {s.symbol_of_cycle(cycle_of_execution(name)) for name, _ in running}
    symbols = (*s.symbols, *sorted(finishing - set(s.symbols)))
    summary = reconcile_open_orders(services, symbols)
    extra = stop_extra_executions(services, running)
    halted = halt_orphaned_cycles(services, running)
    started = start_added_chains(services, finishing)
    return {**summary, "stopped_executions": extra, "halted": halted, "started": started}


def start_added_chains(services: Services, running: set[str]) -> list[str]:
    """Start the first cycle of each symbol of ``SYMBOLS`` that never traded (see the
    module's docstring); ``running``: the symbols an execution runs for. Returns the
    cycles started. One read when every chain runs; one more per symbol that runs none."""
    s, repos = services.settings, services.repos
    added = [symbol for symbol in s.symbols if symbol != s.symbol and symbol not in running]
    if not added or repos.cycles.get(cycle_id_for(1, s.symbol_part(s.symbol))) is None:
        return []
    started = []
    for symbol in added:
        first = cycle_id_for(1, s.symbol_part(symbol))
        if repos.cycles.get(first) is not None:
            continue  # it traded: a chain that ended is not restarted
        try:
            services.workflow.start_cycle(first, CycleInput.first(s.symbol_part(symbol)))
        except ExecutionExists:
            continue  # started by another run, or its first execution ended before a cycle
        started.append(first)
    return started


def stop_extra_executions(services: Services, running: list[tuple[str, str]]) -> list[str]:
    """One execution per cycle: when several run for one cycle, the one the bot started
    (named the cycle id, or by a recovery ``<cycle>-recovered-<ms>``, the latest of them;
    a long wait's ``<that name>-continued-<n>``, the latest generation) goes on and the
    others are stopped. They could not trade twice (a cycle's client order
    ids are the same in every execution, and the exchange answers a second placement with
    the first order), but two waits on one order take its task token from each other."""
    by_cycle: dict[str, list[tuple[str, str]]] = {}
    for name, arn in running:
        by_cycle.setdefault(cycle_of_execution(name), []).append((name, arn))
    stopped = []
    for cycle_id, executions in sorted(by_cycle.items()):
        if len(executions) < 2:
            continue
        keep = max(executions, key=lambda e: _bot_started_rank(cycle_id, e[0]))
        for name, arn in sorted(executions):
            if (name, arn) != keep:
                services.workflow.stop_cycle(arn, f"a second execution of {cycle_id}")
                stopped.append(name)
    return stopped


def _bot_started_rank(cycle_id: str, name: str) -> tuple[int, int, int, str]:
    """Higher for the execution the bot itself would have started for ``cycle_id``; a
    continuation of a long wait (``<root>-continued-<n>``) ranks as its root, then by n."""
    root, marker, generation = name.rpartition("-continued-")
    if marker and generation.isdigit():
        kind, started, _, _ = _bot_started_rank(cycle_id, root)
        return (kind, started, int(generation), name)
    recovered = f"{cycle_id}-recovered-"
    if name.startswith(recovered) and name[len(recovered) :].isdigit():
        return (2, int(name[len(recovered) :]), 0, name)
    return (1 if name == cycle_id else 0, 0, 0, name)


def halt_orphaned_cycles(
    services: Services, running_executions: list[tuple[str, str]]
) -> list[str]:
    """Stop every open cycle whose execution ended without succeeding while none runs for
    it now (see the module's docstring); a cycle whose sell filled in full is closed.
    Returns the cycles stopped."""
    workflow, repos = services.workflow, services.repos
    running = {cycle_of_execution(name) for name, _ in running_executions}
    looked: set[str] = set()
    halted = []
    for name, status in workflow.ended_cycles():
        cycle_id = cycle_of_execution(name)
        if cycle_id in running or cycle_id in looked:
            continue
        looked.add(cycle_id)
        cycle = repos.cycles.get(cycle_id)
        if cycle is None or is_final(cycle.state):
            continue
        now = services.clock.now_ms()
        rules = services.exchange.symbol_rules(cycle.symbol)
        cycle = _settle_orders(services, cycle, rules, now)
        holding = rules.floor_qty(cycle.held_qty) > 0
        if _where(cycle, holding) == Resume.RECORD:
            repos.cycles.save(cycle.evolve(updated_ms=now))
            record_trade(services.for_symbol(cycle.symbol), cycle_id=cycle_id)
            continue
        reason = f"{ENDED_REASONS.get(status, f'execution ended {status}')} ({name})"
        if holding:
            reason += f"; the cycle holds {cycle.held_qty} {rules.base_asset}"
        _halt(services, cycle, reason, now)
        halted.append(cycle_id)
    return halted


def _halt(services: Services, cycle: Cycle, reason: str, now: int) -> Cycle:
    """Stop ``cycle`` (settled: nothing of it on the book, its fills booked) for good with
    ``reason``. The base it still holds stays in the account, as its ``held_qty``."""
    return services.repos.cycles.save(
        cycle.evolve(
            state=advance(cycle.state, CycleEvent.HALTED), stop_reason=reason, updated_ms=now
        )
    )


def cycle_of_execution(name: str) -> str:
    """The cycle an execution runs: its name is the cycle id, or starts with it and a dash
    (``c000004-recovered-...``, ``c000004-continued-2``)."""
    return name.split("-", 1)[0]


def _settle_orders(services: Services, cycle: Cycle, rules: SymbolRules, now: int) -> Cycle:
    """Cancel the cycle's live orders and book every fill of its orders: the cycle's totals
    as the exchange has them, with nothing of it left on the book."""
    repos, exchange = services.repos, services.exchange
    fills: list[Fill] = []
    for coid in cycle.buy_order_ids + cycle.sell_order_ids:
        order = repos.orders.get(coid)
        if order is None:
            continue
        if order.status in ("NEW", "PARTIALLY_FILLED"):
            repos.orders.put(order.evolve(cancel_requested=True, updated_ms=now))
            with contextlib.suppress(OrderNotFound):
                exchange.cancel_order(order.symbol, coid)
        fills += sync_order_fills(order, exchange, repos, now)[1]
    return with_totals(cycle, fills, rules.base_asset, rules.quote_asset)


def _position_gone(services: Services, cycle: Cycle, rules: SymbolRules) -> PositionGone | None:
    """The cycle holds base to sell, and the account holds less of it than a sell of it
    needs."""
    # the cycle's own base must be there; dust it carried in may have been swept away
    held = rules.floor_qty(max(cycle.held_qty - cycle.carried_qty, Decimal(0)))
    balance = services.exchange.balances().get(rules.base_asset)
    in_account = balance.free + balance.locked if balance is not None else Decimal(0)
    return PositionGone(cycle.held_qty, in_account, rules.base_asset) if in_account < held else None


def _where(cycle: Cycle, holding: bool) -> str:
    if cycle.sold_qty > 0 and not holding:
        return Resume.RECORD
    if holding:
        return Resume.CONSULT_SELL
    return Resume.CONSULT_BUY


def _error_name(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("Error", "an error"))
    return "an error"


def _error_message(error: Any) -> str:
    """The message of a caught error: a Lambda error's ``Cause`` is a JSON document whose
    ``errorMessage`` holds it; any other cause is given as it is."""
    cause = str(error.get("Cause", "")) if isinstance(error, dict) else ""
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def _settle_unknown(services: Services, order: OrderRecord, now: int) -> int:
    """An order whose create-order outcome is unknown: find it, or (after the grace
    period, for a manual follow-up sell that no execution retries) place it again."""
    state = services.exchange.get_order(order.symbol, order.client_order_id)
    if state is not None:
        services.repos.orders.put(order_from_state(order, state, now))
        return 1
    if order.cycle_id == MANUAL_CYCLE:
        request = OrderRequest(
            order.symbol, order.side, order.price, order.quantity, order.client_order_id
        )
        with contextlib.suppress(OrderNotSettled, OrderRejected):
            state = place_recorded(services, order, request, now)
            services.repos.orders.put(order_from_state(order, state, now))
            return 1
    return 0
