"""The hostile world's own rules: seeded, quiet outside its window, never mistaking its
orders for the bot's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot_dev.paper.engine import PaperExchange
from flipbot_dev.twin.runner import ReplayState
from flipbot_dev.twin.world import BY_HAND_ID, World, WorldContext


def _ctx(now: list[int]) -> WorldContext:
    exchange = PaperExchange(["TRUMPUSDC"], clock=lambda: now[0], balances={"USDC": "100"})
    exchange.on_book(now[0], "10.00", "50", "10.01", "50", symbol="TRUMPUSDC")

    def refuse(*_: Any) -> Any:
        raise AssertionError("not reached in these tests")

    return WorldContext(
        exchange=exchange,
        symbol="TRUMPUSDC",
        state=ReplayState(),
        sfn=None,
        cloud=None,
        now_ms=lambda: now[0],
        publish=refuse,
        invoke=refuse,
        by_hand={},
    )


def test_given_an_unknown_scenario_then_the_error_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown world scenario 'typo'.*exchange-ended"):
        World("typo", 1)


def test_given_the_manual_world_then_it_acts_only_inside_its_window() -> None:
    now = [1_000_000]
    ctx = _ctx(now)
    world = World("manual", 3)
    assert world.tick(ctx, start_ms=2_000_000, stop_ms=9_000_000_000) is None
    acted = []
    while now[0] < 40_000_000:
        now[0] += 60_000
        did = world.tick(ctx, start_ms=2_000_000, stop_ms=30_000_000)
        if did is not None:
            acted.append((now[0], did))
    assert acted, "the manual world never acted in eight hours"
    assert all(2_000_000 <= at < 30_000_000 for at, _ in acted)
    assert sum(world.injections.values()) == len(acted)


def test_given_the_worlds_own_orders_then_they_are_not_taken_for_the_bots() -> None:
    now = [1_000_000]
    ctx = _ctx(now)
    world = World("exchange-ended", 1)
    ctx.exchange.place_order("TRUMPUSDC", "BUY", "LIMIT", "1.00", "9.00", "GTC", "fb-c000001-B1")
    ctx.exchange.place_order("TRUMPUSDC", "BUY", "LIMIT", "1.00", "9.00", "GTC", BY_HAND_ID + "x")
    assert [o["clientOrderId"] for o in world.bot_orders(ctx)] == ["fb-c000001-B1"]


def test_given_a_seed_then_the_world_does_the_same_things() -> None:
    runs = []
    for _ in range(2):
        now = [1_000_000]
        ctx = _ctx(now)
        world = World("manual", 11)
        done = []
        while now[0] < 20_000_000:
            now[0] += 60_000
            done.append(world.tick(ctx, start_ms=0, stop_ms=10**12))
        runs.append((done, dict(world.injections), ctx.state.withdrawn))
    assert runs[0] == runs[1]
    assert any(runs[0][0])
    assert all(isinstance(v, Decimal) for v in runs[0][2].values())
