"""``flipbot cost``: the modelled monthly bill of a deployment, AWS and AI, as a table.

The model reads what it can from ``template.yaml`` (the listener task's size and CPU
architecture, Container Insights, the functions' memory, the price-tick throttle, the
reconcile schedule, alarms, dashboards, secrets, the AI model) and takes the rest as
assumptions with defaults, each a command-line option: cycles per day, consultations per
cycle, order updates per cycle, price moves per day, function durations, token counts.

Two columns: list prices, and after the AWS always-free tier (Lambda 1M requests and
400,000 GB-s, Step Functions 4,000 transitions, CloudWatch 10 metrics, 10 alarms,
3 dashboards, 5 GB of logs and 1M API requests, X-Ray 100,000 traces, DynamoDB 25 GB),
which applies only while no other workload of the account uses it up.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flipbot_dev.commands._template import add_template_argument, checked_template

HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30.42

#: List prices in USD. Source: the public AWS pricing pages of each service
#: (aws.amazon.com/<service>/pricing) and OpenAI's API pricing page, compiled 2026-11-22.
#: Prices move: check them before relying on the figures, and add a region by copying
#: ``us-east-1`` with that region's prices.
PRICES: dict[str, dict[str, float]] = {
    "us-east-1": {
        "fargate_vcpu_hour_arm64": 0.03238,
        "fargate_gb_hour_arm64": 0.00356,
        "fargate_vcpu_hour_x86_64": 0.04048,
        "fargate_gb_hour_x86_64": 0.004445,
        "public_ipv4_hour": 0.005,
        "eventbridge_custom_event": 1.00 / 1e6,
        "lambda_request": 0.20 / 1e6,
        "lambda_gb_second_arm64": 0.0000133334,
        "lambda_gb_second_x86_64": 0.0000166667,
        "sfn_standard_transition": 0.025 / 1000,
        "dynamodb_write_unit": 0.625 / 1e6,
        "dynamodb_read_unit": 0.125 / 1e6,
        "dynamodb_gb_month": 0.25,
        "dynamodb_pitr_gb_month": 0.20,
        "logs_ingested_gb": 0.50,
        "logs_stored_gb_month": 0.03,
        "metric_month": 0.30,
        "metric_api_request": 0.01 / 1000,
        "alarm_month": 0.10,
        "dashboard_month": 3.00,
        "secret_month": 0.40,
        "secret_api_call": 0.05 / 10_000,
        "xray_trace": 5.00 / 1e6,
        "ecr_gb_month": 0.10,
    }
}

FREE_TIER = {
    "lambda_requests": 1_000_000,
    "lambda_gb_seconds": 400_000,
    "sfn_transitions": 4_000,
    "metrics": 10,
    "alarms": 10,
    "dashboards": 3,
    "logs_gb": 5.0,
    "metric_api_requests": 1_000_000,
    "xray_traces": 100_000,
    "dynamodb_gb": 25.0,
}

#: Metrics Container Insights (ECS, classic) publishes for one cluster, one service and
#: one task family (per-cluster, per-service and per-task-family CPU, memory, network,
#: storage and task counts): an estimate, each billed as a custom metric.
CONTAINER_INSIGHTS_METRICS = 30


@dataclass
class Assumptions:
    """What the model cannot read from the template; every field is a CLI option."""

    cycles_per_day: float = 100  # of each symbol
    #: symbols the stack trades (SYMBOLS): each its own cycles, price ticks and snapshot;
    #: one listener, one reconcile schedule, the alarms and dashboard for all
    symbols: int = 1
    buy_consults_per_cycle: float = 2.0  # the first answer is often WAIT
    sell_consults_per_cycle: float = 1.0
    buy_timeouts_per_cycle: float = 0.2  # buys canceled after BuyOrderTimeoutSeconds
    order_updates_per_cycle: float = 6.0  # NEW + fills of both legs (OrderUpdated events)
    order_fills_per_cycle: float = 2.0  # OrderFilled events
    price_moves_per_day: float = 1500  # PriceTickBps moves published beyond the heartbeat
    snapshot_seconds: float = 10  # the listener writes MarketTable at most this often
    snapshot_kb: float = 2.0
    stream_gaps_per_day: float = 2
    cold_start_share: float = 0.5  # low traffic: sandboxes are often reclaimed
    init_ms: float = 1500  # billed INIT phase of a cold start
    duration_ms: dict[str, float] = field(
        default_factory=lambda: {
            "consult_ai": 2500,
            "place_order": 400,
            "cancel_order": 400,
            "on_order_update": 150,
            "record_trade": 300,
            "reconcile": 800,
        }
    )
    writes_per_cycle: float = 40  # DynamoDB write units: cycle, orders, fills, audit
    reads_per_cycle: float = 60
    reads_per_reconcile: float = 50
    reads_per_reconcile_symbol: float = 2  # each further symbol's open-orders query
    stored_gb: float = 0.1
    lambda_log_kb_per_invocation: float = 2.0  # START/END/REPORT, JSON lines, EMF
    listener_log_mb_per_day: float = 2.0
    listener_metric_puts_per_minute: float = 1.0
    image_gb: float = 0.15
    ai: bool = True
    tokens_in: int = 1500
    tokens_out: int = 250


@dataclass(frozen=True)
class Deployment:
    """What the template says about the bill's drivers."""

    region: str = "us-east-1"
    task_vcpu: float = 0.25
    task_gb: float = 0.5
    task_arch: str = "arm64"
    public_ip: bool = True
    container_insights: bool = False
    tracing: bool = False  # X-Ray on the functions or the state machine
    function_memory_mb: dict[str, float] = field(default_factory=dict)
    function_arch: str = "arm64"
    price_tick_seconds: float = 60
    reconcile_minutes: float = 15
    alarms: int = 5
    dashboards: int = 1
    secrets: int = 2
    ai_model: str = "gpt-4o-mini"


