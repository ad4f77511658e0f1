"""flipbot: an AI-consulted limit-order flip bot for Binance spot.

The package is shipped as a Lambda layer and used by the listener container.
Layout: ``domain`` (pure rules), ``ports`` (interfaces), ``adapters`` (AWS, Binance,
OpenAI), ``app`` (use cases called by the handlers), ``paper`` (paper exchange),
``replay`` (market data), ``twin`` (the local digital twin of the deployment).
"""

__version__ = "0.1.0"
