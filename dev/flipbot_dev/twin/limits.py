"""AWS limits for the digital twin: enforced where AWS enforces them, and measured.

Each limit below fails in the twin the way it fails on AWS (the hooks that apply them
live in :mod:`flipbot_dev.twin.moto_hooks`), and every replay reports the highest value it
came to beside the limit (``report["limits"]``):

* **Step Functions state data**, 256 KiB of UTF-8 JSON: a state's input after
  ``Parameters``, a task's result and a state's output. Exceeding it is
  ``States.DataLimitExceeded``, a terminal error: ``States.ALL`` neither retries nor
  catches it (nor ``States.Runtime``); only a Retry or Catch that names it does.
* **Step Functions history**, 25,000 events an execution: the event that would be the
  25,000th, unless it ends the execution, fails it instead (``States.Runtime``).
* **EventBridge PutEvents**: at most 10 entries a call (moto already answers
  ``ValidationException``) and 256 KiB of entries a call, sized as EventBridge documents
  it (Time 14 bytes when given; Source, DetailType, Detail and each of Resources by their
  UTF-8 bytes); over it the whole call is a ``ValidationException``.
* **Lambda payloads**: 6 MiB for a synchronous request or response, 1 MiB for an
  asynchronous request (the Invoke API's figure; EventBridge and schedules invoke
  asynchronously). A request over it is refused (``RequestEntityTooLargeException``), a
  response over it fails the invocation with ``Function.ResponseSizeTooLarge``.
* **DynamoDB items**, 400 KiB: moto enforces it (``ValidationException``, "Item size has
  exceeded the maximum allowed size"); the twin measures the items it stores.
* **Lambda environment**, 4 KiB, measured as Lambda measures it (the JSON of the
  variables): over it, building the twin fails with Lambda's message, as a deploy would.
* **Function timeout**: what a function's ``Timeout`` is held against. The twin's clock
  stands still while a handler runs (it moves only when every execution is parked), so
  an invocation's virtual duration is 0 by construction. What is measured instead is the
  handler's real duration, an upper bound of its work (it includes moto standing in for
  AWS); an invocation that outlasts its ``Timeout`` fails as Lambda's does
  (``Sandbox.Timedout``), after whatever side effects it had (as a killed function may).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True)
class Quotas:
    """The limits, as AWS documents them (tests may lower them)."""

    state_data_bytes: int = 256 * KIB
    history_events: int = 25_000
    put_events_entries: int = 10
    put_events_bytes: int = 256 * KIB
    lambda_sync_payload_bytes: int = 6 * MIB
    lambda_async_payload_bytes: int = 1 * MIB
    dynamodb_item_bytes: int = 400 * KIB
    lambda_environment_bytes: int = 4 * KIB


#: report key -> (quota field, unit); the order of the report
LIMITS: dict[str, tuple[str, str]] = {
    "stepfunctions_state_data": ("state_data_bytes", "bytes"),
    "stepfunctions_history_events": ("history_events", "events"),
    "eventbridge_put_events_entries": ("put_events_entries", "entries"),
    "eventbridge_put_events_size": ("put_events_bytes", "bytes"),
    "lambda_sync_payload": ("lambda_sync_payload_bytes", "bytes"),
    "lambda_async_payload": ("lambda_async_payload_bytes", "bytes"),
    "dynamodb_item_size": ("dynamodb_item_bytes", "bytes"),
    "lambda_environment": ("lambda_environment_bytes", "bytes"),
}


class LimitExceeded(Exception):
    """An AWS limit the twin enforces; ``error_type`` is the name AWS gives the error."""

    error_type = "LimitExceeded"


class RequestEntityTooLarge(LimitExceeded):
    error_type = "RequestEntityTooLargeException"


class ResponseSizeTooLarge(LimitExceeded):
    error_type = "Function.ResponseSizeTooLarge"


class FunctionTimedOut(LimitExceeded):
    error_type = "Sandbox.Timedout"


class EnvironmentTooLarge(LimitExceeded):
    error_type = "InvalidParameterValueException"


# --------------------------------------------------------------------------- sizes
def json_size(value: Any) -> int:
    """UTF-8 bytes of ``value`` as compact JSON (a string counts as its own text)."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_text)
    )
    return len(text.encode("utf-8"))


def _text(value: Any) -> str:
    """What a timestamp (or anything else JSON cannot hold) is sent as: of fixed length."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


def put_events_entry_size(entry: Mapping[str, Any]) -> int:
    """A PutEvents entry's size as EventBridge computes it."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        if entry.get(key) is not None:
            size += len(str(entry[key]).encode("utf-8"))
    for resource in entry.get("Resources") or ():
        if resource is not None:
            size += len(str(resource).encode("utf-8"))
    return size


