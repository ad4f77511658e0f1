"""RecordTradeFunction: close the cycle with its fills, fees, AI cost and P&L."""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from flipbot.app.contracts import RecordTradeRequest, RecordTradeResult
from flipbot.app.trades import record_trade
from flipbot.composition import container
from flipbot.observability import ScrubbingFormatter
from flipbot.settings import RecordTradeSettings, check_at_init

check_at_init(RecordTradeSettings)  # a function without what it needs fails its cold start
logger = Logger(logger_formatter=ScrubbingFormatter())
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="cycle_id")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = RecordTradeRequest.parse(event)
    result = RecordTradeResult.model_validate(
        record_trade(container(context).for_cycle(request.cycle_id), cycle_id=request.cycle_id)
    )
    if result.closed:  # a retry finds the cycle closed: it is counted once
        metrics.add_metric("CyclesCompleted", MetricUnit.Count, 1)
        metrics.add_metric("RealizedPnl", MetricUnit.NoUnit, float(result.realized_pnl))
        for leg, seconds in result.fill_seconds.items():
            # BuyFillSeconds, SellFillSeconds: the dashboard's time to fill
            metrics.add_metric(f"{leg.title()}FillSeconds", MetricUnit.Seconds, seconds)
    dumped = result.dump()
    logger.info("trade recorded", extra=dumped)
    return dumped
