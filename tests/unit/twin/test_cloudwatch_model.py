"""The twin's view of CloudWatch: metrics read back from logs and PutMetricData, and the
template's alarms evaluated on them in virtual time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flipbot.listener.metrics import CloudWatchMetrics
from flipbot_dev.twin.monitoring import (
    AlarmSpec,
    MetricId,
    Sample,
    emf_samples,
    evaluate,
    put_metric_samples,
    template_alarms,
)
from flipbot_dev.twin.template import load_template

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = load_template(ROOT / "template.yaml")
MINUTE = 60_000
T0 = 1_737_331_200_000  # a whole hour
SERVICE = (("service", "flipbot"),)


def test_emf_documents_become_one_sample_per_value_and_dimension_set() -> None:
    doc = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {
                    "Namespace": "flipbot",
                    "Dimensions": [["service"], ["service", "missing"]],
                    "Metrics": [{"Name": "A", "Unit": "Count"}, {"Name": "B", "Unit": "Seconds"}],
                }
            ],
        },
        "service": "flipbot",
        "A": [1.0, 2.0],
        "B": 2.5,
    }
    text = f'{{"level": "INFO", "message": "not a metric"}}\n{json.dumps(doc)}\nplain text\n'
    samples = emf_samples(text, T0)
    # the set naming an absent dimension is dropped, as CloudWatch drops it
    assert [(str(s.metric), s.value, s.time_ms) for s in samples] == [
        ("flipbot/A{service=flipbot}", 1.0, T0),
        ("flipbot/A{service=flipbot}", 2.0, T0),
        ("flipbot/B{service=flipbot}", 2.5, T0),
    ]


def test_the_listener_s_put_metric_data_is_read_with_its_histogram_counts() -> None:
    data = CloudWatchMetrics(client=None).metric_data(
        heartbeat=1, reconnects=0, lag_ms={5: 3, 40: 1}
    )
    samples = put_metric_samples("flipbot", data, T0)
    lag = [(s.value, s.count) for s in samples if s.metric.name == "ListenerLagMs"]
    assert lag == [(5.0, 3.0), (40.0, 1.0)]
    assert {s.metric for s in samples} == {
        MetricId("flipbot", name, SERVICE)
        for name in ("ListenerHeartbeat", "Reconnects", "ListenerBadMessages", "ListenerLagMs")
    }


def _alarm(**overrides: object) -> AlarmSpec:
    spec = {
        "logical_id": "Test",
        "metric": MetricId("flipbot", "Errors", SERVICE),
        "statistic": "Sum",
        "period_s": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "threshold": 0.0,
        "comparison": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }
    spec.update(overrides)
    return AlarmSpec(**spec)  # type: ignore[arg-type]


def _every_minute(name: str, values: list[float], start: int = T0) -> list[Sample]:
    metric = MetricId("flipbot", name, SERVICE)
    return [Sample(start + i * MINUTE + 1000, metric, v) for i, v in enumerate(values)]


def test_an_alarm_fires_when_m_of_the_last_n_periods_breach_and_only_on_entering_alarm() -> None:
    alarm = _alarm()
    one_breach = _every_minute("Errors", [0, 1, 0, 0, 0, 0])
    assert evaluate(alarm, one_breach, T0, T0 + 6 * MINUTE) == []
    # Given breaches in minutes 1 and 3 (two of the three periods ending with minute 3)
    two_breaches = _every_minute("Errors", [0, 1, 0, 1, 0, 0, 0, 0, 0])
    # Then it enters ALARM at the end of minute 3, once, and leaves when they age out
    assert evaluate(alarm, two_breaches, T0, T0 + 9 * MINUTE) == [T0 + 4 * MINUTE]


def test_missing_periods_follow_treat_missing_data() -> None:
    quiet: list[Sample] = []
    span = (T0, T0 + 10 * MINUTE)
    assert evaluate(_alarm(treat_missing_data="notBreaching"), quiet, *span) == []
    assert evaluate(_alarm(treat_missing_data="missing"), quiet, *span) == []
    assert evaluate(_alarm(treat_missing_data="breaching"), quiet, *span) == [T0 + 2 * MINUTE]


# --------------------------------------------------------------------------- the listener's alarm
def _heartbeat_alarm(desired_count: str) -> AlarmSpec:
    return template_alarms(TEMPLATE, {"ListenerDesiredCount": desired_count})[
        "ListenerHeartbeatMissingAlarm"
    ]


def _listener_minutes(heartbeats: list[int]) -> list[Sample]:
    """What the listener's own metric code sends once a minute, for each heartbeat value."""
    sink = CloudWatchMetrics(client=None)
    samples: list[Sample] = []
    for minute, heartbeat in enumerate(heartbeats):
        data = sink.metric_data(heartbeat=heartbeat, reconnects=0, lag_ms={12: 30})
        samples += put_metric_samples("flipbot", data, T0 + minute * MINUTE + 5000)
    return samples


HOURS = 2 * 60


@pytest.mark.parametrize(
    ("desired_count", "heartbeats", "fires"),
    [
        ("0", [], False),  # stopped on purpose: no data, nothing to say
        ("1", [1] * HOURS, False),  # running and connected
        ("1", [], True),  # should run, sends nothing: dead (or never started)
        ("1", [1] * 60, True),  # ran for an hour, then went silent
        ("1", [1] * 30 + [0] * 10 + [1] * 80, True),  # alive but disconnected for 10 min
        ("0", [0] * HOURS, True),  # a task runs although stopped on purpose, disconnected
    ],
    ids=["stopped", "healthy", "dead", "died", "disconnected", "stray-and-broken"],
)
def test_the_listener_alarm_tells_stopped_on_purpose_from_dead(
    desired_count: str, heartbeats: list[int], fires: bool
) -> None:
    # Given the stack's ListenerDesiredCount and what the listener sent each minute
    alarm = _heartbeat_alarm(desired_count)
    # When two hours are evaluated
    raised = evaluate(alarm, _listener_minutes(heartbeats), T0, T0 + HOURS * MINUTE)
    # Then the alarm fires only where a listener should run and is not alive
    assert bool(raised) is fires
