"""Read ``template.yaml`` for the local digital twin.

The twin builds its moto tables, functions, rules, schedules and state machine from the
same SAM template that ``sam deploy`` ships, so the two cannot drift. This module reads
the parts the twin needs into frozen dataclasses and resolves CloudFormation intrinsic
functions against names the twin chooses:

* :func:`load_template` - tables (key schemas, GSIs, TTL), functions (code directory,
  handler, merged Globals + function environment, EventBridge rules, schedules),
  state machines (ASL path, substitutions), buses, secrets, SSM parameters.
* :func:`resolve` - ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` (both forms), ``Fn::Join``,
  ``Fn::Select``, ``Fn::Split``, ``Fn::If`` and plain scalars, to a string.
* :func:`substitute_definition` - ``DefinitionSubstitutions`` applied to ASL text
  (moto does not apply them).

Values the template leaves to CloudFormation (``!Ref CyclesTable``...) stay raw here, as
``{"Ref": ...}`` style dicts, until the twin resolves them with its own names.

The YAML is read with ``cfnlint.decode.cfn_yaml`` (a development dependency, like the
rest of the twin), which understands the short intrinsic tags; it is imported on the
first :func:`load_template` call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FunctionSpec",
    "RuleSpec",
    "SamTemplate",
    "ScheduleSpec",
    "StateMachineSpec",
    "TableSpec",
    "TemplateError",
    "load_template",
    "resolve",
    "resolve_environment",
    "substitute_definition",
    "translate",
]

# Pseudo parameters with a fixed answer for the twin unless ``refs`` says otherwise. The
# stack id is the one ``sam local invoke`` gives every stack, so the functions'
# ``ORDER_ID_PREFIX`` (``fb51af3dc0``) is the same in both.
_PSEUDO_DEFAULTS = {
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/local/"
        "51af3dc0-da77-11e4-872e-1234567db123"
    ),
}
_SUB_TOKEN = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """The template cannot be read, or a value in it cannot be resolved."""


# --------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class TableSpec:
    """An ``AWS::DynamoDB::Table``: its keys as declared, so tests and the twin match AWS."""

    logical_id: str
    key_schema: list[tuple[str, str]]  # [(attribute, "HASH" | "RANGE")]
    attribute_definitions: dict[str, str]  # {attribute: "S" | "N" | "B"}
    gsis: list[tuple[str, list[tuple[str, str]], dict[str, Any]]] = field(default_factory=list)
    ttl_attribute: str | None = None

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3 ``create_table`` (on-demand), e.g. against moto."""
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k in self.key_schema],
            "AttributeDefinitions": [
                {"AttributeName": a, "AttributeType": t}
                for a, t in self.attribute_definitions.items()
            ],
        }
        if self.gsis:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": name,
                    "KeySchema": [{"AttributeName": a, "KeyType": k} for a, k in keys],
                    "Projection": dict(projection),
                }
                for name, keys, projection in self.gsis
            ]
        return kwargs


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule declared on a function (``EventBridgeRule``/``CloudWatchEvent``).

    ``name`` is the event's key under the function's ``Events``; ``bus_ref`` is the
    logical id of the bus resource (``None`` for the default bus, or the literal name
    when the template names a bus it does not define); ``rule_name`` is the raw
    ``RuleName`` property, if set.
    """

    name: str
    bus_ref: str | None
    pattern: dict[str, Any]
    rule_name: Any = None


@dataclass(frozen=True)
class ScheduleSpec:
    """A ``Schedule`` event; ``expression`` is raw (e.g. ``{"Ref": "ReconcileSchedule"}``)."""

    name: str
    expression: Any
    rule_name: Any = None


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path  # absolute directory
    handler: str  # "app.handler": module app.py in code_uri, function handler
    environment: dict[str, Any]  # Globals merged with the function's own; raw values
    event_rules: list[RuleSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    reserved_concurrency: int | None = None
    timeout: int | None = None  # seconds, Globals merged


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_path: Path  # absolute path of the ASL file
    substitutions: dict[str, Any]  # raw DefinitionSubstitutions
    name: Any  # raw Name (e.g. {"Fn::Sub": "${AWS::StackName}-trade-cycle"}) or None
    type: str  # "STANDARD" | "EXPRESS"


@dataclass(frozen=True)
class SamTemplate:
    """What the twin needs from ``template.yaml``.

    ``parameters`` holds the parameters that have a default, as strings; a parameter
    without a default (e.g. the listener image) is absent.
    """

    path: Path
    parameters: dict[str, str]
    tables: dict[str, TableSpec]
    functions: dict[str, FunctionSpec]
    state_machines: dict[str, StateMachineSpec]
    event_buses: dict[str, Any]  # logical id -> raw Name
    secrets: list[str]  # logical ids
    ssm_parameters: dict[str, Any]  # logical id -> raw Value
    conditions: dict[str, Any] = field(default_factory=dict)  # raw Conditions section
    resources: dict[str, Any] = field(default_factory=dict)  # raw Resources section


# --------------------------------------------------------------------------- loading
def load_template(path: str | Path) -> SamTemplate:
    """Read a SAM template; relative ``CodeUri``/``DefinitionUri`` resolve from its folder."""
    # Imported here: cfn-lint takes ~0.8 s to import and only loading needs it.
    from cfnlint.decode import cfn_yaml

    template_path = Path(path).resolve()
    try:
        raw = cfn_yaml.load(str(template_path))
    except Exception as exc:  # the YAML library raises several unrelated types
        raise TemplateError(f"cannot read {template_path}: {exc}") from exc
    doc = _plain(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("Resources"), dict):
        raise TemplateError(f"{template_path}: no Resources section")
    base = template_path.parent
    resources: dict[str, Any] = doc["Resources"]
    globals_function: dict[str, Any] = (doc.get("Globals") or {}).get("Function") or {}

    tables: dict[str, TableSpec] = {}
    functions: dict[str, FunctionSpec] = {}
    state_machines: dict[str, StateMachineSpec] = {}
    buses: dict[str, Any] = {}
    secrets: list[str] = []
    ssm: dict[str, Any] = {}
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::DynamoDB::Table":
            tables[logical_id] = _table(logical_id, props)
        elif kind == "AWS::Serverless::SimpleTable":
            raise TemplateError(
                f"{logical_id}: use AWS::DynamoDB::Table so the key schema is explicit"
            )
        elif kind == "AWS::Serverless::Function":
            functions[logical_id] = _function(logical_id, props, globals_function, base)
        elif kind == "AWS::Serverless::StateMachine":
            state_machines[logical_id] = _state_machine(logical_id, props, base)
        elif kind == "AWS::Events::EventBus":
            buses[logical_id] = props.get("Name")
        elif kind == "AWS::SecretsManager::Secret":
            secrets.append(logical_id)
        elif kind == "AWS::SSM::Parameter":
            ssm[logical_id] = props.get("Value")

    parameters = {
        name: _scalar_text(spec["Default"])
        for name, spec in (doc.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    return SamTemplate(
        path=template_path,
        parameters=parameters,
        tables=tables,
        functions=functions,
        state_machines=state_machines,
        event_buses=buses,
        secrets=secrets,
        ssm_parameters=ssm,
        conditions=doc.get("Conditions") or {},
        resources=resources,
    )


def _plain(node: Any) -> Any:
    """cfn-lint's YAML node classes -> plain dict / list / str / int / float / bool."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar_text(v) for v in value)
    return str(value)


