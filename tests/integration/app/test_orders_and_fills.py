"""Exactly-once money: one order per intent, each fill once, each task token used once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.consult import consult
from flipbot.app.fills import apply_order_update
from flipbot.app.orders import cancel_order, place_order
from flipbot.app.reconcile import reconcile_open_orders
from flipbot.app.trades import record_trade
from flipbot.domain.cycle import CycleState
from flipbot.domain.decision import Decision
from flipbot.domain.entities import Cycle
from flipbot.domain.errors import CycleNotSold, GuardRejected
from flipbot.domain.model import Origin, Side
from flipbot_dev.paper.transport import Fault

from .conftest import START_MS, Bot


def _cycle(bot: Bot, cycle_id: str = "c000001") -> None:
    bot.repos.cycles.create(
        Cycle(
            cycle_id, "TRUMPUSDC", CycleState.READY_TO_BUY, created_ms=START_MS, updated_ms=START_MS
        )
    )


def _place_buy(
    bot: Bot, token: str = "token-1", attempt: int = 1, price: str = "25.90", qty: str = "0.385"
) -> dict[str, Any]:
    return place_order(
        bot,
        cycle_id="c000001",
        leg=Side.BUY,
        attempt=attempt,
        price=Decimal(price),
        quantity=Decimal(qty),
        task_token=token,
    )


def _apply_all(bot: Bot, updates: list[Any]) -> list[dict[str, Any]]:
    return [apply_order_update(u, bot.repos, bot.workflow, bot.clock.now) for u in updates]


def test_given_an_intent_when_placed_then_the_order_item_and_token_exist_before_the_exchange_call(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    seen: list[Any] = []

    def inspect(method: str, path: str, params: Any) -> None:
        if method == "POST" and path.endswith("/order"):
            seen.append(bot.repos.orders.get("fb-c000001-B1"))

    bot.faults[0] = inspect
    result = _place_buy(bot)
    assert result["status"] == "NEW"
    assert seen
    assert seen[0] is not None
    assert seen[0].task_token == "token-1"
    assert seen[0].token_state == "WAITING"
    assert len(bot.paper.open_orders("TRUMPUSDC")) == 1


def _dynamodb_requests(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The DynamoDB requests made from now on, by operation, in order."""
    from pynamodb.connection.base import Connection

    made: list[str] = []
    call = Connection._make_api_call

    def counted(self: Connection, operation: str, kwargs: Any) -> Any:
        made.append(operation)
        return call(self, operation, kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counted)
    return made


