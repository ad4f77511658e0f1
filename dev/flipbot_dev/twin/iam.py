"""IAM for the digital twin: every AWS call authorized against its caller's own role.

moto enforces no resource-level IAM, so a twin that trusts it proves the system on a
cloud more forgiving than AWS. This module closes that gap:

* :func:`load_principals` reads the roles of the **SAM-translated** template (policy
  templates such as ``DynamoDBCrudPolicy`` expanded by aws-sam-translator, managed
  policies from :data:`MANAGED_POLICIES`) and resolves their intrinsics to the twin's own
  resource names and ARNs. Each Lambda function, the state machine and the listener's
  task are principals; each is named by its logical id.
* :func:`requests_for` maps one botocore operation and its parameters to what IAM
  authorizes: ``(action, resource ARN, condition context)`` triples, following the
  Service Authorization Reference (a Query on a GSI is ``table/T/index/I``; each item of
  ``TransactWriteItems`` needs its own action on its own table; ``PutMetricData`` is
  resource ``*`` with the ``cloudwatch:namespace`` condition key...). An operation it
  cannot map raises :class:`Unmapped`: the call is denied (fail closed).
* :class:`Authorizer` patches ``botocore.client.BaseClient._make_api_call`` (boto3 and
  pynamodb both end there) while installed. The caller is the principal on top of the
  current thread's stack (:meth:`Authorizer.acting_as`); threads the twin did not start
  act as the state machine (moto runs executions in their own threads). A denied call
  raises the ``ClientError`` AWS raises, ``AccessDeniedException`` with AWS's message,
  so a replay fails exactly where the deployed stack would.

Evaluation follows IAM's identity-policy logic: an explicit Deny wins, then any Allow;
no Allow means denied. ``Action``/``NotAction`` and ``Resource``/``NotResource`` take
``*`` and ``?`` wildcards (actions case-insensitively); conditions support the string,
ARN and Bool operators with ``IfExists``; an operator it does not know never matches,
so an Allow under it does not apply.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "MANAGED_POLICIES",
    "UNUSED_GRANTS",
    "Authorizer",
    "Denial",
    "Principal",
    "Statement",
    "Unmapped",
    "load_principals",
    "requests_for",
]

#: The AWS managed policies SAM attaches, by ARN (their documents as AWS publishes them).
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}

#: Grants no call of a replay uses, kept on purpose: (principal, action, resource) globs
#: and the reason; the first that matches counts. ``flipbot iam`` flags every other grant
#: that nothing used.
UNUSED_GRANTS: tuple[tuple[str, str, str, str], ...] = (
    ("StateMachine", "logs:*", "*", "Step Functions delivers the execution logs (vended logs)"),
    (
        "ListenerExecutionRole",
        "*",
        "*",
        "the ECS agent pulls the image, injects secrets, ships logs",
    ),
    ("*", "logs:*", "*", "the Lambda service writes the function's logs with its role"),
    (
        "*",
        "sqs:SendMessage",
        "*",
        "the Lambda service dead-letters a failed asynchronous invocation with the role",
    ),
    (
        "ListenerTaskRole",
        "cloudwatch:PutMetricData",
        "*",
        "the listener's own metrics; the twin's loop stands in for its events and snapshot only",
    ),
    (
        "ConsultAiFunction",
        "secretsmanager:GetSecretValue",
        "*:secret:*OpenAiApiSecret*",
        "read with Strategy=ai and a key set; the twin builds its AI client from the shell",
    ),
    (
        "PlaceOrderFunction",
        "states:SendTask*",
        "*",
        "resumes its task when the order filled at once (a taker fill, or a retry after it)",
    ),
    (
        "OnOrderUpdateFunction",
        "secretsmanager:GetSecretValue",
        "*:secret:*BinanceApiSecret*",
        "the follow-up of a filled manual BUY places a sell; a replay places no manual order",
    ),
    (
        "OnOrderUpdateFunction",
        "ssm:GetParameter",
        "*",
        "the follow-up of a filled manual BUY checks the kill switch; a replay has none",
    ),
    (
        "ConsultAiFunction",
        "dynamodb:*",
        "*TradesTable*",
        "the adaptive and ma-cross strategies read past trades (Strategy parameter)",
    ),
)

# Which boto3 client names sign under a different IAM prefix.
_PREFIX = {"stepfunctions": "states", "monitoring": "cloudwatch"}
# Operations whose IAM action is not the operation's name.
_ACTION_NAME = {("lambda", "Invoke"): "InvokeFunction", ("lambda", "InvokeAsync"): "InvokeAsync"}


class Unmapped(Exception):
    """The evaluator does not know which action and resource an operation needs."""


# --------------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str = ""  # the policy it came from, for reports

    def applies(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        if self.actions and not any(_match(p, action, fold=True) for p in self.actions):
            return False
        if self.not_actions and any(_match(p, action, fold=True) for p in self.not_actions):
            return False
        if self.resources and not any(_match(p, resource) for p in self.resources):
            return False
        if self.not_resources and any(_match(p, resource) for p in self.not_resources):
            return False
        return all(
            _condition(operator, key, values, context)
            for operator, block in self.conditions.items()
            for key, values in block.items()
        )


@dataclass(frozen=True)
class Principal:
    """One role, named by the logical id of what assumes it (a function, ``StateMachine``,
    ``ListenerTaskRole``...)."""

    name: str
    role_name: str
    statements: tuple[Statement, ...]

    def decide(self, action: str, resource: str, context: Mapping[str, str]) -> bool:
        applicable = [s for s in self.statements if s.applies(action, resource, context)]
        if any(s.effect == "Deny" for s in applicable):
            return False
        return any(s.effect == "Allow" for s in applicable)


@lru_cache(maxsize=512)
def _pattern(text: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if fold else re.DOTALL)


def _match(pattern: str, value: str, *, fold: bool = False) -> bool:
    return bool(_pattern(pattern, fold).match(value))


def _condition(operator: str, key: str, values: Any, context: Mapping[str, str]) -> bool:
    expected = [str(v) for v in (values if isinstance(values, list) else [values])]
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = context.get(key)
    if actual is None:
        return if_exists or (base == "Null" and expected == ["true"])
    tests: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda e, a: e == a,
        "StringNotEquals": lambda e, a: e != a,
        "StringEqualsIgnoreCase": lambda e, a: e.lower() == a.lower(),
        "StringLike": _match,
        "StringNotLike": lambda e, a: not _match(e, a),
        "ArnEquals": lambda e, a: e == a,
        "ArnLike": _match,
        "ArnNotEquals": lambda e, a: e != a,
        "ArnNotLike": lambda e, a: not _match(e, a),
        "Bool": lambda e, a: e.lower() == a.lower(),
    }
    test = tests.get(base)
    if test is None:
        return False  # an operator the evaluator does not know never holds
    if base.startswith(("StringNot", "ArnNot")):
        return all(test(e, actual) for e in expected)
    return any(test(e, actual) for e in expected)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(str(v) for v in (value if isinstance(value, list) else [value]))


def _statements(document: Any, source: str, resolve: Callable[[Any], Any]) -> list[Statement]:
    raw = document.get("Statement", []) if isinstance(document, dict) else document
    out = []
    for raw_item in raw if isinstance(raw, list) else [raw]:
        item = resolve(raw_item)
        out.append(
            Statement(
                effect=str(item.get("Effect", "Allow")),
                actions=_strings(item.get("Action")),
                not_actions=_strings(item.get("NotAction")),
                resources=_strings(item.get("Resource")),
                not_resources=_strings(item.get("NotResource")),
                conditions=item.get("Condition") or {},
                source=source,
            )
        )
    return out


def load_principals(
    translated: Mapping[str, Any],
    refs: Mapping[str, str],
    attrs: Mapping[tuple[str, str], str],
) -> dict[str, Principal]:
    """The principals of a SAM-translated template, their policies resolved to the twin.

    Every ``AWS::IAM::Role`` becomes a principal named after what assumes it: a Lambda
    function or a state machine whose ``Role``/``RoleArn`` is that role's ``Arn``, or the
    role's own logical id (the listener's ``ListenerTaskRole``).
    """
    from flipbot_dev.twin.template import TemplateError
    from flipbot_dev.twin.template import resolve as resolve_value

    conditions = translated.get("Conditions") or {}

    resources: Mapping[str, Any] = translated.get("Resources", {})
    assumed_by: dict[str, str] = {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties") or {}
        role = props.get("Role") or props.get("RoleArn")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            target = role["Fn::GetAtt"]
            role_id = target[0] if isinstance(target, list) else str(target).split(".")[0]
            assumed_by[str(role_id)] = logical_id

    def resolve(node: Any) -> Any:
        # A value the twin has no resource for (the listener's log group, its image
        # repository) stays an unresolved marker that matches no request.
        if isinstance(node, list):
            return [resolve(v) for v in node]
        if isinstance(node, dict):
            if len(node) == 1 and next(iter(node)).startswith(("Fn::", "Ref")):
                try:
                    return resolve_value(node, refs, attrs, conditions)
                except TemplateError:
                    return f"<unresolved {json.dumps(node, sort_keys=True)}>"
            return {k: resolve(v) for k, v in node.items()}
        return node

    principals: dict[str, Principal] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::IAM::Role":
            continue
        props = resource.get("Properties") or {}
        statements: list[Statement] = []
        for policy in props.get("Policies") or []:
            name = f"{logical_id}/{policy.get('PolicyName', '?')}"
            statements += _statements(policy.get("PolicyDocument") or {}, name, resolve)
        for raw_arn in props.get("ManagedPolicyArns") or []:
            arn = str(resolve(raw_arn))
            if arn not in MANAGED_POLICIES:
                raise TemplateError(
                    f"{logical_id}: managed policy {arn} is not known to the twin "
                    "(add its document to flipbot_dev.twin.iam.MANAGED_POLICIES)"
                )
            statements += _statements(MANAGED_POLICIES[arn], arn, resolve)
        name = assumed_by.get(logical_id, logical_id)
        principals[name] = Principal(name, logical_id, tuple(statements))
    return principals


# --------------------------------------------------------------------------- requests
@dataclass(frozen=True)
class Where:
    """Region and account the ARNs are built in, and lookups of the twin's resources."""

    region: str
    account: str
    #: secret name or ARN -> its full ARN (with the random suffix)
    secrets: Mapping[str, str] = field(default_factory=dict)
    #: task token -> the ARN of the state machine its execution belongs to
    token_owner: Callable[[str], str] | None = None

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def stable(self, resource: str) -> str:
        """``resource`` as reports show it: a secret's random suffix masked, so that the
        same replay gives the same report."""
        if resource in self.secrets.values():
            return resource[:-6] + "??????"
        return resource