def _key_schema(logical_id: str, schema: Any) -> list[tuple[str, str]]:
    if not isinstance(schema, list) or not schema:
        raise TemplateError(f"{logical_id}: KeySchema must be a non-empty list")
    return [(str(k["AttributeName"]), str(k["KeyType"])) for k in schema]


def _table(logical_id: str, props: dict[str, Any]) -> TableSpec:
    attributes = {
        str(a["AttributeName"]): str(a["AttributeType"])
        for a in props.get("AttributeDefinitions") or []
    }
    keys = _key_schema(logical_id, props.get("KeySchema"))
    gsis = [
        (
            str(index["IndexName"]),
            _key_schema(f"{logical_id}.{index['IndexName']}", index.get("KeySchema")),
            dict(index.get("Projection") or {"ProjectionType": "ALL"}),
        )
        for index in props.get("GlobalSecondaryIndexes") or []
    ]
    for attr, _ in keys + [k for _, schema, _ in gsis for k in schema]:
        if attr not in attributes:
            raise TemplateError(f"{logical_id}: key attribute {attr!r} has no AttributeDefinition")
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled", False) is True else None
    return TableSpec(
        logical_id=logical_id,
        key_schema=keys,
        attribute_definitions=attributes,
        gsis=gsis,
        ttl_attribute=ttl_attribute,
    )