@dataclass(frozen=True)
class Line:
    service: str
    usage: str
    usd: float
    usd_free_tier: float


def deployment_from_template(path: Path, region: str = "us-east-1") -> Deployment:
    """Read the bill's drivers from a SAM template (its parameter defaults)."""
    from flipbot_dev.twin.template import load_template, resolve

    template = load_template(path)
    resources = template.resources
    params = template.parameters

    def of_type(kind: str) -> dict[str, Any]:
        return {k: v for k, v in resources.items() if v.get("Type") == kind}

    def first_properties(kind: str) -> dict[str, Any]:
        """The Properties of the template's first resource of ``kind`` ({} when none)."""
        for resource in of_type(kind).values():
            properties: dict[str, Any] = resource.get("Properties", {})
            return properties
        return {}

    task = first_properties("AWS::ECS::TaskDefinition")
    platform = task.get("RuntimePlatform") or {}
    cluster = first_properties("AWS::ECS::Cluster")
    insights = any(
        s.get("Name") == "containerInsights"
        and str(s.get("Value")).lower() in ("enabled", "enhanced")
        for s in cluster.get("ClusterSettings") or []
    )
    service = first_properties("AWS::ECS::Service")
    vpc = (service.get("NetworkConfiguration") or {}).get("AwsvpcConfiguration") or {}
    memory = {}
    for logical_id, fn in of_type("AWS::Serverless::Function").items():
        props = fn.get("Properties") or {}
        memory[_snake(logical_id)] = float(props.get("MemorySize") or _global_memory(path))
    schedule = str(params.get("ReconcileSchedule", "rate(15 minutes)"))
    return Deployment(
        region=region,
        task_vcpu=float(task.get("Cpu", 256)) / 1024,
        task_gb=float(task.get("Memory", 512)) / 1024,
        task_arch="arm64"
        if str(platform.get("CpuArchitecture", "")).upper() == "ARM64"
        else "x86_64",
        public_ip=str(vpc.get("AssignPublicIp", "DISABLED")).upper() == "ENABLED",
        container_insights=insights,
        tracing=_traced(
            path, of_type("AWS::Serverless::Function"), of_type("AWS::Serverless::StateMachine")
        ),
        function_memory_mb=memory,
        price_tick_seconds=float(params.get("PriceTickSeconds", 60)),
        reconcile_minutes=_rate_minutes(resolve(schedule, params, {})),
        alarms=len(of_type("AWS::CloudWatch::Alarm")),
        dashboards=len(of_type("AWS::CloudWatch::Dashboard")),
        secrets=len(of_type("AWS::SecretsManager::Secret")),
        ai_model=str(params.get("AiModel", "gpt-4o-mini")),
    )


