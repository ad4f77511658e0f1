"""The replay report: figures a trader reads, and invariants a maintainer trusts.

Every figure comes from what the system recorded (DynamoDB) and is checked against
what the exchange did: balances must equal the initial balances plus the recorded
fills and fees to the last unit, every exchange fill must be recorded exactly once,
no client order id may appear twice, no sell may rest below its cycle's profit floor
(except a stop-loss exit, which must carry its evidence: the last price at or under
``entry * (1 - stop_loss)``), and no cycle may spend more than the configured quote per
cycle.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from flipbot.domain.model import Fill, OrderStatus, Origin, Side
from flipbot.domain.order_ids import is_system_client_order_id
from flipbot.domain.stop_loss import stop_loss_evidence
from flipbot.ports import Repositories
from flipbot_dev.metrics import by_decider_lines, fill_figures

ZERO = Decimal(0)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def expected_balances(
    initial: dict[str, Decimal], fills: list[Fill], base: str, quote: str
) -> dict[str, Decimal]:
    """Initial balances moved by every recorded fill and its commission."""
    out = dict(initial)
    for f in fills:
        sign = 1 if f.side is Side.BUY else -1
        out[base] = out.get(base, ZERO) + sign * f.qty
        out[quote] = out.get(quote, ZERO) - sign * f.quote_qty
        out[f.commission_asset] = out.get(f.commission_asset, ZERO) - f.commission
    return {k: v for k, v in out.items() if k}


def ledger_mismatches(
    cycles: list[Any],
    trades: list[Any],
    exchange_trades: list[dict[str, Any]],
    exchange_orders: list[dict[str, Any]],
    base: str,
    quote: str,
) -> list[str]:
    """What is wrong with the trades table against the exchange: a closed cycle with no row
    or several, a row for a cycle not closed, a row whose P&L is not what the exchange's
    own fills of the cycle's orders give."""
    from flipbot.app.accounting import with_totals

    client_id = {int(o["orderId"]): str(o["clientOrderId"]) for o in exchange_orders}
    fills = [
        Fill(
            symbol=str(t["symbol"]),
            order_id=int(t["orderId"]),
            client_order_id=client_id.get(int(t["orderId"]), ""),
            trade_id=int(t["id"]),
            side=Side.BUY if t["isBuyer"] else Side.SELL,
            price=Decimal(str(t["price"])),
            qty=Decimal(str(t["qty"])),
            quote_qty=Decimal(str(t["quoteQty"])),
            commission=Decimal(str(t["commission"])),
            commission_asset=str(t["commissionAsset"]),
            is_maker=bool(t["isMaker"]),
            time_ms=int(t["time"]),
        )
        for t in exchange_trades
    ]
    rows = Counter(t.cycle_id for t in trades)
    closed = {c.cycle_id: c for c in cycles if c.state.value == "COMPLETED"}
    errors = [f"{cid}: {n} trade rows" for cid, n in sorted(rows.items()) if n != 1]
    errors += [f"{cid}: closed, no trade row" for cid in sorted(set(closed) - set(rows))]
    errors += [f"{cid}: a trade row, cycle not closed" for cid in sorted(set(rows) - set(closed))]
    for trade in trades:
        cycle = closed.get(trade.cycle_id)
        if cycle is None:
            continue
        own = set(cycle.buy_order_ids) | set(cycle.sell_order_ids)
        totals = with_totals(cycle, [f for f in fills if f.client_order_id in own], base, quote)
        pnl = totals.received_quote - totals.spent_quote
        if pnl != trade.realized_pnl:
            errors.append(f"{trade.cycle_id}: P&L {trade.realized_pnl}, the exchange says {pnl}")
    return errors


