"""OnOrderUpdateFunction: record each OrderUpdated fill once and resume the waiting cycle.

Imports neither python-binance nor openai: this function runs on every fill. It parses
the EventBridge envelope with Powertools' ``EventBridgeModel`` alone: the ``envelopes``
package would load every envelope model (API Gateway, SQS, Kafka...), ~200 ms more.

A fill or an order's end is confirmed with the exchange before it is recorded (the
exchange client is built then, not at cold start): the order and its trades are read
from Binance and those are what the books keep.

An event that is not the listener's ``OrderUpdated`` for one of the stack's symbols
(another source or detail-type, another symbol; a cycle's order whose report names
another symbol than its cycle's), that is about another stack's order (another
client order id prefix: two stacks on one Binance account), or that the exchange
contradicts, changes nothing: it is answered ``ignored`` with the reason, logged and
counted in ``OrderUpdatesIgnored``, not raised, so Lambda does not retry it. A malformed
detail is an ``InvalidEvent``.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from flipbot.app.fills import apply_order_update
from flipbot.composition import container
from flipbot.domain.errors import InvalidEvent
from flipbot.domain.order_ids import parse_client_order_id
from flipbot.events import OrderUpdated, foreign_envelope
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import OnOrderUpdateSettings, check_at_init

check_at_init(OnOrderUpdateSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        envelope = EventBridgeModel.model_validate(event)
    except ValidationError as exc:
        raise InvalidEvent(f"OrderUpdated event rejected: {exc.errors()}") from None
    reason = foreign_envelope(envelope.source, envelope.detail_type, "OrderUpdated")
    if reason:
        return _ignored(reason)
    try:
        update = OrderUpdated.model_validate(envelope.detail)
    except ValidationError as exc:
        raise InvalidEvent(f"OrderUpdated detail rejected: {exc.errors()}") from None
    stack = container(context)
    logger.append_keys(client_order_id=update.client_order_id)
    s = stack.settings
    own_id = update.client_order_id
    if update.execution_type == "CANCELED" and update.orig_client_order_id:
        own_id = update.orig_client_order_id  # a cancel's report names the order here
    parsed = parse_client_order_id(own_id, prefix=s.order_id_prefix)
    reason = update.foreign_symbol(s.symbols, s.symbol_of_cycle(parsed[0]) if parsed else "")
    if reason:
        return _ignored(reason)
    services = stack.for_symbol(update.symbol)
    result = apply_order_update(
        update,
        services.repos,
        services.workflow,
        services.clock.now_ms(),
        follow_manual=lambda order, fills: _follow_manual_buy(services, order, fills),
        confirm_with=lambda: services.exchange,
        order_id_prefix=services.settings.order_id_prefix,
    )
    if result.get("action") in ("ignored", "unconfirmed"):
        return _ignored(result["reason"])
    metrics.add_metric("OrderUpdatesIgnored", MetricUnit.Count, 0)
    logger.info("order update applied", extra=result)
    return result


def _ignored(reason: str) -> dict[str, Any]:
    metrics.add_metric("OrderUpdatesIgnored", MetricUnit.Count, 1)
    logger.warning("order update ignored", extra={"reason": reason})
    return {"action": "ignored", "reason": reason}


def _follow_manual_buy(services: Any, order: Any, fills: Any) -> dict[str, Any]:
    # Imported here: only a filled MANUAL BUY needs the exchange client.
    from flipbot.app.manual import follow_manual_buy

    return follow_manual_buy(services, order, fills)
