"""Settings of the Lambda functions, read once from the environment and validated.

A missing or malformed variable raises ``ConfigurationError`` naming the variable and
the offending value, at cold start rather than halfway through a cycle.

:class:`Settings` is what the functions share (one stack, one set of variables); each
function has its own model on top of it (:data:`FUNCTION_SETTINGS`), naming what that
function cannot run without: the order-update and reconcile functions start cycles and so
need ``STATE_MACHINE_ARN``, every function reads the exchange and needs
``BINANCE_SECRET_ARN``. A handler checks its model at init (:func:`check_at_init`), so a
function deployed without what it needs fails its cold start with the variable's name,
not its first order.

The listener's settings are :mod:`flipbot.listener.settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flipbot.domain.errors import ConfigurationError
from flipbot.domain.order_ids import DEFAULT_PREFIX, PREFIX_PATTERN
from flipbot.domain.symbols import SYMBOL_PATTERN, parse_symbols, symbols_problem

if TYPE_CHECKING:
    from flipbot.domain.breakers import BreakerLimits
    from flipbot.domain.risk import RiskRules
    from flipbot.domain.strategies_lab import SessionLimits

NO_SELL_TIMEOUT = 99_999_999
"""A sell's ``timeout_seconds`` without a stop-loss: Step Functions' own default for a task
(about three years), i.e. none; reconcile's heartbeats keep the resting sell alive."""


class Tables(BaseModel):
    model_config = ConfigDict(frozen=True)

    cycles: str
    orders: str
    fills: str
    trades: str
    consultations: str
    market: str


#: the decision makers a stack or a symbol can trade with (``STRATEGY``)
STRATEGIES = ("ai", "offline", "fixed", "adaptive", "ma-cross")


