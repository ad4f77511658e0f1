"""The hostile world for the digital twin: what people, the exchange and forgers do.

The delivery-path chaos of :mod:`flipbot_dev.twin.chaos` loses, repeats and reorders the
bot's own events. The world acts on the account and the bus from outside, as the real
one does, at seeded moments of a replay:

``exchange-ended``
    the exchange ends one of the bot's orders, part filled or not: ``EXPIRED`` (its own
    cancel, with ``eR``), ``EXPIRED_IN_MATCH`` (self-trade prevention), or a hand in the
    Binance app cancels it; buy and sell legs alike.
``manual``
    trades by hand: buys and sells on the bot's symbol and on another, a cancel of one
    of the bot's orders, a withdrawal and a deposit mid-cycle.
``forged``
    events the bot did not cause: a wrong source or detail-type, fills of orders the
    exchange does not know, a fill of the bot's own order that never happened, a report
    of another symbol reusing the bot's ids.
``stopped``
    an execution stopped by hand while it waits for a buy, for a sell, or between legs,
    and a second execution started for the same cycle; once a stop halted trading, a
    person starts it again (the reconcile function's recovery).

``poison`` (bad market and user-stream messages into the listener) and ``ai-hostile``
(a model that answers nonsense) are injected by the replay through
:mod:`flipbot_dev.twin.poison` and :mod:`flipbot_dev.twin.hostile_ai`; the world counts them.

Every action returns the kind it injected, counted in :attr:`World.injections`, and
what it did, kept in the replay's ``by_hand`` log. What the world moves in or out of
the account by hand (deposits, withdrawals, trades on another symbol) is recorded in
``ReplayState.withdrawn``, so the balance invariant tells the bot's money from the
world's.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

#: The world's scenarios, in the order ``--chaos world`` runs them.
WORLD_SCENARIOS = ("exchange-ended", "manual", "forged", "stopped", "poison", "ai-hostile")

#: A symbol the account also trades by hand (listed by the twin's exchange in world runs).
OTHER_SYMBOL = "BTCUSDC"
OTHER_PRICE = Decimal("60000")

#: How the world's own orders' client ids begin (as the Binance web app's do).
BY_HAND_ID = "web_"

#: The mean wait between two of the world's actions, and how many it takes at most.
EVERY_MS = (20 * 60_000, 70 * 60_000)
MAX_ACTIONS = 8


@dataclass
class WorldContext:
    """What the world reaches: the account, the bus, the state machine, the functions."""

    exchange: Any  # the PaperExchange
    symbol: str
    state: Any  # the replay's ReplayState
    sfn: Any
    cloud: Any
    now_ms: Callable[[], int]
    publish: Callable[[list[tuple[str, dict[str, Any]]]], None]  # onto the bus, as the listener
    invoke: Callable[[str, dict[str, Any]], Any]  # a function by logical id, directly
    by_hand: dict[str, Callable[..., str]]  # the replay's interventions (stop, withdraw...)


@dataclass
class World:
    scenario: str
    seed: int
    injections: Counter[str] = field(default_factory=Counter)
    _reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next_ms: int = 0
    _actions: int = 0
    _forged: int = 0

    def __post_init__(self) -> None:
        if self.scenario not in WORLD_SCENARIOS:
            raise ValueError(
                f"unknown world scenario {self.scenario!r}: one of {', '.join(WORLD_SCENARIOS)}"
            )
        self._rng = random.Random(f"world:{self.scenario}:{self.seed}")

    @property
    def acts(self) -> bool:
        """Whether this scenario acts on the account or the bus (poison and ai-hostile
        act through the listener and the model instead)."""
        return self.scenario in _ACTIONS

    def observe(self, reports: list[dict[str, Any]]) -> None:
        """The executionReports the exchange emitted: the forger copies the bot's."""
        for message in reports:
            report = message.get("event", message)
            self._reports[str(report.get("c", ""))] = copy.deepcopy(report)
            if report.get("C"):
                self._reports[str(report["C"])] = copy.deepcopy(report)

    def tick(self, ctx: WorldContext, start_ms: int, stop_ms: int) -> str | None:
        """Maybe act now, between ``start_ms`` and ``stop_ms``; returns what was done.

        The world keeps quiet after ``stop_ms``: the replay ends with the time the system
        needs to notice the last action (a reconcile run, a sell's wait), as it has it
        after any action in production."""
        now = ctx.now_ms()
        if not self.acts or not start_ms <= now < stop_ms or self._actions >= MAX_ACTIONS:
            return None
        if self._next_ms == 0:
            self._next_ms = now + self._rng.randint(*EVERY_MS) // 2
        if now < self._next_ms:
            return None
        actions = list(_ACTIONS[self.scenario])
        self._rng.shuffle(actions)
        for action in actions:
            done = action(self, ctx)
            if done is not None:
                kind, what = done
                self.injections[kind] += 1
                self._actions += 1
                self._next_ms = now + self._rng.randint(*EVERY_MS)
                return f"{kind}: {what}"
        self._next_ms = now + 60_000  # nothing to act on yet: look again in a minute
        return None

    # -- helpers ---------------------------------------------------------------------
    def bot_orders(self, ctx: WorldContext, side: str | None = None) -> list[dict[str, Any]]:
        """The bot's open orders: every open order on the symbol the world did not place."""
        return [
            o
            for o in ctx.exchange.open_orders(ctx.symbol)
            if not str(o["clientOrderId"]).startswith(BY_HAND_ID)
            and (side is None or o["side"] == side)
        ]

    def _coid(self, what: str) -> str:
        self._forged += 1
        return f"{BY_HAND_ID}{what}_{self.seed}_{self._forged}"


