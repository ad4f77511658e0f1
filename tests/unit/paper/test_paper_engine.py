"""PaperExchange: Binance spot matching, fees, balances and user-data events."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from flipbot_dev.paper import BinanceError, PaperExchange, default_symbol_info, ws_api_envelope

D = Decimal
T0 = 1_700_000_000_000  # the clock fixture's start
SYMBOL = "TRUMPUSDC"
MakeExchange = Callable[..., PaperExchange]


def buy(ex: PaperExchange, qty: str, price: str, cid: str = "b1", tif: str | None = "GTC") -> Any:
    return ex.place_order(SYMBOL, "BUY", "LIMIT", qty, price, tif, cid)


def sell(ex: PaperExchange, qty: str, price: str, cid: str = "s1", tif: str | None = "GTC") -> Any:
    return ex.place_order(SYMBOL, "SELL", "LIMIT", qty, price, tif, cid)


def status(ex: PaperExchange, cid: str) -> str:
    return str(ex.get_order(SYMBOL, orig_client_order_id=cid)["status"])


def rejected(fn: Callable[[], Any]) -> BinanceError:
    with pytest.raises(BinanceError) as info:
        fn()
    return info.value


def reports(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev for ev in events if ev["e"] == "executionReport"]


# --- fill models ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fill_model", "order", "trade_price", "fills"),
    [
        ("through", ("BUY", "9.99"), "9.99", False),
        ("through", ("BUY", "9.99"), "9.98", True),
        ("touch", ("BUY", "9.99"), "9.99", True),
        ("touch", ("BUY", "9.99"), "10.00", False),
        ("through", ("SELL", "10.05"), "10.05", False),
        ("through", ("SELL", "10.05"), "10.06", True),
        ("touch", ("SELL", "10.05"), "10.05", True),
        ("touch", ("SELL", "10.05"), "10.04", False),
    ],
)
def test_resting_order_fills_by_the_fill_model(
    make_exchange: MakeExchange,
    fill_model: str,
    order: tuple[str, str],
    trade_price: str,
    fills: bool,
) -> None:
    # Given a resting order
    ex = make_exchange(fill_model=fill_model)
    side, price = order
    ex.place_order(SYMBOL, side, "LIMIT", "1.000", price, "GTC", "o1")
    # When a trade prints at trade_price
    ex.on_trade(T0, trade_price, "5", side == "BUY")
    # Then it fills only when the model says so
    assert status(ex, "o1") == ("FILLED" if fills else "NEW")


def test_partial_fills_are_bounded_by_the_traded_quantity(exchange: PaperExchange) -> None:
    buy(exchange, "1.000", "9.99")
    exchange.on_trade(T0 + 1, "9.98", "0.400", True)
    order = exchange.get_order(SYMBOL, orig_client_order_id="b1")
    assert (order["status"], order["executedQty"]) == ("PARTIALLY_FILLED", "0.40000000")
    assert order["cummulativeQuoteQty"] == "3.99600000"
    assert exchange.balance("USDC") == (D("990.01"), D("5.994"))
    assert exchange.balance("TRUMP") == (D("10.3996"), D(0))

    exchange.on_trade(T0 + 2, "9.97", "5", True)
    order = exchange.get_order(SYMBOL, orig_client_order_id="b1")
    assert (order["status"], order["executedQty"]) == ("FILLED", "1.00000000")
    assert exchange.balance("USDC") == (D("990.01"), D(0))
    assert exchange.balance("TRUMP") == (D("10.999"), D(0))
    assert [t["qty"] for t in exchange.my_trades(SYMBOL)] == ["0.40000000", "0.60000000"]


def test_one_trade_is_shared_by_price_then_time_priority(exchange: PaperExchange) -> None:
    # Given three bids: a lower one first, then two at the same better price
    buy(exchange, "1.000", "9.98", "low")
    buy(exchange, "1.000", "9.99", "first")
    buy(exchange, "1.000", "9.99", "second")
    # When 1.5 trades below all of them
    exchange.on_trade(T0, "9.97", "1.500", True)
    # Then the best price goes first, the older order before the newer, the low bid waits
    executed = {
        cid: exchange.get_order(SYMBOL, orig_client_order_id=cid)["executedQty"]
        for cid in ("low", "first", "second")
    }
    assert executed == {"low": "0.00000000", "first": "1.00000000", "second": "0.50000000"}


def test_a_book_update_alone_fills_nothing(exchange: PaperExchange) -> None:
    buy(exchange, "1.000", "9.99")
    exchange.on_book(T0, "9.90", "5", "9.95", "5")
    assert status(exchange, "b1") == "NEW"


# --- fees ----------------------------------------------------------------------------------
def test_base_mode_buy_pays_in_base_and_sell_pays_in_quote(exchange: PaperExchange) -> None:
    buy(exchange, "1.000", "9.99")
    sell(exchange, "1.000", "10.05")
    exchange.on_trade(T0, "9.98", "1", True)
    exchange.on_trade(T0, "10.06", "1", False)
    trades = {t["isBuyer"]: t for t in exchange.my_trades(SYMBOL)}
    assert (trades[True]["commission"], trades[True]["commissionAsset"]) == ("0.00100000", "TRUMP")
    assert (trades[False]["commission"], trades[False]["commissionAsset"]) == ("0.01005000", "USDC")
    assert trades[True]["isMaker"]
    assert trades[False]["isMaker"]
    # 1000 - 9.99 + 10.05 - 0.01005 ; 10 + 1 - 0.001 - 1
    assert exchange.balance("USDC") == (D("1000.04995"), D(0))
    assert exchange.balance("TRUMP") == (D("9.999"), D(0))


def test_quote_mode_locks_a_fee_reserve_and_releases_what_is_unused(
    make_exchange: MakeExchange,
) -> None:
    ex = make_exchange(commission_mode="quote")
    buy(ex, "1.000", "9.99")
    # notional 9.99 + reserve 0.00999 (the higher rate)
    assert ex.balance("USDC") == (D("990.00001"), D("9.99999"))
    ex.on_trade(T0, "9.98", "0.400", True)
    trade = ex.my_trades(SYMBOL)[0]
    assert (trade["commission"], trade["commissionAsset"]) == ("0.00399600", "USDC")
    assert ex.balance("TRUMP") == (D("10.4"), D(0))
    ex.cancel_order(SYMBOL, orig_client_order_id="b1")
    # 1000 - 3.996 spent - 0.003996 commission
    assert ex.balance("USDC") == (D("996.000004"), D(0))


def test_quote_mode_sell_pays_in_quote(make_exchange: MakeExchange) -> None:
    ex = make_exchange(commission_mode="quote")
    sell(ex, "1.000", "10.05")
    ex.on_trade(T0, "10.06", "1", False)
    assert ex.my_trades(SYMBOL)[0]["commissionAsset"] == "USDC"
    assert ex.balance("USDC") == (D("1010.03995"), D(0))


def test_bnb_mode_pays_discounted_commission_in_bnb(make_exchange: MakeExchange) -> None:
    ex = make_exchange(
        commission_mode="bnb",
        bnb_price="600",
        balances={"USDC": D("1000"), "BNB": D("1")},
    )
    buy(ex, "1.000", "9.99")
    ex.on_trade(T0, "9.98", "1", True)
    trade = ex.my_trades(SYMBOL)[0]
    # 9.99 * 0.001 * (1 - 0.25) / 600 = 0.0000124875 -> 8 decimals
    assert (trade["commission"], trade["commissionAsset"]) == ("0.00001249", "BNB")
    assert ex.balance("TRUMP") == (D("1"), D(0))
    assert ex.balance("BNB") == (D("0.99998751"), D(0))


def test_bnb_mode_without_bnb_falls_back_to_the_received_asset(make_exchange: MakeExchange) -> None:
    ex = make_exchange(commission_mode="bnb", bnb_price="600", balances={"USDC": D("1000")})
    buy(ex, "1.000", "9.99")
    ex.on_trade(T0, "9.98", "1", True)
    trade = ex.my_trades(SYMBOL)[0]
    assert (trade["commission"], trade["commissionAsset"]) == ("0.00100000", "TRUMP")


def test_crossing_limit_executes_at_once_as_taker_at_the_book_price(
    make_exchange: MakeExchange,
) -> None:
    ex = make_exchange(taker="0.002")
    response = buy(ex, "1.000", "10.05")
    assert response["status"] == "FILLED"
    assert response["fills"] == [
        {
            "price": "10.01000000",
            "qty": "1.00000000",
            "commission": "0.00200000",
            "commissionAsset": "TRUMP",
            "tradeId": 1,
        }
    ]
    assert ex.my_trades(SYMBOL)[0]["isMaker"] is False
    # The lock at 10.05 is released; 10.01 is spent.
    assert ex.balance("USDC") == (D("989.99"), D(0))
    assert ex.balance("TRUMP") == (D("10.998"), D(0))


def test_crossing_limit_takes_only_the_shown_quantity_and_rests_the_rest(
    exchange: PaperExchange,
) -> None:
    response = buy(exchange, "6.000", "10.05")
    assert (response["status"], response["executedQty"]) == ("PARTIALLY_FILLED", "5.00000000")
    # 5 * 10.01 spent, 1 * 10.05 still locked
    assert exchange.balance("USDC") == (D("939.90"), D("10.05"))
    assert exchange.book_ticker(SYMBOL)["askQty"] == "0.00000000"


def test_sell_crossing_the_bid_takes_it(exchange: PaperExchange) -> None:
    response = sell(exchange, "1.000", "9.50")
    assert response["fills"][0]["price"] == "10.00000000"
    assert response["fills"][0]["commissionAsset"] == "USDC"
    assert exchange.balance("USDC") == (D("1009.99"), D(0))


# --- order types ---------------------------------------------------------------------------
def test_limit_maker_that_would_take_is_rejected(exchange: PaperExchange) -> None:
    error = rejected(lambda: exchange.place_order(SYMBOL, "BUY", "LIMIT_MAKER", "1", "10.01"))
    assert (error.code, error.msg) == (-2010, "Order would immediately match and take.")
    ok = exchange.place_order(SYMBOL, "BUY", "LIMIT_MAKER", "1", "10.00")
    assert (ok["status"], ok["timeInForce"]) == ("NEW", "GTC")


def test_ioc_remainder_expires_and_fok_is_all_or_nothing(exchange: PaperExchange) -> None:
    ioc = buy(exchange, "6.000", "10.05", "ioc", tif="IOC")
    assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "5.00000000")
    assert exchange.balance("USDC") == (D("949.95"), D(0))
    exchange.on_book(T0, "10.00", "5", "10.01", "5")
    fok = buy(exchange, "6.000", "10.05", "fok", tif="FOK")
    assert (fok["status"], fok["executedQty"]) == ("EXPIRED", "0.00000000")
    assert exchange.balance("USDC") == (D("949.95"), D(0))
    assert buy(exchange, "5.000", "10.05", "fok2", tif="FOK")["status"] == "FILLED"


# --- bookkeeping ---------------------------------------------------------------------------
def test_cancel_releases_the_funds_and_reports_both_ids(exchange: PaperExchange) -> None:
    buy(exchange, "1.000", "9.99")
    sell(exchange, "2.000", "10.50")
    assert exchange.balance("TRUMP") == (D("8"), D("2"))
    exchange.drain()
    response = exchange.cancel_order(SYMBOL, orig_client_order_id="b1", new_client_order_id="x1")
    exchange.cancel_order(SYMBOL, orig_client_order_id="s1")
    assert (response["status"], response["origClientOrderId"], response["clientOrderId"]) == (
        "CANCELED",
        "b1",
        "x1",
    )
    assert exchange.balance("USDC") == (D("1000"), D(0))
    assert exchange.balance("TRUMP") == (D("10"), D(0))
    report = reports(exchange.drain())[0]
    assert (report["x"], report["X"], report["c"], report["C"]) == (
        "CANCELED",
        "CANCELED",
        "x1",
        "b1",
    )
    again = rejected(lambda: exchange.cancel_order(SYMBOL, orig_client_order_id="b1"))
    assert (again.code, again.msg) == (-2011, "Unknown order sent.")


def test_duplicate_open_client_order_id_is_rejected_until_the_order_closes(
    exchange: PaperExchange,
) -> None:
    first = buy(exchange, "1.000", "9.99", "dup")
    error = rejected(lambda: buy(exchange, "1.000", "9.98", "dup"))
    assert (error.code, error.msg) == (-2010, "Duplicate order sent.")
    exchange.cancel_order(SYMBOL, orig_client_order_id="dup")
    second = buy(exchange, "1.000", "9.98", "dup")
    assert second["orderId"] == first["orderId"] + 1
    assert exchange.get_order(SYMBOL, orig_client_order_id="dup")["orderId"] == second["orderId"]


@pytest.mark.parametrize(
    ("side", "qty", "price"), [("BUY", "101.000", "9.99"), ("SELL", "10.001", "10.50")]
)
def test_insufficient_balance_is_rejected_without_side_effects(
    exchange: PaperExchange, side: str, qty: str, price: str
) -> None:
    error = rejected(lambda: exchange.place_order(SYMBOL, side, "LIMIT", qty, price, "GTC", "x"))
    assert (error.code, error.msg) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert exchange.outbox == []
    assert exchange.open_orders() == []
    assert exchange.balance("USDC") == (D("1000"), D(0))


@pytest.mark.parametrize(
    ("side", "qty", "price", "failed"),
    [
        ("BUY", "1.000", "9.995", "PRICE_FILTER"),
        ("BUY", "1.0005", "9.99", "LOT_SIZE"),
        ("BUY", "0.100", "9.99", "NOTIONAL"),
        ("BUY", "1.000", "60.00", "PERCENT_PRICE_BY_SIDE"),
        ("SELL", "5.000", "1.00", "PERCENT_PRICE_BY_SIDE"),
    ],
)
def test_each_filter_rejects_with_binances_code_and_message(
    exchange: PaperExchange, side: str, qty: str, price: str, failed: str
) -> None:
    error = rejected(lambda: exchange.place_order(SYMBOL, side, "LIMIT", qty, price, "GTC", "f1"))
    assert (error.code, error.msg, error.http_status) == (-1013, f"Filter failure: {failed}", 400)
    assert exchange.outbox == []


def test_max_num_orders_filter(clock: Any) -> None:
    info = default_symbol_info(SYMBOL, max_num_orders=1)
    ex = PaperExchange([info], clock=clock, balances={"USDC": D("100")})
    buy(ex, "1.000", "9.99", "one")
    error = rejected(lambda: buy(ex, "1.000", "9.98", "two"))
    assert (error.code, error.msg) == (-1013, "Filter failure: MAX_NUM_ORDERS")


@pytest.mark.parametrize(
    ("kwargs", "code", "msg"),
    [
        ({"symbol": "NOPEUSDC"}, -1121, "Invalid symbol."),
        ({"side": "HOLD"}, -1117, "Invalid side."),
        ({"type": "STOP_LOSS"}, -1116, "Invalid orderType."),
        (
            {"time_in_force": None},
            -1102,
            "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        ),
        ({"time_in_force": "GTX"}, -1115, "Invalid timeInForce."),
        (
            {"price": None},
            -1102,
            "Mandatory parameter 'price' was not sent, was empty/null, or malformed.",
        ),
        (
            {"price": "1e1"},
            -1100,
            "Illegal characters found in parameter 'price'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        ),
        (
            {"new_client_order_id": "bad id!"},
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            "'^[a-zA-Z0-9-_]{1,36}$'.",
        ),
        (
            {"type": "LIMIT_MAKER"},
            -1106,
            "Parameter 'timeInForce' sent when not required.",
        ),
    ],
)
def test_malformed_orders_get_binances_request_errors(
    exchange: PaperExchange, kwargs: dict[str, Any], code: int, msg: str
) -> None:
    order: dict[str, Any] = {
        "symbol": SYMBOL,
        "side": "BUY",
        "type": "LIMIT",
        "quantity": "1.000",
        "price": "9.99",
        "time_in_force": "GTC",
        "new_client_order_id": "m1",
    } | kwargs
    error = rejected(lambda: exchange.place_order(**order))
    assert (error.code, error.msg) == (code, msg)


def test_unknown_order_lookups(exchange: PaperExchange) -> None:
    error = rejected(lambda: exchange.get_order(SYMBOL, orig_client_order_id="ghost"))
    assert (error.code, error.msg) == (-2013, "Order does not exist.")
    both = rejected(lambda: exchange.get_order(SYMBOL))
    assert (
        both.msg == "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
    )


def test_trade_and_order_history_queries(exchange: PaperExchange) -> None:
    for i in range(3):
        buy(exchange, "1.000", "9.99", f"h{i}")
    exchange.on_trade(T0, "9.98", "3", True)
    assert [t["id"] for t in exchange.my_trades(SYMBOL)] == [1, 2, 3]
    assert [t["id"] for t in exchange.my_trades(SYMBOL, from_id=2, limit=1)] == [2]
    assert [t["id"] for t in exchange.my_trades(SYMBOL, limit=2)] == [2, 3]
    assert [t["orderId"] for t in exchange.my_trades(SYMBOL, order_id=2)] == [2]
    assert [o["orderId"] for o in exchange.all_orders(SYMBOL, order_id=2)] == [2, 3]
    assert [o["orderId"] for o in exchange.all_orders(SYMBOL, limit=1)] == [3]


def test_account_view_and_omitting_zero_balances(make_exchange: MakeExchange) -> None:
    ex = make_exchange(balances={"USDC": D("10"), "BNB": D("0")})
    assert [b["asset"] for b in ex.account()["balances"]] == ["BNB", "USDC"]
    assert ex.account(omit_zero_balances=True)["balances"] == [
        {"asset": "USDC", "free": "10.00000000", "locked": "0.00000000"}
    ]
    assert ex.account()["makerCommission"] == 10


def test_avg_price_weights_the_last_five_minutes(exchange: PaperExchange, clock: Any) -> None:
    exchange.on_trade(clock(), "10", "1", True)
    exchange.on_trade(clock(), "11", "3", False)
    assert exchange.avg_price(SYMBOL)["price"] == "10.75000000"
    clock.advance(4 * 60_000)
    exchange.on_trade(clock(), "12", "1", False)
    clock.advance(2 * 60_000)
    assert exchange.avg_price(SYMBOL)["price"] == "12.00000000"


# --- events --------------------------------------------------------------------------------
def test_events_follow_binances_order_and_format(exchange: PaperExchange) -> None:
    buy(exchange, "1.000", "9.99")
    exchange.on_trade(T0 + 5, "9.98", "0.4", True)
    events = exchange.drain()
    assert [(ev["e"], ev.get("x")) for ev in events] == [
        ("executionReport", "NEW"),
        ("outboundAccountPosition", None),
        ("executionReport", "TRADE"),
        ("outboundAccountPosition", None),
    ]
    new, trade = reports(events)
    assert (new["X"], new["n"], new["N"], new["t"], new["w"]) == ("NEW", "0", None, -1, True)
    assert (new["q"], new["p"], new["z"], new["i"], new["c"]) == (
        "1.00000000",
        "9.99000000",
        "0.00000000",
        1,
        "b1",
    )
    assert (trade["X"], trade["l"], trade["L"], trade["z"], trade["Z"], trade["Y"]) == (
        "PARTIALLY_FILLED",
        "0.40000000",
        "9.99000000",
        "0.40000000",
        "3.99600000",
        "3.99600000",
    )
    assert (trade["n"], trade["N"], trade["t"], trade["m"], trade["E"], trade["T"]) == (
        "0.00040000",
        "TRUMP",
        1,
        True,
        T0 + 5,
        T0 + 5,
    )
    assert events[1]["B"] == [{"a": "USDC", "f": "990.01000000", "l": "9.99000000"}]
    assert exchange.outbox == []
    assert ws_api_envelope(trade)["event"] == trade


def test_replay_is_deterministic(make_exchange: MakeExchange) -> None:
    def run() -> list[Any]:
        ex = make_exchange()
        buy(ex, "1.000", "9.99", "a")
        sell(ex, "2.000", "10.03", "b")
        buy(ex, "1.000", "10.02")
        for i, (p, q) in enumerate([("9.98", "0.5"), ("10.04", "3"), ("9.90", "2")]):
            ex.on_trade(T0 + i, p, q, i % 2 == 0)
        buy(ex, "1.000", "9.50", "c")
        ex.cancel_order(SYMBOL, orig_client_order_id="c")
        return [*ex.drain(), ex.my_trades(SYMBOL), ex.account()]

    assert run() == run()


def test_constructor_rejects_bad_configuration(clock: Any) -> None:
    with pytest.raises(ValueError, match="bnb_price"):
        PaperExchange(SYMBOL, clock=clock, commission_mode="bnb")
    with pytest.raises(ValueError, match="fill_model"):
        PaperExchange(SYMBOL, clock=clock, fill_model="sometimes")  # type: ignore[arg-type]