Request = tuple[str, str, dict[str, str]]  # (action, resource ARN, condition context)


def requests_for(
    service: str, operation: str, params: Mapping[str, Any], where: Where
) -> list[Request]:
    """What IAM authorizes for one API call; raises :class:`Unmapped` when unknown."""
    prefix = _PREFIX.get(service, service)
    action = f"{prefix}:{_ACTION_NAME.get((service, operation), operation)}"
    mapper = _MAPPERS.get(prefix)
    if mapper is None:
        raise Unmapped(f"{prefix}:{operation}")
    return mapper(action, operation, params, where)


def _dynamodb(
    action: str, operation: str, params: Mapping[str, Any], where: Where
) -> list[Request]:
    def table(name: str) -> str:
        return name if name.startswith("arn:") else where.arn("dynamodb", f"table/{name}")

    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table(name), {}) for name in params.get("RequestItems", {})]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        item_actions = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
            "Get": "GetItem",
        }
        out: list[Request] = []
        for item in params.get("TransactItems", []):
            ((kind, body),) = item.items()
            out.append((f"dynamodb:{item_actions[kind]}", table(body["TableName"]), {}))
        return out
    name = params.get("TableName")
    if not isinstance(name, str) or operation in ("ExecuteStatement", "BatchExecuteStatement"):
        raise Unmapped(action)
    index = params.get("IndexName")
    resource = table(name) + (f"/index/{index}" if index and operation in ("Query", "Scan") else "")
    return [(action, resource, {})]


