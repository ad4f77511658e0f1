"""The state machine's definition read against the typed contracts (flipbot.app.contracts).

Every ``$.`` path the definition reads or writes (task payloads, result selectors, result
paths, choice variables, wait and timeout paths, intrinsic functions' arguments) names a
field of the model it addresses; every literal it compares or sends is a value that
field accepts; every task sends each field its function requires. The Retry list of
every Lambda task is the retryable part of the error taxonomy plus Lambda's own
transient errors, and every Catch names an error of the taxonomy (or a States.* one).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from flipbot.app import contracts as c
from flipbot.domain import errors

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "trade_cycle.asl.json").read_text(encoding="utf-8"))
#: the Lambda service's transient errors (Step Functions' advice for every Lambda task)
LAMBDA_TRANSIENT = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
}
#: each function the definition invokes: (its request model, what it answers)
FUNCTIONS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "${ConsultAiFunctionArn}": (c.ConsultRequest, c.ConsultResult),
    "${PlaceOrderFunctionArn}": (c.PlaceOrderRequest, c.PlaceOrderResult),
    "${CancelOrderFunctionArn}": (c.CancelOrderRequest, c.CancelResult),
    "${RecordTradeFunctionArn}": (c.RecordTradeRequest, c.RecordTradeResult),
    "${ReconcileFunctionArn}": (c.CycleReconcileRequest, c.ReconcileCycleResult),
}
#: a path into the state document (``$$.`` is the context object, not the document)
PATH = re.compile(r"(?<!\$)\$\.[A-Za-z_][\w.]*")


def _states(states: dict[str, Any] = ASL["States"]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        yield name, state
        for branch in state.get("Branches", []):
            yield from _states(branch["States"])


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _info(model: type[BaseModel], name: str) -> FieldInfo:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return info
    raise AssertionError(f"{model.__name__} has no field {name!r}")


def _field(model: type[BaseModel], name: str) -> Any:
    return _unwrap(_info(model, name).annotation)


def _names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


def resolve(model: type[BaseModel], path: str) -> Any:
    """The annotation ``path`` (``$.a.b``) reaches in ``model``; AssertionError if none."""
    annotation: Any = model
    for part in path.removeprefix("$.").split("."):
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            continue
        assert isinstance(annotation, type), f"{path}: {part!r} below a {annotation}"
        assert issubclass(annotation, BaseModel), f"{path}: {part!r} below a {annotation}"
        annotation = _field(annotation, part)
    return annotation


def accepts(model: type[BaseModel], name: str, value: Any) -> bool:
    """Whether the field ``name`` of ``model`` takes the literal ``value`` (its type and
    its constraints: pattern, bounds, enum members)."""
    info = _info(model, name)
    try:
        field_type = info.annotation
        if info.metadata:
            field_type = Annotated[field_type, *info.metadata]
        TypeAdapter(field_type).validate_python(value)
    except ValidationError:
        return False
    return True


def compatible(source: Any, target: Any) -> bool:
    """Whether a value of the field type ``source`` fits a field of type ``target``."""
    source, target = _unwrap(source), _unwrap(target)
    if source == target:
        return True
    if typing.get_origin(target) is dict:  # an object passed on whole
        return isinstance(source, type) and issubclass(source, BaseModel)
    if target is Decimal or target is str:  # pydantic reads a Decimal from its text
        return source is str or (isinstance(source, type) and issubclass(source, str))
    return False


def _paths(value: Any) -> list[str]:
    return PATH.findall(value) if isinstance(value, str) else []


def _payload(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state.get("Parameters", {}).get("Payload", {}))


def _function(state: dict[str, Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    request, result = FUNCTIONS[state["Parameters"]["FunctionName"]]
    if state["Resource"].endswith(".waitForTaskToken"):
        result = c.FillSummary  # the task resumes with the order's callback, not the answer
    elif _payload(state).get("purpose") == "check":
        result = c.SellCheckResult
    return request, result


LAMBDA_TASKS = [
    (name, s)
    for name, s in _states()
    if s["Type"] == "Task" and s.get("Resource", "").startswith("arn:aws:states:::lambda:")
]


def test_the_definition_invokes_each_function_through_a_known_contract() -> None:
    used = {s["Parameters"]["FunctionName"] for _, s in LAMBDA_TASKS}
    assert used == set(FUNCTIONS)


@pytest.mark.parametrize(("name", "state"), LAMBDA_TASKS, ids=[n for n, _ in LAMBDA_TASKS])
def test_each_task_sends_what_its_request_model_requires(name: str, state: dict[str, Any]) -> None:
    request, _ = _function(state)
    payload = _payload(state)
    sent = {key.removesuffix(".$") for key in payload}
    required = {n for n, f in request.model_fields.items() if f.is_required()}
    assert required <= sent, f"{name} does not send {required - sent}"
    for key, value in payload.items():
        field = key.removesuffix(".$")
        if not key.endswith(".$"):
            assert accepts(request, field, value), f"{name}: {key}={value!r}"
        elif value.startswith("$."):
            source = resolve(c.CycleDocument, value)
            assert compatible(source, _field(request, field)), f"{name}: {key} from {source}"
        else:
            assert value == "$$.Task.Token", f"{name}: {key}={value!r}"


@pytest.mark.parametrize(("name", "state"), LAMBDA_TASKS, ids=[n for n, _ in LAMBDA_TASKS])
def test_each_result_selector_reads_the_answer_and_fits_its_result_path(
    name: str, state: dict[str, Any]
) -> None:
    _, result = _function(state)
    target = state.get("ResultPath")
    selector = state.get("ResultSelector")
    # every task keeps its output beside the input, never in place of the document
    assert isinstance(target, str), f"{name} has no ResultPath"
    assert target.startswith("$."), f"{name} ResultPath {target}"
    kept = resolve(c.CycleDocument, target)
    if selector is None:  # the whole output lands there
        assert kept is result, f"{name}: a {result.__name__} kept as a {kept}"
        return
    assert {key.removesuffix(".$") for key in selector} == _names(kept), name
    for key, value in selector.items():
        assert key.endswith(".$"), (name, key)
        assert value.startswith("$.Payload."), (name, key, value)
        source = resolve(result, "$." + value.removeprefix("$.Payload."))
        assert compatible(source, _field(kept, key.removesuffix(".$"))), (name, key)


def _rules(rules: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for rule in rules:
        yield rule
        yield from _rules(rule.get("And", []) + rule.get("Or", []))
        if "Not" in rule:
            yield from _rules([rule["Not"]])


def _choice_rules(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return _rules(state.get("Choices", []))


CHOICES = [(n, s) for n, s in _states() if s["Type"] == "Choice"]


@pytest.mark.parametrize(("name", "state"), CHOICES, ids=[n for n, _ in CHOICES])
def test_each_choice_compares_a_field_with_a_value_it_can_hold(
    name: str, state: dict[str, Any]
) -> None:
    compared = 0
    for rule in _choice_rules(state):
        if "Variable" not in rule:
            continue
        variable = rule["Variable"]
        field = resolve(c.CycleDocument, variable)
        parent, _, leaf = variable.rpartition(".")
        owner = resolve(c.CycleDocument, parent) if parent != "$" else c.CycleDocument
        for test, value in rule.items():
            if test in ("Variable", "Next", "And", "Or", "Not"):
                continue
            compared += 1
            if test.endswith("Path"):
                assert compatible(resolve(c.CycleDocument, value), field), (name, rule)
            elif test == "IsPresent":
                assert not _info(owner, leaf).is_required(), (name, rule)
            elif test.startswith(("String", "Numeric", "Boolean")):
                assert accepts(owner, leaf, value), (name, rule)
            else:
                raise AssertionError(f"{name}: no check for {test}")
    assert compared, name


KNOWN_TYPES = {"Choice", "Task", "Pass", "Wait", "Succeed", "Fail"}


def test_every_state_is_of_a_kind_these_tests_read() -> None:
    kinds = {state["Type"] for _, state in _states()}
    assert kinds <= KNOWN_TYPES, kinds - KNOWN_TYPES  # a Map or Parallel needs its own walk


def test_every_path_elsewhere_names_a_field_of_the_cycle_document() -> None:
    checked = 0
    for name, state in _states():
        for key in ("CausePath", "ErrorPath"):  # a path, or an intrinsic reading paths
            for path in _paths(state.get(key)):
                assert compatible(resolve(c.CycleDocument, path), str), (name, key)
                checked += 1
        for key in ("SecondsPath", "TimeoutSecondsPath", "HeartbeatSecondsPath"):
            if key in state:
                assert resolve(c.CycleDocument, state[key]) is int, (name, key)
                checked += 1
        for key in ("InputPath", "OutputPath"):
            if key in state and state[key] not in (None, "$"):
                resolve(c.CycleDocument, state[key])
        for catch in state.get("Catch", []):
            assert resolve(c.CycleDocument, catch["ResultPath"]) is c.TaskError
            checked += 1
        if state["Type"] != "Pass":
            continue
        target = c.CycleDocument
        if state.get("ResultPath"):
            target = resolve(c.CycleDocument, state["ResultPath"])
        for key, value in state.get("Parameters", {}).items():
            field = key.removesuffix(".$")
            _info(target, field)
            if key.endswith(".$"):
                for path in _paths(value):
                    resolve(c.CycleDocument, path)
                    checked += 1
            else:
                assert accepts(target, field, value), (name, key, value)
    assert checked > 10


#: a document as a waiting cycle holds it, and the context object's fields the definition reads
WAITING = {
    "cycle_id": "c000002",
    "attempt": 3,
    "sell_attempt": 2,
    "lineage": {"name": "c000002-recovered-1700000000000", "generation": 4},
    "turns": {"n": 300},
    "sell_decision": {
        "action": "PLACE",
        "price": "10.1",
        "quantity": "1",
        "wait_seconds": 60,
        "timeout_seconds": 3600,
        "consultation_id": "c000002-SELL-2",
        "confidence": 0.9,
        "reason": "r",
        "heartbeat_seconds": 900,
        "guard": "",
        "reprice_seconds": 600,
    },
}
CONTEXT = {
    "$$.Execution.Id": "arn:aws:states:us-east-1:123456789012:execution:cycle:c000002",
    "$$.Execution.Name": "c000002",
    "$$.StateMachine.Id": "arn:aws:states:us-east-1:123456789012:stateMachine:cycle",
}


def _evaluate(expression: str, document: dict[str, Any]) -> Any:
    """A ``.$`` value: a path, a context field, or States.MathAdd / States.Format of them."""
    expression = expression.strip()
    if expression in CONTEXT:
        return CONTEXT[expression]
    if expression.startswith("$."):
        value: Any = document
        for part in expression[2:].split("."):
            value = value[part]
        return value
    if expression.startswith("'"):
        return expression.strip("'")
    if expression.lstrip("-").isdigit():
        return int(expression)
    call = re.fullmatch(r"(States\.\w+)\((.*)\)", expression)
    assert call, expression
    args, depth, current = [], 0, ""
    for char in call.group(2):
        if char == "," and depth == 0:
            args.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    values = [_evaluate(a, document) for a in [*args, current]]
    if call.group(1) == "States.MathAdd":
        return values[0] + values[1]
    assert call.group(1) == "States.Format", expression
    return values[0].replace("{}", "%s") % tuple(values[1:])


def _build(parameters: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    built = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            built[key.removesuffix(".$")] = _evaluate(value, document)
        elif isinstance(value, dict):
            built[key] = _build(value, document)
        else:
            built[key] = value
    return built


STARTS = [
    (name, state)
    for name, state in _states()
    if state.get("Resource") == "arn:aws:states:::states:startExecution"
]


@pytest.mark.parametrize(("name", "state"), STARTS, ids=[n for n, _ in STARTS])
def test_each_execution_started_takes_an_input_the_cycle_input_model_takes(
    name: str, state: dict[str, Any]
) -> None:
    document = {**WAITING, "record": {"next_cycle_id": "c000003", "continue": True}}
    c.CycleDocument.model_validate(document)
    started = _build(state["Parameters"], document)
    cycle_input = c.CycleInput.model_validate(started["Input"])
    # Step Functions' rule for an execution name: 1..80 letters, digits, '-' and '_'
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", started["Name"]), started["Name"]
    assert started["Name"].split("-", 1)[0] == cycle_input.cycle_id
    if name == "StartNextCycle":
        assert (cycle_input.cycle_id, cycle_input.attempt, cycle_input.lineage) == (
            "c000003",
            1,
            None,
        )
    else:  # a continuation: the same cycle, where it stood, one generation on
        assert started["Name"] == "c000002-recovered-1700000000000-continued-5"
        assert cycle_input.cycle_id == "c000002"
        assert (cycle_input.attempt, cycle_input.sell_attempt) == (3, 2)
        assert cycle_input.lineage == c.Lineage(
            name="c000002-recovered-1700000000000", generation=5
        )


def _subclasses(cls: type[errors.FlipbotError]) -> set[type[errors.FlipbotError]]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


RETRYABLE = {cls.__name__ for cls in _subclasses(errors.RetryableError)}


@pytest.mark.parametrize(("name", "state"), LAMBDA_TASKS, ids=[n for n, _ in LAMBDA_TASKS])
def test_each_lambda_task_retries_exactly_the_retryable_errors(
    name: str, state: dict[str, Any]
) -> None:
    retried = [set(rule["ErrorEquals"]) for rule in state.get("Retry", [])]
    assert retried == [RETRYABLE | LAMBDA_TRANSIENT], name


@pytest.mark.parametrize(("name", "state"), LAMBDA_TASKS, ids=[n for n, _ in LAMBDA_TASKS])
def test_each_catch_names_a_terminal_error_of_the_taxonomy(
    name: str, state: dict[str, Any]
) -> None:
    for catch in state.get("Catch", []):
        for error in catch["ErrorEquals"]:
            if error.startswith("States."):
                continue
            cls = errors.error_type(error)
            assert cls is not None, f"{name} catches {error}, which no error class is"
            assert not issubclass(cls, errors.RetryableError), f"{name} catches {error}"


def test_the_taxonomy_has_the_retryable_errors_the_definition_had() -> None:
    assert {
        "ExchangeUnavailable",
        "RateLimited",
        "IpBanned",
        "ClockSkew",
        "UnknownOrderOutcome",
        "OrderNotSettled",
        "AiUnavailable",
        "ConcurrentUpdate",
    } == RETRYABLE
