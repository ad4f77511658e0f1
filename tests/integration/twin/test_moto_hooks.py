"""The twin's moto hooks: Lambda in process, virtual time, deterministic settling."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flipbot_dev.twin.moto_hooks import LambdaRegistry, VirtualScheduler, install

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"


class Flaky(Exception):
    """A retryable error named in the ASL's Retry."""


def _definition(wait_seconds: int, timeout_seconds: int) -> str:
    return json.dumps(
        {
            "StartAt": "Work",
            "States": {
                "Work": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "work", "Payload.$": "$"},
                    "ResultSelector": {"value.$": "$.Payload.value"},
                    "ResultPath": "$.work",
                    "Retry": [
                        {
                            "ErrorEquals": ["Flaky"],
                            "IntervalSeconds": 30,
                            "MaxAttempts": 3,
                            "BackoffRate": 2,
                        }
                    ],
                    "Next": "Pause",
                },
                "Pause": {"Type": "Wait", "Seconds": wait_seconds, "Next": "Callback"},
                "Callback": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Parameters": {"FunctionName": "park", "Payload": {"token.$": "$$.Task.Token"}},
                    "TimeoutSeconds": timeout_seconds,
                    "ResultPath": "$.callback",
                    "Catch": [
                        {
                            "ErrorEquals": ["States.Timeout"],
                            "ResultPath": "$.error",
                            "Next": "TimedOut",
                        }
                    ],
                    "End": True,
                },
                "TimedOut": {
                    "Type": "Pass",
                    "Result": "timed out",
                    "ResultPath": "$.callback",
                    "End": True,
                },
            },
        }
    )


@pytest.fixture
def twin() -> Any:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        scheduler = VirtualScheduler(now_ms=1_000_000)
        registry = LambdaRegistry()
        with install(scheduler, registry):
            lam = boto3.client("lambda", region_name=REGION)
            iam = boto3.client("iam", region_name=REGION)
            role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
            for name in ("work", "park"):
                lam.create_function(
                    FunctionName=name,
                    Runtime="python3.12",
                    Role=role,
                    Handler="app.handler",
                    Code={"ZipFile": b"x"},
                )
            yield scheduler, registry, boto3.client("stepfunctions", region_name=REGION)


def _status(sfn: Any, arn: str) -> str:
    return str(sfn.describe_execution(executionArn=arn)["status"])


def test_given_flaky_lambda_and_callback_when_replayed_then_virtual_time_drives_everything(
    twin: Any,
) -> None:
    scheduler, registry, sfn = twin
    calls: list[int] = []
    tokens: list[str] = []

    def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(scheduler.now_ms)
        if len(calls) < 3:
            raise Flaky("try again")
        return {"value": 42}

    registry.register("work", work, {})
    registry.register("park", lambda e, c: tokens.append(e["token"]), {})
    sm = sfn.create_state_machine(name="t", definition=_definition(600, 3600), roleArn=ROLE)
    started = time.monotonic()
    arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input="{}")["executionArn"]

    # When: time advances only when the replay loop says so.
    scheduler.settle()
    assert calls == [1_000_000]  # Given/Then: first attempt failed, now parked in Retry
    scheduler.advance_to(1_000_000 + 90_000)  # 30 s then 60 s of retry intervals
    assert calls == [1_000_000, 1_030_000, 1_090_000]
    assert tokens == []  # parked in the 600 s Wait state
    scheduler.advance_to(1_090_000 + 600_000)
    assert len(tokens) == 1
    assert _status(sfn, arn) == "RUNNING"

    # Then: the callback resumes the execution synchronously enough to settle on it.
    sfn.send_task_success(taskToken=tokens[0], output=json.dumps({"filled": True}))
    scheduler.settle()
    assert _status(sfn, arn) == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
    assert output["work"] == {"value": 42}
    assert output["callback"] == {"filled": True}
    assert scheduler.live_executions == 0
    assert time.monotonic() - started < 20  # 11 virtual minutes, not real ones


def test_given_no_callback_when_timeout_passes_in_virtual_time_then_catch_runs(twin: Any) -> None:
    scheduler, registry, sfn = twin
    registry.register("work", lambda e, c: {"value": 1}, {})
    registry.register("park", lambda e, c: None, {})
    sm = sfn.create_state_machine(name="t2", definition=_definition(0, 900), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input="{}")["executionArn"]
    scheduler.settle()
    assert _status(sfn, arn) == "RUNNING"
    scheduler.advance_to(scheduler.now_ms + 899_000)
    assert _status(sfn, arn) == "RUNNING"
    scheduler.advance_to(scheduler.now_ms + 1_000)
    assert _status(sfn, arn) == "SUCCEEDED"
    output = json.loads(sfn.describe_execution(executionArn=arn)["output"])
    assert output["callback"] == "timed out"


