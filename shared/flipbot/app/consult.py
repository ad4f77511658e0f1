"""Consult: ask the decision maker for a leg's price, then let the hard guards decide.

The decision maker (AI or offline strategy) proposes; code disposes. Every answer is
recorded with the guard verdict. A buy that fails a guard waits and re-consults. A sell
follows ``SELL_RULE``: ``confident`` (the default) places a sell only from an answer that
passes every guard, confidence included, and otherwise waits and asks again, as a buy
does; ``floor`` places a rejected sell at the safe price instead (the profit floor, kept
a maker above the best bid). Either way nothing is sold below the floor, and a rejection
that is about the market or the position rather than the answer (an unusable book, a lot
under the minimum) takes the safe price.

The one exception is a configured stop-loss (``STOP_LOSS``, or the strategy's own): when
the last price is at or under ``entry * (1 - stop_loss)`` the sell leg is not put to the
decision maker at all; code places the exit at the best ask and records it as a
consultation decided by ``stop-loss`` with the verdict ``PLACE:STOP_LOSS``, the last price
and the stop price. :func:`check_resting_sell` is how a resting sell learns of it: the
state machine asks every ``SELL_RECHECK_SECONDS`` whether to keep the order or replace it.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from flipbot.app.accounting import carried_into, with_totals
from flipbot.app.breakers import TRADES_READ, check_breakers, count_failure
from flipbot.app.contracts import ConsultAction, SellCheckAction
from flipbot.app.fills import fills_seen
from flipbot.domain.breakers import Trip
from flipbot.domain.cycle import CycleEvent, CycleState, advance, is_final
from flipbot.domain.decision import (
    TRADING_CONTEXT_TRADES,
    Decision,
    DecisionRequest,
    trading_context,
)
from flipbot.domain.entities import ConsultationRecord, Cycle, ExitReason, Verdict, rejected_verdict
from flipbot.domain.errors import ConfigurationError, FlipbotError, GuardRejected, PositionGone
from flipbot.domain.fees import profit_floor
from flipbot.domain.filters import SymbolRules
from flipbot.domain.guards import (
    RiskLimits,
    check_buy,
    check_sell,
    sell_target_price,
    stop_exit_price,
    stop_loss_triggered,
    stop_price,
)
from flipbot.domain.model import BookDepth, BookTop, MarketSnapshot, OrderRequest, Origin, Side
from flipbot.domain.order_ids import client_order_id
from flipbot.domain.risk import manage_buy
from flipbot.domain.stop_loss import STOP_LOSS_DECIDER, STOP_LOSS_VERDICT, stop_loss_extra
from flipbot.ports import Services

PROMPT_VERSION = "offline-v1"

#: who "decided" a buy consultation a circuit breaker paused (no one was asked)
BREAKER_DECIDER = "circuit-breaker"
#: how the stop reason of a cycle whose symbol was removed from ``SYMBOLS`` ends
SYMBOL_REMOVED = "no longer one of SYMBOLS"

#: the longest a paused buy leg waits before it looks again
PAUSE_MAX_SECONDS = 3600

#: how much sooner than its timeout a resting sell counts as due for re-pricing: the
#: order is placed a moment after the wait that times out begins
REPRICE_SLACK_MS = 30_000

#: the guards that judge the decision maker's answer (what it said, how sure, at what
#: price); the others (the book, the lot, the notional) judge the market and the position
ANSWER_GUARDS = frozenset({"action", "confidence", "price", "profit_floor", "spread", "price_band"})


def risk_limits(services: Services) -> RiskLimits:
    s = services.settings
    return RiskLimits(
        quote_per_cycle=s.quote_per_cycle,
        min_confidence=s.min_confidence,
        min_profit=s.floor_margin,
        price_band=s.price_band,
        stop_loss=s.stop_loss,
    )


def consult(
    services: Services, cycle_id: str, leg: Side, attempt: int, *, reprices: bool = True
) -> dict[str, Any]:
    """Return ``{action: PLACE|WAIT|DUST, price, quantity, ...}`` for the state machine.

    ``reprices`` says the caller re-prices a resting sell (the definition's ConsultSell
    says so); without it a sell is placed to rest until it fills, as an execution of an
    older definition expects."""
    now = services.clock.now_ms()
    s = services.settings
    cycle = services.repos.cycles.get(cycle_id)
    if cycle is None:
        cycle = services.repos.cycles.create(
            Cycle(
                cycle_id,
                s.symbol,
                CycleState.READY_TO_BUY,
                created_ms=now,
                updated_ms=now,
                carried_qty=carried_into(services.repos.cycles, cycle_id),
            )
        )
    if cycle.symbol != s.symbol:
        raise ConfigurationError(
            f"cycle {cycle_id} trades {cycle.symbol}, and its id now names {s.symbol}: "
            "SYMBOL was changed while it was open; set SYMBOL back until it ends"
        )
    consultation_id = f"{cycle_id}-{leg.value[0]}{attempt}-{now}"
    if leg is Side.BUY and not s.trades(cycle.symbol):
        return _end(services, cycle, consultation_id, now)
    if leg is Side.BUY and services.kill_switch.engaged(s.symbol):
        return _wait(s.reconsult_seconds * 5, consultation_id, "kill switch engaged: no new buys")
    if leg is Side.BUY:
        over_cap = _over_portfolio_cap(services)
        if over_cap:
            return _wait(s.reconsult_seconds * 5, consultation_id, over_cap)
    snapshot = services.repos.market.get(s.symbol)
    if snapshot is None:
        return _wait(s.reconsult_seconds, consultation_id, "no market snapshot yet")
    if leg is Side.BUY:
        return _consult_buy(services, cycle, attempt, snapshot, consultation_id, now)
    return _consult_sell(services, cycle, attempt, snapshot, consultation_id, now, reprices)


def _consult_buy(
    services: Services,
    cycle: Cycle,
    attempt: int,
    snapshot: MarketSnapshot,
    consultation_id: str,
    now: int,
) -> dict[str, Any]:
    s, exchange = services.settings, services.exchange
    recent = services.repos.trades.recent(s.symbol, TRADES_READ)
    trip = check_breakers(services, cycle, snapshot, now, recent)
    if trip is not None:
        return _paused(services, cycle, trip, snapshot, consultation_id, now)
    rules = exchange.symbol_rules(s.symbol)
    fees = exchange.fee_schedule(s.symbol)
    depth, book = _market_book(services)
    snapshot = _with_book(snapshot, book)
    free_quote = exchange.balances().get(rules.quote_asset)
    request = _request(
        services, Side.BUY, snapshot, fees, trading_context=trading_context(recent), depth=depth
    )
    decision, meta = _decide(services, request)
    coid = client_order_id(cycle.cycle_id, Side.BUY, attempt, prefix=s.order_id_prefix)
    if decision.action != "BUY":
        # no answer at all (the decision maker failed, or its fallback is to wait) fails
        unanswered = bool(meta.get("failed")) or meta.get("decided_by") == "fallback:wait"
        cycle = count_failure(services, cycle, unanswered, now)
        _audit(
            services,
            cycle,
            Side.BUY,
            consultation_id,
            now,
            decision,
            meta,
            Verdict.WAIT,
            decision.reasoning,
        )
        reason = f"decision: {decision.action}"
        return _wait(s.reconsult_seconds, consultation_id, reason, decision) | _source(meta)
    limits = risk_limits(services)
    try:
        guarded = check_buy(
            decision,
            book,
            rules,
            limits,
            free_quote.free if free_quote else Decimal(0),
            symbol=s.symbol,
            client_order_id=coid,
        )
        lowest = book.bid * (1 - limits.price_band)
        checked = manage_buy(guarded, depth, book.mid, lowest, rules, s.risk_rules)
    except GuardRejected as rejected:
        cycle = count_failure(services, cycle, True, now)
        _audit(
            services,
            cycle,
            Side.BUY,
            consultation_id,
            now,
            decision,
            meta,
            rejected_verdict(rejected.guard),
            str(rejected),
        )
        waiting = _wait(
            s.reconsult_seconds, consultation_id, str(rejected), decision, rejected.guard
        )
        return waiting | _source(meta)
    cycle = count_failure(services, cycle, False, now)
    order = checked.order
    _audit(
        services,
        cycle,
        Side.BUY,
        consultation_id,
        now,
        decision,
        meta,
        Verdict.PLACE,
        checked.changed,
        extra=checked.notes,
    )
    timeout = min(max(decision.timeout_seconds, 60), s.buy_order_timeout_seconds)
    return _place(
        order.price,
        order.quantity,
        consultation_id,
        decision,
        timeout,
        s.sell_heartbeat_seconds,
        checked.changed,
    ) | _source(meta)


def _consult_sell(
    services: Services,
    cycle: Cycle,
    attempt: int,
    snapshot: MarketSnapshot,
    consultation_id: str,
    now: int,
    reprices: bool,
) -> dict[str, Any]:
    s, exchange, repos = services.settings, services.exchange, services.repos
    rules = exchange.symbol_rules(s.symbol)
    fees = exchange.fee_schedule(s.symbol)
    fills = []
    bought_by = ""  # the consultation behind the last buy that filled
    for coid in cycle.buy_order_ids + cycle.sell_order_ids:
        order = repos.orders.get(coid)
        if order is not None:
            seen = fills_seen(order, exchange, repos)
            fills += seen
            if order.side is Side.BUY and (seen or order.executed_qty > 0):
                bought_by = order.consultation_id
    cycle = with_totals(cycle, fills, rules.base_asset, rules.quote_asset)
    if cycle.bought_qty <= 0:
        return {
            **_wait(0, consultation_id, "nothing bought: nothing to sell"),
            "action": ConsultAction.DUST,
        }
    floor = profit_floor(cycle.entry_price, fees, s.floor_margin, rules.tick_size)
    state = (
        advance(cycle.state, CycleEvent.BUY_FILLED)
        if cycle.state is CycleState.BUYING
        else cycle.state
    )
    cycle = repos.cycles.save(cycle.evolve(floor_price=floor, state=state, updated_ms=now))
    held = rules.sellable_qty(cycle.held_qty, floor)
    depth, book = _market_book(services)
    if held <= 0:
        return {
            **_wait(0, consultation_id, f"nothing sellable: held {cycle.held_qty}"),
            "action": ConsultAction.DUST,
        }
    base = exchange.balances().get(rules.base_asset)
    in_account = base.free + base.locked if base is not None else Decimal(0)
    if in_account < held and cycle.carried_qty > 0:
        # the dust carried in is gone (the owner swept small balances, say): the cycle
        # sells what it bought
        cycle = repos.cycles.save(
            with_totals(
                cycle.evolve(carried_qty=Decimal(0)), fills, rules.base_asset, rules.quote_asset
            )
        )
        held = rules.sellable_qty(cycle.held_qty, floor)
    if in_account < held:  # withdrawn or sold outside the bot: no sell of it can be placed
        raise PositionGone(cycle.held_qty, in_account, rules.base_asset)
    snapshot = _with_book(snapshot, book)
    limits = risk_limits(services)
    coid = client_order_id(cycle.cycle_id, Side.SELL, attempt, prefix=s.order_id_prefix)
    if stop_loss_triggered(cycle.entry_price, snapshot.last_price, limits):
        exit_order = _stop_loss_exit(
            services, cycle, snapshot, book, rules, limits, held, floor, coid, consultation_id, now
        )
        if exit_order is not None:
            return exit_order
    if s.sell_mode == "on_profit" and snapshot.last_price < floor:
        return _wait(
            s.reconsult_seconds,
            consultation_id,
            f"on_profit: last {snapshot.last_price} below floor {floor}",
        )
    fee_rate = fees.round_trip()
    steps = s.sell_reprice_steps if reprices else 0
    if not getattr(services.decider, "reprices_sells", True):
        steps = 0
    request = _request(
        services,
        Side.SELL,
        snapshot,
        fees,
        entry_price=cycle.entry_price,
        floor_price=floor,
        quantity=held,
        target_price=sell_target_price(
            cycle.entry_price, fee_rate, s.target_profit, floor, book, rules, limits
        ),
        sell_attempt=attempt,
        reprice_steps=steps,
        trading_context=trading_context(repos.trades.recent(s.symbol, TRADING_CONTEXT_TRADES)),
        depth=depth,
    )
    plan_extra: dict[str, str] = {}
    planned = _planned_sell(services, cycle.cycle_id, bought_by) if attempt == 1 else None
    if planned is not None:
        decision, meta = planned
        try:
            sell = check_sell(
                decision, book, rules, limits, held, floor, symbol=s.symbol, client_order_id=coid
            )
        except GuardRejected as rejected:  # the plan no longer holds: ask again
            plan_extra = {
                "sell_plan.from": bought_by,
                "sell_plan.verdict": rejected_verdict(rejected.guard),
                "sell_plan.reason": str(rejected)[:300],
            }
        else:
            extra = {"sell_plan.from": bought_by}
            _audit(
                services,
                cycle,
                Side.SELL,
                consultation_id,
                now,
                decision,
                meta,
                Verdict.PLACE,
                "the sell plan holds",
                extra=extra,
            )
            return _sell_placed(
                services, sell, consultation_id, decision, meta, "", floor, steps, attempt
            )
    decision, meta = _decide(services, request)
    verdict: str
    try:
        sell = check_sell(
            decision, book, rules, limits, held, floor, symbol=s.symbol, client_order_id=coid
        )
        verdict, reason = Verdict.PLACE, ""
    except GuardRejected as rejected:
        verdict, reason = rejected_verdict(rejected.guard), str(rejected)
        if s.sell_rule == "confident" and rejected.guard in ANSWER_GUARDS:
            _audit(
                services,
                cycle,
                Side.SELL,
                consultation_id,
                now,
                decision,
                meta,
                verdict,
                reason,
                extra=plan_extra,
            )
            waiting = _wait(s.reconsult_seconds, consultation_id, reason, decision, rejected.guard)
            return waiting | _source(meta)
        safe_price = max(floor, book.bid + rules.tick_size)
        safe = Decision(
            action="SELL",
            base_price=safe_price,
            confidence=1.0,
            reasoning=f"safe price after rejection: {rejected}",
        )
        sell = check_sell(
            safe, book, rules, limits, held, floor, symbol=s.symbol, client_order_id=coid
        )
    _audit(
        services,
        cycle,
        Side.SELL,
        consultation_id,
        now,
        decision,
        meta,
        verdict,
        reason,
        extra=plan_extra,
    )
    return _sell_placed(
        services, sell, consultation_id, decision, meta, reason, floor, steps, attempt
    )


def _sell_placed(
    services: Services,
    sell: OrderRequest,
    consultation_id: str,
    decision: Decision,
    meta: dict[str, Any],
    reason: str,
    floor: Decimal,
    steps: int,
    attempt: int,
) -> dict[str, Any]:
    """The state machine's PLACE for a checked sell: it rests until it fills, or, above
    the floor with re-pricing steps left, for the decision's timeout (bounded)."""
    s = services.settings
    reprice = 0
    if steps and attempt <= steps and sell.price > floor:
        reprice = s.reprice_seconds(decision.timeout_seconds)
    return _place(
        sell.price,
        sell.quantity,
        consultation_id,
        decision,
        min(s.sell_timeout_seconds, reprice or s.sell_timeout_seconds),
        s.sell_heartbeat_seconds,
        reason,
        reprice_seconds=reprice,
    ) | _source(meta)


