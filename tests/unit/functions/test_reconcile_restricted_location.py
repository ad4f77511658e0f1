"""A restricted location stops the cycle at once, says why, and raises the alarm's metric."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from function_handlers import Context, emitted_metrics, load_handler

from flipbot.app.reconcile import reconcile_cycle
from flipbot.domain.errors import (
    ConfigurationError,
    OrderRejected,
    RestrictedLocation,
    error_type,
)
from flipbot.ports import Services

MESSAGE = "place_limit TRUMPUSDC: Binance refuses requests from this location (HTTP 451)"
CAUGHT = {
    "Error": "RestrictedLocation",
    "Cause": json.dumps(
        {"errorMessage": MESSAGE, "errorType": "RestrictedLocation", "stackTrace": []}
    ),
}


class _Untouchable:
    """Services that fail the test if reconcile reaches for the exchange or the tables."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"reconcile used services.{name} for a configuration error")

    def for_cycle(self, _cycle_id: str) -> _Untouchable:
        return self  # the cycle's view of the same untouchable parts


def test_error_names_map_back_to_the_taxonomy() -> None:
    assert error_type("RestrictedLocation") is RestrictedLocation
    assert issubclass(RestrictedLocation, ConfigurationError)
    assert not RestrictedLocation.retryable
    assert error_type("OrderRejected") is OrderRejected
    assert error_type("States.Timeout") is None


def test_given_a_restricted_location_then_the_cycle_fails_with_its_message() -> None:
    # Given a cycle step failed because Binance refuses the region
    services = cast(Services, _Untouchable())
    # When reconcile is asked where the cycle resumes
    result = reconcile_cycle(services, cycle_id="c000001", error=CAUGHT)
    # Then it fails the cycle without calling anything, naming the error and its message
    assert result["resume"] == "FAIL"
    assert result["reason"] == f"RestrictedLocation: {MESSAGE}"
    assert result["configuration_error"] == "RestrictedLocation"
    assert result["repaired_fills"] == 0


def test_given_a_configuration_error_with_a_plain_cause_then_the_cause_is_the_reason() -> None:
    error = {"Error": "ConfigurationError", "Cause": "SYMBOL is missing"}
    result = reconcile_cycle(cast(Services, _Untouchable()), cycle_id="c000001", error=error)
    assert result["resume"] == "FAIL"
    assert result["reason"] == "ConfigurationError: SYMBOL is missing"


# --------------------------------------------------------------------------- handler metric


def test_given_a_cycle_stopped_by_a_restricted_location_then_the_alarm_metric_is_emitted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: _Untouchable())
    result = module.handler(
        {"source": "cycle", "cycle_id": "c000001", "error": CAUGHT}, Context("ReconcileFunction")
    )
    assert result["resume"] == "FAIL"
    assert emitted_metrics(capsys.readouterr().out)["RestrictedLocation"] in (1, 1.0, [1.0])


def test_given_a_scheduled_run_refused_by_binance_then_the_metric_is_emitted_and_it_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: _Untouchable())

    def refused(_services: Any) -> dict[str, Any]:
        raise RestrictedLocation(MESSAGE)

    monkeypatch.setattr(module, "reconcile_on_schedule", refused)
    with pytest.raises(RestrictedLocation):
        module.handler({"source": "aws.events"}, Context("ReconcileFunction"))
    assert emitted_metrics(capsys.readouterr().out)["RestrictedLocation"] in (1, 1.0, [1.0])


def test_given_an_ordinary_repair_then_no_restricted_location_metric(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: _Untouchable())
    quiet = {"repaired_fills": 0, "resumed": 0, "heartbeats": 0}
    monkeypatch.setattr(module, "reconcile_on_schedule", lambda _services: quiet)
    module.handler({"source": "aws.events"}, Context("ReconcileFunction"))
    assert "RestrictedLocation" not in emitted_metrics(capsys.readouterr().out)
