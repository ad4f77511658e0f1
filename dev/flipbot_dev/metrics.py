"""Trading metrics computed from the recorded books (the five tables), for every report.

The replay report, ``flipbot compare`` and ``flipbot pnl`` all call :func:`book_metrics`,
so a figure means the same everywhere:

* **fill rate** — filled orders / orders the bot placed on the exchange
  (:func:`fill_figures`);
* **average fill time** — seconds from placing an order to its last fill (filled orders);
* **profit per trade** — realized P&L after fees and AI cost, per closed cycle;
* **AI prediction accuracy** — of the proposals placed as proposed (verdict ``PLACE``),
  the share whose order filled (``price_fill_rate``, also per leg), and of the closed
  cycles, the share that made money after fees and AI cost (``profitable_cycles``);
* **latency per stage** — per cycle: waiting for a buy signal (opened → first buy placed),
  buy fill (first buy placed → last buy fill), sell placement (last buy fill → first sell
  placed), sell fill (first sell placed → last sell fill), recording (last sell fill →
  closed), the whole cycle, and per order consultation → order placed;
* **by decider** — the figures above split by who decided each cycle's buy leg
  (:func:`by_decider`).

Market-path figures need prices: :func:`equity_path`, :func:`max_drawdown_pct`,
:func:`time_in_position_pct` and :func:`buy_and_hold_return_pct`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol

from flipbot.domain.cycle import CycleState
from flipbot.domain.entities import (
    ZERO,
    ConsultationRecord,
    Cycle,
    OrderRecord,
    TradeRecord,
    Verdict,
)
from flipbot.domain.model import Fill, Origin, Side

STAGES = ("buy_wait", "buy_fill", "sell_place", "sell_fill", "record", "cycle", "consult_to_order")
"""Latency stages, in the order a cycle goes through them."""


@dataclass(frozen=True)
class Books:
    """Everything the bot recorded: the rows of the cycles, orders, fills, trades and
    consultations tables."""

    cycles: Sequence[Cycle]
    orders: Sequence[OrderRecord]
    fills: Sequence[Fill]
    trades: Sequence[TradeRecord]
    consultations: Sequence[ConsultationRecord]


def _round(value: float, digits: int = 1) -> float:
    return round(value, digits) + 0.0


def _stats(values: list[float]) -> dict[str, float | int]:
    """Count, mean, median and max (seconds, one decimal)."""
    if not values:
        return {"count": 0, "avg": 0.0, "p50": 0.0, "max": 0.0}
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {
        "count": len(values),
        "avg": _round(sum(values) / len(values)),
        "p50": _round(median),
        "max": _round(ordered[-1]),
    }


def placed_orders(orders: Iterable[OrderRecord]) -> list[OrderRecord]:
    """The bot's orders that reached the exchange."""
    return [o for o in orders if o.origin is Origin.SYSTEM and o.order_id]


def fill_figures(orders: Iterable[OrderRecord]) -> dict[str, Any]:
    """Orders the bot placed on the exchange, how many filled, and the fill rate."""
    placed = placed_orders(orders)
    filled = sum(1 for o in placed if o.status == "FILLED")
    return {
        "orders_placed": len(placed),
        "orders_filled": filled,
        "fill_rate": round(filled / len(placed), 4) if placed else 0.0,
    }


def net_win_rate(trades: Sequence[TradeRecord]) -> float:
    """Share of closed cycles whose P&L after fees and AI cost is positive."""
    wins = sum(1 for t in trades if t.realized_pnl - t.ai_cost_usd > 0)
    return round(wins / len(trades), 4) if trades else 0.0


def fill_seconds(orders: Iterable[OrderRecord], fills: Iterable[Fill]) -> dict[str, float]:
    """Seconds from placing each filled order to its last fill, by client order id."""
    last: dict[str, int] = {}
    for f in fills:
        last[f.client_order_id] = max(last.get(f.client_order_id, 0), f.time_ms)
    return {
        o.client_order_id: max(0.0, (last[o.client_order_id] - o.created_ms) / 1000)
        for o in orders
        if o.status == "FILLED" and o.client_order_id in last
    }


