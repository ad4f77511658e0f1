"""ReconcileFunction: on a schedule, after a stream gap, and when a cycle step fails.

``{"source": "recover"}`` (invoked by hand, e.g. after a first deploy onto an account with
history) rebuilds the records from the exchange alone and resumes each symbol's cycle;
``{"source": "recover", "symbol": "BTCUSDC"}`` does so for one symbol.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from flipbot.app.contracts import CycleReconcileRequest, ReconcileCycleResult
from flipbot.app.reconcile import reconcile_cycle, reconcile_on_schedule
from flipbot.composition import container
from flipbot.domain.errors import RestrictedLocation
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import ReconcileSettings, check_at_init

check_at_init(ReconcileSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        result = _reconcile(event, context)
    except RestrictedLocation:
        # Binance refuses this region: the RestrictedLocation alarm watches this metric.
        metrics.add_metric("RestrictedLocation", MetricUnit.Count, 1)
        raise
    if result.get("configuration_error") == RestrictedLocation.__name__:
        metrics.add_metric("RestrictedLocation", MetricUnit.Count, 1)
    if event.get("source") != "recover":
        # Drift: fills the order-update path missed (the ReconcileDrift alarm). What a
        # recovery someone asked for rebuilds is in its answer, not an incident.
        metrics.add_metric("ReconcileRepairs", MetricUnit.Count, result["repaired_fills"])
        # Cycles stopped with a reason (the CycleHalted alarm): none runs, none trades.
        metrics.add_metric("CycleHalted", MetricUnit.Count, len(result.get("halted", [])))
    logger.info("reconciled", extra=result)
    return result


def _reconcile(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("source") == "recover":
        from flipbot.app.recovery import recover_symbols

        return recover_symbols(container(context), str(event.get("symbol") or ""))
    if event.get("source") == "cycle":
        request = CycleReconcileRequest.parse(event)
        return ReconcileCycleResult.model_validate(
            reconcile_cycle(
                container(context).for_cycle(request.cycle_id),
                cycle_id=request.cycle_id,
                error=request.error,
            )
        ).dump()
    # the schedule ("aws.events") or a StreamGapDetected event
    return reconcile_on_schedule(container(context))
