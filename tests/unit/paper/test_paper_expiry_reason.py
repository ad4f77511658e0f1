"""Binance's expiry reason (2026-03): ``eR`` on executionReport, ``expiryReason`` on the
REST views of an order that expired; neither on an order that did not."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flipbot.streams import order_update_from_execution_report
from flipbot_dev.paper import PaperExchange

SYMBOL = "TRUMPUSDC"
MakeExchange = Callable[..., PaperExchange]


def reports(ex: PaperExchange) -> list[dict[str, Any]]:
    return [e for e in ex.drain() if e["e"] == "executionReport"]


@pytest.mark.parametrize(
    ("tif", "reason"),
    [("IOC", "UNFILLED_IOC_QUANTITY_EXPIRED"), ("FOK", "UNFILLED_FOK_ORDER_EXPIRED")],
)
def test_an_unfilled_ioc_or_fok_expires_with_its_reason(
    make_exchange: MakeExchange, tif: str, reason: str
) -> None:
    ex = make_exchange()
    # Given a book offering 5 at 10.01, When an IOC / FOK buys 8 at 10.01
    placed = ex.place_order(SYMBOL, "BUY", "LIMIT", "8", "10.01", tif, "x1")

    # Then the order expires and says why, on its report and in its REST views
    sent = reports(ex)
    assert [r["X"] for r in sent][-1] == "EXPIRED"
    assert sent[-1]["eR"] == reason
    assert "eR" not in sent[0]  # the NEW report has no expiry reason
    assert placed["expiryReason"] == reason
    assert ex.get_order(SYMBOL, orig_client_order_id="x1")["expiryReason"] == reason
    assert order_update_from_execution_report(sent[-1]).expiry_reason == reason


def test_the_exchange_ends_a_partly_filled_order_with_exchange_canceled(
    make_exchange: MakeExchange, clock: Any
) -> None:
    ex = make_exchange()
    placed = ex.place_order(SYMBOL, "SELL", "LIMIT", "2", "10.05", "GTC", "s1")
    ex.on_trade(clock.advance(1_000), "10.06", "0.5", False)
    ex.drain()
    assert "expiryReason" not in ex.get_order(SYMBOL, placed["orderId"])

    # When the exchange ends it
    view = ex.expire_order(SYMBOL, placed["orderId"])

    # Then what was filled stays filled and the reason is on the order and its report
    (report,) = reports(ex)
    assert (report["x"], report["X"], report["eR"], report["z"]) == (
        "EXPIRED",
        "EXPIRED",
        "EXCHANGE_CANCELED",
        "0.50000000",
    )
    assert (view["status"], view["expiryReason"]) == ("EXPIRED", "EXCHANGE_CANCELED")
    trump = next(b for b in ex.account()["balances"] if b["asset"] == "TRUMP")
    assert trump["locked"] == "0.00000000"


def test_a_canceled_order_has_no_expiry_reason(make_exchange: MakeExchange) -> None:
    ex = make_exchange()
    ex.place_order(SYMBOL, "BUY", "LIMIT", "1", "9.90", "GTC", "b1")
    ex.cancel_order(SYMBOL, orig_client_order_id="b1")
    assert all("eR" not in r for r in reports(ex))
    assert "expiryReason" not in ex.get_order(SYMBOL, orig_client_order_id="b1")
