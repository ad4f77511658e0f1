"""flipbot_dev.twin.template: the real template.yaml read as the twin sees it, and the
intrinsic-function resolver on small synthetic templates."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flipbot_dev.twin.template import (
    FunctionSpec,
    SamTemplate,
    TemplateError,
    load_template,
    resolve,
    resolve_environment,
    substitute_definition,
)

ROOT = Path(__file__).resolve().parents[3]

# docs/ARCHITECTURE.md, "Function environment"
DOCUMENTED_ENV = {
    "SYMBOL",
    "QUOTE_PER_CYCLE",
    "MIN_CONFIDENCE",
    "MIN_PROFIT",
    "TARGET_PROFIT",
    "SELL_MODE",
    "PRICE_BAND",
    "CYCLES_TABLE",
    "ORDERS_TABLE",
    "FILLS_TABLE",
    "TRADES_TABLE",
    "CONSULTATIONS_TABLE",
    "MARKET_TABLE",
    "EVENT_BUS_NAME",
    "BINANCE_SECRET_ARN",
    "OPENAI_SECRET_ARN",
    "BINANCE_BASE_URL",
    "AI_MODEL",
    "OPENAI_BASE_URL",
    "KILL_SWITCH_PARAMETER",
}

PSEUDO = {"AWS::StackName": "flipbot", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}


@pytest.fixture(scope="module")
def real() -> SamTemplate:
    return load_template(ROOT / "template.yaml")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def _twin_refs(template: SamTemplate) -> dict[str, str]:
    """What a twin would pass: parameters, pseudo parameters and its own physical names."""
    physical = {logical_id: f"twin-{logical_id}" for logical_id in template.resources}
    return physical | template.parameters | PSEUDO


# --------------------------------------------------------------------------- real template
def test_real_tables_follow_the_architecture(real: SamTemplate) -> None:
    keys = {logical_id: spec.key_schema for logical_id, spec in real.tables.items()}
    assert keys == {
        "CyclesTable": [("cycle_id", "HASH")],
        "OrdersTable": [("client_order_id", "HASH")],
        "FillsTable": [("client_order_id", "HASH"), ("trade_id", "RANGE")],
        "TradesTable": [("symbol", "HASH"), ("cycle_id", "RANGE")],
        "ConsultationsTable": [("consultation_id", "HASH")],
        "MarketTable": [("symbol", "HASH")],
    }
    assert real.tables["FillsTable"].attribute_definitions == {
        "client_order_id": "S",
        "trade_id": "N",
    }
    assert [name for name, _, _ in real.tables["ConsultationsTable"].gsis] == [
        "cycle-consultations"
    ]
    assert real.tables["CyclesTable"].ttl_attribute is None


def test_create_table_kwargs_mirror_the_key_schema(real: SamTemplate) -> None:
    kwargs = real.tables["FillsTable"].create_table_kwargs("fills")
    assert kwargs == {
        "TableName": "fills",
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [
            {"AttributeName": "client_order_id", "KeyType": "HASH"},
            {"AttributeName": "trade_id", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "client_order_id", "AttributeType": "S"},
            {"AttributeName": "trade_id", "AttributeType": "N"},
        ],
    }


def test_real_functions_merge_globals(real: SamTemplate) -> None:
    assert set(real.functions) == {
        "ConsultAiFunction",
        "PlaceOrderFunction",
        "OnOrderUpdateFunction",
        "CancelOrderFunction",
        "RecordTradeFunction",
        "ReconcileFunction",
    }
    consult = real.functions["ConsultAiFunction"]
    assert consult.code_uri == ROOT / "functions" / "consult_ai"
    assert consult.code_uri.is_absolute()
    assert consult.handler == "app.handler"
    assert consult.timeout == 90  # its own, over the Globals 30
    assert real.functions["PlaceOrderFunction"].timeout == 30
    for spec in real.functions.values():
        assert set(spec.environment) >= DOCUMENTED_ENV, spec.logical_id
    assert consult.environment["CYCLES_TABLE"] == {"Ref": "CyclesTable"}
    assert consult.environment["POWERTOOLS_METRICS_NAMESPACE"] == "flipbot"


def test_real_environment_resolves_with_twin_names(real: SamTemplate) -> None:
    refs = _twin_refs(real)
    env = resolve_environment(real.functions["PlaceOrderFunction"].environment, refs, {})
    assert env["SYMBOL"] == "TRUMPUSDC"
    assert env["QUOTE_PER_CYCLE"] == "10"
    assert env["MIN_CONFIDENCE"] == "0.8"
    assert env["SELL_MODE"] == "immediate"
    assert env["BINANCE_BASE_URL"] == ""
    assert env["CYCLES_TABLE"] == "twin-CyclesTable"
    assert env["EVENT_BUS_NAME"] == "twin-EventBus"
    assert env["STATE_MACHINE_ARN"] == (
        "arn:aws:states:us-east-1:123456789012:stateMachine:flipbot-trade-cycle"
    )


def test_real_rules_and_schedules(real: SamTemplate) -> None:
    on_update = real.functions["OnOrderUpdateFunction"]
    # No reservation: it fails on accounts with the default quota, and correctness does
    # not rest on it (the concurrent chaos scenario).
    assert on_update.reserved_concurrency is None
    (rule,) = on_update.event_rules
    assert rule.bus_ref == "EventBus"
    assert rule.pattern == {"source": ["flipbot.listener"], "detail-type": ["OrderUpdated"]}
    assert resolve(rule.rule_name, PSEUDO, {}) == "flipbot-order-updated"

    reconcile = real.functions["ReconcileFunction"]
    assert [r.pattern["detail-type"] for r in reconcile.event_rules] == [["StreamGapDetected"]]
    (schedule,) = reconcile.schedules
    assert resolve(schedule.expression, real.parameters, {}) == "rate(15 minutes)"
    assert real.functions["ConsultAiFunction"].event_rules == []


def test_real_state_machine_bus_secrets_and_switch(real: SamTemplate) -> None:
    machine = real.state_machines["StateMachine"]
    assert machine.type == "STANDARD"
    assert machine.definition_path == ROOT / "statemachine" / "trade_cycle.asl.json"
    assert resolve(machine.name, PSEUDO, {}) == "flipbot-trade-cycle"
    arns = {(fn, "Arn"): f"arn:{fn}" for fn in real.functions}
    subs = {k: resolve(v, real.parameters, arns) for k, v in machine.substitutions.items()}
    assert subs["PlaceOrderFunctionArn"] == "arn:PlaceOrderFunction"
    assert subs["BuyOrderTimeoutSeconds"] == "900"
    assert subs["SellHeartbeatSeconds"] == "7200"

    assert {k: resolve(v, PSEUDO, {}) for k, v in real.event_buses.items()} == {
        "EventBus": "flipbot-bus"
    }
    assert real.secrets == ["BinanceApiSecret", "OpenAiApiSecret"]
    assert real.ssm_parameters == {"KillSwitchParameter": "off"}


def test_real_parameters_are_defaults_as_strings(real: SamTemplate) -> None:
    assert real.parameters["Symbol"] == "TRUMPUSDC"
    assert real.parameters["MinProfit"] == "0.01"
    assert real.parameters["ReconcileSchedule"] == "rate(15 minutes)"
    assert real.parameters["AlarmEmail"] == ""
    assert all(isinstance(v, str) for v in real.parameters.values())
    assert "ListenerImageUri" not in real.parameters  # required: no default


# --------------------------------------------------------------------------- synthetic
SYNTHETIC = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Size: {Type: Number, Default: 3}
  Flag: {Type: String, Default: "yes"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsNotProd: !Not [!Condition IsProd]
Globals:
  Function:
    Handler: app.handler
    Timeout: 10
    Environment:
      Variables:
        SHARED: one
        OVERRIDDEN: global
Resources:
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: !Sub "${AWS::StackName}-bus"}}
  Thing:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gk, AttributeType: N}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by-gk
          KeySchema: [{AttributeName: gk, KeyType: HASH}]
          Projection: {ProjectionType: KEYS_ONLY}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/worker
      Handler: main.run
      Environment:
        Variables:
          OVERRIDDEN: local
          TABLE: !Ref Thing
          QUEUE_URL: !GetAtt Queue.QueueUrl
          MODE: !If [IsProd, strict, relaxed]
          OPTIONAL: !If [IsProd, set, !Ref AWS::NoValue]
      Events:
        OnDefaultBus:
          Type: CloudWatchEvent
          Properties:
            Pattern: {source: [aws.ec2]}
        OnBus:
          Type: EventBridgeRule
          Properties:
            EventBusName: !GetAtt Bus.Name
            Pattern: {detail-type: [Thing]}
        Nightly:
          Type: Schedule
          Properties: {Schedule: "cron(0 3 * * ? *)"}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: EXPRESS
      DefinitionUri: asl/machine.json
      DefinitionSubstitutions: {WorkerArn: !GetAtt [Worker, Arn]}
  Queue: {Type: AWS::SQS::Queue}
"""


