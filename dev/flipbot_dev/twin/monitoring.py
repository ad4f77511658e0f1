"""What CloudWatch would make of a replay: the metrics emitted, the alarms, the dashboard.

* **Metrics.** The functions print Embedded Metric Format documents to stdout, which
  Lambda's log stream turns into metrics; :func:`emf_samples` reads them back as
  CloudWatch extracts them: one metric per namespace, name and dimension set, each value
  a sample. The listener calls ``PutMetricData`` itself; :func:`put_metric_samples`
  reads its ``MetricData`` the same way (``Values``/``Counts`` histograms included).
* **Alarms.** :func:`template_alarms` reads every ``AWS::CloudWatch::Alarm`` of the
  template with its intrinsics resolved for a deployment's parameters, so that a
  ``TreatMissingData`` behind ``Fn::If`` follows the parameter. :func:`evaluate` applies
  CloudWatch's rule in virtual time: per period the statistic of its samples; the alarm
  goes into ALARM when ``DatapointsToAlarm`` of the last ``EvaluationPeriods`` periods
  breach. A period without a sample breaches under ``breaching``, does not under
  ``notBreaching``, and is left out under ``missing`` and ``ignore`` (CloudWatch then
  looks at the periods that have data, or keeps the state: neither starts an alarm).
  Periods are aligned on multiples of the period, as CloudWatch aggregates them.
* **Dashboard.** :func:`dashboard_metrics` lists each metric a widget of the
  ``AWS::CloudWatch::Dashboard`` reads, and the alarms its alarm widgets show.

The namespaces AWS fills itself (``AWS/Lambda``, ``AWS/States``, ``AWS/SQS``...) are
not emitted by anything in a replay; :data:`AWS_NAMESPACE_PREFIX` tells them apart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flipbot_dev.twin.template import SamTemplate, TemplateError, resolve

AWS_NAMESPACE_PREFIX = "AWS/"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
DASHBOARD_TYPE = "AWS::CloudWatch::Dashboard"


@dataclass(frozen=True, order=True)
class MetricId:
    """One CloudWatch metric: namespace, name and its dimensions (sorted by name)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()

    @property
    def from_aws(self) -> bool:
        return self.namespace.startswith(AWS_NAMESPACE_PREFIX)

    def __str__(self) -> str:
        dims = ",".join(f"{k}={v}" for k, v in self.dimensions)
        return f"{self.namespace}/{self.name}" + (f"{{{dims}}}" if dims else "")


@dataclass(frozen=True)
class Sample:
    """A value of a metric at a (virtual) time; ``count`` > 1 for a histogram bucket."""

    time_ms: int
    metric: MetricId
    value: float
    count: float = 1.0


# --------------------------------------------------------------------------- metrics
def emf_samples(text: str, time_ms: int) -> list[Sample]:
    """The samples of every EMF document among ``text``'s lines, stamped ``time_ms``.

    A dimension set naming a key the document lacks is dropped, as CloudWatch drops it.
    """
    samples: list[Sample] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("_aws"), dict):
            continue
        for directive in doc["_aws"].get("CloudWatchMetrics") or []:
            namespace = str(directive.get("Namespace", ""))
            for names in directive.get("Dimensions") or [[]]:
                if any(name not in doc for name in names):
                    continue
                dims = tuple(sorted((str(n), str(doc[n])) for n in names))
                for definition in directive.get("Metrics") or []:
                    metric = MetricId(namespace, str(definition["Name"]), dims)
                    raw = doc.get(metric.name)
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, int | float):
                            samples.append(Sample(time_ms, metric, float(value)))
    return samples


def put_metric_samples(
    namespace: str, metric_data: Iterable[Mapping[str, Any]], time_ms: int
) -> list[Sample]:
    """The samples of one ``PutMetricData`` call (``Value``, or ``Values`` with ``Counts``)."""
    samples: list[Sample] = []
    for datum in metric_data:
        dims = tuple(sorted((str(d["Name"]), str(d["Value"])) for d in datum.get("Dimensions", [])))
        metric = MetricId(namespace, str(datum["MetricName"]), dims)
        if "Value" in datum:
            samples.append(Sample(time_ms, metric, float(datum["Value"])))
        values = list(datum.get("Values") or [])
        counts = list(datum.get("Counts") or [1.0] * len(values))
        samples.extend(
            Sample(time_ms, metric, float(v), float(c)) for v, c in zip(values, counts, strict=True)
        )
    return samples


