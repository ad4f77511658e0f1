"""Every file in ``events/`` through its function, as ``sam local invoke`` would run it.

Each function is found through the template's ``CodeUri`` + ``Handler`` and runs with
the template's environment on moto (:mod:`sam_local`), behind the Lambda API. Files are
named ``<function_snake>_*.json``; the one other file is the trade cycle's execution
input, started on the state machine.

* The files replay the cycle they describe (buy consulted, placed, its updates, the sell,
  the timeout cancel, the record, the reconcile runs); each invocation's documented
  outcome is asserted.
* Every function on every file: a function given another function's event answers
  with a result or a domain error (``InvalidEvent`` naming the field...), never a crash
  such as ``KeyError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from flipbot.domain import errors
from flipbot_dev.twin.template import load_template

from .sam_local import EVENTS, TEMPLATE, Invocation, event, local_stack

#: Files that are not a function's event, and what consumes them.
NON_FUNCTION_EVENTS = {"start_cycle.json": "StateMachine"}


def _snake(logical_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()


FUNCTIONS = {_snake(logical_id): logical_id for logical_id in load_template(TEMPLATE).functions}
EVENT_FILES = sorted(path.name for path in EVENTS.glob("*.json"))


def owner(file_name: str) -> str | None:
    """The function an event file belongs to: the longest ``<snake>_`` prefix."""
    stem = file_name.removesuffix(".json")
    matches = [s for s in FUNCTIONS if stem == s or stem.startswith(f"{s}_")]
    return FUNCTIONS[max(matches, key=len)] if matches else None


def _domain_errors() -> set[str]:
    found, pending = set(), [errors.FlipbotError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return found


DOMAIN_ERRORS = _domain_errors()

#: Crashes found by this test and reported, not yet fixed: (function, file) -> what happens.
#: The test xfails while they crash and fails once one is fixed, to be taken off the list.
KNOWN_CRASHES: dict[tuple[str, str], str] = {}

Check = Callable[[Any], bool]


def one_of(*values: Any) -> Check:
    return lambda value: value in values


def is_type(*types: type) -> Check:
    return lambda value: isinstance(value, types) and not isinstance(value, bool)


def decimal_string(value: Any) -> bool:
    return isinstance(value, str) and Decimal(value).is_finite()


DECISION = {
    "action": one_of("PLACE", "WAIT"),
    "wait_seconds": is_type(int),
    "consultation_id": lambda v: isinstance(v, str) and v.startswith("c000001-"),
    "confidence": is_type(int, float),
    "reason": is_type(str),
}
RECONCILED = {"repaired_fills": is_type(int), "resumed": is_type(int), "heartbeats": is_type(int)}

#: The cycle the files describe, in order, with what each invocation returns. Client order
#: ids carry the stack's prefix: fb + the first 8 hex digits of the stack id, 51af3dc0 for
#: the stack ``sam local invoke`` and the twin make up.
SCENARIO: list[tuple[str, dict[str, Any]]] = [
    ("consult_ai_buy.json", DECISION),
    (
        "place_order_buy.json",
        {"client_order_id": "fb51af3dc0-c000001-B1", "status": "NEW", "order_id": is_type(int)},
    ),
    (
        "on_order_update_new.json",
        {
            "client_order_id": "fb51af3dc0-c000001-B1",
            "status": "NEW",
            "new_fill": False,
            "resumed": "",
        },
    ),
    # The partial and filled files carry an order id and trade ids the paper exchange never
    # made (its own fill of the buy has others): the function confirms each fill with the
    # exchange before booking it, so it books neither and says why
    (
        "on_order_update_partial.json",
        {"action": "ignored", "reason": lambda v: "does not know order fb51af3dc0-c000001-B1" in v},
    ),
    (
        "on_order_update_filled.json",
        {"action": "ignored", "reason": lambda v: "does not know order fb51af3dc0-c000001-B1" in v},
    ),
    # the books hold what the exchange filled, so the sell leg sells exactly that
    ("consult_ai_sell.json", DECISION),
    ("place_order_sell.json", {"client_order_id": "fb51af3dc0-c000001-S1", "status": "NEW"}),
    # the buy had filled before its timeout: nothing to cancel, the fills are reported
    (
        "cancel_order.json",
        {"client_order_id": "fb51af3dc0-c000001-B1", "status": "FILLED", "executed": True},
    ),
    # the sell still rests on the book: the cycle is not closed before it is sold
    ("record_trade.json", {"errorType": "CycleNotSold"}),
    ("reconcile_schedule.json", RECONCILED),
    ("reconcile_stream_gap.json", RECONCILED),
    ("reconcile_cycle.json", {**RECONCILED, "resume": is_type(str), "reason": is_type(str)}),
]


# --------------------------------------------------------------------------- coverage
def test_every_event_file_belongs_to_a_function_or_the_state_machine() -> None:
    orphans = [n for n in EVENT_FILES if owner(n) is None and n not in NON_FUNCTION_EVENTS]
    assert orphans == [], f"name them <function_snake>_*.json, one of {sorted(FUNCTIONS)}"


def test_every_function_has_an_event_file() -> None:
    covered = {owner(name) for name in EVENT_FILES}
    assert set(FUNCTIONS.values()) <= covered


def test_the_scenario_invokes_every_function_file() -> None:
    assert sorted(name for name, _ in SCENARIO) == sorted(
        name for name in EVENT_FILES if name not in NON_FUNCTION_EVENTS
    )


# --------------------------------------------------------------------------- the cycle
@pytest.fixture(scope="module")
def scenario() -> dict[str, Invocation]:
    """Invoke each file's function in the order of the cycle; what each returned."""
    outcomes: dict[str, Invocation] = {}
    with local_stack() as stack:
        stack.seed_market(bid="8.49", ask="8.51")
        for name, _ in SCENARIO:
            outcomes[name] = stack.invoke(str(owner(name)), event(name))
            if name == "place_order_buy.json":
                # the market trades through the buy price: the paper exchange fills it,
                # as the listener's OrderUpdated files that follow report
                stack.exchange.on_trade(
                    stack.scheduler.now_ms, Decimal("8.48"), Decimal("50"), True
                )
                stack.exchange.outbox.clear()
    return outcomes