def _planned_sell(
    services: Services, cycle_id: str, consultation_id: str
) -> tuple[Decision, dict[str, Any]] | None:
    """The sell the buy's consultation planned (its decision and audit keys), or ``None``.

    A plan is used once, by the cycle's first sell consultation: ``None`` when that
    consultation is unknown, is not this cycle's placed buy, planned no sell, or when a
    sell consultation of the cycle is already on record (a plan that failed once is not
    taken up later, however the market came back). No one is asked: the plan's maker is
    credited as ``plan:<who decided the buy>``, at no cost."""
    repos = services.repos
    record = repos.consultations.get(consultation_id) if consultation_id else None
    if (
        record is None
        or "sell_plan.price" not in record.extra
        or (record.cycle_id, record.leg, record.verdict) != (cycle_id, Side.BUY, Verdict.PLACE)
    ):
        return None
    if repos.consultations.any_for_leg(cycle_id, Side.SELL):
        return None
    extra = record.extra
    try:
        margin = extra.get("sell_plan.margin", "")
        decision = Decision(
            action="SELL",
            base_price=Decimal(extra["sell_plan.price"]),
            confidence=float(extra["sell_plan.confidence"]),
            timeout_seconds=int(extra["sell_plan.timeout_seconds"]),
            suggested_margin=Decimal(margin) if margin else None,
            reasoning=f"the sell planned by {consultation_id}",
        )
    except (KeyError, ValueError, ArithmeticError):  # a record written otherwise: ask
        return None
    meta = {"decided_by": f"plan:{record.decided_by}", "prompt_version": record.prompt_version}
    return decision, meta