def _variables(section: dict[str, Any]) -> dict[str, Any]:
    env = section.get("Environment") or {}
    variables = env.get("Variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError("Environment.Variables must be a mapping")
    return dict(variables)


def _function(
    logical_id: str, props: dict[str, Any], globals_function: dict[str, Any], base: Path
) -> FunctionSpec:
    code_uri = props.get("CodeUri", globals_function.get("CodeUri"))
    if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
        raise TemplateError(f"{logical_id}: CodeUri must be a local directory, got {code_uri!r}")
    handler = props.get("Handler", globals_function.get("Handler"))
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id}: Handler must look like 'module.function'")

    rules: list[RuleSpec] = []
    schedules: list[ScheduleSpec] = []
    for name, event in (props.get("Events") or {}).items():
        event_props = event.get("Properties") or {}
        if event.get("Type") in ("EventBridgeRule", "CloudWatchEvent"):
            rules.append(
                RuleSpec(
                    name=name,
                    bus_ref=_bus_ref(event_props.get("EventBusName")),
                    pattern=dict(event_props.get("Pattern") or {}),
                    rule_name=event_props.get("RuleName"),
                )
            )
        elif event.get("Type") == "Schedule":
            schedules.append(
                ScheduleSpec(
                    name=name,
                    expression=event_props.get("Schedule"),
                    rule_name=event_props.get("Name"),
                )
            )

    reserved = props.get("ReservedConcurrentExecutions")
    timeout = props.get("Timeout", globals_function.get("Timeout"))
    return FunctionSpec(
        logical_id=logical_id,
        code_uri=(base / code_uri).resolve(),
        handler=handler,
        environment=_variables(globals_function) | _variables(props),
        event_rules=rules,
        schedules=schedules,
        reserved_concurrency=int(reserved) if reserved is not None else None,
        timeout=int(timeout) if isinstance(timeout, int | str) else None,
    )


def _bus_ref(value: Any) -> str | None:
    if value is None or value == "default":
        return None
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
        raise TemplateError(f"EventBusName {value!r}: expected a Ref to a bus or a bus name")
    return str(value)


def _state_machine(logical_id: str, props: dict[str, Any], base: Path) -> StateMachineSpec:
    uri = props.get("DefinitionUri")
    if not isinstance(uri, str) or uri.startswith("s3://"):
        raise TemplateError(
            f"{logical_id}: DefinitionUri must be a local ASL file (keep ASL out of the template)"
        )
    return StateMachineSpec(
        logical_id=logical_id,
        definition_path=(base / uri).resolve(),
        substitutions=dict(props.get("DefinitionSubstitutions") or {}),
        name=props.get("Name"),
        type=str(props.get("Type", "STANDARD")),
    )


# --------------------------------------------------------------------------- resolving
class _NoValue:
    """``AWS::NoValue``: the property (or environment variable) is left out."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def resolve(
    value: Any,
    refs: Mapping[str, str],
    attrs: Mapping[tuple[str, str], str],
    conditions: Mapping[str, Any] | None = None,
) -> str:
    """Resolve an intrinsic-function value to a string.

    ``refs`` maps parameter names, logical ids and pseudo parameters (``AWS::StackName``,
    ``AWS::Region``, ``AWS::AccountId``...) to what ``Ref`` returns; ``attrs`` maps
    ``(logical_id, attribute)`` to what ``Fn::GetAtt`` returns. ``conditions`` (the raw
    Conditions section, or names mapped to booleans) is needed only for ``Fn::If``;
    conditions are evaluated with ``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``/
    ``Condition`` over the same ``refs``. ``AWS::Partition`` and ``AWS::URLSuffix``
    default to the commercial partition. Raises :class:`TemplateError` naming the first
    reference it cannot resolve, and for a value that resolves to ``AWS::NoValue``.
    """
    result = _Resolver(refs, attrs, conditions).value(value)
    if result is NO_VALUE:
        raise TemplateError("value resolves to AWS::NoValue (the property is left out)")
    return str(result)


def resolve_environment(
    environment: Mapping[str, Any],
    refs: Mapping[str, str],
    attrs: Mapping[tuple[str, str], str],
    conditions: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Resolve every variable of a function's environment; ``AWS::NoValue`` ones are dropped."""
    resolver = _Resolver(refs, attrs, conditions)
    out: dict[str, str] = {}
    for key, raw in environment.items():
        try:
            result = resolver.value(raw)
        except TemplateError as exc:
            raise TemplateError(f"environment variable {key}: {exc}") from None
        if result is not NO_VALUE:
            out[key] = str(result)
    return out


