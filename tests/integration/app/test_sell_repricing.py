"""A sell aims at the target profit first and is re-priced toward the floor when it rests
unfilled past its timeout (the decision's, bounded by SELL_REPRICE_MIN/MAX_SECONDS),
SELL_REPRICE_STEPS times at most; never below the floor.

Real DynamoDB adapter (moto), real python-binance client against the paper exchange.
The cycle buys 0.385 at 25.90 (0.384 after commission): fees 0.1 % each way, so its floor
is 25.90 x 1.012 = 26.2108 -> 26.22 and its target 25.90 x 1.052 = 27.2468 -> 27.25.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from flipbot.app.consult import check_resting_sell, consult
from flipbot.app.contracts import ConsultRequest
from flipbot.app.fills import apply_order_update
from flipbot.app.orders import place_order
from flipbot.domain.decision import Decision
from flipbot.domain.errors import ConfigurationError
from flipbot.domain.model import Side
from flipbot.domain.strategy import FixedMarginStrategy, OfflineStrategy
from flipbot.settings import Settings

from .conftest import Bot

CYCLE = "c000001"
FLOOR = Decimal("26.22")
TARGET = Decimal("27.25")


def _answer(bot: Bot, price: Decimal, timeout: int = 120) -> None:
    bot.decider.answers.append(
        Decision(action="SELL", base_price=price, confidence=0.95, timeout_seconds=timeout)
    )


def _place(bot: Bot, decided: dict[str, Any], attempt: int = 1) -> None:
    place_order(
        bot,
        cycle_id=CYCLE,
        leg=Side.SELL,
        attempt=attempt,
        price=Decimal(decided["price"]),
        quantity=Decimal(decided["quantity"]),
        task_token=f"token-s{attempt}",
        consultation_id=decided["consultation_id"],
    )


def test_given_a_sell_consultation_then_the_decider_is_told_the_target_and_the_attempt(
    bot: Bot,
) -> None:
    bot.bought()
    _answer(bot, TARGET)
    consult(bot, CYCLE, Side.SELL, 2)
    (request,) = bot.decider.requests
    assert request.target_price == TARGET
    assert (request.sell_attempt, request.reprice_steps) == (2, 3)
    assert request.floor_price == FLOOR
    assert request.trading_context is not None  # no trade closed yet: zero of them
    assert request.trading_context.trades == 0


def test_given_a_target_above_what_the_book_allows_then_it_is_capped_by_the_book(
    bot: Bot,
) -> None:
    # Given: a market far under the entry: mid 23.505 x 1.10 = 25.8555 is under the floor
    bot.bought()
    bot.market("23.50", "23.51")
    _answer(bot, FLOOR)
    consult(bot, CYCLE, Side.SELL, 1)
    # Then: the target is no higher than a sell may rest, and never under the floor
    assert bot.decider.requests[0].target_price == FLOOR


@pytest.mark.parametrize(
    ("asked", "rests"),
    [(120, 300), (900, 900), (86_400, 3600)],
)
def test_given_a_sell_above_the_floor_then_it_is_re_priced_after_its_bounded_timeout(
    bot: Bot, asked: int, rests: int
) -> None:
    bot.bought()
    _answer(bot, TARGET, timeout=asked)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["action"] == "PLACE"
    assert Decimal(decided["price"]) == TARGET
    assert decided["reprice_seconds"] == rests
    assert decided["timeout_seconds"] == rests  # the wait ends when the re-pricing is due


def test_given_a_sell_at_the_floor_or_past_its_steps_then_it_rests_until_it_fills(
    bot: Bot,
) -> None:
    bot.bought()
    _answer(bot, FLOOR)
    at_floor = consult(bot, CYCLE, Side.SELL, 1)
    _answer(bot, TARGET)
    last_step = consult(bot, CYCLE, Side.SELL, 4)  # three steps taken: no fourth
    for decided in (at_floor, last_step):
        assert decided["reprice_seconds"] == 0
        assert decided["timeout_seconds"] == 99_999_999


def test_given_re_pricing_off_then_no_sell_is_re_priced(bot: Bot) -> None:
    bot.settings = bot.settings.model_copy(update={"sell_reprice_steps": 0})
    bot.bought()
    _answer(bot, TARGET)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    assert decided["reprice_seconds"] == 0
    assert bot.decider.requests[0].reprice_steps == 0


def test_given_a_resting_sell_when_checked_then_it_is_replaced_once_its_timeout_has_passed(
    bot: Bot,
) -> None:
    bot.bought()
    _answer(bot, TARGET, timeout=600)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    _place(bot, decided)
    # When: checked before its time, then when it has rested its 600 s
    bot.clock.now += 300_000
    early = check_resting_sell(bot, CYCLE, 1, decided["reprice_seconds"])
    bot.clock.now += 300_000
    due = check_resting_sell(bot, CYCLE, 1, decided["reprice_seconds"])
    # Then: kept, then replaced with the reason
    assert early["action"] == "KEEP"
    assert due["action"] == "REPLACE"
    assert due["reason"].startswith(f"re-price: resting at {TARGET} for 600 s")


def test_given_the_sell_filled_when_checked_then_it_is_not_replaced(bot: Bot) -> None:
    bot.bought()
    _answer(bot, TARGET, timeout=300)
    decided = consult(bot, CYCLE, Side.SELL, 1)
    _place(bot, decided)
    bot.trade("27.30", "1.000", taker_sold=False)
    for update in bot.updates():
        apply_order_update(update, bot.repos, bot.workflow, bot.clock.now)
    bot.clock.now += 600_000
    checked = check_resting_sell(bot, CYCLE, 1, 300)
    assert checked["action"] == "KEEP"
    assert "FILLED" in checked["reason"]


@pytest.mark.parametrize("strategy", [OfflineStrategy(), FixedMarginStrategy()])
def test_given_an_offline_strategy_then_it_aims_at_the_target_first_and_steps_to_its_own_price(
    bot: Bot, strategy: Any
) -> None:
    # Given: the real offline strategies deciding the sell leg, attempt after attempt
    bot.bought()
    bot.decider.answers.clear()
    prices = []
    for attempt in (1, 2, 3, 4, 5):
        bot.decider.answers.append(strategy.decide(_request_for(bot, attempt)))
        prices.append(Decimal(consult(bot, CYCLE, Side.SELL, attempt)["price"]))
    # Then: the target first, each re-pricing lower, then its own price, never the floor's under
    assert prices[0] == TARGET
    assert prices[0] > prices[1] > prices[2] > prices[3] == prices[4] >= FLOOR


def _request_for(bot: Bot, attempt: int) -> Any:
    """What consult tells the decider on ``attempt`` (asked through a probe answer)."""
    bot.decider.answers.append(Decision(action="WAIT", base_price=FLOOR, confidence=0.0))
    consult(bot, CYCLE, Side.SELL, attempt)
    return bot.decider.requests.pop()


def test_given_a_minimum_above_the_maximum_then_the_settings_name_both() -> None:
    env = {
        "SYMBOL": "TRUMPUSDC",
        "SELL_REPRICE_MIN_SECONDS": "7200",
        "SELL_REPRICE_MAX_SECONDS": "3600",
        **{
            f"{name}_TABLE": name.lower()
            for name in ("CYCLES", "ORDERS", "FILLS", "TRADES", "CONSULTATIONS", "MARKET")
        },
    }
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env)
    assert "SELL_REPRICE_MIN_SECONDS=7200 is above SELL_REPRICE_MAX_SECONDS=3600" in str(
        raised.value
    )


def test_given_a_caller_that_does_not_re_price_then_the_sell_rests_until_it_fills(
    bot: Bot,
) -> None:
    # Given: an execution of a definition older than re-pricing (its ConsultSell does not
    # say it re-prices, its CheckSell passes no reprice_seconds)
    bot.bought()
    _answer(bot, TARGET)
    request = ConsultRequest.parse({"cycle_id": CYCLE, "leg": "SELL", "attempt": 1})
    decided = consult(bot, CYCLE, Side.SELL, request.attempt, reprices=request.reprices)
    # Then: its sell is placed to rest until it fills, as that definition expects
    assert decided["reprice_seconds"] == 0
    assert decided["timeout_seconds"] == 99_999_999
    assert bot.decider.requests[0].reprice_steps == 0