def abandoned_positions(
    cycles: list[Any],
    exchange_trades: list[dict[str, Any]],
    exchange_orders: list[dict[str, Any]],
    rules: Any,
) -> list[str]:
    """Closed cycles that left base behind: what their buys brought in (net of base
    commission) less what their sells took out, when a sell at the floor could still carry
    it. An open cycle still holds its base; below the lot step or the minimum notional, a
    remainder is dust."""
    coid = {int(o["orderId"]): str(o["clientOrderId"]) for o in exchange_orders}
    net: dict[str, Decimal] = {}
    for t in exchange_trades:
        order = coid.get(int(t["orderId"]), "")
        qty = Decimal(str(t["qty"]))
        if t["isBuyer"]:
            if t["commissionAsset"] == rules.base_asset:
                qty -= Decimal(str(t["commission"]))
            net[order] = net.get(order, ZERO) + qty
        else:
            net[order] = net.get(order, ZERO) - qty
    out = []
    for cycle in cycles:
        if cycle.state.value != "COMPLETED":
            continue
        left = sum((net.get(o, ZERO) for o in cycle.buy_order_ids + cycle.sell_order_ids), ZERO)
        price = cycle.floor_price or cycle.entry_price
        if left > 0 and rules.sellable_qty(left, price) > 0:
            out.append(f"{cycle.cycle_id}: closed holding {left} {rules.base_asset}")
    return out


#: statuses that say an order traded: a record holding one must be the exchange's order
FILL_CLAIMS = frozenset({"PARTIALLY_FILLED", "FILLED"})


def unconfirmed_actions(
    orders: list[Any],
    fills: list[Any],
    cycles: list[Any],
    exchange_orders: list[dict[str, Any]],
    exchange_trades: list[dict[str, Any]],
    rules: Any,
) -> list[str]:
    """Where the bot acted on a fill the exchange did not make: a fill in the books that is
    not one of the exchange's trades, an order the books hold further on (status, quantity
    filled) than the exchange has it, a cycle's sell of more base than the exchange filled
    for the cycle's buys, a sell following a manual buy the exchange has not filled."""
    from flipbot.app.fills import status_rank
    from flipbot.domain.cycle import cycle_id_for, cycle_sequence, cycle_symbol_part

    out: list[str] = []
    trades = {(int(t["orderId"]), int(t["id"])): t for t in exchange_trades}
    for f in fills:
        trade = trades.get((f.order_id, f.trade_id))
        if trade is None or Decimal(str(trade["qty"])) != f.qty:
            out.append(f"fill {f.trade_id} of {f.client_order_id}: not a trade of the exchange")
    known = {str(o["clientOrderId"]): o for o in exchange_orders}
    by_id = {int(o["orderId"]): o for o in exchange_orders}
    for order in orders:
        seen = known.get(order.client_order_id)
        if seen is None:
            if order.executed_qty > 0 or order.status in FILL_CLAIMS:
                out.append(
                    f"{order.client_order_id}: {order.status} in the books, unknown to the exchange"
                )
            continue
        # the bot's own states (UNKNOWN after a lost response, REJECTED_BY_BOT...) claim
        # nothing about the exchange; Binance's statuses must not run ahead of it
        claims = order.status in OrderStatus.__members__
        if claims and status_rank(order.status) > status_rank(str(seen["status"])):
            out.append(
                f"{order.client_order_id}: {order.status} in the books, "
                f"{seen['status']} on the exchange"
            )
        if order.executed_qty > Decimal(str(seen["executedQty"])):
            out.append(
                f"{order.client_order_id}: {order.executed_qty} filled in the books, "
                f"{seen['executedQty']} on the exchange"
            )
    left: dict[str, Decimal] = {}  # what each cycle holds after its trades, as the exchange has it
    for cycle in cycles:
        bought = sold = ZERO
        buy_ids = {int(known[c]["orderId"]) for c in cycle.buy_order_ids if c in known}
        sell_ids = {int(known[c]["orderId"]) for c in cycle.sell_order_ids if c in known}
        for t in exchange_trades:
            if int(t["orderId"]) in buy_ids:
                fee = t["commission"] if t["commissionAsset"] == rules.base_asset else 0
                bought += Decimal(str(t["qty"])) - Decimal(str(fee))
            elif int(t["orderId"]) in sell_ids:
                sold += Decimal(str(t["qty"]))
        left[cycle.cycle_id] = bought + cycle.carried_qty - sold
        for coid in cycle.sell_order_ids:
            seen = known.get(coid)
            if seen is not None and Decimal(str(seen["origQty"])) > bought + cycle.carried_qty:
                out.append(
                    f"{cycle.cycle_id}: sell {coid} of {seen['origQty']}, "
                    f"the exchange filled {bought} for its buys"
                    + (f" and {cycle.carried_qty} was carried in" if cycle.carried_qty else "")
                )
    for cycle in cycles:  # a carry is what the chain's previous cycle really left
        if not cycle.carried_qty:
            continue
        previous = cycle_id_for(
            cycle_sequence(cycle.cycle_id) - 1, cycle_symbol_part(cycle.cycle_id)
        )
        if cycle.carried_qty > left.get(previous, ZERO):
            out.append(
                f"{cycle.cycle_id}: carried {cycle.carried_qty} in, the exchange left "
                f"{left.get(previous, ZERO)} to {previous}"
            )
    for order in orders:
        match = re.search(r"[-_]m(\d+)$", order.client_order_id)
        if match is None or order.side is not Side.SELL:
            continue
        manual = by_id.get(int(match.group(1)))
        if manual is None or manual["status"] != "FILLED" or manual["side"] != "BUY":
            out.append(f"{order.client_order_id}: follows a buy the exchange has not filled")
        elif order.quantity > Decimal(str(manual["executedQty"])):
            out.append(
                f"{order.client_order_id}: sells {order.quantity}, "
                f"the manual buy filled {manual['executedQty']}"
            )
    return out