def test_given_a_buy_that_rests_untouched_then_placing_it_makes_six_dynamodb_requests(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    made = _dynamodb_requests(monkeypatch)
    assert _place_buy(bot)["status"] == "NEW"
    # the cycle and the order read; the order (with its token) created; the cycle linked;
    # the order's exchange view written (read before, to keep its token and revision)
    assert made == ["GetItem", "GetItem", "PutItem", "PutItem", "GetItem", "PutItem"]
    order = bot.repos.orders.get("fb-c000001-B1")
    assert order is not None
    assert (order.task_token, order.token_state, order.order_id > 0) == ("token-1", "WAITING", True)
    cycle = bot.repos.cycles.get("c000001")
    assert cycle is not None
    assert cycle.buy_order_ids == ("fb-c000001-B1",)


def test_given_a_buy_that_fills_as_it_is_placed_then_the_task_is_resumed_at_once(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    # a buy above the ask takes the book: filled as it is placed
    result = _place_buy(bot, price="25.97")
    assert result["status"] == "FILLED"
    _apply_all(bot, bot.updates())
    successes = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(successes) == 1


def test_given_a_response_lost_after_accept_when_placed_then_the_order_is_found_not_resent(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    bot.faults[0] = lambda m, p, _: Fault.drop_response() if m == "POST" else None
    result = _place_buy(bot)
    assert result["status"] == "NEW"
    assert result["order_id"] > 0
    orders = bot.paper.all_orders("TRUMPUSDC")
    assert [o["clientOrderId"] for o in orders] == ["fb-c000001-B1"]


def test_given_a_redelivered_intent_when_placed_again_then_no_second_order_and_new_token_kept(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, token="token-1")
    _place_buy(bot, token="token-2")
    assert len(bot.paper.all_orders("TRUMPUSDC")) == 1
    order = bot.repos.orders.get("fb-c000001-B1")
    assert order is not None
    assert order.task_token == "token-2"


def test_given_a_price_off_the_tick_when_placed_then_the_task_fails_with_the_filter_named(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    result = _place_buy(bot, price="25.905")
    assert result["status"] == "REJECTED"
    assert "PRICE_FILTER" in result["reason"]
    assert bot.workflow.calls == [("failure", "token-1", "FilterViolation")]
    assert bot.paper.all_orders("TRUMPUSDC") == []


def test_given_partial_then_full_fills_delivered_twice_and_reordered_then_each_counts_once(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot)
    bot.trade("25.89", "0.200")
    bot.trade("25.88", "0.500")
    updates = bot.updates()
    fills = [u for u in updates if u.trade_id >= 0]
    assert [u.status for u in fills] == ["PARTIALLY_FILLED", "FILLED"]
    # When: delivered reordered, and everything twice (at-least-once delivery).
    _apply_all(bot, list(reversed(updates)) + updates)
    recorded = bot.repos.fills.for_order("fb-c000001-B1")
    assert sorted(f.qty for f in recorded) == [Decimal("0.185"), Decimal("0.200")]
    successes = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(successes) == 1
    summary = successes[0][2]
    assert Decimal(summary["executed_qty"]) == Decimal("0.385")
    order = bot.repos.orders.get("fb-c000001-B1")
    assert order is not None
    assert order.status == "FILLED"
    assert order.token_state == "SUCCEEDED"


def test_given_an_order_canceled_by_hand_without_fills_then_the_waiting_task_fails(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot)
    bot.paper.cancel_order("TRUMPUSDC", orig_client_order_id="fb-c000001-B1")
    _apply_all(bot, bot.updates())
    assert bot.workflow.calls == [("failure", "token-1", "OrderCanceled")]


def test_given_the_bot_cancels_after_a_timeout_then_no_failure_is_sent_and_partial_is_kept(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot)
    bot.trade("25.89", "0.100")
    result = cancel_order(bot, cycle_id="c000001", leg=Side.BUY, attempt=1)
    _apply_all(bot, bot.updates())
    assert result == {"client_order_id": "fb-c000001-B1", "status": "CANCELED", "executed": True}
    assert [c for c in bot.workflow.calls if c[0] == "failure"] == []
    cycle = bot.repos.cycles.get("c000001")
    assert cycle is not None
    assert cycle.state is CycleState.READY_TO_SELL
    assert cycle.bought_qty == Decimal("0.100")


def test_given_a_fill_of_an_order_the_bot_did_not_place_then_it_is_recorded_as_manual(
    bot: Bot,
) -> None:
    bot.market("25.95", "25.96")
    bot.paper.place_order("TRUMPUSDC", "BUY", "LIMIT", "0.200", "25.90", "GTC", "by-hand-1")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    order = bot.repos.orders.get("by-hand-1")
    assert order is not None
    assert order.origin is Origin.MANUAL
    assert order.status == "FILLED"
    assert len(bot.repos.fills.for_order("by-hand-1")) == 1
    assert bot.workflow.calls == []


def test_given_fills_that_no_event_delivered_when_reconciled_then_recorded_and_task_resumed(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot)
    bot.trade("25.80", "1.000")
    bot.updates()  # the stream dropped them: nothing applied
    summary = reconcile_open_orders(bot)
    assert summary["repaired_fills"] == 1
    assert summary["resumed"] == 1
    assert [c[0] for c in bot.workflow.calls] == ["success"]
    assert reconcile_open_orders(bot) == {"repaired_fills": 0, "resumed": 0, "heartbeats": 0}


def test_given_a_live_order_when_reconciled_then_its_waiting_task_gets_a_heartbeat(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot)
    assert reconcile_open_orders(bot)["heartbeats"] == 1
    assert bot.workflow.calls == [("heartbeat", "token-1", None)]


@pytest.mark.parametrize(
    ("confidence", "expected"), [(0.79, "WAIT"), (0.8, "PLACE")], ids=["0.79-waits", "0.8-places"]
)
def test_given_buy_confidence_at_the_threshold_then_only_0_8_and_above_places(
    bot: Bot, confidence: float, expected: str
) -> None:
    bot.market("25.95", "25.96")
    bot.decider.answers.append(
        Decision(action="BUY", base_price=Decimal("25.93"), confidence=confidence)
    )
    result = consult(bot, "c000001", Side.BUY, 1)
    assert result["action"] == expected
    audit = bot.repos.consultations.all()
    assert len(audit) == 1
    assert audit[0].verdict == ("REJECTED:confidence" if expected == "WAIT" else "PLACE")


def test_given_an_ai_sell_below_the_floor_then_the_sell_goes_at_the_floor_and_is_audited(
    bot: Bot,
) -> None:
    bot.settings = bot.settings.model_copy(update={"sell_rule": "floor"})
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    bot.decider.answers.append(
        Decision(action="SELL", base_price=Decimal("25.00"), confidence=0.95)
    )
    result = consult(bot, "c000001", Side.SELL, 1)
    cycle = bot.repos.cycles.get("c000001")
    assert cycle is not None
    # entry 25.90 x (1 + 0.001 + 0.001 + 0.01) = 26.2108 -> rounded up to the tick
    assert cycle.floor_price == Decimal("26.22")
    assert result["action"] == "PLACE"
    assert Decimal(result["price"]) == Decimal("26.22")
    # Commission was paid in TRUMP: only what is held (0.385 - 0.000385) is sold, to the step.
    assert Decimal(result["quantity"]) == Decimal("0.384")
    assert bot.repos.consultations.all()[-1].verdict == "REJECTED:profit_floor"


@pytest.mark.parametrize(
    "answer",
    [
        Decision(action="SELL", base_price=Decimal("25.00"), confidence=0.95),  # below floor
        Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.5),  # unsure
        Decision(action="WAIT", base_price=Decimal("26.40"), confidence=0.9),  # not a sell
    ],
    ids=["below-floor", "unsure", "wait"],
)
def test_given_the_confident_rule_and_a_rejected_sell_then_nothing_is_placed_and_it_asks_again(
    bot: Bot, answer: Decision
) -> None:
    # Given the default rule (the seed's: a sell only from an answer that passes every guard)
    assert bot.settings.sell_rule == "confident"
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    bot.decider.answers.append(answer)
    # When the sell leg is consulted
    result = consult(bot, "c000001", Side.SELL, 1)
    # Then it waits and asks again; the answer is audited with the guard that refused it
    assert result["action"] == "WAIT"
    assert result["wait_seconds"] == bot.settings.reconsult_seconds
    assert result["price"] is None
    audit = bot.repos.consultations.all()[-1]
    assert audit.verdict.startswith("REJECTED:")
    assert result["guard"] == audit.verdict.removeprefix("REJECTED:")
    assert [o.side for o in bot.repos.orders.all()] == [Side.BUY]
    # and a confident answer at or over the floor is placed as given
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    placed = consult(bot, "c000001", Side.SELL, 2)
    assert (placed["action"], Decimal(placed["price"])) == ("PLACE", Decimal("26.40"))


def test_given_a_buy_fill_no_event_delivered_then_the_sell_is_sized_with_it_and_nothing_written(
    bot: Bot,
) -> None:
    # Given: the buy filled on the exchange, but its OrderUpdated never arrived.
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    bot.updates()  # lost
    order_before = bot.repos.orders.get("fb-c000001-B1")
    assert bot.repos.fills.for_order("fb-c000001-B1") == []
    bot.decider.answers.append(
        Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.95)
    )
    # When: the sell leg is consulted.
    result = consult(bot, "c000001", Side.SELL, 1)
    # Then: it sells what the exchange says was bought...
    assert result["action"] == "PLACE"
    assert Decimal(result["quantity"]) == Decimal("0.384")
    # ...and leaves the books to those who keep them: no fill, no order written.
    assert bot.repos.fills.for_order("fb-c000001-B1") == []
    assert bot.repos.orders.get("fb-c000001-B1") == order_before


def test_given_a_buy_filled_and_booked_then_the_sell_is_sized_without_asking_the_exchange(
    bot: Bot,
) -> None:
    # Given: the buy filled and its update was applied (order FILLED, its fill recorded)
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    asked: list[str] = []
    bot.faults[0] = lambda method, path, _: asked.append(f"{method} {path}")
    bot.decider.answers.append(
        Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.95)
    )
    # When: the sell leg is consulted
    result = consult(bot, "c000001", Side.SELL, 1)
    # Then: it sells what was bought, and asked the exchange nothing about the buy
    assert result["action"] == "PLACE"
    assert Decimal(result["quantity"]) == Decimal("0.384")
    assert not [a for a in asked if a.endswith(("/api/v3/order", "/api/v3/myTrades"))], asked


def test_given_the_kill_switch_when_consulting_a_buy_then_the_cycle_waits(bot: Bot) -> None:
    bot.market("25.95", "25.96")
    bot.kill_switch.value = True
    result = consult(bot, "c000001", Side.BUY, 1)
    assert result["action"] == "WAIT"
    assert "kill switch" in result["reason"]
    assert bot.decider.requests == []


def _bought_and_selling(bot: Bot) -> dict[str, Any]:
    """c000001 bought 0.385 at 25.90; its sell of 0.384 at 26.30 rests (token-s)."""
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.30"), confidence=0.9))
    sell = consult(bot, "c000001", Side.SELL, 1)
    place_order(
        bot,
        cycle_id="c000001",
        leg=Side.SELL,
        attempt=1,
        price=Decimal(sell["price"]),
        quantity=Decimal(sell["quantity"]),
        task_token="token-s",
        consultation_id=sell["consultation_id"],
    )
    return sell


def _sold_cycle(bot: Bot) -> dict[str, Any]:
    """c000001 bought 0.385 at 25.90 and sold 0.384 at 26.30, every fill delivered."""
    sell = _bought_and_selling(bot)
    bot.trade("26.40", "1.000", taker_sold=False)
    _apply_all(bot, bot.updates())
    return sell


def test_given_the_close_dies_after_the_trade_row_then_its_retry_writes_no_second_row(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a sold cycle whose close wrote its trade row, then died saving the cycle.
    _sold_cycle(bot)
    save = bot.repos.cycles.save
    calls = []

    def dies_once(cycle: Cycle) -> Cycle:
        calls.append(cycle.state)
        if len(calls) == 1:
            raise RuntimeError("the function died before the cycle was saved")
        return save(cycle)

    monkeypatch.setattr(bot.repos.cycles, "save", dies_once)
    with pytest.raises(RuntimeError):
        record_trade(bot, cycle_id="c000001")
    bot.clock.now += 60_000  # the retry comes later: another close time
    # When: the state machine retries the close.
    retried = record_trade(bot, cycle_id="c000001")
    # Then: the ledger holds one row for the cycle, and it counts once.
    trades = bot.repos.trades.all("TRUMPUSDC")
    assert [t.cycle_id for t in trades] == ["c000001"]
    assert Decimal(retried["realized_pnl"]) == trades[0].realized_pnl
    cycle = bot.repos.cycles.get("c000001")
    assert cycle is not None
    assert cycle.state is CycleState.COMPLETED


def test_given_a_closed_cycle_when_recorded_twice_then_one_trade_and_the_same_pnl(bot: Bot) -> None:
    sell = _sold_cycle(bot)
    first = record_trade(bot, cycle_id="c000001")
    second = record_trade(bot, cycle_id="c000001")
    # A retry answers the state machine the same, and says it closed nothing this time.
    assert first["closed"] is True
    assert second == {
        "next_cycle_id": first["next_cycle_id"],
        "continue": first["continue"],
        "realized_pnl": first["realized_pnl"],
        "closed": False,
    }
    assert set(first["fill_seconds"]) == {"BUY", "SELL"}
    trades = bot.repos.trades.all("TRUMPUSDC")
    assert len(trades) == 1
    # Bought 0.385 at 25.90 = 9.9715; sold 0.384 at 26.30 = 10.0992 less 0.1% = 10.0891008.
    assert trades[0].spent_quote == Decimal("9.97150000")
    assert trades[0].received_quote == Decimal("10.08910080")
    assert Decimal(first["realized_pnl"]) == Decimal("0.11760080")
    # Then: the sell's consultation learns its outcome: placed, filled, the cycle's P&L.
    audit = {c.consultation_id: c for c in bot.repos.consultations.all()}
    outcome = audit[sell["consultation_id"]].extra
    assert outcome["outcome_filled"] == "true"
    assert outcome["outcome_cycle_pnl"] == first["realized_pnl"]
    assert sell["decided_by"] == "scripted"


# --------------------------------------------------------------------------- hostile world
def test_given_a_sell_part_filled_then_canceled_by_hand_then_the_rest_is_sold_not_closed(
    bot: Bot,
) -> None:
    # Given: the sell fills 0.1 of 0.384, then the user cancels it in the Binance app.
    _bought_and_selling(bot)
    bot.trade("26.40", "0.100", taker_sold=False)
    bot.paper.cancel_order("TRUMPUSDC", orig_client_order_id="fb-c000001-S1")
    _apply_all(bot, bot.updates())
    # Then: the sell leg does not succeed: the cycle goes on selling the rest...
    assert ("success", "token-s") not in [(c[0], c[1]) for c in bot.workflow.calls]
    assert bot.workflow.calls[-1] == ("failure", "token-s", "OrderCanceled")
    # ...and closing it now is refused: 0.284 is still held, and sellable.
    with pytest.raises(CycleNotSold, match=r"0\.284 of it sellable"):
        record_trade(bot, cycle_id="c000001")
    assert bot.repos.trades.all("TRUMPUSDC") == []
    # When: the next sell attempt sells the rest, the cycle closes on both sells.
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.30"), confidence=0.9))
    rest = consult(bot, "c000001", Side.SELL, 2)
    assert Decimal(rest["quantity"]) == Decimal("0.284")
    place_order(
        bot,
        cycle_id="c000001",
        leg=Side.SELL,
        attempt=2,
        price=Decimal(rest["price"]),
        quantity=Decimal(rest["quantity"]),
        task_token="token-s2",
        consultation_id=rest["consultation_id"],
    )
    bot.trade("26.40", "1.000", taker_sold=False)
    _apply_all(bot, bot.updates())
    closed = record_trade(bot, cycle_id="c000001")
    (trade,) = bot.repos.trades.all("TRUMPUSDC")
    assert trade.quantity == Decimal("0.384")
    assert Decimal(closed["realized_pnl"]) > 0


def test_given_a_sell_still_resting_then_record_trade_refuses_to_close(bot: Bot) -> None:
    _bought_and_selling(bot)
    with pytest.raises(CycleNotSold):
        record_trade(bot, cycle_id="c000001")
    cycle = bot.repos.cycles.get("c000001")
    assert cycle is not None
    assert cycle.state is not CycleState.COMPLETED
    assert bot.repos.trades.all("TRUMPUSDC") == []


def test_given_a_buy_over_the_cap_then_place_order_refuses_it_and_sends_nothing(
    bot: Bot,
) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    with pytest.raises(GuardRejected, match="over the cap of 10"):
        _place_buy(bot, price="25.90", qty="3.552")  # 92 USDC
    assert bot.paper.all_orders("TRUMPUSDC") == []


def test_given_a_sell_for_a_cycle_with_no_item_then_place_order_refuses_it(bot: Bot) -> None:
    bot.market("8.48", "8.49")
    bot.paper.deposit("TRUMP", "5")
    with pytest.raises(GuardRejected, match="no bought position and no floor"):
        place_order(
            bot,
            cycle_id="c000042",
            leg=Side.SELL,
            attempt=1,
            price=Decimal("2.00"),
            quantity=Decimal("5"),
            task_token="token-x",
        )
    assert bot.paper.all_orders("TRUMPUSDC") == []


def test_given_a_sell_of_more_than_the_cycle_holds_then_place_order_refuses_it(bot: Bot) -> None:
    _cycle(bot)
    bot.market("25.95", "25.96")
    _place_buy(bot, price="25.90", qty="0.385")
    bot.trade("25.80", "1.000")
    _apply_all(bot, bot.updates())
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.30"), confidence=0.9))
    consult(bot, "c000001", Side.SELL, 1)  # sizes the cycle: 0.384615 held
    bot.paper.deposit("TRUMP", "5")
    with pytest.raises(GuardRejected, match="more than the"):
        place_order(
            bot,
            cycle_id="c000001",
            leg=Side.SELL,
            attempt=1,
            price=Decimal("26.30"),
            quantity=Decimal("5"),
            task_token="token-s",
        )
    assert [o["side"] for o in bot.paper.all_orders("TRUMPUSDC")] == ["BUY"]
