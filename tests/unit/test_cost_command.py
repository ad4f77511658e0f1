"""``flipbot cost``: the modelled bill follows the template and stays within the budget."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from flipbot_dev.cli import main
from flipbot_dev.commands.cost import (
    CONTAINER_INSIGHTS_METRICS,
    PRICES,
    Assumptions,
    Deployment,
    ai_line,
    deployment_from_template,
    model,
    totals,
)

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
BUDGET_BEFORE_AI = 15.0  # USD a month at 100 cycles/day (issue 7)


@pytest.fixture(scope="module")
def deployment() -> Deployment:
    return deployment_from_template(TEMPLATE)


def test_the_template_sets_the_drivers(deployment: Deployment) -> None:
    assert (deployment.task_vcpu, deployment.task_gb, deployment.task_arch) == (0.25, 0.5, "arm64")
    assert deployment.public_ip
    assert not deployment.container_insights
    assert deployment.price_tick_seconds == 60
    assert deployment.reconcile_minutes == 15
    assert set(deployment.function_memory_mb) == {
        "consult_ai",
        "place_order",
        "on_order_update",
        "cancel_order",
        "record_trade",
        "reconcile",
    }
    assert deployment.alarms >= 5
    assert deployment.dashboards == 1
    assert deployment.secrets == 2


def test_at_100_cycles_a_day_the_bill_before_ai_is_within_budget(
    deployment: Deployment,
) -> None:
    lines = model(deployment, Assumptions(cycles_per_day=100))
    aws, aws_free_tier = totals(lines)
    assert all(line.usd >= line.usd_free_tier >= 0 for line in lines)
    # within budget on the always-free tier; at list prices the dashboard, metrics and
    # alarms add about 6 USD
    assert aws_free_tier < BUDGET_BEFORE_AI < aws
    services = {line.service for line in lines}
    assert {
        "Fargate listener",
        "EventBridge",
        "Lambda",
        "Step Functions",
        "DynamoDB",
        "CloudWatch metrics",
        "Secrets Manager",
    } <= services


def test_container_insights_would_cost_its_metrics(deployment: Deployment) -> None:
    base = totals(model(deployment, Assumptions()))[0]
    with_insights = totals(model(replace(deployment, container_insights=True), Assumptions()))[0]
    metric = PRICES["us-east-1"]["metric_month"]
    assert with_insights - base == pytest.approx(CONTAINER_INSIGHTS_METRICS * metric, rel=0.02)


def test_traces_are_billed_only_when_the_template_traces(deployment: Deployment) -> None:
    # Given the template without X-Ray (no Tracer in the functions: README, Monitoring)
    assert not deployment.tracing
    assert "X-Ray" not in {line.service for line in model(deployment, Assumptions())}
    # When tracing is switched on, its traces are billed
    traced = model(replace(deployment, tracing=True), Assumptions(cycles_per_day=1000))
    assert next(line for line in traced if line.service == "X-Ray").usd > 0


def test_more_cycles_cost_more_and_offline_costs_no_ai(deployment: Deployment) -> None:
    few, many = (totals(model(deployment, Assumptions(cycles_per_day=n)))[0] for n in (10, 1000))
    assert many > few
    assert ai_line(deployment, Assumptions(ai=False)).usd == 0
    assert ai_line(deployment, Assumptions()).usd > 0


def test_unknown_region_is_refused(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match="no price table for mars-1"):
        model(replace(deployment, region="mars-1"), Assumptions())


def test_cli_prints_the_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--template", str(TEMPLATE)]) == 0
    table = capsys.readouterr().out
    assert "AWS before AI" in table
    assert "Fargate listener" in table
    assert main(["cost", "--template", str(TEMPLATE), "--json", "--cycles-per-day", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["assumptions"]["cycles_per_day"] == 50
    assert data["aws_usd_free_tier"] <= data["aws_usd"]


def test_symbols_share_the_fixed_costs_so_each_costs_less(deployment: Deployment) -> None:
    def bill(symbols: int) -> float:
        a = Assumptions(cycles_per_day=4, symbols=symbols, ai=False)
        return totals(model(deployment, a))[0]

    one, five, twenty = bill(1), bill(5), bill(20)
    # more symbols cost more in all: their cycles, ticks and snapshots
    assert one < five < twenty
    # and less each: one listener, one reconcile schedule, one set of alarms
    assert one > five / 5 > twenty / 20
    # the listener is billed once whatever the symbols
    fargate = {
        n: next(x.usd for x in model(deployment, Assumptions(symbols=n)) if "Fargate" in x.service)
        for n in (1, 20)
    }
    assert fargate[1] == fargate[20]


def test_the_table_and_json_give_the_bill_per_symbol(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost", "--symbols", "5", "--cycles-per-day", "4", "--offline", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["assumptions"]["symbols"] == 5
    assert data["per_symbol_usd"] == round(data["total_usd"] / 5, 2)
    assert main(["cost", "--symbols", "5", "--offline"]) == 0
    out = capsys.readouterr().out
    assert "5 symbols x 100 cycles/day" in out
    assert "Per symbol" in out
    assert main(["cost", "--symbols", "0"]) == 2
    assert "symbols must be at least 1, got 0" in capsys.readouterr().err