def unjustified_stop_exits(
    stop_exits: list[Any], cycles: list[Any], consultations: list[Any], settings: Any
) -> list[str]:
    """Stop-loss sells (the only sells below the floor) without their evidence.

    Each needs a configured stop-loss and its consultation: verdict ``PLACE:STOP_LOSS``
    for the same cycle, a stop price equal to ``entry * (1 - stop_loss)`` and a last price
    at or under it.
    """
    entries = {c.cycle_id: c.entry_price for c in cycles}
    audit = {c.consultation_id: c for c in consultations}
    stop_loss = settings.stop_loss
    bad = []
    for order in stop_exits:
        record = audit.get(order.consultation_id)
        if not _stop_evidence_holds(order, record, entries, stop_loss):
            bad.append(order.client_order_id)
    return bad


def _stop_evidence_holds(
    order: Any, record: Any, entries: dict[str, Decimal], stop_loss: Decimal | None
) -> bool:
    evidence = stop_loss_evidence(record, order.cycle_id)
    if stop_loss is None or evidence is None:
        return False
    _, stop = evidence
    return bool(stop == entries.get(order.cycle_id, ZERO) * (1 - stop_loss))


@dataclass(frozen=True)
class StackBooks:
    """Every table's items, read once for the whole report."""

    cycles: list[Any]
    orders: list[Any]
    fills: list[Any]
    consultations: list[Any]

    @classmethod
    def read(cls, repos: Repositories) -> StackBooks:
        return cls(
            repos.cycles.all(), repos.orders.all(), repos.fills.all(), repos.consultations.all()
        )

    def of_symbol(self, symbol: str, settings: Any) -> StackBooks:
        """What is ``symbol``'s: its cycles, orders, fills and its cycles' consultations."""
        return StackBooks(
            [c for c in self.cycles if c.symbol == symbol],
            [o for o in self.orders if o.symbol == symbol],
            [f for f in self.fills if f.symbol == symbol],
            [c for c in self.consultations if settings.symbol_of_cycle(c.cycle_id) == symbol],
        )