def _steps(qty: Decimal, step: Decimal) -> Decimal:
    return (qty / step).to_integral_value(ROUND_DOWN) * step if step > 0 else qty


def _by_hand(ctx: WorldContext, before: dict[str, Decimal]) -> None:
    """Book what the account gained or lost by hand since ``before`` as the world's."""
    after = _account(ctx.exchange)
    for asset in set(before) | set(after):
        delta = after.get(asset, Decimal(0)) - before.get(asset, Decimal(0))
        if delta:
            ctx.state.withdrawn[asset] = ctx.state.withdrawn.get(asset, Decimal(0)) - delta


def _account(exchange: Any) -> dict[str, Decimal]:
    return {
        b["asset"]: Decimal(b["free"]) + Decimal(b["locked"])
        for b in exchange.account()["balances"]
    }


# -- exchange-ended ------------------------------------------------------------------------
def _end(world: World, ctx: WorldContext, order: dict[str, Any]) -> str:
    how = world._rng.choice(("expired", "expired_in_match", "canceled_by_hand"))
    order_id = int(order["orderId"])
    if how == "expired":
        ctx.exchange.expire_order(ctx.symbol, order_id, "EXCHANGE_CANCELED")
    elif how == "expired_in_match":
        ctx.exchange.expire_order(ctx.symbol, order_id, in_match=True)
    else:
        ctx.exchange.cancel_order(ctx.symbol, order_id=order_id)
    return how