def as_delivered(event: Any) -> Any:
    """An EventBridge event as EventBridge delivers it: moto stamps ``time`` (and an
    ``ingestion-time``) as epoch floats of the real clock; AWS sends an ISO time of fixed
    length and no ingestion time. Anything else is returned as it is."""
    if not isinstance(event, dict) or "detail-type" not in event:
        return event
    delivered = {k: v for k, v in event.items() if k != "ingestion-time"}
    if isinstance(delivered.get("time"), int | float):
        stamp = datetime.fromtimestamp(float(delivered["time"]), tz=UTC)
        delivered["time"] = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return delivered


def environment_size(variables: Mapping[str, str]) -> int:
    """The string Lambda measures against 4 KB: the variables as JSON."""
    text = json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8"))


def check_environment(
    function: str, variables: Mapping[str, str], quotas: Quotas | None = None
) -> int:
    """The environment's size; raise Lambda's error when it is over the limit."""
    limit = (quotas or Quotas()).lambda_environment_bytes
    size = environment_size(variables)
    if size > limit:
        raise EnvironmentTooLarge(
            f"{function}: Lambda was unable to configure your environment variables because "
            f"the environment variables you have provided exceeded the 4KB limit. String "
            f"measured: {json.dumps(dict(variables), separators=(',', ':'))}"
        )
    return size


# --------------------------------------------------------------------------- tracking
@dataclass
class Limits:
    """The quotas a twin enforces and the highest value seen for each."""

    quotas: Quotas = field(default_factory=Quotas)
    #: function name -> its ``Timeout`` in seconds (from the template)
    timeouts: dict[str, int] = field(default_factory=dict)
    highest: dict[str, int] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)
    #: function name -> its longest invocation, in seconds of real time (not reported:
    #: it varies from run to run) and in milliseconds of virtual time
    durations: dict[str, float] = field(default_factory=dict)
    virtual_ms: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def see(self, limit: str, value: int, where: str) -> bool:
        """Record ``value`` for ``limit``; True when it is within the limit."""
        with self._lock:
            if value > self.highest.get(limit, -1):
                self.highest[limit] = value
                self.where[limit] = where
        return value <= self.limit(limit)

    def limit(self, name: str) -> int:
        value: int = getattr(self.quotas, LIMITS[name][0])
        return value

    # -- Lambda ---------------------------------------------------------------------
    def lambda_request(self, function: str, event: Any, *, asynchronous: bool) -> None:
        name = "lambda_async_payload" if asynchronous else "lambda_sync_payload"
        size = json_size(as_delivered(event))
        if not self.see(name, size, f"{function} request"):
            kind = "Event" if asynchronous else "RequestResponse"
            raise RequestEntityTooLarge(
                f"Request must be smaller than {self.limit(name)} bytes for the "
                f"InvokeFunction operation ({kind}): {size} bytes"
            )

    def lambda_response(self, function: str, result: Any) -> None:
        size = json_size(result)
        limit = self.limit("lambda_sync_payload")
        if not self.see("lambda_sync_payload", size, f"{function} response"):
            raise ResponseSizeTooLarge(
                f"Response payload size ({size} bytes) exceeded maximum allowed payload "
                f"size ({limit} bytes)."
            )

    def lambda_duration(self, function: str, seconds: float, virtual_ms: int = 0) -> None:
        """An invocation's real duration and the virtual time that passed meanwhile."""
        with self._lock:
            self.durations[function] = max(self.durations.get(function, 0.0), seconds)
            self.virtual_ms[function] = max(self.virtual_ms.get(function, 0), virtual_ms)
        timeout = self.timeouts.get(function)
        if timeout is not None and seconds > timeout:
            raise FunctionTimedOut(f"Task timed out after {timeout:.2f} seconds")

    # -- report ---------------------------------------------------------------------
    def report(self, function_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Each limit beside the highest value seen (and where), plus the functions'
        timeouts beside their longest invocation in virtual time; ``function_ids`` maps
        function names to logical ids for the report. Real durations are left out: the
        report is the same, byte for byte, for the same inputs (see ``slowest``)."""
        ids = function_ids or {}
        out: dict[str, Any] = {}
        for name, (_, unit) in LIMITS.items():
            limit = self.limit(name)
            highest = self.highest.get(name, 0)
            out[name] = {
                "limit": limit,
                "highest": highest,
                "unit": unit,
                "share": round(highest / limit, 6),
                "at": _named(self.where.get(name, ""), ids),
            }
        out["lambda_timeout"] = {
            ids.get(function, function): {
                "limit_seconds": timeout,
                "virtual_seconds_max": self.virtual_ms.get(function, 0) / 1000,
            }
            for function, timeout in sorted(self.timeouts.items())
        }
        return out

    def slowest(self, function_ids: Mapping[str, str] | None = None) -> dict[str, float]:
        """Each function's longest invocation in real seconds (for the console)."""
        ids = function_ids or {}
        return {ids.get(f, f): round(s, 3) for f, s in sorted(self.durations.items())}


def _named(where: str, ids: Mapping[str, str]) -> str:
    for name, logical_id in ids.items():
        where = where.replace(name, logical_id)
    return where
