"""DynamoDB repositories on pynamodb: the only module that knows the item layout.

Money is stored as strings, never as DynamoDB numbers, so that a Decimal comes back
exactly as it went in. Idempotency comes from conditional writes: a fill is written
only if its (client order id, trade id) is new, an order only if its client order id
is new, a task token is claimed once, and a cycle only over the version it was read at.
Every write of an order moves its ``revision``; :meth:`DynamoOrders.update` writes only
over the revision it read, so concurrent updates of one order lose nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from flipbot.domain.cycle import CycleState, is_final
from flipbot.domain.entities import (
    BotOrderStatus,
    ConsultationRecord,
    Cycle,
    OrderRecord,
    TokenState,
    TradeRecord,
)
from flipbot.domain.errors import ConcurrentUpdate
from flipbot.domain.model import BookTop, Fill, MarketSnapshot, OrderStatus, Origin, Side
from flipbot.ports import Repositories
from flipbot.settings import Tables

_FINAL = {s.value for s in OrderStatus if s.is_final} | {BotOrderStatus.REJECTED_BY_BOT.value}


def _is_conditional_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


class _Meta:
    table_name = ""
    region: str | None = None
    host: str | None = None


@cache
def _models(tables: Tables, region: str | None, host: str | None) -> dict[str, type[Model]]:
    """pynamodb model classes bound to this deployment's table names."""

    def meta(name: str) -> type:
        return type("Meta", (), {"table_name": name, "region": region, "host": host})

    class OpenCyclesIndex(GlobalSecondaryIndex["CycleItem"]):  # type: ignore[no-untyped-call]
        class Meta:
            index_name = "open-cycles"
            projection = AllProjection()

        open_symbol = UnicodeAttribute(hash_key=True)
        cycle_id = UnicodeAttribute(range_key=True)

    class CycleItem(Model):
        Meta = meta(tables.cycles)  # type: ignore[assignment]
        cycle_id = UnicodeAttribute(hash_key=True)
        open_symbol = UnicodeAttribute(null=True)  # set while open: the sparse index key
        open_cycles = OpenCyclesIndex()
        symbol = UnicodeAttribute()
        state = UnicodeAttribute()
        created_ms = NumberAttribute()
        updated_ms = NumberAttribute()
        version = NumberAttribute()
        body = JSONAttribute()

    class OpenOrdersIndex(GlobalSecondaryIndex["OrderItem"]):  # type: ignore[no-untyped-call]
        class Meta:
            index_name = "open-orders"
            projection = AllProjection()

        open_symbol = UnicodeAttribute(hash_key=True)
        client_order_id = UnicodeAttribute(range_key=True)

    class OrderItem(Model):
        Meta = meta(tables.orders)  # type: ignore[assignment]
        client_order_id = UnicodeAttribute(hash_key=True)
        open_symbol = UnicodeAttribute(null=True)  # set while live: the sparse index key
        open_orders = OpenOrdersIndex()
        symbol = UnicodeAttribute()
        status = UnicodeAttribute()
        origin = UnicodeAttribute()
        cycle_id = UnicodeAttribute(null=True)
        task_token = UnicodeAttribute(null=True)
        token_state = UnicodeAttribute(null=True)
        cancel_requested = BooleanAttribute(default=False)
        updated_ms = NumberAttribute()
        revision = NumberAttribute(null=True)  # moved by every write (see update)
        body = JSONAttribute()

    class FillItem(Model):
        Meta = meta(tables.fills)  # type: ignore[assignment]
        client_order_id = UnicodeAttribute(hash_key=True)
        trade_id = NumberAttribute(range_key=True)
        body = JSONAttribute()

    class TradeItem(Model):
        Meta = meta(tables.trades)  # type: ignore[assignment]
        symbol = UnicodeAttribute(hash_key=True)
        cycle_id = UnicodeAttribute(range_key=True)
        body = JSONAttribute()

    class CycleConsultationsIndex(GlobalSecondaryIndex["ConsultationItem"]):  # type: ignore[no-untyped-call]
        class Meta:
            index_name = "cycle-consultations"
            projection = AllProjection()

        cycle_id = UnicodeAttribute(hash_key=True)
        consultation_id = UnicodeAttribute(range_key=True)

    class ConsultationItem(Model):
        Meta = meta(tables.consultations)  # type: ignore[assignment]
        consultation_id = UnicodeAttribute(hash_key=True)
        cycle_id = UnicodeAttribute()
        by_cycle = CycleConsultationsIndex()
        body = JSONAttribute()

    class MarketItem(Model):
        Meta = meta(tables.market)  # type: ignore[assignment]
        symbol = UnicodeAttribute(hash_key=True)
        time_ms = NumberAttribute()
        body = JSONAttribute()

    return {
        "cycles": CycleItem,
        "orders": OrderItem,
        "fills": FillItem,
        "trades": TradeItem,
        "consultations": ConsultationItem,
        "market": MarketItem,
    }