def _partly_filled_then_ended(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    orders = world.bot_orders(ctx)
    if not orders:
        return None
    order = world._rng.choice(orders)
    rules = ctx.exchange.rules(ctx.symbol)
    left = Decimal(order["origQty"]) - Decimal(order["executedQty"])
    part = _steps(left * Decimal(world._rng.choice(("0.3", "0.5", "0.7"))), rules.step_size)
    if part > 0 and part < left:
        # A public trade through the order's price, of part of what it still needs.
        price = Decimal(order["price"])
        through = price - rules.tick_size if order["side"] == "BUY" else price + rules.tick_size
        ctx.exchange.on_trade(
            ctx.now_ms(), through, part, order["side"] == "SELL", symbol=ctx.symbol
        )
    view = ctx.exchange.get_order(ctx.symbol, order_id=int(order["orderId"]))
    if view["status"] not in ("NEW", "PARTIALLY_FILLED"):
        return None
    how = _end(world, ctx, view)
    leg = order["side"].lower()
    return f"{how}_{leg}_partly_filled", f"{order['clientOrderId']} {view['executedQty']} filled"


def _unfilled_ended(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    orders = [o for o in world.bot_orders(ctx) if Decimal(o["executedQty"]) == 0]
    if not orders:
        return None
    order = world._rng.choice(orders)
    how = _end(world, ctx, order)
    return f"{how}_{order['side'].lower()}_unfilled", str(order["clientOrderId"])


# -- manual --------------------------------------------------------------------------------
def _manual_buy(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    book = ctx.exchange.book_ticker(ctx.symbol)
    ask = Decimal(book["askPrice"])
    rules = ctx.exchange.rules(ctx.symbol)
    qty = _steps(Decimal(world._rng.choice(("6", "7", "8"))) / ask, rules.step_size)
    if ask <= 0 or qty <= 0 or ctx.exchange.balance(rules.quote_asset)[0] < qty * ask * 2:
        return None
    coid = world._coid("buy")
    ctx.exchange.place_order(ctx.symbol, "BUY", "LIMIT", str(qty), str(ask), "GTC", coid)
    return "manual_buy", f"{coid} {qty} at {ask}"


def _manual_sell(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    """A deposit of base, sold at once at the bid: the bot's base is not touched."""
    book = ctx.exchange.book_ticker(ctx.symbol)
    bid = Decimal(book["bidPrice"])
    rules = ctx.exchange.rules(ctx.symbol)
    qty = _steps(Decimal("6") / bid, rules.step_size) if bid > 0 else Decimal(0)
    if qty <= 0:
        return None
    before = _account(ctx.exchange)
    ctx.exchange.deposit(rules.base_asset, qty)
    _by_hand(ctx, before)
    coid = world._coid("sell")
    ctx.exchange.place_order(ctx.symbol, "SELL", "LIMIT", str(qty), str(bid), "GTC", coid)
    return "manual_sell", f"deposited and sold {coid} {qty} at {bid}"


def _manual_other_symbol(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    if OTHER_SYMBOL not in ctx.exchange.symbols:
        return None
    now = ctx.now_ms()
    ctx.exchange.on_book(now, OTHER_PRICE, "5", OTHER_PRICE + 1, "5", symbol=OTHER_SYMBOL)
    before = _account(ctx.exchange)
    side = world._rng.choice(("BUY", "SELL"))
    coid = world._coid("other")
    if side == "SELL":
        ctx.exchange.deposit("BTC", "0.0002")
        price = OTHER_PRICE
    else:
        price = OTHER_PRICE + 1
    ctx.exchange.place_order(OTHER_SYMBOL, side, "LIMIT", "0.00010", str(price), "GTC", coid)
    _by_hand(ctx, before)
    return f"manual_{side.lower()}_other_symbol", f"{coid} on {OTHER_SYMBOL}"


def _manual_cancel(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    orders = world.bot_orders(ctx)
    if not orders:
        return None
    order = world._rng.choice(orders)
    ctx.exchange.cancel_order(ctx.symbol, order_id=int(order["orderId"]))
    return "manual_cancel_of_bot_order", str(order["clientOrderId"])


def _withdrawal(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    if not world.bot_orders(ctx, "SELL"):
        return None
    return "withdrawal_mid_cycle", ctx.by_hand["withdraw_base"](
        ctx.sfn, ctx.cloud, ctx.exchange, ctx.symbol, ctx.state
    )


def _deposit(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    rules = ctx.exchange.rules(ctx.symbol)
    asset = world._rng.choice((rules.base_asset, rules.quote_asset))
    amount = Decimal("0.5") if asset == rules.base_asset else Decimal("25")
    before = _account(ctx.exchange)
    ctx.exchange.deposit(asset, amount)
    _by_hand(ctx, before)
    return "deposit_mid_cycle", f"{amount} {asset}"


# -- forged --------------------------------------------------------------------------------
def _envelope(source: str, detail_type: str, detail: dict[str, Any], now_ms: int) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"forged-{now_ms}",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _a_bot_report(world: World, ctx: WorldContext) -> dict[str, Any] | None:
    open_ids = {str(o["clientOrderId"]) for o in world.bot_orders(ctx)}
    known = [r for coid, r in sorted(world._reports.items()) if coid in open_ids]
    return copy.deepcopy(world._rng.choice(known)) if known else None


def _filled(report: dict[str, Any], trade_id: int) -> dict[str, Any]:
    """The report as a FILLED trade of its whole quantity, its amounts written as Binance
    writes them (plain decimals)."""
    qty = Decimal(str(report["q"]))
    price = Decimal(str(report["p"]))
    quote = f"{qty * price:.8f}"
    return report | {
        "x": "TRADE",
        "X": "FILLED",
        "l": f"{qty:.8f}",
        "z": f"{qty:.8f}",
        "L": f"{price:.8f}",
        "Z": quote,
        "Y": quote,
        "t": trade_id,
        "n": "0.00000000",
        "N": None,
        "m": True,
    }


def _wrong_envelope(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    from flipbot.events import SOURCE
    from flipbot.streams import events_for_execution_report

    report = _a_bot_report(world, ctx)
    if report is None:
        return None
    (_, detail), *_ = events_for_execution_report(_filled(report, 900_000_000 + world._forged))
    world._forged += 1
    if world._rng.random() < 0.5:
        kind, envelope = "wrong_source", _envelope("binance.forger", "OrderUpdated", detail, 0)
    else:
        wrong = world._rng.choice(("OrderUpdate", "PriceTicked"))
        kind, envelope = "wrong_detail_type", _envelope(SOURCE, wrong, detail, 0)
    ctx.invoke("OnOrderUpdateFunction", envelope)
    return kind, f"{envelope['source']} / {envelope['detail-type']} for {detail['client_order_id']}"


def _unknown_order_fill(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    from flipbot.streams import events_for_execution_report

    report = _a_bot_report(world, ctx) or next(iter(world._reports.values()), None)
    if report is None:
        return None
    coid = world._coid("ghost")
    forged = _filled(report, 910_000_000 + world._forged) | {
        "c": coid,
        "C": "",
        "i": 8_000_000 + world._forged,
        "S": "BUY",
        "q": "20.00000000",
        "l": "20.00000000",
        "z": "20.00000000",
        "N": "TRUMP",
    }
    ctx.publish(events_for_execution_report(forged))
    return "fill_of_unknown_order", coid


def _bot_order_fill(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    from flipbot.streams import events_for_execution_report

    report = _a_bot_report(world, ctx)
    if report is None:
        return None
    world._forged += 1
    forged = _filled(report, 920_000_000 + world._forged)
    ctx.publish(events_for_execution_report(forged))
    return "fill_of_bot_order_never_made", str(report["c"] or report["C"])


def _other_symbol_report(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    from flipbot.streams import events_for_execution_report

    report = _a_bot_report(world, ctx)
    if report is None:
        return None
    world._forged += 1
    forged = _filled(report, 930_000_000 + world._forged) | {"s": OTHER_SYMBOL}
    ctx.publish(events_for_execution_report(forged))
    return "report_of_other_symbol_with_bot_id", str(report["c"])


# -- stopped -------------------------------------------------------------------------------
def _running(ctx: WorldContext) -> bool:
    listed = ctx.sfn.list_executions(
        stateMachineArn=ctx.cloud.state_machine_arn, statusFilter="RUNNING"
    )
    return bool(listed["executions"])


def _stop(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    if not _running(ctx):
        return None
    sides = {o["side"] for o in world.bot_orders(ctx)}
    where = "waiting_buy" if "BUY" in sides else "waiting_sell" if "SELL" in sides else "between"
    did = ctx.by_hand["stop_execution"](ctx.sfn, ctx.cloud, ctx.exchange, ctx.symbol, ctx.state)
    return f"stopped_{where}", did


def _duplicate(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    if not _running(ctx):
        return None
    did = ctx.by_hand["start_duplicate"](ctx.sfn, ctx.cloud, ctx.exchange, ctx.symbol, ctx.state)
    return "second_execution", did


def _restart(world: World, ctx: WorldContext) -> tuple[str, str] | None:
    """Nothing runs (a stop by hand halted trading): a person starts it again, through the
    reconcile function's recovery, which resumes from what the exchange holds."""
    if _running(ctx):
        return None
    result = ctx.invoke("ReconcileFunction", {"source": "recover"})
    return "restarted_by_hand", str(result.get("execution", result) if result else result)


Action = Callable[[World, WorldContext], "tuple[str, str] | None"]

_ACTIONS: dict[str, tuple[Action, ...]] = {
    "exchange-ended": (_partly_filled_then_ended, _unfilled_ended),
    "manual": (
        _manual_buy,
        _manual_sell,
        _manual_other_symbol,
        _manual_cancel,
        _withdrawal,
        _deposit,
    ),
    "forged": (_wrong_envelope, _unknown_order_fill, _bot_order_fill, _other_symbol_report),
    "stopped": (_stop, _duplicate, _restart),
}
