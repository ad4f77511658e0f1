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
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

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


def _field(model: type[BaseModel], name: str) -> Any:
    for field_name, info in model.model_fields.items():
        if name in (field_name, info.alias):
            return _unwrap(info.annotation)
    raise AssertionError(f"{model.__name__} has no field {name!r}")


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


def accepts(annotation: Any, value: Any) -> bool:
    """Whether a field of type ``annotation`` takes the literal ``value``."""
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return value in typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return value in {m.value for m in annotation}
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


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
        field = _field(request, key.removesuffix(".$"))
        if key.endswith(".$"):
            for path in _paths(value):
                resolve(c.CycleDocument, path)
        else:
            assert accepts(field, value), f"{name}: {key}={value!r} is not a {field}"
    # and the request model takes a payload built that way
    assert request.model_fields


@pytest.mark.parametrize(("name", "state"), LAMBDA_TASKS, ids=[n for n, _ in LAMBDA_TASKS])
def test_each_result_selector_reads_the_answer_and_fits_its_result_path(
    name: str, state: dict[str, Any]
) -> None:
    _, result = _function(state)
    target = state.get("ResultPath")
    selector = state.get("ResultSelector")
    if target is None:
        return
    assert target.startswith("$."), f"{name} ResultPath {target}"
    kept = resolve(c.CycleDocument, target)
    if selector is None:
        return
    for key, value in selector.items():
        assert key.endswith(".$"), (name, key)
        assert value.startswith("$.Payload."), (name, key, value)
        resolve(result, "$." + value.removeprefix("$.Payload."))
        _field(kept, key.removesuffix(".$"))


def _choice_rules(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for rule in state.get("Choices", []):
        yield rule
        yield from rule.get("And", []) + rule.get("Or", [])
        if "Not" in rule:
            yield rule["Not"]


CHOICES = [(n, s) for n, s in _states() if s["Type"] == "Choice"]


@pytest.mark.parametrize(("name", "state"), CHOICES, ids=[n for n, _ in CHOICES])
def test_each_choice_compares_a_field_with_a_value_it_can_hold(
    name: str, state: dict[str, Any]
) -> None:
    for rule in _choice_rules(state):
        if "Variable" not in rule:
            continue
        field = resolve(c.CycleDocument, rule["Variable"])
        if "StringEquals" in rule:
            assert accepts(field, rule["StringEquals"]), (name, rule)
        if "BooleanEquals" in rule:
            assert field is bool, (name, rule)


def test_every_path_elsewhere_names_a_field_of_the_cycle_document() -> None:
    checked = 0
    for name, state in _states():
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
            field = _field(target, key.removesuffix(".$"))
            if key.endswith(".$"):
                for path in _paths(value):
                    resolve(c.CycleDocument, path)
                    checked += 1
            else:
                assert accepts(field, value), (name, key, value)
    assert checked > 10


def test_the_next_cycle_starts_with_an_input_the_cycle_input_model_takes() -> None:
    (start,) = [
        s for _, s in _states() if s.get("Resource") == "arn:aws:states:::states:startExecution"
    ]
    given = start["Parameters"]["Input"]
    sample = {}
    for key, value in given.items():
        name = key.removesuffix(".$")
        _field(c.CycleInput, name)
        if key.endswith(".$"):
            for path in _paths(value):
                resolve(c.CycleDocument, path)
            sample[name] = "c000002" if name == "cycle_id" else "arn:execution"
        else:
            sample[name] = value
    assert c.CycleInput.model_validate(sample).sell_attempt == 1


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
