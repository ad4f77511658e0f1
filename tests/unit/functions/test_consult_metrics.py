"""The consult function's metrics: what the dashboard charts and the alarms watch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _handler_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "flipbot")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flipbot")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    spec = importlib.util.spec_from_file_location(
        "consult_ai_app_under_test", ROOT / "functions" / "consult_ai" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Context:
    function_name = "ConsultAiFunction"
    memory_limit_in_mb = 256
    aws_request_id = "test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:consult"


def _metrics(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob: dict[str, Any] = json.loads(line)
            return blob
    raise AssertionError(f"no EMF blob in {output!r}")


@pytest.mark.parametrize(
    ("ai_error", "alarm_metric"),
    [("budget: daily AI budget of 1 USD is spent", True), ("timeout: no answer", False)],
    ids=["budget-spent", "other-failure"],
)
def test_given_an_ai_failure_then_only_a_spent_budget_raises_the_alarm_metric(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ai_error: str,
    alarm_metric: bool,
) -> None:
    module = _handler_module(monkeypatch)
    result = {
        "action": "WAIT",
        "confidence": 0.0,
        "guard": "",
        "reason": "fallback",
        "decided_by": "fallback:offline",
        "cost_usd": "0.0003",
        "ai_error": ai_error,
    }
    monkeypatch.setattr(module, "consult", lambda *args: result)
    monkeypatch.setattr(module, "container", lambda: None)
    module.handler({"cycle_id": "c000001", "leg": "BUY", "attempt": 1}, _Context())
    blob = _metrics(capsys.readouterr().out)
    cost = blob["AiCostUsd"]
    assert (cost if isinstance(cost, list) else [cost]) == [pytest.approx(0.0003)]
    assert ("AiBudgetExceeded" in blob) is alarm_metric
