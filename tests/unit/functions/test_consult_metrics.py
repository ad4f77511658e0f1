"""The consult function's metrics: what the dashboard charts and the alarms watch."""

from __future__ import annotations

import pytest
from function_handlers import Context, emitted_metrics, load_handler


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
    module = load_handler(monkeypatch, "consult_ai")
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
    module.handler(
        {"cycle_id": "c000001", "leg": "BUY", "attempt": 1}, Context("ConsultAiFunction")
    )
    blob = emitted_metrics(capsys.readouterr().out)
    cost = blob["AiCostUsd"]
    assert (cost if isinstance(cost, list) else [cost]) == [pytest.approx(0.0003)]
    assert ("AiBudgetExceeded" in blob) is alarm_metric
