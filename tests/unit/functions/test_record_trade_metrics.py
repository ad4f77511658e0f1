"""The record-trade function's metrics: what the dashboard's P&L and time-to-fill charts read."""

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
        "record_trade_app_under_test", ROOT / "functions" / "record_trade" / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "container", lambda: None)
    return module


class _Context:
    function_name = "RecordTradeFunction"
    memory_limit_in_mb = 512
    aws_request_id = "test"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:record"


def _emf(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            blob: dict[str, Any] = json.loads(line)
            return blob
    raise AssertionError(f"no EMF blob in {output!r}")


def _values(blob: dict[str, Any], name: str) -> list[float]:
    value = blob[name]
    return [float(v) for v in (value if isinstance(value, list) else [value])]


def test_given_a_closed_cycle_then_each_leg_s_time_to_fill_is_a_metric_in_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given record_trade closed a cycle whose buy filled after 42 s and sell after 1800 s
    module = _handler_module(monkeypatch)
    closed = {
        "next_cycle_id": "c000002",
        "continue": True,
        "realized_pnl": "0.11",
        "closed": True,
        "fill_seconds": {"BUY": 42.0, "SELL": 1800.5},
    }
    monkeypatch.setattr(module, "record_trade", lambda *_args, **_kwargs: closed)
    # When the handler runs
    module.handler({"cycle_id": "c000001"}, _Context())
    # Then both legs' fill times are emitted in seconds, beside the cycle and its P&L
    blob = _emf(capsys.readouterr().out)
    assert _values(blob, "BuyFillSeconds") == [42.0]
    assert _values(blob, "SellFillSeconds") == [1800.5]
    assert _values(blob, "CyclesCompleted") == [1.0]
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["BuyFillSeconds"] == units["SellFillSeconds"] == "Seconds"


def test_given_a_retry_of_a_closed_cycle_then_nothing_is_counted_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the cycle was closed by an earlier attempt (the retry answers closed=False)
    module = _handler_module(monkeypatch)
    again = {"next_cycle_id": "c000002", "continue": True, "realized_pnl": "0.11", "closed": False}
    monkeypatch.setattr(module, "record_trade", lambda *_args, **_kwargs: again)
    # When the retry runs
    result = module.handler({"cycle_id": "c000001"}, _Context())
    # Then it answers the state machine as before and counts no cycle, P&L or fill time
    assert result == again
    assert '"_aws"' not in capsys.readouterr().out
