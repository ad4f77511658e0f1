"""ConsultAiFunction: ask the decision maker for a leg's price; guards decide what is placed.

``purpose: check`` asks instead whether the resting sell stays (``KEEP``) or is replaced
(``REPLACE``, when the stop-loss has fired); the decision maker is not consulted then.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from flipbot.app.consult import check_resting_sell, consult
from flipbot.app.contracts import ConsultRequest, ConsultResult, SellCheckResult
from flipbot.composition import container
from flipbot.domain.breakers import Breaker
from flipbot.domain.errors import InvalidEvent
from flipbot.domain.model import Side
from flipbot.domain.stop_loss import STOP_LOSS_DECIDER
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import ConsultAiSettings, check_at_init

check_at_init(ConsultAiSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="cycle_id")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ConsultRequest.parse(event)
    if request.purpose == "check":
        if request.leg is not Side.SELL:
            raise InvalidEvent(
                f"ConsultRequest: purpose='check' is for the SELL leg, not {request.leg}"
            )
        checked = SellCheckResult.model_validate(
            check_resting_sell(
                container(context).for_cycle(request.cycle_id),
                request.cycle_id,
                request.attempt,
                request.reprice_seconds,
            )
        ).dump()
        metrics.add_metric("SellChecks", MetricUnit.Count, 1)
        logger.info("resting sell checked", extra=checked)
        return checked
    result = ConsultResult.model_validate(
        consult(
            container(context).for_cycle(request.cycle_id),
            request.cycle_id,
            request.leg,
            request.attempt,
            reprices=request.reprices,
        )
    )
    metrics.add_metric("AiConfidence", MetricUnit.Count, result.confidence)
    if result.decided_by == STOP_LOSS_DECIDER:
        metrics.add_metric("StopLossExits", MetricUnit.Count, 1)
    if result.guard:
        metrics.add_metric("GuardRejections", MetricUnit.Count, 1)
    if result.cost_usd is not None:
        metrics.add_metric("AiCostUsd", MetricUnit.Count, float(result.cost_usd))
    if result.breaker == Breaker.STOP_LOSS_COOLDOWN:
        # the pause that follows a stop-loss exit: expected, so not an alarm
        metrics.add_metric("BuyPausedAfterStopLoss", MetricUnit.Count, 1)
    elif result.breaker:
        # A circuit breaker paused buying: the CircuitBreaker alarm watches this metric.
        metrics.add_metric("CircuitBreakerTripped", MetricUnit.Count, 1)
    if result.ai_budget_spent:
        # The daily AI budget is spent: the AiBudgetSpent alarm watches this metric.
        metrics.add_metric("AiBudgetExceeded", MetricUnit.Count, 1)
    logger.info(
        "consulted",
        extra={
            "leg": request.leg,
            "action": result.action,
            "reason": result.reason,
            "decided_by": result.decided_by or "",
        },
    )
    return result.dump()