def _legs(books: Books) -> dict[str, dict[str, list[Any]]]:
    """Per cycle: its buy/sell orders and fills."""
    legs: dict[str, dict[str, list[Any]]] = {}
    order_cycle = {o.client_order_id: o.cycle_id for o in books.orders if o.cycle_id}
    for o in books.orders:
        if o.cycle_id and o.origin is Origin.SYSTEM:
            entry = legs.setdefault(o.cycle_id, {"BUY": [], "SELL": [], "fBUY": [], "fSELL": []})
            entry[str(o.side)].append(o)
    for f in books.fills:
        cycle = order_cycle.get(f.client_order_id)
        if cycle in legs:
            legs[cycle]["f" + str(f.side)].append(f)
    return legs


def latency_seconds(books: Books) -> dict[str, dict[str, float | int]]:
    """Latency per stage (see the module docstring): count, avg, p50, max in seconds."""
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    legs = _legs(books)
    for cycle in books.cycles:
        leg = legs.get(cycle.cycle_id)
        if leg is None:
            continue
        buys = [o for o in leg["BUY"] if o.order_id]
        sells = [o for o in leg["SELL"] if o.order_id]
        buy_fills, sell_fills = leg["fBUY"], leg["fSELL"]
        if buys:
            first_buy = min(o.created_ms for o in buys)
            samples["buy_wait"].append((first_buy - cycle.created_ms) / 1000)
            if buy_fills:
                last_buy_fill = max(f.time_ms for f in buy_fills)
                samples["buy_fill"].append((last_buy_fill - first_buy) / 1000)
                if sells:
                    first_sell = min(o.created_ms for o in sells)
                    samples["sell_place"].append((first_sell - last_buy_fill) / 1000)
                    if sell_fills and cycle.closed_ms:
                        last_sell_fill = max(f.time_ms for f in sell_fills)
                        samples["sell_fill"].append((last_sell_fill - first_sell) / 1000)
                        samples["record"].append((cycle.closed_ms - last_sell_fill) / 1000)
        if cycle.closed_ms:
            samples["cycle"].append((cycle.closed_ms - cycle.created_ms) / 1000)
    consulted = {c.consultation_id: c.time_ms for c in books.consultations}
    for o in placed_orders(books.orders):
        if o.consultation_id in consulted:
            samples["consult_to_order"].append((o.created_ms - consulted[o.consultation_id]) / 1000)
    return {stage: _stats([max(0.0, v) for v in values]) for stage, values in samples.items()}


def ai_accuracy(books: Books) -> dict[str, Any]:
    """How often the decision maker's proposals filled, and its cycles made money."""
    orders_by_consultation: dict[str, list[OrderRecord]] = {}
    for o in placed_orders(books.orders):
        if o.consultation_id:
            orders_by_consultation.setdefault(o.consultation_id, []).append(o)
    out: dict[str, Any] = {}
    total_placed = total_filled = 0
    for leg in (Side.BUY, Side.SELL):
        placed = filled = 0
        for c in books.consultations:
            if c.leg is not leg or c.verdict != Verdict.PLACE:
                continue
            found = orders_by_consultation.get(c.consultation_id, [])
            if not found:
                continue
            placed += 1
            filled += any(o.status == "FILLED" for o in found)
        total_placed += placed
        total_filled += filled
        out[f"{str(leg).lower()}_proposals"] = placed
        out[f"{str(leg).lower()}_price_fill_rate"] = round(filled / placed, 4) if placed else 0.0
    out["proposals"] = total_placed
    out["price_fill_rate"] = round(total_filled / total_placed, 4) if total_placed else 0.0
    closed = list(books.trades)
    good = sum(1 for t in closed if t.realized_pnl - t.ai_cost_usd > 0)
    out["profitable_cycles"] = round(good / len(closed), 4) if closed else 0.0
    return out


def book_metrics(books: Books) -> dict[str, Any]:
    """Every figure of the module docstring that needs only the tables."""
    waits = fill_seconds(placed_orders(books.orders), books.fills)
    trades = list(books.trades)
    net = sum((t.realized_pnl - t.ai_cost_usd for t in trades), ZERO)
    return {
        "cycles_completed": len(trades),
        "realized_pnl": sum((t.realized_pnl for t in trades), ZERO),
        "fees": sum((t.fees_quote for t in trades), ZERO),
        "ai_cost": sum((t.ai_cost_usd for t in trades), ZERO),
        "net_pnl": net,
        "net_pnl_per_trade": (net / len(trades)).quantize(Decimal("0.00000001"))
        if trades
        else ZERO,
        "win_rate": net_win_rate(trades),
        **fill_figures(books.orders),
        "avg_fill_seconds": _round(sum(waits.values()) / len(waits)) if waits else 0.0,
        "ai_accuracy": ai_accuracy(books),
        "latency_seconds": latency_seconds(books),
    }


