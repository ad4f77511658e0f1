"""The reconcile function's drift metric counts what the event path missed, not what a
deliberate recovery rebuilds."""

from __future__ import annotations

import pytest
from function_handlers import Context, NoServices, emitted_metrics, load_handler

import flipbot.app.recovery


def test_given_a_scheduled_run_that_repaired_fills_then_the_drift_metric_counts_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: NoServices())
    repaired = {"repaired_fills": 2, "resumed": 1, "heartbeats": 0}
    monkeypatch.setattr(module, "reconcile_on_schedule", lambda _services: repaired)
    module.handler({"source": "aws.events"}, Context("ReconcileFunction"))
    assert emitted_metrics(capsys.readouterr().out)["ReconcileRepairs"] in (2, 2.0, [2.0])


def test_given_a_recovery_asked_for_then_its_rebuilt_fills_raise_no_drift_alarm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an owner runs the recovery (a first deploy onto an account with history)
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: NoServices())
    rebuilt = {"repaired_fills": 7, "resumed": 0, "heartbeats": 0}
    monkeypatch.setattr(flipbot.app.recovery, "recover_symbols", lambda _services, _sym: rebuilt)
    # When it rebuilds seven fills from the exchange
    result = module.handler({"source": "recover"}, Context("ReconcileFunction"))
    # Then it says so in its answer, and the drift metric (ReconcileDrift alarm) stays out
    assert result["repaired_fills"] == 7
    assert "ReconcileRepairs" not in emitted_metrics(capsys.readouterr().out)


def test_given_a_scheduled_run_that_stopped_a_cycle_then_the_halt_metric_counts_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a scheduled run finds a cycle whose execution was stopped by hand
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: NoServices())
    halted = {"repaired_fills": 0, "resumed": 0, "heartbeats": 0, "halted": ["c000003"]}
    monkeypatch.setattr(module, "reconcile_on_schedule", lambda _services: halted)
    module.handler({"source": "aws.events"}, Context("ReconcileFunction"))
    # Then the CycleHalted alarm's metric counts the stopped cycle
    assert emitted_metrics(capsys.readouterr().out)["CycleHalted"] in (1, 1.0, [1.0])


def test_given_a_cycle_reconcile_that_stopped_the_cycle_then_the_halt_metric_counts_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = load_handler(monkeypatch, "reconcile", container=lambda _context: NoServices())
    stopped = {"repaired_fills": 0, "resumed": 0, "heartbeats": 0, "resume": "STOP"}
    stopped |= {"reason": "position gone from the account", "halted": ["c000003"]}
    monkeypatch.setattr(module, "reconcile_cycle", lambda *_a, **_k: stopped)
    module.handler({"source": "cycle", "cycle_id": "c000003"}, Context("ReconcileFunction"))
    assert emitted_metrics(capsys.readouterr().out)["CycleHalted"] in (1, 1.0, [1.0])
