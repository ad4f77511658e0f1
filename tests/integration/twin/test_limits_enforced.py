"""AWS limits in the twin fail the way AWS fails: state data, history, PutEvents."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from flipbot_dev.twin.limits import Limits, Quotas
from flipbot_dev.twin.moto_hooks import LambdaRegistry, VirtualScheduler, install

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


@pytest.fixture
def twin(request: pytest.FixtureRequest) -> Iterator[tuple[Any, LambdaRegistry, Limits]]:
    limits = Limits(quotas=getattr(request, "param", Quotas()))
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        scheduler = VirtualScheduler(now_ms=1_000_000)
        registry = LambdaRegistry()
        with install(scheduler, registry, limits):
            lam = boto3.client("lambda", region_name=REGION)
            role = boto3.client("iam", region_name=REGION).create_role(
                RoleName="r", AssumeRolePolicyDocument="{}"
            )["Role"]["Arn"]
            lam.create_function(
                FunctionName="work",
                Runtime="python3.12",
                Role=role,
                Handler="app.handler",
                Code={"ZipFile": b"x"},
            )
            yield scheduler, registry, limits


def _run(scheduler: Any, definition: dict[str, Any]) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input="{}")
    scheduler.settle()
    execution: dict[str, Any] = sfn.describe_execution(executionArn=arn["executionArn"])
    return execution


def _task(catch: list[str]) -> dict[str, Any]:
    return {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "work", "Payload.$": "$"},
                "Catch": [{"ErrorEquals": catch, "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_given_a_task_result_over_256_kb_then_the_execution_fails_with_data_limit_exceeded(
    twin: Any,
) -> None:
    scheduler, registry, limits = twin
    registry.register("work", lambda event, context: {"blob": "x" * 270_000}, {})
    # When: the only Catch is States.ALL, which AWS does not let catch this error.
    execution = _run(scheduler, _task(["States.ALL"]))
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.DataLimitExceeded"
    assert limits.highest["stepfunctions_state_data"] > 262_144


def test_given_a_catch_naming_data_limit_exceeded_then_it_catches_it(twin: Any) -> None:
    scheduler, registry, _ = twin
    registry.register("work", lambda event, context: {"blob": "x" * 270_000}, {})
    execution = _run(scheduler, _task(["States.DataLimitExceeded"]))
    assert execution["status"] == "SUCCEEDED"


def test_given_a_result_just_under_256_kb_then_the_state_goes_on(twin: Any) -> None:
    scheduler, registry, limits = twin
    registry.register("work", lambda event, context: {"blob": "x" * 200_000}, {})
    execution = _run(scheduler, _task(["States.ALL"]))
    assert execution["status"] == "SUCCEEDED"
    assert 200_000 < limits.highest["stepfunctions_state_data"] <= 262_144


@pytest.mark.parametrize("twin", [Quotas(history_events=40)], indirect=True)
def test_given_a_loop_past_the_history_quota_then_the_execution_fails_there(twin: Any) -> None:
    scheduler, _, limits = twin
    loop = {
        "StartAt": "Again",
        "States": {
            "Again": {"Type": "Pass", "Next": "Once more"},
            "Once more": {"Type": "Pass", "Next": "Again"},
        },
    }
    execution = _run(scheduler, loop)
    assert execution["status"] == "FAILED"
    assert execution["error"] == "States.Runtime"
    assert "maximum number of history events (40)" in execution["cause"]
    assert limits.highest["stepfunctions_history_events"] == 40  # the failure is the 40th


def test_given_put_events_over_256_kb_or_10_entries_then_the_call_is_refused(twin: Any) -> None:
    _, _, limits = twin
    events = boto3.client("events", region_name=REGION)
    entry = {"Source": "s", "DetailType": "d", "Detail": json.dumps({"x": "y" * 100_000})}
    assert events.put_events(Entries=[entry, entry])["FailedEntryCount"] == 0
    with pytest.raises(ClientError, match="Total size of the entries in the request"):
        events.put_events(Entries=[entry, entry, entry])
    small = {"Source": "s", "DetailType": "d", "Detail": "{}"}
    with pytest.raises(ClientError, match="less than or equal to 10"):
        events.put_events(Entries=[small] * 11)
    assert limits.highest["eventbridge_put_events_size"] > 262_144


def test_given_deferred_deliveries_then_a_parallel_functions_invocations_overlap(
    twin: Any,
) -> None:
    _, registry, _ = twin
    meeting = threading.Barrier(3, timeout=30)
    running: list[int] = [0, 0]  # now, most at once
    lock = threading.Lock()

    def meet(event: dict[str, Any], context: Any) -> None:
        meeting.wait()  # returns only when three invocations run at the same time

    def count(event: dict[str, Any], context: Any) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.01)  # gives any other invocation the chance to start meanwhile
        with lock:
            running[0] -= 1

    registry.register("meet", meet, {})
    registry.register("count", count, {})
    registry.parallel = frozenset({"meet"})
    registry.deferred = [("meet", {"n": n}) for n in range(3)]
    registry.deferred += [("count", {"n": n}) for n in range(4)]
    assert registry.deliver_deferred() == 7
    assert registry.invocations == {"meet": 3, "count": 4}
    assert registry.dead_letters == []
    assert running[1] == 1  # a function not in ``parallel`` runs one invocation at a time