def _snake(logical_id: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()


def _global_memory(path: Path) -> float:
    from cfnlint.decode import cfn_yaml

    doc = cfn_yaml.load(str(path))
    return float(((doc.get("Globals") or {}).get("Function") or {}).get("MemorySize", 128))


def _traced(path: Path, functions: dict[str, Any], machines: dict[str, Any]) -> bool:
    """Whether X-Ray records traces: ``Tracing: Active`` on a function (its own or the
    Globals'), or ``Tracing.Enabled`` on a state machine."""
    from cfnlint.decode import cfn_yaml

    doc = cfn_yaml.load(str(path))
    default = ((doc.get("Globals") or {}).get("Function") or {}).get("Tracing")
    if any(
        str((fn.get("Properties") or {}).get("Tracing", default)) == "Active"
        for fn in functions.values()
    ):
        return True
    return any(
        bool(((m.get("Properties") or {}).get("Tracing") or {}).get("Enabled"))
        for m in machines.values()
    )


def _rate_minutes(expression: str) -> float:
    inner = expression.strip()
    if not inner.startswith("rate("):
        return 15.0  # cron schedules: assume the default cadence
    value, unit = inner[5:-1].split()
    return (
        float(value)
        * {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}[unit]
    )


def _free(amount: float, allowance: float) -> float:
    return max(0.0, amount - allowance)


def model(deployment: Deployment, a: Assumptions) -> list[Line]:
    """The monthly bill, one line per service."""
    try:
        p = PRICES[deployment.region]
    except KeyError:
        raise ValueError(
            f"no price table for {deployment.region}; known: {', '.join(sorted(PRICES))}"
        ) from None
    if a.symbols < 1:
        raise ValueError(f"symbols must be at least 1, got {a.symbols}")
    cycles = a.cycles_per_day * a.symbols * DAYS_PER_MONTH
    lines: list[Line] = []

    def add(service: str, usage: str, usd: float, usd_free: float | None = None) -> None:
        lines.append(Line(service, usage, usd, usd if usd_free is None else usd_free))

    # Fargate listener, always on; its public IPv4 address (egress without a NAT gateway)
    arch = deployment.task_arch
    task_hour = (
        deployment.task_vcpu * p[f"fargate_vcpu_hour_{arch}"]
        + deployment.task_gb * p[f"fargate_gb_hour_{arch}"]
    )
    add(
        "Fargate listener",
        f"{HOURS_PER_MONTH} h x {deployment.task_vcpu:g} vCPU, {deployment.task_gb:g} GB {arch}",
        HOURS_PER_MONTH * task_hour,
    )
    if deployment.public_ip:
        add("Public IPv4 (task)", f"{HOURS_PER_MONTH} h", HOURS_PER_MONTH * p["public_ipv4_hour"])
    add("ECR image", f"{a.image_gb:g} GB", a.image_gb * p["ecr_gb_month"])

    # EventBridge custom events: throttled PriceTicked, order updates, fills, gaps
    ticks = (
        (86_400 / deployment.price_tick_seconds + a.price_moves_per_day)
        * a.symbols
        * DAYS_PER_MONTH
    )
    orders = cycles * (a.order_updates_per_cycle + a.order_fills_per_cycle)
    events = ticks + orders + a.stream_gaps_per_day * DAYS_PER_MONTH
    add(
        "EventBridge",
        f"{events:,.0f} custom events ({ticks:,.0f} price ticks)",
        events * p["eventbridge_custom_event"],
    )

    # Lambda: invocations per function, GB-s with the billed INIT of cold starts
    reconciles = (1440 / deployment.reconcile_minutes + a.stream_gaps_per_day) * DAYS_PER_MONTH
    invocations = {
        "consult_ai": cycles * (a.buy_consults_per_cycle + a.sell_consults_per_cycle),
        "place_order": cycles * (2 + a.buy_timeouts_per_cycle),
        "cancel_order": cycles * a.buy_timeouts_per_cycle,
        "on_order_update": cycles * a.order_updates_per_cycle,
        "record_trade": cycles,
        "reconcile": reconciles,
    }
    durations = dict(a.duration_ms)
    if not a.ai:  # no model to wait for
        durations["consult_ai"] = min(durations["consult_ai"], 400)
    requests = sum(invocations.values())
    gb_seconds = sum(
        count
        * deployment.function_memory_mb.get(name, 512)
        / 1024
        * (durations.get(name, 300) + a.cold_start_share * a.init_ms)
        / 1000
        for name, count in invocations.items()
    )
    lam = p[f"lambda_gb_second_{deployment.function_arch}"]
    add(
        "Lambda",
        f"{requests:,.0f} invocations, {gb_seconds:,.0f} GB-s",
        requests * p["lambda_request"] + gb_seconds * lam,
        _free(requests, FREE_TIER["lambda_requests"]) * p["lambda_request"]
        + _free(gb_seconds, FREE_TIER["lambda_gb_seconds"]) * lam,
    )

    # Step Functions Standard: transitions of one cycle (statemachine/trade_cycle.asl.json)
    b, s, t = a.buy_consults_per_cycle, a.sell_consults_per_cycle, a.buy_timeouts_per_cycle
    waits = max(0.0, b - 1 - t) + max(0.0, s - 1)
    per_cycle = 2 * (b + s) + waits + (2 + t) + 3 * t + 3
    transitions = cycles * per_cycle
    add(
        "Step Functions",
        f"{transitions:,.0f} transitions ({per_cycle:.1f} a cycle)",
        transitions * p["sfn_standard_transition"],
        _free(transitions, FREE_TIER["sfn_transitions"]) * p["sfn_standard_transition"],
    )

    # DynamoDB on demand: the cycle's items, the listener's snapshot, reconcile reads
    snapshot_writes = (
        86_400 / a.snapshot_seconds * DAYS_PER_MONTH * max(1.0, a.snapshot_kb) * a.symbols
    )
    writes = cycles * a.writes_per_cycle + snapshot_writes
    per_reconcile = a.reads_per_reconcile + (a.symbols - 1) * a.reads_per_reconcile_symbol
    reads = cycles * a.reads_per_cycle + reconciles * per_reconcile
    storage = a.stored_gb * (p["dynamodb_gb_month"] + p["dynamodb_pitr_gb_month"])
    requests_usd = writes * p["dynamodb_write_unit"] + reads * p["dynamodb_read_unit"]
    add(
        "DynamoDB",
        f"{writes:,.0f} WRU, {reads:,.0f} RRU, {a.stored_gb:g} GB + PITR",
        requests_usd + storage,
        requests_usd
        + _free(a.stored_gb, FREE_TIER["dynamodb_gb"]) * p["dynamodb_gb_month"]
        + a.stored_gb * p["dynamodb_pitr_gb_month"],
    )

    # CloudWatch: logs, custom metrics (EMF and the listener's), alarms, dashboard
    logs_gb = (
        requests * a.lambda_log_kb_per_invocation / 2**20
        + a.listener_log_mb_per_day * DAYS_PER_MONTH / 1024
    )
    if deployment.container_insights:
        logs_gb += 2 * 1440 * DAYS_PER_MONTH / 2**20  # task + container events a minute, ~1 KB
    stored_gb = logs_gb * 0.2  # 30-day retention, billed compressed
    logs_usd = logs_gb * p["logs_ingested_gb"] + stored_gb * p["logs_stored_gb_month"]
    add(
        "CloudWatch Logs",
        f"{logs_gb:.2f} GB ingested",
        logs_usd,
        _free(logs_gb + stored_gb, FREE_TIER["logs_gb"]) * p["logs_ingested_gb"],
    )
    # every hour: heartbeat, lag, reconcile repairs, cycles, P&L, buy and sell fill time,
    # AI confidence and cost; some hours: reconnects, guard rejections, AI budget spent,
    # stop-loss checks and exits
    metrics = 9 + 5 * 0.1 + (CONTAINER_INSIGHTS_METRICS if deployment.container_insights else 0)
    puts = a.listener_metric_puts_per_minute * 1440 * DAYS_PER_MONTH
    add(
        "CloudWatch metrics",
        f"{metrics:.1f} custom metrics"
        + (" (Container Insights on)" if deployment.container_insights else "")
        + f", {puts:,.0f} PutMetricData",
        metrics * p["metric_month"] + puts * p["metric_api_request"],
        _free(metrics, FREE_TIER["metrics"]) * p["metric_month"]
        + _free(puts, FREE_TIER["metric_api_requests"]) * p["metric_api_request"],
    )
    add(
        "CloudWatch alarms",
        f"{deployment.alarms} alarms",
        deployment.alarms * p["alarm_month"],
        _free(deployment.alarms, FREE_TIER["alarms"]) * p["alarm_month"],
    )
    add(
        "CloudWatch dashboard",
        f"{deployment.dashboards} dashboard(s)",
        deployment.dashboards * p["dashboard_month"],
        _free(deployment.dashboards, FREE_TIER["dashboards"]) * p["dashboard_month"],
    )
    if deployment.tracing:
        traces = requests + cycles
        add(
            "X-Ray",
            f"{traces:,.0f} traces",
            traces * p["xray_trace"],
            _free(traces, FREE_TIER["xray_traces"]) * p["xray_trace"],
        )

    # Secrets Manager: the secrets, and reads on cold starts (cached 5 minutes when warm)
    secret_calls = requests * a.cold_start_share
    add(
        "Secrets Manager",
        f"{deployment.secrets} secrets, {secret_calls:,.0f} reads",
        deployment.secrets * p["secret_month"] + secret_calls * p["secret_api_call"],
    )
    return lines


def ai_line(deployment: Deployment, a: Assumptions) -> Line:
    """The AI's monthly cost: every consultation, at the model's list price."""
    from flipbot.ai.cost import PriceTable

    consults = (
        a.cycles_per_day
        * a.symbols
        * DAYS_PER_MONTH
        * (a.buy_consults_per_cycle + a.sell_consults_per_cycle)
    )
    if not a.ai:
        return Line("AI (offline strategy)", f"{consults:,.0f} consultations", 0.0, 0.0)
    each = float(PriceTable().cost(deployment.ai_model, a.tokens_in, a.tokens_out))
    return Line(
        f"AI ({deployment.ai_model})",
        f"{consults:,.0f} consultations x {a.tokens_in:,} in / {a.tokens_out:,} out",
        consults * each,
        consults * each,
    )


def totals(lines: list[Line]) -> tuple[float, float]:
    return sum(x.usd for x in lines), sum(x.usd_free_tier for x in lines)


def format_table(deployment: Deployment, a: Assumptions, lines: list[Line], ai: Line) -> str:
    width = max(len(x.usage) for x in [*lines, ai])
    head = f"{'service':<22}{'usage a month':<{width + 2}}{'list USD':>10}{'free tier':>11}"
    rows = [head, "-" * len(head)]
    rows += [
        f"{x.service:<22}{x.usage:<{width + 2}}{x.usd:>10.2f}{x.usd_free_tier:>11.2f}"
        for x in lines
    ]
    aws, aws_free = totals(lines)
    rows.append("-" * len(head))
    rows.append(f"{'AWS before AI':<22}{'':<{width + 2}}{aws:>10.2f}{aws_free:>11.2f}")
    rows.append(f"{ai.service:<22}{ai.usage:<{width + 2}}{ai.usd:>10.2f}{ai.usd_free_tier:>11.2f}")
    rows.append(
        f"{'Total':<22}{'':<{width + 2}}{aws + ai.usd:>10.2f}{aws_free + ai.usd_free_tier:>11.2f}"
    )
    if a.symbols > 1:
        n = a.symbols
        rows.append(
            f"{'Per symbol':<22}{'':<{width + 2}}{(aws + ai.usd) / n:>10.2f}"
            f"{(aws_free + ai.usd_free_tier) / n:>11.2f}"
        )
    symbols = f"{a.symbols} symbols x " if a.symbols > 1 else ""
    title = (
        f"flipbot cost: modelled monthly bill, {deployment.region} list prices "
        f"(compiled 2026-11-22), {symbols}{a.cycles_per_day:g} cycles/day, "
        f"PriceTicked every {deployment.price_tick_seconds:g} s + "
        f"{a.price_moves_per_day:g} moves/day"
    )
    return "\n".join([title, "", *rows])


def register(sub: Any) -> None:
    cost = sub.add_parser(
        "cost",
        help="the modelled monthly AWS bill (and AI) of a deployment, as a table",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    defaults = Assumptions()
    add_template_argument(cost)
    cost.add_argument("--region", default="us-east-1", help=f"price table: {', '.join(PRICES)}")
    cost.add_argument(
        "--cycles-per-day",
        type=float,
        default=defaults.cycles_per_day,
        help="cycles a day of each symbol",
    )
    cost.add_argument(
        "--symbols",
        type=int,
        default=defaults.symbols,
        help="symbols the stack trades (SYMBOLS); the table adds the bill per symbol",
    )
    cost.add_argument(
        "--buy-consults",
        type=float,
        default=defaults.buy_consults_per_cycle,
        help="buy consultations a cycle (WAIT answers ask again)",
    )
    cost.add_argument("--sell-consults", type=float, default=defaults.sell_consults_per_cycle)
    cost.add_argument(
        "--order-updates",
        type=float,
        default=defaults.order_updates_per_cycle,
        help="OrderUpdated events a cycle",
    )
    cost.add_argument(
        "--price-tick-seconds",
        type=float,
        default=None,
        help="PriceTicked heartbeat (default: the template's PriceTickSeconds)",
    )
    cost.add_argument(
        "--price-moves-per-day",
        type=float,
        default=defaults.price_moves_per_day,
        help="PriceTicked published on a PriceTickBps move, beyond the heartbeat",
    )
    cost.add_argument("--ai-model", default=None, help="default: the template's AiModel")
    cost.add_argument("--tokens-in", type=int, default=defaults.tokens_in)
    cost.add_argument("--tokens-out", type=int, default=defaults.tokens_out)
    cost.add_argument(
        "--offline", action="store_true", help="the offline strategy decides: no AI cost"
    )
    cost.add_argument("--json", action="store_true", help="machine-readable output")
    cost.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = checked_template(args.template, "cost")
    if path is None:
        return 2
    deployment = deployment_from_template(path, args.region)
    overrides: dict[str, Any] = {}
    if args.price_tick_seconds:
        overrides["price_tick_seconds"] = args.price_tick_seconds
    if args.ai_model:
        overrides["ai_model"] = args.ai_model
    if overrides:
        deployment = Deployment(**{**asdict(deployment), **overrides})
    a = Assumptions(
        cycles_per_day=args.cycles_per_day,
        symbols=args.symbols,
        buy_consults_per_cycle=args.buy_consults,
        sell_consults_per_cycle=args.sell_consults,
        order_updates_per_cycle=args.order_updates,
        price_moves_per_day=args.price_moves_per_day,
        tokens_in=args.tokens_in,
        tokens_out=args.tokens_out,
        ai=not args.offline,
    )
    try:
        lines = model(deployment, a)
    except ValueError as exc:
        print(f"flipbot cost: {exc}", file=sys.stderr)
        return 2
    ai = ai_line(deployment, a)
    if args.json:
        aws, aws_free = totals(lines)
        print(
            json.dumps(
                {
                    "deployment": asdict(deployment),
                    "assumptions": asdict(a),
                    "lines": [asdict(x) for x in lines],
                    "ai": asdict(ai),
                    "aws_usd": round(aws, 2),
                    "aws_usd_free_tier": round(aws_free, 2),
                    "total_usd": round(aws + ai.usd, 2),
                    "per_symbol_usd": round((aws + ai.usd) / a.symbols, 2),
                },
                indent=2,
            )
        )
    else:
        print(format_table(deployment, a, lines, ai))
    return 0