@pytest.mark.parametrize(("name", "expected"), SCENARIO, ids=[n for n, _ in SCENARIO])
def test_event_file_gives_its_documented_outcome(
    scenario: dict[str, Invocation], name: str, expected: dict[str, Any]
) -> None:
    outcome = scenario[name]
    if "errorType" in expected:  # a documented refusal
        assert outcome.error_type == expected["errorType"], f"{name}: {outcome.payload}"
        assert outcome.error_message
        return
    assert outcome.error_type is None, f"{owner(name)} on {name}: {outcome.payload}"
    result = outcome.payload
    assert isinstance(result, dict)
    json.dumps(result)  # what Step Functions receives
    for key, want in expected.items():
        assert key in result, f"{name}: no {key!r} in {result}"
        ok = want(result[key]) if callable(want) else result[key] == want
        assert ok, f"{name}: {key}={result[key]!r} in {result}"


def test_start_cycle_file_starts_the_trade_cycle_with_a_buy_consultation() -> None:
    import boto3

    assert NON_FUNCTION_EVENTS["start_cycle.json"] == "StateMachine"
    with local_stack() as stack:
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        execution = sfn.start_execution(
            stateMachineArn=stack.cloud.state_machine_arn,
            name="c000001",
            input=json.dumps(event("start_cycle.json")),
        )["executionArn"]
        stack.scheduler.settle()
        consult = stack.cloud.function_names["ConsultAiFunction"]
        assert stack.registry.invocations == {consult: 1}
        # no market snapshot yet: the answer is WAIT, and the execution waits to ask again
        assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        sfn.stop_execution(executionArn=execution, error="TestEnded")


# --------------------------------------------------------------------------- robustness
@pytest.fixture(scope="module")
def every_pair() -> dict[tuple[str, str], Invocation]:
    """Every function on every function's event file, on a stack with a market."""
    outcomes: dict[tuple[str, str], Invocation] = {}
    with local_stack() as stack:
        stack.seed_market(bid="8.49", ask="8.51")
        for name in EVENT_FILES:
            for logical_id in sorted(FUNCTIONS.values()):
                outcomes[(logical_id, name)] = stack.invoke(logical_id, event(name))
    return outcomes


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS.values()))
def test_a_function_answers_any_event_file_with_a_result_or_a_domain_error(
    every_pair: dict[tuple[str, str], Invocation], logical_id: str
) -> None:
    crashes = {
        name: f"{outcome.error_type}: {outcome.error_message[:200]}"
        for (fn, name), outcome in every_pair.items()
        if fn == logical_id
        and outcome.error_type is not None
        and (outcome.error_type not in DOMAIN_ERRORS or not outcome.error_message)
    }
    known = {name for fn, name in KNOWN_CRASHES if fn == logical_id}
    assert {n: c for n, c in crashes.items() if n not in known} == {}
    results = [
        o.payload for (fn, _), o in every_pair.items() if fn == logical_id and o.error_type is None
    ]
    assert all(isinstance(r, dict) for r in results)
    fixed = known - set(crashes)
    assert not fixed, f"fixed, take them off KNOWN_CRASHES: {sorted(fixed)}"
    if known:
        pytest.xfail("; ".join(KNOWN_CRASHES[(logical_id, name)] for name in sorted(known)))


def test_a_foreign_event_is_rejected_naming_what_is_wrong(
    every_pair: dict[tuple[str, str], Invocation],
) -> None:
    # Given the schedule's event, When the order-placing function gets it, Then it is an
    # InvalidEvent naming the missing fields rather than a KeyError
    outcome = every_pair[("PlaceOrderFunction", "reconcile_schedule.json")]
    assert outcome.error_type == "InvalidEvent"
    assert "task_token" in outcome.error_message
    assert "cycle_id" in outcome.error_message
    # And an OrderUpdated carrying a consult request's body is rejected the same way
    outcome = every_pair[("OnOrderUpdateFunction", "consult_ai_buy.json")]
    assert outcome.error_type == "InvalidEvent"
    assert "detail" in outcome.error_message