# --------------------------------------------------------------------------- by decider

NO_DECIDER = "unrecorded"
"""The owner of a cycle no consultation speaks for: one rebuilt from the exchange, or the
sells that follow manual buys (their cycle id is ``manual``)."""


def cycle_owners(books: Books) -> dict[str, str]:
    """Who decided each cycle's buy leg (``decided_by``), by cycle id: the cycle's owner.

    A cycle belongs to one decider, however its sell was decided: the decider of the
    consultation behind the buy that bought (the last buy order with a fill; before any
    fill, the last one placed). A cycle with no buy order belongs to the decider of its
    last buy consultation. Without either on record, the owner is :data:`NO_DECIDER`.
    Every cycle id of the books has an owner, the ones only orders or consultations name
    included.
    """
    decided_by = {c.consultation_id: c.decided_by for c in books.consultations}
    buys: dict[str, list[OrderRecord]] = {}
    for o in books.orders:
        if o.origin is Origin.SYSTEM and o.side is Side.BUY:
            buys.setdefault(o.cycle_id, []).append(o)
    asked: dict[str, list[ConsultationRecord]] = {}
    for c in books.consultations:
        if c.leg is Side.BUY:
            asked.setdefault(c.cycle_id, []).append(c)
    cycle_ids = (
        {c.cycle_id for c in books.cycles}
        | {t.cycle_id for t in books.trades}
        | {o.cycle_id for o in books.orders}
        | {c.cycle_id for c in books.consultations}
    )
    owners: dict[str, str] = {}
    for cycle_id in cycle_ids:
        orders = sorted(
            buys.get(cycle_id, []), key=lambda o: (o.created_ms, o.attempt, o.client_order_id)
        )
        bought = [o for o in orders if o.executed_qty > 0] or [o for o in orders if o.order_id]
        if bought:
            owner = decided_by.get(bought[-1].consultation_id, "")
        elif asked.get(cycle_id):
            last = max(asked[cycle_id], key=lambda c: (c.time_ms, c.consultation_id))
            owner = last.decided_by
        else:
            owner = ""
        owners[cycle_id] = owner or NO_DECIDER
    return owners


def by_decider(
    books: Books, *, ai_cost: Literal["consultations", "trades"]
) -> list[dict[str, Any]]:
    """The P&L, win rate and fill rate of each decider's cycles, one row per decider
    (:func:`cycle_owners`), sorted by name; amounts as strings.

    A row holds the decider's completed and open cycles, the realized P&L of its completed
    ones (after fees), their AI cost, the net P&L (realized less AI cost), the win rate
    (:func:`net_win_rate`) and its cycles' orders and fill rate (:func:`fill_figures`).
    ``ai_cost`` says which AI cost counts, as the totals the rows add up to count it:
    ``"consultations"`` every consultation's, open cycles' too (the replay report);
    ``"trades"`` what each closed cycle recorded (:func:`book_metrics`). The rows' cycles,
    P&L, AI cost and orders add up to the totals.
    """
    owners = cycle_owners(books)
    names = sorted(set(owners.values()))
    trades: dict[str, list[TradeRecord]] = {name: [] for name in names}
    for t in books.trades:
        trades[owners[t.cycle_id]].append(t)
    orders: dict[str, list[OrderRecord]] = {name: [] for name in names}
    for o in books.orders:
        orders[owners[o.cycle_id]].append(o)
    spent: dict[str, Decimal] = dict.fromkeys(names, ZERO)
    if ai_cost == "consultations":
        for c in books.consultations:
            spent[owners[c.cycle_id]] += c.cost_usd
    else:
        for t in books.trades:
            spent[owners[t.cycle_id]] += t.ai_cost_usd
    rows = []
    for name in names:
        realized = sum((t.realized_pnl for t in trades[name]), ZERO)
        rows.append(
            {
                "decided_by": name,
                "cycles_completed": len(trades[name]),
                "cycles_open": sum(
                    1
                    for c in books.cycles
                    if owners[c.cycle_id] == name and c.state is not CycleState.COMPLETED
                ),
                "realized_pnl_usdc": str(realized),
                "ai_cost_usdc": str(spent[name]),
                "net_pnl_usdc": str(realized - spent[name]),
                "win_rate": net_win_rate(trades[name]),
                **fill_figures(orders[name]),
            }
        )
    return rows


