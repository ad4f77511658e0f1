"""OnOrderUpdateFunction: record each OrderUpdated fill once and resume the waiting cycle.

Imports neither python-binance nor openai: this function runs on every fill.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, envelopes, parse

from flipbot.app.fills import apply_order_update
from flipbot.composition import container
from flipbot.domain.errors import InvalidEvent
from flipbot.events import OrderUpdated

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        update = parse(event=event, model=OrderUpdated, envelope=envelopes.EventBridgeEnvelope)
    except ValidationError as exc:
        raise InvalidEvent(f"OrderUpdated detail rejected: {exc.errors()}") from None
    services = container()
    logger.append_keys(client_order_id=update.client_order_id)
    result = apply_order_update(update, services.repos, services.workflow, services.clock.now_ms())
    logger.info("order update applied", extra=result)
    return result