@pytest.fixture
def synthetic(tmp_path: Path) -> SamTemplate:
    return load_template(_write(tmp_path, SYNTHETIC))


def test_synthetic_function_merges_and_overrides_globals(
    synthetic: SamTemplate, tmp_path: Path
) -> None:
    worker: FunctionSpec = synthetic.functions["Worker"]
    assert worker.code_uri == (tmp_path / "src" / "worker").resolve()
    assert worker.handler == "main.run"
    assert worker.timeout == 10
    assert worker.reserved_concurrency is None
    assert worker.environment["SHARED"] == "one"
    assert worker.environment["OVERRIDDEN"] == "local"
    assert worker.environment["QUEUE_URL"] == {"Fn::GetAtt": ["Queue", "QueueUrl"]}


def test_synthetic_rules_schedules_tables_and_machine(synthetic: SamTemplate) -> None:
    worker = synthetic.functions["Worker"]
    by_name = {r.name: r for r in worker.event_rules}
    assert by_name["OnDefaultBus"].bus_ref is None
    assert by_name["OnBus"].bus_ref == "Bus"
    assert by_name["OnBus"].pattern == {"detail-type": ["Thing"]}
    assert [(s.name, s.expression) for s in worker.schedules] == [("Nightly", "cron(0 3 * * ? *)")]

    table = synthetic.tables["Thing"]
    assert table.gsis == [("by-gk", [("gk", "HASH")], {"ProjectionType": "KEYS_ONLY"})]
    assert table.ttl_attribute is None  # declared but disabled
    assert table.create_table_kwargs("t")["GlobalSecondaryIndexes"][0]["IndexName"] == "by-gk"

    machine = synthetic.state_machines["Machine"]
    assert machine.type == "EXPRESS"
    assert machine.name is None
    assert machine.definition_path.name == "machine.json"
    assert machine.substitutions == {"WorkerArn": {"Fn::GetAtt": ["Worker", "Arn"]}}
    assert synthetic.parameters == {"Stage": "dev", "Size": "3", "Flag": "yes"}