def _paused(
    services: Services,
    cycle: Cycle,
    trip: Trip,
    snapshot: MarketSnapshot,
    consultation_id: str,
    now: int,
) -> dict[str, Any]:
    """A circuit breaker holds: no one is asked, the pause is audited (verdict ``PAUSED``,
    the breaker and until when) and the buy leg waits; at most an hour, so a breaker
    lifted in the template is seen within the hour."""
    s = services.settings
    if trip.until_ms > now:
        seconds = min(
            PAUSE_MAX_SECONDS, max(s.reconsult_seconds, -(-(trip.until_ms - now) // 1000))
        )
    else:
        seconds = min(PAUSE_MAX_SECONDS, s.reconsult_seconds * 5)
    decision = Decision(
        action="WAIT", base_price=snapshot.last_price, confidence=0.0, reasoning=trip.reason
    )
    meta = {"decided_by": BREAKER_DECIDER}
    extra = {"breaker": str(trip.breaker), "until_ms": str(trip.until_ms)}
    reason = f"circuit breaker {trip.breaker}: {trip.reason}"
    _audit(
        services,
        cycle,
        Side.BUY,
        consultation_id,
        now,
        decision,
        meta,
        Verdict.PAUSED,
        reason,
        extra=extra,
    )
    return _wait(seconds, consultation_id, reason) | _source(meta) | {"breaker": str(trip.breaker)}


def _stop_loss_exit(
    services: Services,
    cycle: Cycle,
    snapshot: MarketSnapshot,
    book: BookTop,
    rules: SymbolRules,
    limits: RiskLimits,
    held: Decimal,
    floor: Decimal,
    coid: str,
    consultation_id: str,
    now: int,
) -> dict[str, Any] | None:
    """The stop-loss sell at the best ask, or ``None`` when no valid exit order exists.

    ``None`` (e.g. what is held is under the minimum notional at the lower price) lets the
    leg go on as usual: a sell at the floor is always better than no sell at all.
    """
    s = services.settings
    stop = stop_price(cycle.entry_price, limits)
    price = stop_exit_price(book, rules)
    reasoning = (
        f"stop-loss: last {snapshot.last_price} <= entry {cycle.entry_price} x "
        f"(1 - {limits.stop_loss}) = {stop}; sell at the ask {price} (floor {floor} waived)"
    )
    decision = Decision(action="SELL", base_price=price, confidence=1.0, reasoning=reasoning)
    meta = {"decided_by": STOP_LOSS_DECIDER}
    try:
        sell = check_sell(
            decision,
            book,
            rules,
            limits,
            held,
            floor,
            symbol=s.symbol,
            client_order_id=coid,
            below_floor=True,
        )
    except GuardRejected as rejected:
        _audit(
            services,
            cycle,
            Side.SELL,
            consultation_id + "-stop",
            now,
            decision,
            meta,
            rejected_verdict(rejected.guard),
            f"stop-loss exit refused: {rejected}",
            extra=stop_loss_extra(snapshot.last_price, stop),
        )
        return None
    _audit(
        services,
        cycle,
        Side.SELL,
        consultation_id,
        now,
        decision,
        meta,
        STOP_LOSS_VERDICT,
        reasoning,
        extra=stop_loss_extra(snapshot.last_price, stop),
    )
    return _place(
        sell.price,
        sell.quantity,
        consultation_id,
        decision,
        s.sell_timeout_seconds,
        s.sell_heartbeat_seconds,
        reasoning,
    ) | _source(meta)


def check_resting_sell(
    services: Services, cycle_id: str, attempt: int, reprice_seconds: int = 0
) -> dict[str, Any]:
    """Keep or replace the resting sell of ``attempt``: ``{action: KEEP|REPLACE, reason}``.

    ``REPLACE`` when the stop-loss has fired and the resting order is not already a
    stop-loss exit at the front of the asks: a sell at the floor (far above a falling
    market), or an earlier exit the market has since fallen away from. The state machine
    then cancels it and consults the sell leg again, which places the exit.

    ``REPLACE`` too when the sell is to be re-priced (``reprice_seconds`` > 0, its
    consultation's answer) and it has rested that long without filling in full: the next
    consultation (one sell attempt on) aims a step lower, never under the floor.
    Everything else (no stop-loss nor re-pricing due, no market data) keeps it resting.
    """
    s, repos = services.settings, services.repos
    limits = risk_limits(services)
    keep = {"action": SellCheckAction.KEEP, "reason": "", "timeout_seconds": s.sell_timeout_seconds}
    if limits.stop_loss is None and reprice_seconds <= 0:
        return keep | {"reason": "no stop-loss configured and no re-pricing due"}
    cycle = repos.cycles.get(cycle_id)
    order = repos.orders.get(
        client_order_id(cycle_id, Side.SELL, attempt, prefix=s.order_id_prefix)
    )
    snapshot = repos.market.get(s.symbol)
    if cycle is None or order is None or snapshot is None or cycle.entry_price <= 0:
        return keep | {"reason": "nothing to check: no cycle, order or market snapshot"}
    if order.status not in ("NEW", "PARTIALLY_FILLED"):
        return keep | {"reason": f"order is {order.status}: its outcome resumes the cycle"}
    stop = stop_price(cycle.entry_price, limits)
    if stop_loss_triggered(cycle.entry_price, snapshot.last_price, limits):
        book = services.exchange.book_top(s.symbol)
        exit_price = stop_exit_price(book, services.exchange.symbol_rules(s.symbol))
        if order.exit_reason == ExitReason.STOP_LOSS and order.price <= exit_price:
            return keep | {"reason": f"stop-loss exit at {order.price} is at the front of the asks"}
        return {
            "action": SellCheckAction.REPLACE,
            "reason": f"stop-loss: last {snapshot.last_price} <= stop {stop}; "
            f"resting at {order.price}, exit at {exit_price}",
            "timeout_seconds": s.sell_timeout_seconds,
        }
    rested_ms = services.clock.now_ms() - order.created_ms
    if reprice_seconds > 0 and rested_ms + REPRICE_SLACK_MS >= reprice_seconds * 1000:
        return {
            "action": SellCheckAction.REPLACE,
            "reason": f"re-price: resting at {order.price} for {rested_ms // 1000} s "
            f"(its timeout {reprice_seconds} s), last {snapshot.last_price}",
            "timeout_seconds": s.sell_timeout_seconds,
        }
    if stop is None:
        return keep | {
            "reason": f"resting {rested_ms // 1000} s: re-priced after {reprice_seconds} s"
        }
    return keep | {"reason": f"last {snapshot.last_price} above the stop {stop}"}


def _source(meta: dict[str, Any]) -> dict[str, Any]:
    """Who decided and what the consultation cost, for the handler's metrics."""
    source: dict[str, Any] = {
        "decided_by": str(meta.get("decided_by", "")),
        "cost_usd": str(meta.get("cost_usd", "0")),
        "ai_error": str(meta.get("ai_error", "")),
    }
    if meta.get("ai_budget_spent"):
        source["ai_budget_spent"] = True
    return source


def _request(
    services: Services, leg: Side, snapshot: MarketSnapshot, fees: Any, **sell: Any
) -> DecisionRequest:
    """What the decision maker is told: the leg, the market, the cycle's constraints."""
    s = services.settings
    return DecisionRequest(
        leg=leg,
        symbol=s.symbol,
        snapshot=snapshot,
        quote_per_cycle=s.quote_per_cycle,
        min_confidence=s.min_confidence,
        min_profit=s.floor_margin,
        target_profit=s.target_profit,
        fee_rate_round_trip=fees.round_trip(),
        **sell,
    )


def _decide(services: Services, request: DecisionRequest) -> tuple[Decision, dict[str, Any]]:
    decider = services.decider
    failed = False
    try:
        decision = decider.decide(request)
    except FlipbotError as exc:
        failed = True
        decision = Decision(
            action="WAIT",
            base_price=Decimal(0),
            confidence=0.0,
            reasoning=f"decision maker failed: {type(exc).__name__}: {exc}",
        )
    meta = dict(getattr(decider, "last_call", None) or {})
    meta.setdefault("decided_by", decider.name)
    if failed:
        meta["failed"] = True
    return decision, meta


def _audit(
    services: Services,
    cycle: Cycle,
    leg: Side,
    consultation_id: str,
    now: int,
    decision: Decision,
    meta: dict[str, Any],
    verdict: str,
    reason: str,
    *,
    extra: dict[str, str] | None = None,
) -> None:
    context = f"{cycle.cycle_id}|{leg}|{decision.model_dump_json()}"
    analysis = {f"market_analysis.{k}": v for k, v in (decision.market_analysis or {}).items()}
    analysis |= _plans(leg, decision)
    services.repos.consultations.add(
        ConsultationRecord(
            consultation_id=consultation_id,
            cycle_id=cycle.cycle_id,
            leg=leg,
            time_ms=now,
            decided_by=str(meta.get("decided_by", "")),
            prompt_version=str(meta.get("prompt_version", PROMPT_VERSION)),
            context_hash=hashlib.sha256(context.encode()).hexdigest()[:16],
            action=decision.action,
            price=decision.base_price,
            confidence=decision.confidence,
            reasoning=decision.reasoning[:1000],
            verdict=verdict,
            verdict_reason=reason,
            tokens_in=int(meta.get("tokens_in", 0)),
            tokens_out=int(meta.get("tokens_out", 0)),
            cost_usd=Decimal(str(meta.get("cost_usd", "0"))),
            latency_ms=int(meta.get("latency_ms", 0)),
            raw_answer=str(meta.get("raw_answer", ""))[:4000],
            extra={**analysis, **dict(meta.get("audit_extra") or {}), **(extra or {})},
        )
    )


def _plans(leg: Side, decision: Decision) -> dict[str, str]:
    """A buy answer's plans for the audit: the buy's range and timeout, and the sell it
    plans for after the fill (``sell_plan.*``, which the sell leg reads back)."""
    if leg is not Side.BUY or decision.action != "BUY":
        return {}
    plans = {"buy_plan.timeout_seconds": str(decision.timeout_seconds)}
    if decision.price_range is not None:
        plans["buy_plan.price_low"] = str(decision.price_range.low)
        plans["buy_plan.price_high"] = str(decision.price_range.high)
    plan = decision.sell_plan
    if plan is not None:
        plans["sell_plan.price"] = str(plan.price)
        plans["sell_plan.confidence"] = str(plan.confidence)
        plans["sell_plan.timeout_seconds"] = str(plan.timeout_seconds)
        if plan.suggested_margin is not None:
            plans["sell_plan.margin"] = str(plan.suggested_margin)
    return plans


#: how many levels of each side of the book a consultation reads
DEPTH_LEVELS = 10


def _market_book(services: Services) -> tuple[BookDepth, BookTop]:
    """The top :data:`DEPTH_LEVELS` levels of the book and its best bid and ask (from the
    ticker when a side of the depth is empty, so the guards judge the book as before)."""
    s, exchange = services.settings, services.exchange
    depth = exchange.order_book(s.symbol, DEPTH_LEVELS)
    return depth, depth.top() or exchange.book_top(s.symbol)


def _with_book(snapshot: MarketSnapshot, book: Any) -> MarketSnapshot:
    from dataclasses import replace

    return replace(snapshot, book=book)


def _over_portfolio_cap(services: Services) -> str:
    """Why a buy of this symbol would pass ``PORTFOLIO_QUOTE_CAP``, or ``""``.

    What the other symbols have at risk (:func:`_at_risk`), each symbol's open cycles and
    orders read by their sparse indexes; without a cap nothing is read."""
    s = services.settings
    cap = s.portfolio_quote_cap
    if cap is None:
        return ""
    held = buying = Decimal(0)
    for symbol in s.symbols:
        if symbol != s.symbol:
            symbol_held, symbol_buying = _at_risk(services, symbol)
            held, buying = held + symbol_held, buying + symbol_buying
    at_risk = held + buying
    if at_risk + s.quote_per_cycle <= cap:
        return ""
    return (
        f"portfolio cap {cap}: the other symbols have {at_risk:.2f} at risk "
        f"({held:.2f} held, {buying:.2f} in buys), and a buy of "
        f"{s.quote_per_cycle} would pass it"
    )


def _at_risk(services: Services, symbol: str) -> tuple[Decimal, Decimal]:
    """What ``symbol``'s open cycles hold, at cost, and what its buys spend or may spend.

    Held: each open cycle's base at its entry price (stored totals: the buys that ended),
    whether its sell rests on the book or not. Buys: each resting buy at its price for
    its whole quantity (what it filled is in no total yet); a buy that filled in full
    before its cycle's totals were written (the cycle is still ``BUYING``) at what it
    spent. A resting sell of a cycle the index does not show (written before the index
    was) counts at its price."""
    repos = services.repos
    cycles = repos.cycles.open_cycles(symbol)
    orders = [o for o in repos.orders.open_orders(symbol) if o.origin is Origin.SYSTEM]
    resting = {o.client_order_id for o in orders}
    held = sum((c.held_qty * c.entry_price for c in cycles), Decimal(0))
    buying = sum((o.price * o.quantity for o in orders if o.side is Side.BUY), Decimal(0))
    for cycle in cycles:
        last_buy = cycle.buy_order_ids[-1] if cycle.buy_order_ids else ""
        if cycle.state is CycleState.BUYING and last_buy and last_buy not in resting:
            order = repos.orders.get(last_buy)
            buying += order.cumulative_quote_qty if order is not None else Decimal(0)
    shown = {c.cycle_id for c in cycles}
    held += sum(
        (o.price * o.quantity for o in orders if o.side is Side.SELL and o.cycle_id not in shown),
        Decimal(0),
    )
    return held, buying


def _end(services: Services, cycle: Cycle, consultation_id: str, now: int) -> dict[str, Any]:
    """The symbol was removed from ``SYMBOLS``: its chain stops before its next buy (a
    cycle that bought anything has sold it by now: this is its buy leg)."""
    reason = f"its chain ends before it buys: {cycle.symbol} is {SYMBOL_REMOVED}"
    if not is_final(cycle.state):
        services.repos.cycles.save(
            cycle.evolve(
                state=advance(cycle.state, CycleEvent.HALTED), stop_reason=reason, updated_ms=now
            )
        )
    return {**_wait(0, consultation_id, reason), "action": ConsultAction.END}


def _wait(
    seconds: int,
    consultation_id: str,
    reason: str,
    decision: Decision | None = None,
    guard: str = "",
) -> dict[str, Any]:
    return {
        "action": ConsultAction.WAIT,
        "price": None,
        "quantity": None,
        "wait_seconds": seconds,
        "timeout_seconds": 0,
        "heartbeat_seconds": 0,
        "consultation_id": consultation_id,
        "confidence": decision.confidence if decision else 0.0,
        "reason": reason,
        "guard": guard,
        "reprice_seconds": 0,
    }


def _place(
    price: Decimal,
    quantity: Decimal,
    consultation_id: str,
    decision: Decision,
    timeout_seconds: int,
    heartbeat_seconds: int,
    reason: str = "",
    *,
    reprice_seconds: int = 0,
) -> dict[str, Any]:
    return {
        "action": ConsultAction.PLACE,
        "price": str(price),
        "quantity": str(quantity),
        "wait_seconds": 0,
        "timeout_seconds": timeout_seconds,
        "heartbeat_seconds": heartbeat_seconds,
        "consultation_id": consultation_id,
        "confidence": decision.confidence,
        "reason": reason or decision.reasoning[:200],
        "guard": "",
        "reprice_seconds": reprice_seconds,
    }