class SymbolOverrides(BaseModel):
    """One symbol's own values (``SYMBOL_SETTINGS``); what is None is the stack's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quote_per_cycle: Decimal | None = Field(default=None, gt=0)
    strategy: str | None = None
    #: ``off``: no stop-loss for this symbol whatever the stack's
    stop_loss: Decimal | Literal["off"] | None = None

    @field_validator("strategy")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in STRATEGIES:
            raise ValueError(f"strategy={value!r}: choose {', '.join(STRATEGIES)}")
        return value

    @field_validator("stop_loss")
    @classmethod
    def _fraction(cls, value: Decimal | str | None) -> Decimal | str | None:
        if isinstance(value, Decimal) and not 0 < value < 1:
            raise ValueError(f"stop_loss={value} must be between 0 and 1, or off")
        return value


class Settings(BaseModel):
    """Everything a function needs to know; see docs/ARCHITECTURE.md for each variable."""

    model_config = ConfigDict(frozen=True)

    #: the symbol these settings trade: the stack's ``SYMBOL``, or one of ``SYMBOLS`` in
    #: the view :meth:`for_symbol` gives
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    #: every symbol the stack trades, a cycle chain each (``SYMBOLS``; empty: ``SYMBOL``)
    symbols: tuple[str, ...] = ()
    #: per-symbol values over the stack's (``SYMBOL_SETTINGS``): quote, strategy, stop-loss
    symbol_overrides: dict[str, SymbolOverrides] = Field(default_factory=dict)
    #: set by :meth:`for_symbol`: the stack's ``SYMBOL`` when this view trades another
    symbols_home: str = ""
    #: the stack's own quote per cycle, strategy and stop-loss, before ``SYMBOL``'s
    #: ``SYMBOL_SETTINGS`` (empty: these settings' own)
    stack_values: dict[str, Any] = Field(default_factory=dict)
    #: ``STOP_LOSS`` was set: a symbol's own strategy does not bring its own stop-loss
    stop_loss_given: bool = True
    #: the most quote all symbols' open cycles may have at risk together (None: no cap)
    portfolio_quote_cap: Decimal | None = Field(default=None, gt=0)
    quote_per_cycle: Decimal = Field(gt=0)
    min_confidence: float = Field(ge=0, le=1)
    min_profit: Decimal = Field(ge=0)
    target_profit: Decimal = Field(ge=0)
    sell_mode: Literal["immediate", "on_profit"] = "immediate"
    #: confident: a sell only from an answer that passes every guard (else wait, ask
    #: again); floor: a rejected answer is replaced by a sell at the profit floor
    sell_rule: Literal["confident", "floor"] = "confident"
    price_band: Decimal = Field(gt=0, lt=1)
    buy_order_timeout_seconds: int = Field(default=900, gt=0)
    sell_heartbeat_seconds: int = Field(default=7200, gt=0)
    reconsult_seconds: int = Field(default=60, gt=0)
    strategy: str = "ai"
    stop_loss: Decimal | None = Field(default=None, gt=0, lt=1)
    sell_recheck_seconds: int = Field(default=300, ge=10)
    #: a sell aims at the target profit first, then is re-priced this many times toward
    #: the floor, each after the decision's timeout bounded to [min, max] seconds; 0: a
    #: sell rests where it was placed until it fills (see :attr:`reprice`)
    sell_reprice_steps: int = Field(default=3, ge=0, le=20)
    sell_reprice_min_seconds: int = Field(default=300, ge=60)
    sell_reprice_max_seconds: int = Field(default=3600, ge=60)
    #: circuit breakers (None: off); see flipbot.domain.breakers and :attr:`breaker_limits`
    breaker_max_volatility: Decimal | None = Field(default=Decimal("0.03"), gt=0)
    #: the risk manager (see :mod:`flipbot.domain.risk`); None: that check is off
    risk_max_slippage: Decimal | None = Field(default=Decimal("0.002"), gt=0)
    risk_min_margin: Decimal | None = Field(default=Decimal("0.003"), gt=0)
    risk_depth_band: Decimal = Field(default=Decimal("0.005"), ge=0, lt=1)
    risk_max_depth_share: Decimal | None = Field(default=Decimal("0.1"), gt=0, le=1)
    breaker_max_failures: int | None = Field(default=5, ge=1)
    breaker_cooldown_seconds: int = Field(default=900, ge=60)
    breaker_daily_loss: Decimal | None = Field(default=None, gt=0)
    breaker_max_drawdown: Decimal | None = Field(default=None, gt=0)
    breaker_stop_loss_cooldown_seconds: int | None = Field(default=3600, ge=0)
    tables: Tables
    event_bus_name: str = ""
    binance_secret_arn: str = ""
    openai_secret_arn: str = ""
    binance_base_url: str = ""
    ai_model: str = "gpt-4o-mini"
    #: models that vote, comma-separated ``model`` or ``model@base_url`` (see
    #: :mod:`flipbot.ai.voting`); empty: ``ai_model`` decides; one entry: that model alone
    ai_models: str = ""
    openai_base_url: str = ""
    ai_daily_budget_usd: Decimal = Field(default=Decimal("1"), ge=0)
    ai_fallback: Literal["fallback", "wait"] = "fallback"
    ai_price_table: str = Field(default="", description='JSON {"model": [usd_in, usd_out]}')
    #: outside signals added to the AI's context (empty: off); the news source's bearer
    #: token, when it needs one, is the OpenAI secret's optional ``news_token``
    fear_greed_url: str = ""
    news_sentiment_url: str = ""
    kill_switch_parameter: str = ""
    max_cycles: int = Field(default=0, ge=0, description="0 = no limit")
    state_machine_arn: str = ""
    recovery_open_buy: Literal["wait", "cancel"] = "cancel"
    manual_sell_margin: Decimal = Field(default=Decimal("0.01"), ge=0)
    manual_dry_run: bool = False
    order_id_prefix: str = DEFAULT_PREFIX
    #: the ma-cross session's stops (quote; None = off); see :attr:`session_limits`
    session_profit_target: Decimal | None = None
    session_max_loss: Decimal | None = None
    session_time_limit_hours: Decimal | None = Decimal(168)

    @model_validator(mode="after")
    def _symbols(self) -> Settings:
        if not self.symbols:
            object.__setattr__(self, "symbols", (self.symbol,))
        problem = symbols_problem(self.symbols)
        if problem:
            raise ValueError(problem)
        from flipbot.domain.order_ids import BINANCE_CLIENT_ORDER_ID, longest_cycle_order_id

        for symbol in self.symbols:
            longest = longest_cycle_order_id(self.order_id_prefix, self.symbol_part(symbol))
            if not BINANCE_CLIENT_ORDER_ID.match(longest):
                raise ValueError(
                    f"SYMBOLS has {symbol!r}: its client order ids ({longest!r}, "
                    f"{len(longest)} characters) would not fit Binance's 36; "
                    "use a shorter ORDER_ID_PREFIX"
                )
        return self

    @property
    def home_symbol(self) -> str:
        """The stack's ``SYMBOL``: its cycle ids carry no symbol (``c000001``)."""
        return self.symbols_home if self.symbols_home else self.symbol

    def symbol_part(self, symbol: str) -> str:
        """What a cycle id of ``symbol`` carries: nothing for the stack's ``SYMBOL``."""
        return "" if symbol == self.home_symbol else symbol

    def symbol_of_cycle(self, cycle_id: str) -> str:
        """The symbol whose chain ``cycle_id`` is in."""
        from flipbot.domain.cycle import cycle_symbol_part

        return cycle_symbol_part(cycle_id) or self.home_symbol

    def for_symbol(self, symbol: str) -> Settings:
        """These settings as ``symbol``'s chain sees them: its symbol, and its own quote,
        strategy and stop-loss where ``SYMBOL_SETTINGS`` gives them (an entry stays in
        force for a symbol removed from ``SYMBOLS`` while its cycle finishes). A symbol's
        own strategy brings its own stop-loss unless ``STOP_LOSS`` or the entry set one."""
        if symbol == self.symbol:
            return self
        return self.model_copy(
            update={"symbol": symbol, "symbols_home": self.home_symbol, **self._own(symbol)}
        )

    def _own(self, symbol: str) -> dict[str, Any]:
        """``symbol``'s quote per cycle, strategy and stop-loss (see :meth:`for_symbol`)."""
        values = self.stack_values or {
            "quote_per_cycle": self.quote_per_cycle,
            "strategy": self.strategy,
            "stop_loss": self.stop_loss,
        }
        update = {**values, "stack_values": values}
        own = self.symbol_overrides.get(symbol)
        if own is None:
            return update
        if own.quote_per_cycle is not None:
            update["quote_per_cycle"] = own.quote_per_cycle
        if own.strategy is not None:
            update["strategy"] = own.strategy
        if own.stop_loss == "off":
            update["stop_loss"] = None
        elif own.stop_loss is not None:
            update["stop_loss"] = own.stop_loss
        elif own.strategy is not None and not self.stop_loss_given:
            from flipbot.domain.guards import STRATEGY_STOP_LOSS

            update["stop_loss"] = STRATEGY_STOP_LOSS.get(own.strategy)
        return update

    def trades(self, symbol: str) -> bool:
        """``symbol`` is one of ``SYMBOLS``: its chain may start new cycles."""
        return symbol in self.symbols

    @field_validator("fear_greed_url", "news_sentiment_url")
    @classmethod
    def _signal_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("an http(s) URL with a host, or empty to leave the signal off")
        return value

    @field_validator("order_id_prefix")
    @classmethod
    def _order_id_prefix(cls, value: str) -> str:
        if not re.fullmatch(PREFIX_PATTERN, value):
            raise ValueError(
                "a client order id prefix is 'fb' and up to 13 lowercase letters or digits "
                "(e.g. fb1a2b3c4d), so that '<prefix>-m<orderId>' fits Binance's 36 characters"
            )
        return value

    @property
    def sell_timeout_seconds(self) -> int:
        """How long a sell rests before the state machine checks it against the stop-loss;
        without a stop-loss, :data:`NO_SELL_TIMEOUT` (it rests until it fills)."""
        return self.sell_recheck_seconds if self.stop_loss is not None else NO_SELL_TIMEOUT

    @model_validator(mode="after")
    def _reprice_bounds(self) -> Settings:
        if self.sell_reprice_min_seconds > self.sell_reprice_max_seconds:
            raise ValueError(
                f"SELL_REPRICE_MIN_SECONDS={self.sell_reprice_min_seconds} is above "
                f"SELL_REPRICE_MAX_SECONDS={self.sell_reprice_max_seconds}"
            )
        return self

    def reprice_seconds(self, asked_seconds: int) -> int:
        """How long a sell rests before it is re-priced: the decision's ``timeout_seconds``
        bounded to [SELL_REPRICE_MIN_SECONDS, SELL_REPRICE_MAX_SECONDS]."""
        return min(max(asked_seconds, self.sell_reprice_min_seconds), self.sell_reprice_max_seconds)

    @property
    def floor_margin(self) -> Decimal:
        """The profit floor's margin over entry plus fees: ``MIN_PROFIT``, or
        ``RISK_MIN_MARGIN`` when that is larger."""
        return max(self.min_profit, self.risk_min_margin or Decimal(0))

    @property
    def risk_rules(self) -> RiskRules:
        """The risk manager's figures (``RISK_*``; each but the band ``off`` to disable it)."""
        from flipbot.domain.risk import RiskRules

        return RiskRules(
            max_slippage=self.risk_max_slippage,
            min_margin=self.risk_min_margin,
            depth_band=self.risk_depth_band,
            max_depth_share=self.risk_max_depth_share,
        )

    @property
    def breaker_limits(self) -> BreakerLimits:
        """The circuit breakers' limits (``BREAKER_*``; each ``off`` to disable it)."""
        from flipbot.domain.breakers import BreakerLimits

        cooldown = self.breaker_stop_loss_cooldown_seconds
        return BreakerLimits(
            max_volatility=self.breaker_max_volatility,
            max_failures=self.breaker_max_failures,
            cooldown_ms=self.breaker_cooldown_seconds * 1000,
            daily_loss=self.breaker_daily_loss,
            max_drawdown=self.breaker_max_drawdown,
            stop_loss_cooldown_ms=None if cooldown is None else cooldown * 1000,
        )

    #: variables this model cannot do without, beyond the symbol and the tables
    requires: ClassVar[tuple[str, ...]] = ()

    @property
    def session_limits(self) -> SessionLimits:
        """When the ma-cross session stops buying: ``SESSION_PROFIT_TARGET`` (realized P&L
        after fees and AI cost), ``SESSION_MAX_LOSS`` (realized plus the open position) and
        ``SESSION_TIME_LIMIT_HOURS`` from the first cycle; each ``off`` to disable it."""
        from flipbot.domain.strategies_lab import SessionLimits

        hours = self.session_time_limit_hours
        return SessionLimits(
            profit_target=self.session_profit_target,
            max_loss=self.session_max_loss,
            time_limit_ms=None if hours is None else int(hours * 3_600_000),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build from environment variables; raise ``ConfigurationError`` naming what is wrong."""
        required = ["SYMBOL", *_TABLE_VARS.values(), *cls.requires]
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        raw: dict[str, Any] = {
            "symbol": env["SYMBOL"],
            "symbols": parse_symbols(env.get("SYMBOLS", "")),
            "symbol_overrides": _symbol_overrides(env.get("SYMBOL_SETTINGS", "")),
            "portfolio_quote_cap": _session(env, "PORTFOLIO_QUOTE_CAP", Decimal(0)) or None,
            "quote_per_cycle": _decimal(env, "QUOTE_PER_CYCLE", "10"),
            "min_confidence": env.get("MIN_CONFIDENCE", "0.8"),
            "min_profit": _decimal(env, "MIN_PROFIT", "0.01"),
            "target_profit": _decimal(env, "TARGET_PROFIT", "0.05"),
            "sell_mode": env.get("SELL_MODE", "immediate"),
            "sell_rule": env.get("SELL_RULE", "confident") or "confident",
            "price_band": _decimal(env, "PRICE_BAND", "0.02"),
            "buy_order_timeout_seconds": env.get("BUY_ORDER_TIMEOUT_SECONDS", "900"),
            "sell_heartbeat_seconds": env.get("SELL_HEARTBEAT_SECONDS", "7200"),
            "reconsult_seconds": env.get("RECONSULT_SECONDS", "60"),
            "strategy": env.get("STRATEGY", "ai") or "ai",
            "stop_loss": _stop_loss(env),
            "sell_recheck_seconds": env.get("SELL_RECHECK_SECONDS", "300") or "300",
            "sell_reprice_steps": env.get("SELL_REPRICE_STEPS", "3") or "3",
            "sell_reprice_min_seconds": env.get("SELL_REPRICE_MIN_SECONDS", "300") or "300",
            "sell_reprice_max_seconds": env.get("SELL_REPRICE_MAX_SECONDS", "3600") or "3600",
            "tables": {key: env[var] for key, var in _TABLE_VARS.items()},
            "event_bus_name": env.get("EVENT_BUS_NAME", ""),
            "binance_secret_arn": env.get("BINANCE_SECRET_ARN", ""),
            "openai_secret_arn": env.get("OPENAI_SECRET_ARN", ""),
            "binance_base_url": env.get("BINANCE_BASE_URL", ""),
            "ai_model": env.get("AI_MODEL", "gpt-4o-mini") or "gpt-4o-mini",
            "ai_models": env.get("AI_MODELS", ""),
            "openai_base_url": env.get("OPENAI_BASE_URL", ""),
            "ai_daily_budget_usd": _decimal(env, "AI_DAILY_BUDGET_USD", "1"),
            "ai_fallback": env.get("AI_FALLBACK", "fallback") or "fallback",
            "ai_price_table": _price_table(env.get("AI_PRICE_TABLE", "")),
            "fear_greed_url": env.get("FEAR_GREED_URL", ""),
            "news_sentiment_url": env.get("NEWS_SENTIMENT_URL", ""),
            "kill_switch_parameter": env.get("KILL_SWITCH_PARAMETER", ""),
            "max_cycles": env.get("MAX_CYCLES", "0"),
            "state_machine_arn": env.get("STATE_MACHINE_ARN", ""),
            "recovery_open_buy": env.get("RECOVERY_OPEN_BUY", "cancel") or "cancel",
            "manual_sell_margin": _decimal(env, "MANUAL_SELL_MARGIN", "0.01"),
            "manual_dry_run": env.get("MANUAL_DRY_RUN", "false").strip().lower()
            in {"1", "true", "yes", "on"},
            "order_id_prefix": env.get("ORDER_ID_PREFIX") or DEFAULT_PREFIX,
        }
        quote = _decimal(env, "QUOTE_PER_CYCLE", "10")
        raw["session_profit_target"] = _session(env, "SESSION_PROFIT_TARGET", quote / 2)
        raw["session_max_loss"] = _session(env, "SESSION_MAX_LOSS", quote / 5)
        raw["session_time_limit_hours"] = _session(env, "SESSION_TIME_LIMIT_HOURS", Decimal(168))
        raw["breaker_max_volatility"] = _session(env, "BREAKER_MAX_VOLATILITY", Decimal("0.03"))
        raw["risk_max_slippage"] = _session(env, "RISK_MAX_SLIPPAGE", Decimal("0.002"))
        raw["risk_min_margin"] = _session(env, "RISK_MIN_MARGIN", Decimal("0.003"))
        raw["risk_depth_band"] = _decimal(env, "RISK_DEPTH_BAND", "0.005")
        raw["risk_max_depth_share"] = _session(env, "RISK_MAX_DEPTH_SHARE", Decimal("0.1"))
        raw["breaker_max_failures"] = _whole_or_off(env, "BREAKER_MAX_FAILURES", 5)
        raw["breaker_cooldown_seconds"] = env.get("BREAKER_COOLDOWN_SECONDS", "900") or "900"
        raw["breaker_daily_loss"] = _session(env, "BREAKER_DAILY_LOSS", quote / 2)
        raw["breaker_max_drawdown"] = _session(env, "BREAKER_MAX_DRAWDOWN", quote)
        raw["breaker_stop_loss_cooldown_seconds"] = _whole_or_off(
            env, "BREAKER_STOP_LOSS_COOLDOWN_SECONDS", 3600
        )
        raw["stop_loss_given"] = bool((env.get("STOP_LOSS") or "").strip())
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise ConfigurationError(f"invalid configuration: {problems}") from exc
        # SYMBOL's own SYMBOL_SETTINGS entry, over the stack's values
        return settings.model_copy(update=settings._own(settings.symbol))


class ConsultAiSettings(Settings):
    """ConsultAiFunction: decides each leg; reads the book and the balances. Only it reads
    ``AI_MODELS``, so only it refuses a bad one at cold start: a typo there stops the
    consultations, not the functions that book fills and cancel orders."""

    requires = ("BINANCE_SECRET_ARN",)

    @field_validator("ai_models")
    @classmethod
    def _models_parse(cls, value: str) -> str:
        if value.strip():
            from flipbot.ai.voting import parse_ai_models

            try:
                parse_ai_models(value)
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value


class PlaceOrderSettings(Settings):
    """PlaceOrderFunction: places the limit orders."""

    requires = ("BINANCE_SECRET_ARN",)


class CancelOrderSettings(Settings):
    """CancelOrderFunction: cancels an order and reads what filled."""

    requires = ("BINANCE_SECRET_ARN",)


class OnOrderUpdateSettings(Settings):
    """OnOrderUpdateFunction: confirms fills with the exchange; starts the cycle that
    follows a manual buy."""

    requires = ("BINANCE_SECRET_ARN", "STATE_MACHINE_ARN")


class RecordTradeSettings(Settings):
    """RecordTradeFunction: books a closed cycle from the exchange's trades."""

    requires = ("BINANCE_SECRET_ARN",)


class ReconcileSettings(Settings):
    """ReconcileFunction: checks orders against the exchange; stops and restarts cycles."""

    requires = ("BINANCE_SECRET_ARN", "STATE_MACHINE_ARN")


#: each function of the template (logical id) and its settings model
FUNCTION_SETTINGS: dict[str, type[Settings]] = {
    "ConsultAiFunction": ConsultAiSettings,
    "PlaceOrderFunction": PlaceOrderSettings,
    "CancelOrderFunction": CancelOrderSettings,
    "OnOrderUpdateFunction": OnOrderUpdateSettings,
    "RecordTradeFunction": RecordTradeSettings,
    "ReconcileFunction": ReconcileSettings,
}


def check_at_init(model: type[Settings], env: Mapping[str, str] | None = None) -> None:
    """Validate ``model`` against the environment when running in a Lambda sandbox (Lambda
    sets ``AWS_LAMBDA_FUNCTION_NAME``): a bad or missing variable fails the cold start with
    ``ConfigurationError``. Outside a sandbox (a module imported by a tool) it does nothing."""
    env = os.environ if env is None else env
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        model.from_env(env)


_TABLE_VARS = {
    "cycles": "CYCLES_TABLE",
    "orders": "ORDERS_TABLE",
    "fills": "FILLS_TABLE",
    "trades": "TRADES_TABLE",
    "consultations": "CONSULTATIONS_TABLE",
    "market": "MARKET_TABLE",
}
_ENV_NAME = {
    "symbol": "SYMBOL",
    "symbols": "SYMBOLS",
    "symbol_overrides": "SYMBOL_SETTINGS",
    "portfolio_quote_cap": "PORTFOLIO_QUOTE_CAP",
    "quote_per_cycle": "QUOTE_PER_CYCLE",
    "min_confidence": "MIN_CONFIDENCE",
    "min_profit": "MIN_PROFIT",
    "target_profit": "TARGET_PROFIT",
    "sell_mode": "SELL_MODE",
    "sell_rule": "SELL_RULE",
    "price_band": "PRICE_BAND",
    "buy_order_timeout_seconds": "BUY_ORDER_TIMEOUT_SECONDS",
    "sell_heartbeat_seconds": "SELL_HEARTBEAT_SECONDS",
    "max_cycles": "MAX_CYCLES",
    "stop_loss": "STOP_LOSS",
    "sell_recheck_seconds": "SELL_RECHECK_SECONDS",
    "sell_reprice_steps": "SELL_REPRICE_STEPS",
    "sell_reprice_min_seconds": "SELL_REPRICE_MIN_SECONDS",
    "sell_reprice_max_seconds": "SELL_REPRICE_MAX_SECONDS",
    "ai_daily_budget_usd": "AI_DAILY_BUDGET_USD",
    "ai_fallback": "AI_FALLBACK",
    "ai_models": "AI_MODELS",
    "fear_greed_url": "FEAR_GREED_URL",
    "news_sentiment_url": "NEWS_SENTIMENT_URL",
    "order_id_prefix": "ORDER_ID_PREFIX",
    "session_profit_target": "SESSION_PROFIT_TARGET",
    "session_max_loss": "SESSION_MAX_LOSS",
    "session_time_limit_hours": "SESSION_TIME_LIMIT_HOURS",
    "breaker_max_volatility": "BREAKER_MAX_VOLATILITY",
    "risk_max_slippage": "RISK_MAX_SLIPPAGE",
    "risk_min_margin": "RISK_MIN_MARGIN",
    "risk_depth_band": "RISK_DEPTH_BAND",
    "risk_max_depth_share": "RISK_MAX_DEPTH_SHARE",
    "breaker_max_failures": "BREAKER_MAX_FAILURES",
    "breaker_cooldown_seconds": "BREAKER_COOLDOWN_SECONDS",
    "breaker_daily_loss": "BREAKER_DAILY_LOSS",
    "breaker_max_drawdown": "BREAKER_MAX_DRAWDOWN",
    "breaker_stop_loss_cooldown_seconds": "BREAKER_STOP_LOSS_COOLDOWN_SECONDS",
}


#: settings whose value is never repeated in an error (a URL's query may hold a key)
_UNQUOTED = frozenset({"fear_greed_url", "news_sentiment_url", "ai_models"})


def _problem(error: Any) -> str:
    if not error["loc"]:  # a rule between settings: its message names them
        return str(error["msg"]).removeprefix("Value error, ")
    field = str(error["loc"][0])
    if field == "symbol_overrides" and len(error["loc"]) > 2:
        message = str(error["msg"]).removeprefix("Value error, ")
        key = {v: k for k, v in _OVERRIDE_KEYS.items()}.get(str(error["loc"][2]), "")
        where = f"{error['loc'][1]}:{key or error['loc'][2]}"
        return f"SYMBOL_SETTINGS {where}={error.get('input')!r}: {message}"
    shown = "(not shown)" if field in _UNQUOTED else repr(error.get("input"))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{_ENV_NAME.get(field, field)}={shown}: {message}"


def _price_table(raw: str) -> str:
    """``AI_PRICE_TABLE`` as given, once it parses (``ConfigurationError`` otherwise)."""
    if raw.strip():
        from flipbot.ai.cost import parse_price_table

        parse_price_table(raw)
    return raw


_OVERRIDE_KEYS = {"quote": "quote_per_cycle", "strategy": "strategy", "stop_loss": "stop_loss"}


def _symbol_overrides(raw: str) -> dict[str, dict[str, str]]:
    """``SYMBOL_SETTINGS``: ``SYMBOL:key=value,key=value;SYMBOL:...`` with the keys
    ``quote``, ``strategy`` and ``stop_loss`` (a fraction or ``off``), e.g.
    ``BTCUSDC:quote=20,strategy=ma-cross;ETHUSDC:stop_loss=0.03``."""
    found: dict[str, dict[str, str]] = {}
    for entry in (e.strip() for e in raw.split(";")):
        if not entry:
            continue
        symbol, colon, pairs = entry.partition(":")
        symbol = symbol.strip().upper()
        if not colon or not symbol:
            raise ConfigurationError(
                f"SYMBOL_SETTINGS entry {entry!r}: write SYMBOL:key=value,... "
                "(e.g. BTCUSDC:quote=20,strategy=ma-cross)"
            )
        if symbol in found:
            raise ConfigurationError(f"SYMBOL_SETTINGS names {symbol} twice")
        values: dict[str, str] = {}
        for pair in (p.strip() for p in pairs.split(",")):
            key, equals, value = pair.partition("=")
            key, value = key.strip().lower(), value.strip()
            if key not in _OVERRIDE_KEYS or not equals or not value:
                raise ConfigurationError(
                    f"SYMBOL_SETTINGS {symbol}: {pair!r} is not one of "
                    f"{', '.join(k + '=...' for k in _OVERRIDE_KEYS)}"
                )
            if _OVERRIDE_KEYS[key] in values:
                raise ConfigurationError(f"SYMBOL_SETTINGS {symbol}: {key} is given twice")
            values[_OVERRIDE_KEYS[key]] = value.lower() if key == "stop_loss" else value
        found[symbol] = values
    return found


def _stop_loss(env: Mapping[str, str]) -> Decimal | None:
    """``STOP_LOSS``: empty = the strategy's own (ma-cross 1 %, the others none);
    ``off`` = never; otherwise a fraction of the entry price, e.g. ``0.02``."""
    raw = (env.get("STOP_LOSS") or "").strip().lower()
    if raw == "off":
        return None
    if not raw:
        from flipbot.domain.guards import STRATEGY_STOP_LOSS

        return STRATEGY_STOP_LOSS.get(env.get("STRATEGY", "ai") or "ai")
    return _decimal(env, "STOP_LOSS", raw)


def _session(env: Mapping[str, str], name: str, default: Decimal) -> Decimal | None:
    """A session limit: a positive number, ``off`` (None) or empty (``default``)."""
    raw = (env.get(name) or "").strip()
    if raw.lower() == "off":
        return None
    if not raw:
        return default
    value = _decimal(env, name, raw)
    if value <= 0:
        raise ConfigurationError(f"{name}={raw!r} must be a positive number or 'off'")
    return value


def _whole_or_off(env: Mapping[str, str], name: str, default: int) -> int | None:
    """A whole number, ``off`` (None) or empty (``default``)."""
    raw = (env.get(name) or "").strip()
    if raw.lower() == "off":
        return None
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigurationError(f"{name}={raw!r} must be a whole number or 'off'")
    return int(raw)


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not value.is_finite():
        raise ConfigurationError(f"{name}={raw!r} is not a finite number")
    return value