class _Resolver:
    def __init__(
        self,
        refs: Mapping[str, str],
        attrs: Mapping[tuple[str, str], str],
        conditions: Mapping[str, Any] | None,
    ) -> None:
        self.refs = refs
        self.attrs = attrs
        self.conditions = conditions

    def value(self, node: Any) -> str | _NoValue:
        if isinstance(node, bool):
            return "true" if node else "false"
        if isinstance(node, str | int | float):
            return str(node)
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            handler = _FUNCTIONS.get(fn)
            if handler is not None:
                return handler(self, arg)
        raise TemplateError(f"cannot resolve {node!r} to a string")

    def list_value(self, node: Any) -> list[str]:
        """A list argument: a literal list, or an intrinsic that yields a comma-joined list."""
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if isinstance(item, str)]
        if isinstance(node, dict) and set(node) == {"Fn::Split"}:
            return self.split(node["Fn::Split"])
        resolved = self.value(node)
        return [] if resolved is NO_VALUE or resolved == "" else str(resolved).split(",")

    def ref(self, name: Any) -> str | _NoValue:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.refs:
            return str(self.refs[name])
        if name in _PSEUDO_DEFAULTS:
            return _PSEUDO_DEFAULTS[name]
        raise TemplateError(f"unresolvable reference: Ref {name}")

    def get_att(self, arg: Any) -> str:
        if isinstance(arg, str):
            logical_id, _, attribute = arg.partition(".")
        elif isinstance(arg, list) and len(arg) == 2:
            logical_id, attribute = str(arg[0]), arg[1]
            if not isinstance(attribute, str):
                attribute = str(self.value(attribute))
        else:
            raise TemplateError(f"malformed Fn::GetAtt {arg!r}")
        key = (logical_id, attribute)
        if key not in self.attrs:
            raise TemplateError(f"unresolvable reference: Fn::GetAtt {logical_id}.{attribute}")
        return str(self.attrs[key])

    def sub(self, arg: Any) -> str:
        if isinstance(arg, str):
            text, variables = arg, {}
        elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
            text, variables = arg[0], dict(arg[1] or {})
        else:
            raise TemplateError(f"malformed Fn::Sub {arg!r}")

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):  # ${!Literal} is the escape for a literal ${Literal}
                return "${" + token[1:] + "}"
            token = token.strip()
            if token in variables:
                result = self.value(variables[token])
            elif "." in token and not token.startswith("AWS::"):
                logical_id, _, attribute = token.partition(".")
                result = self.get_att([logical_id, attribute])
            else:
                result = self.ref(token)
            if result is NO_VALUE:
                raise TemplateError(f"Fn::Sub variable {token} resolves to AWS::NoValue")
            return str(result)

        return _SUB_TOKEN.sub(replace, text)

    def join(self, arg: Any) -> str:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"malformed Fn::Join {arg!r}")
        delimiter = self.value(arg[0])
        return str(delimiter).join(self.list_value(arg[1]))

    def split(self, arg: Any) -> list[str]:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"malformed Fn::Split {arg!r}")
        delimiter, source = str(self.value(arg[0])), self.value(arg[1])
        return [] if source is NO_VALUE else str(source).split(delimiter)

    def select(self, arg: Any) -> str:
        if not (isinstance(arg, list) and len(arg) == 2):
            raise TemplateError(f"malformed Fn::Select {arg!r}")
        index = int(str(self.value(arg[0])))
        items = self.list_value(arg[1])
        if not 0 <= index < len(items):
            raise TemplateError(f"Fn::Select index {index} out of range for {items!r}")
        return items[index]

    def if_(self, arg: Any) -> str | _NoValue:
        if not (isinstance(arg, list) and len(arg) == 3):
            raise TemplateError(f"malformed Fn::If {arg!r}")
        return self.value(arg[1] if self.condition(str(arg[0])) else arg[2])

    def condition(self, name: str) -> bool:
        if self.conditions is None or name not in self.conditions:
            raise TemplateError(f"unresolvable condition: {name}")
        definition = self.conditions[name]
        if isinstance(definition, bool):
            return definition
        return self.evaluate(definition)

    def evaluate(self, node: Any) -> bool:
        if isinstance(node, bool):
            return node
        if isinstance(node, dict) and len(node) == 1:
            ((fn, arg),) = node.items()
            if fn == "Condition":
                return self.condition(str(arg))
            if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
                return self.value(arg[0]) == self.value(arg[1])
            if fn == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
                return not self.evaluate(arg[0])
            if fn == "Fn::And" and isinstance(arg, list):
                return all(self.evaluate(item) for item in arg)
            if fn == "Fn::Or" and isinstance(arg, list):
                return any(self.evaluate(item) for item in arg)
        raise TemplateError(f"cannot evaluate condition {node!r}")


