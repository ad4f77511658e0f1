"""Step Functions ends an execution whose history reaches 25,000 events (States.Runtime).

A cycle's wait loops (consult, wait, consult again; the resting sell's recheck) could
turn for days, so each turn is counted and, after a budget of turns, the cycle goes on
in a new execution. Read from the definition itself: every loop passes a turn counter
(or Reconcile, which gives up after MAX_REPAIRS_PER_CYCLE repairs), and the most events
any run of turns and repairs can cost, retries included, stays under the quota.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flipbot.app.reconcile import MAX_REPAIRS_PER_CYCLE

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "trade_cycle.asl.json").read_text(encoding="utf-8"))
STATES: dict[str, dict[str, Any]] = ASL["States"]
HISTORY_QUOTA = 25_000
#: events an execution spends outside its loops (start, first states, the end)
OVERHEAD = 200


def _next(state: dict[str, Any]) -> set[str]:
    targets = {state.get("Next"), state.get("Default")}
    targets |= {choice["Next"] for choice in state.get("Choices", [])}
    targets |= {catch["Next"] for catch in state.get("Catch", [])}
    return {t for t in targets if t}


def _counts_a_turn(state: dict[str, Any]) -> bool:
    return (
        state["Type"] == "Pass"
        and state.get("ResultPath") == "$.turns"
        and state.get("Parameters") == {"n.$": "States.MathAdd($.turns.n, 1)"}
    )


def _events(state: dict[str, Any]) -> int:
    """The most history events one visit of ``state`` writes: entered and exited, a
    task's scheduled, started and ended (submitted too for a callback), and as many
    again, but the entered and exited, for each retry it may make."""
    if state["Type"] != "Task":
        return 2
    callback = state["Resource"].endswith(".waitForTaskToken")
    events, per_retry = (6, 4) if callback else (5, 3)
    retries = sum(rule.get("MaxAttempts", 3) for rule in state.get("Retry", []))
    return events + per_retry * retries


def _budget() -> int:
    (budget,) = {
        choice["NumericGreaterThanEquals"]
        for state in STATES.values()
        for choice in state.get("Choices", [])
        if choice.get("Variable") == "$.turns.n"
    }
    return int(budget)


def _bounded() -> set[str]:
    """The states a loop may pass to be bounded: the turn counters and Reconcile."""
    counters = {name for name, state in STATES.items() if _counts_a_turn(state)}
    assert counters, "no state counts the turns of a wait loop"
    return counters | {"Reconcile"}


def test_every_loop_of_the_definition_passes_a_turn_counter_or_reconcile() -> None:
    counters = _bounded()
    # with the counters taken out, the graph has no cycle left
    visiting: set[str] = set()
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> None:
        if name in counters or name in done:
            return
        assert name not in visiting, f"a loop counts no turn: {' -> '.join([*trail, name])}"
        visiting.add(name)
        for target in sorted(_next(STATES[name])):
            walk(target, [*trail, name])
        visiting.discard(name)
        done.add(name)

    walk(ASL["StartAt"], [])
    for counter in sorted(counters):
        for target in sorted(_next(STATES[counter])):
            walk(target, [counter])


def _longest(start: str, targets: set[str], stops: set[str], end: float) -> float:
    """The most events from leaving ``start`` until a state of ``targets`` is entered;
    a path that enters one of ``stops`` first does not count, one that ends the
    execution counts as ``end``."""
    memo: dict[str, float] = {}

    def walk(name: str) -> float:
        if name in targets:
            return 0
        if name in stops:
            return float("-inf")
        if name not in memo:
            ahead = [walk(t) for t in _next(STATES[name])]
            memo[name] = _events(STATES[name]) + max(ahead, default=end)
        return memo[name]

    return _events(STATES[start]) + max(walk(t) for t in _next(STATES[start]))


def test_the_turn_budget_keeps_every_execution_under_the_history_quota() -> None:
    bounded = _bounded()
    groups = {
        "buy": {"BuyTurn"},
        "sell": {n for n in bounded if n.startswith("Sell")},
    }
    assert set().union(*groups.values()) == bounded - {"Reconcile"}
    # a turn of one loop that comes back to a counter of the same leg
    per_turn = max(
        _longest(counter, group, bounded - group, float("-inf"))
        for group in groups.values()
        for counter in group
    )
    # moving on (buy to sell, sell to the end), once an execution: any path to the next
    # counter or to Reconcile; Reconcile's own runs, each a repair, until it gives up
    moving_on = max(_longest(c, bounded, set(), 0) for c in bounded)
    per_repair = _longest("Reconcile", bounded, set(), 0)
    worst = (
        _budget() * per_turn
        + len(groups) * moving_on
        + (MAX_REPAIRS_PER_CYCLE + 1) * per_repair
        + OVERHEAD
    )
    assert per_turn >= 2 * 2 + 5 + 2  # the counter, its budget, a consultation, a wait
    assert worst <= HISTORY_QUOTA, (_budget(), per_turn, moving_on, per_repair)
