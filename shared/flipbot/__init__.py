"""flipbot: an AI-consulted limit-order flip bot for Binance spot.

This is the runtime package: the SharedLayer's whole content and the listener image's,
what runs in AWS and nothing else. Layout: ``domain`` (pure rules), ``ports``
(interfaces), ``app`` (use cases called by the handlers), ``adapters`` (AWS, DynamoDB,
Binance, OpenAI), ``ai`` (prompt, context, cost), ``listener`` (the Fargate service).
The twin, the paper exchange, replay data and the command line are the development
package, :mod:`flipbot_dev` (``dev/``), which depends on this one and never the reverse.
"""

__version__ = "0.1.0"
