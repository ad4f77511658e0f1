"""PlaceOrderFunction: store the order and its task token, then place the limit order once."""

from typing import Any

from aws_lambda_powertools import Logger

from flipbot.app.contracts import PlaceOrderRequest, PlaceOrderResult
from flipbot.app.orders import place_order
from flipbot.composition import container
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import PlaceOrderSettings, check_at_init

check_at_init(PlaceOrderSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())


@logger.inject_lambda_context(correlation_id_path="cycle_id")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = PlaceOrderRequest.parse(event)
    result = PlaceOrderResult.model_validate(
        place_order(
            container(context).for_cycle(request.cycle_id),
            cycle_id=request.cycle_id,
            leg=request.leg,
            attempt=request.attempt,
            price=request.price,
            quantity=request.quantity,
            task_token=request.task_token,
            consultation_id=request.consultation_id,
        )
    ).dump()
    logger.info("order placed", extra=result)
    return result
