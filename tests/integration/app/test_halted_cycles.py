"""No silent halt: a cycle whose execution was stopped by hand, or whose position left the
account, is stopped with a reason (and counted for the CycleHalted alarm), never left open
and never looping."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.app.consult import consult
from flipbot.app.fills import apply_order_update
from flipbot.app.orders import place_order
from flipbot.app.reconcile import reconcile_cycle, reconcile_on_schedule
from flipbot.domain.cycle import CycleState
from flipbot.domain.decision import Decision
from flipbot.domain.errors import PositionGone
from flipbot.domain.model import Side

from .conftest import Bot

CYCLE = "c000004"


def _selling(bot: Bot) -> None:
    """c000004 bought 0.385 at 25.90 (0.384 after commission); its sell rests at 26.40."""
    bot.bought(CYCLE)
    bot.decider.answers.append(Decision(action="SELL", base_price=Decimal("26.40"), confidence=0.9))
    sell = consult(bot, CYCLE, Side.SELL, 1)
    place_order(
        bot,
        cycle_id=CYCLE,
        leg=Side.SELL,
        attempt=1,
        price=Decimal(sell["price"]),
        quantity=Decimal(sell["quantity"]),
        task_token="sell-token",
    )
    bot.updates()
    bot.workflow.calls.clear()


def _stopped_by_hand(bot: Bot) -> None:
    bot.workflow.ended = [(CYCLE, "ABORTED")]
    bot.workflow.running = []


def test_given_an_execution_stopped_by_hand_while_selling_then_the_cycle_is_stopped_with_reason(
    bot: Bot,
) -> None:
    # Given: the cycle's sell rests and its execution was stopped in the console
    _selling(bot)
    _stopped_by_hand(bot)
    # When: the scheduled reconcile runs
    result = reconcile_on_schedule(bot)
    # Then: the cycle is stopped with the reason, counted, and nothing of it rests
    assert result["halted"] == [CYCLE]
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.state is CycleState.STOPPED
    assert cycle.stop_reason.startswith(f"execution stopped by hand ({CYCLE})")
    assert "holds 0.384" in cycle.stop_reason
    assert bot.paper.open_orders("TRUMPUSDC") == []
    # and no execution is started again: whoever stopped it meant the bot to stop
    assert not [c for c in bot.workflow.calls if c[0] == "start"]
    # When: it runs again, the stopped cycle is left as it is
    assert reconcile_on_schedule(bot)["halted"] == []


def test_given_a_sell_filled_while_its_execution_was_stopped_then_the_fill_is_booked_and_closed(
    bot: Bot,
) -> None:
    # Given: the execution was stopped by hand, then the sell filled with nobody listening
    _selling(bot)
    _stopped_by_hand(bot)
    bot.trade("26.50", "1.000", taker_sold=False)
    bot.updates()  # lost: no execution waits for them
    # When: the scheduled reconcile runs
    result = reconcile_on_schedule(bot)
    # Then: what filled is booked and the cycle closes as sold; nothing is halted
    assert result["halted"] == []
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.state is CycleState.COMPLETED
    assert cycle.sold_qty == Decimal("0.384")
    assert bot.repos.trades.get("TRUMPUSDC", CYCLE) is not None


def test_given_a_running_execution_of_the_cycle_then_nothing_is_stopped(bot: Bot) -> None:
    # Given: an earlier execution was stopped, and the cycle runs again under another name
    _selling(bot)
    bot.workflow.ended = [(CYCLE, "ABORTED")]
    bot.workflow.running = [(f"{CYCLE}-recovered-1", "arn:recovered")]
    # When / Then: the cycle goes on
    assert reconcile_on_schedule(bot)["halted"] == []
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.state is CycleState.SELLING
    assert len(bot.paper.open_orders("TRUMPUSDC")) == 1


def test_given_two_executions_of_one_cycle_then_the_one_started_by_hand_is_stopped(
    bot: Bot,
) -> None:
    _selling(bot)
    bot.workflow.running = [(f"{CYCLE}-by-hand", "arn:by-hand"), (CYCLE, "arn:own")]
    result = reconcile_on_schedule(bot)
    assert result["stopped_executions"] == [f"{CYCLE}-by-hand"]
    assert [c[:2] for c in bot.workflow.calls if c[0] == "stop"] == [("stop", "arn:by-hand")]


@pytest.mark.parametrize(
    ("running", "kept"),
    [
        ([CYCLE, f"{CYCLE}-continued-1"], f"{CYCLE}-continued-1"),
        ([f"{CYCLE}-continued-2", f"{CYCLE}-continued-10"], f"{CYCLE}-continued-10"),
        (
            [f"{CYCLE}-by-hand", f"{CYCLE}-recovered-5-continued-1"],
            f"{CYCLE}-recovered-5-continued-1",
        ),
        ([f"{CYCLE}-recovered-9", f"{CYCLE}-recovered-5-continued-3"], f"{CYCLE}-recovered-9"),
    ],
)
def test_given_a_long_wait_continued_then_its_latest_continuation_is_the_one_kept(
    bot: Bot, running: list[str], kept: str
) -> None:
    # Given: a long wait went on in a new execution (named after the one it continues)
    _selling(bot)
    bot.workflow.running = [(name, f"arn:{name}") for name in running]
    # When: reconcile finds two executions of the cycle
    result = reconcile_on_schedule(bot)
    # Then: the bot's latest goes on, the other is stopped; nothing is halted
    assert result["stopped_executions"] == [n for n in running if n != kept]
    assert result["halted"] == []


def _withdrawn(bot: Bot) -> None:
    """The sell is canceled in the app and every TRUMP withdrawn from the account."""
    bot.paper.cancel_order("TRUMPUSDC", orig_client_order_id=f"fb-{CYCLE}-S1")
    for update in bot.updates():
        apply_order_update(update, bot.repos, bot.workflow, bot.clock.now)
    bot.paper.withdraw("TRUMP")


def test_given_the_base_asset_withdrawn_when_the_sell_is_consulted_then_position_gone(
    bot: Bot,
) -> None:
    _selling(bot)
    _withdrawn(bot)
    with pytest.raises(PositionGone) as raised:
        consult(bot, CYCLE, Side.SELL, 2)
    assert str(raised.value) == (
        "position gone from the account: held 0.38461500 TRUMP, account has 0 TRUMP"
    )


def test_given_position_gone_when_reconciled_then_the_cycle_stops_and_does_not_loop(
    bot: Bot,
) -> None:
    # Given: the sell leg failed because the position left the account
    _selling(bot)
    _withdrawn(bot)
    error = {"Error": "PositionGone", "Cause": "position gone from the account"}
    # When: the cycle's reconcile runs
    result = reconcile_cycle(bot, cycle_id=CYCLE, error=error)
    # Then: it stops the cycle with the reason, for the state machine to end the execution
    assert result["resume"] == "STOP"
    assert result["halted"] == [CYCLE]
    assert result["reason"].startswith("position gone from the account: held 0.384")
    cycle = bot.repos.cycles.get(CYCLE)
    assert cycle is not None
    assert cycle.state is CycleState.STOPPED
    assert cycle.stop_reason == result["reason"]
    # and a second call (a retried task) says the same, with nothing new halted
    again = reconcile_cycle(bot, cycle_id=CYCLE, error=error)
    assert again["resume"] == "STOP"
    assert "halted" not in again
