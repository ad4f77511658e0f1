"""``--preset ma-cross-poc``: the MA-crossover proof of concept's set-up on the twin."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from flipbot_dev.cli import main
from flipbot_dev.commands.presets import PRESETS, Setup, preset, setup


@pytest.fixture(scope="module")
def poc_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Five hours of the bundled sample replayed under the preset."""
    out = tmp_path_factory.mktemp("poc")
    code = main(
        ["replay", "--preset", "ma-cross-poc", "--hours", "5", "--quiet", "--out", str(out)]
    )
    report = json.loads((out / "report.json").read_text())
    assert code == 0, report["violations"]
    return report


def test_the_preset_trades_the_seed_capital_and_position_with_ma_cross(poc_run: dict) -> None:
    assert poc_run["decided_by"] == "ma-cross"
    assert Decimal(poc_run["initial_equity_usdc"]) == Decimal(500)
    assert poc_run["cycles_completed"] >= 1
    # one position of 150 quote (plus the buy's rounding to the lot), never more
    assert Decimal(150) * Decimal("0.99") <= Decimal(poc_run["max_position_usdc"])
    assert Decimal(poc_run["max_position_usdc"]) <= Decimal(150) * Decimal("1.02")
    assert all(poc_run["invariants"].values())


def test_the_preset_session_ends_at_its_four_hour_limit(poc_run: dict) -> None:
    stop = poc_run["session_stop"]
    assert stop is not None
    assert stop["reason"].startswith("time limit reached")
    assert "4 h" in stop["reason"]


def test_the_command_line_wins_over_the_preset() -> None:
    # Given the preset with another balance, position and time limit on the command line
    chosen = setup(
        preset("ma-cross-poc"),
        balance=Decimal(300),
        quote_per_cycle="40",
        params=["SessionTimeLimitHours=2", "MinProfit=0.02"],
    )
    # Then those win, and the preset gives the rest
    assert chosen == Setup(
        strategy="ma-cross",
        balance=Decimal(300),
        parameters={
            "QuotePerCycle": "40",
            "SessionProfitTarget": "6",
            "SessionMaxLoss": "15",
            "SessionTimeLimitHours": "2",
            "MinProfit": "0.02",
        },
    )


def test_without_a_preset_the_defaults_are_the_replays() -> None:
    assert setup(None) == Setup("offline", Decimal(100), {"QuotePerCycle": "10"})
    assert setup(None, strategy="fixed", params=["QuotePerCycle=25"]).parameters == {
        "QuotePerCycle": "25"
    }
    with pytest.raises(ValueError, match=r"'QuotePerCycle'.*KEY=VALUE"):
        setup(None, params=["QuotePerCycle"])


def test_an_unknown_preset_is_refused_naming_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["replay", "--preset", "ma-cross-demo"])
    assert exited.value.code == 2
    assert "ma-cross-poc" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"ma-cross-demo.*ma-cross-poc"):
        preset("ma-cross-demo")


def test_every_preset_names_a_strategy_the_lab_knows_and_template_parameters() -> None:
    from flipbot.app.lab import STRATEGIES

    template = (Path(__file__).resolve().parents[2] / "template.yaml").read_text()
    for chosen in PRESETS.values():
        assert chosen.strategy in STRATEGIES
        for name in chosen.parameters:
            assert f"\n  {name}:\n" in template, name
