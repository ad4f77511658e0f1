"""The Step Functions adapter on moto: an execution name is used once."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from flipbot.adapters.aws import StepFunctionsWorkflow
from flipbot.domain.errors import ExecutionExists

REGION = "us-east-1"


def test_starting_a_cycle_whose_execution_name_was_used_raises_execution_exists() -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="flipbot-trade-cycle",
            definition=json.dumps(
                {"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}}
            ),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        workflow = StepFunctionsWorkflow(sfn, arn)
        first = {"cycle_id": "BTCUSDC_c000001", "attempt": 1, "sell_attempt": 1}
        workflow.start_cycle("BTCUSDC_c000001", first)
        assert [name for name, _ in workflow.running_cycles()] == ["BTCUSDC_c000001"]
        with pytest.raises(ExecutionExists, match="BTCUSDC_c000001"):
            workflow.start_cycle("BTCUSDC_c000001", {**first, "attempt": 2})
