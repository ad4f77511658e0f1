"""Reconcile: the exchange is the truth; DynamoDB and the waiting executions follow it.

Runs on a schedule, after every stream gap, and as the Catch target of every state in
the trade cycle. It records fills that no event delivered, resumes executions whose
order filled while nobody listened, keeps live waits alive with heartbeats, and tells a
failed cycle where it really stands.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from flipbot.app.accounting import with_totals
from flipbot.app.fills import order_from_state, resume_waiting_task, sync_order_fills
from flipbot.app.orders import _place_recorded
from flipbot.app.records import Cycle, OrderRecord
from flipbot.app.services import Services
from flipbot.domain.errors import (
    ConfigurationError,
    FlipbotError,
    OrderNotFound,
    OrderNotSettled,
    OrderRejected,
    error_type,
)
from flipbot.domain.model import Fill, OrderRequest, Origin

MANUAL_CYCLE = "manual"

MAX_REPAIRS_PER_CYCLE = 5


def reconcile_open_orders(services: Services) -> dict[str, Any]:
    """Bring every open order item up to date with the exchange."""
    repos, exchange = services.repos, services.exchange
    now = services.clock.now_ms()
    repaired = resumed = heartbeats = 0
    for stored in repos.orders.open_orders(services.settings.symbol):
        if stored.origin is not Origin.SYSTEM:
            continue
        if stored.status == "UNKNOWN":
            repaired += _settle_unknown(services, stored, now)
            continue
        if stored.order_id == 0:
            continue
        order, fills, found = sync_order_fills(stored, exchange, repos, now)
        repaired += found
        if resume_waiting_task(order, fills, repos, services.workflow):
            resumed += 1
        elif order.token_state == "WAITING" and order.task_token:
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
            "resume": "FAIL",
            "reason": f"{name}: {_error_message(error)}",
            "configuration_error": name,
        }
    repos, exchange = services.repos, services.exchange
    now = services.clock.now_ms()
    summary = reconcile_open_orders(services)
    cycle = repos.cycles.get(cycle_id)
    if cycle is None:
        return {**summary, "resume": "CONSULT_BUY", "reason": "no cycle item: start afresh"}
    if cycle.repairs >= MAX_REPAIRS_PER_CYCLE:
        return {**summary, "resume": "FAIL", "reason": f"{cycle.repairs} repairs already"}
    rules = exchange.symbol_rules(cycle.symbol)
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
    cycle = with_totals(cycle, fills, rules.base_asset, rules.quote_asset)
    resume = _where(cycle, rules.floor_qty(cycle.held_qty) > 0)
    repos.cycles.save(cycle.evolve(repairs=cycle.repairs + 1, updated_ms=now))
    return {**summary, "resume": resume, "reason": f"after {_error_name(error)}"}


def _where(cycle: Cycle, holding: bool) -> str:
    if cycle.sold_qty > 0 and not holding:
        return "RECORD"
    if holding:
        return "CONSULT_SELL"
    return "CONSULT_BUY"


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
            state = _place_recorded(services, order, request, now)
            services.repos.orders.put(order_from_state(order, state, now))
            return 1
    return 0
