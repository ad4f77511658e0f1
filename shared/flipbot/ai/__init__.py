"""AI consultation without the SDK: the answer schema, the prompt, the market context,
model prices and the daily budget, the fallback wrapper, and a local fake endpoint.

Nothing here imports ``openai``; the adapter that does is
:mod:`flipbot.adapters.openai_decider`, imported only by the functions that consult.

* :mod:`flipbot.ai.answer` — the structured answer the model must give, and its mapping
  to a :class:`~flipbot.domain.decision.Decision`.
* :mod:`flipbot.ai.context` — the market context sent to the model, and optional
  context providers (Fear & Greed, news, ...) that never block a decision.
* :mod:`flipbot.ai.prompt` — the versioned system and user prompts.
* :mod:`flipbot.ai.cost` — USD per million tokens by model, and the daily budget.
* :mod:`flipbot.ai.fallback` — the wrapper that lets the offline strategy decide (or
  wait) whenever the AI is unavailable.
* :mod:`flipbot_dev.fake_openai` — a loopback server answering like
  ``POST /v1/chat/completions``, for tests and the digital twin.
"""
