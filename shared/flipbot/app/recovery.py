"""Recovery from the exchange alone: rebuild the bot's records and resume its cycle.

For a first deploy onto an account with history, or after the tables were lost. The
exchange's orders and trades are the truth; the client order ids tell the stack's own
orders (``<prefix>-<cycle>-<B|S><attempt>``, ``ORDER_ID_PREFIX``) from manual ones, and
both from another stack's on the same account (another ``fb...`` prefix), which are left
out: neither recorded nor counted. Then, for the latest cycle:

* an open BUY: ``RECOVERY_OPEN_BUY=cancel`` (default) cancels it and goes on with what it
  filled; ``wait`` keeps it and resumes waiting for its fill;
* an open SELL: resume waiting for its fill;
* base asset bought by the cycle and not sold: resume at the sell consultation;
* otherwise: start the next cycle.

Old fills never trigger anything: no task token waits on them and manual buys found
here are recorded without a follow-up sell. Executions still running on lost records
(their task tokens are gone with the table) are stopped and replaced.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Any

from flipbot.app.accounting import carried_into, with_totals
from flipbot.app.contracts import ConsultAction, CycleInput, Resume, ResumeAt
from flipbot.app.fills import order_from_state
from flipbot.app.reconcile import cycle_of_execution
from flipbot.app.trades import record_trade
from flipbot.domain.cycle import CycleState, cycle_sequence, next_cycle_id
from flipbot.domain.entities import ZERO, Cycle, OrderRecord
from flipbot.domain.errors import OrderNotFound
from flipbot.domain.fees import profit_floor
from flipbot.domain.model import Fill, OrderState, Origin, Side
from flipbot.domain.order_ids import (
    is_system_client_order_id,
    other_stack_prefix,
    parse_client_order_id,
)
from flipbot.ports import Services

_LIVE = ("NEW", "PARTIALLY_FILLED")


def recover_symbols(services: Services, symbol: str = "") -> dict[str, Any]:
    """Recover ``symbol``, or each of ``SYMBOLS``: one symbol's answer is
    :func:`recover_from_exchange`'s, several symbols' are under ``symbols``."""
    symbols = (symbol,) if symbol else services.settings.symbols
    if len(symbols) == 1:
        return recover_from_exchange(services.for_symbol(symbols[0]))
    return {"symbols": {sym: recover_from_exchange(services.for_symbol(sym)) for sym in symbols}}


def recover_from_exchange(services: Services) -> dict[str, Any]:
    """Recover the settings' symbol (see the module's docstring)."""
    s, repos, exchange = services.settings, services.repos, services.exchange
    now = services.clock.now_ms()
    rules = exchange.symbol_rules(s.symbol)
    prefix = s.order_id_prefix

    def another_stacks(coid: str) -> bool:
        return bool(other_stack_prefix(coid, prefix=prefix))

    fills = [f for f in exchange.my_trades(s.symbol) if not another_stacks(f.client_order_id)]
    open_states = {
        o.client_order_id: o
        for o in exchange.open_orders(s.symbol)
        if not another_stacks(o.client_order_id)
    }

    repaired_fills = sum(int(repos.fills.add(f)) for f in fills if f.client_order_id)
    by_order: dict[str, list[Fill]] = defaultdict(list)
    for fill in fills:
        by_order[fill.client_order_id].append(fill)
    rebuilt_orders = 0
    for coid in sorted(set(by_order) | set(open_states)):
        if not coid or repos.orders.get(coid) is not None:
            continue
        state = open_states.get(coid) or exchange.get_order(s.symbol, coid)
        if state is None:
            continue
        repos.orders.create(_order_record(coid, state, now, prefix))
        rebuilt_orders += 1

    cycles = _rebuild_cycles(services, rules, now)
    running = [
        (name, arn)
        for name, arn in services.workflow.running_cycles()
        if s.symbol_of_cycle(cycle_of_execution(name)) == s.symbol
    ]
    summary: dict[str, Any] = {
        "repaired_fills": repaired_fills,
        "rebuilt_orders": rebuilt_orders,
        "cycles": [c.cycle_id for c in cycles],
    }
    if running and not rebuilt_orders:
        return {**summary, "resume": "NONE", "reason": f"cycle {running[0][0]} is running"}
    for _name, arn in running:
        services.workflow.stop_cycle(arn, "its records were rebuilt from the exchange")

    latest = cycles[-1] if cycles else None
    cycle_input = _resume_input(services, latest, rules, now)
    # the state machine's input contract, checked before an execution starts with it
    CycleInput.model_validate(cycle_input)
    name = f"{cycle_input['cycle_id']}-recovered-{now}"
    services.workflow.start_cycle(name, cycle_input)
    return {
        **summary,
        "resume": cycle_input.get("resume", Resume.CONSULT_BUY),
        "cycle_id": cycle_input["cycle_id"],
        "execution": name,
    }


def _order_record(coid: str, state: OrderState, now: int, prefix: str) -> OrderRecord:
    parsed = parse_client_order_id(coid, prefix=prefix)
    record = OrderRecord(
        client_order_id=coid,
        symbol=state.symbol,
        side=state.side,
        price=state.price,
        quantity=state.orig_qty,
        origin=Origin.SYSTEM if is_system_client_order_id(coid, prefix=prefix) else Origin.MANUAL,
        cycle_id=parsed[0] if parsed else "",
        attempt=parsed[2] if parsed else 0,
        created_ms=state.time_ms,
        updated_ms=now,
    )
    return order_from_state(record, state, now)


def _rebuild_cycles(services: Services, rules: Any, now: int) -> list[Cycle]:
    """Cycle items for every cycle the bot's orders name, oldest first."""
    repos = services.repos
    orders: dict[str, list[OrderRecord]] = defaultdict(list)
    for order in repos.orders.all():
        if order.origin is Origin.SYSTEM and order.cycle_id and order.symbol == rules.symbol:
            orders[order.cycle_id].append(order)
    cycles: list[Cycle] = []
    for cycle_id in sorted(orders, key=cycle_sequence):
        cycle = repos.cycles.get(cycle_id)
        if cycle is None:
            first = min(o.created_ms for o in orders[cycle_id])
            cycle = repos.cycles.create(
                Cycle(
                    cycle_id,
                    services.settings.symbol,
                    CycleState.READY_TO_BUY,
                    created_ms=first,
                    updated_ms=now,
                    carried_qty=carried_into(repos.cycles, cycle_id),
                    buy_order_ids=tuple(
                        sorted(o.client_order_id for o in orders[cycle_id] if o.side is Side.BUY)
                    ),
                    sell_order_ids=tuple(
                        sorted(o.client_order_id for o in orders[cycle_id] if o.side is Side.SELL)
                    ),
                )
            )
            fills = [f for o in orders[cycle_id] for f in repos.fills.for_order(o.client_order_id)]
            cycle = with_totals(cycle, fills, rules.base_asset, rules.quote_asset)
            fees = services.exchange.fee_schedule(cycle.symbol)
            floor = (
                profit_floor(
                    cycle.entry_price, fees, services.settings.floor_margin, rules.tick_size
                )
                if cycle.entry_price
                else ZERO
            )
            cycle = repos.cycles.save(
                cycle.evolve(state=_state_of(orders[cycle_id], cycle, rules), floor_price=floor)
            )
            if cycle.state is CycleState.COMPLETED and not _has_trade(services, cycle_id):
                cycle = repos.cycles.save(cycle.evolve(state=CycleState.SELLING))
                record_trade(services, cycle_id=cycle_id)
                cycle = repos.cycles.get(cycle_id) or cycle
        cycles.append(cycle)
    return cycles


