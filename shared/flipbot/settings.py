"""Settings of the Lambda functions, read once from the environment and validated.

A missing or malformed variable raises ``ConfigurationError`` naming the variable and
the offending value, at cold start rather than halfway through a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flipbot.domain.errors import ConfigurationError
from flipbot.domain.order_ids import DEFAULT_PREFIX, PREFIX_PATTERN

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


class Settings(BaseModel):
    """Everything a function needs to know; see docs/ARCHITECTURE.md for each variable."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(pattern=r"^[A-Z0-9]{5,20}$")
    quote_per_cycle: Decimal = Field(gt=0)
    min_confidence: float = Field(ge=0, le=1)
    min_profit: Decimal = Field(ge=0)
    target_profit: Decimal = Field(ge=0)
    sell_mode: Literal["immediate", "on_profit"] = "immediate"
    price_band: Decimal = Field(gt=0, lt=1)
    buy_order_timeout_seconds: int = Field(default=900, gt=0)
    sell_heartbeat_seconds: int = Field(default=7200, gt=0)
    reconsult_seconds: int = Field(default=60, gt=0)
    strategy: str = "ai"
    stop_loss: Decimal | None = Field(default=None, gt=0, lt=1)
    sell_recheck_seconds: int = Field(default=300, ge=10)
    tables: Tables
    event_bus_name: str = ""
    binance_secret_arn: str = ""
    openai_secret_arn: str = ""
    binance_base_url: str = ""
    ai_model: str = "gpt-4o-mini"
    openai_base_url: str = ""
    ai_daily_budget_usd: Decimal = Field(default=Decimal("1"), ge=0)
    ai_fallback: Literal["fallback", "wait"] = "fallback"
    ai_price_table: str = Field(default="", description='JSON {"model": [usd_in, usd_out]}')
    kill_switch_parameter: str = ""
    max_cycles: int = Field(default=0, ge=0, description="0 = no limit")
    state_machine_arn: str = ""
    recovery_open_buy: Literal["wait", "cancel"] = "cancel"
    manual_sell_margin: Decimal = Field(default=Decimal("0.01"), ge=0)
    manual_dry_run: bool = False
    order_id_prefix: str = DEFAULT_PREFIX

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

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build from environment variables; raise ``ConfigurationError`` naming what is wrong."""
        required = ["SYMBOL", *_TABLE_VARS.values()]
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        raw = {
            "symbol": env["SYMBOL"],
            "quote_per_cycle": _decimal(env, "QUOTE_PER_CYCLE", "10"),
            "min_confidence": env.get("MIN_CONFIDENCE", "0.8"),
            "min_profit": _decimal(env, "MIN_PROFIT", "0.01"),
            "target_profit": _decimal(env, "TARGET_PROFIT", "0.05"),
            "sell_mode": env.get("SELL_MODE", "immediate"),
            "price_band": _decimal(env, "PRICE_BAND", "0.02"),
            "buy_order_timeout_seconds": env.get("BUY_ORDER_TIMEOUT_SECONDS", "900"),
            "sell_heartbeat_seconds": env.get("SELL_HEARTBEAT_SECONDS", "7200"),
            "reconsult_seconds": env.get("RECONSULT_SECONDS", "60"),
            "strategy": env.get("STRATEGY", "ai") or "ai",
            "stop_loss": _stop_loss(env),
            "sell_recheck_seconds": env.get("SELL_RECHECK_SECONDS", "300") or "300",
            "tables": {key: env[var] for key, var in _TABLE_VARS.items()},
            "event_bus_name": env.get("EVENT_BUS_NAME", ""),
            "binance_secret_arn": env.get("BINANCE_SECRET_ARN", ""),
            "openai_secret_arn": env.get("OPENAI_SECRET_ARN", ""),
            "binance_base_url": env.get("BINANCE_BASE_URL", ""),
            "ai_model": env.get("AI_MODEL", "gpt-4o-mini") or "gpt-4o-mini",
            "openai_base_url": env.get("OPENAI_BASE_URL", ""),
            "ai_daily_budget_usd": _decimal(env, "AI_DAILY_BUDGET_USD", "1"),
            "ai_fallback": env.get("AI_FALLBACK", "fallback") or "fallback",
            "ai_price_table": _price_table(env.get("AI_PRICE_TABLE", "")),
            "kill_switch_parameter": env.get("KILL_SWITCH_PARAMETER", ""),
            "max_cycles": env.get("MAX_CYCLES", "0"),
            "state_machine_arn": env.get("STATE_MACHINE_ARN", ""),
            "recovery_open_buy": env.get("RECOVERY_OPEN_BUY", "cancel") or "cancel",
            "manual_sell_margin": _decimal(env, "MANUAL_SELL_MARGIN", "0.01"),
            "manual_dry_run": env.get("MANUAL_DRY_RUN", "false").strip().lower()
            in {"1", "true", "yes", "on"},
            "order_id_prefix": env.get("ORDER_ID_PREFIX") or DEFAULT_PREFIX,
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{_ENV_NAME.get(str(e['loc'][0]), e['loc'][0])}={e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigurationError(f"invalid configuration: {problems}") from exc


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
    "quote_per_cycle": "QUOTE_PER_CYCLE",
    "min_confidence": "MIN_CONFIDENCE",
    "min_profit": "MIN_PROFIT",
    "target_profit": "TARGET_PROFIT",
    "sell_mode": "SELL_MODE",
    "price_band": "PRICE_BAND",
    "buy_order_timeout_seconds": "BUY_ORDER_TIMEOUT_SECONDS",
    "sell_heartbeat_seconds": "SELL_HEARTBEAT_SECONDS",
    "max_cycles": "MAX_CYCLES",
    "stop_loss": "STOP_LOSS",
    "sell_recheck_seconds": "SELL_RECHECK_SECONDS",
    "ai_daily_budget_usd": "AI_DAILY_BUDGET_USD",
    "ai_fallback": "AI_FALLBACK",
    "order_id_prefix": "ORDER_ID_PREFIX",
}


def _price_table(raw: str) -> str:
    """``AI_PRICE_TABLE`` as given, once it parses (``ConfigurationError`` otherwise)."""
    if raw.strip():
        from flipbot.ai.cost import parse_price_table

        parse_price_table(raw)
    return raw


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


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    raw = env.get(name) or default
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not value.is_finite():
        raise ConfigurationError(f"{name}={raw!r} is not a finite number")
    return value
