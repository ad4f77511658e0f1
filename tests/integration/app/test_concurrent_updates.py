"""Order updates applied concurrently: without reserved concurrency, Lambda runs two
updates of one order at the same time. Each test replays one interleaving of two such
invocations exactly, by running the second one inside a read of the first."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from flipbot.app.fills import apply_order_update

from .conftest import Bot

ORDER = "fb-c000001-B1"


def _partly_then_fully_filled(bot: Bot) -> tuple[Any, Any]:
    """A buy filled in two trades: the PARTIALLY_FILLED and the FILLED update."""
    bot.first_buy()
    bot.trade("25.89", "0.200")
    bot.trade("25.88", "0.500")
    partly, fully = [u for u in bot.updates() if u.trade_id >= 0]
    assert (partly.status, fully.status) == ("PARTIALLY_FILLED", "FILLED")
    return partly, fully


def _apply(bot: Bot, update: Any) -> dict[str, Any]:
    return apply_order_update(update, bot.repos, bot.workflow, bot.clock.now)


def _interleaved(bot: Bot, other: Callable[[], Any], *, after_read: bool) -> None:
    """Run ``other`` once, inside the next read of the order's fills (before the read
    answers, or after it answered)."""
    fills = bot.repos.fills
    read = fills.for_order
    pending = [other]

    def for_order(client_order_id: str) -> Any:
        if pending and not after_read:
            pending.pop()()
        found = read(client_order_id)
        if pending and after_read:
            pending.pop()()
        return found

    fills.for_order = for_order  # type: ignore[method-assign]


def test_given_the_filled_update_lands_while_the_partial_one_runs_then_the_order_stays_filled(
    bot: Bot,
) -> None:
    partly, fully = _partly_then_fully_filled(bot)
    # When: the FILLED update runs whole while the PARTIALLY_FILLED one is between its
    # read of the order and its write.
    _interleaved(bot, lambda: _apply(bot, fully), after_read=False)
    _apply(bot, partly)
    # Then: the order does not move back, and the task was resumed once with both fills.
    order = bot.repos.orders.get(ORDER)
    assert order is not None
    assert order.status == "FILLED"
    assert order.executed_qty == Decimal("0.385")
    assert order.token_state == "SUCCEEDED"
    successes = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(successes) == 1
    assert Decimal(successes[0][2]["executed_qty"]) == Decimal("0.385")


def test_given_the_partial_update_lands_while_the_filled_one_runs_then_the_task_is_resumed(
    bot: Bot,
) -> None:
    partly, fully = _partly_then_fully_filled(bot)
    # When: the FILLED update read the fills (its own only) and the PARTIALLY_FILLED
    # update then runs whole before the FILLED one writes.
    _interleaved(bot, lambda: _apply(bot, partly), after_read=True)
    _apply(bot, fully)
    # Then: one of them saw both fills on a FILLED order: the waiting task is resumed once.
    order = bot.repos.orders.get(ORDER)
    assert order is not None
    assert order.status == "FILLED"
    successes = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(successes) == 1
    assert Decimal(successes[0][2]["executed_qty"]) == Decimal("0.385")
    assert order.token_state == "SUCCEEDED"


def test_given_a_fill_update_then_the_order_and_its_fills_are_read_once_each(bot: Bot) -> None:
    partly, fully = _partly_then_fully_filled(bot)
    reads: list[str] = []
    orders, fills = bot.repos.orders, bot.repos.fills
    get, for_order = orders.get, fills.for_order

    def counted_get(client_order_id: str) -> Any:
        reads.append("order")
        return get(client_order_id)

    def counted_for_order(client_order_id: str) -> Any:
        reads.append("fills")
        return for_order(client_order_id)

    orders.get = counted_get  # type: ignore[method-assign]
    fills.for_order = counted_for_order  # type: ignore[method-assign]
    # When: both updates are applied, one after the other.
    _apply(bot, partly)
    _apply(bot, fully)
    # Then: each read its fills once (the write's own read of the order is the only one
    # besides), and the second resumed the task with both fills.
    assert reads == ["fills", "fills"]
    successes = [c for c in bot.workflow.calls if c[0] == "success"]
    assert len(successes) == 1
    assert Decimal(successes[0][2]["executed_qty"]) == Decimal("0.385")
