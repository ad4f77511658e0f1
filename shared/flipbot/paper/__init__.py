"""The paper exchange: a Binance spot matching engine and its REST emulation.

* :class:`PaperExchange` (``engine``): orders, fills, fees and balances of one account,
  driven by replayed trades and book tops; user-data events in :attr:`PaperExchange.outbox`.
* :class:`BinanceRestApp` (``rest``): Binance's REST endpoints over the engine.
* :class:`InProcessAdapter` / :func:`make_client` (``transport``): the real python-binance
  client talking to the app in process, with injectable faults.
* :func:`default_symbol_info` (``symbols``): realistic exchangeInfo entries.
"""

from flipbot.paper.engine import PaperExchange, fmt8, ws_api_envelope
from flipbot.paper.errors import BinanceError
from flipbot.paper.rest import BinanceRestApp
from flipbot.paper.symbols import default_symbol_info
from flipbot.paper.transport import Fault, FaultKind, InProcessAdapter, fault_once, make_client

__all__ = [
    "BinanceError",
    "BinanceRestApp",
    "Fault",
    "FaultKind",
    "InProcessAdapter",
    "PaperExchange",
    "default_symbol_info",
    "fault_once",
    "fmt8",
    "make_client",
    "ws_api_envelope",
]