# -- (de)serialisation -------------------------------------------------------------
def body_of(obj: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = json.loads(json.dumps(asdict(obj), default=str))
    return dumped


_CYCLE_DECIMALS = [
    "bought_qty",
    "spent_quote",
    "held_qty",
    "sold_qty",
    "received_quote",
    "fees_quote",
    "entry_price",
    "floor_price",
    "realized_pnl",
    "ai_cost_usd",
    "carried_qty",
]


def cycle_from_body(body: dict[str, Any]) -> Cycle:
    data = dict(body)
    for key in _CYCLE_DECIMALS:
        if key in data:  # an item written before a field existed has its default
            data[key] = Decimal(data[key])
    data["state"] = CycleState(data["state"])
    data["buy_order_ids"] = tuple(data["buy_order_ids"])
    data["sell_order_ids"] = tuple(data["sell_order_ids"])
    return Cycle(**data)


def order_from_body(body: dict[str, Any]) -> OrderRecord:
    data = dict(body)
    for key in ("price", "quantity", "executed_qty", "cumulative_quote_qty"):
        data[key] = Decimal(data[key])
    data["floor_price"] = Decimal(data.get("floor_price", "0"))
    data["side"] = Side(data["side"])
    data["origin"] = Origin(data["origin"])
    return OrderRecord(**data)


def fill_from_body(body: dict[str, Any]) -> Fill:
    data = dict(body)
    for key in ("price", "qty", "quote_qty", "commission"):
        data[key] = Decimal(data[key])
    data["side"] = Side(data["side"])
    return Fill(**data)


def trade_from_body(body: dict[str, Any]) -> TradeRecord:
    data = dict(body)
    for key in [
        "quantity",
        "entry_price",
        "exit_price",
        "spent_quote",
        "received_quote",
        "fees_quote",
        "ai_cost_usd",
        "realized_pnl",
    ]:
        data[key] = Decimal(data[key])
    return TradeRecord(**data)


def consultation_from_body(body: dict[str, Any]) -> ConsultationRecord:
    data = dict(body)
    data["price"] = None if data["price"] in (None, "None") else Decimal(data["price"])
    data["cost_usd"] = Decimal(data["cost_usd"])
    data["leg"] = Side(data["leg"])
    return ConsultationRecord(**data)


def snapshot_to_json(snapshot: MarketSnapshot) -> dict[str, Any]:
    return body_of(snapshot)


#: what a stored snapshot may hold; a field this code does not know (written by a newer
#: listener during a deploy) is left out rather than failing the read
_SNAPSHOT_FIELDS = frozenset(f.name for f in fields(MarketSnapshot))


def snapshot_from_json(body: dict[str, Any]) -> MarketSnapshot:
    data = {k: v for k, v in body.items() if k in _SNAPSHOT_FIELDS}
    book = data.pop("book", None)
    for key, value in list(data.items()):
        if key in ("symbol", "ma7_trend", "extra", "time_ms", "large_trades"):
            continue
        data[key] = None if value is None else Decimal(value)
    if book:
        data["book"] = BookTop(**{k: Decimal(v) for k, v in book.items()})
    return MarketSnapshot(**data)


# -- repositories --------------------------------------------------------------------
class DynamoCycles:
    def __init__(self, model: Any) -> None:
        self._m = model

    def get(self, cycle_id: str) -> Cycle | None:
        try:
            return cycle_from_body(self._m.get(cycle_id, consistent_read=True).body)
        except DoesNotExist:
            return None

    def create(self, cycle: Cycle) -> Cycle:
        item = self._item(cycle)
        try:
            item.save(condition=self._m.cycle_id.does_not_exist())
        except PutError as exc:
            if not _is_conditional_failure(exc):
                raise
            stored = self.get(cycle.cycle_id)
            assert stored is not None
            return stored
        return cycle

    def save(self, cycle: Cycle) -> Cycle:
        new = cycle.evolve(version=cycle.version + 1)
        try:
            self._item(new).save(condition=self._m.version == cycle.version)
        except PutError as exc:
            if _is_conditional_failure(exc):
                raise ConcurrentUpdate(
                    f"cycle {cycle.cycle_id} moved past v{cycle.version}"
                ) from exc
            raise
        return new

    def all(self) -> list[Cycle]:
        return sorted((cycle_from_body(i.body) for i in self._m.scan()), key=lambda c: c.cycle_id)

    def open_cycles(self, symbol: str) -> list[Cycle]:
        """Cycles of ``symbol`` not ended yet, from the sparse ``open-cycles`` index."""
        return [cycle_from_body(i.body) for i in self._m.open_cycles.query(symbol)]

    def _item(self, cycle: Cycle) -> Any:
        return self._m(
            cycle.cycle_id,
            open_symbol=None if is_final(cycle.state) else cycle.symbol,
            symbol=cycle.symbol,
            state=str(cycle.state),
            created_ms=cycle.created_ms,
            updated_ms=cycle.updated_ms,
            version=cycle.version,
            body=body_of(cycle),
        )


class DynamoOrders:
    def __init__(self, model: Any) -> None:
        self._m = model

    def get(self, client_order_id: str) -> OrderRecord | None:
        try:
            item = self._m.get(client_order_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._record(item)

    def create(self, order: OrderRecord) -> OrderRecord:
        try:
            self._item(order).save(condition=self._m.client_order_id.does_not_exist())
        except PutError as exc:
            if not _is_conditional_failure(exc):
                raise
            stored = self.get(order.client_order_id)
            assert stored is not None
            return stored
        return order

    def put(self, order: OrderRecord) -> None:
        """Write the order's exchange view; the token fields are owned by claim_token."""
        item = self._item(order)
        try:
            current = self._m.get(order.client_order_id, consistent_read=True)
        except DoesNotExist:
            current = None
        self._keep_token(item, current)
        item.revision = (current.revision or 0) + 1 if current is not None else 1
        item.save()

    def update(
        self, client_order_id: str, change: Callable[[OrderRecord | None], OrderRecord]
    ) -> OrderRecord:
        """Write ``change(stored order)`` (``None``: no order yet) over what was read, or
        read again and apply ``change`` again when another writer came first."""
        for _ in range(_UPDATE_ATTEMPTS):
            try:
                current = self._m.get(client_order_id, consistent_read=True)
            except DoesNotExist:
                current = None
            order = change(self._record(current) if current is not None else None)
            item = self._item(order)
            self._keep_token(item, current)
            if current is None:
                item.revision = 1
                condition = self._m.client_order_id.does_not_exist()
            elif current.revision is None:
                item.revision = 1
                condition = self._m.revision.does_not_exist()
            else:
                item.revision = current.revision + 1
                condition = self._m.revision == current.revision
            try:
                item.save(condition=condition)
            except PutError as exc:
                if not _is_conditional_failure(exc):
                    raise
                continue
            return self._record(item)
        raise ConcurrentUpdate(f"order {client_order_id} kept changing under the update")

    @staticmethod
    def _keep_token(item: Any, current: Any) -> None:
        if current is not None and current.token_state and current.task_token == item.task_token:
            item.token_state = current.token_state

    def claim_token(self, client_order_id: str, token: str, outcome: str) -> bool:
        item = self._m(client_order_id)
        try:
            item.update(
                actions=[self._m.token_state.set(outcome), self._m.revision.add(1)],
                condition=(self._m.task_token == token)
                & (self._m.token_state == TokenState.WAITING.value),
            )
        except UpdateError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def open_orders(self, symbol: str) -> list[OrderRecord]:
        """Orders not final yet, from the sparse ``open-orders`` index (no table scan)."""
        items = self._m.open_orders.query(symbol)
        return sorted((self._record(i) for i in items), key=lambda o: o.client_order_id)

    def all(self) -> list[OrderRecord]:
        return sorted((self._record(i) for i in self._m.scan()), key=lambda o: o.client_order_id)

    def _record(self, item: Any) -> OrderRecord:
        order = order_from_body(item.body)
        return order.evolve(token_state=item.token_state or "", task_token=item.task_token or "")

    def _item(self, order: OrderRecord) -> Any:
        return self._m(
            order.client_order_id,
            symbol=order.symbol,
            status=order.status,
            origin=str(order.origin),
            cycle_id=order.cycle_id or None,
            task_token=order.task_token or None,
            token_state=order.token_state or None,
            cancel_requested=order.cancel_requested,
            updated_ms=order.updated_ms,
            open_symbol=None
            if order.status in _FINAL or order.status == "DRY_RUN"
            else order.symbol,
            body=body_of(order),
        )


_UPDATE_ATTEMPTS = 20


class DynamoFills:
    def __init__(self, model: Any) -> None:
        self._m = model

    def add(self, fill: Fill) -> bool:
        item = self._m(fill.client_order_id, fill.trade_id, body=body_of(fill))
        try:
            item.save(
                condition=self._m.client_order_id.does_not_exist()
                & self._m.trade_id.does_not_exist()
            )
        except PutError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def for_order(self, client_order_id: str) -> list[Fill]:
        return [
            fill_from_body(i.body) for i in self._m.query(client_order_id, consistent_read=True)
        ]

    def all(self) -> list[Fill]:
        return sorted(
            (fill_from_body(i.body) for i in self._m.scan()), key=lambda f: (f.time_ms, f.trade_id)
        )


class DynamoTrades:
    def __init__(self, model: Any) -> None:
        self._m = model

    def add(self, trade: TradeRecord) -> bool:
        """Write the cycle's one trade row; False when it is written already (a retry)."""
        try:
            self._m(trade.symbol, trade.cycle_id, body=body_of(trade)).save(
                condition=self._m.cycle_id.does_not_exist()
            )
        except PutError as exc:
            if not _is_conditional_failure(exc):
                raise
            return False
        return True

    def get(self, symbol: str, cycle_id: str) -> TradeRecord | None:
        """The trade row of one closed cycle, by its key."""
        try:
            return trade_from_body(self._m.get(symbol, cycle_id, consistent_read=True).body)
        except DoesNotExist:
            return None

    def all(self, symbol: str) -> list[TradeRecord]:
        """Every closed cycle of ``symbol``, in the order they closed."""
        trades = [trade_from_body(i.body) for i in self._m.query(symbol)]
        return sorted(trades, key=lambda t: (t.closed_ms, t.cycle_id))

    def recent(self, symbol: str, limit: int) -> list[TradeRecord]:
        """The last ``limit`` cycles of ``symbol`` by cycle id (one query, newest first
        read), in the order they closed."""
        items = self._m.query(symbol, scan_index_forward=False, limit=limit)
        trades = [trade_from_body(i.body) for i in items]
        return sorted(trades, key=lambda t: (t.closed_ms, t.cycle_id))


class DynamoConsultations:
    def __init__(self, model: Any) -> None:
        self._m = model

    def add(self, record: ConsultationRecord) -> None:
        self._m(record.consultation_id, cycle_id=record.cycle_id, body=body_of(record)).save()

    def get(self, consultation_id: str) -> ConsultationRecord | None:
        try:
            return consultation_from_body(self._m.get(consultation_id, consistent_read=True).body)
        except DoesNotExist:
            return None

    def for_cycle(self, cycle_id: str) -> list[ConsultationRecord]:
        """One cycle's consultations, from the ``cycle-consultations`` index (no scan)."""
        return sorted(
            (consultation_from_body(i.body) for i in self._m.by_cycle.query(cycle_id)),
            key=lambda c: (c.time_ms, c.consultation_id),
        )

    def any_for_leg(self, cycle_id: str, leg: Side) -> bool:
        """Whether ``cycle_id`` has a consultation of ``leg`` (their ids begin
        ``<cycle>-B`` and ``<cycle>-S``): one item read from the index at most."""
        prefix = f"{cycle_id}-{leg.value[0]}"
        found = self._m.by_cycle.query(
            cycle_id, self._m.consultation_id.startswith(prefix), limit=1
        )
        return next(iter(found), None) is not None

    def all(self) -> list[ConsultationRecord]:
        return sorted(
            (consultation_from_body(i.body) for i in self._m.scan()),
            key=lambda c: (c.time_ms, c.consultation_id),
        )


class DynamoMarket:
    def __init__(self, model: Any) -> None:
        self._m = model

    def put(self, snapshot: MarketSnapshot) -> None:
        self._m(snapshot.symbol, time_ms=snapshot.time_ms, body=snapshot_to_json(snapshot)).save()

    def get(self, symbol: str) -> MarketSnapshot | None:
        try:
            return snapshot_from_json(self._m.get(symbol).body)
        except DoesNotExist:
            return None


def repositories(
    tables: Tables, region: str | None = None, host: str | None = None
) -> Repositories:
    models = _models(tables, region, host)
    return Repositories(
        cycles=DynamoCycles(models["cycles"]),
        orders=DynamoOrders(models["orders"]),
        fills=DynamoFills(models["fills"]),
        trades=DynamoTrades(models["trades"]),
        consultations=DynamoConsultations(models["consultations"]),
        market=DynamoMarket(models["market"]),
    )