def _state_of(orders: list[OrderRecord], cycle: Cycle, rules: Any) -> CycleState:
    live = [o for o in orders if o.status in _LIVE]
    if any(o.side is Side.SELL for o in live):
        return CycleState.SELLING
    if any(o.side is Side.BUY for o in live):
        return CycleState.BUYING
    if rules.floor_qty(cycle.held_qty) > 0:
        return CycleState.READY_TO_SELL
    if cycle.sold_qty > 0:
        return CycleState.COMPLETED
    return CycleState.READY_TO_BUY


def _has_trade(services: Services, cycle_id: str) -> bool:
    return services.repos.trades.get(services.settings.symbol, cycle_id) is not None


def _resume_input(services: Services, cycle: Cycle | None, rules: Any, now: int) -> dict[str, Any]:
    s, repos = services.settings, services.repos
    if cycle is None:
        return CycleInput.first(s.symbol_part(s.symbol))
    orders = [repos.orders.get(c) for c in cycle.buy_order_ids + cycle.sell_order_ids]
    live = [o for o in orders if o is not None and o.status in _LIVE]
    sells = len(cycle.sell_order_ids)
    base = {
        "cycle_id": cycle.cycle_id,
        "attempt": max(len(cycle.buy_order_ids), 1),
        "sell_attempt": max(sells, 1),
    }
    live_buy = next((o for o in live if o.side is Side.BUY), None)
    live_sell = next((o for o in live if o.side is Side.SELL), None)
    if live_sell is not None:
        return {
            **base,
            "sell_attempt": live_sell.attempt,
            "resume": ResumeAt.WAIT_SELL,
            "sell_decision": _decision(
                live_sell,
                timeout=s.sell_timeout_seconds,
                heartbeat=s.sell_heartbeat_seconds,
            ),
        }
    if live_buy is not None and s.recovery_open_buy == "wait":
        return {
            **base,
            "attempt": live_buy.attempt,
            "resume": ResumeAt.WAIT_BUY,
            "buy_decision": _decision(live_buy, timeout=s.buy_order_timeout_seconds),
        }
    if live_buy is not None:
        repos.orders.put(live_buy.evolve(cancel_requested=True, updated_ms=now))
        with contextlib.suppress(OrderNotFound):
            services.exchange.cancel_order(live_buy.symbol, live_buy.client_order_id)
        state = services.exchange.get_order(live_buy.symbol, live_buy.client_order_id)
        if state is not None:
            repos.orders.put(order_from_state(live_buy, state, now))
        fills = [f for c in cycle.buy_order_ids for f in repos.fills.for_order(c)]
        fills += list(services.exchange.my_trades(cycle.symbol, order_id=live_buy.order_id))
        for fill in fills:
            repos.fills.add(fill)
        cycle = with_totals(cycle, fills, rules.base_asset, rules.quote_asset)
    if rules.floor_qty(cycle.held_qty) > 0:
        return {**base, "sell_attempt": sells + 1, "resume": ResumeAt.CONSULT_SELL}
    if cycle.state is not CycleState.COMPLETED and cycle.sold_qty == 0:
        return {**base, "attempt": len(cycle.buy_order_ids) + 1}
    next_id = next_cycle_id(cycle.cycle_id)
    return {"cycle_id": next_id, "attempt": 1, "sell_attempt": 1}


def _decision(order: OrderRecord, *, timeout: int = 0, heartbeat: int = 0) -> dict[str, Any]:
    """The consult output a waiting Place state expects, taken from the resting order."""
    return {
        "action": ConsultAction.PLACE,
        "price": format(order.price, "f"),
        "quantity": format(order.quantity, "f"),
        "wait_seconds": 0,
        "timeout_seconds": timeout,
        "heartbeat_seconds": heartbeat,
        "consultation_id": f"recovered-{order.client_order_id}",
        "confidence": 1.0,
        "reason": "resumed from the exchange after recovery",
        "guard": "",
        "reprice_seconds": 0,
    }