def by_decider_lines(
    rows: Sequence[Mapping[str, Any]], *, title: str, indent: str = "  "
) -> list[str]:
    """``title``, then the rows of :func:`by_decider` as a small text table (no rows: no
    lines)."""
    if not rows:
        return []
    headers = ("decided by", "cycles", "open", "net P&L", "AI cost", "win %", "fill %")
    cells = [
        (
            str(r["decided_by"]),
            str(r["cycles_completed"]),
            str(r["cycles_open"]),
            f"{Decimal(r['net_pnl_usdc']):+.4f}",
            f"{Decimal(r['ai_cost_usdc']):.4f}",
            f"{r['win_rate'] * 100:.1f}",
            f"{r['fill_rate'] * 100:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = (v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True))
        return (indent + "  ".join((first, *rest))).rstrip()

    return [title, line(headers), *(line(row) for row in cells)]


# --------------------------------------------------------------------------- market path


class FillLike(Protocol):
    """What :func:`equity_path` reads of a fill."""

    @property
    def time_ms(self) -> int: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def quote_qty(self) -> Decimal: ...
    @property
    def commission(self) -> Decimal: ...
    @property
    def commission_asset(self) -> str: ...


def equity_path(
    initial: Mapping[str, Decimal],
    fills: Iterable[FillLike],
    prices: Sequence[tuple[int, Decimal]],
    base: str,
    quote: str,
) -> list[tuple[int, float]]:
    """Equity in quote at every price sample and every fill, in time order.

    Balances start at ``initial`` and move with each fill and its commission (in the base
    or quote asset); the base asset is valued at the latest price (a fill's own price at
    a fill). Fills at the same instant keep their given order.
    """
    qty, cash = initial.get(base, ZERO), initial.get(quote, ZERO)
    ordered = sorted(fills, key=lambda f: f.time_ms)
    points: list[tuple[int, float]] = []
    i = 0
    price = prices[0][1] if prices else ZERO
    for time_ms, sample in prices:
        while i < len(ordered) and ordered[i].time_ms <= time_ms:
            f = ordered[i]
            sign = 1 if f.side is Side.BUY else -1
            qty += sign * f.qty
            cash -= sign * f.quote_qty
            if f.commission_asset == base:
                qty -= f.commission
            elif f.commission_asset == quote:
                cash -= f.commission
            price = f.price
            points.append((f.time_ms, float(cash + qty * price)))
            i += 1
        price = sample
        points.append((time_ms, float(cash + qty * price)))
    for f in ordered[i:]:
        sign = 1 if f.side is Side.BUY else -1
        qty += sign * f.qty
        cash -= sign * f.quote_qty
        if f.commission_asset == base:
            qty -= f.commission
        elif f.commission_asset == quote:
            cash -= f.commission
        points.append((f.time_ms, float(cash + qty * f.price)))
    return points


def max_drawdown_pct(values: Iterable[float]) -> float:
    """Largest fall from a running peak, in percent of that peak."""
    peak, worst = 0.0, 0.0
    for value in values:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return round(worst * 100, 4) + 0.0


def position_intervals(books: Books, end_ms: int) -> list[tuple[int, int]]:
    """Per cycle, from its first buy fill to its last sell fill (``end_ms`` while held)."""
    legs = _legs(books)
    spans = []
    for cycle in books.cycles:
        leg = legs.get(cycle.cycle_id)
        if not leg or not leg["fBUY"]:
            continue
        start = min(f.time_ms for f in leg["fBUY"])
        stop = max(f.time_ms for f in leg["fSELL"]) if cycle.closed_ms and leg["fSELL"] else end_ms
        spans.append((start, max(start, stop)))
    return sorted(spans)


def time_in_position_pct(spans: Iterable[tuple[int, int]], start_ms: int, end_ms: int) -> float:
    """Share of ``[start_ms, end_ms]`` covered by ``spans`` (overlaps counted once), in %."""
    if end_ms <= start_ms:
        return 0.0
    covered, reach = 0, start_ms
    for span_start, span_end in sorted(spans):
        a, b = max(span_start, reach), min(span_end, end_ms)
        if b > a:
            covered += b - a
            reach = b
    return round(100 * covered / (end_ms - start_ms), 2) + 0.0


def buy_and_hold_return_pct(first: Decimal, last: Decimal, fee: Decimal) -> float:
    """Return of buying at ``first`` and selling at ``last``, paying ``fee`` both ways, in %."""
    if first <= 0:
        return 0.0
    return float(round((last / first * (1 - fee) ** 2 - 1) * 100, 4)) + 0.0