def build_report(
    *,
    config: Any,
    settings: Any,
    repos: Repositories,
    exchange: Any,
    initial_balances: dict[str, Decimal],
    state: Any,
    symbol: str = "",
    books: StackBooks | None = None,
) -> dict[str, Any]:
    """The report of one symbol: the stack's only one, or with ``symbol`` one of several
    (see :func:`combine_reports`). One of several is read as a sub-account: it starts with
    its own quote per cycle and the account's base asset of the pair, and its balances
    check is its base asset's (the quote asset, shared, is checked in the total)."""
    several = bool(symbol)
    symbol = symbol or config.symbol
    info = exchange.symbol_info(symbol)
    base, quote = info["baseAsset"], info["quoteAsset"]
    books = books or StackBooks.read(repos)
    if several:
        settings = settings.for_symbol(symbol)
        books = books.of_symbol(symbol, settings)
    cycles, orders, fills, consultations = (
        books.cycles,
        books.orders,
        books.fills,
        books.consultations,
    )
    trades = sorted(repos.trades.all(symbol), key=lambda t: (t.closed_ms, t.cycle_id))

    final = {
        b["asset"]: Decimal(b["free"]) + Decimal(b["locked"])
        for b in exchange.account()["balances"]
    }
    checked: set[str] | None = None  # every asset
    if several:
        start = settings.quote_per_cycle
        initial_balances = {base: initial_balances.get(base, ZERO), quote: start}
        flow = expected_balances({quote: start}, fills, base, quote)
        final = {base: final.get(base, ZERO), quote: flow.get(quote, ZERO)}
        checked = {base}
    expected = expected_balances(initial_balances, fills, base, quote)
    assets = sorted(set(final) | set(expected)) if checked is None else sorted(final)
    balances_ok = all(final.get(a, ZERO) == expected.get(a, ZERO) for a in (checked or assets))

    exchange_trades = exchange.my_trades(symbol, limit=10**9)
    exchange_keys = Counter((int(t["orderId"]), int(t["id"])) for t in exchange_trades)
    recorded_keys = Counter((f.order_id, f.trade_id) for f in fills)
    exchange_orders = exchange.all_orders(symbol, limit=10**9)
    client_ids = Counter(o["clientOrderId"] for o in exchange_orders)

    floors = {c.cycle_id: c.floor_price for c in cycles}
    system_orders = [o for o in orders if o.origin is Origin.SYSTEM]
    placed = [o for o in system_orders if o.order_id]
    sells = [o for o in placed if o.side is Side.SELL]
    stop_exits = [o for o in sells if o.exit_reason == "STOP_LOSS"]
    below_floor = [
        o.client_order_id
        for o in sells
        if max(floors.get(o.cycle_id, ZERO), o.floor_price) > o.price
        and o.exit_reason != "STOP_LOSS"
    ]
    unjustified_stops = unjustified_stop_exits(stop_exits, cycles, consultations, settings)
    # Exposure: what each cycle actually bought, and each buy order as placed.
    cycle_of = {o.client_order_id: o.cycle_id for o in system_orders}
    spent_by_cycle: dict[str, Decimal] = {}
    for f in fills:
        if f.side is Side.BUY and f.client_order_id in cycle_of:
            cycle = cycle_of[f.client_order_id]
            spent_by_cycle[cycle] = spent_by_cycle.get(cycle, ZERO) + f.quote_qty
    cap = settings.quote_per_cycle
    over_cap = sorted(
        {c for c, spent in spent_by_cycle.items() if spent > cap}
        | {o.cycle_id for o in placed if o.side is Side.BUY and o.price * o.quantity > cap}
    )
    ledger_errors = ledger_mismatches(cycles, trades, exchange_trades, exchange_orders, base, quote)
    # Every order of the bot as the exchange has it, on every symbol it knows.
    bot_orders = [
        o
        for sym in exchange.symbols
        for o in exchange.all_orders(sym, limit=10**9)
        if is_system_client_order_id(str(o["clientOrderId"]), prefix=settings.order_id_prefix)
    ]
    if several:  # a cycle's order is on its cycle's symbol; nothing on another's
        off_symbol = sorted(
            f"{o['clientOrderId']} on {o['symbol']}"
            for o in bot_orders
            if (o["symbol"] == symbol) != (_order_symbol(o, settings) == symbol)
        )
        bot_orders = [o for o in bot_orders if o["symbol"] == symbol]
    else:
        off_symbol = sorted(
            f"{o['clientOrderId']} on {o['symbol']}" for o in bot_orders if o["symbol"] != symbol
        )
    buys_over_cap = sorted(
        f"{o['clientOrderId']}: {Decimal(o['price']) * Decimal(o['origQty'])}"
        for o in bot_orders
        if o["side"] == "BUY"
        and Decimal(o["price"]) * Decimal(o["origQty"]) > settings.quote_per_cycle
    )
    abandoned = abandoned_positions(
        cycles, exchange_trades, exchange_orders, exchange.rules(symbol)
    )
    unconfirmed = unconfirmed_actions(
        orders, fills, cycles, exchange_orders, exchange_trades, exchange.rules(symbol)
    )
    invariants = {
        "no_sell_below_floor": not below_floor,
        "stop_loss_exits_justified": not unjustified_stops,
        "position_within_cap": not over_cap,
        "balances_reconcile": balances_ok,
        "no_duplicate_client_order_id": all(n == 1 for n in client_ids.values()),
        "every_fill_recorded_once": exchange_keys == recorded_keys
        and all(n == 1 for n in recorded_keys.values()),
        "ledger_matches_exchange": not ledger_errors,
        "orders_only_on_symbol": not off_symbol,
        "orders_within_cap": not buys_over_cap,
        "no_abandoned_position": not abandoned,
        "no_action_on_unconfirmed_fill": not unconfirmed,
    }

    pnl = sum((t.realized_pnl for t in trades), ZERO)
    fees = sum((t.fees_quote for t in trades), ZERO)
    open_fees = (
        sum(
            (
                f.commission * (f.price if f.commission_asset == base else 1)
                for f in fills
                if f.commission_asset in (base, quote)
            ),
            ZERO,
        )
        - fees
    )
    ai_cost = sum((c.cost_usd for c in consultations), ZERO)
    wins = sum(1 for t in trades if t.realized_pnl > 0)
    buy_waits = [t.buy_fill_seconds for t in trades]
    sell_waits = [t.sell_fill_seconds for t in trades]
    rejections = [c for c in consultations if c.verdict.startswith("REJECTED")]
    price = state.last_price
    equity = final.get(quote, ZERO) + final.get(base, ZERO) * price
    start_equity = initial_balances.get(quote, ZERO) + initial_balances.get(base, ZERO) * (
        state.price_path[0][1] if state.price_path else price
    )
    data = config.data_of(symbol)
    report: dict[str, Any] = {
        "symbol": symbol,
        "data": data.source,
        "decided_by": config.decider,
        "period": {"from": iso(data.first_ms), "to": iso(data.last_ms)},
        "market_events": len(data.events) if several else state.events,
        "cycles_completed": len(trades),
        "cycles_open": sum(1 for c in cycles if c.state.value != "COMPLETED"),
        "realized_pnl_usdc": str(pnl),
        "fees_usdc": str(fees + open_fees),
        "ai_cost_usdc": str(ai_cost),
        "net_pnl_usdc": str(pnl - ai_cost),
        "win_rate": round(wins / len(trades), 4) if trades else 0.0,
        **fill_figures(orders),
        "fills": len(fills),
        "avg_buy_fill_seconds": round(sum(buy_waits) / len(buy_waits), 1) if buy_waits else 0.0,
        "avg_sell_fill_seconds": round(sum(sell_waits) / len(sell_waits), 1) if sell_waits else 0.0,
        "consultations": len(consultations),
        "guard_rejections": len(rejections),
        "stop_loss_exits": len(stop_exits),
        "guard_rejections_by_reason": dict(
            sorted(Counter(c.verdict.split(":", 1)[1] for c in rejections).items())
        ),
        "decisions_by_source": dict(sorted(Counter(c.decided_by for c in consultations).items())),
        "max_position_usdc": str(state.max_position_quote.quantize(Decimal("0.0001"))),
        "initial_balances": {k: str(v) for k, v in sorted(initial_balances.items())},
        "final_balances": {a: str(final.get(a, ZERO)) for a in assets},
        "equity_usdc": str(equity.quantize(Decimal("0.00000001"))),
        "return_pct": float(round((equity - start_equity) / start_equity * 100, 4))
        if start_equity
        else 0.0,
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "side": str(o.side),
                "price": str(o.price),
                "quantity": str(o.quantity),
                "status": o.status,
            }
            for o in placed
            if o.status in ("NEW", "PARTIALLY_FILLED")
        ],
        "last_price": str(price),
        "invariants": invariants,
        "violations": {
            "sells_below_floor": below_floor,
            "unjustified_stop_loss_exits": unjustified_stops,
            "cycles_over_cap": over_cap,
            "ledger_mismatches": ledger_errors,
            "orders_off_symbol": off_symbol,
            "buys_over_cap": buys_over_cap,
            "abandoned_positions": abandoned,
            "unconfirmed_actions": unconfirmed,
            "balance_mismatch": {
                a: {"exchange": str(final.get(a, ZERO)), "recorded": str(expected.get(a, ZERO))}
                for a in assets
                if final.get(a, ZERO) != expected.get(a, ZERO)
            },
        },
        "_trades": [asdict(t) for t in trades],
    }
    from flipbot_dev.twin.report_extras import extra_fields

    report["initial_equity_usdc"] = str(start_equity.quantize(Decimal("0.00000001")))
    report.update(
        extra_fields(
            first_ms=data.first_ms,
            last_ms=data.last_ms,
            price_path=state.price_path,
            initial_balances=initial_balances,
            base=base,
            quote=quote,
            taker_fee=config.taker_fee,
            cycles=cycles,
            orders=orders,
            fills=fills,
            trades=trades,
            consultations=consultations,
        )
    )
    return report


