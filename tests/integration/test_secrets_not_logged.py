"""No secret value reaches the functions' logs, even at DEBUG.

The Binance key pair sits in Secrets Manager (read by the functions through Powertools
parameters) and, as ECS injects it into the listener, in the environment. The functions
run a whole cycle of event files at DEBUG; then each function's own logger is asked to
log the secrets outright: in the message, under credential keys, inside a free-text
field, in an exception, and through a ``flipbot.*`` library logger. What the log
handler writes (the function's stdout) shows none of them.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest

from flipbot.observability import REDACTED, ScrubbingFormatter, forget_secrets, scrub

from .sam_local import event, local_stack

API_KEY = "liveApiKey" + "Q7w8E9r0T1y2U3i4" * 4
API_SECRET = "liveApiSecret" + "Z1x2C3v4B5n6M7a8" * 4
OPENAI_KEY = "sk-proj-" + "P0o9I8u7Y6t5R4e3" * 3
SECRETS = (API_KEY, API_SECRET, OPENAI_KEY)

CYCLE = [
    ("ConsultAiFunction", "consult_ai_buy.json"),
    ("PlaceOrderFunction", "place_order_buy.json"),
    ("OnOrderUpdateFunction", "on_order_update_partial.json"),
    ("OnOrderUpdateFunction", "on_order_update_filled.json"),
    ("ConsultAiFunction", "consult_ai_sell.json"),
    ("PlaceOrderFunction", "place_order_sell.json"),
    ("CancelOrderFunction", "cancel_order.json"),
    ("RecordTradeFunction", "record_trade.json"),
    ("ReconcileFunction", "reconcile_schedule.json"),
]


@pytest.fixture
def stdout_of_functions() -> Iterator[io.StringIO]:
    """What the functions' log handler writes (Lambda sends it to CloudWatch)."""
    forget_secrets()
    captured = io.StringIO()
    service = logging.getLogger("flipbot")
    saved_level = service.level
    with local_stack(
        secrets={
            "BinanceApiSecret": {"api_key": API_KEY, "api_secret": API_SECRET},
            "OpenAiApiSecret": {"api_key": OPENAI_KEY},
        },
        extra_env={"BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET},
    ) as stack:
        handlers = [h for h in service.handlers if isinstance(h, logging.StreamHandler)]
        assert handlers, "the functions' Powertools Logger has no handler"
        for handler in handlers:
            assert isinstance(handler.formatter, ScrubbingFormatter), handler.formatter
        # Swap the stream without setStream: it flushes the old stream first, which may be
        # a capture file an earlier test in this worker has closed.
        saved_streams = [h.stream for h in handlers]
        for handler in handlers:
            handler.stream = captured
        service.setLevel(logging.DEBUG)
        try:
            stack.seed_market(bid="8.49", ask="8.51")
            for logical_id, name in CYCLE:
                stack.invoke(logical_id, event(name))
                if name == "place_order_buy.json":
                    stack.exchange.on_trade(
                        stack.scheduler.now_ms, Decimal("8.48"), Decimal("50"), True
                    )
            _log_the_secrets_outright()
            yield captured
        finally:
            for handler, stream in zip(handlers, saved_streams, strict=True):
                handler.stream = stream if stream is not None and not stream.closed else sys.stdout
            service.setLevel(saved_level)
            forget_secrets()


def _log_the_secrets_outright() -> None:
    module = sys.modules["flipbot_function_PlaceOrderFunction"]  # as the twin loads it
    logger = module.logger
    logger.debug("signing with %s / %s", API_KEY, API_SECRET)
    logger.info(
        "credentials",
        extra={
            "api_key": API_KEY,
            "binance": {"api_secret": API_SECRET, "note": f"secret={API_SECRET}"},
            "openai": {"api_key": OPENAI_KEY},
            "task_token": "AQCEAAAAKgAAAAMAAAAAAAAAAZk3pJXwQpu4PuUcmLmdLXNlMhM2",
        },
    )
    try:
        raise RuntimeError(f"request failed: X-MBX-APIKEY={API_KEY}")
    except RuntimeError:
        logger.exception("exchange call failed")
    logging.getLogger("flipbot.adapters.binance_exchange").warning("retrying with key %s", API_KEY)


def test_no_secret_value_reaches_the_logs(stdout_of_functions: io.StringIO) -> None:
    output = stdout_of_functions.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    # Given a cycle at DEBUG and explicit attempts, Then there is output, all of it JSON
    messages = {line["message"] for line in lines}
    assert {"order placed", "credentials", "exchange call failed"} <= messages
    assert REDACTED in output
    # And none of the secrets, in any form
    for secret in SECRETS:
        assert secret not in output
        assert secret[:24] not in output
    credentials = next(line for line in lines if line["message"] == "credentials")
    assert credentials["api_key"] == REDACTED
    assert credentials["binance"] == {"api_secret": REDACTED, "note": f"secret={REDACTED}"}
    assert credentials["openai"] == {"api_key": REDACTED}
    assert credentials["task_token"] == REDACTED


def test_scrub_keeps_what_is_not_a_credential() -> None:
    record = {
        "prompt_tokens": 812,
        "token_state": "WAITING",
        "client_order_id": "fb-c000001-B1",
        "api_key": "",
        "nested": [{"password": "hunter2hunter2"}],
    }
    assert scrub(record) == {**record, "nested": [{"password": REDACTED}]}
