"""The consult function's metrics: what the dashboard charts and the alarms watch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from function_handlers import Context, emitted_metrics, load_handler


@pytest.mark.parametrize(
    ("ai_error", "budget_spent", "alarm_metric"),
    [
        ("budget: daily AI budget of 1 USD is spent", True, True),
        ("timeout: no answer", False, False),
        # the flag decides, not the wording of the reason
        ("budget of patience exceeded: no answer", False, False),
    ],
    ids=["budget-spent", "other-failure", "budget-in-the-words-only"],
)
def test_given_an_ai_failure_then_only_a_spent_budget_raises_the_alarm_metric(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ai_error: str,
    budget_spent: bool,
    alarm_metric: bool,
) -> None:
    module = load_handler(monkeypatch, "consult_ai")
    result = {
        "action": "WAIT",
        "price": None,
        "quantity": None,
        "wait_seconds": 60,
        "timeout_seconds": 0,
        "heartbeat_seconds": 0,
        "consultation_id": "c000001-BUY-1-1",
        "confidence": 0.0,
        "guard": "",
        "reprice_seconds": 0,
        "reason": "fallback",
        "decided_by": "fallback:offline",
        "cost_usd": "0.0003",
        "ai_error": ai_error,
        "ai_budget_spent": budget_spent,
    }
    monkeypatch.setattr(module, "consult", lambda *args, **kwargs: result)
    monkeypatch.setattr(module, "container", lambda _context: SimpleNamespace(for_cycle=str))
    module.handler(
        {"cycle_id": "c000001", "leg": "BUY", "attempt": 1}, Context("ConsultAiFunction")
    )
    blob = emitted_metrics(capsys.readouterr().out)
    cost = blob["AiCostUsd"]
    assert (cost if isinstance(cost, list) else [cost]) == [pytest.approx(0.0003)]
    assert ("AiBudgetExceeded" in blob) is alarm_metric


def test_given_an_answer_with_a_field_the_contract_does_not_declare_then_the_handler_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    module = load_handler(monkeypatch, "consult_ai")
    result = {
        "action": "PLACE",
        "price": "10.5",
        "quantity": "1",
        "wait_seconds": 0,
        "timeout_seconds": 300,
        "heartbeat_seconds": 0,
        "consultation_id": "c000001-BUY-1-1",
        "confidence": 0.9,
        "reason": "",
        "guard": "",
        "reprice_seconds": 0,
        "prcie": "10.6",
    }
    monkeypatch.setattr(module, "consult", lambda *args, **kwargs: result)
    monkeypatch.setattr(module, "container", lambda _context: SimpleNamespace(for_cycle=str))
    with pytest.raises(ValidationError, match="prcie"):
        module.handler(
            {"cycle_id": "c000001", "leg": "BUY", "attempt": 1}, Context("ConsultAiFunction")
        )
