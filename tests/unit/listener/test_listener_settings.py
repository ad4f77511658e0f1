"""The listener's settings, validated at start-up, and their agreement with template.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot.listener.settings import (
    ENVIRONMENT_VARIABLES,
    PRODUCTION_STREAM_URL,
    PRODUCTION_WS_API_URL,
    ListenerSettings,
    endpoints,
)
from flipbot_dev.cli import main

ROOT = Path(__file__).resolve().parents[3]
ENV = {
    "SYMBOL": "TRUMPUSDC",
    "EVENT_BUS_NAME": "bus",
    "MARKET_TABLE": "market",
    "BINANCE_API_KEY": "k" * 64,
    "BINANCE_API_SECRET": "s" * 64,
}


def test_given_the_minimum_then_production_endpoints_and_defaults() -> None:
    settings = ListenerSettings.from_env(ENV)
    assert settings.stream_url == PRODUCTION_STREAM_URL
    assert settings.ws_api_url == PRODUCTION_WS_API_URL
    assert (settings.price_tick_bps, settings.price_tick_seconds) == (20, 60)
    assert settings.market_url() == (
        "wss://stream.binance.com:9443/stream?streams="
        "trumpusdc@trade/trumpusdc@bookTicker/trumpusdc@kline_1m/trumpusdc@depth10"
        "/btcusdc@kline_1m"
    )
    assert settings.max_connection_age_seconds < 24 * 3600
    assert 0 < settings.drain_seconds < settings.stop_timeout_seconds
    assert "k" * 64 not in repr(settings)
    assert "s" * 64 not in str(settings)


@pytest.mark.parametrize(
    "missing", ["SYMBOL", "EVENT_BUS_NAME", "MARKET_TABLE", "BINANCE_API_KEY", "BINANCE_API_SECRET"]
)
def test_given_a_missing_variable_then_the_error_names_it(missing: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"missing environment variable\\(s\\): {missing}"):
        ListenerSettings.from_env(env)


def test_given_a_dry_run_then_aws_names_are_optional() -> None:
    env = {k: v for k, v in ENV.items() if k not in ("EVENT_BUS_NAME", "MARKET_TABLE")}
    assert ListenerSettings.from_env(env, dry_run=True).symbol == "TRUMPUSDC"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PRICE_TICK_BPS", "abc"),
        ("PRICE_TICK_SECONDS", "0"),
        ("QUEUE_CAPACITY", "3"),
        ("SYMBOL", "trump/usdc"),
        ("LOG_LEVEL", "LOUD"),
        ("BINANCE_BASE_URL", "ftp://example.com"),
    ],
)
def test_given_a_bad_value_then_the_error_names_the_variable_and_value(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name) as raised:
        ListenerSettings.from_env({**ENV, name: value})
    assert repr(value).strip("'").upper()[:3] in str(raised.value).upper()


def test_given_silence_shorter_than_a_probe_then_the_error_says_which_variables() -> None:
    with pytest.raises(ConfigurationError, match="USER_SILENCE_SECONDS must exceed"):
        ListenerSettings.from_env({**ENV, "USER_PROBE_SECONDS": "70"})


def test_given_a_bad_value_then_the_secrets_stay_out_of_the_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ListenerSettings.from_env({**ENV, "HEALTH_PORT": "99999", "SYMBOL": "x"})
    assert "HEALTH_PORT='99999'" in str(raised.value)
    assert "SYMBOL='X'" in str(raised.value)
    assert "k" * 64 not in str(raised.value)
    assert "s" * 64 not in str(raised.value)


@pytest.mark.parametrize(
    ("base", "stream", "api"),
    [
        ("", PRODUCTION_STREAM_URL, PRODUCTION_WS_API_URL),
        (
            "https://testnet.binance.vision",
            "wss://stream.testnet.binance.vision",
            "wss://ws-api.testnet.binance.vision/ws-api/v3",
        ),
        ("http://127.0.0.1:8765/", "ws://127.0.0.1:8765", "ws://127.0.0.1:8765/ws-api/v3"),
        (
            "https://paper.example:443",
            "wss://paper.example:443",
            "wss://paper.example:443/ws-api/v3",
        ),
    ],
)
def test_given_a_base_url_then_the_websocket_endpoints_follow(
    base: str, stream: str, api: str
) -> None:
    assert endpoints(base) == (stream, api)


def test_given_explicit_websocket_urls_then_they_win() -> None:
    settings = ListenerSettings.from_env(
        {**ENV, "BINANCE_STREAM_URL": "ws://a:1", "BINANCE_WS_API_URL": "ws://b:2/x"}
    )
    assert (settings.stream_url, settings.ws_api_url) == ("ws://a:1", "ws://b:2/x")


# --- the CLI ------------------------------------------------------------------------------
def test_given_flipbot_listen_without_settings_then_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYMBOL", "TRUMPUSDC")
    assert main(["listen", "--check"]) == 2
    err = capsys.readouterr().err
    assert "BINANCE_API_KEY" in err
    assert "EVENT_BUS_NAME" in err


def test_given_flipbot_listen_check_then_settings_print_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    assert main(["listen", "--check"]) == 0
    out = capsys.readouterr().out
    assert "symbol: TRUMPUSDC" in out
    assert "market_url: wss://" in out
    assert "k" * 64 not in out
    assert "s" * 64 not in out


# --- template.yaml ------------------------------------------------------------------------
def _task_definition() -> dict[str, Any]:
    pytest.importorskip("cfnlint")
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    resource = template["Resources"]["ListenerTaskDefinition"]["Properties"]
    (container,) = resource["ContainerDefinitions"]
    return dict(container)


def test_the_task_definition_sets_only_variables_the_listener_reads() -> None:
    container = _task_definition()
    names = {e["Name"] for e in container["Environment"]} | {
        s["Name"] for s in container["Secrets"]
    }
    assert names <= ENVIRONMENT_VARIABLES
    required = {"SYMBOL", "EVENT_BUS_NAME", "MARKET_TABLE", "BINANCE_API_KEY", "BINANCE_API_SECRET"}
    assert required <= names


def test_the_task_definition_health_check_and_stop_timeout_match_the_listener() -> None:
    container = _task_definition()
    assert container["HealthCheck"]["Command"] == ["CMD", "python", "-m", "flipbot.listener.health"]
    stop_timeout = int(container["StopTimeout"])
    settings = ListenerSettings.from_env(ENV)  # the drain budget with the default stop timeout
    assert settings.stop_timeout_seconds == stop_timeout
    assert settings.drain_seconds < stop_timeout
