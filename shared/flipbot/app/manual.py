"""Orders placed by hand on the exchange, and what the bot does about them.

* A fill of a MANUAL BUY makes the bot place one SYSTEM SELL for the quantity bought
  (net of a base-asset commission), at the average fill price x
  (1 + ``MANUAL_SELL_MARGIN``, 1 % by default), rounded up to the tick. The fees are not
  added to the margin; they make the floor: the sell is never priced below the average
  fill price x (1 + round-trip fees), rounded up, and a margin that does not clear it
  gets the floor instead (the result says so).
* A fill of a SYSTEM SELL, or of any MANUAL SELL, triggers nothing: no loops.
* Only a buy on one of the bot's symbols is followed, and only once the exchange confirms
  it: the order is known there, FILLED, and of the quantity its events claimed. The
  sell is sized and priced from the exchange's own trades of the order, never from the
  event, which anyone able to put events on the bus could have written.
* With ``MANUAL_DRY_RUN`` the sell is computed, recorded as ``DRY_RUN`` and logged,
  and not placed.

The sell's client order id (``<prefix>-m<orderId>``, ``<prefix>-<SYMBOL>_m<orderId>``
on a symbol other than the stack's ``SYMBOL``) derives from the manual order's
exchange id, so a redelivered fill event finds the sell it already placed. An order of
another stack on the same account is not a manual one: it is never followed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flipbot.app.fills import exchange_trades, order_from_state
from flipbot.app.orders import place_recorded
from flipbot.app.reconcile import MANUAL_CYCLE
from flipbot.domain.entities import ZERO, BotOrderStatus, OrderRecord
from flipbot.domain.errors import OrderRejected
from flipbot.domain.fees import FeeSchedule, profit_floor
from flipbot.domain.filters import ceil_to_step
from flipbot.domain.model import Fill, OrderRequest, OrderStatus, Origin, Side
from flipbot.domain.order_ids import BINANCE_CLIENT_ORDER_ID, follow_up_client_order_id
from flipbot.ports import ExchangePort, Services


def follow_manual_buy(services: Services, order: OrderRecord, fills: list[Fill]) -> dict[str, Any]:
    """Place (once) the SYSTEM SELL that follows a filled MANUAL BUY.

    ``fills`` are the fills the events recorded; the sell is sized from the exchange's
    trades of the order instead, once it confirmed the fill.
    """
    if order.origin is not Origin.MANUAL or order.side is not Side.BUY or order.status != "FILLED":
        return {"action": "none", "reason": "only a filled MANUAL BUY is followed by a sell"}
    repos, s = services.repos, services.settings
    if order.symbol != s.symbol or not s.trades(order.symbol):
        return {
            "action": "ignored",
            "reason": f"{order.symbol} is not one of the bot's symbols "
            f"({', '.join(s.symbols)}): no sell is placed",
        }
    coid = follow_up_client_order_id(
        order.order_id, prefix=s.order_id_prefix, symbol_part=s.symbol_part(order.symbol)
    )
    if not BINANCE_CLIENT_ORDER_ID.match(coid):
        return {
            "action": "ignored",
            "reason": f"the follow-up sell's client order id {coid!r} would not fit "
            "Binance's 36 characters: no sell is placed",
        }
    existing = repos.orders.get(coid)
    if existing is not None and existing.status != BotOrderStatus.UNKNOWN:
        return {"action": "none", "reason": f"{coid} exists already", "client_order_id": coid}
    if services.kill_switch.engaged(s.symbol):  # it stops every order path, this one too
        return {"action": "none", "reason": "kill switch engaged: no sell is placed"}
    exchange = services.exchange
    confirmed = _confirmed_fills(exchange, order)
    if isinstance(confirmed, str):
        return {"action": "unconfirmed", "reason": confirmed}
    fills = confirmed  # what the exchange says, not what the events said
    rules = exchange.symbol_rules(order.symbol)
    fees = exchange.fee_schedule(order.symbol)
    bought = sum((f.qty for f in fills), ZERO)
    spent = sum((f.quote_qty for f in fills), ZERO)
    base_fee = sum((f.commission for f in fills if f.commission_asset == rules.base_asset), ZERO)
    if bought <= 0:
        return {"action": "none", "reason": "no fills recorded for the manual buy"}
    quantity = rules.floor_qty(bought - base_fee)
    price, floor, below_floor = _sell_price(
        spent / bought, fees, s.manual_sell_margin, rules.tick_size
    )
    now = services.clock.now_ms()
    record = OrderRecord(
        client_order_id=coid,
        symbol=order.symbol,
        side=Side.SELL,
        price=price,
        quantity=quantity,
        origin=Origin.SYSTEM,
        cycle_id=MANUAL_CYCLE,
        created_ms=now,
        updated_ms=now,
        floor_price=floor,
    )
    if quantity <= 0 or price * quantity < (rules.min_notional or Decimal(0)):
        record = record.evolve(
            status=BotOrderStatus.REJECTED_BY_BOT, reject_reason="below min notional"
        )
        repos.orders.create(record)
        return {"action": "none", "reason": f"{quantity} x {price} is below min notional"}
    why = {"reason": below_floor} if below_floor else {}
    if s.manual_dry_run:
        repos.orders.create(record.evolve(status="DRY_RUN"))
        return {
            "action": "dry_run",
            "client_order_id": coid,
            "price": str(price),
            "quantity": str(quantity),
            **why,
        }
    record = repos.orders.create(record)
    try:
        request = OrderRequest(order.symbol, Side.SELL, price, quantity, coid)
        state = place_recorded(services, record, request, now)
    except OrderRejected as rejected:
        repos.orders.put(record.evolve(status="REJECTED", reject_reason=str(rejected)))
        return {"action": "rejected", "client_order_id": coid, "reason": str(rejected)}
    repos.orders.put(order_from_state(record, state, now))
    return {
        "action": "placed",
        "client_order_id": coid,
        "price": str(price),
        "quantity": str(quantity),
        **why,
    }


def _sell_price(
    entry: Decimal, fees: FeeSchedule, margin: Decimal, tick_size: Decimal
) -> tuple[Decimal, Decimal, str]:
    """``(price, floor, why the floor was taken or "")`` of the sell after a manual buy.

    The price is ``entry x (1 + margin)``, the floor ``entry x (1 + round-trip fees)``,
    both rounded up to the tick; the price is never below the floor.
    """
    target = ceil_to_step(entry * (1 + margin), tick_size)
    floor = profit_floor(entry, fees, ZERO, tick_size)
    if target >= floor:
        return target, floor, ""
    return (
        floor,
        floor,
        f"{entry} x (1 + {margin}) = {target} is below the floor {floor} (entry plus "
        "round-trip fees): the sell is priced at the floor",
    )


def _confirmed_fills(exchange: ExchangePort, order: OrderRecord) -> list[Fill] | str:
    """The order's fills as the exchange reports them, or why the fill is not confirmed."""
    coid = order.client_order_id
    state = exchange.get_order(order.symbol, coid)
    if state is None:
        return f"the exchange does not know order {coid}: no sell is placed"
    if state.status != OrderStatus.FILLED:
        return f"the exchange says order {coid} is {state.status}, not FILLED: no sell is placed"
    trades = exchange_trades(exchange, state, coid)
    traded = sum((t.qty for t in trades), ZERO)
    if not (traded == state.executed_qty == order.executed_qty):
        return (
            f"order {coid} filled {state.executed_qty} on the exchange ({traded} in its trades), "
            f"its events claim {order.executed_qty}: no sell is placed"
        )
    return trades
