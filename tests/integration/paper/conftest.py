"""A paper exchange served over HTTP on 127.0.0.1 to the real python-binance client.

Time is a settable clock shared by the server (its ``/api/v3/time``, limits and
timestamp checks) and the clients (signed timestamps), so tests move time instead of
sleeping. Every server stops at the end of its test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from binance.client import Client

from flipbot_dev.paper import BinanceRestApp, PaperExchange
from flipbot_dev.paper.faults import Fault, FaultHook
from flipbot_dev.paper.server import PaperHttpServer, http_client

T0 = 1_700_000_000_000
SYMBOL = "TRUMPUSDC"
KEY, SECRET = "PaperHttpKey01", "paper-http-secret-01"


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        """What a well-behaved client does with ``Retry-After``: time passes."""
        self.now += int(seconds * 1000)


@dataclass
class FaultPlan:
    """A fault hook: ``once(fault, method, path)`` arms one fault for the next match."""

    pending: list[tuple[Fault, str | None, str | None]] = field(default_factory=list)

    def once(self, fault: Fault, method: str | None = None, path: str | None = None) -> None:
        self.pending.append((fault, method, path))

    def __call__(self, method: str, path: str, _params: Any) -> Fault | None:
        for i, (fault, want_method, want_path) in enumerate(self.pending):
            if want_method in (None, method) and want_path in (None, path):
                del self.pending[i]
                return fault
        return None


@dataclass
class Loopback:
    clock: Clock
    exchange: PaperExchange
    app: BinanceRestApp
    server: PaperHttpServer
    faults: FaultPlan

    def client(self, key: str = KEY, secret: str = SECRET, **kwargs: Any) -> Client:
        return http_client(self.server.base_url, key, secret, clock=self.clock, **kwargs)


@pytest.fixture
def make_loopback() -> Iterator[Callable[..., Loopback]]:
    """Build and start a server: ``faults`` (default: the test's :class:`FaultPlan`),
    ``symbol_info`` (default: TRUMPUSDC's), other keywords to ``BinanceRestApp``."""
    servers: list[PaperHttpServer] = []

    def build(
        faults: FaultHook | None = None,
        *,
        symbol_info: dict[str, Any] | None = None,
        **app_kwargs: Any,
    ) -> Loopback:
        clock = Clock()
        exchange = PaperExchange(
            [symbol_info or SYMBOL], clock=clock, balances={"USDC": "1000", "TRUMP": "10"}
        )
        app = BinanceRestApp(exchange, api_key=KEY, api_secret=SECRET, **app_kwargs)
        exchange.on_book(T0, "10.00", "5", "10.01", "5")
        exchange.on_trade(T0, "10.00", "1", True)  # recorded by the app's market tape
        exchange.drain()
        plan = FaultPlan()
        server = PaperHttpServer(app, faults=faults or plan, idle_timeout_s=2.0).start()
        servers.append(server)
        return Loopback(clock, exchange, app, server, plan)

    yield build
    for server in servers:
        server.stop()


@pytest.fixture
def loopback(make_loopback: Callable[..., Loopback]) -> Loopback:
    return make_loopback()
