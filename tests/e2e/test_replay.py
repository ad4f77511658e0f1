"""The digital twin end to end: the template's functions, rules and state machine trading."""

from __future__ import annotations

import difflib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from flipbot_dev.replay.data import load_market_data
from flipbot_dev.replay.sample import generate_sample
from flipbot_dev.twin.runner import ReplayConfig, run_replay

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

SAMPLE_HOURS = 8


def _replay(tmp_path: Path, name: str, **overrides: Any) -> dict[str, Any]:
    data = overrides.pop("data", None) or generate_sample(seed=7, hours=SAMPLE_HOURS)
    config = ReplayConfig(
        template=overrides.pop("template", TEMPLATE),
        data=data,
        symbol=overrides.pop("symbol", "TRUMPUSDC"),
        out_dir=tmp_path / name,
        progress=False,
        **overrides,
    )
    return run_replay(config, out=io.StringIO())


def _assert_invariants(report: dict[str, Any]) -> None:
    failed = {k: v for k, v in report["invariants"].items() if not v}
    assert not failed, f"invariants violated: {failed}; details: {report['violations']}"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("replay")
    return out, _replay(out, "a")


def test_given_the_bundled_sample_when_replayed_then_full_cycles_complete_with_invariants(
    sample_run: tuple[Path, dict[str, Any]],
) -> None:
    _, report = sample_run
    _assert_invariants(report)
    assert report["errors_caught"] == {}  # no state fell back to Reconcile
    assert report["cycles_completed"] >= 1
    assert report["fills"] >= 2 * report["cycles_completed"]
    assert report["orders_placed"] >= 2 * report["cycles_completed"]
    # Then: money adds up: the recorded P&L is what the balances say after closed cycles.
    assert report["consultations"] >= report["orders_placed"]
    assert set(report) >= {
        "cycles_completed",
        "realized_pnl_usdc",
        "fees_usdc",
        "ai_cost_usdc",
        "win_rate",
        "orders_placed",
        "fills",
        "max_position_usdc",
        "final_balances",
        "invariants",
    }
    assert float(report["max_position_usdc"]) <= 10 * 1.05  # 10 USDC a cycle, price drift


def test_given_the_same_seed_when_replayed_twice_then_outputs_are_byte_identical(
    sample_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    first_dir, _ = sample_run
    _replay(tmp_path, "b")
    for name in ("report.json", "trades.csv"):
        first = (first_dir / "a" / name).read_text()
        second = (tmp_path / "b" / name).read_text()
        diff = "".join(difflib.unified_diff(first.splitlines(True), second.splitlines(True)))
        assert first == second, f"{name} differs between two runs:\n{diff[:3000]}"
    trades = (tmp_path / "b" / "trades.csv").read_text().splitlines()
    assert trades[0].startswith("cycle_id,opened,closed")
    assert (
        len(trades) - 1
        == json.loads((tmp_path / "b" / "report.json").read_text())["cycles_completed"]
    )


def test_given_a_template_whose_order_update_rule_never_matches_then_no_fill_reaches_the_handler(
    tmp_path: Path, project_root: Path
) -> None:
    # Given: a copy of the template whose OrderUpdated rule listens to another detail-type.
    template = cfn_yaml.load(str(project_root / "template.yaml"))
    events = template["Resources"]["OnOrderUpdateFunction"]["Properties"]["Events"]
    rules = [e for e in events.values() if e["Type"] == "EventBridgeRule"]
    assert rules, "OnOrderUpdateFunction declares no EventBridge rule"
    for rule in rules:
        rule["Properties"]["Pattern"]["detail-type"] = ["SomethingElse"]
    # Written beside the real one so that relative CodeUri/DefinitionUri still resolve.
    broken = project_root / f".broken-template-{tmp_path.name}.json"
    broken.write_text(json.dumps(template, default=str))
    try:
        report = _replay(tmp_path, "broken", template=broken)
    finally:
        broken.unlink()
    # Then: orders are placed and filled, but no order update ever reaches the handler;
    # only the scheduled reconcile, reading the exchange, can move the cycles on.
    assert report["orders_placed"] >= 1
    assert report["invocations"]["OnOrderUpdateFunction"] == 0
    assert report["invocations"]["ReconcileFunction"] > 0


def test_given_the_real_template_then_every_fill_reaches_the_order_update_handler(
    sample_run: tuple[Path, dict[str, Any]],
) -> None:
    _, report = sample_run
    # NEW + one TRADE per fill for every order: at least one update per fill.
    assert report["invocations"]["OnOrderUpdateFunction"] >= report["fills"] > 0


def test_given_real_btcbusd_klines_when_replayed_then_invariants_hold(
    tmp_path: Path, reference_data: Path
) -> None:
    data = load_market_data(
        reference_data / "klines" / "BTCBUSD_1m_2022-12-13_lean.csv", symbol="BTCBUSD"
    )
    report = _replay(tmp_path, "btcbusd", data=data, symbol="BTCBUSD")
    _assert_invariants(report)
    assert report["market_events"] == len(data)


def test_given_real_btcusdt_trades_when_replayed_then_invariants_hold(
    tmp_path: Path, reference_data: Path
) -> None:
    path = (
        reference_data / "trades" / "BTCUSDT_trades_2024-08-08T2354_2024-08-09T0005_hftbacktest.csv"
    )
    data = load_market_data(path, symbol="BTCUSDT")
    report = _replay(tmp_path, "btcusdt", data=data, symbol="BTCUSDT", warmup_ms=60_000)
    _assert_invariants(report)
    assert report["consultations"] >= 1


def test_given_every_table_emptied_mid_cycle_then_recovery_rebuilds_and_trading_goes_on(
    tmp_path: Path,
) -> None:
    # Given: the tables are lost three hours in, with a cycle under way.
    report = _replay(tmp_path, "wiped", interventions=((180, "wipe_and_recover"),))
    # Then: the records are rebuilt from the exchange, the money adds up, cycles go on.
    assert report["recoveries"] == 1
    _assert_invariants(report)
    assert any(
        "-recovered-" in name
        for name in report["executions"]["succeeded"] + report["executions"]["running"]
    )
    assert report["cycles_completed"] >= 2
