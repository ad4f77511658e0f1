"""Settings from the environment: defaults, the stop-loss rules, errors naming the value."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot.settings import (
    FUNCTION_SETTINGS,
    NO_SELL_TIMEOUT,
    ReconcileSettings,
    Settings,
    check_at_init,
)

BASE = {
    "SYMBOL": "TRUMPUSDC",
    "CYCLES_TABLE": "cycles",
    "ORDERS_TABLE": "orders",
    "FILLS_TABLE": "fills",
    "TRADES_TABLE": "trades",
    "CONSULTATIONS_TABLE": "consultations",
    "MARKET_TABLE": "market",
}


def _settings(**env: str) -> Settings:
    return Settings.from_env({**BASE, **env})


@pytest.mark.parametrize(
    ("strategy", "stop_loss", "expected"),
    [
        ("", "", None),  # the default: no stop-loss
        ("ai", "", None),
        ("adaptive", "", None),
        ("ma-cross", "", Decimal("0.01")),  # the strategy brings its own
        ("ma-cross", "off", None),
        ("ma-cross", "OFF", None),
        ("ma-cross", "0.02", Decimal("0.02")),
        ("ai", "0.005", Decimal("0.005")),
    ],
)
def test_given_strategy_and_stop_loss_then_the_effective_stop_loss(
    strategy: str, stop_loss: str, expected: Decimal | None
) -> None:
    settings = _settings(STRATEGY=strategy, STOP_LOSS=stop_loss)
    assert settings.stop_loss == expected


def test_given_no_stop_loss_then_a_sell_never_times_out_and_with_one_it_is_rechecked() -> None:
    assert _settings().sell_timeout_seconds == NO_SELL_TIMEOUT == 99_999_999
    with_stop = _settings(STOP_LOSS="0.02", SELL_RECHECK_SECONDS="90")
    assert with_stop.sell_timeout_seconds == 90
    assert _settings(STRATEGY="ma-cross").sell_timeout_seconds == 300  # the default recheck


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"STOP_LOSS": "one percent"}, "STOP_LOSS='one percent'"),
        ({"STOP_LOSS": "1.5"}, "STOP_LOSS=Decimal('1.5')"),
        ({"STOP_LOSS": "0"}, "STOP_LOSS=Decimal('0')"),
        ({"STOP_LOSS": "0.01", "SELL_RECHECK_SECONDS": "5"}, "SELL_RECHECK_SECONDS='5'"),
    ],
)
def test_given_a_malformed_stop_loss_setting_then_the_error_names_variable_and_value(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        _settings(**env)
    assert named in str(error.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "fb"),  # local tools: no stack, plain fb
        ({"ORDER_ID_PREFIX": ""}, "fb"),
        ({"ORDER_ID_PREFIX": "fb51af3dc0"}, "fb51af3dc0"),  # fb + 8 hex digits of a stack id
        ({"ORDER_ID_PREFIX": "fb" + "z" * 13}, "fb" + "z" * 13),  # the longest
    ],
)
def test_given_an_order_id_prefix_or_none_then_the_stack_s_prefix(
    env: dict[str, str], expected: str
) -> None:
    assert _settings(**env).order_id_prefix == expected


@pytest.mark.parametrize(
    "prefix",
    ["xy1a2b3c4d", "FB1A2B3C4D", "fb-1a2b", "fb_1a2b", "fb1a2b3c4d5e6f7a", "fb\n", " fb"],
    ids=["not-fb", "upper-case", "dash", "underscore", "too-long", "newline", "space"],
)
def test_given_a_malformed_order_id_prefix_then_the_error_names_variable_and_value(
    prefix: str,
) -> None:
    with pytest.raises(ConfigurationError) as error:
        _settings(ORDER_ID_PREFIX=prefix)
    assert f"ORDER_ID_PREFIX={prefix!r}" in str(error.value)
    assert "'fb' and up to 13 lowercase letters or digits" in str(error.value)


@pytest.mark.parametrize(
    ("function", "needs"),
    [
        ("ConsultAiFunction", ["BINANCE_SECRET_ARN"]),
        ("PlaceOrderFunction", ["BINANCE_SECRET_ARN"]),
        ("CancelOrderFunction", ["BINANCE_SECRET_ARN"]),
        ("OnOrderUpdateFunction", ["BINANCE_SECRET_ARN", "STATE_MACHINE_ARN"]),
        ("RecordTradeFunction", ["BINANCE_SECRET_ARN"]),
        ("ReconcileFunction", ["BINANCE_SECRET_ARN", "STATE_MACHINE_ARN"]),
    ],
)
def test_given_a_function_without_what_it_needs_then_its_settings_name_each_missing_variable(
    function: str, needs: list[str]
) -> None:
    model = FUNCTION_SETTINGS[function]
    with pytest.raises(ConfigurationError) as raised:
        model.from_env(BASE)
    assert str(raised.value) == f"missing environment variable(s): {', '.join(needs)}"
    given = {name: f"arn:aws:x:{name.lower()}" for name in needs}
    built = model.from_env({**BASE, **given})
    assert isinstance(built, model)
    assert built.binance_secret_arn == given["BINANCE_SECRET_ARN"]


def test_given_a_lambda_sandbox_then_a_function_is_checked_at_init_and_elsewhere_not() -> None:
    sandbox = {**BASE, "AWS_LAMBDA_FUNCTION_NAME": "flipbot-ReconcileFunction"}
    with pytest.raises(ConfigurationError, match="BINANCE_SECRET_ARN, STATE_MACHINE_ARN"):
        check_at_init(ReconcileSettings, sandbox)
    with pytest.raises(ConfigurationError, match=r"MIN_CONFIDENCE='high'"):
        check_at_init(
            ReconcileSettings,
            {
                **sandbox,
                "BINANCE_SECRET_ARN": "b",
                "STATE_MACHINE_ARN": "s",
                "MIN_CONFIDENCE": "high",
            },
        )
    check_at_init(
        ReconcileSettings, {**sandbox, "BINANCE_SECRET_ARN": "b", "STATE_MACHINE_ARN": "s"}
    )
    check_at_init(ReconcileSettings, BASE)  # a tool importing the handler: not a sandbox


def test_a_bad_ai_models_entry_fails_the_consult_at_cold_start_naming_it_and_no_other() -> None:
    env = {**BASE, "BINANCE_SECRET_ARN": "arn", "STATE_MACHINE_ARN": "arn"}
    bad = {**env, "AI_MODELS": "gpt-4o-mini,deepseek@ftp://x/v1?key=sk-secret-123"}
    with pytest.raises(ConfigurationError, match=r"AI_MODELS=\(not shown\).*'deepseek@x'") as err:
        check_at_init(
            FUNCTION_SETTINGS["ConsultAiFunction"], {**bad, "AWS_LAMBDA_FUNCTION_NAME": "f"}
        )
    assert "sk-secret-123" not in str(err.value)
    for name, model in FUNCTION_SETTINGS.items():  # the others book fills and cancel orders
        if name != "ConsultAiFunction":
            model.from_env(bad)
    good = {**env, "AI_MODELS": "a, b@https://h/v1"}
    assert FUNCTION_SETTINGS["ConsultAiFunction"].from_env(good).ai_models == "a, b@https://h/v1"


def test_given_symbols_then_each_has_its_chain_and_its_own_values() -> None:
    s = _settings(
        SYMBOLS="TRUMPUSDC, btcusdc,ETHUSDC",
        SYMBOL_SETTINGS="BTCUSDC:quote=20,strategy=ma-cross,stop_loss=0.02;ETHUSDC:stop_loss=off",
        STOP_LOSS="0.05",
        PORTFOLIO_QUOTE_CAP="25",
    )
    assert s.symbols == ("TRUMPUSDC", "BTCUSDC", "ETHUSDC")
    assert s.portfolio_quote_cap == Decimal("25")
    btc, eth = s.for_symbol("BTCUSDC"), s.for_symbol("ETHUSDC")
    assert (btc.symbol, btc.quote_per_cycle, btc.strategy, btc.stop_loss) == (
        "BTCUSDC",
        Decimal("20"),
        "ma-cross",
        Decimal("0.02"),
    )
    assert (eth.quote_per_cycle, eth.strategy, eth.stop_loss) == (Decimal("10"), "ai", None)
    assert s.for_symbol("TRUMPUSDC") is s
    # the stack's SYMBOL keeps short cycle ids; the others' carry their symbol
    assert (s.symbol_part("TRUMPUSDC"), btc.symbol_part("BTCUSDC")) == ("", "BTCUSDC")
    assert btc.symbol_of_cycle("c000003") == "TRUMPUSDC"
    assert s.symbol_of_cycle("ETHUSDC_c000003") == "ETHUSDC"
    # a symbol removed from SYMBOLS is no longer traded, though its view still answers
    assert not s.trades("SOLUSDC")
    assert s.for_symbol("SOLUSDC").quote_per_cycle == Decimal("10")


def test_without_symbols_the_stack_trades_its_symbol_alone() -> None:
    s = _settings()
    assert s.symbols == ("TRUMPUSDC",)
    assert s.portfolio_quote_cap is None
    assert _settings(PORTFOLIO_QUOTE_CAP="off").portfolio_quote_cap is None


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SYMBOLS": "TRUMPUSDC,BTC"}, "SYMBOLS has 'BTC'"),
        ({"SYMBOLS": "BTCUSDC,BTCUSDC"}, "names a symbol twice"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:qty=5"}, "'qty=5' is not one of"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:quote=5,quote=6"}, "quote is given twice"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:quote=5;TRUMPUSDC:quote=6"}, "names TRUMPUSDC twice"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC"}, "write SYMBOL:key=value"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:stop_loss=1.5"}, "TRUMPUSDC:stop_loss='1.5'"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:strategy=gpt"}, "strategy='gpt'"),
        ({"SYMBOL_SETTINGS": "TRUMPUSDC:quote=-1"}, "TRUMPUSDC:quote='-1'"),
        ({"PORTFOLIO_QUOTE_CAP": "0"}, "PORTFOLIO_QUOTE_CAP='0'"),
        (
            {"SYMBOLS": "TRUMPUSDC,ABCDEFGHIJKLMNOPQRST", "ORDER_ID_PREFIX": "fb1a2b3c4d"},
            "would not fit Binance's 36",
        ),
    ],
)
def test_a_bad_symbol_setting_is_refused_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        _settings(**env)


def test_the_stack_s_own_symbol_takes_its_symbol_settings_too() -> None:
    s = _settings(SYMBOLS="TRUMPUSDC,BTCUSDC", SYMBOL_SETTINGS="TRUMPUSDC:quote=50,stop_loss=0.05")
    assert (s.quote_per_cycle, s.stop_loss) == (Decimal("50"), Decimal("0.05"))
    # and another symbol gets the stack's values, not SYMBOL's
    btc = s.for_symbol("BTCUSDC")
    assert (btc.quote_per_cycle, btc.stop_loss) == (Decimal("10"), None)
    assert btc.for_symbol("TRUMPUSDC").quote_per_cycle == Decimal("50")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # a symbol's own ma-cross brings ma-cross's 1 % stop-loss, as STRATEGY would
        ({"SYMBOL_SETTINGS": "BTCUSDC:strategy=ma-cross"}, Decimal("0.01")),
        # and a symbol's own ai on a ma-cross stack drops it
        ({"STRATEGY": "ma-cross", "SYMBOL_SETTINGS": "BTCUSDC:strategy=ai"}, None),
        # STOP_LOSS set for the stack holds for every symbol's strategy
        ({"STOP_LOSS": "0.03", "SYMBOL_SETTINGS": "BTCUSDC:strategy=ma-cross"}, Decimal("0.03")),
        ({"SYMBOL_SETTINGS": "BTCUSDC:strategy=ma-cross,stop_loss=off"}, None),
    ],
)
def test_a_symbol_s_own_strategy_brings_its_stop_loss(
    env: dict[str, str], expected: Decimal | None
) -> None:
    s = _settings(SYMBOLS="TRUMPUSDC,BTCUSDC", **env)
    assert s.for_symbol("BTCUSDC").stop_loss == expected


def test_a_removed_symbol_s_own_settings_hold_while_its_cycle_finishes() -> None:
    s = _settings(SYMBOLS="TRUMPUSDC", SYMBOL_SETTINGS="BTCUSDC:strategy=ma-cross,quote=20")
    btc = s.for_symbol("BTCUSDC")
    assert not s.trades("BTCUSDC")
    assert (btc.strategy, btc.quote_per_cycle, btc.stop_loss) == (
        "ma-cross",
        Decimal("20"),
        Decimal("0.01"),
    )