def _order_symbol(order: dict[str, Any], settings: Any) -> str:
    """The symbol an order of the stack belongs to: its cycle's, by its client order id
    (a follow-up sell's: the order's own)."""
    from flipbot.domain.order_ids import parse_client_order_id

    parsed = parse_client_order_id(str(order["clientOrderId"]), prefix=settings.order_id_prefix)
    return settings.symbol_of_cycle(parsed[0]) if parsed else str(order["symbol"])


#: per-symbol figures that add up to the stack's
_SUMMED = (
    "cycles_completed",
    "cycles_open",
    "fills",
    "consultations",
    "guard_rejections",
    "stop_loss_exits",
)
_SUMMED_USDC = ("realized_pnl_usdc", "fees_usdc", "ai_cost_usdc", "net_pnl_usdc")


def combine_reports(
    per_symbol: dict[str, dict[str, Any]],
    *,
    config: Any,
    exchange: Any,
    repos: Repositories,
    books: StackBooks,
    initial_balances: dict[str, Decimal],
    state: Any,
) -> dict[str, Any]:
    """The stack's report over several symbols: the summed figures, the account's own
    balances check (the quote asset is shared), every invariant true only when it is for
    each symbol, each violation named with its symbol, and ``symbols``: each symbol's
    report (:func:`build_report` with ``symbol``)."""
    from flipbot_dev.metrics import Books as LabBooks
    from flipbot_dev.metrics import by_decider

    symbols = list(per_symbol)
    reports = list(per_symbol.values())
    trades = sorted(
        (t for r in reports for t in r["_trades"]), key=lambda t: (t["closed_ms"], t["cycle_id"])
    )
    final = {
        b["asset"]: Decimal(b["free"]) + Decimal(b["locked"])
        for b in exchange.account()["balances"]
    }
    expected = dict(initial_balances)
    for symbol in symbols:
        info = exchange.symbol_info(symbol)
        own = [f for f in books.fills if f.symbol == symbol]
        expected = expected_balances(expected, own, info["baseAsset"], info["quoteAsset"])
    assets = sorted(set(final) | set(expected))
    mismatch = {
        a: {"exchange": str(final.get(a, ZERO)), "recorded": str(expected.get(a, ZERO))}
        for a in assets
        if final.get(a, ZERO) != expected.get(a, ZERO)
    }
    invariants = {
        key: all(r["invariants"][key] for r in reports) for key in reports[0]["invariants"]
    }
    invariants["balances_reconcile"] = invariants["balances_reconcile"] and not mismatch
    violations: dict[str, Any] = {}
    for key, value in reports[0]["violations"].items():
        if isinstance(value, list):
            violations[key] = [
                f"{sym}: {v}" for sym, r in per_symbol.items() for v in r["violations"][key]
            ]
    violations["balance_mismatch"] = mismatch
    quote = reports[0]["quote_asset"]
    prices = {sym: Decimal(r["last_price"]) for sym, r in per_symbol.items()}
    firsts = {
        sym: (state.price_paths[sym][0][1] if state.price_paths.get(sym) else prices[sym])
        for sym in symbols
    }
    bases = {sym: r["base_asset"] for sym, r in per_symbol.items()}
    equity = final.get(quote, ZERO) + sum(
        (final.get(bases[s], ZERO) * prices[s] for s in symbols), ZERO
    )
    start_equity = initial_balances.get(quote, ZERO) + sum(
        (initial_balances.get(bases[s], ZERO) * firsts[s] for s in symbols), ZERO
    )
    wins = sum(1 for t in trades if Decimal(str(t["realized_pnl"])) > 0)
    buy_waits = [t["buy_fill_seconds"] for t in trades]
    sell_waits = [t["sell_fill_seconds"] for t in trades]
    datas = [config.data_of(sym) for sym in symbols]
    records = [t for sym in symbols for t in repos.trades.all(sym)]
    lab_books = LabBooks(books.cycles, books.orders, books.fills, records, books.consultations)
    total: dict[str, Any] = {
        "symbol": ",".join(symbols),
        "data": "; ".join(d.source for d in datas),
        "decided_by": config.decider,
        "period": {
            "from": iso(min(d.first_ms for d in datas)),
            "to": iso(max(d.last_ms for d in datas)),
        },
        "market_events": state.events,
        **{key: sum(r[key] for r in reports) for key in _SUMMED},
        **{key: str(sum((Decimal(r[key]) for r in reports), ZERO)) for key in _SUMMED_USDC},
        "win_rate": round(wins / len(trades), 4) if trades else 0.0,
        **fill_figures(books.orders),
        "avg_buy_fill_seconds": round(sum(buy_waits) / len(buy_waits), 1) if buy_waits else 0.0,
        "avg_sell_fill_seconds": round(sum(sell_waits) / len(sell_waits), 1) if sell_waits else 0.0,
        "guard_rejections_by_reason": dict(
            sorted(
                sum((Counter(r["guard_rejections_by_reason"]) for r in reports), Counter()).items()
            )
        ),
        "decisions_by_source": dict(
            sorted(sum((Counter(r["decisions_by_source"]) for r in reports), Counter()).items())
        ),
        "by_decider": by_decider(lab_books, ai_cost="consultations"),
        "max_position_usdc": str(state.max_position_quote.quantize(Decimal("0.0001"))),
        "initial_balances": {k: str(v) for k, v in sorted(initial_balances.items())},
        "final_balances": {a: str(final.get(a, ZERO)) for a in assets},
        "initial_equity_usdc": str(start_equity.quantize(Decimal("0.00000001"))),
        "equity_usdc": str(equity.quantize(Decimal("0.00000001"))),
        "return_pct": float(round((equity - start_equity) / start_equity * 100, 4))
        if start_equity
        else 0.0,
        "open_orders": [o for r in reports for o in r["open_orders"]],
        "last_prices": {sym: str(p) for sym, p in prices.items()},
        "quote_asset": quote,
        "invariants": invariants,
        "violations": violations,
        "symbols": {
            sym: {k: v for k, v in r.items() if k != "_trades"} for sym, r in per_symbol.items()
        },
        "_trades": trades,
    }
    return total