def _states(action: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
        # Authorized against the state machine whose execution issued the token (the
        # resource SAM's StepFunctionsCallbackPolicy grants).
        if where.token_owner is None:
            raise Unmapped(action)
        return [(action, where.token_owner(str(params.get("taskToken", ""))), {})]
    for key in ("executionArn", "stateMachineArn"):
        if key in params:
            return [(action, str(params[key]), {})]
    raise Unmapped(action)


def _events(action: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    if operation != "PutEvents":
        raise Unmapped(action)
    buses = {str(e.get("EventBusName") or "default") for e in params.get("Entries", [])}
    return [
        (action, bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}"), {})
        for bus in sorted(buses)
    ]


def _secretsmanager(
    action: str, operation: str, params: Mapping[str, Any], where: Where
) -> list[Request]:
    secret_id = params.get("SecretId")
    if not isinstance(secret_id, str):
        raise Unmapped(action)
    arn = where.secrets.get(secret_id) or secret_id
    if not arn.startswith("arn:"):
        arn = where.arn("secretsmanager", f"secret:{secret_id}")
    return [(action, arn, {})]


def _ssm(action: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    names = params.get("Names") or ([params["Name"]] if "Name" in params else [])
    if operation == "GetParametersByPath":
        names = [params.get("Path", "")]
    if not names:
        raise Unmapped(action)
    return [
        (action, where.arn("ssm", "parameter" + (n if n.startswith("/") else f"/{n}")), {})
        for n in map(str, names)
    ]


def _lambda(action: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    name = str(params.get("FunctionName", ""))
    if not name:
        raise Unmapped(action)
    arn = name if name.startswith("arn:") else where.arn("lambda", f"function:{name}")
    qualifier = params.get("Qualifier")
    return [(action, f"{arn}:{qualifier}" if qualifier else arn, {})]


def _cloudwatch(
    action: str, operation: str, params: Mapping[str, Any], where: Where
) -> list[Request]:
    if operation != "PutMetricData":
        raise Unmapped(action)
    return [(action, "*", {"cloudwatch:namespace": str(params.get("Namespace", ""))})]


def _sqs(action: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Request]:
    # https://sqs.<region>.amazonaws.com/<account>/<name> -> arn:aws:sqs:<region>:<account>:<name>
    parts = str(params.get("QueueUrl", "")).rstrip("/").split("/")
    if len(parts) < 2:
        raise Unmapped(action)
    return [(action, f"arn:aws:sqs:{where.region}:{parts[-2]}:{parts[-1]}", {})]


_MAPPERS: dict[str, Callable[[str, str, Mapping[str, Any], Where], list[Request]]] = {
    "dynamodb": _dynamodb,
    "states": _states,
    "events": _events,
    "secretsmanager": _secretsmanager,
    "ssm": _ssm,
    "lambda": _lambda,
    "cloudwatch": _cloudwatch,
    "sqs": _sqs,
}


# --------------------------------------------------------------------------- enforcing
@dataclass(frozen=True)
class Denial:
    principal: str
    operation: str
    action: str
    resource: str

    def describe(self, where: Where) -> str:
        return (
            f"{self.principal}: {self.action} on {where.stable(self.resource)} ({self.operation})"
        )


@dataclass
class Authorizer:
    """Authorizes every botocore call made while installed, per the caller's role."""

    principals: Mapping[str, Principal]
    where: Where
    #: the principal of threads the twin did not start (moto's execution threads)
    default_principal: str = "StateMachine"
    #: False records denials without raising them (an audit of what AWS would refuse)
    enforce: bool = True
    #: told of each answered call a principal made: (principal, service, operation, response)
    observer: Callable[[str, str, str, Any], None] | None = None
    used: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)
    denied: list[Denial] = field(default_factory=list)
    calls: int = 0
    _local: threading.local = field(default_factory=threading.local)
    _home: int = field(default_factory=threading.get_ident)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def acting_as(self, principal: str | None) -> Iterator[None]:
        """Calls in this block (on this thread) are made by ``principal``; ``None``: the
        twin itself (unchecked: setting up, reading the books for the report)."""
        if principal is not None and principal not in self.principals:
            known = sorted(self.principals)
            raise KeyError(f"no role for {principal!r}: the template defines {known}")
        stack = self._stack()
        stack.append(principal)
        try:
            yield
        finally:
            stack.pop()

    def _stack(self) -> list[str | None]:
        stack: list[str | None] | None = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def current(self) -> str | None:
        stack = self._stack()
        if stack:
            return stack[-1]
        return None if threading.get_ident() == self._home else self.default_principal

    def check(self, service: str, operation: str, params: Mapping[str, Any]) -> None:
        """Raise ``AccessDeniedException`` unless the current principal may make this call."""
        name = self.current()
        if name is None:
            return
        principal = self.principals[name]
        try:
            requests = requests_for(service, operation, params, self.where)
        except Unmapped as exc:
            requests = [(str(exc), f"unmapped:{service}:{operation}", {})]
            allowed = [False]
        else:
            allowed = [principal.decide(a, r, c) for a, r, c in requests]
        with self._lock:
            self.calls += 1
            used = self.used.setdefault(name, Counter())
            for (action, resource, _), ok in zip(requests, allowed, strict=True):
                used[(action, resource)] += 1
                if not ok:
                    self.denied.append(Denial(name, operation, action, resource))
        for (action, resource, _), ok in zip(requests, allowed, strict=True):
            if not ok and self.enforce:
                raise _access_denied(principal, operation, action, resource)

    @contextmanager
    def installed(self) -> Iterator[Authorizer]:
        """Patch botocore for the block: every call goes through :meth:`check` first."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        authorizer = self

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            service = client.meta.service_model.service_name
            authorizer.check(service, operation_name, api_params or {})
            response = original(client, operation_name, api_params)
            observer = authorizer.observer
            principal = authorizer.current()
            if observer is not None and principal is not None:
                observer(principal, service, operation_name, response)
            return response

        BaseClient._make_api_call = _make_api_call
        try:
            yield self
        finally:
            BaseClient._make_api_call = original

    # -- reporting ------------------------------------------------------------------
    def usage(self) -> list[dict[str, Any]]:
        """Every grant with what this run used of it (see :func:`usage`)."""
        return usage(self.principals, self.used, self.where)

    def summary(self) -> dict[str, Any]:
        """Per principal: calls, denied calls, and the (action, resource) pairs used."""
        return {
            "calls": self.calls,
            "denied": [d.describe(self.where) for d in self.denied],
            "principals": {
                name: {
                    "calls": sum(used.values()),
                    "denied": sum(1 for d in self.denied if d.principal == name),
                    "used": sorted({f"{a} {self.where.stable(r)}" for a, r in used}),
                }
                for name, used in sorted(self.used.items())
            },
        }


def _access_denied(principal: Principal, operation: str, action: str, resource: str) -> Exception:
    from botocore.exceptions import ClientError

    arn = f"arn:aws:sts::123456789012:assumed-role/{principal.role_name}/{principal.name}"
    message = (
        f"User: {arn} is not authorized to perform: {action} on resource: {resource} "
        f"because no identity-based policy allows the {action} action"
    )
    error: Exception = ClientError(
        {
            "Error": {"Code": "AccessDeniedException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )
    return error


# --------------------------------------------------------------------------- grants
def usage(
    principals: Mapping[str, Principal], used: Mapping[str, Counter[tuple[str, str]]], where: Where
) -> list[dict[str, Any]]:
    """Each Allow statement of each principal, the actions a replay used under it, and
    why it is kept when nothing used it (:data:`UNUSED_GRANTS`; empty: flag it)."""
    rows = []
    for name, principal in sorted(principals.items()):
        pairs = list(used.get(name, Counter()))
        for statement in principal.statements:
            if statement.effect != "Allow":
                continue
            # Conditions held when the call was authorized; here only what it granted counts.
            hits = sorted({a for a, r in pairs if _grants(statement, a, r)})
            rows.append(
                {
                    "principal": name,
                    "policy": statement.source,
                    "actions": list(statement.actions),
                    "resources": [where.stable(r) for r in statement.resources],
                    "used": hits,
                    "kept_because": "" if hits else _kept_reason(name, statement),
                }
            )
    return rows


def _grants(statement: Statement, action: str, resource: str) -> bool:
    return replace(statement, conditions={}).applies(action, resource, {})


def _kept_reason(principal: str, statement: Statement) -> str:
    for who, action, resource, reason in UNUSED_GRANTS:
        if who not in ("*", principal):
            continue
        actions_match = all(_match(action, a, fold=True) for a in statement.actions)
        resources_match = all(_match(resource, r) for r in statement.resources or ("*",))
        if actions_match and resources_match:
            return reason
    return ""


def load_for_template(
    template_path: Path, refs: Mapping[str, str], attrs: Mapping[tuple[str, str], str]
) -> dict[str, Principal]:
    """Translate ``template_path`` offline and load its principals."""
    from flipbot_dev.twin.template import translate

    return load_principals(translate(template_path), refs, attrs)


def dumps(summary: Mapping[str, Any]) -> str:
    return json.dumps(summary, indent=2, sort_keys=True)