def emitted(samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Each metric seen, with its sample count: what a report lists."""
    counts: dict[MetricId, float] = defaultdict(float)
    for sample in samples:
        counts[sample.metric] += sample.count
    return [
        {
            "namespace": m.namespace,
            "name": m.name,
            "dimensions": dict(m.dimensions),
            "samples": int(counts[m]),
        }
        for m in sorted(counts)
    ]


def metric_ids(listed: Iterable[Mapping[str, Any]]) -> set[MetricId]:
    """The metrics of an :func:`emitted` list."""
    return {
        MetricId(
            str(m["namespace"]),
            str(m["name"]),
            tuple(sorted((str(k), str(v)) for k, v in m["dimensions"].items())),
        )
        for m in listed
    }


# --------------------------------------------------------------------------- statistics
def statistic(name: str, samples: Sequence[Sample]) -> float:
    """A CloudWatch statistic of one period's samples (``Sum``, ``Average``, ``pNN``...)."""
    total = sum(s.count for s in samples)
    if name == "SampleCount":
        return total
    if name == "Sum":
        return sum(s.value * s.count for s in samples)
    if name == "Average":
        return sum(s.value * s.count for s in samples) / total
    if name == "Maximum":
        return max(s.value for s in samples)
    if name == "Minimum":
        return min(s.value for s in samples)
    if name.startswith("p"):
        rank = float(name[1:]) / 100 * total
        seen = 0.0
        for sample in sorted(samples, key=lambda s: s.value):
            seen += sample.count
            if seen >= rank:
                return sample.value
        return max(s.value for s in samples)
    raise ValueError(f"statistic {name!r} is not evaluated by the twin")


_COMPARISONS = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


# --------------------------------------------------------------------------- alarms
@dataclass(frozen=True)
class AlarmSpec:
    """A single-metric alarm of the template, its intrinsics resolved."""

    logical_id: str
    metric: MetricId
    statistic: str
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str

    def breaches(self, value: float) -> bool:
        return bool(_COMPARISONS[self.comparison](value, self.threshold))


class _Lenient(Mapping[Any, str]):
    """``Ref``/``Fn::GetAtt`` answers: the known ones, else a placeholder naming the
    reference (``Queue.QueueName``), enough for dimensions of metrics AWS fills itself."""

    def __init__(self, known: Mapping[Any, str]) -> None:
        self._known = known

    def __getitem__(self, key: Any) -> str:
        if key in self._known:
            return self._known[key]
        return ".".join(key) if isinstance(key, tuple) else str(key)

    def __contains__(self, key: object) -> bool:
        return key in self._known or not (isinstance(key, str) and key.startswith("AWS::"))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def _refs(template: SamTemplate, parameters: Mapping[str, str]) -> dict[str, str]:
    return {
        **template.parameters,
        **parameters,
        "AWS::StackName": "flipbot",
        "AWS::Region": "us-east-1",
        "AWS::AccountId": "123456789012",
    }


def template_alarms(
    template: SamTemplate,
    parameters: Mapping[str, str] | None = None,
    attrs: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, AlarmSpec]:
    """Every alarm of the template, resolved with ``parameters`` over the defaults.

    A metric math alarm (``Metrics``) is refused: the twin does not evaluate one.
    """
    refs = _Lenient(_refs(template, parameters or {}))
    known_attrs = _Lenient(attrs or {})

    def text(value: Any) -> str:
        return resolve(value, refs, known_attrs, template.conditions)

    alarms: dict[str, AlarmSpec] = {}
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != ALARM_TYPE:
            continue
        props = resource.get("Properties") or {}
        if "Metrics" in props:
            raise TemplateError(f"{logical_id}: metric math alarms are not evaluated by the twin")
        dims = tuple(
            sorted((text(d["Name"]), text(d["Value"])) for d in props.get("Dimensions") or [])
        )
        periods = int(text(props["EvaluationPeriods"]))
        alarms[logical_id] = AlarmSpec(
            logical_id=logical_id,
            metric=MetricId(text(props["Namespace"]), text(props["MetricName"]), dims),
            statistic=text(props.get("Statistic") or props.get("ExtendedStatistic")),
            period_s=int(text(props["Period"])),
            evaluation_periods=periods,
            datapoints_to_alarm=int(text(props.get("DatapointsToAlarm", periods))),
            threshold=float(text(props["Threshold"])),
            comparison=text(props["ComparisonOperator"]),
            treat_missing_data=text(props.get("TreatMissingData", "missing")),
        )
    return alarms


def evaluate(alarm: AlarmSpec, samples: Iterable[Sample], start_ms: int, end_ms: int) -> list[int]:
    """When (virtual ms) the alarm would go into ALARM, given the samples of its metric.

    Evaluated at the end of each whole period between ``start_ms`` and ``end_ms``; the
    periods before ``start_ms`` are not looked at (the stack did not run yet).
    """
    period_ms = alarm.period_s * 1000
    buckets: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        if sample.metric == alarm.metric and start_ms <= sample.time_ms < end_ms:
            buckets[sample.time_ms // period_ms].append(sample)
    missing_breaches = {"breaching": True, "notBreaching": False}.get(alarm.treat_missing_data)
    entered: list[int] = []
    in_alarm = False
    first = start_ms // period_ms
    for last in range(first, end_ms // period_ms):
        breaching = 0
        for bucket in range(max(first, last - alarm.evaluation_periods + 1), last + 1):
            found = buckets.get(bucket)
            if found:
                breaching += alarm.breaches(statistic(alarm.statistic, found))
            elif missing_breaches:
                breaching += 1
        now_in_alarm = breaching >= alarm.datapoints_to_alarm
        if now_in_alarm and not in_alarm:
            entered.append((last + 1) * period_ms)
        in_alarm = now_in_alarm
    return entered


# --------------------------------------------------------------------------- dashboard
@dataclass(frozen=True)
class DashboardReads:
    metrics: frozenset[MetricId]
    alarms: frozenset[str]  # logical ids of the alarms the alarm widgets show


def dashboard_metrics(
    template: SamTemplate, parameters: Mapping[str, str] | None = None
) -> DashboardReads:
    """The metrics every dashboard's metric widgets read, and the alarms they show."""
    refs = _Lenient(_refs(template, parameters or {}))
    metrics: set[MetricId] = set()
    alarms: set[str] = set()
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != DASHBOARD_TYPE:
            continue
        body = resolve(resource["Properties"]["DashboardBody"], refs, _Lenient({}))
        try:
            widgets = json.loads(body)["widgets"]
        except (ValueError, KeyError) as exc:
            raise TemplateError(f"{logical_id}: DashboardBody is not a dashboard: {exc}") from None
        for widget in widgets:
            props = widget.get("properties") or {}
            if widget.get("type") == "alarm":
                alarms.update(str(arn).removesuffix(".Arn") for arn in props.get("alarms", []))
            if widget.get("type") == "metric":
                for row in props.get("metrics", []):
                    metric = _widget_metric(logical_id, row)
                    if metric is not None:
                        metrics.add(metric)
    return DashboardReads(frozenset(metrics), frozenset(alarms))


def _widget_metric(dashboard: str, row: list[Any]) -> MetricId | None:
    """``[namespace, name, dim, value, ..., {options}]``; ``None`` for an expression row."""
    fields = [item for item in row if not isinstance(item, dict)]
    if not fields:
        return None
    if any(item in (".", "..") for item in fields) or len(fields) % 2:
        raise TemplateError(f"{dashboard}: metric row {row!r} is not spelled out in full")
    namespace, name, *pairs = (str(item) for item in fields)
    return MetricId(namespace, name, tuple(sorted(zip(pairs[::2], pairs[1::2], strict=True))))


# --------------------------------------------------------------------------- replay report
def alarms_report(
    template: SamTemplate,
    parameters: Mapping[str, str],
    samples: Sequence[Sample],
    start_ms: int,
    end_ms: int,
    *,
    not_in_replay: Iterable[str] = (),
) -> dict[str, Any]:
    """Which alarms a replay would have raised, and when; and which were not evaluated.

    Alarms on metrics AWS fills itself, or named in ``not_in_replay`` (the listener's:
    the replay runs a stand-in for it), are listed as not evaluated.
    """
    outside = set(not_in_replay)
    fired: dict[str, list[str]] = {}
    not_evaluated: list[str] = []
    for logical_id, alarm in sorted(template_alarms(template, parameters).items()):
        if alarm.metric.from_aws or alarm.metric.name in outside:
            not_evaluated.append(logical_id)
            continue
        times = evaluate(alarm, samples, start_ms, end_ms)
        if times:
            fired[logical_id] = [_iso(t) for t in times]
    return {"fired": fired, "not_evaluated": not_evaluated}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listener_metric_names() -> frozenset[str]:
    """The metrics the listener sends (it does not run in a replay), from its own code."""
    from flipbot.listener.metrics import CloudWatchMetrics

    data = CloudWatchMetrics(client=None).metric_data(heartbeat=1, reconnects=0, lag_ms={0: 1})
    return frozenset(str(datum["MetricName"]) for datum in data)