TRADE_COLUMNS = [
    "cycle_id",
    "opened",
    "closed",
    "quantity",
    "entry_price",
    "exit_price",
    "spent_quote",
    "received_quote",
    "fees_quote",
    "ai_cost_usd",
    "realized_pnl",
    "buy_fill_seconds",
    "sell_fill_seconds",
]


def write_outputs(
    report: dict[str, Any], *, repos_snapshot: list[dict[str, Any]], out_dir: Path, state: Any
) -> None:
    """Write ``report.json``, ``trades.csv`` (both deterministic) and the PNG plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    with (out_dir / "trades.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        for t in repos_snapshot:
            writer.writerow(
                [t["cycle_id"], iso(t["opened_ms"]), iso(t["closed_ms"])]
                + [str(t[c]) for c in TRADE_COLUMNS[3:]]
            )
    from flipbot_dev.twin.plots import write_plots

    if "symbols" not in report:
        write_plots(report, repos_snapshot, report.get("fill_log", []), state.price_path, out_dir)
        return
    for symbol, own in report["symbols"].items():  # each symbol's plots in its own folder
        trades = [t for t in repos_snapshot if t["symbol"] == symbol]
        paths = state.price_paths.get(symbol, [])
        write_plots(own, trades, own.get("fill_log", []), paths, out_dir / symbol)


def format_lab_lines(report: dict[str, Any]) -> list[str]:
    """The strategy lab's lines of :func:`format_report` (absent fields: no lines)."""
    if "ai_accuracy" not in report:
        return []
    ai, lat = report["ai_accuracy"], report["latency_seconds"]
    stages = ", ".join(f"{stage} {lat[stage]['avg']:.0f}s" for stage in lat if lat[stage]["count"])
    lines = [
        f"  capital            {report['initial_equity_usdc']} -> {report['equity_usdc']} USDC",
        f"  profit per trade   {Decimal(report['net_pnl_per_trade_usdc']):+.4f} USDC "
        "(after fees and AI cost)",
        f"  avg order fill     {report['avg_fill_seconds']:.0f}s (every filled order)",
        f"  AI accuracy        proposals filled {ai['price_fill_rate'] * 100:.1f}% "
        f"(buy {ai['buy_price_fill_rate'] * 100:.1f}%, "
        f"sell {ai['sell_price_fill_rate'] * 100:.1f}%), "
        f"profitable cycles {ai['profitable_cycles'] * 100:.1f}%",
        f"  latency (avg)      {stages or 'no completed stage'}",
        f"  max drawdown       {report['max_drawdown_pct']:.2f}%  "
        f"(time in position {report['time_in_position_pct']:.1f}%)",
        f"  buy and hold       {report['buy_and_hold_return_pct']:+.4f}%  "
        f"(max drawdown {report['buy_and_hold_max_drawdown_pct']:.2f}%)",
    ]
    if report.get("session_stop"):
        stop = report["session_stop"]
        lines.append(f"  session stopped    {stop['time']}: {stop['reason']}")
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The report as a person reads it."""
    inv = report["invariants"]
    lines = [
        f"{report['symbol']}  {report['period']['from']} -> {report['period']['to']}  "
        f"({report['market_events']:,} events, decided by {report['decided_by']})",
        f"  cycles completed   {report['cycles_completed']}  (open: {report['cycles_open']})",
        f"  realized P&L       {Decimal(report['realized_pnl_usdc']):+.4f} USDC",
        f"  fees               {Decimal(report['fees_usdc']):.4f} USDC",
        f"  AI cost            {Decimal(report['ai_cost_usdc']):.4f} USD",
        f"  win rate           {report['win_rate'] * 100:.1f}%",
        f"  orders placed      {report['orders_placed']}  (filled {report['orders_filled']}, "
        f"fill rate {report['fill_rate'] * 100:.1f}%)",
        f"  avg fill time      buy {report['avg_buy_fill_seconds']:.0f}s, "
        f"sell {report['avg_sell_fill_seconds']:.0f}s",
        f"  consultations      {report['consultations']}  (guard rejections "
        f"{report['guard_rejections']}, stop-loss exits {report['stop_loss_exits']})",
        *by_decider_lines(
            report.get("by_decider", []),
            title="  by decider         (who decided the cycle's buy leg)",
            indent="    ",
        ),
        f"  max position       {report['max_position_usdc']} USDC",
        f"  equity             {report['equity_usdc']} USDC  ({report['return_pct']:+.4f}%)",
        *format_lab_lines(report),
        "  invariants         "
        + ", ".join(f"{k} {'OK' if v else 'VIOLATED'}" for k, v in inv.items()),
    ]
    return "\n".join(lines)
