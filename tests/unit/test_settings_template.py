"""Every setting is a parameter: the variables the code reads against the template's.

Each environment variable the shipped code reads is set by ``template.yaml`` from a
constrained parameter, or is listed in :data:`FIXED_VARIABLES` with the reason it is
not; every variable the template sets is read by the code or by a library named there.
The variables are found two ways: the settings models are run on a mapping that records
each lookup, and the shipped modules are scanned for literal lookups elsewhere.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from flipbot.listener.settings import ListenerSettings
from flipbot.settings import FUNCTION_SETTINGS, Settings
from flipbot_dev.twin.template import TemplateError, resolve

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "flipbot"
#: Local tooling, not deployed code: the twin, the paper exchange, the CLI commands and
#: the market data readers.
DEV_PACKAGES = ("twin", "paper", "commands", "replay")
LISTENER_PACKAGE = "listener"

_LISTENER_TUNING = (
    "connection-health tuning tied to Binance's stream protocol (24 h connection limit, "
    "ping cadence) with production defaults; tests shorten it"
)
#: Variables read by the code (or set by the template) that are not template parameters.
FIXED_VARIABLES: dict[str, str] = {
    "AWS_REGION": "set by the Lambda runtime and by Fargate",
    "AWS_LAMBDA_FUNCTION_NAME": (
        "set by the Lambda runtime; its presence tells a handler it runs in a sandbox and "
        "checks its settings at init"
    ),
    "POWERTOOLS_SERVICE_NAME": (
        "read by Powertools and the listener; the alarms and the dashboard select on the "
        "service=flipbot dimension, so it is a constant"
    ),
    "POWERTOOLS_METRICS_NAMESPACE": (
        "read by Powertools and the listener; the alarms and the dashboard read the "
        "flipbot namespace, and the listener's PutMetricData grant is scoped to it"
    ),
    "POWERTOOLS_LOGGER_LOG_EVENT": (
        "read by Powertools; always false, since events carry orders and task tokens"
    ),
    "LOG_LEVEL": "read by the Powertools logger (set from the LogLevel parameter)",
    "OPENAI_API_KEY": (
        "read only by the local twin's CLI (--ai openai); deployed functions read the key "
        "from Secrets Manager (OPENAI_SECRET_ARN)"
    ),
    "BINANCE_STREAM_URL": "derived from BINANCE_BASE_URL; an override for tests",
    "BINANCE_WS_API_URL": "derived from BINANCE_BASE_URL; an override for tests",
    "HEALTH_HOST": (
        "the container health check runs flipbot.listener.health with the same defaults; "
        "changing one side alone breaks the check"
    ),
    "HEALTH_PORT": (
        "the container health check runs flipbot.listener.health with the same defaults; "
        "changing one side alone breaks the check"
    ),
    "STOP_TIMEOUT_SECONDS": "equals the container's StopTimeout (30 s), which a test checks",
    "ORDER_ID_PREFIX": (
        "derived from the stack id (fb + its first 8 hex digits): each stack its own, so no "
        "parameter could give two stacks on one Binance account the same prefix"
    ),
    "QUEUE_CAPACITY": _LISTENER_TUNING,
    "MARKET_STREAMS_PER_CONNECTION": (
        "how the symbols' streams are spread over connections, within Binance's 1024 a "
        "connection; the default keeps every URL short, tests lower it to open a second"
    ),
    "MARKET_SILENCE_SECONDS": _LISTENER_TUNING,
    "USER_PROBE_SECONDS": _LISTENER_TUNING,
    "USER_SILENCE_SECONDS": _LISTENER_TUNING,
    "REQUEST_TIMEOUT_SECONDS": _LISTENER_TUNING,
    "MAX_CONNECTION_AGE_SECONDS": _LISTENER_TUNING,
    "HANDOVER_TIMEOUT_SECONDS": _LISTENER_TUNING,
    "RECONNECT_BASE_SECONDS": _LISTENER_TUNING,
    "RECONNECT_MAX_SECONDS": _LISTENER_TUNING,
    "RECV_WINDOW_MS": _LISTENER_TUNING,
    "HEALTH_MAX_GAP_SECONDS": _LISTENER_TUNING,
    "METRICS_SECONDS": _LISTENER_TUNING,
}

#: Lambda's limit on a function's environment: keys and values, 4 KB in all.
LAMBDA_ENVIRONMENT_LIMIT = 4096
_CONSTRAINTS = {"AllowedValues", "AllowedPattern", "MinValue", "MaxValue", "MaxLength"}


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers every variable looked up in it."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return loaded


def _function_variables(template: dict[str, Any]) -> dict[str, Any]:
    """What every function's environment holds: Globals plus any function's own."""
    variables = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            own = resource["Properties"].get("Environment", {}).get("Variables", {})
            variables.update(own)
    return variables


def _container(template: dict[str, Any]) -> dict[str, Any]:
    definition = template["Resources"]["ListenerTaskDefinition"]["Properties"]
    (container,) = definition["ContainerDefinitions"]
    return dict(container)


def _listener_variables(template: dict[str, Any]) -> dict[str, Any]:
    container = _container(template)
    variables = {item["Name"]: item["Value"] for item in container["Environment"]}
    variables |= {item["Name"]: item["ValueFrom"] for item in container["Secrets"]}
    return variables


def _defaults(template: dict[str, Any], variables: Mapping[str, Any]) -> dict[str, str]:
    """The variables with each parameter at its default, each resource named and each
    value derived from the stack alone (``ORDER_ID_PREFIX``) as ``sam local invoke`` has it."""
    parameters = template["Parameters"]
    out = {}
    for name, value in variables.items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        if ref in parameters:
            out[name] = str(parameters[ref].get("Default", ""))
        elif isinstance(value, str):
            out[name] = value
        else:
            try:
                out[name] = resolve(value, {}, {})
            except TemplateError:  # it names a resource, the stack name, region or account
                out[name] = f"resource-{name.lower()}"
    return out


# --------------------------------------------------------------------------- what the code reads
def _literal_lookups(path: Path) -> set[str]:
    """Variables looked up by a literal name: ``env.get("X")``, ``env["X"]``,
    ``os.environ.get("X")``, ``os.getenv("X")`` and the like."""

    def is_env(node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in {"env", "environ"}
        if isinstance(node, ast.Attribute):
            return node.attr in {"env", "environ"}
        return False

    def name_of(node: ast.expr | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value if node.value.isupper() else None
        return None

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            receiver = node.func.value
            getenv = node.func.attr == "getenv" and isinstance(receiver, ast.Name)
            if getenv or (node.func.attr in {"get", "pop"} and is_env(receiver)):
                found.add(name_of(node.args[0]))
        elif isinstance(node, ast.Subscript) and is_env(node.value):
            found.add(name_of(node.slice))
    return {name for name in found if name}


def _shipped_modules(listener: bool) -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0]
        if top in DEV_PACKAGES or (top == LISTENER_PACKAGE) != listener:
            continue
        yield path
    if not listener:
        yield from sorted((ROOT / "functions").glob("*/app.py"))


def _function_reads(template: dict[str, Any]) -> set[str]:
    env = _defaults(template, _function_variables(template))
    read: set[str] = set()
    for stop_loss in ("", "0.02"):  # the empty stop-loss also reads the strategy
        recording = RecordingEnv({**env, "STOP_LOSS": stop_loss})
        Settings.from_env(recording)
        read |= recording.read
    for path in _shipped_modules(listener=False):
        read |= _literal_lookups(path)
    return read


def _listener_reads(template: dict[str, Any]) -> set[str]:
    env = _defaults(template, _listener_variables(template))
    recording = RecordingEnv(env)
    ListenerSettings.from_env(recording)
    read = set(recording.read)
    for path in _shipped_modules(listener=True):
        read |= _literal_lookups(path)
    return read


def test_the_scan_finds_literal_lookups_of_every_form(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "import os\n"
        "a = os.environ.get('ONE')\n"
        "b = os.environ['TWO']\n"
        "c = env.get('THREE', '')\n"
        "d = self.env['FOUR']\n"
        "e = os.getenv('FIVE')\n"
        "f = params.get('NOT_ENV')\n"
        "g = env.get('lower_case')\n",
        encoding="utf-8",
    )
    assert _literal_lookups(source) == {"ONE", "TWO", "THREE", "FOUR", "FIVE"}


def test_every_variable_the_functions_read_is_set_by_the_template_or_fixed(
    template: dict[str, Any],
) -> None:
    read = _function_reads(template)
    assert {"MANUAL_DRY_RUN", "SESSION_MAX_LOSS", "AI_FALLBACK", "AWS_REGION"} <= read
    unset = read - set(_function_variables(template)) - set(FIXED_VARIABLES)
    assert unset == set(), f"read by the functions, neither a parameter nor fixed: {unset}"


def test_every_variable_the_functions_get_is_read(template: dict[str, Any]) -> None:
    unread = set(_function_variables(template)) - _function_reads(template)
    unread -= set(FIXED_VARIABLES)
    assert unread == set(), f"set by the template, read by nothing: {unread}"


def test_every_variable_the_listener_reads_is_set_by_the_template_or_fixed(
    template: dict[str, Any],
) -> None:
    read = _listener_reads(template)
    assert {"LARGE_TRADE_QUOTE", "SNAPSHOT_SECONDS", "HEALTH_PORT"} <= read
    unset = read - set(_listener_variables(template)) - set(FIXED_VARIABLES)
    assert unset == set(), f"read by the listener, neither a parameter nor fixed: {unset}"


def test_every_variable_the_listener_gets_is_read(template: dict[str, Any]) -> None:
    unread = set(_listener_variables(template)) - _listener_reads(template)
    unread -= set(FIXED_VARIABLES)
    assert unread == set(), f"set on the listener, read by nothing: {unread}"


def test_fixed_variables_are_really_fixed_and_give_a_reason(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    everywhere = _function_variables(template) | _listener_variables(template)
    for name, reason in FIXED_VARIABLES.items():
        assert len(reason) > 20, name
        value = everywhere.get(name)
        if name == "LOG_LEVEL":  # read by a library, from a parameter
            continue
        assert not (isinstance(value, dict) and value.get("Ref") in parameters), name


def test_each_parameter_behind_a_variable_is_constrained(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    variables = _function_variables(template) | _listener_variables(template)
    refs = {
        value["Ref"]
        for value in variables.values()
        if isinstance(value, dict) and value.get("Ref") in parameters
    }
    loose = sorted(ref for ref in refs if not _CONSTRAINTS & set(parameters[ref]))
    assert loose == []


def test_template_defaults_are_the_code_defaults(template: dict[str, Any]) -> None:
    # Given only what the code requires, and the template's defaults for everything
    functions = _defaults(template, _function_variables(template))
    required = {
        name: functions[name] for name in functions if name == "SYMBOL" or name.endswith("_TABLE")
    }
    # Then both give the same settings: a parameter left alone changes nothing
    assert Settings.from_env(functions).model_dump(exclude={"binance_secret_arn"}) == (
        Settings.from_env({**required, **_resources(functions)}).model_dump(
            exclude={"binance_secret_arn"}
        )
    )
    assert Settings.from_env(functions).session_limits == (
        Settings.from_env({**required, **_resources(functions)}).session_limits
    )
    listener = _defaults(template, _listener_variables(template))
    minimal = {k: listener[k] for k in ("SYMBOL", "EVENT_BUS_NAME", "MARKET_TABLE")}
    secrets = {"BINANCE_API_KEY": "k" * 64, "BINANCE_API_SECRET": "s" * 64}
    with_template = ListenerSettings.from_env({**listener, **secrets})
    alone = ListenerSettings.from_env({**minimal, **secrets, "AWS_DEFAULT_REGION": "x"})
    assert with_template.model_dump(exclude={"region", "api_key", "api_secret"}) == (
        alone.model_dump(exclude={"region", "api_key", "api_secret"})
    )


def _resources(functions: Mapping[str, str]) -> dict[str, str]:
    """The variables that name a resource or derive from the stack (not settings): the
    same in both environments."""
    names = (
        "EVENT_BUS_NAME",
        "STATE_MACHINE_ARN",
        "BINANCE_SECRET_ARN",
        "OPENAI_SECRET_ARN",
        "KILL_SWITCH_PARAMETER",
        "ORDER_ID_PREFIX",
    )
    return {name: functions[name] for name in names if name in functions}


# --------------------------------------------------------------------------- the 4 KB limit
def _resolve(value: Any, template: dict[str, Any], stack: str) -> str:
    """A variable's value as deployed, with long but real names: ``stack`` as the stack
    name, physical ids as CloudFormation makes them, the longest value each free-text
    parameter allows."""
    pseudo = {
        "AWS::Partition": "aws",
        "AWS::Region": "ap-southeast-1",
        "AWS::AccountId": "123456789012",
        "AWS::StackName": stack,
    }

    def ref(name: str) -> str:
        if name in pseudo:
            return pseudo[name]
        parameter = template["Parameters"].get(name)
        if parameter is not None:
            if "MaxLength" in parameter:
                return "x" * int(parameter["MaxLength"])
            return str(parameter.get("Default", ""))
        kind = template["Resources"][name]["Type"]
        if kind == "AWS::SecretsManager::Secret":
            region, account = pseudo["AWS::Region"], pseudo["AWS::AccountId"]
            return f"arn:aws:secretsmanager:{region}:{account}:secret:{stack}/{name}-AbCdEf"
        return f"{stack}-{name}-ABCDEFGHIJKL"

    if isinstance(value, str):
        return value
    if "Ref" in value:
        return ref(value["Ref"])
    if "Fn::Sub" not in value:  # derived from the stack id alone: ORDER_ID_PREFIX
        return resolve(value, {}, {})
    text = value["Fn::Sub"]
    while "${" in text:
        start = text.index("${")
        end = text.index("}", start)
        text = text[:start] + ref(text[start + 2 : end]) + text[end + 1 :]
    return str(text)


def test_the_functions_environment_stays_well_under_lambdas_4_kb(
    template: dict[str, Any],
) -> None:
    stack = "flipbot-" + "s" * 24  # a long stack name
    variables = _function_variables(template)
    size = sum(len(k) + len(_resolve(v, template, stack)) for k, v in variables.items())
    # Room is left for a longer stack name (its name is in about a dozen values: 512
    # characters are 40 more of it) and a variable or two yet to come. The free-text
    # parameters (AI models and prices, the symbols and their own settings) are what
    # fill it: their MaxLength keeps them inside this budget.
    assert size < LAMBDA_ENVIRONMENT_LIMIT - 512, size


def _checked_at_init(handler_file: Path) -> list[str]:
    """The settings models a handler file checks at module level (``check_at_init(M)``)."""
    tree = ast.parse(handler_file.read_text())
    return [
        node.value.args[0].id
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id == "check_at_init"
        and isinstance(node.value.args[0], ast.Name)
    ]


def test_each_function_checks_its_own_settings_model_at_init(template: dict[str, Any]) -> None:
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert set(FUNCTION_SETTINGS) == set(functions)
    variables = _defaults(template, _function_variables(template))
    for logical_id, properties in functions.items():
        model = FUNCTION_SETTINGS[logical_id]
        handler_file = ROOT / properties["CodeUri"] / "app.py"
        assert _checked_at_init(handler_file) == [model.__name__], logical_id
        # and the template gives the function everything its model requires
        assert isinstance(model.from_env(variables), model)