def test_synthetic_environment_with_conditions(synthetic: SamTemplate) -> None:
    env = synthetic.functions["Worker"].environment
    attrs = {("Queue", "QueueUrl"): "https://sqs/q"}
    refs = synthetic.parameters | {"Thing": "thing-table"}
    resolved = resolve_environment(env, refs, attrs, synthetic.conditions)
    assert resolved == {
        "SHARED": "one",
        "OVERRIDDEN": "local",
        "TABLE": "thing-table",
        "QUEUE_URL": "https://sqs/q",
        "MODE": "relaxed",
    }  # OPTIONAL is AWS::NoValue when not prod
    prod = resolve_environment(env, refs | {"Stage": "prod"}, attrs, synthetic.conditions)
    assert prod["MODE"] == "strict"
    assert prod["OPTIONAL"] == "set"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "Resources:\n  T: {Type: AWS::Serverless::SimpleTable}\n",
            "AWS::DynamoDB::Table",
        ),
        (
            "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n"
            "      KeySchema: [{AttributeName: pk, KeyType: HASH}]\n",
            "'pk' has no AttributeDefinition",
        ),
        (
            "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
            "    Properties: {CodeUri: 's3://bucket/key.zip', Handler: app.handler}\n",
            "CodeUri must be a local directory",
        ),
        (
            "Resources:\n  M:\n    Type: AWS::Serverless::StateMachine\n"
            "    Properties: {Definition: {StartAt: A}}\n",
            "DefinitionUri must be a local ASL file",
        ),
        ("Parameters: {}\n", "no Resources section"),
    ],
)
def test_load_rejects_templates_the_twin_cannot_follow(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(_write(tmp_path, body))


# --------------------------------------------------------------------------- resolve
REFS = {"Stage": "dev", "Bus": "my-bus", "Subnets": "subnet-a,subnet-b"} | PSEUDO
ATTRS = {("Queue", "Arn"): "arn:aws:sqs:us-east-1:123456789012:q", ("Bus", "Name"): "my-bus"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        (7, "7"),
        (True, "true"),
        ({"Ref": "Stage"}, "dev"),
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:us-east-1:123456789012:q"),
        ({"Fn::GetAtt": "Bus.Name"}, "my-bus"),
        ({"Fn::Sub": "${AWS::StackName}-${Stage}"}, "flipbot-dev"),
        (
            {"Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Queue.Arn}"},
            "arn:aws:x:us-east-1:123456789012:arn:aws:sqs:us-east-1:123456789012:q",
        ),
        ({"Fn::Sub": "${!Literal} ${Stage}"}, "${Literal} dev"),
        ({"Fn::Sub": ["${Name}/${Stage}", {"Name": {"Ref": "Bus"}}]}, "my-bus/dev"),
        ({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, "c"]]}, "a-dev-c"),
        ({"Fn::Join": [",", {"Ref": "Subnets"}]}, "subnet-a,subnet-b"),
        ({"Fn::Select": [1, {"Ref": "Subnets"}]}, "subnet-b"),
        ({"Fn::Select": [0, {"Fn::Split": ["/", "x/y"]}]}, "x"),
    ],
)
def test_resolve(value: object, expected: str) -> None:
    assert resolve(value, REFS, ATTRS) == expected


