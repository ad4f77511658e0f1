"""The composition root: wires ports to adapters, lazily, once per warm Lambda sandbox.

A function pays only for what it touches: the order-update handler never builds the
exchange client (python-binance) or a decision maker (OpenAI).

A handler gets its :class:`Container` from :func:`container`: the one its invoker passed
in the Lambda context (``context.services``: the local twin and tests pass theirs, built
with their own :class:`Wiring`), or in AWS this sandbox's own, built from the environment
with the production wiring. Nothing here is configured from outside at run time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from flipbot.ports import (
    Clock,
    DecisionMaker,
    ExchangePort,
    KillSwitch,
    Repositories,
    Services,
    WorkflowPort,
)
from flipbot.settings import STRATEGIES, Settings

Factory = Callable[["Container"], Any]


@dataclass(frozen=True)
class Wiring:
    """Parts replaced (``factories``: ``repos``, ``clock``, ``workflow``, ``kill_switch``,
    ``exchange``, ``binance_client``, ``decider``) or wrapped (``decorators``: ``repos``,
    ``exchange``, ``workflow``, e.g. to inject faults). Empty: production."""

    factories: Mapping[str, Factory] = field(default_factory=dict)
    decorators: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Container:
    """Everything a handler needs, each part built on first use."""

    def __init__(self, env: Mapping[str, str], wiring: Wiring | None = None) -> None:
        self.env = dict(env)
        self.wiring = wiring or Wiring()

    def _override(self, name: str) -> Any:
        factory = self.wiring.factories.get(name)
        return factory(self) if factory else None

    def _decorated(self, name: str, part: Any) -> Any:
        decorator = self.wiring.decorators.get(name)
        return decorator(part) if decorator else part

    @cached_property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @cached_property
    def repos(self) -> Repositories:
        from flipbot.adapters.dynamodb import repositories

        repos = self._override("repos") or repositories(
            self.settings.tables, region=self.env.get("AWS_REGION")
        )
        return self._decorated("repos", repos)  # type: ignore[no-any-return]

    @cached_property
    def clock(self) -> Clock:
        return self._override("clock") or SystemClock()

    @cached_property
    def workflow(self) -> WorkflowPort:
        override = self._override("workflow")
        if override:
            return self._decorated("workflow", override)  # type: ignore[no-any-return]
        import boto3

        from flipbot.adapters.aws import StepFunctionsWorkflow

        return self._decorated(  # type: ignore[no-any-return]
            "workflow",
            StepFunctionsWorkflow(boto3.client("stepfunctions"), self.settings.state_machine_arn),
        )

    @cached_property
    def kill_switch(self) -> KillSwitch:
        from flipbot.adapters.aws import SsmKillSwitch

        return self._override("kill_switch") or SsmKillSwitch(self.settings.kill_switch_parameter)

    @cached_property
    def exchange(self) -> ExchangePort:
        from flipbot.adapters.aws import read_secret
        from flipbot.adapters.binance_exchange import BinanceExchange

        override = self._override("exchange")
        if override:
            return self._decorated("exchange", override)  # type: ignore[no-any-return]
        creds = read_secret(self.settings.binance_secret_arn, "api_key", "api_secret")
        client_factory = self.wiring.factories.get("binance_client")
        if client_factory is not None:
            client = client_factory(self)(creds["api_key"], creds["api_secret"])
        else:
            client = _binance_client(
                creds["api_key"], creds["api_secret"], self.settings.binance_base_url
            )
        return self._decorated("exchange", BinanceExchange(client))  # type: ignore[no-any-return]

    @cached_property
    def decider(self) -> DecisionMaker:
        """The AI (OpenAI, behind the offline fallback) when a key is configured, given the
        configured sentiment signals (``FEAR_GREED_URL``, ``NEWS_SENTIMENT_URL``) as context.
        With ``AI_MODELS`` listing two or more models they vote; an endpoint whose host has
        its own key in the secret (``api_key@<host>``, or ``api_key@<host>:<port>`` when
        its URL names a port) is called with it, the others with
        ``api_key``.

        Without ``OPENAI_SECRET_ARN``, or when the secret has no usable ``api_key`` (absent,
        empty, the template's ``FILL_ME``) or cannot be read, the offline strategy decides
        and a log line says why; the key itself is never logged.
        """
        override = self._override("decider")
        if override:
            return override  # type: ignore[no-any-return]
        s = self.settings
        if s.strategy != "ai":
            return self._strategy(s.strategy, s)
        return self._ai_decider()

    def for_symbol(self, symbol: str) -> Services:
        """The parts as ``symbol``'s cycle chain uses them: this container's clients and
        caches (one AI budget for every symbol), with the symbol's own settings
        (:meth:`Settings.for_symbol`), kill switch and, for a strategy other than the
        AI, its own decision maker. The container itself is the stack's ``SYMBOL``'s."""
        if symbol == self.settings.symbol:
            return self
        views = self.__dict__.setdefault("_symbol_views", {})
        view = views.get(symbol)
        if view is None:
            view = views[symbol] = SymbolServices(self, self.settings.for_symbol(symbol))
        return view  # type: ignore[no-any-return]

    def for_cycle(self, cycle_id: str) -> Services:
        """:meth:`for_symbol` of the symbol whose chain ``cycle_id`` is in."""
        return self.for_symbol(self.settings.symbol_of_cycle(cycle_id))

    def _ai_decider(self) -> DecisionMaker:
        import logging

        from flipbot.domain.strategy import OfflineStrategy

        log = logging.getLogger(__name__)
        s = self.settings
        offline = OfflineStrategy()
        if not s.openai_secret_arn:
            log.warning("AI off: OPENAI_SECRET_ARN is not set; the offline strategy decides")
            return offline
        from flipbot.adapters.aws import read_secret
        from flipbot.adapters.openai_decider import build_ai_decider, is_placeholder_key

        try:
            secret = read_secret(s.openai_secret_arn, "api_key")
            api_key = secret["api_key"]
        except Exception as exc:  # missing key, unreadable secret: trade on, offline
            log.warning(
                "AI off: the OpenAI secret has no usable api_key (%s); "
                "the offline strategy decides",
                type(exc).__name__,
            )
            return offline
        if is_placeholder_key(api_key):
            log.warning(
                "AI off: the OpenAI secret's api_key is a placeholder; the offline strategy decides"
            )
            return offline
        from flipbot.adapters.openai_decider import parse_models
        from flipbot.adapters.sentiment import sentiment_providers

        return build_ai_decider(
            api_key,
            context_providers=sentiment_providers(
                s.fear_greed_url, s.news_sentiment_url, secret.get("news_token", "")
            ),
            fallback=offline,
            model=s.ai_model,
            base_url=s.openai_base_url,
            budget_usd=s.ai_daily_budget_usd,
            now_ms=self.clock.now_ms,
            mode=s.ai_fallback,
            price_table=s.ai_price_table,
            price_band=s.price_band,
            models=parse_models(s.ai_models),
            host_keys={
                name.partition("@")[2].lower(): str(value)
                for name, value in secret.items()
                if name.startswith("api_key@") and value
            },
        )

    def _strategy(self, name: str, settings: Settings) -> DecisionMaker:
        """A strategy chosen by the ``Strategy`` parameter (or a symbol's own), without AI."""
        from flipbot.domain.strategy import FixedMarginStrategy, OfflineStrategy

        if name == "offline":
            return OfflineStrategy()
        if name == "fixed":
            return FixedMarginStrategy()
        from flipbot.app.lab import build_decider

        built = build_decider(
            name,
            repos=self.repos,
            symbol=settings.symbol,
            limits=settings.session_limits,
        )
        if built is None:
            from flipbot.domain.errors import ConfigurationError

            raise ConfigurationError(f"STRATEGY={name!r}: choose one of {', '.join(STRATEGIES)}")
        return built


class SymbolServices:
    """One symbol's view of a :class:`Container` (see :meth:`Container.for_symbol`)."""

    def __init__(self, parent: Container, settings: Settings) -> None:
        self._parent = parent
        self.settings = settings

    @property
    def repos(self) -> Repositories:
        return self._parent.repos

    @property
    def clock(self) -> Clock:
        return self._parent.clock

    @property
    def workflow(self) -> WorkflowPort:
        return self._parent.workflow

    @property
    def exchange(self) -> ExchangePort:
        return self._parent.exchange

    @property
    def kill_switch(self) -> KillSwitch:
        return self._parent.kill_switch

    @cached_property
    def decider(self) -> DecisionMaker:
        """The AI's is the container's (one budget); a strategy's is the symbol's own, as
        its state (its session, its trades) is; a replaced one is built for this view."""
        s, parent = self.settings, self._parent
        factory = parent.wiring.factories.get("decider")
        if factory is not None:
            return factory(self)  # type: ignore[arg-type,no-any-return]
        if s.strategy == parent.settings.strategy == "ai":
            return parent.decider
        if s.strategy == "ai":
            return parent._ai_decider()
        return parent._strategy(s.strategy, s)

    def for_symbol(self, symbol: str) -> Services:
        return self._parent.for_symbol(symbol)

    def for_cycle(self, cycle_id: str) -> Services:
        return self._parent.for_cycle(cycle_id)


def _binance_client(api_key: str, api_secret: str, base_url: str) -> Any:
    from binance.client import Client

    client = Client(api_key, api_secret, ping=False)
    if base_url:
        client.API_URL = base_url.rstrip("/") + "/api"
    return client


class Containers:
    """Warm containers of one wiring, one per distinct environment: what a Lambda
    sandbox keeps between invocations (its clients, its caches, its AI budget)."""

    def __init__(self, wiring: Wiring | None = None) -> None:
        self.wiring = wiring or Wiring()
        self._warm: dict[tuple[tuple[str, str], ...], Container] = {}

    def for_env(self, env: Mapping[str, str]) -> Container:
        key = tuple(sorted((k, v) for k, v in env.items() if not k.startswith("_")))
        found = self._warm.get(key)
        if found is None:
            found = self._warm[key] = Container(env, self.wiring)
        return found


#: this sandbox's own containers (AWS): the production wiring, never replaced
_SANDBOX = Containers()


def container(context: Any = None) -> Container:
    """The handler's container: ``context.services`` when the invoker passed one, else
    this sandbox's warm one for its environment."""
    given = getattr(context, "services", None)
    if given is not None:
        return given  # type: ignore[no-any-return]
    return _SANDBOX.for_env(os.environ)
