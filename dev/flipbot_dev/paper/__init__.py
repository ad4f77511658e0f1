"""The paper exchange: a Binance spot matching engine, its REST API, its faults and servers.

* :class:`PaperExchange` (``engine``): orders, fills, fees and balances of one account,
  driven by replayed trades and book tops; user-data events in :attr:`PaperExchange.outbox`.
* :class:`BinanceRestApp` (``rest``): Binance's REST endpoints over the engine, with
  signatures, timestamps, request weight, order-count limits and IP bans.
* :class:`InProcessAdapter` / :func:`make_client` (``transport``): the real python-binance
  client talking to the app in process.
* ``faults``: injected failures and the named, seeded profiles (:data:`PROFILES`) that
  both the in-process transport and the HTTP server apply.
* ``server``: the app over HTTP on 127.0.0.1 and the market replay behind
  ``flipbot exchange serve``; ``ws``: the loopback WebSocket server it mounts;
  ``market_streams``: the market-stream messages it publishes; ``tape``: klines and
  24-hour tickers of the replayed trades.
* :func:`default_symbol_info` (``symbols``): realistic exchangeInfo entries.
"""

from flipbot_dev.paper.engine import PaperExchange, fmt8, ws_api_envelope
from flipbot_dev.paper.errors import BinanceError
from flipbot_dev.paper.faults import PROFILES, FaultInjector, FaultProfile
from flipbot_dev.paper.rest import BinanceRestApp
from flipbot_dev.paper.symbols import default_symbol_info
from flipbot_dev.paper.transport import Fault, FaultKind, InProcessAdapter, fault_once, make_client

__all__ = [
    "PROFILES",
    "BinanceError",
    "BinanceRestApp",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultProfile",
    "InProcessAdapter",
    "PaperExchange",
    "default_symbol_info",
    "fault_once",
    "fmt8",
    "make_client",
    "ws_api_envelope",
]