def test_resolve_if_evaluates_conditions() -> None:
    conditions = {
        "IsDev": {"Fn::Equals": [{"Ref": "Stage"}, "dev"]},
        "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Fn::Not": [False]}]},
        "Either": {"Fn::Or": [False, True]},
        "Given": False,
    }
    assert resolve({"Fn::If": ["IsDev", "a", "b"]}, REFS, ATTRS, conditions) == "a"
    assert resolve({"Fn::If": ["Both", "a", "b"]}, REFS, ATTRS, conditions) == "a"
    assert resolve({"Fn::If": ["Either", "a", "b"]}, REFS, ATTRS, conditions) == "a"
    assert resolve({"Fn::If": ["Given", "a", "b"]}, REFS, ATTRS, conditions) == "b"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Missing"}, "Ref Missing"),
        ({"Fn::GetAtt": ["Queue", "QueueUrl"]}, r"Fn::GetAtt Queue\.QueueUrl"),
        ({"Fn::Sub": "${Nope}-x"}, "Ref Nope"),
        ({"Fn::Sub": "${Thing.Attr}"}, r"Fn::GetAtt Thing\.Attr"),
        ({"Fn::If": ["Unknown", "a", "b"]}, "condition: Unknown"),
        ({"Ref": "AWS::NoValue"}, "AWS::NoValue"),
        ({"Fn::Base64": "x"}, "cannot resolve"),
        ({"Fn::Select": [5, ["a"]]}, "out of range"),
    ],
)
def test_resolve_names_what_it_cannot_resolve(value: object, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolve(value, REFS, ATTRS)


def test_resolve_environment_names_the_variable() -> None:
    with pytest.raises(TemplateError, match=r"environment variable TABLE: .*Ref Missing"):
        resolve_environment({"OK": "x", "TABLE": {"Ref": "Missing"}}, REFS, ATTRS)


# --------------------------------------------------------------------------- ASL
def test_substitute_definition_replaces_every_token() -> None:
    text = '{"Resource": "${FnArn}", "TimeoutSeconds": ${Timeout}, "Path": "$.a"}'
    out = substitute_definition(text, {"FnArn": "arn:fn", "Timeout": "900", "Unused": "x"})
    assert out == '{"Resource": "arn:fn", "TimeoutSeconds": 900, "Path": "$.a"}'


def test_substitute_definition_names_tokens_left_over() -> None:
    with pytest.raises(TemplateError, match=r"\$\{Missing\}, \$\{Other\}"):
        substitute_definition('"${Other}" "${A}" "${Missing}"', {"A": "1"})


def test_real_definition_substitutes_completely(real: SamTemplate) -> None:
    machine = real.state_machines["StateMachine"]
    if not machine.definition_path.exists():
        pytest.skip("statemachine/trade_cycle.asl.json is not written yet")
    subs = dict.fromkeys(machine.substitutions, "x")
    assert "${" not in substitute_definition(machine.definition_path.read_text(), subs)
