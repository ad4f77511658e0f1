"""A stack in a region Binance refuses: the first cycle stops in NeedsAttention, saying so.

The functions reach the paper exchange through the real python-binance client; the
exchange answers HTTP 451 to every request, as Binance answers a restricted location.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def _executions() -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    found = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        listed = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])
        for execution in listed["executions"]:
            found.append(sfn.describe_execution(executionArn=execution["executionArn"]))
    return found


def test_given_binance_refuses_the_region_then_the_cycle_needs_attention_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given every request to Binance is answered 451
    monkeypatch.setattr(BinanceRestApp, "location_restricted", True)
    out = io.StringIO()
    # When the twin runs two hours (the first cycle starts after half an hour); the outer
    # mock keeps the executions readable after the run
    with mock_aws():
        report = run_replay(
            ReplayConfig(
                template=TEMPLATE,
                data=generate_sample(seed=7, hours=2),
                symbol="TRUMPUSDC",
                progress=False,
            ),
            out=out,
        )
        executions = _executions()
    # Then the one cycle failed once, through Reconcile, and no order was placed
    assert report["executions"]["failed"] == ["c000001: FAILED CycleNeedsAttention"]
    assert report["errors_caught"] == {"RestrictedLocation": 1}
    assert report["orders_placed"] == 0
    # And the execution's cause says what happened and what to do
    (execution,) = executions
    assert execution["status"] == "FAILED"
    assert execution["error"] == "CycleNeedsAttention"
    cause = execution["cause"]
    assert cause.startswith("RestrictedLocation: ")
    assert "HTTP 451" in cause
    assert "restricted location" in cause
    assert "Deploy in an AWS region Binance serves" in cause
