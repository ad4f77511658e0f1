"""The place-order function's answer: every outcome of place_order fits its contract."""

from __future__ import annotations

from typing import Any

import pytest
from function_handlers import Context, NoServices, load_handler

EVENT = {
    "task_token": "token-1",
    "cycle_id": "c000001",
    "leg": "BUY",
    "attempt": 1,
    "price": "10.5",
    "quantity": "1",
}


@pytest.mark.parametrize(
    "answer",
    [
        {"client_order_id": "fb51af3dc0-c000001-B1", "order_id": 7, "status": "NEW"},
        # refused by the bot (kill switch) or by the exchange: the task was failed already
        {
            "client_order_id": "fb51af3dc0-c000001-B1",
            "order_id": 0,
            "status": "REJECTED_BY_BOT",
            "reason": "KillSwitchEngaged: the kill switch is on",
        },
    ],
    ids=["placed", "rejected"],
)
def test_each_outcome_of_place_order_is_answered_as_it_was_given(
    monkeypatch: pytest.MonkeyPatch, answer: dict[str, Any]
) -> None:
    module = load_handler(monkeypatch, "place_order", container=lambda _context: NoServices())
    monkeypatch.setattr(module, "place_order", lambda *_args, **_kwargs: dict(answer))
    assert module.handler(dict(EVENT), Context("PlaceOrderFunction")) == answer


def test_the_cycle_after_c999999_is_a_valid_cycle_id() -> None:
    from flipbot.app.contracts import ConsultRequest, RecordTradeResult
    from flipbot.domain.cycle import cycle_id_for, cycle_sequence

    after = cycle_id_for(cycle_sequence("c999999") + 1)
    answer = {"next_cycle_id": after, "continue": True, "realized_pnl": "0", "closed": False}
    assert RecordTradeResult.model_validate(answer).dump()["next_cycle_id"] == "c1000000"
    assert ConsultRequest.parse({"cycle_id": after, "leg": "SELL", "attempt": 1}).cycle_id == after
