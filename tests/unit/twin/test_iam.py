"""The twin's IAM evaluator: statements, requests per operation, the authorizer."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from flipbot_dev.twin.iam import (
    Authorizer,
    Principal,
    Statement,
    Unmapped,
    Where,
    requests_for,
    usage,
)

WHERE = Where(
    "us-east-1",
    "123456789012",
    secrets={
        "stack/binance": "arn:aws:secretsmanager:us-east-1:123456789012:secret:stack/binance-AbC123"
    },
    token_owner=lambda _token: "arn:aws:states:us-east-1:123456789012:stateMachine:stack-cycle",
)
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"


def allow(actions: str | list[str], resources: str | list[str], **kw: object) -> Statement:
    as_tuple = lambda v: (v,) if isinstance(v, str) else tuple(v)  # noqa: E731
    return Statement("Allow", as_tuple(actions), resources=as_tuple(resources), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- statements
def test_action_wildcards_match_case_insensitively_and_resources_exactly() -> None:
    s = allow("dynamodb:get*", f"{TABLE}Orders")
    assert s.applies("dynamodb:GetItem", f"{TABLE}Orders", {})
    assert not s.applies("dynamodb:PutItem", f"{TABLE}Orders", {})
    assert not s.applies("dynamodb:GetItem", f"{TABLE}orders", {})  # ARNs are case-sensitive
    assert not s.applies("dynamodb:GetItem", f"{TABLE}Orders/index/open", {})


def test_resource_wildcards_cover_an_index_and_a_qualified_function() -> None:
    index = allow("dynamodb:Query", f"{TABLE}Orders/index/*")
    assert index.applies("dynamodb:Query", f"{TABLE}Orders/index/open-orders", {})
    assert not index.applies("dynamodb:Query", f"{TABLE}Orders", {})
    fn = allow("lambda:InvokeFunction", "arn:aws:lambda:us-east-1:1:function:place*")
    assert fn.applies(
        "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:1:function:place:$LATEST", {}
    )
    single = allow("s3:GetObject", "arn:aws:s3:::b/k?")
    assert single.applies("s3:GetObject", "arn:aws:s3:::b/k1", {})
    assert not single.applies("s3:GetObject", "arn:aws:s3:::b/k12", {})


def test_an_explicit_deny_wins_over_an_allow() -> None:
    p = Principal(
        "Fn",
        "FnRole",
        (
            allow("dynamodb:*", f"{TABLE}*"),
            Statement("Deny", ("dynamodb:DeleteItem",), resources=(f"{TABLE}Trades",)),
        ),
    )
    assert p.decide("dynamodb:DeleteItem", f"{TABLE}Orders", {})
    assert not p.decide("dynamodb:DeleteItem", f"{TABLE}Trades", {})
    assert not Principal("None", "NoneRole", ()).decide("dynamodb:GetItem", f"{TABLE}Orders", {})


def test_not_action_and_not_resource() -> None:
    s = Statement("Allow", not_actions=("iam:*",), not_resources=(f"{TABLE}Secret",))
    assert s.applies("dynamodb:GetItem", f"{TABLE}Orders", {})
    assert not s.applies("iam:PassRole", f"{TABLE}Orders", {})
    assert not s.applies("dynamodb:GetItem", f"{TABLE}Secret", {})


def test_the_namespace_condition_of_put_metric_data() -> None:
    s = allow(
        "cloudwatch:PutMetricData",
        "*",
        conditions={"StringEquals": {"cloudwatch:namespace": "flipbot"}},
    )
    assert s.applies("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "flipbot"})
    assert not s.applies("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "other"})
    assert not s.applies("cloudwatch:PutMetricData", "*", {})  # the key absent: no match


def test_an_unknown_condition_operator_never_grants() -> None:
    s = allow("sqs:SendMessage", "*", conditions={"NumericLessThan": {"aws:x": "3"}})
    assert not s.applies("sqs:SendMessage", "*", {"aws:x": "1"})
    if_exists = allow("sqs:SendMessage", "*", conditions={"StringEqualsIfExists": {"k": "v"}})
    assert if_exists.applies("sqs:SendMessage", "*", {})
    assert not if_exists.applies("sqs:SendMessage", "*", {"k": "w"})


# --------------------------------------------------------------------------- requests
def test_a_query_on_an_index_needs_the_index_arn() -> None:
    assert requests_for(
        "dynamodb", "Query", {"TableName": "Orders", "IndexName": "open-orders"}, WHERE
    ) == [("dynamodb:Query", f"{TABLE}Orders/index/open-orders", {})]
    assert requests_for("dynamodb", "GetItem", {"TableName": "Orders", "Key": {}}, WHERE) == [
        ("dynamodb:GetItem", f"{TABLE}Orders", {})
    ]


def test_each_transact_write_item_needs_its_own_action_on_its_own_table() -> None:
    params = {
        "TransactItems": [
            {"Put": {"TableName": "Fills", "Item": {}}},
            {"Update": {"TableName": "Orders", "Key": {}}},
            {"ConditionCheck": {"TableName": "Cycles", "Key": {}}},
            {"Delete": {"TableName": "Orders", "Key": {}}},
        ]
    }
    assert [
        (a, r) for a, r, _ in requests_for("dynamodb", "TransactWriteItems", params, WHERE)
    ] == [
        ("dynamodb:PutItem", f"{TABLE}Fills"),
        ("dynamodb:UpdateItem", f"{TABLE}Orders"),
        ("dynamodb:ConditionCheckItem", f"{TABLE}Cycles"),
        ("dynamodb:DeleteItem", f"{TABLE}Orders"),
    ]


def test_batch_operations_are_checked_per_table() -> None:
    params = {"RequestItems": {"Fills": [], "Orders": []}}
    assert [r for _, r, _ in requests_for("dynamodb", "BatchWriteItem", params, WHERE)] == [
        f"{TABLE}Fills",
        f"{TABLE}Orders",
    ]


def test_arns_of_the_other_services() -> None:
    def one(service: str, operation: str, params: dict[str, object]) -> tuple[str, str]:
        ((action, resource, _),) = requests_for(service, operation, params, WHERE)
        return action, resource

    assert one("lambda", "Invoke", {"FunctionName": "stack-Place"}) == (
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:123456789012:function:stack-Place",
    )
    assert one("ssm", "GetParameter", {"Name": "/stack/kill-switch"}) == (
        "ssm:GetParameter",
        "arn:aws:ssm:us-east-1:123456789012:parameter/stack/kill-switch",
    )
    # By name or by ARN, a secret is authorized on its full ARN (with the random suffix).
    full = WHERE.secrets["stack/binance"]
    assert one("secretsmanager", "GetSecretValue", {"SecretId": "stack/binance"})[1] == full
    assert one("secretsmanager", "GetSecretValue", {"SecretId": full})[1] == full
    assert one("stepfunctions", "SendTaskSuccess", {"taskToken": "t", "output": "{}"}) == (
        "states:SendTaskSuccess",
        "arn:aws:states:us-east-1:123456789012:stateMachine:stack-cycle",
    )
    execution = "arn:aws:states:us-east-1:123456789012:execution:stack-cycle:c1"
    assert one("stepfunctions", "StopExecution", {"executionArn": execution}) == (
        "states:StopExecution",
        execution,
    )
    assert one(
        "sqs", "SendMessage", {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/12/dlq"}
    ) == (
        "sqs:SendMessage",
        "arn:aws:sqs:us-east-1:12:dlq",
    )
    action, resource, context = requests_for(
        "cloudwatch", "PutMetricData", {"Namespace": "flipbot", "MetricData": []}, WHERE
    )[0]
    assert (action, resource, context) == (
        "cloudwatch:PutMetricData",
        "*",
        {"cloudwatch:namespace": "flipbot"},
    )


def test_put_events_is_checked_on_every_bus_of_its_entries() -> None:
    params = {"Entries": [{"EventBusName": "b1"}, {"EventBusName": "b2"}, {"EventBusName": "b1"}]}
    assert [r for _, r, _ in requests_for("events", "PutEvents", params, WHERE)] == [
        "arn:aws:events:us-east-1:123456789012:event-bus/b1",
        "arn:aws:events:us-east-1:123456789012:event-bus/b2",
    ]


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("dynamodb", "ExecuteStatement", {"Statement": "SELECT * FROM Orders"}),
        ("s3", "GetObject", {"Bucket": "b", "Key": "k"}),
        ("events", "PutRule", {"Name": "r"}),
    ],
)
def test_an_operation_the_evaluator_cannot_map_is_unmapped(
    service: str, operation: str, params: dict[str, object]
) -> None:
    with pytest.raises(Unmapped):
        requests_for(service, operation, params, WHERE)


# --------------------------------------------------------------------------- authorizer
@pytest.fixture
def authorizer() -> Authorizer:
    reader = Principal(
        "ReaderFunction", "ReaderFunctionRole", (allow("dynamodb:GetItem", f"{TABLE}*"),)
    )
    machine = Principal("StateMachine", "StateMachineRole", (allow("lambda:InvokeFunction", "*"),))
    return Authorizer({"ReaderFunction": reader, "StateMachine": machine}, WHERE)


def test_a_denied_call_raises_access_denied_naming_role_action_and_resource(
    authorizer: Authorizer,
) -> None:
    with authorizer.acting_as("ReaderFunction"):
        authorizer.check("dynamodb", "GetItem", {"TableName": "Orders"})
        with pytest.raises(ClientError) as raised:
            authorizer.check("dynamodb", "PutItem", {"TableName": "Orders", "Item": {}})
    error = raised.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "assumed-role/ReaderFunctionRole/ReaderFunction" in error["Message"]
    assert f"dynamodb:PutItem on resource: {TABLE}Orders" in error["Message"]
    assert [str(d.action) for d in authorizer.denied] == ["dynamodb:PutItem"]
    assert authorizer.summary()["principals"]["ReaderFunction"]["used"] == [
        f"dynamodb:GetItem {TABLE}Orders",
        f"dynamodb:PutItem {TABLE}Orders",
    ]


def test_an_unmapped_operation_fails_closed(authorizer: Authorizer) -> None:
    with authorizer.acting_as("ReaderFunction"), pytest.raises(ClientError):
        authorizer.check("dynamodb", "ExecuteStatement", {"Statement": "x"})
    assert authorizer.denied[0].resource == "unmapped:dynamodb:ExecuteStatement"


def test_the_twin_itself_is_unchecked_and_other_threads_act_as_the_state_machine(
    authorizer: Authorizer,
) -> None:
    authorizer.check("dynamodb", "DeleteTable", {"TableName": "Orders"})  # the twin's own call
    seen: list[str | None] = []
    errors: list[Exception] = []

    def moto_thread() -> None:
        seen.append(authorizer.current())
        try:
            authorizer.check("dynamodb", "GetItem", {"TableName": "Orders"})
        except ClientError as exc:
            errors.append(exc)

    thread = threading.Thread(target=moto_thread)
    thread.start()
    thread.join()
    assert seen == ["StateMachine"]
    assert len(errors) == 1  # the state machine's role reads no table
    assert authorizer.calls == 1


def test_audit_mode_records_a_denial_without_raising(authorizer: Authorizer) -> None:
    authorizer.enforce = False
    with authorizer.acting_as("ReaderFunction"):
        authorizer.check("dynamodb", "PutItem", {"TableName": "Orders"})
    assert len(authorizer.denied) == 1


def test_acting_as_a_principal_the_template_lacks_is_an_error(authorizer: Authorizer) -> None:
    with pytest.raises(KeyError, match="no role for 'Nobody'"), authorizer.acting_as("Nobody"):
        pass


def test_usage_flags_a_grant_nothing_used_unless_a_reason_keeps_it(
    authorizer: Authorizer,
) -> None:
    logs = Statement("Allow", ("logs:PutLogEvents",), resources=("*",), source="managed")
    table = allow("dynamodb:*", f"{TABLE}Trades", source="trades")
    principal = Principal("ReaderFunction", "R", (table, logs))
    with authorizer.acting_as("ReaderFunction"):
        authorizer.check("dynamodb", "GetItem", {"TableName": "Orders"})
    rows = usage({"ReaderFunction": principal}, authorizer.used, WHERE)
    by_source = {row["policy"]: row for row in rows}
    assert by_source["trades"]["used"] == []
    assert by_source["trades"]["kept_because"] == ""  # flagged
    assert by_source["managed"]["kept_because"].startswith("the Lambda service")
