"""OnOrderUpdateFunction: record each OrderUpdated fill once and resume the waiting cycle.

Imports neither python-binance nor openai: this function runs on every fill. It parses
the EventBridge envelope with Powertools' ``EventBridgeModel`` alone: the ``envelopes``
package would load every envelope model (API Gateway, SQS, Kafka...), ~200 ms more.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from flipbot.app.fills import apply_order_update
from flipbot.composition import container
from flipbot.domain.errors import InvalidEvent
from flipbot.events import OrderUpdated
from flipbot.observability import ScrubbingFormatter

logger = Logger(logger_formatter=ScrubbingFormatter())


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        update = OrderUpdated.model_validate(EventBridgeModel.model_validate(event).detail)
    except ValidationError as exc:
        raise InvalidEvent(f"OrderUpdated detail rejected: {exc.errors()}") from None
    services = container()
    logger.append_keys(client_order_id=update.client_order_id)
    result = apply_order_update(
        update,
        services.repos,
        services.workflow,
        services.clock.now_ms(),
        follow_manual=lambda order, fills: _follow_manual_buy(services, order, fills),
    )
    logger.info("order update applied", extra=result)
    return result


def _follow_manual_buy(services: Any, order: Any, fills: Any) -> dict[str, Any]:
    # Imported here: only a filled MANUAL BUY needs the exchange client.
    from flipbot.app.manual import follow_manual_buy

    return follow_manual_buy(services, order, fills)
