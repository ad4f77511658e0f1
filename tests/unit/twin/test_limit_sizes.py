"""AWS limits as the twin computes and applies them: sizes, Lambda payloads, timeouts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flipbot_dev.twin.limits import (
    EnvironmentTooLarge,
    FunctionTimedOut,
    Limits,
    Quotas,
    RequestEntityTooLarge,
    ResponseSizeTooLarge,
    as_delivered,
    check_environment,
    environment_size,
    json_size,
    put_events_entry_size,
)
from flipbot_dev.twin.moto_hooks import LambdaRegistry, lambda_error_payload


def test_given_an_entry_then_its_size_is_time_14_bytes_plus_the_utf8_of_its_fields() -> None:
    entry = {
        "Time": "2025-01-20T00:00:00Z",
        "Source": "flipbot.listener",
        "DetailType": "OrderUpdated",
        "Detail": json.dumps({"price": "25.9", "note": "é"}, ensure_ascii=False),
        "Resources": ["arn:aws:x", None],
        "EventBusName": "ignored",
    }
    detail = len(entry["Detail"].encode("utf-8"))
    assert detail == len(entry["Detail"]) + 1  # "é" is two bytes in UTF-8
    assert put_events_entry_size(entry) == 14 + 16 + 12 + detail + 9
    assert put_events_entry_size({"Source": "s", "DetailType": "d"}) == 2


def test_given_json_then_its_size_is_compact_utf8() -> None:
    assert json_size({"a": [1, 2], "b": "é"}) == len('{"a":[1,2],"b":"é"}'.encode())
    assert json_size("already text") == 12


def test_given_an_environment_then_it_is_measured_as_lambda_measures_it() -> None:
    variables = {"A": "1", "BB": "22"}
    assert environment_size(variables) == len('{"A":"1","BB":"22"}')
    assert check_environment("F", variables) == environment_size(variables)


def test_given_an_environment_over_4_kb_then_building_fails_with_lambdas_message() -> None:
    variables = {"BIG": "x" * 4090}
    with pytest.raises(EnvironmentTooLarge, match=r"exceeded the 4KB limit\. String measured"):
        check_environment("PlaceOrderFunction", variables)
    assert check_environment("F", {"X": "x" * 4080}) <= 4096


def test_given_values_seen_then_the_report_lists_the_highest_beside_its_limit() -> None:
    limits = Limits()
    assert limits.see("dynamodb_item_size", 100, "t1")
    assert limits.see("dynamodb_item_size", 50, "t2")
    assert not limits.see("eventbridge_put_events_entries", 11, "PutEvents")
    report = limits.report()
    assert report["dynamodb_item_size"] == {
        "limit": 400 * 1024,
        "highest": 100,
        "unit": "bytes",
        "share": round(100 / (400 * 1024), 6),
        "at": "t1",
    }
    assert report["stepfunctions_state_data"]["limit"] == 262_144
    assert report["stepfunctions_history_events"]["limit"] == 25_000
    assert report["lambda_sync_payload"]["limit"] == 6 * 1024 * 1024
    assert report["lambda_environment"]["highest"] == 0


def _registry(quotas: Quotas, handler: Any, clock: list[float] | None = None) -> LambdaRegistry:
    registry = LambdaRegistry(limits=Limits(quotas=quotas, timeouts={"f": 30}))
    registry.register("f", handler, {})
    if clock is not None:
        registry.monotonic = lambda: clock.pop(0)
    return registry


def test_given_a_response_over_the_sync_limit_then_the_function_errors_as_lambda_does() -> None:
    registry = _registry(Quotas(lambda_sync_payload_bytes=1000), lambda e, c: {"x": "y" * 2000})
    with pytest.raises(ResponseSizeTooLarge) as raised:
        registry.invoke("f", {})
    assert json.loads(lambda_error_payload(raised.value))["errorType"] == (
        "Function.ResponseSizeTooLarge"
    )
    # An asynchronous invocation's response goes nowhere: no limit applies to it.
    assert registry.invoke("f", {}, asynchronous=True) == {"x": "y" * 2000}


def test_given_an_async_event_over_the_limit_then_the_invoke_is_refused_and_dead_lettered() -> None:
    calls: list[Any] = []
    registry = _registry(Quotas(lambda_async_payload_bytes=100), lambda e, c: calls.append(e))
    with pytest.raises(RequestEntityTooLarge):
        registry.invoke("f", {"detail": "z" * 200}, asynchronous=True)
    assert not registry.invoke_async("f", {"detail": "z" * 200})
    assert calls == []
    assert registry.dead_letters[0][0] == "f"


def test_given_an_invocation_longer_than_its_timeout_then_it_fails_as_sandbox_timedout() -> None:
    registry = _registry(Quotas(), lambda e, c: "done", clock=[100.0, 131.0, 200.0, 229.0])
    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 30\.00 seconds"):
        registry.invoke("f", {})
    assert registry.invoke("f", {}) == "done"
    assert registry.limits is not None
    assert registry.limits.slowest() == {"f": 31.0}
    assert registry.limits.report()["lambda_timeout"]["f"] == {
        "limit_seconds": 30,
        "virtual_seconds_max": 0.0,
    }


def test_given_an_event_stamped_by_the_twin_then_it_is_sized_as_eventbridge_delivers_it() -> None:
    event = {"detail-type": "OrderUpdated", "time": 1_737_331_200.123456, "ingestion-time": 1.5}
    later = {**event, "time": 1_737_331_201.1, "ingestion-time": 12345.678}
    assert as_delivered(event) == {"detail-type": "OrderUpdated", "time": "2025-01-20T00:00:00Z"}
    assert json_size(as_delivered(event)) == json_size(as_delivered(later))
    assert as_delivered({"cycle_id": "c1"}) == {"cycle_id": "c1"}
