"""One absurd number from the decision maker costs one consultation, never the cycle.

A price no market has (``1e308``, ``1e-308``, negative, zero) is refused by the price
guard: the consultation is recorded as rejected with the value in its reason, and the
buy waits to ask again. The consult answers; it does not raise.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from flipbot.app.consult import consult
from flipbot.domain.decision import Decision
from flipbot.domain.model import Side

from .conftest import Bot


@pytest.mark.parametrize("price", ["1e308", "1e28", "1e-308", "-5", "0"])
def test_given_an_absurd_buy_price_then_the_consultation_is_rejected_and_the_cycle_waits(
    bot: Bot, price: str
) -> None:
    # Given a market, and a decision maker that answers BUY at an absurd price
    bot.market("25.95", "25.96")
    bot.decider.answers.append(Decision(action="BUY", base_price=Decimal(price), confidence=0.95))
    # When the buy leg is consulted
    result = consult(bot, "c000001", Side.BUY, 1)
    # Then it waits to ask again, naming the price guard and the value
    assert result["action"] == "WAIT"
    assert result["wait_seconds"] > 0
    assert result["guard"] == "price"
    assert str(Decimal(price)) in result["reason"]
    audit = bot.repos.consultations.all()
    assert [a.verdict for a in audit] == ["REJECTED:price"]
    assert str(Decimal(price)) in audit[0].verdict_reason
    assert bot.paper.all_orders("TRUMPUSDC") == []
    # And the next consultation, with a sane answer, places the buy
    bot.decider.answers.append(Decision(action="BUY", base_price=Decimal("25.94"), confidence=0.95))
    assert consult(bot, "c000001", Side.BUY, 2)["action"] == "PLACE"