def test_given_a_waiting_execution_when_stopped_then_it_is_aborted_not_failed(twin: Any) -> None:
    scheduler, registry, sfn = twin
    registry.register("work", lambda e, c: {"value": 1}, {})
    registry.register("park", lambda e, c: None, {})
    sm = sfn.create_state_machine(name="t3", definition=_definition(0, 900), roleArn=ROLE)
    arn = sfn.start_execution(stateMachineArn=sm["stateMachineArn"], input="{}")["executionArn"]
    scheduler.settle()
    sfn.stop_execution(executionArn=arn, error="Recovered", cause="test")
    scheduler.settle()
    assert _status(sfn, arn) == "ABORTED"
    assert scheduler.live_executions == 0


def test_given_start_execution_in_asl_then_the_next_execution_starts(twin: Any) -> None:
    scheduler, _registry, sfn = twin
    definition = json.dumps(
        {
            "StartAt": "Check",
            "States": {
                "Check": {
                    "Type": "Choice",
                    "Default": "Next",
                    "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 3, "Next": "Done"}],
                },
                "Next": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::states:startExecution",
                    "Parameters": {
                        "StateMachineArn.$": "$$.StateMachine.Id",
                        "Name.$": "States.Format('run-{}', States.MathAdd($.n, 1))",
                        "Input": {"n.$": "States.MathAdd($.n, 1)"},
                    },
                    "End": True,
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )
    sm = sfn.create_state_machine(name="chain", definition=definition, roleArn=ROLE)
    sfn.start_execution(stateMachineArn=sm["stateMachineArn"], name="run-0", input='{"n": 0}')
    scheduler.settle()
    names = {
        e["name"]: e["status"]
        for e in sfn.list_executions(stateMachineArn=sm["stateMachineArn"])["executions"]
    }
    assert names == {
        "run-0": "SUCCEEDED",
        "run-1": "SUCCEEDED",
        "run-2": "SUCCEEDED",
        "run-3": "SUCCEEDED",
    }


def _queries(walked: list[int]) -> list[list[str]]:
    """Answers of base-table and index queries on a table with a range key and an index
    some items are not in; ``walked`` gets the size of every full-table listing."""
    from moto.dynamodb.models.table import Table

    listing = Table.all_items

    def all_items(self: Any) -> Any:
        items = listing(self)
        walked.append(len(items))
        return items

    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="fills",
        KeySchema=[
            {"AttributeName": "order", "KeyType": "HASH"},
            {"AttributeName": "trade", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "order", "AttributeType": "S"},
            {"AttributeName": "trade", "AttributeType": "N"},
            {"AttributeName": "open", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "open-fills",
                "KeySchema": [
                    {"AttributeName": "open", "KeyType": "HASH"},
                    {"AttributeName": "trade", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(30):
        item = {"order": {"S": f"o{n % 4}"}, "trade": {"N": str(100 - n)}}
        if n % 3:
            item["open"] = {"S": f"s{n % 2}"}
        ddb.put_item(TableName="fills", Item=item)
    Table.all_items = all_items  # type: ignore[method-assign]
    try:
        asked = [
            {"KeyConditionExpression": "#k = :v", "ExpressionAttributeValues": {":v": {"S": v}}}
            for v in ("o1", "o3", "nope")
        ] + [
            {
                "IndexName": "open-fills",
                "KeyConditionExpression": "#k = :v AND trade > :t",
                "ExpressionAttributeValues": {":v": {"S": v}, ":t": {"N": "75"}},
            }
            for v in ("s0", "s1", "nope")
        ]
        answers = []

        def ask() -> None:
            for query in asked:
                key = "open" if "IndexName" in query else "order"
                for forward in (True, False):
                    items = ddb.query(
                        TableName="fills",
                        ExpressionAttributeNames={"#k": key},
                        ScanIndexForward=forward,
                        **query,
                    )["Items"]
                    answers.append([f"{i['order']['S']}/{i['trade']['N']}" for i in items])

        ask()
        # each kind of write changes what the index holds: the next answers show it
        new = {"order": {"S": "o9"}, "trade": {"N": "99"}, "open": {"S": "s0"}}
        ddb.put_item(TableName="fills", Item=new)
        ddb.update_item(
            TableName="fills",
            Key={"order": {"S": "o1"}, "trade": {"N": "95"}},
            UpdateExpression="REMOVE #o",
            ExpressionAttributeNames={"#o": "open"},
        )
        ddb.update_item(
            TableName="fills",
            Key={"order": {"S": "o2"}, "trade": {"N": "98"}},
            UpdateExpression="SET #o = :s",
            ExpressionAttributeNames={"#o": "open"},
            ExpressionAttributeValues={":s": {"S": "s1"}},
        )
        ddb.delete_item(TableName="fills", Key={"order": {"S": "o3"}, "trade": {"N": "97"}})
        ask()
        return answers
    finally:
        Table.all_items = listing  # type: ignore[method-assign]


def test_a_query_reads_its_key_s_items_only_and_answers_as_moto_does() -> None:
    with mock_aws():
        plain_walks: list[int] = []
        plain = _queries(plain_walks)
    with mock_aws(), install(VirtualScheduler(now_ms=1_000_000), LambdaRegistry()):
        twin_walks: list[int] = []
        twin = _queries(twin_walks)
    assert twin == plain
    assert any(plain)
    assert not all(plain)
    half = len(plain) // 2
    assert plain[:half] != plain[half:]  # the writes changed the answers
    assert plain_walks
    assert set(plain_walks) == {30}
    assert twin_walks == []  # the twin's queries walk their own key's items


ITEM = {
    "id": {"S": "c000001"},
    "n": {"N": "25.90"},
    "empty": {"S": ""},
    "tags": {"SS": ["a", "b"]},
    "sizes": {"NS": ["1", "2.5"]},
    "on": {"BOOL": False},
    "none": {"NULL": True},
    "body": {"M": {"legs": {"L": [{"S": "BUY"}, {"N": "1"}, {"M": {}}]}, "x": {"L": []}}},
}
BINARY = {"id": {"S": "c000002"}, "raw": {"B": b"\x00\xffpayload"}, "many": {"BS": [b"1"]}}


def _table_t() -> Any:
    """A DynamoDB client, and the table ``t`` keyed by ``id``."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def _answers(walked: list[str]) -> list[Any]:
    """GetItem, Query and Scan answers for items of every attribute type; ``walked`` gets
    the name of every attribute value moto's serializer walks field by field."""
    from moto.core.serialize import BaseJSONSerializer

    walk = BaseJSONSerializer._serialize_type_structure

    def counted(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue":
            walked.append(key)
        walk(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = counted  # type: ignore[method-assign]
    try:
        with mock_aws(), install(VirtualScheduler(now_ms=1_000_000), LambdaRegistry()):
            ddb = _table_t()
            ddb.put_item(TableName="t", Item=ITEM)
            plain = [
                ddb.get_item(TableName="t", Key={"id": ITEM["id"]})["Item"],
                ddb.query(
                    TableName="t",
                    KeyConditionExpression="id = :i",
                    ExpressionAttributeValues={":i": ITEM["id"]},
                )["Items"],
            ]
            walked.append("--")
            ddb.put_item(TableName="t", Item=BINARY)
            return [*plain, ddb.scan(TableName="t")["Items"]]
    finally:
        BaseJSONSerializer._serialize_type_structure = walk  # type: ignore[method-assign]


def test_items_are_answered_as_moto_writes_them_without_walking_plain_values() -> None:
    twin: list[str] = []
    answers = _answers(twin)
    with mock_aws():  # moto alone, without the twin's hooks
        ddb = _table_t()
        ddb.put_item(TableName="t", Item=ITEM)
        ddb.put_item(TableName="t", Item=BINARY)
        alone = ddb.scan(TableName="t")["Items"]
    assert answers[0] == ITEM
    assert answers[1] == [ITEM]
    assert sorted(answers[2], key=str) == sorted(alone, key=str)
    assert BINARY in answers[2]
    # the plain items' values were written as stored; binary ones still take moto's walk
    assert twin.index("--") == 0
    assert set(twin[1:]) == {"raw", "many"}


def test_a_write_while_an_index_query_waits_is_seen_by_the_next_query() -> None:
    """A write that arrives while a Query holds DynamoDB (before it groups the index) must
    not leave that Query's grouping behind for the queries after the write."""
    import threading

    from moto.dynamodb.responses import DynamoHandler

    inside, go = threading.Event(), threading.Event()
    handled = DynamoHandler.call_action

    def pausing(self: Any) -> Any:
        if self._get_action() == "Query" and not inside.is_set():
            inside.set()
            go.wait(5)
        return handled(self)

    DynamoHandler.call_action = pausing  # type: ignore[method-assign]
    try:
        with mock_aws(), install(VirtualScheduler(now_ms=1_000_000), LambdaRegistry()):
            ddb = boto3.client("dynamodb", region_name=REGION)
            ddb.create_table(
                TableName="orders",
                BillingMode="PAY_PER_REQUEST",
                KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "open", "AttributeType": "S"},
                ],
                GlobalSecondaryIndexes=[
                    {
                        "IndexName": "open-orders",
                        "Projection": {"ProjectionType": "ALL"},
                        "KeySchema": [
                            {"AttributeName": "open", "KeyType": "HASH"},
                            {"AttributeName": "id", "KeyType": "RANGE"},
                        ],
                    }
                ],
            )
            ddb.put_item(TableName="orders", Item={"id": {"S": "o1"}, "open": {"S": "BTC"}})
            query = {
                "TableName": "orders",
                "IndexName": "open-orders",
                "KeyConditionExpression": "#o = :s",
                "ExpressionAttributeNames": {"#o": "open"},
                "ExpressionAttributeValues": {":s": {"S": "BTC"}},
            }
            reader = threading.Thread(target=lambda: ddb.query(**query))
            reader.start()
            assert inside.wait(5)
            new = {"id": {"S": "o2"}, "open": {"S": "BTC"}}
            writer = threading.Thread(target=lambda: ddb.put_item(TableName="orders", Item=new))
            writer.start()
            time.sleep(0.2)  # the write is under way, waiting for DynamoDB
            go.set()
            reader.join()
            writer.join()
            found = [i["id"]["S"] for i in ddb.query(**query)["Items"]]
    finally:
        DynamoHandler.call_action = handled  # type: ignore[method-assign]
    assert found == ["o1", "o2"]
