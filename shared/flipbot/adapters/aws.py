"""Small AWS adapters: Step Functions callbacks, the kill switch, EventBridge, secrets.

Each translates ``botocore`` errors into the domain's taxonomy and keeps secrets out
of every message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flipbot.domain.errors import (
    ConfigurationError,
    ExchangeUnavailable,
    ExecutionExists,
    TaskNotWaiting,
)

_GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


#: how many executions of each unsuccessful status reconcile looks at on each run
ENDED_PAGE = 20


class StepFunctionsWorkflow:
    """``flipbot.ports.WorkflowPort`` on the Step Functions callback API."""

    def __init__(self, client: Any, state_machine_arn: str = "") -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def task_succeeded(self, task_token: str, output: Mapping[str, Any]) -> None:
        self._call("send_task_success", taskToken=task_token, output=json.dumps(output))

    def task_failed(self, task_token: str, error: str, cause: str) -> None:
        self._call(
            "send_task_failure", taskToken=task_token, error=error[:256], cause=cause[:32768]
        )

    def task_heartbeat(self, task_token: str) -> None:
        self._call("send_task_heartbeat", taskToken=task_token)

    def running_cycles(self) -> list[tuple[str, str]]:
        self._need_arn()
        pages = self._sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self._arn, statusFilter="RUNNING"
        )
        return [(e["name"], e["executionArn"]) for page in pages for e in page["executions"]]

    def start_cycle(self, name: str, cycle_input: Mapping[str, Any]) -> None:
        """Start the execution ``name``; raises ``ExecutionExists`` when one of that name
        ran or runs."""
        from botocore.exceptions import ClientError

        self._need_arn()
        try:
            self._sfn.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(cycle_input, default=str)
            )
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                raise ExecutionExists(f"an execution named {name} exists already") from None
            raise

    def stop_cycle(self, execution_arn: str, cause: str) -> None:
        self._sfn.stop_execution(executionArn=execution_arn, error="Recovered", cause=cause)

    def ended_cycles(self) -> list[tuple[str, str]]:
        """The first page of each unsuccessful status (newest first): what ended since the
        last look is there; older ends were looked at then."""
        self._need_arn()
        ended = []
        for status in ("ABORTED", "FAILED", "TIMED_OUT"):
            page = self._sfn.list_executions(
                stateMachineArn=self._arn, statusFilter=status, maxResults=ENDED_PAGE
            )
            ended += [(e, status) for e in page["executions"]]
        ended.sort(key=lambda pair: pair[0].get("stopDate") or pair[0]["startDate"], reverse=True)
        return [(e["name"], status) for e, status in ended]

    def _need_arn(self) -> None:
        if not self._arn:
            raise ConfigurationError("STATE_MACHINE_ARN is not set")

    def _call(self, method: str, **kwargs: Any) -> None:
        from botocore.exceptions import ClientError

        try:
            getattr(self._sfn, method)(**kwargs)
        except ClientError as exc:
            if _code(exc) in _GONE:
                raise TaskNotWaiting(f"{method}: the task no longer waits ({_code(exc)})") from None
            raise


def kill_switch_covers(value: str, symbol: str) -> bool:
    """Whether the kill switch's ``value`` stops ``symbol``: ``on`` (or ``true``, ``1``,
    ``engaged``) stops every symbol; a comma-separated list of symbols stops those alone
    (e.g. ``BTCUSDC,ETHUSDC``); anything else (``off``) stops none."""
    words = {w.strip().lower() for w in str(value).split(",") if w.strip()}
    if words & {"on", "true", "1", "engaged"}:
        return True
    return bool(symbol) and symbol.lower() in words


class SsmKillSwitch:
    """The operator's kill switch: an SSM String parameter, ``on`` stops new orders on
    every symbol, a list of symbols on those (see :func:`kill_switch_covers`)."""

    def __init__(self, parameter_name: str, max_age_seconds: int = 30) -> None:
        self._name = parameter_name
        self._max_age = max_age_seconds

    def engaged(self, symbol: str = "") -> bool:
        if not self._name:
            return False
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_parameter(self._name, max_age=self._max_age)
        return kill_switch_covers(str(value), symbol)


class StaticKillSwitch:
    def __init__(self, engaged: bool = False) -> None:
        self.value = engaged

    def engaged(self, symbol: str = "") -> bool:
        return self.value


def read_secret(arn: str, *required: str) -> dict[str, str]:
    """A JSON secret from Secrets Manager (cached by Powertools).

    Errors name the missing keys, never the values.
    """
    if not arn:
        raise ConfigurationError(f"no secret configured for {', '.join(required) or 'this value'}")
    from aws_lambda_powertools.utilities import parameters

    from flipbot.observability import register_secret

    value = parameters.get_secret(arn, transform="json", max_age=300)
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {arn} is not a JSON object")
    register_secret(*value.values())  # no log line may show them from now on
    missing = [key for key in required if not value.get(key)]
    if missing:
        raise ConfigurationError(f"secret {arn} lacks {', '.join(missing)}")
    return {str(k): str(v) for k, v in value.items()}


class EventBridgePublisher:
    """PutEvents in batches of at most 10, retrying only the failed entries with back-off."""

    def __init__(
        self, client: Any, bus_name: str, source: str, *, attempts: int = 5, sleep: Any = time.sleep
    ) -> None:
        self._events = client
        self._bus = bus_name
        self._source = source
        self._attempts = attempts
        self._sleep = sleep

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        self.publish_many([(detail_type, detail)])

    def publish_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        entries = [
            {
                "Source": self._source,
                "DetailType": detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": self._bus,
            }
            for detail_type, detail in items
        ]
        for start in range(0, len(entries), 10):
            self._put(entries[start : start + 10])

    def _put(self, batch: list[dict[str, Any]]) -> None:
        pending = batch
        for attempt in range(self._attempts):
            response = self._events.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            pending = [
                entry
                for entry, result in zip(pending, response["Entries"], strict=True)
                if result.get("ErrorCode")
            ]
            self._sleep(min(0.1 * 2**attempt, 2.0))
        raise ExchangeUnavailable(f"EventBridge refused {len(pending)} event(s) after retries")
