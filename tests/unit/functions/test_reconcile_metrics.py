"""The reconcile function's drift metric counts what the event path missed, not what a
deliberate recovery rebuilds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import flipbot.app.recovery

ROOT = Path(__file__).resolve().parents[3]


def _handler_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "flipbot")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "flipbot")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    spec = importlib.util.spec_from_file_location(
        "reconcile_app_metrics_under_test", ROOT / "functions" / "reconcile" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "container", lambda: None)
    return module


class _Context:
    function_name = "ReconcileFunction"
    memory_limit_in_mb = 512
    aws_request_id = "test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:reconcile"


def _metrics(output: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found.update(json.loads(line))
    return found


def test_given_a_scheduled_run_that_repaired_fills_then_the_drift_metric_counts_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _handler_module(monkeypatch)
    repaired = {"repaired_fills": 2, "resumed": 1, "heartbeats": 0}
    monkeypatch.setattr(module, "reconcile_open_orders", lambda _services: repaired)
    module.handler({"source": "aws.events"}, _Context())
    assert _metrics(capsys.readouterr().out)["ReconcileRepairs"] in (2, 2.0, [2.0])


def test_given_a_recovery_asked_for_then_its_rebuilt_fills_raise_no_drift_alarm(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an owner runs the recovery (a first deploy onto an account with history)
    module = _handler_module(monkeypatch)
    rebuilt = {"repaired_fills": 7, "resumed": 0, "heartbeats": 0}
    monkeypatch.setattr(flipbot.app.recovery, "recover_from_exchange", lambda _services: rebuilt)
    # When it rebuilds seven fills from the exchange
    result = module.handler({"source": "recover"}, _Context())
    # Then it says so in its answer, and the drift metric (ReconcileDrift alarm) stays out
    assert result["repaired_fills"] == 7
    assert "ReconcileRepairs" not in _metrics(capsys.readouterr().out)
