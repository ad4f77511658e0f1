"""The listener: one asyncio process that turns Binance streams into EventBridge events.

It runs on ECS Fargate as ``flipbot-listen`` (image: ``listener/Dockerfile``).

* :mod:`~flipbot.listener.settings` - the environment, validated at start-up.
* :mod:`~flipbot.listener.core` - the pure, synchronous hot path: market messages ->
  indicators -> throttled ``PriceTicked`` -> a bounded outbound queue -> PutEvents
  batches; execution reports -> ``OrderUpdated``/``OrderFilled`` (never dropped).
* :mod:`~flipbot.listener.binance_ws` - URLs, request signing and one WebSocket
  connection (market streams or the WebSocket API user data stream).
* :mod:`~flipbot.listener.supervised` - one supervised connection, the life cycle both
  streams share: reconnects with back-off, silence, 24 h rotation, the hand-over on
  ``serverShutdown``, gap events.
* :mod:`~flipbot.listener.user_stream`, :mod:`~flipbot.listener.market_streams` - what
  each stream configures of it: subscription, frame reading, hand-over, gaps.
* :mod:`~flipbot.listener.service` - the process: the two streams, publishing,
  snapshots, metrics, health, SIGTERM drain.
* :mod:`~flipbot.listener.metrics` - heartbeat, lag and reconnect metrics.
* :mod:`~flipbot.listener.health` - the health endpoint and ``python -m
  flipbot.listener.health``, the container's health check.

This package imports nothing heavy on import: the health check runs every 30 seconds
on a quarter of a vCPU.
"""
