"""The local cloud: the resources of ``template.yaml`` created in moto, wired as deployed.

Tables come from the template's key schemas, functions from ``CodeUri`` + ``Handler``
with the template's environment, EventBridge rules and patterns from the functions'
``Events``, and the state machine from its ``DefinitionUri`` with
``DefinitionSubstitutions`` applied. Nothing here names a table, rule or pattern of its
own: change the template and the twin changes with it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flipbot_dev.twin.iam import Authorizer, Where, load_for_template
from flipbot_dev.twin.limits import check_environment
from flipbot_dev.twin.moto_hooks import Handler, LambdaRegistry, environment
from flipbot_dev.twin.template import (
    SamTemplate,
    load_template,
    resolve,
    resolve_environment,
    substitute_definition,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"

#: Environment the twin adds to every function: no tracing, errors-only logs. What a
#: function prints (logs, EMF metrics) is kept per function, as CloudWatch Logs would.
TWIN_ENV = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_METRICS_NAMESPACE": "flipbot",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "POWERTOOLS_DEV": "false",
}


@dataclass
class ScheduledTarget:
    function_name: str
    rule_name: str
    every_ms: int


@dataclass
class LocalCloud:
    template: SamTemplate
    stack_name: str
    refs: dict[str, str]
    attrs: dict[tuple[str, str], str]
    function_names: dict[str, str]  # logical id -> function name
    state_machine_arn: str
    bus_name: str
    schedules: list[ScheduledTarget] = field(default_factory=list)
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: every AWS call authorized against its caller's role (None: IAM not enforced)
    authorizer: Authorizer | None = None
    #: function name -> its template environment's size, as Lambda measures it
    environment_sizes: dict[str, int] = field(default_factory=dict)

    def environment_of(self, logical_id: str) -> dict[str, str]:
        return self.environments[self.function_names[logical_id]]


def load_handler(code_uri: Path, handler: str, logical_id: str) -> Handler:
    """Import ``<CodeUri>/<module>.py`` as its own module, as a Lambda sandbox would."""
    module_name, _, function = handler.rpartition(".")
    path = Path(code_uri) / f"{module_name.replace('.', '/')}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{logical_id}: handler file {path} (CodeUri + Handler) is missing")
    unique = f"flipbot_function_{logical_id}"
    spec = importlib.util.spec_from_file_location(unique, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    spec.loader.exec_module(module)
    found: Handler = getattr(module, function)
    return found


def rate_to_ms(expression: str) -> int:
    """``rate(15 minutes)`` -> milliseconds (cron expressions are not replayed)."""
    inner = expression.strip()
    if not (inner.startswith("rate(") and inner.endswith(")")):
        raise ValueError(f"only rate() schedules replay in the twin, got {expression!r}")
    value, unit = inner[5:-1].split()
    seconds = {
        "minute": 60,
        "minutes": 60,
        "hour": 3600,
        "hours": 3600,
        "day": 86400,
        "days": 86400,
    }[unit]
    return int(value) * seconds * 1000


def build(
    template_path: Path,
    registry: LambdaRegistry,
    *,
    stack_name: str = "flipbot-local",
    parameters: Mapping[str, str] | None = None,
    secrets: Mapping[str, dict[str, str]] | None = None,
    extra_env: Mapping[str, str] | None = None,
    with_iam: bool = True,
) -> LocalCloud:
    """Create every resource the twin needs inside an active ``moto.mock_aws``.

    With ``with_iam`` (the default) the cloud gets an :class:`~flipbot_dev.twin.iam.Authorizer`
    holding each principal's role from the SAM-translated template, and ``registry`` runs
    each handler under its function's role; install it with ``cloud.authorizer.installed()``.
    """
    import boto3

    template = load_template(template_path)
    params = {**template.parameters, **(parameters or {})}
    refs: dict[str, str] = {
        **params,
        "AWS::StackName": stack_name,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
    }
    attrs: dict[tuple[str, str], str] = {}

    ddb = boto3.client("dynamodb", region_name=REGION)
    for logical_id, table in template.tables.items():
        name = f"{stack_name}-{logical_id}"
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        ddb.create_table(**table.create_table_kwargs(name))

    events = boto3.client("events", region_name=REGION)
    bus_name = "default"
    for logical_id, raw_name in template.event_buses.items():
        bus_name = resolve(raw_name, refs, attrs) if raw_name else f"{stack_name}-{logical_id}"
        arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
        refs[logical_id] = bus_name
        attrs[(logical_id, "Arn")] = arn
        attrs[(logical_id, "Name")] = bus_name

    sm = boto3.client("secretsmanager", region_name=REGION)
    secret_arns: dict[str, str] = {}
    for logical_id in template.secrets:
        value = (secrets or {}).get(logical_id, {})
        arn = sm.create_secret(Name=f"{stack_name}/{logical_id}", SecretString=json.dumps(value))[
            "ARN"
        ]
        refs[logical_id] = arn
        attrs[(logical_id, "Arn")] = arn
        secret_arns[arn] = secret_arns[f"{stack_name}/{logical_id}"] = arn

    ssm = boto3.client("ssm", region_name=REGION)
    for logical_id, default in template.ssm_parameters.items():
        name = f"/{stack_name}/{logical_id}"
        ssm.put_parameter(Name=name, Value=str(default or "off"), Type="String")
        refs[logical_id] = name

    iam = boto3.client("iam", region_name=REGION)
    role_arn = iam.create_role(RoleName=f"{stack_name}-twin", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]

    # Names and ARNs first: environments and substitutions may refer to any of them.
    function_names: dict[str, str] = {}
    for logical_id in template.functions:
        name = f"{stack_name}-{logical_id}"
        function_names[logical_id] = name
        refs[logical_id] = name
        attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    sm_arns: dict[str, str] = {}
    for logical_id, machine in template.state_machines.items():
        name = resolve(machine.name, refs, attrs) if machine.name else f"{stack_name}-{logical_id}"
        arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        sm_arns[logical_id] = arn
        refs[logical_id] = arn
        attrs[(logical_id, "Arn")] = arn
        attrs[(logical_id, "Name")] = name

    lam = boto3.client("lambda", region_name=REGION)
    environments: dict[str, dict[str, str]] = {}
    environment_sizes: dict[str, int] = {}
    schedules: list[ScheduledTarget] = []
    for logical_id, fn in template.functions.items():
        name = function_names[logical_id]
        env = resolve_environment(fn.environment, refs, attrs, template.conditions)
        # What the template deploys (the twin's own additions aside) must fit in 4 KB.
        environment_sizes[name] = check_environment(logical_id, env)
        env = {**env, **TWIN_ENV, **(extra_env or {}), "AWS_LAMBDA_FUNCTION_NAME": name}
        environments[name] = env
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=fn.handler,
            Code={"ZipFile": b"twin"},
            Environment={"Variables": {k: v for k, v in env.items() if not k.startswith("AWS_")}},
        )
        # Module-level code runs at init, with the function's env.
        with environment(env, added=registry.added_variables):
            handler = load_handler(fn.code_uri, fn.handler, logical_id)
        registry.register(name, handler, env)
        for rule in fn.event_rules:
            rule_bus = refs[rule.bus_ref] if rule.bus_ref else "default"
            rule_name = f"{name}-{rule.name}"[:64]
            events.put_rule(
                Name=rule_name,
                EventBusName=rule_bus,
                EventPattern=json.dumps(rule.pattern),
                State="ENABLED",
            )
            events.put_targets(
                Rule=rule_name,
                EventBusName=rule_bus,
                Targets=[{"Id": logical_id, "Arn": attrs[(logical_id, "Arn")]}],
            )
        for schedule in fn.schedules:
            expression = resolve(schedule.expression, refs, attrs)
            schedules.append(ScheduledTarget(name, schedule.name, rate_to_ms(expression)))

    sfn = boto3.client("stepfunctions", region_name=REGION)
    state_machine_arn = ""
    for logical_id, machine in template.state_machines.items():
        substitutions = {k: resolve(v, refs, attrs) for k, v in machine.substitutions.items()}
        definition = substitute_definition(machine.definition_path.read_text(), substitutions)
        created = sfn.create_state_machine(
            name=attrs[(logical_id, "Name")],
            definition=definition,
            roleArn=role_arn,
            type=str(machine.type or "STANDARD"),
        )
        state_machine_arn = created["stateMachineArn"]

    authorizer = None
    if with_iam:
        machine_arn = state_machine_arn
        authorizer = Authorizer(
            load_for_template(template.path, refs, attrs),
            Where(REGION, ACCOUNT, secrets=secret_arns, token_owner=lambda _token: machine_arn),
        )
        registry.authorizer = authorizer
        registry.principal_of.update({name: lid for lid, name in function_names.items()})

    return LocalCloud(
        template=template,
        stack_name=stack_name,
        refs=refs,
        attrs=attrs,
        function_names=function_names,
        state_machine_arn=state_machine_arn,
        bus_name=bus_name,
        schedules=schedules,
        environments=environments,
        authorizer=authorizer,
        environment_sizes=environment_sizes,
    )
