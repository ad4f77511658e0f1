"""A value CloudFormation lets through must start the functions: for the parameters whose
pattern stands for a rule of the settings, every value the template's AllowedPattern
accepts is one the settings accept too, so a typo is refused at deploy, not at each cold
start (the pattern may be stricter: ``1.`` is refused though it would parse)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from flipbot.domain.errors import ConfigurationError
from flipbot.settings import FUNCTION_SETTINGS

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "SYMBOL": "TRUMPUSDC",
    "CYCLES_TABLE": "c",
    "ORDERS_TABLE": "o",
    "FILLS_TABLE": "f",
    "TRADES_TABLE": "t",
    "CONSULTATIONS_TABLE": "cs",
    "MARKET_TABLE": "m",
    "BINANCE_SECRET_ARN": "arn",
}
POSITIVE = ["off", "0.002", "1", "10.5", ".5", "0", "0.0", "00", ".0", "-1", "1.", "abc"]
CASES = {
    "BreakerMaxVolatility": ("BREAKER_MAX_VOLATILITY", POSITIVE),
    "RiskMaxSlippage": ("RISK_MAX_SLIPPAGE", POSITIVE),
    "RiskMinMargin": ("RISK_MIN_MARGIN", POSITIVE),
    "RiskMaxDepthShare": (
        "RISK_MAX_DEPTH_SHARE",
        ["off", "0.1", ".25", "1", "1.0", "0", "0.0", ".0", "1.5", "2", "-0.1"],
    ),
    "AiModels": (
        "AI_MODELS",
        [
            "",
            "gpt-4o-mini",
            "a, b@https://api.deepseek.com/v1",
            "a,b@http://127.0.0.1:8000/v1,c",
            "a,a",
            "gpt-4o-mini, gpt-4o-mini",
            "gpt-4o-mini,",
            "a,,b",
            "a+b",
            "a b",
            "a@b",
            "a@ftp://h/v1",
            "a@https://h/v1,",
        ],
    ),
    "Symbols": (
        "SYMBOLS",
        ["", "TRUMPUSDC", "TRUMPUSDC,BTCUSDC,ETHUSDC", "BTCUSDC", "trumpusdc", "A,B", "X Y"],
    ),
    "SymbolSettings": (
        "SYMBOL_SETTINGS",
        [
            "",
            "TRUMPUSDC:quote=20",
            "TRUMPUSDC:quote=.5,strategy=ma-cross,stop_loss=0.02",
            "TRUMPUSDC:stop_loss=off",
            "TRUMPUSDC:quote=0",
            "TRUMPUSDC:stop_loss=1.5",
            "TRUMPUSDC:strategy=gpt",
            "TRUMPUSDC:qty=1",
            "TRUMPUSDC:",
            "TRUMPUSDC quote=1",
        ],
    ),
    "PortfolioQuoteCap": ("PORTFOLIO_QUOTE_CAP", POSITIVE),
}


#: the values the patterns refuse (every other one of CASES is allowed and starts)
REFUSED = {"0", "0.0", "00", ".0", "-1", "1.", "abc", "1.5", "2", "-0.1"} | {
    "gpt-4o-mini,",
    "a,,b",
    "a+b",
    "a b",
    "a@b",
    "a@ftp://h/v1",
    "a@https://h/v1,",
    "trumpusdc",
    "A,B",
    "X Y",
    "TRUMPUSDC:quote=0",
    "TRUMPUSDC:stop_loss=1.5",
    "TRUMPUSDC:strategy=gpt",
    "TRUMPUSDC:qty=1",
    "TRUMPUSDC:",
    "TRUMPUSDC quote=1",
}


def _parameters() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(ROOT / "template.yaml"))
    return dict(loaded["Parameters"])


def _starts(variable: str, value: str) -> bool:
    env = {**BASE, variable: value}
    try:
        FUNCTION_SETTINGS["ConsultAiFunction"].from_env(env)
    except ConfigurationError:
        return False
    return True


@pytest.mark.parametrize(
    ("parameter", "value"),
    [(p, v) for p, (_, values) in CASES.items() for v in values],
)
def test_a_value_the_pattern_accepts_starts_the_function(parameter: str, value: str) -> None:
    spec = _parameters()[parameter]
    allowed = re.fullmatch(spec["AllowedPattern"], value) is not None
    allowed = allowed and len(value) <= int(spec.get("MaxLength", 4096))
    variable = CASES[parameter][0]
    if allowed:
        assert _starts(variable, value), (parameter, value)
    else:
        assert value in REFUSED, (parameter, value)
