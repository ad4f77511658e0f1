"""Placing and canceling orders so that one intent is never on the book twice.

Every order has a deterministic client order id (cycle, leg, attempt). The order item
and its task token are written *before* the exchange is called. When the exchange
answers with an unknown outcome (timeout, 5XX) or says the id is a duplicate, the order
is looked up by its client order id instead of being sent again.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from flipbot.app.accounting import with_totals
from flipbot.app.fills import (
    order_from_state,
    resume_waiting_task,
    send_callback,
    sync_order_fills,
)
from flipbot.domain.cycle import CycleEvent, advance
from flipbot.domain.entities import BotOrderStatus, Cycle, ExitReason, OrderRecord, TokenState
from flipbot.domain.errors import (
    DuplicateOrder,
    GuardRejected,
    KillSwitchEngaged,
    OrderNotFound,
    OrderNotSettled,
    OrderRejected,
    UnknownOrderOutcome,
)
from flipbot.domain.model import OrderRequest, OrderState, OrderStatus, Side
from flipbot.domain.order_ids import client_order_id
from flipbot.domain.stop_loss import stop_loss_evidence
from flipbot.ports import ExchangePort, Services


def place_order(
    services: Services,
    *,
    cycle_id: str,
    leg: Side,
    attempt: int,
    price: Decimal,
    quantity: Decimal,
    task_token: str,
    consultation_id: str = "",
) -> dict[str, Any]:
    s, repos = services.settings, services.repos
    now = services.clock.now_ms()
    coid = client_order_id(cycle_id, leg, attempt, prefix=s.order_id_prefix)
    cycle = repos.cycles.get(cycle_id)
    existing = repos.orders.get(coid)
    on_exchange = existing is not None and existing.order_id != 0
    if not on_exchange:  # a redelivery of a placed order is answered, never refused
        _within_cycle_rules(services, cycle_id, cycle, leg, price, quantity)
    floor = cycle.floor_price if cycle is not None and leg is Side.SELL else Decimal(0)
    exit_reason = ""
    if leg is Side.SELL and price < floor:
        exit_reason = _below_floor_reason(services, coid, cycle, price, consultation_id)
    order = existing or repos.orders.create(
        OrderRecord(
            client_order_id=coid,
            symbol=s.symbol,
            side=leg,
            price=price,
            quantity=quantity,
            cycle_id=cycle_id,
            attempt=attempt,
            consultation_id=consultation_id,
            created_ms=now,
            updated_ms=now,
            floor_price=floor,
            exit_reason=exit_reason,
            task_token=task_token,
            token_state=TokenState.WAITING,
        )
    )
    if order.task_token != task_token:
        # A redelivery or retry brings a new task token: the latest one is the live one.
        order = order.evolve(task_token=task_token, token_state=TokenState.WAITING, updated_ms=now)
        repos.orders.put(order)
    _link_order(services, cycle, leg, coid, now)

    if order.order_id == 0 and order.status in (BotOrderStatus.PENDING, BotOrderStatus.UNKNOWN):
        if leg is Side.BUY and services.kill_switch.engaged(s.symbol):
            return _rejected(services, order, KillSwitchEngaged("kill switch engaged"), now)
        request = OrderRequest(s.symbol, leg, price, quantity, coid)
        try:
            state = place_recorded(services, order, request, now)
        except OrderRejected as rejected:
            return _rejected(services, order, rejected, now)
        order = order_from_state(order, state, now)
        repos.orders.put(order)
        if order.status == OrderStatus.NEW and state.executed_qty <= 0:
            # Resting untouched: its token was written before it was placed, so the
            # update of its first fill (or of its end) resumes the task.
            return {"client_order_id": coid, "order_id": order.order_id, "status": order.status}
    # The fill may already be known (a taker fill, or a retry after the fill arrived).
    fills = repos.fills.for_order(coid)
    order = repos.orders.get(coid) or order
    resume_waiting_task(order, fills, repos, services.workflow)
    return {"client_order_id": coid, "order_id": order.order_id, "status": order.status}


def _within_cycle_rules(
    services: Services,
    cycle_id: str,
    cycle: Cycle | None,
    leg: Side,
    price: Decimal,
    quantity: Decimal,
) -> None:
    """Re-derive what the stored cycle allows, whatever the request says: a buy within the
    quote per cycle, a sell of a known cycle with a floor, of no more than it holds."""
    if price <= 0 or quantity <= 0:
        raise GuardRejected("order", f"price {price} and quantity {quantity} must be positive")
    if leg is Side.BUY:
        cap = services.settings.quote_per_cycle
        if price * quantity > cap:
            raise GuardRejected(
                "cap", f"a buy of {price * quantity} (quote) is over the cap of {cap} per cycle"
            )
        return
    if cycle is None or cycle.floor_price <= 0:
        raise GuardRejected(
            "no_cycle", f"a sell for {cycle_id}, which has no bought position and no floor"
        )
    if quantity > cycle.held_qty:
        raise GuardRejected(
            "held", f"a sell of {quantity} is more than the {cycle.held_qty} {cycle_id} holds"
        )


def _below_floor_reason(
    services: Services, coid: str, cycle: Any, price: Decimal, consultation_id: str
) -> str:
    """Why a sell may rest below the cycle's profit floor, or :class:`GuardRejected`.

    Two cases only: the order is already on the exchange (a redelivery, or a resting order
    recovery resumes), or it is the stop-loss exit its consultation recorded: decided by
    the stop-loss rule for this cycle, with the last price at or under the stop price, and
    a stop-loss still configured. Anything else is refused with the floor named.
    """
    floor = cycle.floor_price
    existing = services.repos.orders.get(coid)
    if existing is not None and existing.order_id:
        return existing.exit_reason
    refused = GuardRejected("profit_floor", f"sell price {price} is below the floor {floor}")
    if services.settings.stop_loss is None or not consultation_id:
        raise refused
    if stop_loss_evidence(services.repos.consultations.get(consultation_id), cycle.cycle_id):
        return ExitReason.STOP_LOSS
    raise refused


#: How long "not found" after an unknown create-order outcome still means "not visible yet".
UNKNOWN_GRACE_MS = 30_000


def place_once(
    exchange: ExchangePort,
    request: OrderRequest,
    *,
    now_ms: int,
    unknown_since_ms: int = 0,
    grace_ms: int = UNKNOWN_GRACE_MS,
) -> OrderState:
    """Place one intent without ever sending it twice.

    After an unknown outcome (a timeout, a 5XX, or a duplicate-id answer) the order is
    looked up by its client order id. While it is not found and the grace period since
    the outcome became unknown has not passed, ``OrderNotSettled`` says "look again
    later" - even a filled order may not be visible yet, and its client order id is free
    again, so sending it now could buy twice. Only after the grace period does "not
    found" mean the exchange never received it, and the intent is sent again.
    """
    if unknown_since_ms:
        known = exchange.get_order(request.symbol, request.client_order_id)
        if known is not None:
            return known
        if now_ms - unknown_since_ms < grace_ms:
            raise OrderNotSettled(
                f"order {request.client_order_id} not visible "
                f"{(now_ms - unknown_since_ms) / 1000:.0f}s after an unknown outcome",
                unknown_since_ms,
            )
    try:
        return exchange.place_limit(request)
    except (UnknownOrderOutcome, DuplicateOrder):
        known = exchange.get_order(request.symbol, request.client_order_id)
        if known is None:
            raise OrderNotSettled(
                f"order {request.client_order_id}: outcome unknown and not visible yet",
                now_ms,
            ) from None
        return known


def place_recorded(
    services: Services, order: OrderRecord, request: OrderRequest, now: int
) -> OrderState:
    """``place_once`` with the unknown-outcome state kept on the order item."""
    try:
        return place_once(
            services.exchange, request, now_ms=now, unknown_since_ms=order.unknown_since_ms
        )
    except OrderNotSettled as unsettled:
        services.repos.orders.put(
            order.evolve(
                status=BotOrderStatus.UNKNOWN,
                unknown_since_ms=unsettled.unknown_since_ms,
                updated_ms=now,
            )
        )
        raise


def _rejected(
    services: Services, order: OrderRecord, error: OrderRejected | KillSwitchEngaged, now: int
) -> dict[str, Any]:
    repos = services.repos
    order = order.evolve(
        status=BotOrderStatus.REJECTED_BY_BOT
        if isinstance(error, KillSwitchEngaged)
        else "REJECTED",
        reject_reason=f"{type(error).__name__}: {error}",
        updated_ms=now,
    )
    repos.orders.put(order)
    send_callback(
        repos,
        services.workflow,
        order,
        TokenState.FAILED,
        error=type(error).__name__,
        cause=str(error)[:250],
    )
    return {
        "client_order_id": order.client_order_id,
        "order_id": 0,
        "status": order.status,
        "reason": order.reject_reason,
    }


def _link_order(services: Services, cycle: Cycle | None, leg: Side, coid: str, now: int) -> None:
    """Add the order to its cycle (as read when the placement began: a cycle that moved
    since fails the save, and the placement is retried)."""
    repos = services.repos
    if cycle is None:
        return
    if leg is Side.BUY and coid not in cycle.buy_order_ids:
        cycle = cycle.evolve(
            buy_order_ids=(*cycle.buy_order_ids, coid),
            state=advance(cycle.state, CycleEvent.BUY_PLACED),
            updated_ms=now,
        )
    elif leg is Side.SELL and coid not in cycle.sell_order_ids:
        cycle = cycle.evolve(
            sell_order_ids=(*cycle.sell_order_ids, coid),
            state=advance(cycle.state, CycleEvent.SELL_PLACED),
            updated_ms=now,
        )
    else:
        return
    repos.cycles.save(cycle)


def cancel_order(services: Services, *, cycle_id: str, leg: Side, attempt: int) -> dict[str, Any]:
    """Cancel the leg's order (after a timeout) and report what it filled before that."""
    repos, exchange = services.repos, services.exchange
    now = services.clock.now_ms()
    coid = client_order_id(cycle_id, leg, attempt, prefix=services.settings.order_id_prefix)
    order = repos.orders.get(coid)
    if order is None:
        return {"client_order_id": coid, "status": BotOrderStatus.UNKNOWN, "executed": False}
    order = order.evolve(cancel_requested=True, updated_ms=now)
    repos.orders.put(order)
    # Already final (filled or canceled) or never placed: the lookup below tells.
    with contextlib.suppress(OrderNotFound):
        exchange.cancel_order(order.symbol, coid)
    order, fills, _ = sync_order_fills(order, exchange, repos, now)
    executed = any(f.qty > 0 for f in fills)
    cycle = repos.cycles.get(cycle_id)
    if cycle is not None:
        rules = exchange.symbol_rules(order.symbol)
        all_fills = [
            f for c in cycle.buy_order_ids + cycle.sell_order_ids for f in repos.fills.for_order(c)
        ]
        event = (
            (CycleEvent.BUY_CANCELED_PARTIAL if executed else CycleEvent.BUY_CANCELED_UNFILLED)
            if leg is Side.BUY
            else CycleEvent.SELL_CANCELED
        )
        cycle = with_totals(cycle, all_fills, rules.base_asset, rules.quote_asset)
        repos.cycles.save(cycle.evolve(state=advance(cycle.state, event), updated_ms=now))
    return {"client_order_id": coid, "status": order.status, "executed": executed}
