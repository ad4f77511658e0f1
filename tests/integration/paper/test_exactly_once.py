"""One intent, one exchange order: under the fault profile that drops responses after
accepting, the adapter and the app's lookup protocol never place a second order.

Each intent is placed the way the trade cycle places it: ``place_once`` from
``flipbot.app.orders`` (create-order; on an unknown outcome or a duplicate, look the
order up by its client order id; while not found within the grace period, do not send
again), retried a second later, as Step Functions retries the task, while the outcome is
not settled. The time the outcome became unknown is carried between retries as the
order item carries it. Half the intents rest on the book, half cross it
and fill at once: a filled order no longer blocks its client order id, so any blind
resend would show up as a second order (the control test proves the faults are that
adversarial). 50 seeds in process, 10 over HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from flipbot.adapters.binance_exchange import BinanceExchange
from flipbot.app.orders import place_once
from flipbot.domain.errors import DuplicateOrder, OrderNotSettled, RetryableError
from flipbot.domain.model import OrderRequest, OrderState, Side
from flipbot_dev.paper import BinanceRestApp, PaperExchange, make_client
from flipbot_dev.paper.faults import PROFILES, FaultInjector, FaultKind
from flipbot_dev.paper.server import PaperHttpServer, http_client

from .conftest import KEY, SECRET, SYMBOL, T0, Clock

D = Decimal
INTENTS = 8
MAX_ATTEMPTS = 30
DROPS = PROFILES["drop-after-accept"]

Place = Callable[[BinanceExchange, OrderRequest, Clock], OrderState]
Connect = Callable[[BinanceRestApp, Clock, FaultInjector], Any]


#: client order id -> when its outcome became unknown (the order item's field, here).
_UNKNOWN_SINCE: dict[str, int] = {}


def lookup_protocol(exchange: BinanceExchange, request: OrderRequest, clock: Clock) -> OrderState:
    key = f"{id(clock)}:{request.client_order_id}"
    try:
        return place_once(
            exchange,
            request,
            now_ms=clock(),
            unknown_since_ms=_UNKNOWN_SINCE.get(key, 0),
            grace_ms=10_000,
        )
    except OrderNotSettled as unsettled:
        _UNKNOWN_SINCE[key] = unsettled.unknown_since_ms
        raise


def blind_resend(exchange: BinanceExchange, request: OrderRequest, _clock: Clock) -> OrderState:
    """Resends after an unknown outcome without looking first (what must not be done)."""
    try:
        return exchange.place_limit(request)
    except DuplicateOrder:
        found = exchange.get_order(request.symbol, request.client_order_id)
        assert found is not None
        return found


def intent(seed: int, i: int) -> OrderRequest:
    """Even intents rest below the bid; odd ones cross the 10.01 ask and fill at once."""
    price = D("10.02") if i % 2 else D("9.90") - D("0.01") * i
    return OrderRequest(SYMBOL, Side.BUY, price, D("1"), f"fb-s{seed:03d}-B{i}")


def run_intents(
    seed: int, place: Place, connect: Connect, *, lag_ms: int = 0
) -> tuple[PaperExchange, FaultInjector]:
    clock = Clock()
    paper = PaperExchange([SYMBOL], clock=clock, balances={"USDC": "1000"})
    paper.on_book(T0, "10.00", "50", "10.01", "50")
    app = BinanceRestApp(paper, api_key=KEY, api_secret=SECRET, lookup_delay_ms=lag_ms)
    injector = DROPS.injector(seed, app.clock)
    adapter = BinanceExchange(connect(app, clock, injector))
    for i in range(INTENTS):
        request = intent(seed, i)
        for _ in range(MAX_ATTEMPTS):
            try:
                placed = place(adapter, request, clock)
                break
            except RetryableError:
                clock.sleep(1)  # the state machine's retry interval
        else:
            pytest.fail(f"{request.client_order_id}: not settled after {MAX_ATTEMPTS} attempts")
        assert placed.client_order_id == request.client_order_id
        clock.sleep(1)
    return paper, injector


def orders_per_intent(paper: PaperExchange) -> Counter[str]:
    return Counter(o["clientOrderId"] for o in paper.all_orders(SYMBOL))


def assert_one_order_per_intent(paper: PaperExchange, seed: int) -> None:
    per_id = orders_per_intent(paper)
    assert sorted(per_id) == sorted(intent(seed, i).client_order_id for i in range(INTENTS))
    assert set(per_id.values()) == {1}, f"seed {seed}: {per_id}"
    assert {o["status"] for o in paper.all_orders(SYMBOL)} == {"NEW", "FILLED"}


def in_process(app: BinanceRestApp, _clock: Clock, injector: FaultInjector) -> Any:
    return make_client(app, KEY, SECRET, faults=injector)


def test_no_second_order_per_intent_over_50_seeds_in_process() -> None:
    dropped = 0
    for seed in range(50):
        paper, injector = run_intents(seed, lookup_protocol, in_process)
        assert_one_order_per_intent(paper, seed)
        dropped += injector.injected.get(FaultKind.DROP_RESPONSE_AFTER_PROCESSING, 0)
    assert dropped >= 0.2 * 50 * INTENTS  # the profile really dropped accepted orders


def test_no_second_order_per_intent_over_http() -> None:
    servers: list[PaperHttpServer] = []

    def over_http(app: BinanceRestApp, clock: Clock, injector: FaultInjector) -> Any:
        server = PaperHttpServer(app, faults=injector, idle_timeout_s=1.0).start()
        servers.append(server)
        return http_client(server.base_url, KEY, SECRET, clock=clock)

    dropped = 0
    try:
        for seed in range(10):
            paper, injector = run_intents(seed, lookup_protocol, over_http)
            assert_one_order_per_intent(paper, seed)
            dropped += injector.injected.get(FaultKind.DROP_RESPONSE_AFTER_PROCESSING, 0)
    finally:
        for server in servers:
            server.stop()
    assert dropped >= 10


def test_control_a_blind_resend_does_place_second_orders() -> None:
    duplicated = 0
    for seed in range(10):
        paper, _ = run_intents(seed, blind_resend, in_process)
        duplicated += sum(n - 1 for n in orders_per_intent(paper).values())
    assert duplicated > 0


def test_resting_orders_survive_binances_lookup_lag() -> None:
    """An early -2013 after a lost response: the retry meets -2010 while the order is
    open, and the lookup finds it once visible."""

    for seed in range(20):
        clock = Clock()
        paper = PaperExchange([SYMBOL], clock=clock, balances={"USDC": "1000"})
        paper.on_book(T0, "10.00", "50", "10.01", "50")
        app = BinanceRestApp(paper, api_key=KEY, api_secret=SECRET, lookup_delay_ms=2_500)
        adapter = BinanceExchange(in_process(app, clock, DROPS.injector(seed, app.clock)))
        for i in range(0, INTENTS, 2):
            request = intent(seed, i)
            for _ in range(MAX_ATTEMPTS):
                try:
                    lookup_protocol(adapter, request, clock)
                    break
                except RetryableError:
                    clock.sleep(1)
        assert set(orders_per_intent(paper).values()) == {1}


def test_an_early_not_found_stays_unknown_even_when_the_order_filled_meanwhile() -> None:
    for seed in range(20):
        paper, _ = run_intents(seed, lookup_protocol, in_process, lag_ms=1_500)
        assert_one_order_per_intent(paper, seed)
