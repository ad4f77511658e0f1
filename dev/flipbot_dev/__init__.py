"""flipbot's development package: everything that does not run in AWS.

* :mod:`flipbot_dev.twin` - the digital twin: the real template, state machine and
  handlers on moto, replayed against the paper exchange; chaos, the hostile world,
  invariants, reports and plots.
* :mod:`flipbot_dev.paper` - the paper exchange (Binance's REST and WebSocket wire formats).
* :mod:`flipbot_dev.replay` - market data for replays (bundled sample, kline files).
* :mod:`flipbot_dev.commands` and :mod:`flipbot_dev.cli` - the ``flipbot`` command line.
* :mod:`flipbot_dev.fake_openai` - a loopback server answering like the OpenAI API.

The runtime package (:mod:`flipbot`) never imports from here.
"""