_FUNCTIONS: dict[str, Callable[[_Resolver, Any], str | _NoValue]] = {
    "Ref": _Resolver.ref,
    "Fn::GetAtt": _Resolver.get_att,
    "Fn::Sub": _Resolver.sub,
    "Fn::Join": _Resolver.join,
    "Fn::Select": _Resolver.select,
    "Fn::If": _Resolver.if_,
}


# --------------------------------------------------------------------------- ASL
def substitute_definition(definition_text: str, substitutions: Mapping[str, str]) -> str:
    """Apply ``DefinitionSubstitutions`` to ASL text, as Step Functions deployment does.

    Every ``${Name}`` token is replaced by ``substitutions[Name]``; raises
    :class:`TemplateError` listing any token left without a value.
    """
    missing: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in substitutions:
            return str(substitutions[name])
        missing.add(name)
        return match.group(0)

    text = _SUB_TOKEN.sub(replace, definition_text)
    if missing:
        names = ", ".join("${" + name + "}" for name in sorted(missing))
        raise TemplateError(f"definition has no substitution for {names}")
    return text


# --------------------------------------------------------------------------- SAM transform
# Properties that point at local paths which `sam build`/`sam package` upload to S3.
# The translator only accepts S3 locations (or inline definitions), so they are rewritten.
_LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": ("CodeUri",),
    "AWS::Serverless::LayerVersion": ("ContentUri",),
    "AWS::Serverless::StateMachine": ("DefinitionUri",),
    "AWS::Serverless::Api": ("DefinitionUri",),
    "AWS::Serverless::HttpApi": ("DefinitionUri",),
}
_PLACEHOLDER_BUCKET = "flipbot-lint-artifacts"


def _s3_uri(local: str) -> str:
    return f"s3://{_PLACEHOLDER_BUCKET}/{local.strip('/').replace('/', '-') or 'root'}.zip"


def _rewrite_local_uris(template: dict[str, Any]) -> dict[str, Any]:
    """Return a copy whose local CodeUri/ContentUri/DefinitionUri are s3:// URIs."""
    import copy

    out = copy.deepcopy(template)
    globals_function = out.get("Globals", {}).get("Function", {})
    if isinstance(globals_function.get("CodeUri"), str):
        globals_function["CodeUri"] = _s3_uri(globals_function["CodeUri"])
    for resource in out.get("Resources", {}).values():
        if not isinstance(resource, dict):
            continue
        props = resource.get("Properties")
        if not isinstance(props, dict):
            continue
        for prop in _LOCAL_URI_PROPERTIES.get(resource.get("Type", ""), ()):
            value = props.get(prop)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[prop] = _s3_uri(value)
    return out


def translate(path: str | Path) -> dict[str, Any]:
    """Translate a SAM template into plain CloudFormation, offline (aws-sam-translator).

    Policy templates (``DynamoDBCrudPolicy``...) come out as the statements AWS will
    evaluate, each function gets its ``<Function>Role``. Raises
    ``samtranslator.model.exceptions.InvalidDocumentException`` (with every problem
    listed) when the SAM template is invalid.
    """
    import json
    import logging

    import boto3
    from cfnlint.decode import cfn_yaml
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # The translator's own usage metrics are never published offline; it warns each time.
    logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)
    sam_template = _rewrite_local_uris(cfn_yaml.load(str(path)))
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name="us-east-1"),
    )
    translated: dict[str, Any] = translator.translate(
        sam_template=sam_template,
        parameter_values={},
        get_managed_policy_map=lambda: {},
    )
    # Round-trip through JSON: plain dicts/lists/str, no YAML node classes.
    result: dict[str, Any] = json.loads(json.dumps(translated, default=str))
    return result
