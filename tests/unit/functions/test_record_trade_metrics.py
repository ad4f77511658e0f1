"""The record-trade function's metrics: what the dashboard's P&L and time-to-fill charts read."""

from __future__ import annotations

from typing import Any

import pytest
from function_handlers import Context, NoServices, emitted_metrics, load_handler


def _values(blob: dict[str, Any], name: str) -> list[float]:
    value = blob[name]
    return [float(v) for v in (value if isinstance(value, list) else [value])]


def test_given_a_closed_cycle_then_each_leg_s_time_to_fill_is_a_metric_in_seconds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given record_trade closed a cycle whose buy filled after 42 s and sell after 1800 s
    module = load_handler(monkeypatch, "record_trade", container=lambda _context: NoServices())
    closed = {
        "next_cycle_id": "c000002",
        "continue": True,
        "realized_pnl": "0.11",
        "closed": True,
        "fill_seconds": {"BUY": 42.0, "SELL": 1800.5},
    }
    monkeypatch.setattr(module, "record_trade", lambda *_args, **_kwargs: closed)
    # When the handler runs
    module.handler({"cycle_id": "c000001"}, Context("RecordTradeFunction"))
    # Then both legs' fill times are emitted in seconds, beside the cycle and its P&L
    blob = emitted_metrics(capsys.readouterr().out)
    assert _values(blob, "BuyFillSeconds") == [42.0]
    assert _values(blob, "SellFillSeconds") == [1800.5]
    assert _values(blob, "CyclesCompleted") == [1.0]
    units = {m["Name"]: m["Unit"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["BuyFillSeconds"] == units["SellFillSeconds"] == "Seconds"


def test_given_a_retry_of_a_closed_cycle_then_nothing_is_counted_twice(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the cycle was closed by an earlier attempt (the retry answers closed=False)
    module = load_handler(monkeypatch, "record_trade", container=lambda _context: NoServices())
    again = {"next_cycle_id": "c000002", "continue": True, "realized_pnl": "0.11", "closed": False}
    monkeypatch.setattr(module, "record_trade", lambda *_args, **_kwargs: again)
    # When the retry runs
    result = module.handler({"cycle_id": "c000001"}, Context("RecordTradeFunction"))
    # Then it answers the state machine as before and counts no cycle, P&L or fill time
    assert result == again
    assert '"_aws"' not in capsys.readouterr().out
