"""One fault definition, two transports: a profile and seed give the same outcomes in
process and over HTTP, request for request."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests
from binance.client import Client
from binance.exceptions import BinanceAPIException

from flipbot_dev.paper import BinanceRestApp, PaperExchange, make_client
from flipbot_dev.paper.faults import PROFILES
from flipbot_dev.paper.server import PaperHttpServer, http_client

from .conftest import KEY, SECRET, SYMBOL, T0, Clock

FAST = {"slow": {"slow_s": (0.001, 0.003)}}


def outcomes(client: Client, clock: Clock, exchange: PaperExchange) -> list[Any]:
    seen: list[Any] = []
    calls = [
        lambda i: client.ping(),
        lambda i: client.order_limit_buy(
            symbol=SYMBOL, quantity="1", price="9.50", newClientOrderId=f"p{i}"
        ),
        lambda i: client.get_order(symbol=SYMBOL, origClientOrderId=f"p{i}"),
        lambda i: client.cancel_order(symbol=SYMBOL, origClientOrderId=f"p{i}"),
    ]
    for i in range(60):
        call = calls[i % 4]
        try:
            call(i // 4)
            seen.append(200)
        except BinanceAPIException as error:
            seen.append((error.status_code, error.code))
        except requests.exceptions.RequestException:
            seen.append("no response")
        clock.sleep(0.4)
    seen.append(len(exchange.all_orders(SYMBOL)))
    return seen


def run(name: str, over_http: bool) -> list[Any]:
    clock = Clock()
    exchange = PaperExchange([SYMBOL], clock=clock, balances={"USDC": "1000"})
    exchange.on_book(T0, "10.00", "5", "10.01", "5")
    app = BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET)
    faults = dataclasses.replace(PROFILES[name], **FAST.get(name, {})).injector(11, app.clock)
    if not over_http:
        return outcomes(make_client(app, KEY, SECRET, faults=faults), clock, exchange)
    with PaperHttpServer(app, faults=faults, idle_timeout_s=1.0) as server:
        return outcomes(http_client(server.base_url, KEY, SECRET, clock=clock), clock, exchange)


@pytest.mark.parametrize("name", list(PROFILES))
def test_a_profile_fails_the_same_requests_in_process_and_over_http(name: str) -> None:
    in_process = run(name, over_http=False)
    assert in_process == run(name, over_http=True)
    if name != "none":  # 60 requests are enough for every profile to show itself
        assert any(o != 200 for o in in_process[:-1]) or name == "slow"
