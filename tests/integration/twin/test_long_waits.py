"""A cycle that waits for days goes on in new executions instead of failing at Step
Functions' history quota.

The real definition runs in the twin with stand-in functions: the decision maker
answers WAIT (or the resting sell's check answers KEEP) for hundreds of turns, then the
cycle trades. The twin's history quota is lowered to 4,000 events so a few hundred turns
reach it (the definition's turn budget keeps every execution under AWS's 25,000;
tests/unit/test_history_budget.py checks that from the definition). Without the turn
budget each of these executions fails with States.Runtime.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flipbot_dev.twin.limits import Limits, Quotas
from flipbot_dev.twin.moto_hooks import LambdaRegistry, VirtualScheduler, install
from flipbot_dev.twin.template import substitute_definition

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
QUOTA = 4_000
TURNS = 401
FUNCTIONS = {
    "ConsultAiFunctionArn": "consult",
    "PlaceOrderFunctionArn": "place",
    "CancelOrderFunctionArn": "cancel",
    "RecordTradeFunctionArn": "record",
    "ReconcileFunctionArn": "reconcile",
}


@dataclass
class Desk:
    """The stand-in functions: WAIT (or KEEP) for ``turns`` answers, then trade."""

    waiting_leg: str  # "BUY", "SELL", or "CHECK" (the resting sell is rechecked)
    turns: int
    calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens: list[tuple[str, str]] = field(default_factory=list)

    def seen(self, name: str, event: dict[str, Any]) -> int:
        self.calls.setdefault(name, []).append(event)
        return len(self.calls[name])

    def consult(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        if event.get("purpose") == "check":
            checks = self.seen("check", event)
            return {"action": "KEEP", "reason": f"check {checks}"}
        leg = event["leg"]
        n = self.seen(f"consult {leg}", event)
        waiting = self.waiting_leg == leg and n <= self.turns
        return {
            "action": "WAIT" if waiting else "PLACE",
            "price": "10.00" if leg == "BUY" else "10.30",
            "quantity": "1.0",
            "wait_seconds": 60,
            "timeout_seconds": 60 if self.waiting_leg == "CHECK" and leg == "SELL" else 3600,
            "consultation_id": f"{event['cycle_id']}-{leg}-{n}",
            "confidence": 0.9,
            "reason": "waiting" if waiting else "go",
            "heartbeat_seconds": 900,
            "guard": "",
            "reprice_seconds": 0,
        }

    def place(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.seen(f"place {event['leg']}", event)
        # a wait that timed out took its token with it: only the latest one is live
        self.tokens = [(leg, t) for leg, t in self.tokens if leg != event["leg"]]
        self.tokens.append((event["leg"], event["task_token"]))
        return {}

    def record(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.seen("record", event)
        return {"next_cycle_id": "c000002", "continue": False}

    def unexpected(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        raise AssertionError(f"not expected on this path: {event}")

    def fill(self, leg: str) -> bool:
        """Whether the waiting order of ``leg`` fills now."""
        if leg == "SELL" and self.waiting_leg == "CHECK":
            return len(self.calls.get("check", [])) >= self.turns
        return True


@pytest.fixture
def twin() -> Iterator[tuple[VirtualScheduler, LambdaRegistry, Limits, Any]]:
    limits = Limits(quotas=Quotas(history_events=QUOTA))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        scheduler = VirtualScheduler(now_ms=1_700_000_000_000)
        registry = LambdaRegistry()
        with install(scheduler, registry, limits):
            lam = boto3.client("lambda", region_name=REGION)
            role = boto3.client("iam", region_name=REGION).create_role(
                RoleName="r", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
            for name in FUNCTIONS.values():
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role,
                    Handler="app.handler",
                    Code={"ZipFile": b"x"},
                )
            sfn = boto3.client("stepfunctions", region_name=REGION)
            text = (ROOT / "statemachine" / "trade_cycle.asl.json").read_text(encoding="utf-8")
            machine = sfn.create_state_machine(
                name="trade-cycle", definition=substitute_definition(text, FUNCTIONS), roleArn=ROLE
            )
            yield scheduler, registry, limits, (sfn, machine["stateMachineArn"])


def _run(twin: Any, desk: Desk) -> list[dict[str, Any]]:
    """Start cycle c000001 and drive virtual time until no execution is live; returns
    every execution, oldest first."""
    scheduler, registry, _, (sfn, machine) = twin
    registry.register("consult", desk.consult, {})
    registry.register("place", desk.place, {})
    registry.register("record", desk.record, {})
    registry.register("cancel", desk.unexpected, {})
    registry.register("reconcile", desk.unexpected, {})
    first = {"cycle_id": "c000001", "attempt": 1, "sell_attempt": 1}
    sfn.start_execution(stateMachineArn=machine, name="c000001", input=json.dumps(first))
    while True:
        scheduler.settle()
        filled = [(leg, token) for leg, token in desk.tokens if desk.fill(leg)]
        for leg, token in filled:
            desk.tokens.remove((leg, token))
            summary = {"client_order_id": f"fb-c000001-{leg[0]}1", "status": "FILLED"}
            sfn.send_task_success(taskToken=token, output=json.dumps(summary))
        if filled:
            continue
        deadline = scheduler.next_deadline()
        if not scheduler.live_executions or deadline is None:
            break
        scheduler.advance_to(deadline)
    listed = sfn.list_executions(stateMachineArn=machine)["executions"]
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in listed]
    return sorted(described, key=lambda e: e["startDate"])


@pytest.mark.parametrize("waiting_leg", ["BUY", "SELL", "CHECK"])
def test_given_hundreds_of_turns_waiting_then_the_cycle_goes_on_in_new_executions_and_trades(
    twin: Any, waiting_leg: str
) -> None:
    # Given: the decision maker waits (or the resting sell stays) for 401 turns
    desk = Desk(waiting_leg, TURNS)
    # When: the cycle runs
    executions = _run(twin, desk)
    # Then: every execution succeeded, each one continuing the last under its root's name
    assert [(e["name"], e["status"]) for e in executions] == [
        ("c000001", "SUCCEEDED"),
        ("c000001-continued-1", "SUCCEEDED"),
        ("c000001-continued-2", "SUCCEEDED"),
    ]
    assert twin[2].highest["stepfunctions_history_events"] < QUOTA
    continued = json.loads(executions[-1]["input"])
    assert continued["lineage"] == {"name": "c000001", "generation": 2}
    assert (
        continued["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == (executions[1]["executionArn"])
    )
    # and the cycle traded once, where it stood: the same attempts, one buy, one sell
    assert len(desk.calls["record"]) == 1
    assert {e["attempt"] for e in desk.calls["consult BUY"]} == {1}
    assert {e["attempt"] for e in desk.calls["consult SELL"]} == {1}
    if waiting_leg == "CHECK":
        assert len(desk.calls["check"]) == TURNS
        # parked again on the same order each time: the same price and quantity
        assert {(e["price"], e["quantity"]) for e in desk.calls["place SELL"]} == {("10.30", "1.0")}
        assert len(desk.calls["consult SELL"]) == 1
    else:
        assert len(desk.calls[f"consult {waiting_leg}"]) == TURNS + 1
        assert len(desk.calls["place SELL"]) == 1
    assert len(desk.calls["place BUY"]) == 1
