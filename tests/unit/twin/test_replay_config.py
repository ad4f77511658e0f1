"""A replay's settings are checked when they are made, before anything is deployed: a bad
value fails at once with its name, not minutes into the replay (an intervention is acted
on only when its time comes)."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from flipbot.domain.errors import ConfigurationError
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig

TEMPLATE = Path(__file__).resolve().parents[3] / "template.yaml"
DATA = generate_sample(seed=1, hours=0.1)


def _config(**changes: Any) -> ReplayConfig:
    given: dict[str, Any] = {"template": TEMPLATE, **changes}
    return ReplayConfig(data=DATA, symbol=DATA.symbol, **given)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"template": Path("/nowhere/template.yaml")}, "template='/nowhere/template.yaml'"),
        ({"history": Path("/nowhere/dump.json")}, "history='/nowhere/dump.json'"),
        ({"quote_balance": Decimal(0)}, "quote_balance='0'"),
        ({"maker_fee": Decimal("-0.001")}, "maker_fee='-0.001'"),
        ({"taker_fee": Decimal("0.5")}, "taker_fee='0.5'"),
        ({"snapshot_every_ms": 0}, "snapshot_every_ms=0"),
        ({"warmup_ms": -1}, "warmup_ms=-1"),
        ({"max_cycles": -2}, "max_cycles=-2"),
        ({"fill_model": "instant"}, "fill_model='instant'"),
        ({"decider": "gpt-magic"}, "decider='gpt-magic'"),
        ({"exchange": "tcp"}, "exchange='tcp'"),
        ({"chaos": "meteor"}, "chaos='meteor'"),
        ({"interventions": ((5, "withdraw_base"), (9, "unplug"))}, "interventions='unplug'"),
        ({"interventions": ((-1, "wipe_and_recover"),)}, "interventions=-1"),
    ],
)
def test_given_a_bad_value_then_the_replay_config_names_it(
    changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        _config(**changes)
    assert named in str(raised.value)


def test_given_good_values_then_the_config_is_made() -> None:
    config = _config(decider="ma-cross", chaos="manual", interventions=((1, "wipe_and_recover"),))
    assert (config.decider, config.chaos) == ("ma-cross", "manual")


def test_given_a_bad_balance_then_the_replay_command_exits_2_naming_it(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "flipbot_dev.cli", "replay", "--hours", "0.1"]
    for balance, named in (("-5", "quote_balance='-5'"), ("abc", "'abc' is not a number")):
        done = subprocess.run(
            [*command, "--balance", balance, "--out", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2
        assert named in done.stderr
        assert not (tmp_path / "report.json").exists()
