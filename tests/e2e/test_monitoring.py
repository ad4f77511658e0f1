"""Monitoring that tells the truth, checked on replays of the deployed system.

Every metric the dashboard charts and every alarm watches is emitted by something: a
function (EMF in its logs, read back from the replay), the listener (its own
``PutMetricData`` code; it does not run in a replay) or AWS itself (``AWS/*``). Every
custom metric emitted is charted, or listed in the dashboard's ``Metadata.Uncharted``
with the reason it is not. No alarm fires on a healthy day, and the days that should
raise an alarm raise it.

The days, each a few hours of the bundled sample:
* healthy: the offline strategy with a 1 % stop-loss (so stop-loss checks and exits
  happen too); the listener sends its heartbeat every minute, as it does when alive;
* budget spent: the AI path, whose endpoint answers absurdly every other time (the guards
  reject those), with a daily budget that runs out after a few answers;
* restricted: Binance refuses the region (HTTP 451) from the start.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from flipbot.listener.metrics import CloudWatchMetrics
from flipbot_dev.fake_openai import FakeOpenAiServer, absurd, alternate, valid
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.monitoring import (
    MetricId,
    Sample,
    dashboard_metrics,
    evaluate,
    metric_ids,
    put_metric_samples,
    template_alarms,
)
from flipbot_dev.twin.runner import ReplayConfig, run_replay
from flipbot_dev.twin.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
HOURS = 4
MINUTE = 60_000
KEY = "sk-local-monitoring-0123456789"


def _replay(**overrides: Any) -> dict[str, Any]:
    config = ReplayConfig(
        template=ROOT / "template.yaml",
        data=generate_sample(seed=7, hours=overrides.pop("hours", HOURS)),
        symbol="TRUMPUSDC",
        progress=False,
        **overrides,
    )
    return run_replay(config, out=io.StringIO())


def _listener_alive(start_ms: int, end_ms: int) -> list[Sample]:
    """A live listener's minutes: what its own metric code sends (heartbeat 1, lag)."""
    sink = CloudWatchMetrics(client=None)
    samples: list[Sample] = []
    for at in range(start_ms + 5_000, end_ms, MINUTE):
        data = sink.metric_data(heartbeat=1, reconnects=0, lag_ms={15: 40, 120: 2})
        samples += put_metric_samples("flipbot", data, at)
    return samples


@pytest.fixture(scope="module")
def days() -> dict[str, dict[str, Any]]:
    reports = {"healthy": _replay(parameters={"StopLoss": "0.01"})}
    with (
        FakeOpenAiServer(alternate(absurd(), valid()), api_key=KEY, lifetime=120) as server,
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("AI_DAILY_BUDGET_USD", "0.0005")
        reports["budget_spent"] = _replay(decider="openai", hours=2)
        assert 0 < server.request_count < reports["budget_spent"]["consultations"]
    with pytest.MonkeyPatch.context() as env:
        env.setattr(BinanceRestApp, "location_restricted", True)
        reports["restricted"] = _replay(hours=2)
    # a stack for which any move of the sample is abnormal volatility
    reports["breaker"] = _replay(hours=2, parameters={"BreakerMaxVolatility": "0.0001"})
    return reports


def _emitted(days: dict[str, dict[str, Any]]) -> set[MetricId]:
    from_functions = set().union(*(metric_ids(r["metrics_emitted"]) for r in days.values()))
    from_listener = {s.metric for s in _listener_alive(0, MINUTE)}
    return from_functions | from_listener


def test_every_metric_the_dashboard_charts_and_the_alarms_watch_is_emitted(
    days: dict[str, dict[str, Any]],
) -> None:
    emitted = _emitted(days)
    read = set(dashboard_metrics(TEMPLATE).metrics)
    read |= {alarm.metric for alarm in template_alarms(TEMPLATE).values()}
    never_emitted = sorted(str(m) for m in read if not m.from_aws and m not in emitted)
    assert never_emitted == []


def test_every_emitted_metric_is_charted_or_listed_as_uncharted_with_its_reason(
    days: dict[str, dict[str, Any]],
) -> None:
    charted = dashboard_metrics(TEMPLATE).metrics
    uncharted: dict[str, str] = TEMPLATE.resources["Dashboard"]["Metadata"]["Uncharted"]
    emitted = _emitted(days)
    assert {m.namespace for m in emitted} == {"flipbot"}
    not_shown = sorted(m.name for m in emitted if m not in charted and m.name not in uncharted)
    assert not_shown == []
    # the list holds no stale entry: each is emitted, not charted, and says why
    assert all(reason.strip() for reason in uncharted.values())
    emitted_names = {m.name for m in emitted}
    assert sorted(name for name in uncharted if name not in emitted_names) == []
    assert sorted(m.name for m in charted if m.name in uncharted) == []


def test_the_dashboard_shows_every_alarm() -> None:
    assert dashboard_metrics(TEMPLATE).alarms == set(template_alarms(TEMPLATE))


def test_given_a_healthy_day_then_no_alarm_fires(days: dict[str, dict[str, Any]]) -> None:
    report = days["healthy"]
    assert report["cycles_completed"] >= 2
    # the day had stop-loss exits: designed behaviour, not an incident
    assert "StopLossExits" in {m["name"] for m in report["metrics_emitted"]}
    # Then no alarm on a metric the functions emit fired
    assert report["alarms"]["fired"] == {}
    # and what AWS would count for its own alarms stayed at zero
    assert report["executions"]["failed"] == []  # ExecutionsFailedAlarm
    assert report["dead_letters"] == 0  # DlqDepthAlarm
    # and the listener's alarm, in the trading configuration, stays quiet while it lives
    heartbeat = template_alarms(TEMPLATE, {"ListenerDesiredCount": "1"})[
        "ListenerHeartbeatMissingAlarm"
    ]
    start, end = _replay_span(report)
    assert evaluate(heartbeat, _listener_alive(start, end), start, end) == []
    assert sorted(report["alarms"]["not_evaluated"]) == [
        "DlqDepthAlarm",
        "ExecutionsFailedAlarm",
        "ListenerHeartbeatMissingAlarm",
    ]


def test_given_the_ai_budget_spent_then_its_alarm_fires_and_only_it(
    days: dict[str, dict[str, Any]],
) -> None:
    report = days["budget_spent"]
    assert list(report["alarms"]["fired"]) == ["AiBudgetSpentAlarm"]
    assert report["executions"]["failed"] == []


def test_given_binance_refuses_the_region_then_its_alarm_fires(
    days: dict[str, dict[str, Any]],
) -> None:
    report = days["restricted"]
    assert list(report["alarms"]["fired"]) == ["RestrictedLocationAlarm"]
    # the cycle stopped in NeedsAttention: ExecutionsFailedAlarm counts it as well
    assert report["executions"]["failed"] == ["c000001: FAILED CycleNeedsAttention"]


def test_given_a_circuit_breaker_holding_then_its_alarm_fires_and_nothing_is_bought(
    days: dict[str, dict[str, Any]],
) -> None:
    report = days["breaker"]
    assert list(report["alarms"]["fired"]) == ["CircuitBreakerAlarm"]
    assert report["orders_placed"] == 0
    assert report["decisions_by_source"] == {"circuit-breaker": report["consultations"]}
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert failed == {}


def _replay_span(report: dict[str, Any]) -> tuple[int, int]:
    from datetime import datetime

    def ms(text: str) -> int:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)

    return ms(report["period"]["from"]), ms(report["period"]["to"])
