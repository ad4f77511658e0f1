"""The listener's settings: read once from the environment, validated at start-up.

A missing or malformed variable raises ``ConfigurationError`` naming the variable (and,
for anything but a secret, the value), before any connection is opened. The task
definition in ``template.yaml`` sets ``SYMBOL``, ``SYMBOLS``, ``EVENT_BUS_NAME``, ``MARKET_TABLE``,
``BINANCE_BASE_URL``, ``PRICE_TICK_BPS``, ``PRICE_TICK_SECONDS``, ``LARGE_TRADE_QUOTE``,
``SNAPSHOT_SECONDS`` and ``LOG_LEVEL``, and injects ``BINANCE_API_KEY`` /
``BINANCE_API_SECRET`` from Secrets Manager. Everything else has a production default
and exists for tests and tuning (``tests/unit/test_settings_template.py`` lists why).

Endpoints: with ``BINANCE_BASE_URL`` empty the listener uses Binance's production
endpoints; with the spot testnet's REST URL, the testnet's; with any other URL (a
paper exchange, ``http://127.0.0.1:8765``) the same host over ``ws://``/``wss://``, at
``/stream`` (combined market streams) and ``/ws-api/v3`` (the WebSocket API).
``BINANCE_STREAM_URL`` and ``BINANCE_WS_API_URL`` override either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from flipbot.domain.errors import ConfigurationError
from flipbot.domain.symbols import SYMBOL_PATTERN, parse_symbols, symbols_problem

PRODUCTION_STREAM_URL = "wss://stream.binance.com:9443"
PRODUCTION_WS_API_URL = "wss://ws-api.binance.com:443/ws-api/v3"
TESTNET_STREAM_URL = "wss://stream.testnet.binance.vision"
TESTNET_WS_API_URL = "wss://ws-api.testnet.binance.vision/ws-api/v3"


class ListenerSettings(BaseModel):
    """What ``flipbot-listen`` needs to know. Durations are in seconds (floats allowed)."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(pattern=SYMBOL_PATTERN)
    #: every symbol followed (``SYMBOLS``; empty: ``SYMBOL`` alone)
    symbols: tuple[str, ...] = ()
    #: the most streams one market connection carries; more symbols open more
    #: connections (Binance allows 1024 streams a connection)
    market_streams_per_connection: int = Field(default=200, ge=5, le=1024)
    event_bus_name: str = Field(min_length=1)
    market_table: str = Field(min_length=1)
    api_key: SecretStr
    api_secret: SecretStr
    stream_url: str = Field(pattern=r"^wss?://")
    ws_api_url: str = Field(pattern=r"^wss?://")
    region: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # PriceTicked throttle and the market snapshot.
    price_tick_bps: float = Field(default=20, gt=0, le=10_000)
    price_tick_seconds: float = Field(default=60, gt=0)
    snapshot_seconds: float = Field(default=10, gt=0)
    large_trade_quote: float = Field(default=1000, gt=0)
    #: the pair whose 1-minute returns the symbol's are correlated with (its kline_1m is
    #: followed on the same connection); empty: none
    correlation_symbol: str = Field(default="BTCUSDC", pattern=r"^([A-Z0-9]{5,20})?$")

    # Outbound queue: market ticks beyond this many queued events are dropped.
    queue_capacity: int = Field(default=10_000, ge=10)

    # Connection health.
    market_silence_seconds: float = Field(default=30, gt=0)
    user_probe_seconds: float = Field(default=30, gt=0)
    user_silence_seconds: float = Field(default=75, gt=0)
    request_timeout_seconds: float = Field(default=10, gt=0)
    max_connection_age_seconds: float = Field(default=23 * 3600, gt=0, le=24 * 3600)
    handover_timeout_seconds: float = Field(default=10, gt=0)
    reconnect_base_seconds: float = Field(default=0.5, gt=0)
    reconnect_max_seconds: float = Field(default=30, gt=0)
    recv_window_ms: int = Field(default=5000, gt=0, le=60_000)

    # Process.
    stop_timeout_seconds: float = Field(default=30, gt=0)
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8080, ge=0, le=65535)
    health_max_gap_seconds: float = Field(default=300, gt=0)
    metrics_seconds: float = Field(default=60, gt=0)
    service_name: str = "flipbot"
    metrics_namespace: str = "flipbot"

    @model_validator(mode="after")
    def _every_symbol(self) -> ListenerSettings:
        if not self.symbols:
            object.__setattr__(self, "symbols", (self.symbol,))
        problem = symbols_problem(self.symbols)
        if problem:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _probe_before_silence(self) -> ListenerSettings:
        if self.user_silence_seconds <= self.user_probe_seconds + self.request_timeout_seconds:
            raise ValueError(
                "USER_SILENCE_SECONDS must exceed USER_PROBE_SECONDS + REQUEST_TIMEOUT_SECONDS "
                f"({self.user_silence_seconds} <= {self.user_probe_seconds} + "
                f"{self.request_timeout_seconds}): a probe must be able to answer first"
            )
        return self

    @property
    def drain_seconds(self) -> float:
        """Time SIGTERM leaves for publishing what is queued (the stop timeout minus a margin)."""
        return max(0.5, self.stop_timeout_seconds - min(5.0, self.stop_timeout_seconds / 4))

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, dry_run: bool = False) -> ListenerSettings:
        """Build from environment variables; raise ``ConfigurationError`` naming what is wrong.

        ``dry_run`` (no AWS): ``EVENT_BUS_NAME`` and ``MARKET_TABLE`` become optional.
        """
        required = ["SYMBOL", "BINANCE_API_KEY", "BINANCE_API_SECRET"]
        if not dry_run:
            required += ["EVENT_BUS_NAME", "MARKET_TABLE"]
        missing = [name for name in required if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")
        try:
            stream_url, ws_api_url = endpoints(env.get("BINANCE_BASE_URL", ""))
        except ValueError as exc:
            raise ConfigurationError(f"BINANCE_BASE_URL: {exc}") from None
        raw: dict[str, object] = {
            "symbol": env["SYMBOL"].strip().upper(),
            "symbols": parse_symbols(env.get("SYMBOLS", "")),
            "event_bus_name": env.get("EVENT_BUS_NAME", "").strip() or "dry-run",
            "market_table": env.get("MARKET_TABLE", "").strip() or "dry-run",
            "api_key": env["BINANCE_API_KEY"].strip(),
            "api_secret": env["BINANCE_API_SECRET"].strip(),
            "stream_url": env.get("BINANCE_STREAM_URL") or stream_url,
            "ws_api_url": env.get("BINANCE_WS_API_URL") or ws_api_url,
            "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "",
            "log_level": (env.get("LOG_LEVEL") or "INFO").upper(),
            "service_name": env.get("POWERTOOLS_SERVICE_NAME") or "flipbot",
            "metrics_namespace": env.get("POWERTOOLS_METRICS_NAMESPACE") or "flipbot",
        }
        for field, var in _OPTIONAL.items():
            value = env.get(var, "").strip()
            if value:
                raw[field] = value
        reference = str(raw.get("correlation_symbol", "BTCUSDC")).upper()
        raw["correlation_symbol"] = "" if reference == "OFF" else reference
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                if not err["loc"]:  # a rule across variables: its message names them
                    problems.append(str(err["msg"]).removeprefix("Value error, "))
                    continue
                field = str(err["loc"][0])
                name = _ENV_NAME.get(field, field.upper())
                shown = "<secret>" if field in _SECRET_FIELDS else repr(err.get("input"))
                problems.append(f"{name}={shown}: {err['msg']}")
            raise ConfigurationError(f"invalid configuration: {'; '.join(problems)}") from None

    def market_streams(self) -> list[str]:
        """The combined-stream names the listener follows, over every connection."""
        return [stream for group in self.market_stream_groups() for stream in group]

    def market_stream_groups(self) -> list[list[str]]:
        """The streams of each market connection: each symbol's four (trade, bookTicker,
        kline_1m, depth10) on one connection, at most ``MARKET_STREAMS_PER_CONNECTION``
        a connection; the reference pair's kline_1m on the first, unless it is traded
        (its own kline then serves)."""
        reference = self.reference_symbol
        extra = [f"{reference.lower()}@kline_1m"] if reference not in ("", *self.symbols) else []
        groups: list[list[str]] = [[]]
        room = self.market_streams_per_connection - len(extra)
        for symbol in self.symbols:
            s = symbol.lower()
            streams = [f"{s}@trade", f"{s}@bookTicker", f"{s}@kline_1m", f"{s}@depth10"]
            if len(groups[-1]) + len(streams) > room:
                groups.append([])
                room = self.market_streams_per_connection
            groups[-1].extend(streams)
        groups[0].extend(extra)
        return groups

    @property
    def reference_symbol(self) -> str:
        """The correlation's reference pair, or "" (none, or the only symbol itself)."""
        if self.correlation_symbol == self.symbol and self.symbols == (self.symbol,):
            return ""
        return self.correlation_symbol

    def market_url(self, group: int = 0) -> str:
        """The combined market-stream URL of connection ``group`` (the subscription
        travels in the URL)."""
        streams = "/".join(self.market_stream_groups()[group])
        return f"{self.stream_url.rstrip('/')}/stream?streams={streams}"


def endpoints(base_url: str) -> tuple[str, str]:
    """``(market stream base, WebSocket API URL)`` for a ``BINANCE_BASE_URL`` value."""
    base = base_url.strip().rstrip("/")
    if not base:
        return PRODUCTION_STREAM_URL, PRODUCTION_WS_API_URL
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError(f"{base_url!r} is not an http(s) or ws(s) URL")
    if parts.hostname and parts.hostname.endswith("testnet.binance.vision"):
        return TESTNET_STREAM_URL, TESTNET_WS_API_URL
    scheme = "wss" if parts.scheme in ("https", "wss") else "ws"
    root = f"{scheme}://{parts.netloc}"
    return root, f"{root}/ws-api/v3"


_OPTIONAL = {
    "price_tick_bps": "PRICE_TICK_BPS",
    "price_tick_seconds": "PRICE_TICK_SECONDS",
    "snapshot_seconds": "SNAPSHOT_SECONDS",
    "large_trade_quote": "LARGE_TRADE_QUOTE",
    "correlation_symbol": "CORRELATION_SYMBOL",
    "market_streams_per_connection": "MARKET_STREAMS_PER_CONNECTION",
    "queue_capacity": "QUEUE_CAPACITY",
    "market_silence_seconds": "MARKET_SILENCE_SECONDS",
    "user_probe_seconds": "USER_PROBE_SECONDS",
    "user_silence_seconds": "USER_SILENCE_SECONDS",
    "request_timeout_seconds": "REQUEST_TIMEOUT_SECONDS",
    "max_connection_age_seconds": "MAX_CONNECTION_AGE_SECONDS",
    "handover_timeout_seconds": "HANDOVER_TIMEOUT_SECONDS",
    "reconnect_base_seconds": "RECONNECT_BASE_SECONDS",
    "reconnect_max_seconds": "RECONNECT_MAX_SECONDS",
    "recv_window_ms": "RECV_WINDOW_MS",
    "stop_timeout_seconds": "STOP_TIMEOUT_SECONDS",
    "health_host": "HEALTH_HOST",
    "health_port": "HEALTH_PORT",
    "health_max_gap_seconds": "HEALTH_MAX_GAP_SECONDS",
    "metrics_seconds": "METRICS_SECONDS",
}
_ENV_NAME = {
    **_OPTIONAL,
    "symbol": "SYMBOL",
    "symbols": "SYMBOLS",
    "event_bus_name": "EVENT_BUS_NAME",
    "market_table": "MARKET_TABLE",
    "api_key": "BINANCE_API_KEY",
    "api_secret": "BINANCE_API_SECRET",
    "stream_url": "BINANCE_STREAM_URL",
    "ws_api_url": "BINANCE_WS_API_URL",
    "log_level": "LOG_LEVEL",
}
_SECRET_FIELDS = {"api_key", "api_secret"}
#: Every variable :meth:`ListenerSettings.from_env` reads (the template may set no other).
ENVIRONMENT_VARIABLES = frozenset(
    {
        *_ENV_NAME.values(),
        "BINANCE_BASE_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    }
)
