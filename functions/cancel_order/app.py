"""CancelOrderFunction: cancel a leg's order after its timeout and report what it filled."""

from typing import Any

from aws_lambda_powertools import Logger

from flipbot.app.contracts import CancelOrderRequest, CancelResult
from flipbot.app.orders import cancel_order
from flipbot.composition import container
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import CancelOrderSettings, check_at_init

check_at_init(CancelOrderSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())


@logger.inject_lambda_context(correlation_id_path="cycle_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = CancelOrderRequest.parse(event)
    result = CancelResult.model_validate(
        cancel_order(
            container(context).for_cycle(request.cycle_id),
            cycle_id=request.cycle_id,
            leg=request.leg,
            attempt=request.attempt,
        )
    ).dump()
    logger.info("order canceled", extra=result)
    return result
