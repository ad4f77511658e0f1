"""Order updates and fills: recorded exactly once, and the waiting cycle resumed.

``apply_order_update`` is what the OnOrderUpdate function runs for every
``OrderUpdated`` event. It needs DynamoDB and Step Functions only (no exchange
client), which keeps that function's cold start small. Gaps (a lost or reordered
event) are closed where totals matter: ``sync_order_fills`` pulls the order's trades
from the exchange and records the missing ones before a trade is recorded (and when an
order is canceled or reconciled); ``fills_seen`` reads the same without writing, for
the consultation that sizes a sell (its role reads the books, it does not keep them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from flipbot.app.contracts import FillSummary
from flipbot.domain.entities import ZERO, BotOrderStatus, OrderRecord, TokenState
from flipbot.domain.errors import OrderCanceled, TaskNotWaiting
from flipbot.domain.model import FINAL_STATUSES, Fill, OrderState, OrderStatus, Origin, Side
from flipbot.domain.order_ids import (
    DEFAULT_PREFIX,
    is_system_client_order_id,
    other_stack_prefix,
)
from flipbot.events import OrderUpdated
from flipbot.ports import ExchangePort, Repositories, WorkflowPort

_RANK = {
    BotOrderStatus.PENDING: 0,
    "PENDING_NEW": 1,
    "NEW": 2,
    "PARTIALLY_FILLED": 3,
    "PENDING_CANCEL": 4,
}


def exchange_trades(exchange: ExchangePort, state: OrderState, coid: str) -> list[Fill]:
    """The order's trades as the exchange has them, under its client order id (none before
    it traded: no request is made then)."""
    if state.executed_qty <= 0:
        return []
    return [
        replace(trade, client_order_id=coid)
        for trade in exchange.my_trades(state.symbol, order_id=state.order_id)
    ]


def status_rank(status: str) -> int:
    """Orders only move forward: final statuses outrank every live one."""
    return _RANK.get(status, 9)


def fill_from_update(update: OrderUpdated, client_order_id: str) -> Fill | None:
    if update.trade_id < 0 or update.last_qty <= 0:
        return None
    return Fill(
        symbol=update.symbol,
        order_id=update.order_id,
        client_order_id=client_order_id,
        trade_id=update.trade_id,
        side=Side(update.side),
        price=update.last_price,
        qty=update.last_qty,
        quote_qty=update.last_quote_qty,
        commission=update.commission,
        commission_asset=update.commission_asset or "",
        is_maker=update.is_maker,
        time_ms=update.transaction_time_ms,
    )


def fill_summary(order: OrderRecord, fills: list[Fill]) -> dict[str, Any]:
    """The output a waiting Step Functions task resumes with."""
    qty = sum((f.qty for f in fills), ZERO)
    quote = sum((f.quote_qty for f in fills), ZERO)
    commissions: dict[str, Decimal] = {}
    for f in fills:
        commissions[f.commission_asset] = commissions.get(f.commission_asset, ZERO) + f.commission
    return FillSummary(
        client_order_id=order.client_order_id,
        status=order.status,
        executed_qty=str(qty),
        cumulative_quote_qty=str(quote),
        avg_price=str((quote / qty).quantize(Decimal("1e-8"))) if qty else "0",
        commissions={k: str(v) for k, v in sorted(commissions.items())},
        fills=len(fills),
    ).dump()


def apply_order_update(
    update: OrderUpdated,
    repos: Repositories,
    workflow: WorkflowPort,
    now_ms: int,
    follow_manual: Callable[[OrderRecord, list[Fill]], dict[str, Any]] | None = None,
    *,
    confirm_with: Callable[[], ExchangePort] | None = None,
    order_id_prefix: str = DEFAULT_PREFIX,
) -> dict[str, Any]:
    """Record the update's fill (once), move the order forward, resume a finished cycle leg.

    Safe when updates of one order run at the same time: the fill is written before the
    order, the order is moved forward over exactly what was read (re-read when another
    update wrote first), and whether the leg is done is decided from what that write was
    made of, so the update that writes last sees every fill and status before it.

    With ``confirm_with`` (the exchange, built on first use) an update that reports a fill
    or ends the order is a hint, not the truth: the order and its trades are read from the
    exchange and those are recorded. An update the exchange contradicts (an order or a
    trade it does not know, a status it has not reached) changes nothing: anyone able to
    put events on the bus could have written it. The outcome says ``unconfirmed`` and why.

    An order of another stack trading on the same account (a client order id with another
    prefix than ``order_id_prefix``, the stack's) is none of this stack's business: it is
    neither recorded nor followed as a manual order, and the outcome says ``ignored`` and
    why. One that is in this stack's books all the same (placed before its prefix changed)
    is its own.
    """
    coid = update.client_order_id
    if update.execution_type == "CANCELED" and update.orig_client_order_id:
        coid = update.orig_client_order_id
    other = other_stack_prefix(coid, prefix=order_id_prefix)
    if other and repos.orders.get(coid) is None:
        return {
            "client_order_id": coid,
            "action": "ignored",
            "reason": (
                f"order {coid} is another stack's (prefix {other!r}, this stack's "
                f"{order_id_prefix!r}): not recorded, not followed"
            ),
        }
    fill = fill_from_update(update, coid)
    truth: OrderState | None = None
    ends = status_rank(update.status) > status_rank(OrderStatus.PENDING_CANCEL)
    if confirm_with is not None and (fill is not None or ends):
        confirmed = _exchange_truth(update, coid, fill, confirm_with())
        if isinstance(confirmed, str):
            return {"client_order_id": coid, "action": "unconfirmed", "reason": confirmed}
        truth, trades = confirmed
        new_fill = sum(int(repos.fills.add(t)) for t in trades) > 0
    else:
        new_fill = repos.fills.add(fill) if fill is not None else False

    # The fills the written order was made from: the last write read every fill written
    # before it (each update writes its fill before the order), so the update that wrote
    # last decides from all of them without reading the order or its fills again.
    read: list[Fill] = []

    def forward(stored: OrderRecord | None) -> OrderRecord:
        if stored is not None and stored.symbol != update.symbol:
            raise _CrossedSymbol(stored.symbol)
        order = stored or OrderRecord(
            client_order_id=coid,
            symbol=update.symbol,
            side=Side(update.side),
            price=update.price,
            quantity=update.orig_qty,
            origin=(
                Origin.SYSTEM
                if is_system_client_order_id(coid, prefix=order_id_prefix)
                else Origin.MANUAL
            ),
            status=update.status,
            order_id=update.order_id,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        fills = repos.fills.for_order(coid)
        read[:] = fills
        status = order.status
        reported = str(truth.status) if truth is not None else update.status
        if status_rank(reported) > status_rank(status):
            status = reported
        claimed = truth.executed_qty if truth is not None else update.executed_qty
        return order.evolve(
            status=status,
            order_id=order.order_id or update.order_id,
            executed_qty=max(sum((f.qty for f in fills), ZERO), order.executed_qty, claimed),
            cumulative_quote_qty=sum((f.quote_qty for f in fills), ZERO),
            updated_ms=now_ms,
            expiry_reason=(truth.expiry_reason if truth is not None else "")
            or _expiry_reason(update)
            or order.expiry_reason,
        )

    try:
        written = repos.orders.update(coid, forward)
    except _CrossedSymbol as crossed:
        return {
            "client_order_id": coid,
            "action": "ignored",
            "reason": f"order {coid} is a {crossed} order, the update says {update.symbol}",
        }
    order, fills = written, read
    status = order.status
    resumed = resume_waiting_task(order, fills, repos, workflow)
    result: dict[str, Any] = {
        "client_order_id": coid,
        "new_fill": new_fill,
        "status": status,
        "resumed": resumed,
    }
    if follow_manual is not None and order.origin is Origin.MANUAL and status == "FILLED":
        result["follow_up"] = follow_manual(order, fills)
    return result


class _CrossedSymbol(Exception):
    """An update names another symbol than the stored order's (the symbol is its text)."""


def _exchange_truth(
    update: OrderUpdated, coid: str, fill: Fill | None, exchange: ExchangePort
) -> tuple[OrderState, list[Fill]] | str:
    """The order and its trades as the exchange has them, or why the update is not true."""
    state = exchange.get_order(update.symbol, coid)
    if state is None or state.order_id != update.order_id:
        return f"the exchange does not know order {coid} (id {update.order_id}) on {update.symbol}"
    if status_rank(str(state.status)) < status_rank(update.status):
        return f"the exchange says order {coid} is {state.status}, the event {update.status}"
    trades = exchange_trades(exchange, state, coid)
    if fill is not None and not any(
        t.trade_id == fill.trade_id and t.qty == fill.qty for t in trades
    ):
        return f"the exchange has no trade {fill.trade_id} of {fill.qty} for order {coid}"
    return state, trades


def resume_waiting_task(
    order: OrderRecord, fills: list[Fill], repos: Repositories, workflow: WorkflowPort
) -> str:
    """Send the order's task token its outcome, once. Returns what was sent ('' if nothing)."""
    if (
        order.origin is not Origin.SYSTEM
        or not order.task_token
        or order.token_state != TokenState.WAITING
    ):
        return ""
    status = order.status
    recorded = sum((f.qty for f in fills), ZERO)
    if recorded < order.executed_qty:
        # A fill reported by the exchange is not recorded yet (reordered or lost event):
        # resume once it is, from its own event or from reconcile.
        return ""
    filled = status == OrderStatus.FILLED
    ended_with_fills = status in _ENDED and recorded > 0
    if ended_with_fills and order.side is Side.SELL and not order.cancel_requested:
        # The exchange (self-trade prevention, expiry) or a hand in the app ended the sell
        # part filled: what it sold is booked, the rest is still the cycle's to sell.
        cause = (
            f"order {order.client_order_id} ended {_ended(order)} on the exchange with "
            f"{recorded} of {order.quantity} sold; the rest is sold again"
        )
        send_callback(
            repos, workflow, order, TokenState.FAILED, error=OrderCanceled.__name__, cause=cause
        )
        return "failure"
    if filled or (ended_with_fills and not order.cancel_requested):
        send_callback(repos, workflow, order, TokenState.SUCCEEDED, fill_summary(order, fills))
        return "success"
    if status in _ENDED and not order.cancel_requested:
        cause = (
            f"order {order.client_order_id} ended {_ended(order)} on the exchange without a fill"
        )
        send_callback(
            repos, workflow, order, TokenState.FAILED, error=OrderCanceled.__name__, cause=cause
        )
        return "failure"
    return ""


def send_callback(
    repos: Repositories,
    workflow: WorkflowPort,
    order: OrderRecord,
    outcome: str,
    output: dict[str, Any] | None = None,
    *,
    error: str = "",
    cause: str = "",
) -> None:
    """Resume the order's waiting task, then mark its token used.

    Sending first means a crash in between only leads to a second send, which Step
    Functions refuses harmlessly (``TaskNotWaiting``); marking first could strand the
    execution forever.
    """
    try:
        if outcome == TokenState.SUCCEEDED:
            workflow.task_succeeded(order.task_token, output or {})
        else:
            workflow.task_failed(order.task_token, error, cause)
    except TaskNotWaiting:
        pass  # already resumed, timed out or stopped: nobody waits on this token
    repos.orders.claim_token(order.client_order_id, order.task_token, outcome)


_ENDED = {"CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}


def _expiry_reason(update: OrderUpdated) -> str:
    """Binance's ``eR`` when it names a reason (``NONE`` and absent do not)."""
    return "" if update.expiry_reason in ("", "NONE") else update.expiry_reason


def _ended(order: OrderRecord) -> str:
    """The order's end as the execution history shows it: ``EXPIRED (reason)``."""
    return f"{order.status} ({order.expiry_reason})" if order.expiry_reason else order.status


def order_from_state(order: OrderRecord, state: OrderState, now_ms: int) -> OrderRecord:
    """The record moved forward to what the exchange says of the order, its expiry reason
    included: an order read over REST (reconcile, a sync after lost events) says why it
    ended as one whose update arrived does."""
    status = order.status
    if status_rank(str(state.status)) >= status_rank(status):
        status = str(state.status)
    return order.evolve(
        status=status,
        order_id=state.order_id,
        executed_qty=max(order.executed_qty, state.executed_qty),
        cumulative_quote_qty=max(order.cumulative_quote_qty, state.cumulative_quote_qty),
        updated_ms=now_ms,
        expiry_reason=state.expiry_reason or order.expiry_reason,
    )


def sync_order_fills(
    order: OrderRecord, exchange: ExchangePort, repos: Repositories, now_ms: int
) -> tuple[OrderRecord, list[Fill], int]:
    """Pull the order's state and trades from the exchange; record what was missed.

    Returns the updated order, all its fills and how many fills were repaired. An order
    the exchange has just as the books do is not written again: reconcile looks at every
    open order of every symbol each run, and a resting order mostly has not moved.
    """
    repaired = 0
    state = exchange.get_order(order.symbol, order.client_order_id)
    if state is not None:
        moved = order_from_state(order, state, now_ms)
        for fill in exchange_trades(exchange, state, order.client_order_id):
            repaired += int(repos.fills.add(fill))
        if moved.evolve(updated_ms=order.updated_ms) != order:
            repos.orders.put(moved)
        order = moved
    return order, repos.fills.for_order(order.client_order_id), repaired


def fills_seen(order: OrderRecord, exchange: ExchangePort, repos: Repositories) -> list[Fill]:
    """The order's fills as recorded, plus any the exchange has that are not (yet): a
    read-only view, for sizing a sell; recording them is the book keepers' job. An order
    the books hold as ended, with fills recorded for all it executed, has nothing more
    on the exchange: it is not asked for (a sell consultation reads every order of its
    cycle, and a re-priced sell's cycle has many)."""
    recorded = repos.fills.for_order(order.client_order_id)
    booked = sum((f.qty for f in recorded), ZERO)
    if order.status in FINAL_STATUSES and booked >= order.executed_qty:
        return recorded
    state = exchange.get_order(order.symbol, order.client_order_id)
    if state is None:
        return recorded
    known = {f.trade_id for f in recorded}
    trades = exchange_trades(exchange, state, order.client_order_id)
    return recorded + [t for t in trades if t.trade_id not in known]
