"""One stack, several symbols: a cycle chain each, named after its symbol, and nothing of
one symbol's cycle reaches another's. Real DynamoDB adapter (moto), real python-binance
client against a paper exchange listing every symbol."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from moto import mock_aws

from flipbot.adapters.aws import kill_switch_covers
from flipbot.app.consult import SYMBOL_REMOVED, consult
from flipbot.app.contracts import ConsultAction
from flipbot.app.fills import apply_order_update
from flipbot.app.orders import place_order
from flipbot.app.reconcile import reconcile_on_schedule
from flipbot.app.recovery import recover_symbols
from flipbot.app.trades import record_trade
from flipbot.domain.cycle import CycleState
from flipbot.domain.decision import Decision
from flipbot.domain.model import Side
from flipbot.domain.order_ids import BINANCE_CLIENT_ORDER_ID

from .conftest import Bot, bot_settings, make_bot

BTC = "BTCUSDC"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bot]:
    """TRUMPUSDC (the stack's Symbol) and BTCUSDC, 200 USDC in the account."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield make_bot(bot_settings(symbols=("TRUMPUSDC", BTC)), {"USDC": "200"})


def _btc_buy_resting(stack: Bot, token: str = "token-btc") -> Bot:
    """BTCUSDC's first cycle consults and places its buy; it rests on the book."""
    btc = stack.for_symbol(BTC)
    btc.market("97000.00", "97000.01")
    btc.decider.answers.append(Decision(action="BUY", base_price=Decimal("96990"), confidence=0.9))
    _place_decided(btc, Side.BUY, token)
    return btc


def _place_decided(btc: Bot, leg: Side, token: str) -> None:
    """BTCUSDC's first cycle consults its ``leg`` and places what it decided."""
    decided = consult(btc, f"{BTC}_c000001", leg, 1)
    assert decided["action"] == ConsultAction.PLACE, decided["reason"]
    place_order(
        btc,
        cycle_id=f"{BTC}_c000001",
        leg=leg,
        attempt=1,
        price=Decimal(decided["price"]),
        quantity=Decimal(decided["quantity"]),
        task_token=token,
    )


def test_a_symbol_s_cycle_and_orders_carry_its_name_and_stay_on_its_book(stack: Bot) -> None:
    btc = _btc_buy_resting(stack)
    coid = f"fb-{BTC}_c000001-B1"
    order = stack.repos.orders.get(coid)
    assert order is not None
    assert (order.symbol, order.price, order.quantity) == (
        BTC,
        Decimal("96990.00"),
        Decimal("0.00010"),  # 10 USDC at 96,990 on BTCUSDC's 0.00001 step
    )
    assert BINANCE_CLIENT_ORDER_ID.match(coid)
    cycle = stack.repos.cycles.get(f"{BTC}_c000001")
    assert cycle is not None
    assert (cycle.symbol, cycle.state) == (BTC, CycleState.BUYING)
    assert [o.client_order_id for o in stack.repos.orders.open_orders(BTC)] == [coid]
    assert stack.repos.orders.open_orders("TRUMPUSDC") == []
    # the decision maker was asked about BTCUSDC, with BTCUSDC's market
    (request,) = btc.decider.requests
    assert request.symbol == BTC
    assert [o["symbol"] for o in stack.paper.open_orders(BTC)] == [BTC]
    assert stack.paper.open_orders("TRUMPUSDC") == []


def test_a_closed_cycle_starts_the_next_one_of_its_own_symbol(stack: Bot) -> None:
    btc = stack.for_symbol(BTC)
    answer = record_trade(btc, cycle_id=f"{BTC}_c000041")
    assert (answer["next_cycle_id"], answer["continue"]) == (f"{BTC}_c000042", True)
    answer = record_trade(stack, cycle_id="c000007")
    assert (answer["next_cycle_id"], answer["continue"]) == ("c000008", True)


def test_a_symbol_removed_from_symbols_ends_its_chain_before_it_buys(stack: Bot) -> None:
    # Given BTCUSDC was removed from SYMBOLS while its cycle 3 waited to buy
    stack.settings = stack.settings.model_copy(update={"symbols": ("TRUMPUSDC",)})
    btc = stack.for_symbol(BTC)
    btc.market("97000.00", "97000.01")
    # When the cycle consults for its buy
    decided = consult(btc, f"{BTC}_c000003", Side.BUY, 1)
    # Then the chain ends (the state machine's BuyGate stops on END), with the reason kept
    assert decided["action"] == ConsultAction.END
    assert "BTCUSDC is no longer one of SYMBOLS" in str(decided["reason"])
    assert str(decided["reason"]).endswith(SYMBOL_REMOVED)
    cycle = stack.repos.cycles.get(f"{BTC}_c000003")
    assert cycle is not None
    assert cycle.state is CycleState.STOPPED
    assert "no longer one of SYMBOLS" in cycle.stop_reason
    assert btc.decider.requests == []  # no model was asked
    # and a removed symbol's cycle that closes does not start another
    assert record_trade(btc, cycle_id=f"{BTC}_c000004")["continue"] is False


def test_the_kill_switch_can_stop_one_symbol_or_all() -> None:
    assert kill_switch_covers("BTCUSDC, ETHUSDC", "BTCUSDC")
    assert not kill_switch_covers("BTCUSDC,ETHUSDC", "TRUMPUSDC")
    assert kill_switch_covers("on", "TRUMPUSDC")
    assert kill_switch_covers("ON", "")
    assert not kill_switch_covers("off", "BTCUSDC")
    assert not kill_switch_covers("", "BTCUSDC")


def test_a_kill_switch_naming_one_symbol_stops_that_symbol_s_buys_only(stack: Bot) -> None:
    class Listed:
        def engaged(self, symbol: str = "") -> bool:
            return kill_switch_covers(BTC, symbol)

    stack.kill_switch = Listed()  # type: ignore[assignment]
    btc = stack.for_symbol(BTC)
    btc.market("97000.00", "97000.01")
    stopped = consult(btc, f"{BTC}_c000001", Side.BUY, 1)
    assert stopped["action"] == ConsultAction.WAIT
    assert "kill switch" in str(stopped["reason"])
    stack.market("25.95", "25.96")
    stack.decider.answers.append(
        Decision(action="BUY", base_price=Decimal("25.90"), confidence=0.9)
    )
    assert consult(stack, "c000001", Side.BUY, 1)["action"] == ConsultAction.PLACE


def test_the_scheduled_reconcile_finds_the_missed_fills_of_every_symbol(stack: Bot) -> None:
    # Given both symbols' buys rest and both fill while no order update is delivered
    stack.first_buy(token="token-trump")
    btc = _btc_buy_resting(stack)
    stack.trade("25.80", "1.000")
    btc.trade("96900.00", "0.01000")
    stack.paper.drain()  # the events are lost
    # When reconcile runs on its schedule
    summary = reconcile_on_schedule(stack)
    # Then both fills are booked and both waiting cycles resumed
    assert (summary["repaired_fills"], summary["resumed"]) == (2, 2)
    for coid in ("fb-c000001-B1", f"fb-{BTC}_c000001-B1"):
        order = stack.repos.orders.get(coid)
        assert order is not None
        assert order.status == "FILLED", coid
    resumed = sorted(token for kind, token, _ in stack.workflow.calls if kind == "success")
    assert resumed == ["token-btc", "token-trump"]


def _starts(stack: Bot) -> list[tuple[str, dict[str, object]]]:
    return [(name, given) for kind, name, given in stack.workflow.calls if kind == "start"]


def test_a_symbol_added_to_a_trading_stack_starts_on_the_next_scheduled_run(stack: Bot) -> None:
    # Given the stack's own chain trades (its first cycle is there) and BTCUSDC, just
    # added to SYMBOLS, never traded and runs no execution
    stack.first_buy()
    stack.workflow.running = [("c000001", "arn:c000001")]
    # When reconcile runs on its schedule, then BTCUSDC's first cycle starts
    assert reconcile_on_schedule(stack)["started"] == [f"{BTC}_c000001"]
    first = {"cycle_id": f"{BTC}_c000001", "attempt": 1, "sell_attempt": 1}
    assert _starts(stack) == [(f"{BTC}_c000001", first)]
    # A run before the execution is listed finds the name taken: nothing starts twice
    assert reconcile_on_schedule(stack)["started"] == []
    # Once it runs, nothing is read or started for it
    stack.workflow.running.append((f"{BTC}_c000001", f"arn:{BTC}_c000001"))
    assert reconcile_on_schedule(stack)["started"] == []
    assert len(_starts(stack)) == 1


def test_no_chain_starts_before_the_stack_s_own_chain_has_run(stack: Bot) -> None:
    # Given a stack the deploy has not started yet (its secrets may still be placeholders)
    assert reconcile_on_schedule(stack)["started"] == []
    assert _starts(stack) == []


def test_a_symbol_whose_chain_traded_and_ended_is_not_restarted(stack: Bot) -> None:
    # Given both chains traded and no execution runs (BTCUSDC's ended, e.g. by hand)
    stack.first_buy()
    _btc_buy_resting(stack)
    stack.workflow.running = [("c000001", "arn:c000001")]
    assert reconcile_on_schedule(stack)["started"] == []
    assert _starts(stack) == []


def test_a_crossed_update_is_not_applied_to_another_symbol_s_order(stack: Bot) -> None:
    _btc_buy_resting(stack)
    (update,) = [u for u in stack.updates() if u.symbol == BTC]
    crossed = update.model_copy(update={"symbol": "TRUMPUSDC"})
    outcome = apply_order_update(crossed, stack.repos, stack.workflow, stack.clock.now)
    assert outcome["action"] == "ignored"
    assert "is a BTCUSDC order, the update says TRUMPUSDC" in outcome["reason"]
    order = stack.repos.orders.get(f"fb-{BTC}_c000001-B1")
    assert order is not None
    assert order.symbol == BTC


def test_recovery_rebuilds_and_resumes_each_symbol_s_chain(stack: Bot) -> None:
    # Given both symbols' first buys rest, and then the tables are lost
    stack.first_buy(token="token-trump")
    _btc_buy_resting(stack)
    for repo in (stack.repos.orders, stack.repos.cycles, stack.repos.fills):
        for item in repo._m.scan():  # type: ignore[attr-defined]
            item.delete()
    # When the owner runs the recovery with the wait policy for open buys
    stack.settings = stack.settings.model_copy(update={"recovery_open_buy": "wait"})
    answer = recover_symbols(stack)
    # Then each symbol's cycle is rebuilt from its own orders and resumes on its own
    assert answer["symbols"]["TRUMPUSDC"]["cycles"] == ["c000001"]
    assert answer["symbols"][BTC]["cycles"] == [f"{BTC}_c000001"]
    started = sorted(name for kind, name, _ in stack.workflow.calls if kind == "start")
    assert [name.rsplit("-", 1)[0] for name in started] == [
        f"{BTC}_c000001-recovered",
        "c000001-recovered",
    ]
    rebuilt = stack.repos.cycles.get(f"{BTC}_c000001")
    assert rebuilt is not None
    assert (rebuilt.symbol, rebuilt.buy_order_ids) == (BTC, (f"fb-{BTC}_c000001-B1",))


def test_a_buy_that_would_pass_the_portfolio_cap_waits(stack: Bot) -> None:
    # Given a 15 USDC cap and BTCUSDC's 10 USDC buy resting on the book
    stack.settings = stack.settings.model_copy(update={"portfolio_quote_cap": Decimal("15")})
    _btc_buy_resting(stack)
    stack.market("25.95", "25.96")
    asked = len(stack.decider.requests)
    # When TRUMPUSDC's cycle consults for its 10 USDC buy
    decided = consult(stack, "c000001", Side.BUY, 1)
    # Then it waits, saying why, and no model is asked
    assert decided["action"] == ConsultAction.WAIT
    assert "portfolio cap 15: the other symbols have 9.70 at risk" in str(decided["reason"])
    assert "(0.00 held, 9.70 in buys)" in str(decided["reason"])
    assert len(stack.decider.requests) == asked
    # and once the cap has room, it buys
    stack.settings = stack.settings.model_copy(update={"portfolio_quote_cap": Decimal("20")})
    stack.decider.answers.append(
        Decision(action="BUY", base_price=Decimal("25.90"), confidence=0.9)
    )
    assert consult(stack, "c000001", Side.BUY, 1)["action"] == ConsultAction.PLACE


def _btc_bought_under_a_cap(stack: Bot) -> Bot:
    """A 15 USDC portfolio cap; BTCUSDC's first buy filled, its model to answer SELL."""
    stack.settings = stack.settings.model_copy(update={"portfolio_quote_cap": Decimal("15")})
    btc = _btc_buy_resting(stack)
    btc.trade("96900.00", "0.01000")
    for update in btc.updates():
        apply_order_update(update, btc.repos, btc.workflow, btc.clock.now)
    btc.decider.answers.append(Decision(action="SELL", base_price=Decimal("99000"), confidence=0.9))
    return btc


def test_the_portfolio_cap_counts_a_position_held_with_no_sell_on_the_book(stack: Bot) -> None:
    # Given BTCUSDC's buy filled and its cycle holds the base, its sell not placed (yet)
    btc = _btc_bought_under_a_cap(stack)
    assert consult(btc, f"{BTC}_c000001", Side.SELL, 1)["action"] == ConsultAction.PLACE
    assert stack.repos.orders.open_orders(BTC) == []
    (cycle,) = stack.repos.cycles.open_cycles(BTC)
    assert cycle.held_qty > 0
    # When TRUMPUSDC's cycle consults for its 10 USDC buy, then it waits: what BTCUSDC
    # holds is at risk though no order of it rests
    stack.market("25.95", "25.96")
    decided = consult(stack, "c000001", Side.BUY, 1)
    assert decided["action"] == ConsultAction.WAIT
    cost = (cycle.held_qty * cycle.entry_price).quantize(Decimal("0.01"))
    assert f"the other symbols have {cost} at risk ({cost} held" in str(decided["reason"])
    # An ended cycle leaves the index: nothing of BTCUSDC is at risk then
    stack.repos.cycles.save(cycle.evolve(state=CycleState.STOPPED))
    assert stack.repos.cycles.open_cycles(BTC) == []


def _cap_reason(stack: Bot) -> str:
    """TRUMPUSDC's buy consultation under a 15 USDC cap: why it waits ("" when it buys)."""
    stack.market("25.95", "25.96")
    stack.decider.answers[:] = [Decision(action="BUY", base_price=Decimal("25.90"), confidence=0.9)]
    decided = consult(stack, "c000001", Side.BUY, 1)
    return "" if decided["action"] == ConsultAction.PLACE else str(decided["reason"])


def test_the_portfolio_cap_counts_a_buy_from_its_first_fill_to_its_cycle_s_totals(
    stack: Bot,
) -> None:
    stack.settings = stack.settings.model_copy(update={"portfolio_quote_cap": Decimal("15")})
    btc = _btc_buy_resting(stack)
    (buy,) = stack.repos.orders.open_orders(BTC)
    notional = (buy.price * buy.quantity).quantize(Decimal("0.01"))
    # Partly filled and resting: the whole buy counts, what it filled and what it may
    btc.trade("96900.00", str(buy.quantity * Decimal("0.6")))
    for update in btc.updates():
        apply_order_update(update, btc.repos, btc.workflow, btc.clock.now)
    (buy,) = stack.repos.orders.open_orders(BTC)
    assert 0 < buy.executed_qty < buy.quantity
    assert f"({0:.2f} held, {notional} in buys)" in _cap_reason(stack)
    # Filled in full, its cycle's totals not written yet (still BUYING): what it spent
    btc.trade("96900.00", str(buy.quantity))
    for update in btc.updates():
        apply_order_update(update, btc.repos, btc.workflow, btc.clock.now)
    assert stack.repos.orders.open_orders(BTC) == []
    (cycle,) = stack.repos.cycles.open_cycles(BTC)
    assert cycle.held_qty == 0
    filled = stack.repos.orders.get(buy.client_order_id)
    assert filled is not None
    assert f"{filled.cumulative_quote_qty:.2f} in buys)" in _cap_reason(stack)


def test_the_portfolio_cap_counts_a_resting_sell_of_a_cycle_stored_before_the_index(
    stack: Bot,
) -> None:
    # Given BTCUSDC's sell rests and its cycle item was written before the open-cycles
    # index existed (no open_symbol: the index does not show it)
    btc = _btc_bought_under_a_cap(stack)
    _place_decided(btc, Side.SELL, "token-btc-sell")
    item = stack.repos.cycles._m.get(f"{BTC}_c000001")  # type: ignore[attr-defined]
    item.open_symbol = None
    item.save()
    assert stack.repos.cycles.open_cycles(BTC) == []
    (sell,) = stack.repos.orders.open_orders(BTC)
    # Then TRUMPUSDC's buy waits: the sell counts at its price
    at_price = (sell.price * sell.quantity).quantize(Decimal("0.01"))
    assert f"({at_price} held, 0.00 in buys)" in _cap_reason(stack)


def test_the_base_a_closed_cycle_could_not_sell_is_carried_into_the_next(stack: Bot) -> None:
    from flipbot.app.accounting import with_totals
    from flipbot.domain.entities import Cycle
    from flipbot.domain.model import Fill

    # Given BTCUSDC's cycle 1 closed holding 0.0000099 BTC: its buy of 0.0001 paid its
    # commission in BTC, and a sell can only take whole 0.00001 steps
    stack.repos.cycles.create(
        Cycle(
            f"{BTC}_c000001",
            BTC,
            CycleState.COMPLETED,
            0,
            0,
            held_qty=Decimal("0.0000099"),
        )
    )
    btc = stack.for_symbol(BTC)
    btc.market("97000.00", "97000.01")
    btc.decider.answers.append(Decision(action="BUY", base_price=Decimal("96990"), confidence=0.9))
    # When cycle 2 begins, and buys the same 0.0001 with the same commission
    consult(btc, f"{BTC}_c000002", Side.BUY, 1)
    cycle = stack.repos.cycles.get(f"{BTC}_c000002")
    assert cycle is not None
    assert cycle.carried_qty == Decimal("0.0000099")
    coid = f"fb-{BTC}_c000002-B1"
    bought = Fill(
        BTC,
        1,
        coid,
        1,
        Side.BUY,
        Decimal("96990"),
        Decimal("0.0001"),
        Decimal("9.699"),
        Decimal("0.0000001"),
        "BTC",
        True,
        0,
    )
    cycle = with_totals(cycle.evolve(buy_order_ids=(coid,)), [bought], "BTC", "USDC")
    # Then it holds both, and sells 0.0001: one step more than its own buy leaves
    assert cycle.held_qty == Decimal("0.0001098")
    assert stack.exchange.symbol_rules(BTC).floor_qty(cycle.held_qty) == Decimal("0.00010")
    # and the chain's third, after a cycle that has not completed, carries nothing
    btc.decider.answers.append(Decision(action="BUY", base_price=Decimal("96990"), confidence=0.9))
    consult(btc, f"{BTC}_c000003", Side.BUY, 1)
    third = stack.repos.cycles.get(f"{BTC}_c000003")
    assert third is not None
    assert third.carried_qty == 0


def test_reconcile_leaves_a_resting_order_it_finds_unchanged_as_it_was(stack: Bot) -> None:
    # Given both symbols' buys rest on the book, untouched
    stack.first_buy(token="token-trump")
    _btc_buy_resting(stack)
    before = {o.client_order_id: o for o in stack.repos.orders.all()}
    # When reconcile runs on its schedule an hour later
    stack.clock.now += 3_600_000
    summary = reconcile_on_schedule(stack)
    # Then it found nothing to repair, and wrote neither order again
    assert summary["repaired_fills"] == 0
    after = {o.client_order_id: o for o in stack.repos.orders.all()}
    assert after == before


def test_a_cycle_whose_id_now_names_another_symbol_is_refused(stack: Bot) -> None:
    from flipbot.domain.entities import Cycle
    from flipbot.domain.errors import ConfigurationError

    # Given c000010 traded ETHUSDC when ETHUSDC was the stack's SYMBOL
    stack.repos.cycles.create(Cycle("c000010", "ETHUSDC", CycleState.READY_TO_SELL, 0, 0))
    # When the stack's SYMBOL is now TRUMPUSDC and the cycle consults for its sell
    with pytest.raises(ConfigurationError, match="SYMBOL was changed while it was open"):
        consult(stack, "c000010", Side.SELL, 1)
    assert stack.exchange.open_orders("TRUMPUSDC") == []


def test_swept_dust_is_dropped_from_the_sell_not_taken_for_a_lost_position(stack: Bot) -> None:
    # Given cycle 2 carried 0.0009 TRUMP in and bought its own 0.384 (net)
    from flipbot.domain.entities import Cycle

    stack.repos.cycles.create(
        Cycle("c000001", "TRUMPUSDC", CycleState.COMPLETED, 0, 0, held_qty=Decimal("0.0009"))
    )
    stack.decider.answers.append(
        Decision(action="BUY", base_price=Decimal("25.90"), confidence=0.9)
    )
    stack.market("25.95", "25.96")
    consult(stack, "c000002", Side.BUY, 1)
    stack.bought("c000002")
    cycle = stack.repos.cycles.get("c000002")
    assert cycle is not None
    assert cycle.carried_qty == Decimal("0.0009")
    # and the owner converted the account's small balances: only the cycle's own is left
    assert stack.paper.balance("TRUMP") == (Decimal("0.384615"), 0)
    # When it consults for its sell
    stack.decider.answers.append(Decision(action="SELL", base_price=Decimal("27"), confidence=0.9))
    decided = consult(stack, "c000002", Side.SELL, 1)
    # Then it sells its own 0.384, and the carry is dropped
    assert decided["action"] == ConsultAction.PLACE, decided["reason"]
    assert decided["quantity"] == "0.384"
    cycle = stack.repos.cycles.get("c000002")
    assert cycle is not None
    assert cycle.carried_qty == 0
