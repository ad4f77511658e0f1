"""template.yaml holds together: lint-clean in both forms, least-privilege IAM, code
paths that point at the code, and event fixtures that match the rules they feed.

cfn-lint runs once per form (module-scoped fixtures); each run takes a few seconds.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from aws_lambda_powertools.utilities.parser import envelopes, parse
from moto.events.models import EventPattern

from flipbot.events import SOURCE, OrderUpdated, StreamGapDetected
from flipbot_dev.twin.template import SamTemplate, load_template, resolve, substitute_definition

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"

FUNCTIONS = {
    "ConsultAiFunction": "consult_ai",
    "PlaceOrderFunction": "place_order",
    "OnOrderUpdateFunction": "on_order_update",
    "CancelOrderFunction": "cancel_order",
    "RecordTradeFunction": "record_trade",
    "ReconcileFunction": "reconcile",
}

# Actions that may be granted on Resource "*" because AWS offers no narrower resource.
WILDCARD_ALLOWED = {
    # Custom metrics (the listener heartbeat); scoped by a cloudwatch:namespace condition.
    "cloudwatch:PutMetricData",
    # Step Functions log delivery to CloudWatch Logs (vended logs).
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # ECR login for the listener image pull (the layer actions are scoped to repositories).
    "ecr:GetAuthorizationToken",
}

# AWS managed policies SAM attaches: basic Lambda logging (no X-Ray: nothing is traced).
MANAGED_POLICIES_ALLOWED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}


def _load_lint_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "lint_template", ROOT / "tools" / "lint_template.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def lint_tool() -> ModuleType:
    return _load_lint_tool()


@pytest.fixture(scope="module")
def translated(lint_tool: ModuleType) -> dict[str, Any]:
    result: dict[str, Any] = lint_tool.translate(TEMPLATE)
    return result


@pytest.fixture(scope="module")
def sam() -> SamTemplate:
    return load_template(TEMPLATE)


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """moto's EventBridge matcher: the same one the twin's bus uses."""
    matched: bool = EventPattern.load(json.dumps(pattern)).matches_event(cast(Any, event))
    return matched


def _event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    return data


# --------------------------------------------------------------------------- lint
def test_source_template_is_cfn_lint_clean(lint_tool: ModuleType) -> None:
    # Given template.yaml as written, When cfn-lint runs, Then nothing is reported
    assert lint_tool.lint_source(TEMPLATE) == []


def test_translated_template_is_cfn_lint_clean(
    lint_tool: ModuleType, translated: dict[str, Any]
) -> None:
    # Given the offline SAM translation, When cfn-lint runs on it, Then nothing is reported
    assert "Transform" not in translated
    assert lint_tool.lint_cloudformation(translated, "template") == []


# --------------------------------------------------------------------------- code paths
def test_every_function_points_at_functions_snake_name(sam: SamTemplate) -> None:
    raw = {
        logical_id: resource
        for logical_id, resource in sam.resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(raw) == set(FUNCTIONS)
    for logical_id, snake in FUNCTIONS.items():
        code_uri = raw[logical_id]["Properties"]["CodeUri"]
        assert code_uri == f"functions/{snake}/", logical_id
        assert _snake(logical_id.removesuffix("Function")) == snake
        assert sam.functions[logical_id].handler == "app.handler"
        directory = ROOT / code_uri
        if directory.exists():  # the handlers are written alongside; check those present
            assert (directory / "app.py").is_file(), f"{directory} has no app.py"


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def test_state_machine_definition_is_fully_substituted(sam: SamTemplate) -> None:
    spec = sam.state_machines["StateMachine"]
    assert spec.definition_path == ROOT / "statemachine" / "trade_cycle.asl.json"
    if not spec.definition_path.exists():
        pytest.skip("statemachine/trade_cycle.asl.json is not written yet")
    fake = {name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}" for name in FUNCTIONS}
    attrs = {(name, "Arn"): arn for name, arn in fake.items()}
    refs = sam.parameters
    substitutions = {k: resolve(v, refs, attrs) for k, v in spec.substitutions.items()}
    asl = json.loads(
        substitute_definition(spec.definition_path.read_text(encoding="utf-8"), substitutions)
    )
    invoked = {
        state["Parameters"]["FunctionName"]
        for state in asl["States"].values()
        if state.get("Type") == "Task" and "lambda:invoke" in state.get("Resource", "")
    }
    assert invoked <= set(fake.values())


# --------------------------------------------------------------------------- IAM
def _statements(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement under ``node``, with where it was found."""
    if isinstance(node, dict):
        document = node.get("PolicyDocument")
        if isinstance(document, dict):
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                yield f"{path}/{node.get('PolicyName', 'PolicyDocument')}", statement
        for key, value in node.items():
            if key != "PolicyDocument":
                yield from _statements(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _statements(item, f"{path}[{index}]")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_resource_outside_the_allow_list(translated: dict[str, Any]) -> None:
    # Given every IAM/resource policy statement in the translated template
    offenders = []
    for logical_id, resource in translated["Resources"].items():
        for where, statement in _statements(resource.get("Properties", {}), logical_id):
            if statement.get("Effect") != "Allow":
                continue
            if "*" not in _as_list(statement.get("Resource")):
                continue
            # Then Resource "*" only carries actions that cannot be scoped
            for action in _as_list(statement.get("Action")):
                if action not in WILDCARD_ALLOWED:
                    offenders.append(f"{where}: {action} on '*'")
    assert offenders == []


def test_no_wildcard_actions(translated: dict[str, Any]) -> None:
    offenders = [
        f"{where}: {action}"
        for logical_id, resource in translated["Resources"].items()
        for where, statement in _statements(resource.get("Properties", {}), logical_id)
        for action in _as_list(statement.get("Action"))
        if action == "*" or str(action).endswith(":*")
    ]
    assert offenders == []


# Resources that end in a wildcard inside a named scope; anything else with a "*" fails.
PARTIAL_WILDCARDS = {
    # SAM DynamoDB policy templates: the indexes of one named table
    r":table/\$\{tableName\}/index/\*$",
    # SAM LambdaInvokePolicy: one named function, its versions and aliases
    r":function:\$\{functionName\}\*$",
    # executions of this stack's trade-cycle state machine (named by cycle id)
    r":execution:\$\{AWS::StackName\}-trade-cycle:\*$",
    # ECR repositories of this account: the listener image is a parameter
    r":ecr:\$\{AWS::Region\}:\$\{AWS::AccountId\}:repository/\*$",
}


def _resource_text(resource: Any) -> str:
    """An ARN as written: a plain string, or the template string of an ``Fn::Sub``."""
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return str(sub[0] if isinstance(sub, list) else sub)
    return resource if isinstance(resource, str) else json.dumps(resource)


def _all_statements(translated: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        found
        for logical_id, resource in translated["Resources"].items()
        for found in _statements(resource.get("Properties", {}), logical_id)
    ]


def test_every_role_policy_statement_is_listed(translated: dict[str, Any]) -> None:
    # Given the translated template, Then the walker the IAM tests rely on sees every
    # inline policy of every role (an empty list would let the wildcard tests pass)
    listed = {where.split("/")[0] for where, _ in _all_statements(translated)}
    roles = {
        logical_id
        for logical_id, resource in translated["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and resource["Properties"].get("Policies")
    }
    assert roles
    assert roles <= listed


def test_no_partial_wildcard_resource_outside_the_allow_list(translated: dict[str, Any]) -> None:
    offenders = [
        f"{where}: {text}"
        for where, statement in _all_statements(translated)
        if statement.get("Effect") == "Allow"
        for text in map(_resource_text, _as_list(statement.get("Resource")))
        if "*" in text
        and text != "*"
        and not any(re.search(pattern, text) for pattern in PARTIAL_WILDCARDS)
    ]
    assert offenders == []


def test_no_allow_by_exclusion(translated: dict[str, Any]) -> None:
    # NotAction / NotResource on an Allow grant everything else: a wildcard in disguise
    offenders = [
        where
        for where, statement in _all_statements(translated)
        if statement.get("Effect") == "Allow"
        and ("NotAction" in statement or "NotResource" in statement)
    ]
    assert offenders == []


def test_only_expected_managed_policies(translated: dict[str, Any]) -> None:
    attached = {
        arn
        for resource in translated["Resources"].values()
        if resource["Type"] == "AWS::IAM::Role"
        for arn in resource["Properties"].get("ManagedPolicyArns", [])
    }
    assert attached <= MANAGED_POLICIES_ALLOWED


def test_listener_task_role_is_narrow(translated: dict[str, Any]) -> None:
    statements = [
        s
        for policy in translated["Resources"]["ListenerTaskRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    ]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert actions == {"events:PutEvents", "dynamodb:PutItem", "cloudwatch:PutMetricData"}
    by_action = {a: s for s in statements for a in _as_list(s["Action"])}
    assert by_action["events:PutEvents"]["Resource"] == {"Fn::GetAtt": ["EventBus", "Arn"]}
    assert by_action["dynamodb:PutItem"]["Resource"] == {"Fn::GetAtt": ["MarketTable", "Arn"]}
    namespace = by_action["cloudwatch:PutMetricData"]["Condition"]["StringEquals"]
    assert namespace == {"cloudwatch:namespace": "flipbot"}


# --------------------------------------------------------------------------- events
def test_every_event_file_is_json() -> None:
    files = sorted(EVENTS.glob("*.json"))
    assert files, "events/ holds no fixtures"
    for path in files:
        assert isinstance(json.loads(path.read_text(encoding="utf-8")), dict), path.name


@pytest.mark.parametrize(
    "name",
    ["on_order_update_new.json", "on_order_update_partial.json", "on_order_update_filled.json"],
)
def test_order_updated_fixtures_validate_and_match_the_rule(sam: SamTemplate, name: str) -> None:
    event = _event(name)
    assert event["source"] == SOURCE
    assert event["detail-type"] == "OrderUpdated"
    assert {"version", "id", "account", "time", "region", "resources"} <= set(event)
    detail = OrderUpdated.model_validate(event["detail"])
    # exactly as the handler parses it: Powertools' EventBridge envelope around the model
    assert parse(event=event, model=OrderUpdated, envelope=envelopes.EventBridgeEnvelope) == detail
    assert detail.client_order_id == "fb51af3dc0-c000001-B1"
    # decimals travel as strings, exactly as the listener publishes them
    assert isinstance(event["detail"]["price"], str)
    (rule,) = sam.functions["OnOrderUpdateFunction"].event_rules
    assert rule.bus_ref == "EventBus"
    assert _matches(rule.pattern, event)


def test_order_fills_add_up() -> None:
    partial = OrderUpdated.model_validate(_event("on_order_update_partial.json")["detail"])
    filled = OrderUpdated.model_validate(_event("on_order_update_filled.json")["detail"])
    assert partial.trade_id != filled.trade_id
    assert partial.last_qty + filled.last_qty == filled.executed_qty == filled.orig_qty
    assert partial.last_quote_qty + filled.last_quote_qty == filled.cumulative_quote_qty


def test_stream_gap_fixture_validates_and_matches_the_reconcile_rule(sam: SamTemplate) -> None:
    event = _event("reconcile_stream_gap.json")
    StreamGapDetected.model_validate(event["detail"])
    rules = sam.functions["ReconcileFunction"].event_rules
    assert any(_matches(r.pattern, event) for r in rules)
    on_order_update = sam.functions["OnOrderUpdateFunction"].event_rules[0]
    assert not _matches(on_order_update.pattern, event)


def test_schedule_fixture_is_a_scheduled_event() -> None:
    event = _event("reconcile_schedule.json")
    assert event["source"] == "aws.events"
    assert event["detail-type"] == "Scheduled Event"
    assert event["detail"] == {}
    assert event["resources"][0].startswith("arn:aws:events:")


@pytest.mark.parametrize(
    ("name", "leg"),
    [
        ("consult_ai_buy.json", "BUY"),
        ("consult_ai_sell.json", "SELL"),
        ("place_order_buy.json", "BUY"),
        ("place_order_sell.json", "SELL"),
        ("cancel_order.json", "BUY"),
    ],
)
def test_task_inputs_carry_the_cycle_and_leg(name: str, leg: str) -> None:
    event = _event(name)
    assert event["cycle_id"] == "c000001"
    assert event["leg"] == leg
    assert event["attempt"] == 1


def test_place_order_fixtures_carry_a_task_token() -> None:
    for name in ("place_order_buy.json", "place_order_sell.json"):
        event = _event(name)
        assert len(event["task_token"]) > 100
        assert isinstance(event["price"], str)
        assert isinstance(event["quantity"], str)


def test_start_cycle_fixture_is_the_first_execution_input() -> None:
    # aws stepfunctions start-execution --name c000001 --input file://events/start_cycle.json
    assert _event("start_cycle.json") == {"cycle_id": "c000001", "attempt": 1, "sell_attempt": 1}


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("consult_ai_buy.json", "ConsultRequest"),
        ("consult_ai_sell.json", "ConsultRequest"),
        ("place_order_buy.json", "PlaceOrderRequest"),
        ("place_order_sell.json", "PlaceOrderRequest"),
        ("cancel_order.json", "CancelOrderRequest"),
        ("record_trade.json", "RecordTradeRequest"),
        ("reconcile_cycle.json", "CycleReconcileRequest"),
    ],
)
def test_task_fixtures_parse_with_the_handlers_request_models(name: str, model: str) -> None:
    from flipbot.app import contracts

    parsed = getattr(contracts, model).parse(_event(name))
    assert parsed.cycle_id == "c000001"


def test_dashboard_body_is_valid_json_naming_every_custom_metric(sam: SamTemplate) -> None:
    body = sam.resources["Dashboard"]["Properties"]["DashboardBody"]
    refs = {logical_id: f"phys-{logical_id}" for logical_id in sam.resources}
    refs |= {"AWS::Region": "us-east-1", "AWS::StackName": "flipbot"}
    attrs = {(logical_id, "Arn"): f"arn:{logical_id}" for logical_id in sam.resources}
    dashboard = json.loads(resolve(body, refs, attrs))
    charted = {
        row[1]
        for widget in dashboard["widgets"]
        for row in widget["properties"].get("metrics", [])
        if isinstance(row[0], str) and row[0] == "flipbot"
    }
    alarmed = {
        r["Properties"]["MetricName"]
        for r in sam.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "flipbot"
    }
    # an alarmed metric is charted, or shown by its alarm (listed with its reason)
    uncharted = set(sam.resources["Dashboard"]["Metadata"]["Uncharted"])
    assert alarmed <= charted | uncharted
    assert {"RealizedPnl", "CyclesCompleted", "AiConfidence", "AiCostUsd"} <= charted
    assert {"BuyFillSeconds", "SellFillSeconds", "StopLossExits", "SellChecks"} <= charted
    assert {"GuardRejections", "ListenerLagMs", "Reconnects"} <= charted
